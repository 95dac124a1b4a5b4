import { describe, expect, it } from 'vitest';
import type { Resource } from '../../src/model.js';
import { isSystemTagKey, matchResource, type CompiledPolicy } from '../../src/policy/index.js';
import { POLICY_NOW, compiledPolicy } from '../support/policies.js';

const NOW = POLICY_NOW;
const policy = compiledPolicy;

function resource(tags: Record<string, string>, extra: Partial<Resource> = {}): Resource {
  return { id: 'pcc-1', region: 'cn-hangzhou', tags, attributes: {}, ...extra };
}

describe('matchResource: remove and keep', () => {
  const strip = policy({ remove: { keyPatterns: ['tmp-*', '/^scratch-\\d+$/'] }, keep: ['owner', 'tmp-keep*'] });

  it('removes keys matching a glob or a regex, sorted, and nothing else', () => {
    const r = resource({ owner: 'a', 'tmp-b': '1', 'tmp-a': '2', 'scratch-12': 'x', 'scratch-x': 'y', env: 'dev' });
    expect(matchResource(strip, r, NOW)).toEqual({ resourceId: 'pcc-1', all: false, keys: ['scratch-12', 'tmp-a', 'tmp-b'] });
  });

  it('keep beats remove', () => {
    expect(matchResource(strip, resource({ 'tmp-keep-me': '1', 'tmp-go': '1' }), NOW)?.keys).toEqual(['tmp-go']);
  });

  it('returns null when nothing is to be removed', () => {
    expect(matchResource(strip, resource({ owner: 'a', env: 'dev' }), NOW)).toBeNull();
    expect(matchResource(strip, resource({}), NOW)).toBeNull();
  });

  it('never removes system tags, even with a catch-all pattern', () => {
    const everything = policy({ remove: { keyPatterns: ['*'] } });
    const r = resource({ 'acs:rm:rgId': 'rg-1', aliyunfoo: 'x', 'aliyun:bar': 'y', other: 'z' });
    expect(matchResource(everything, r, NOW)?.keys).toEqual(['other']);
    expect(isSystemTagKey('acs:x')).toBe(true);
    expect(isSystemTagKey('aliyun')).toBe(true);
    expect(isSystemTagKey('my-aliyun')).toBe(false);
  });

  it('matches exact keys exactly', () => {
    const exact = policy({ remove: { keys: ['FinanceDept'] } });
    expect(matchResource(exact, resource({ FinanceDept: 'x', financedept: 'y', FinanceDept2: 'z' }), NOW)?.keys).toEqual(['FinanceDept']);
  });

  it('ignores resources outside the policy regions', () => {
    expect(matchResource(strip, resource({ 'tmp-a': '1' }, { region: 'cn-beijing' }), NOW)).toBeNull();
  });

  it('still matches with a copy of the compiled policy (matchers rebuilt from the document)', () => {
    const copy = JSON.parse(JSON.stringify(strip)) as CompiledPolicy;
    expect(matchResource(copy, resource({ 'tmp-a': '1' }), NOW)?.keys).toEqual(['tmp-a']);
  });
});

describe('matchResource: where', () => {
  const p = policy({ remove: { keys: ['owner', 'FinanceDept'], keyPatterns: ['tmp-*'], where: { owner: 'unknown*', 'tmp-x': '/^2025-/' } } });

  it('removes a key listed in where only where its value matches', () => {
    expect(matchResource(p, resource({ owner: 'unknown' }), NOW)?.keys).toEqual(['owner']);
    expect(matchResource(p, resource({ owner: 'unknown-team' }), NOW)?.keys).toEqual(['owner']);
    expect(matchResource(p, resource({ owner: 'team-alpha' }), NOW)).toBeNull();
  });

  it('removes keys not listed in where unconditionally', () => {
    expect(matchResource(p, resource({ owner: 'team-alpha', FinanceDept: 'fd', 'tmp-y': 'v' }), NOW)?.keys).toEqual(['FinanceDept', 'tmp-y']);
  });

  it('applies a where condition to a key selected by a pattern', () => {
    expect(matchResource(p, resource({ 'tmp-x': '2025-01-01' }), NOW)?.keys).toEqual(['tmp-x']);
    expect(matchResource(p, resource({ 'tmp-x': '2026-01-01' }), NOW)).toBeNull();
  });
});

