import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createEmulatorAdmin, startEmulator, type EmulatorAdmin, type EmulatorResource, type RunningEmulator,
} from '../../src/emulator/index.js';
import { sdkCaller, type SdkCaller } from './emulator.support.js';

const HZ = 'cn-hangzhou';
const SH = 'cn-shanghai';
const PC = 'PeerConnection';
const manyTags = (n: number): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, `v${i}`]));

const FIXTURE: EmulatorResource[] = [
  {
    id: 'pcc-a', region: HZ, name: 'peer-a', vpcId: 'vpc-1', acceptingVpcId: 'vpc-2', resourceGroupId: 'rg-x', status: 'Activated',
    tags: { env: 'prod', owner: 'team-alpha', FinanceDept: 'fd-1', 'acs:rm:rgId': 'rg-x' },
  },
  { id: 'pcc-b', region: HZ, name: 'peer-b', vpcId: 'vpc-2', acceptingVpcId: 'vpc-3', resourceGroupId: 'rg-y', tags: { env: 'dev' } },
  { id: 'pcc-c', region: HZ, name: 'peer-c', vpcId: 'vpc-9', acceptingVpcId: 'vpc-8', tags: manyTags(19) },
  {
    id: 'pcc-s', region: SH, name: 'peer-s', vpcId: 'vpc-1', acceptingVpcId: 'vpc-5', acceptingRegionId: HZ, status: 'Accepting',
    gmtExpired: '2025-06-01T00:00:00Z', tags: { env: 'prod' },
  },
];

let emu: RunningEmulator;
let admin: EmulatorAdmin;

beforeEach(async () => {
  emu = await startEmulator({ fixture: { resources: FIXTURE } });
  admin = createEmulatorAdmin(emu.url);
});
afterEach(async () => {
  await emu.close();
});

async function tagsOf(id: string): Promise<Record<string, string> | undefined> {
  return (await admin.getState({ ids: [id] })).resources[0]?.tags;
}

