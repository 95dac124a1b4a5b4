// One million generated connections in-process: pages and point operations must stay correct at that size.
// Timings are not asserted; test/bench/emulator-paging.ts prints them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, generateEstate, startEmulator, type EmulatorAdmin, type RunningEmulator } from '../../src/emulator/index.js';
import { sdkCaller, type SdkCaller } from './emulator.support.js';

const COUNT = 1_000_000;
const SEED = 31;
const REGIONS = ['cn-hangzhou', 'cn-shanghai', 'cn-beijing', 'ap-southeast-1'];

let emu: RunningEmulator;
let admin: EmulatorAdmin;
let api: SdkCaller;

beforeAll(async () => {
  emu = await startEmulator({ generate: { count: COUNT, seed: SEED, regions: REGIONS } });
  admin = createEmulatorAdmin(emu.url);
  api = sdkCaller(emu.url);
}, 120_000);
afterAll(async () => {
  await emu.close();
});

describe('emulator with 1,000,000 connections', () => {
  it('holds them all and pages a region from the start, in generation order, without repeats', async () => {
    expect((await admin.health()).resources).toBe(COUNT);
    const expected = [...generateEstate(2000, SEED, REGIONS)].filter((r) => r.region === 'cn-shanghai').map((r) => r.id);
    const seen: string[] = [];
    let token = '';
    for (let page = 0; page < 5; page++) {
      const res = await api.call('ListVpcPeerConnections', {}, { RegionId: 'cn-shanghai', MaxResults: 100, ...(token ? { NextToken: token } : {}) });
      expect(res['TotalCount']).toBe(COUNT / REGIONS.length);
      seen.push(...(res['VpcPeerConnects'] as Array<{ InstanceId: string }>).map((c) => c.InstanceId));
      token = res['NextToken'] as string;
    }
    expect(seen).toEqual(expected.slice(0, 500));
  });

  it('resumes near the end of a region from a token and stops at the last connection', async () => {
    const first = await api.call('ListVpcPeerConnections', {}, { RegionId: 'ap-southeast-1', MaxResults: 100 });
    // Forge the position of a late page the way the emulator encodes it, to reach the tail without 2,500 calls.
    const fields = Buffer.from(first['NextToken'] as string, 'base64url').toString('utf8').split('|');
    fields[3] = String(COUNT / REGIONS.length - 150);
    const late = Buffer.from(fields.join('|'), 'utf8').toString('base64url');
    const a = await api.call('ListVpcPeerConnections', {}, { RegionId: 'ap-southeast-1', MaxResults: 100, NextToken: late });
    const b = await api.call('ListVpcPeerConnections', {}, { RegionId: 'ap-southeast-1', MaxResults: 100, NextToken: a['NextToken'] });
    expect(b['NextToken']).toBe('');
    const ids = [...(a['VpcPeerConnects'] as Array<{ InstanceId: string }>), ...(b['VpcPeerConnects'] as Array<{ InstanceId: string }>)].map((c) => c.InstanceId);
    expect(ids).toHaveLength(150);
    const tail = (await admin.getState({ ids })).resources;
    expect(tail.every((r) => r.region === 'ap-southeast-1')).toBe(true);
    expect(tail.map((r) => Number(/-(\d+)$/.exec(r.name ?? '')?.[1]))).toEqual(Array.from({ length: 150 }, (_, k) => COUNT - 600 + 3 + 4 * k));
  });

  it('untags 20 connections in one call and reads them back', async () => {
    const ids = [...generateEstate(80, SEED, REGIONS)].filter((r) => r.region === 'cn-hangzhou').map((r) => r.id);
    expect(ids).toHaveLength(20);
    await api.call('UnTagResources', { RegionId: 'cn-hangzhou', ResourceType: 'PeerConnection', ResourceId: ids, TagKey: ['env'] });
    const after = (await admin.getState({ ids })).resources;
    expect(after.filter((r) => 'env' in r.tags)).toEqual([]);
    const got = await api.call('GetVpcPeerConnectionAttribute', {}, { InstanceId: ids[19] });
    expect(got['InstanceId']).toBe(ids[19]);
  });
});
