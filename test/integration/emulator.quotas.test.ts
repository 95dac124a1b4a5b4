import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type EmulatorAdmin, type RunningEmulator } from '../../src/emulator/index.js';
import { sdkCaller, type SdkCaller } from './emulator.support.js';

const HZ = 'cn-hangzhou';
const SH = 'cn-shanghai';
const PC = 'PeerConnection';
const WINDOW = 60_000;

// A frozen emulator clock in the middle of a window: no window boundary can pass by accident.
// Signature timestamps are still checked against it, so it stays near real time.
let clock = 0;
let emu: RunningEmulator;
let admin: EmulatorAdmin;
let api: SdkCaller;

beforeEach(async () => {
  clock = Math.floor(Date.now() / WINDOW) * WINDOW + WINDOW / 2;
  emu = await startEmulator({
    fixture: { resources: [{ id: 'pcc-h', region: HZ, tags: { a: '1', b: '2', c: '3', d: '4' } }, { id: 'pcc-s', region: SH, tags: { a: '1' } }] },
    quotas: { UnTagResources: 2, ListVpcPeerConnections: 3 },
    regionQuotas: { [SH]: { UnTagResources: 1 } },
    quotaWindowMs: WINDOW,
    now: () => clock,
  });
  admin = createEmulatorAdmin(emu.url);
  api = sdkCaller(emu.url);
});
afterEach(async () => {
  await emu.close();
});

const untag = (region: string, id: string, key: string) => ({ RegionId: region, ResourceType: PC, ResourceId: [id], TagKey: [key] });

describe('emulator quotas', () => {
  it('throttles the call past the quota of its (region, action) with 400 Throttling.User, not applied', async () => {
    await api.call('UnTagResources', untag(HZ, 'pcc-h', 'a'));
    await api.call('UnTagResources', untag(HZ, 'pcc-h', 'b'));
    const err = await api.fail('UnTagResources', untag(HZ, 'pcc-h', 'c'));
    expect([err.name, err.statusCode, err.code]).toEqual(['ThrottlingError', 400, 'Throttling.User']);
    expect((await admin.getState({ ids: ['pcc-h'] })).resources[0]?.tags).toEqual({ c: '3', d: '4' });
    // Another action and another region have their own counters; the region override applies there.
    await api.call('ListVpcPeerConnections', {}, { RegionId: HZ });
    await api.call('UnTagResources', untag(SH, 'pcc-s', 'a'));
    expect((await api.fail('UnTagResources', untag(SH, 'pcc-s', 'b'))).code).toBe('Throttling.User');
    const stats = await admin.getStats();
    expect(stats.byAction['UnTagResources']?.codes).toEqual({ OK: 3, 'Throttling.User': 2 });
    expect(stats.byRegion[HZ]?.byAction['UnTagResources']?.codes['Throttling.User']).toBe(1);
    expect((await admin.getQuotas()).current).toMatchObject({ [`${HZ}|UnTagResources`]: 3, [`${SH}|UnTagResources`]: 2 });
  });

  it('opens a fresh window at the next multiple of the window length', async () => {
    for (let i = 0; i < 3; i++) await api.call('ListVpcPeerConnections', {}, { RegionId: HZ });
    expect((await api.fail('ListVpcPeerConnections', {}, { RegionId: HZ })).code).toBe('Throttling.User');
    clock = Math.ceil(clock / WINDOW) * WINDOW; // exactly the boundary
    await api.call('ListVpcPeerConnections', {}, { RegionId: HZ });
  });

  it('takes new quotas through the admin API, resetting the counters', async () => {
    await api.call('UnTagResources', untag(HZ, 'pcc-h', 'a'));
    await api.call('UnTagResources', untag(HZ, 'pcc-h', 'b'));
    const state = await admin.setQuotas({ quotas: { UnTagResources: 1 }, regionQuotas: {} });
    expect(state.quotas.UnTagResources).toBe(1);
    expect(state.current).toEqual({});
    await api.call('UnTagResources', untag(HZ, 'pcc-h', 'c'));
    expect((await api.fail('UnTagResources', untag(HZ, 'pcc-h', 'd'))).code).toBe('Throttling.User');
    await expect(admin.setQuotas({ quotas: { Nope: 1 } as never })).rejects.toThrow(/400/);
  });
});
