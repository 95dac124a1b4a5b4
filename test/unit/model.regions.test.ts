// The region list follows VpcPeer's endpoint metadata, and a well-formed region it does not list can still be governed.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { KNOWN_REGIONS, isKnownRegion, regionIdProblem } from '../../src/model.js';
import { compilePolicyDocument } from '../../src/policy/index.js';
import { UntagJobSchema } from '../../src/queue/payloads.js';

// The `endpoints` array of the VpcPeer 2022-01-01 API metadata, in its order (src/emulator/API-FACTS.md).
const METADATA_ENDPOINT_REGIONS = [
  'ap-northeast-2', 'cn-qingdao', 'cn-beijing', 'cn-zhangjiakou', 'cn-huhehaote', 'cn-wulanchabu', 'cn-hangzhou',
  'cn-shanghai', 'cn-nanjing', 'cn-shenzhen', 'cn-heyuan', 'cn-guangzhou', 'cn-chengdu', 'cn-hongkong',
  'ap-northeast-1', 'ap-southeast-1', 'ap-southeast-2', 'ap-southeast-3', 'ap-southeast-5', 'ap-southeast-6',
  'us-east-1', 'us-west-1', 'eu-west-1', 'eu-central-1', 'ap-south-1', 'me-east-1', 'ap-southeast-7', 'me-central-1',
];

describe('KNOWN_REGIONS', () => {
  it('is exactly the regions of the endpoint metadata: Mumbai and Sydney in, Fuzhou and Wuhan out', () => {
    expect([...KNOWN_REGIONS].sort()).toEqual([...METADATA_ENDPOINT_REGIONS].sort());
    expect(new Set(KNOWN_REGIONS).size).toBe(28);
    expect(isKnownRegion('ap-south-1')).toBe(true);
    expect(isKnownRegion('ap-southeast-2')).toBe(true);
    expect(isKnownRegion('cn-fuzhou')).toBe(false);
    expect(isKnownRegion('cn-wuhan-lr')).toBe(false);
  });
});

describe('regionIdProblem', () => {
  it.each(['ap-south-1', 'cn-wuhan-lr', 'cn-shanghai-finance-1', 'ap-southeast-9', 'xx-a'])('accepts the well-formed %s', (region) => {
    expect(regionIdProblem(region)).toBeUndefined();
  });

  it.each(['', 'CN-HANGZHOU', 'cn_hangzhou', 'cn--hangzhou', 'cn-hangzhou-', 'hangzhou', 'c-hangzhou', 'cn-hang zhou', 'cn-hangzhou\n', `cn-${'a'.repeat(40)}`])(
    'refuses %j',
    (region) => {
      expect(regionIdProblem(region)).toMatch(/./);
    },
  );

  it('refuses the longest and most backtracking-prone inputs by their length or shape', () => {
    expect(regionIdProblem(`cn${'-a'.repeat(50_000)}!`)).toMatch(/at most 40/);
    expect(regionIdProblem(`cn-${'a-'.repeat(18)}!`)).toMatch(/not a region ID/);
    expect(regionIdProblem(`cn${'-a'.repeat(6)}`)).toMatch(/not a region ID/); // more than five parts
  });
});

const NOW = new Date('2026-11-27T00:00:00Z');

describe('an unlisted but well-formed region is governed, with a warning', () => {
  const policy = (regions: string[]) => ({
    apiVersion: 'tagwarden/v1', kind: 'TagPolicy', metadata: { name: 'p' },
    spec: { regions, remove: { keys: ['tmp'] } },
  });

  it('policy: ap-south-1 is clean; ap-southeast-9 compiles with a warning; a malformed ID is an error', () => {
    const mumbai = compilePolicyDocument(policy(['ap-south-1']), NOW, { file: 'p.yaml' });
    expect(mumbai.findings).toEqual([]);
    expect(mumbai.policy?.regions).toEqual(['ap-south-1']);

    const future = compilePolicyDocument(policy(['ap-southeast-9']), NOW, { file: 'p.yaml' });
    expect(future.policy?.regions).toEqual(['ap-southeast-9']);
    expect(future.findings.map((f) => [f.severity, f.path])).toEqual([['warning', 'spec.regions[0]']]);
    expect(future.findings[0]?.message).toMatch(/not in VpcPeer's endpoint list; it is governed anyway/);

    const malformed = compilePolicyDocument(policy(['cn--x']), NOW, { file: 'p.yaml' });
    expect(malformed.policy).toBeUndefined();
    expect(malformed.findings.some((f) => f.severity === 'error' && f.path === 'spec.regions[0]')).toBe(true);
  });

  it('config: TAGWARDEN_REGIONS takes listed and unlisted well-formed IDs, refuses malformed ones', () => {
    expect(loadConfig({ TAGWARDEN_REGIONS: 'ap-south-1,ap-southeast-9' }).regions).toEqual(['ap-south-1', 'ap-southeast-9']);
    expect(loadConfig({}).regions).toEqual([...KNOWN_REGIONS]);
    expect(() => loadConfig({ TAGWARDEN_REGIONS: 'cn-hangzhou,CN_BAD' })).toThrow(/TAGWARDEN_REGIONS.*'CN_BAD' is not a region ID/s);
  });

  it('job payloads: a batch for ap-south-1 or an unlisted region is valid, a malformed region is not', () => {
    const job = (region: string) => ({ v: 1, batchId: 'b-1', policy: 'p', region, runId: 'r', resourceIds: ['pcc-1'], tagKeys: ['tmp'], all: false, source: 'scan', dryRun: false });
    expect(UntagJobSchema.safeParse(job('ap-south-1')).success).toBe(true);
    expect(UntagJobSchema.safeParse(job('ap-southeast-9')).success).toBe(true);
    const bad = UntagJobSchema.safeParse(job('../../etc'));
    expect(bad.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([['region', expect.stringMatching(/not a region ID/)]]);
  });
});
