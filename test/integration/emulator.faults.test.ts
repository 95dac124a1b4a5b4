import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type EmulatorAdmin, type FaultConfig, type RunningEmulator } from '../../src/emulator/index.js';
import { craftV3, sdkCaller, type SdkCaller } from './emulator.support.js';

const HZ = 'cn-hangzhou';
const BJ = 'cn-beijing';
const PC = 'PeerConnection';

let emu: RunningEmulator;
let admin: EmulatorAdmin;
let api: SdkCaller;

beforeEach(async () => {
  emu = await startEmulator({
    fixture: { resources: [{ id: 'pcc-h', region: HZ, tags: { a: '1', b: '2' } }, { id: 'pcc-b', region: BJ, tags: { a: '1' } }] },
  });
  admin = createEmulatorAdmin(emu.url);
  api = sdkCaller(emu.url);
});
afterEach(async () => {
  await emu.close();
});

const untagA = { RegionId: HZ, ResourceType: PC, ResourceId: ['pcc-h'], TagKey: ['a'], ClientToken: 'fault-tok' };
const tagsOfH = async () => (await admin.getState({ ids: ['pcc-h'] })).resources[0]?.tags;
const only = (config: FaultConfig): Promise<FaultConfig> => admin.setFaults({ actions: ['UnTagResources'], ...config });

describe('emulator faults', () => {
  it('serviceUnavailable: 503 ServiceUnavailable, not applied', async () => {
    await only({ serviceUnavailable: 1 });
    const err = await api.fail('UnTagResources', untagA);
    expect([err.name, err.statusCode, err.code]).toEqual(['ServerError', 503, 'ServiceUnavailable']);
    expect(await tagsOfH()).toEqual({ a: '1', b: '2' });
  });

  it('internalError: 500 InternalError, not applied', async () => {
    await only({ internalError: 1 });
    const err = await api.fail('UnTagResources', untagA);
    expect([err.statusCode, err.code]).toEqual([500, 'InternalError']);
    expect(await tagsOfH()).toEqual({ a: '1', b: '2' });
  });

  it('throttle: 400 Throttling.User whatever the quota, not applied', async () => {
    await only({ throttle: 1 });
    const err = await api.fail('UnTagResources', untagA);
    expect([err.name, err.statusCode, err.code]).toEqual(['ThrottlingError', 400, 'Throttling.User']);
    expect(await tagsOfH()).toEqual({ a: '1', b: '2' });
  });

  it('reset: the socket dies without a response and nothing is applied', async () => {
    await only({ reset: 1 });
    const err = await api.fail('UnTagResources', untagA);
    expect(err.statusCode).toBeUndefined();
    expect(err.message).toMatch(/socket hang up|ECONNRESET|closed/i);
    expect(await tagsOfH()).toEqual({ a: '1', b: '2' });
    const { calls } = await admin.getCalls({ action: 'UnTagResources' });
    expect(calls[0]).toMatchObject({ fault: 'reset', status: 0, applied: false, removed: 0 });
  });

  it('applyThenDrop: applied and remembered, then the socket dies; the retry with the same token is replayed', async () => {
    await only({ applyThenDrop: 1 });
    const err = await api.fail('UnTagResources', untagA);
    expect(err.statusCode).toBeUndefined();
    expect(await tagsOfH()).toEqual({ b: '2' });
    await admin.setFaults({});
    const retry = await api.call('UnTagResources', untagA);
    expect(retry['Success']).toBe(true);
    const { calls } = await admin.getCalls({ action: 'UnTagResources' });
    expect(calls.map((c) => [c.fault, c.status, c.applied, c.replayed, c.removed])).toEqual([
      ['applyThenDrop', 0, true, false, 1],
      [null, 200, false, true, 0],
    ]);
    expect(calls[1]?.requestId).toBe(calls[0]?.requestId);
    expect((await admin.getStats()).faults).toEqual({ applyThenDrop: 1 });
  });

  it('html502: HTTP 502 with an HTML body, which the SDK cannot parse; not applied', async () => {
    await only({ html502: 1 });
    const err = await api.fail('UnTagResources', untagA);
    expect(err.name).toBe('SyntaxError');
    expect(await tagsOfH()).toEqual({ a: '1', b: '2' });
    // The same call seen raw: 502 and text/html.
    const req = craftV3(emu.url, { action: 'UnTagResources', params: { RegionId: HZ, ResourceType: PC, 'ResourceId.1': 'pcc-h', 'TagKey.1': 'a' } });
    const raw = await fetch(req.url, req.init);
    expect([raw.status, raw.headers.get('content-type')]).toEqual([502, 'text/html']);
    expect(await raw.text()).toContain('<h1>502 Bad Gateway</h1>');
    // An unsigned call never reaches fault injection.
    const unsigned = await fetch(`${emu.url}/?Action=UnTagResources&Version=2022-01-01`, { method: 'POST' });
    expect(unsigned.status).toBe(400);
    await unsigned.arrayBuffer();
    const { calls } = await admin.getCalls({ action: 'UnTagResources' });
    expect(calls.map((c) => [c.status, c.code, c.fault])).toEqual([
      [502, 'Fault.Html502', 'html502'],
      [502, 'Fault.Html502', 'html502'],
      [400, 'MissingParameter', null],
    ]);
  });

  it('limits faults to the configured actions and regions', async () => {
    await admin.setFaults({ serviceUnavailable: 1, regions: [BJ] });
    await api.call('UnTagResources', untagA);
    expect((await api.fail('UnTagResources', { RegionId: BJ, ResourceType: PC, ResourceId: ['pcc-b'], TagKey: ['a'] })).code).toBe('ServiceUnavailable');
    await only({ serviceUnavailable: 1 });
    await api.call('ListVpcPeerConnections', {}, { RegionId: HZ });
  });

  it('serves normally with latency and jitter configured', async () => {
    await only({ latencyMs: 20, jitterMs: 20 });
    expect((await api.call('UnTagResources', untagA))['Success']).toBe(true);
    expect(await admin.getFaults()).toEqual({ actions: ['UnTagResources'], latencyMs: 20, jitterMs: 20 });
  });

  it('draws the same sequence of faults for the same seed', async () => {
    const outcomes = async (): Promise<string[]> => {
      await admin.setFaults({ serviceUnavailable: 0.3, internalError: 0.3, seed: 99, actions: ['ListVpcPeerConnections'] });
      const out: string[] = [];
      for (let i = 0; i < 20; i++) {
        try {
          await api.call('ListVpcPeerConnections', {}, { RegionId: HZ });
          out.push('ok');
        } catch (err) {
          out.push((err as { code: string }).code);
        }
      }
      return out;
    };
    const first = await outcomes();
    expect(new Set(first).size).toBe(3);
    expect(await outcomes()).toEqual(first);
  });
});
