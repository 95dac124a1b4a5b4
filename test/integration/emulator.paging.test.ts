import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type EmulatorAdmin, type EmulatorResource, type RunningEmulator } from '../../src/emulator/index.js';
import { sdkCaller, type SdkCaller } from './emulator.support.js';

const REGIONS = ['cn-hangzhou', 'cn-shanghai', 'cn-beijing'];
const COUNT = 10_000;

let emu: RunningEmulator;
let admin: EmulatorAdmin;
let api: SdkCaller;
let estate: EmulatorResource[];

beforeAll(async () => {
  emu = await startEmulator({ generate: { count: COUNT, seed: 2024, regions: REGIONS }, quotas: { ListVpcPeerConnections: 1e9, ListTagResources: 1e9 } });
  admin = createEmulatorAdmin(emu.url);
  api = sdkCaller(emu.url);
  estate = (await admin.getState()).resources;
});
afterAll(async () => {
  await emu.close();
});

interface Listed {
  ids: string[];
  totals: unknown[];
  pages: number;
}

async function listAll(caller: SdkCaller, body: Record<string, unknown>, query: Record<string, unknown> = {}, between?: (page: number) => Promise<void>): Promise<Listed> {
  const out: Listed = { ids: [], totals: [], pages: 0 };
  let token = '';
  do {
    const res = await caller.call('ListVpcPeerConnections', query, { ...body, ...(token ? { NextToken: token } : {}) });
    out.ids.push(...(res['VpcPeerConnects'] as Array<{ InstanceId: string }>).map((c) => c.InstanceId));
    out.totals.push(res['TotalCount']);
    out.pages++;
    token = res['NextToken'] as string;
    if (between) await between(out.pages);
  } while (token);
  return out;
}

describe('emulator paging over a 10,000-resource estate', () => {
  it('returns every connection of each region exactly once, with the right TotalCount (V3, 100 per page)', async () => {
    expect(estate).toHaveLength(COUNT);
    for (const region of REGIONS) {
      const expected = estate.filter((r) => r.region === region).map((r) => r.id);
      const listed = await listAll(api, { RegionId: region, MaxResults: 100 });
      expect(listed.ids).toHaveLength(expected.length);
      expect(new Set(listed.ids)).toEqual(new Set(expected));
      expect(new Set(listed.totals)).toEqual(new Set([expected.length]));
      expect(listed.pages).toBe(Math.ceil(expected.length / 100));
    }
  });

  it('returns the whole estate exactly once without RegionId (V2, odd page size)', async () => {
    const listed = await listAll(sdkCaller(emu.url, { v2: true }), { MaxResults: 97 });
    expect(listed.ids).toHaveLength(COUNT);
    expect(new Set(listed.ids)).toEqual(new Set(estate.map((r) => r.id)));
    expect(listed.totals[0]).toBe(COUNT);
  });

  it('pages a tag-filtered listing exactly once, keeping the first TotalCount', async () => {
    const expected = estate.filter((r) => r.region === 'cn-shanghai' && r.tags['owner'] === 'unknown').map((r) => r.id);
    expect(expected.length).toBeGreaterThan(50);
    const listed = await listAll(api, { RegionId: 'cn-shanghai', MaxResults: 25 }, { Tags: [{ Key: 'owner', Value: 'unknown' }] });
    expect(listed.ids).toEqual(expected);
    expect(new Set(listed.totals)).toEqual(new Set([expected.length]));
  });

  it('pages ListTagResources by tag key exactly once', async () => {
    const expected = estate.filter((r) => r.region === 'cn-beijing' && 'FinanceDept' in r.tags).map((r) => `${r.id}=${r.tags['FinanceDept']}`);
    const seen: string[] = [];
    let token = '';
    do {
      const res = await api.call('ListTagResources', {
        RegionId: 'cn-beijing', ResourceType: 'PeerConnection', Tag: [{ Key: 'FinanceDept' }], MaxResults: 50, ...(token ? { NextToken: token } : {}),
      });
      seen.push(...(res['TagResources'] as Array<Record<string, string>>).map((t) => `${t['ResourceId']}=${t['TagValue']}`));
      token = res['NextToken'] as string;
    } while (token);
    expect(seen).toEqual(expected);
  });

  it('keeps its place when connections are deleted between pages', async () => {
    const region = estate.filter((r) => r.region === 'cn-hangzhou').map((r) => r.id);
    const deletedAhead = region.slice(500, 520);
    const deletedBehind = region.slice(10, 20);
    const listed = await listAll(api, { RegionId: 'cn-hangzhou', MaxResults: 100 }, {}, async (page) => {
      if (page === 2) await admin.deleteResources([...deletedAhead, ...deletedBehind]);
    });
    const gone = new Set(deletedAhead);
    expect(listed.ids).toEqual(region.filter((id) => !gone.has(id)));
    await admin.upsertResources(estate.filter((r) => deletedAhead.includes(r.id) || deletedBehind.includes(r.id)));
  });

  it('refuses a NextToken issued before the estate was replaced', async () => {
    const scratch = await startEmulator({ generate: { count: 300, seed: 1 } });
    try {
      const caller = sdkCaller(scratch.url);
      const first = await caller.call('ListVpcPeerConnections', {}, { RegionId: 'cn-hangzhou', MaxResults: 10 });
      await createEmulatorAdmin(scratch.url).generate({ count: 300, seed: 2 });
      const err = await caller.fail('ListVpcPeerConnections', {}, { RegionId: 'cn-hangzhou', MaxResults: 10, NextToken: first['NextToken'] });
      expect([err.statusCode, err.code]).toEqual([400, 'InvalidParameter']);
      expect(err.message).toContain('NextToken');
    } finally {
      await scratch.close();
    }
  });
});
