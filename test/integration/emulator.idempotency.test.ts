import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type EmulatorAdmin, type RunningEmulator } from '../../src/emulator/index.js';
import { sdkCaller, type SdkCaller } from './emulator.support.js';

const HZ = 'cn-hangzhou';
const PC = 'PeerConnection';
const FIXTURE = {
  resources: [
    { id: 'pcc-1', region: HZ, tags: { env: 'prod', owner: 'x', tmp: '1' } },
    { id: 'pcc-2', region: HZ, tags: { env: 'dev', owner: 'y' } },
  ],
};

// The emulator clock runs at real time plus an offset the tests move (signatures still need real time within 15 min).
let offset = 0;
let emu: RunningEmulator;
let admin: EmulatorAdmin;
let api: SdkCaller;

beforeEach(async () => {
  offset = 0;
  emu = await startEmulator({ fixture: FIXTURE, clientTokenTtlMs: 60_000, now: () => Date.now() + offset });
  admin = createEmulatorAdmin(emu.url);
  api = sdkCaller(emu.url);
});
afterEach(async () => {
  await emu.close();
});

async function tagsOf(id: string): Promise<Record<string, string> | undefined> {
  return (await admin.getState({ ids: [id] })).resources[0]?.tags;
}

describe('emulator ClientToken', () => {
  it('replays the first response for the same token and parameters, and changes nothing', async () => {
    const untag = { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-1', 'pcc-2'], TagKey: ['env', 'owner'], ClientToken: 'tok-1' };
    const first = await api.call('UnTagResources', untag);
    // Put a removed tag back: a replay must not remove it again.
    await api.call('TagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-1'], Tag: [{ Key: 'env', Value: 'back' }] });
    // Same parameter set in another order, signed the other way: still the same request.
    const again = await sdkCaller(emu.url, { v2: true }).call('UnTagResources', { ...untag, ResourceId: ['pcc-2', 'pcc-1'], TagKey: ['owner', 'env'] });
    expect(again).toEqual(first);
    expect(await tagsOf('pcc-1')).toEqual({ tmp: '1', env: 'back' });
    const { calls } = await admin.getCalls({ action: 'UnTagResources' });
    expect(calls.map((c) => [c.replayed, c.applied, c.removed, c.requestId])).toEqual([
      [false, true, 4, first['RequestId']],
      [true, false, 0, first['RequestId']],
    ]);
    const stats = await admin.getStats();
    expect(stats.byAction['UnTagResources']).toMatchObject({ total: 2, replayed: 1, tagsRemoved: 4 });
  });

  it('answers the same token with other parameters with 400 IdempotentParameterMismatch', async () => {
    await api.call('UnTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-1'], TagKey: ['env'], ClientToken: 'tok-2' });
    for (const other of [
      { ResourceId: ['pcc-2'], TagKey: ['env'] },
      { ResourceId: ['pcc-1'], TagKey: ['owner'] },
      { ResourceId: ['pcc-1'], TagKey: ['env'], All: true },
    ]) {
      const err = await api.fail('UnTagResources', { RegionId: HZ, ResourceType: PC, ClientToken: 'tok-2', ...other });
      expect([err.statusCode, err.code]).toEqual([400, 'IdempotentParameterMismatch']);
    }
    expect(await tagsOf('pcc-2')).toEqual({ env: 'dev', owner: 'y' });
  });

  it('keeps tokens per action and honours them on TagResources too', async () => {
    const tag = { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-2'], Tag: [{ Key: 'a', Value: '1' }], ClientToken: 'tok-3' };
    const first = await api.call('TagResources', tag);
    expect(await api.call('TagResources', tag)).toEqual(first);
    // The same token on UnTagResources is another request, not a mismatch.
    await api.call('UnTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-2'], TagKey: ['a'], ClientToken: 'tok-3' });
    expect(await tagsOf('pcc-2')).toEqual({ env: 'dev', owner: 'y' });
    const err = await api.fail('TagResources', { ...tag, Tag: [{ Key: 'a', Value: '2' }] });
    expect(err.code).toBe('IdempotentParameterMismatch');
  });

  it('forgets a token after its TTL', async () => {
    const untag = { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-1'], TagKey: ['tmp'], ClientToken: 'tok-4' };
    await api.call('UnTagResources', untag);
    await api.call('TagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-1'], Tag: [{ Key: 'tmp', Value: '2' }] });
    offset = 61_000;
    await api.call('UnTagResources', untag);
    expect(await tagsOf('pcc-1')).toEqual({ env: 'prod', owner: 'x' });
    expect((await admin.getCalls({ action: 'UnTagResources' })).calls.map((c) => c.replayed)).toEqual([false, false]);
  });

  it('remembers only successes: a failed call can be retried with the same token', async () => {
    const untag = { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-9'], TagKey: ['env'], ClientToken: 'tok-5' };
    expect((await api.fail('UnTagResources', untag)).code).toBe('InvalidInstanceIds.NotFound');
    await admin.upsertResources([{ id: 'pcc-9', region: HZ, tags: { env: 'prod' } }]);
    await api.call('UnTagResources', untag);
    expect(await tagsOf('pcc-9')).toEqual({});
  });

  it('refuses a malformed token', async () => {
    const err = await api.fail('UnTagResources', { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-1'], TagKey: ['env'], ClientToken: 'x'.repeat(65) });
    expect(err.code).toBe('InvalidParameter');
    expect(err.message).toContain('ClientToken');
  });
});