describe.each([
  { name: 'V3', v2: false },
  { name: 'V2', v2: true },
])('emulator actions ($name)', ({ v2 }) => {
  let api: SdkCaller;
  beforeEach(() => {
    api = sdkCaller(emu.url, { v2 });
  });

  describe('UnTagResources', () => {
    it('removes exactly the listed keys; an absent key succeeds; the log counts what was removed', async () => {
      const body = await api.call('UnTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-a', 'pcc-b'], TagKey: ['env', 'owner', 'missing'] });
      expect(body['Success']).toBe(true);
      expect(await tagsOf('pcc-a')).toEqual({ FinanceDept: 'fd-1', 'acs:rm:rgId': 'rg-x' });
      expect(await tagsOf('pcc-b')).toEqual({});
      const { calls } = await admin.getCalls({ action: 'UnTagResources' });
      expect(calls).toHaveLength(1);
      expect(calls[0]).toMatchObject({
        code: 'OK', status: 200, applied: true, removed: 3, region: HZ, requestId: body['RequestId'],
        params: { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-a', 'pcc-b'], TagKey: ['env', 'missing', 'owner'], All: false },
      });
    });

    it('accepts an empty key (it matches nothing)', async () => {
      await api.call('UnTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-b'], TagKey: ['', 'env'] });
      expect(await tagsOf('pcc-b')).toEqual({});
    });

    it('All=true removes every tag except system tags (acs:*)', async () => {
      await api.call('UnTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-a'], All: true });
      expect(await tagsOf('pcc-a')).toEqual({ 'acs:rm:rgId': 'rg-x' });
      expect((await admin.getCalls({ action: 'UnTagResources' })).calls[0]?.removed).toBe(3);
    });

    it('fails the whole call on one unknown or other-region ID, changing nothing', async () => {
      for (const ids of [['pcc-a', 'pcc-nope'], ['pcc-a', 'pcc-s']]) {
        const err = await api.fail('UnTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ids, TagKey: ['env'] });
        expect([err.statusCode, err.code]).toEqual([400, 'InvalidInstanceIds.NotFound']);
      }
      expect((await tagsOf('pcc-a'))?.['env']).toBe('prod');
      // In its own region the same ID works: regions are kept apart, not merged.
      await api.call('UnTagResources', { RegionId: SH, ResourceType: PC, ResourceId: ['pcc-s'], TagKey: ['env'] });
      expect(await tagsOf('pcc-s')).toEqual({});
    });

    it('enforces 20 IDs and 20 keys per call', async () => {
      const ids = Array.from({ length: 21 }, (_, i) => `pcc-${i}`);
      const keys = Array.from({ length: 21 }, (_, i) => `k${i}`);
      expect((await api.fail('UnTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ids, TagKey: ['env'] })).code).toBe('NumberExceed.ResourceIds');
      expect((await api.fail('UnTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-c'], TagKey: keys })).code).toBe('NumberExceed.Tags');
      expect(Object.keys((await tagsOf('pcc-c')) ?? {})).toHaveLength(19);
    });

    it('applies the key rules: reserved prefixes are Forbidden.TagKeys, URLs and long keys IllegalParam.TagKey', async () => {
      const codeFor = async (key: string) => (await api.fail('UnTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-a'], TagKey: [key] })).code;
      expect(await codeFor('aliyun-owner')).toBe('Forbidden.TagKeys');
      expect(await codeFor('acs:rm:rgId')).toBe('Forbidden.TagKeys');
      expect(await codeFor('see-https://x')).toBe('IllegalParam.TagKey');
      expect(await codeFor('k'.repeat(129))).toBe('IllegalParam.TagKey');
      await api.call('UnTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-a'], TagKey: ['k'.repeat(128)] });
    });

    it('names the missing parameter, refuses other resource types and unknown regions', async () => {
      const noRegion = await api.fail('UnTagResources', { ResourceType: PC, ResourceId: ['pcc-a'], TagKey: ['env'] });
      expect([noRegion.statusCode, noRegion.code]).toEqual([400, 'MissingParameter']);
      expect(noRegion.message).toContain('RegionId');
      const noIds = await api.fail('UnTagResources', { RegionId: HZ, ResourceType: PC, TagKey: ['env'] });
      expect(noIds.message).toContain('ResourceId');
      const noKeys = await api.fail('UnTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-a'] });
      expect(noKeys.message).toContain('TagKey');
      expect((await api.fail('UnTagResources', { RegionId: HZ, ResourceType: 'Vpc', ResourceId: ['pcc-a'], TagKey: ['env'] })).code).toBe('InvalidInstanceType.NotFound');
      expect((await api.fail('UnTagResources', { RegionId: 'xx-nowhere-1', ResourceType: PC, ResourceId: ['pcc-a'], TagKey: ['env'] })).code).toBe('InvalidRegionId');
      expect((await api.fail('UnTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-a'], TagKey: ['env'], All: 'maybe' })).code).toBe('InvalidParameter');
    });
  });

  describe('TagResources', () => {
    it('adds and overwrites tags', async () => {
      await api.call('TagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-a', 'pcc-b'], Tag: [{ Key: 'env', Value: 'staging' }, { Key: 'team', Value: '' }] });
      expect(await tagsOf('pcc-a')).toMatchObject({ env: 'staging', team: '', owner: 'team-alpha' });
      expect(await tagsOf('pcc-b')).toEqual({ env: 'staging', team: '' });
      expect((await admin.getCalls({ action: 'TagResources' })).calls[0]?.added).toBe(4);
    });

    it('round-trips keys and values with spaces, +, *, ~ and non-ASCII through the signature', async () => {
      const key = 'a b*~+é(x)';
      const value = "中文 +*~'!";
      await api.call('TagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-b'], Tag: [{ Key: key, Value: value }] });
      expect((await tagsOf('pcc-b'))?.[key]).toBe(value);
      const listed = await api.call('ListTagResources', { RegionId: HZ, ResourceType: PC, Tag: [{ Key: key, Value: value }] });
      expect((listed['TagResources'] as unknown[]).length).toBe(1);
      await api.call('UnTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-b'], TagKey: [key] });
      expect(await tagsOf('pcc-b')).toEqual({ env: 'dev' });
    });

    it('refuses to push a resource past 20 tags, for every resource of the call', async () => {
      const err = await api.fail('TagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-b', 'pcc-c'], Tag: [{ Key: 'x1', Value: '1' }, { Key: 'x2', Value: '2' }] });
      expect(err.code).toBe('NumberExceed.Tags');
      expect(await tagsOf('pcc-b')).toEqual({ env: 'dev' });
      // Overwriting an existing key does not add one: 19 + 1 new = 20 is fine.
      await api.call('TagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-c'], Tag: [{ Key: 'k0', Value: 'new' }, { Key: 'x1', Value: '1' }] });
      expect(Object.keys((await tagsOf('pcc-c')) ?? {})).toHaveLength(20);
    });

    it('applies the key and value rules and refuses duplicated keys', async () => {
      const codeFor = async (tags: Array<{ Key: string; Value?: string }>) =>
        (await api.fail('TagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-b'], Tag: tags })).code;
      expect(await codeFor([{ Key: 'acs:x', Value: '1' }])).toBe('Forbidden.TagKeys');
      expect(await codeFor([{ Key: 'a', Value: 'http://x' }])).toBe('IllegalParam.TagValue');
      expect(await codeFor([{ Key: 'a', Value: 'v'.repeat(129) }])).toBe('IllegalParam.TagValue');
      expect(await codeFor([{ Key: 'a', Value: '1' }, { Key: 'a', Value: '2' }])).toBe('Forbidden.TagKey.Duplicated');
      expect(await codeFor(Array.from({ length: 21 }, (_, i) => ({ Key: `t${i}`, Value: '' })))).toBe('NumberExceed.Tags');
      expect(await tagsOf('pcc-b')).toEqual({ env: 'dev' });
    });
  });

  describe('ListTagResources', () => {
    const rows = (body: Record<string, unknown>) =>
      (body['TagResources'] as Array<Record<string, string>>).map((r) => `${r['ResourceId']} ${r['TagKey']}=${r['TagValue']}`);

    it('lists every tag of the given IDs, one row per pair', async () => {
      const body = await api.call('ListTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-b', 'pcc-a'] });
      expect(rows(body).sort()).toEqual(['pcc-a FinanceDept=fd-1', 'pcc-a acs:rm:rgId=rg-x', 'pcc-a env=prod', 'pcc-a owner=team-alpha', 'pcc-b env=dev']);
      expect((body['TagResources'] as Array<Record<string, string>>)[0]).toMatchObject({ ResourceType: PC, RegionNo: HZ });
      expect(body['NextToken']).toBe('');
    });

    it('filters by tag key (any value), by key and value, and intersects with IDs', async () => {
      expect(rows(await api.call('ListTagResources', { RegionId: HZ, ResourceType: PC, Tag: [{ Key: 'env' }] })).sort()).toEqual(['pcc-a env=prod', 'pcc-b env=dev']);
      expect(rows(await api.call('ListTagResources', { RegionId: HZ, ResourceType: PC, Tag: [{ Key: 'env', Value: 'dev' }] }))).toEqual(['pcc-b env=dev']);
      expect(rows(await api.call('ListTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-a', 'pcc-c'], Tag: [{ Key: 'env' }] }))).toEqual(['pcc-a env=prod']);
      expect(rows(await api.call('ListTagResources', { RegionId: SH, ResourceType: PC, Tag: [{ Key: 'env' }] }))).toEqual(['pcc-s env=prod']);
    });

    it('pages with NextToken and bounds MaxResults to 1..50', async () => {
      const seen: string[] = [];
      let token: string | undefined;
      do {
        const body = await api.call('ListTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-a', 'pcc-c'], MaxResults: 7, ...(token ? { NextToken: token } : {}) });
        expect((body['TagResources'] as unknown[]).length).toBeLessThanOrEqual(7);
        seen.push(...rows(body));
        token = (body['NextToken'] as string) || undefined;
      } while (token);
      expect(seen).toHaveLength(23);
      expect(new Set(seen).size).toBe(23);
      for (const bad of [0, 51]) {
        expect((await api.fail('ListTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-a'], MaxResults: bad })).code).toBe('InvalidParameter');
      }
    });

    it('refuses a call with neither IDs nor tags, a value without a key, and unknown IDs', async () => {
      expect((await api.fail('ListTagResources', { RegionId: HZ, ResourceType: PC })).code).toBe('BothEmpty.TagsAndResources');
      expect((await api.fail('ListTagResources', { RegionId: HZ, ResourceType: PC, Tag: [{ Value: 'prod' }] })).code).toBe('MissingParameter');
      expect((await api.fail('ListTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-s'] })).code).toBe('InvalidInstanceIds.NotFound');
    });
  });

  describe('ListVpcPeerConnections and GetVpcPeerConnectionAttribute', () => {
    const ids = (body: Record<string, unknown>) => (body['VpcPeerConnects'] as Array<Record<string, unknown>>).map((c) => c['InstanceId']);

    it('returns every documented attribute and the tags of each connection', async () => {
      const body = await api.call('ListVpcPeerConnections', {}, { RegionId: SH });
      expect(body).toMatchObject({ TotalCount: 1, MaxResults: 20, NextToken: '' });
      const item = (body['VpcPeerConnects'] as Array<Record<string, unknown>>)[0];
      expect(item).toMatchObject({
        InstanceId: 'pcc-s', Name: 'peer-s', RegionId: SH, AcceptingRegionId: HZ, Status: 'Accepting', BizStatus: 'Normal',
        GmtExpired: '2025-06-01T00:00:00Z', Bandwidth: 1024, Tags: [{ Key: 'env', Value: 'prod' }],
        Vpc: { VpcId: 'vpc-1' }, AcceptingVpc: { VpcId: 'vpc-5' },
      });
      for (const field of ['Description', 'GmtCreate', 'GmtModified', 'OwnerId', 'AcceptingOwnerUid', 'ResourceGroupId']) expect(item).toHaveProperty(field);
      expect((item?.['Vpc'] as Record<string, unknown>)['Ipv4Cidrs']).toEqual(expect.any(Array));
    });

    it('filters by InstanceId, VpcId (one side or the pair), Name, ResourceGroupId and Tags', async () => {
      expect(ids(await api.call('ListVpcPeerConnections', {}, { RegionId: HZ, InstanceId: 'pcc-b' }))).toEqual(['pcc-b']);
      expect(ids(await api.call('ListVpcPeerConnections', {}, { RegionId: HZ, VpcId: 'vpc-2' }))).toEqual(['pcc-a', 'pcc-b']);
      expect(ids(await api.call('ListVpcPeerConnections', {}, { RegionId: HZ, VpcId: 'vpc-3,vpc-2' }))).toEqual(['pcc-b']);
      expect(ids(await api.call('ListVpcPeerConnections', {}, { RegionId: HZ, Name: 'peer-c' }))).toEqual(['pcc-c']);
      expect(ids(await api.call('ListVpcPeerConnections', { ResourceGroupId: 'rg-y' }, { RegionId: HZ }))).toEqual(['pcc-b']);
      const tagged = await api.call('ListVpcPeerConnections', { Tags: [{ Key: 'env', Value: 'prod' }] }, { RegionId: HZ });
      expect([ids(tagged), tagged['TotalCount']]).toEqual([['pcc-a'], 1]);
      expect(ids(await api.call('ListVpcPeerConnections', { Tags: [{ Key: 'env' }] }, {}))).toEqual(['pcc-a', 'pcc-b', 'pcc-s']);
    });

    it('bounds MaxResults to 1..100 and refuses a forged NextToken', async () => {
      for (const bad of [0, 101]) {
        expect((await api.fail('ListVpcPeerConnections', {}, { RegionId: HZ, MaxResults: bad })).code).toBe('InvalidParameter');
      }
      expect((await api.fail('ListVpcPeerConnections', {}, { RegionId: HZ, NextToken: 'bm9wZQ' })).code).toBe('InvalidParameter');
      const page = await api.call('ListVpcPeerConnections', {}, { RegionId: HZ, MaxResults: 1 });
      expect([ids(page).length, page['TotalCount']]).toEqual([1, 3]);
      expect(page['NextToken']).not.toBe('');
    });

    it('gets one connection, and answers an unknown one with 400 ResourceNotFound.InstanceId', async () => {
      const body = await api.call('GetVpcPeerConnectionAttribute', {}, { InstanceId: 'pcc-a' });
      expect(body).toMatchObject({ InstanceId: 'pcc-a', RegionId: HZ, Name: 'peer-a', ResourceGroupId: 'rg-x' });
      expect(body['Tags']).toEqual(expect.arrayContaining([{ Key: 'owner', Value: 'team-alpha' }]));
      const err = await api.fail('GetVpcPeerConnectionAttribute', {}, { InstanceId: 'pcc-gone' });
      expect([err.statusCode, err.code]).toEqual([400, 'ResourceNotFound.InstanceId']);
      expect((await api.fail('GetVpcPeerConnectionAttribute', {}, {})).code).toBe('MissingParameter');
    });

    it('Get is central: it ignores a RegionId and answers with the connection\'s own region, LinkType and ManagedService', async () => {
      const body = await api.call('GetVpcPeerConnectionAttribute', {}, { InstanceId: 'pcc-s', RegionId: HZ });
      expect(body).toMatchObject({ InstanceId: 'pcc-s', RegionId: SH, LinkType: 'Gold', ManagedService: '' });
      const [listed] = (await api.call('ListVpcPeerConnections', {}, { RegionId: SH }))['VpcPeerConnects'] as Record<string, unknown>[];
      expect(listed).toMatchObject({ LinkType: 'Gold', ManagedService: '' });
    });

    it('ListVpcPeerConnections takes at most 10 Tags (metadata), or 20 when the emulator is told the descriptions are right', async () => {
      const tags = (n: number) => Array.from({ length: n }, (_, i) => ({ Key: `k${i}` }));
      expect(((await api.call('ListVpcPeerConnections', { Tags: tags(10) }, { RegionId: HZ }))['VpcPeerConnects'] as unknown[]).length).toBe(1);
      expect((await api.fail('ListVpcPeerConnections', { Tags: tags(11) }, { RegionId: HZ })).code).toBe('NumberExceed.Tags');
      await admin.setBehaviour({ limits: { listConnectionsTags: 20 } });
      expect(((await api.call('ListVpcPeerConnections', { Tags: tags(19) }, { RegionId: HZ }))['VpcPeerConnects'] as unknown[]).length).toBe(1);
      expect((await api.fail('ListVpcPeerConnections', { Tags: tags(21) }, { RegionId: HZ })).code).toBe('NumberExceed.Tags');
    });
  });

  describe('TagResources Value and ListTagResources Category', () => {
    it('TagResources requires Tag.N.Value (an empty one is fine)', async () => {
      const err = await api.fail('TagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-b'], 'Tag.1.Key': 'novalue' });
      expect([err.code, err.data?.['Message']]).toEqual(['MissingParameter', expect.stringContaining('Tag.1.Value')]);
      await api.call('TagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-b'], Tag: [{ Key: 'empty', Value: '' }] });
      expect((await tagsOf('pcc-b'))?.['empty']).toBe('');
    });

    it('Category All lists every tag, Custom none of the system ones, System only those; others are refused', async () => {
      const keys = async (Category?: string) =>
        ((await api.call('ListTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-a'], ...(Category ? { Category } : {}) }))['TagResources'] as Array<{ TagKey: string }>)
          .map((r) => r.TagKey).sort();
      expect(await keys()).toEqual(['FinanceDept', 'acs:rm:rgId', 'env', 'owner']);
      expect(await keys('All')).toEqual(await keys());
      expect(await keys('Custom')).toEqual(['FinanceDept', 'env', 'owner']);
      expect(await keys('System')).toEqual(['acs:rm:rgId']);
      expect((await api.fail('ListTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-a'], Category: 'custom' })).code).toBe('InvalidParameter');
    });

    it('ListTagResources answers InvalidTagKey for a malformed filter key', async () => {
      const err = await api.fail('ListTagResources', { RegionId: HZ, ResourceType: PC, Tag: [{ Key: 'x'.repeat(129) }] });
      expect([err.statusCode, err.code]).toEqual([400, 'InvalidTagKey']);
    });
  });
});

describe('the behaviour admin route', () => {
  it('reads and replaces the behaviour, and refuses unknown fields and values naming them', async () => {
    expect(await admin.getBehaviour()).toEqual({ deleted: { get: 'found', list: 'listed', tags: 'ok' }, limits: { listConnectionsTags: 10 }, paging: { repeat: 'none' } });
    expect(await admin.setBehaviour({ deleted: { tags: 'incorrect-status' } })).toEqual({
      deleted: { get: 'found', list: 'listed', tags: 'incorrect-status' }, limits: { listConnectionsTags: 10 }, paging: { repeat: 'none' },
    });
    await expect(admin.setBehaviour({ deleted: { tags: 'sometimes' } } as never)).rejects.toThrow(/behaviour\.deleted\.tags: must be one of ok, not-found, incorrect-status/);
    await expect(admin.setBehaviour({ limits: { listConnectionsTags: 15 } } as never)).rejects.toThrow(/must be 10 or 20/);
    await expect(admin.setBehaviour({ deletd: {} } as never)).rejects.toThrow(/behaviour\.deletd: unknown field/);
  });
});
