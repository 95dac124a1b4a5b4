import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, generateEstate, startEmulator, type EmulatorAdmin, type RunningEmulator } from '../../src/emulator/index.js';
import { sdkCaller, type SdkCaller } from './emulator.support.js';

const HZ = 'cn-hangzhou';
const SH = 'cn-shanghai';
const PC = 'PeerConnection';

let emu: RunningEmulator;
let admin: EmulatorAdmin;
let api: SdkCaller;

beforeEach(async () => {
  emu = await startEmulator({ generate: { count: 60, seed: 5 }, maxCallLog: 5 });
  admin = createEmulatorAdmin(emu.url);
  api = sdkCaller(emu.url);
});
afterEach(async () => {
  await emu.close();
});

describe('emulator admin API', () => {
  it('reports health', async () => {
    expect(await admin.health()).toEqual({ status: 'ok', resources: 60 });
  });

  it('serves the state as the generator made it, filtered by region and ids', async () => {
    const all = (await admin.getState()).resources;
    const generated = [...generateEstate(60, 5)];
    expect([...all].sort((a, b) => a.id.localeCompare(b.id))).toEqual([...generated].sort((a, b) => a.id.localeCompare(b.id)));
    const sh = (await admin.getState({ region: SH })).resources;
    expect(sh.map((r) => r.id)).toEqual(generated.filter((r) => r.region === SH).map((r) => r.id));
    const two = generated.slice(3, 5).map((r) => r.id);
    expect((await admin.getState({ ids: [...two, 'pcc-missing'] })).resources.map((r) => r.id)).toEqual(two);
  });

  it('replaces the estate with PUT, and a fixture may carry system tags the API itself refuses', async () => {
    await admin.putState({ resources: [{ id: 'pcc-f', region: SH, tags: { 'acs:rm:rgId': 'rg-1', env: 'dev' } }] });
    expect((await admin.health()).resources).toBe(1);
    const listed = await api.call('ListTagResources', { RegionId: SH, ResourceType: PC, ResourceId: ['pcc-f'] });
    expect((listed['TagResources'] as unknown[]).length).toBe(2);
    const err = await api.fail('TagResources', { RegionId: SH, ResourceType: PC, ResourceId: ['pcc-f'], Tag: [{ Key: 'acs:x', Value: '1' }] });
    expect(err.code).toBe('Forbidden.TagKeys');
  });

  it('refuses invalid state documents, naming the problem, and keeps the old state', async () => {
    await expect(admin.putState({ resources: [{ id: '', region: HZ, tags: {} }] })).rejects.toThrow(/resources\[0\].*id/);
    await expect(admin.putState({ resources: [{ id: 'a', region: HZ, tags: { k: 1 as unknown as string } }] })).rejects.toThrow(/must have a string value/);
    await expect(admin.putState({ resources: [{ id: 'a', region: HZ, tags: {} }, { id: 'a', region: SH, tags: {} }] })).rejects.toThrow(/duplicate/);
    const res = await fetch(`${emu.url}/_emulator/state`, { method: 'PUT', body: 'not json' });
    expect(res.status).toBe(400);
    await res.arrayBuffer();
    expect((await admin.health()).resources).toBe(60);
  });

  it('upserts and deletes single resources; deleted ones are unknown to the API', async () => {
    await admin.upsertResources([{ id: 'pcc-new', region: HZ, tags: { a: '1' }, name: 'n' }]);
    const got = await api.call('GetVpcPeerConnectionAttribute', {}, { InstanceId: 'pcc-new' });
    expect(got).toMatchObject({ Name: 'n', Tags: [{ Key: 'a', Value: '1' }] });
    expect(await admin.deleteResources(['pcc-new', 'pcc-never'])).toEqual({ removed: 1 });
    const err = await api.fail('UnTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-new'], TagKey: ['a'] });
    expect(err.code).toBe('InvalidInstanceIds.NotFound');
  });

  it('regenerates the estate on demand', async () => {
    expect(await admin.generate({ count: 10, seed: 8, regions: ['ap-southeast-1'] })).toEqual({ generated: 10 });
    const state = (await admin.getState()).resources;
    expect(state.map((r) => r.id)).toEqual([...generateEstate(10, 8, ['ap-southeast-1'])].map((r) => r.id));
    await admin.generate({ count: 5, seed: 9, replace: false });
    expect((await admin.health()).resources).toBe(15);
  });

  it('logs calls with normalised params, filters by action and seq, caps the log and counts what it dropped', async () => {
    const [a, b] = (await admin.getState({ region: HZ })).resources;
    await api.call('UnTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: [b?.id, a?.id], TagKey: ['env', 'nope'], ClientToken: 'log-1' });
    await api.call('ListVpcPeerConnections', {}, { RegionId: HZ, MaxResults: 2 });
    const { calls } = await admin.getCalls({ action: 'UnTagResources' });
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({
      action: 'UnTagResources', region: HZ, clientToken: 'log-1', status: 200, code: 'OK', applied: true, removed: 2,
      accessKeyId: 'tagwarden-test', signature: 'v3',
      params: { RegionId: HZ, ResourceType: PC, ResourceId: [a?.id, b?.id].sort(), TagKey: ['env', 'nope'], All: false },
    });
    expect(calls[0]?.at).toBeGreaterThan(0);
    const later = await admin.getCalls({ since: calls[0]?.seq ?? 0 });
    expect(later.calls.map((c) => c.action)).toEqual(['ListVpcPeerConnections']);
    for (let i = 0; i < 6; i++) await api.call('ListVpcPeerConnections', {}, { RegionId: SH, MaxResults: 1 });
    const capped = await admin.getCalls();
    expect(capped.calls).toHaveLength(5);
    expect(capped.dropped).toBe(3);
    expect(capped.calls.map((c) => c.seq)).toEqual([4, 5, 6, 7, 8]);
    await admin.clearCalls();
    expect(await admin.getCalls()).toEqual({ calls: [], dropped: 0 });
  });

  it('counts calls by action, code and region, with tags removed per region', async () => {
    const [a] = (await admin.getState({ region: HZ })).resources;
    const [s] = (await admin.getState({ region: SH })).resources;
    await api.call('UnTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: [a?.id], All: true });
    await api.call('UnTagResources', { RegionId: SH, ResourceType: PC, ResourceId: [s?.id], TagKey: ['env'] });
    await api.fail('UnTagResources', { RegionId: SH, ResourceType: PC, ResourceId: ['pcc-zzz'], TagKey: ['env'] });
    const stats = await admin.getStats();
    const removedHz = Object.keys(a?.tags ?? {}).length;
    expect(stats.tagsRemoved).toBe(removedHz + 1);
    expect(stats.tagsRemovedByRegion).toEqual({ [HZ]: removedHz, [SH]: 1 });
    expect(stats.byAction['UnTagResources']?.codes).toEqual({ OK: 2, 'InvalidInstanceIds.NotFound': 1 });
    expect(stats.byRegion[SH]).toMatchObject({ total: 2, tagsRemoved: 1 });
    expect(stats.resources).toEqual({ [HZ]: 20, [SH]: 20, 'cn-beijing': 20 });
    await admin.resetStats();
    expect((await admin.getStats()).total).toBe(0);
  });

  it('reads and replaces the fault config, refusing invalid ones', async () => {
    expect(await admin.getFaults()).toEqual({});
    await admin.setFaults({ reset: 0.25, seed: 3 });
    expect(await admin.getFaults()).toEqual({ reset: 0.25, seed: 3 });
    await expect(admin.setFaults({ reset: 2 })).rejects.toThrow(/400/);
    expect(await admin.getFaults()).toEqual({ reset: 0.25, seed: 3 });
  });

  it('answers unknown admin routes with 404', async () => {
    const res = await fetch(`${emu.url}/_emulator/nothing`);
    expect(res.status).toBe(404);
    await res.arrayBuffer();
  });
});