describe('matchResource: all', () => {
  const p = policy({ remove: { all: true }, keep: ['owner', 'cost-*'] });

  it('detaches every tag with All=true when nothing carried is kept or system', () => {
    expect(matchResource(p, resource({ b: '1', a: '2' }), NOW)).toEqual({ resourceId: 'pcc-1', all: true, keys: ['a', 'b'] });
  });

  it('falls back to the explicit list of other keys when a kept key is carried', () => {
    expect(matchResource(p, resource({ owner: 'x', a: '1', 'cost-center': 'cc' }), NOW)).toEqual({ resourceId: 'pcc-1', all: false, keys: ['a'] });
  });

  it('falls back to the explicit list when a system tag is carried', () => {
    expect(matchResource(p, resource({ 'acs:rm:rgId': 'rg', a: '1' }), NOW)).toEqual({ resourceId: 'pcc-1', all: false, keys: ['a'] });
  });

  it('returns null when only kept or system tags, or no tags, are carried', () => {
    expect(matchResource(p, resource({ owner: 'x', 'aliyun-x': 'y' }), NOW)).toBeNull();
    expect(matchResource(p, resource({}), NOW)).toBeNull();
  });
});

describe('matchResource: exemptions', () => {
  const p = policy({
    remove: { keys: ['a'] },
    exemptions: [
      { resourceIds: ['pcc-1'], until: '2026-11-30', reason: 'r1' },
      { tags: { hold: '*' }, until: '2026-12-01T00:00:00+08:00', reason: 'r2' },
      { resourceIds: ['pcc-2'], tags: { env: 'prod' }, until: '2027-01-01', reason: 'r3' },
    ],
  });

  it('leaves an exempt resource alone through the end of the until date (UTC)', () => {
    expect(matchResource(p, resource({ a: '1' }), new Date('2026-11-30T23:59:59.999Z'))).toBeNull();
    expect(matchResource(p, resource({ a: '1' }), new Date('2026-12-01T00:00:00Z'))?.keys).toEqual(['a']);
  });

  it('exempts by tag (any value with "*", also empty) until an exact instant', () => {
    const r = resource({ a: '1', hold: '' }, { id: 'pcc-9' });
    expect(matchResource(p, r, new Date('2026-11-30T15:59:59Z'))).toBeNull();
    expect(matchResource(p, r, new Date('2026-11-30T16:00:00Z'))?.keys).toEqual(['a']);
  });

  it('requires every criterion of one exemption (IDs and tags)', () => {
    expect(matchResource(p, resource({ a: '1', env: 'prod' }, { id: 'pcc-2' }), NOW)).toBeNull();
    expect(matchResource(p, resource({ a: '1', env: 'dev' }, { id: 'pcc-2' }), NOW)?.keys).toEqual(['a']);
    expect(matchResource(p, resource({ a: '1', env: 'prod' }, { id: 'pcc-3' }), NOW)?.keys).toEqual(['a']);
  });
});

describe('matchResource: selector', () => {
  it('selects by resource IDs', () => {
    const p = policy({ selector: { resourceIds: ['pcc-1'] }, remove: { keys: ['a'] } });
    expect(matchResource(p, resource({ a: '1' }), NOW)).not.toBeNull();
    expect(matchResource(p, resource({ a: '1' }, { id: 'pcc-2' }), NOW)).toBeNull();
  });

  it('selects by tags: all must be carried, values are patterns, "*" means present', () => {
    const p = policy({ selector: { tags: { env: 'dev*', team: '*' } }, remove: { keys: ['a'] } });
    expect(matchResource(p, resource({ a: '1', env: 'dev', team: '' }), NOW)).not.toBeNull();
    expect(matchResource(p, resource({ a: '1', env: 'develop', team: 'x' }), NOW)).not.toBeNull();
    expect(matchResource(p, resource({ a: '1', env: 'prod', team: 'x' }), NOW)).toBeNull();
    expect(matchResource(p, resource({ a: '1', env: 'dev' }), NOW)).toBeNull();
  });

  it('selects by attributes: VPC on either side, name pattern, status, resource group', () => {
    const p = policy({
      selector: { attributes: { vpcIds: ['vpc-a'], names: ['peer-alpha-*'], statuses: ['Expired'], resourceGroupIds: ['rg-1'] } },
      remove: { keys: ['a'] },
    });
    const attrs = { vpcId: 'vpc-x', acceptingVpcId: 'vpc-a', name: 'peer-alpha-3', status: 'Expired', resourceGroupId: 'rg-1' };
    expect(matchResource(p, resource({ a: '1' }, { attributes: attrs }), NOW)).not.toBeNull();
    expect(matchResource(p, resource({ a: '1' }, { attributes: { ...attrs, acceptingVpcId: 'vpc-b' } }), NOW)).toBeNull();
    expect(matchResource(p, resource({ a: '1' }, { attributes: { ...attrs, name: 'peer-beta-3' } }), NOW)).toBeNull();
    expect(matchResource(p, resource({ a: '1' }, { attributes: { ...attrs, status: 'Activated' } }), NOW)).toBeNull();
    expect(matchResource(p, resource({ a: '1' }, { attributes: { ...attrs, resourceGroupId: 'rg-2' } }), NOW)).toBeNull();
    expect(matchResource(p, resource({ a: '1' }), NOW)).toBeNull();
  });
});
