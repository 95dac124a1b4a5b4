// Event-driven enforcement end to end over HTTP: the official SDK writes a forbidden tag on the emulator, the
// emulator delivers the ActionTrail CloudEvent to two real daemons (as an EventBridge HTTP target behind a
// Service), and the tag disappears. Oracles: the emulator's state and call log, and each daemon's /metrics.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actionTrailEvent, createEmulatorAdmin, startEmulator, WEBHOOK_PATH, type EmulatorAdmin, type RunningEmulator } from '../../src/emulator/index.js';
import type { CallRecord } from '../../src/emulator/index.js';
import {
  cleanupPrefix,
  daemonPort,
  eventually,
  policyDoc,
  spawnTagwarden,
  tagwardenEnv,
  uniquePrefix,
  writePolicies,
  type TagwardenProcess,
} from '../support/harness.js';
import { sdkCaller, type SdkCaller } from './emulator.support.js';

const HZ = 'cn-hangzhou';
const SH = 'cn-shanghai';
const API_TOKEN = 'events-test-api-token-0a1b2c3d4e';
const EB_TOKEN = 'events-test-eventbridge-token-99';
const IDS = ['pcc-ev1', 'pcc-ev2', 'pcc-ev3', 'pcc-ev4', 'pcc-ev5', 'pcc-ev6', 'pcc-ev7'];
const FIXTURE = {
  resources: [
    ...IDS.map((id) => ({ id, region: HZ, tags: { owner: 'team-a' } })),
    { id: 'pcc-evs', region: SH, tags: { owner: 'team-b' } },
  ],
};
const POLICY = policyDoc('no-tmp', {
  regions: [HZ, SH],
  remove: { keyPatterns: ['tmp-*'] },
  keep: ['tmp-keep'],
  schedule: { every: '24h' },
  limits: { maxRemovalsPerRun: 10_000 },
});

function parseMetrics(text: string): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || line.startsWith('#')) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

describe('POST /v1/events (two replicas behind one EventBridge target)', () => {
  let emulator: RunningEmulator;
  let admin: EmulatorAdmin;
  let api: SdkCaller;
  let prefix: string;
  let dir: string;
  const daemons: TagwardenProcess[] = [];
  const bases: string[] = [];

  /** Sum of a metric over both replicas. */
  async function metric(name: string, match: Record<string, string> = {}): Promise<number> {
    let total = 0;
    for (const base of bases) {
      for (const s of parseMetrics(await (await fetch(`${base}/metrics`)).text())) {
        if (s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
      }
    }
    return total;
  }
  async function tagsOf(id: string): Promise<Record<string, string>> {
    return (await admin.getState({ ids: [id] })).resources[0]?.tags ?? {};
  }
  async function callsFor(action: string, id: string, since = 0): Promise<CallRecord[]> {
    const { calls } = await admin.getCalls({ action, since });
    return calls.filter((c) => JSON.stringify(c.params).includes(`"${id}"`));
  }
  function post(base: string, body: unknown, headers: Record<string, string> = { 'x-eventbridge-signature-token': EB_TOKEN }): Promise<Response> {
    return fetch(`${base}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  }
  /** An event as the emulator would deliver it for a TagResources call by someone else. */
  function tagEvent(ids: string[], keys: string[], userAgent = 'AlibabaCloud (linux; x64) Node.js/v20 console'): Record<string, unknown> {
    const params: Record<string, string> = { RegionId: HZ, ResourceType: 'PeerConnection' };
    ids.forEach((id, i) => (params[`ResourceId.${i + 1}`] = id));
    keys.forEach((k, i) => {
      params[`Tag.${i + 1}.Key`] = k;
      params[`Tag.${i + 1}.Value`] = 'v';
    });
    return actionTrailEvent({ action: 'TagResources', region: HZ, requestId: 'R-1', params, accessKeyId: 'someone', userAgent, sourceIp: '10.0.0.1', at: Date.now() }, '1234567890123456');
  }

  beforeAll(async () => {
    emulator = await startEmulator({ fixture: FIXTURE });
    admin = createEmulatorAdmin(emulator.url);
    api = sdkCaller(emulator.url);
    prefix = uniquePrefix('events');
    dir = writePolicies([POLICY]);
    for (let i = 0; i < 2; i += 1) {
      const daemon = spawnTagwarden(
        ['run'],
        tagwardenEnv({
          emulatorUrl: emulator.url,
          prefix,
          regions: [HZ, SH],
          extra: {
            TAGWARDEN_POLICIES_DIR: dir,
            TAGWARDEN_API_TOKEN: API_TOKEN,
            TAGWARDEN_EVENTS_TOKEN: EB_TOKEN,
            TAGWARDEN_EVENTS_WINDOW_MS: '300',
            TAGWARDEN_RETRY_BASE_MS: '20',
            TAGWARDEN_RETRY_MAX_MS: '200',
          },
        }),
      );
      daemons.push(daemon);
      bases.push(`http://127.0.0.1:${await daemonPort(daemon)}`);
    }
    for (const d of daemons) await d.waitFor(/"message":"started"/);
    // The emulator delivers to both replicas in turn, as a Service would.
    const res = await fetch(`${emulator.url}${WEBHOOK_PATH}`, {
      method: 'PUT',
      body: JSON.stringify({ urls: bases.map((b) => `${b}/v1/events`), token: EB_TOKEN, retryBaseMs: 50, actions: ['TagResources', 'UnTagResources'] }),
    });
    expect(res.status).toBe(200);
  }, 90_000);

  afterAll(async () => {
    for (const d of daemons) d.child.kill('SIGTERM');
    await Promise.all(daemons.map((d) => d.exited));
    await emulator.close();
    await cleanupPrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('removes a forbidden tag written with the official SDK, after its event, leaving other tags', async () => {
    const since = (await admin.getCalls()).calls.at(-1)?.seq ?? 0;
    await api.call('TagResources', { RegionId: HZ, ResourceType: 'PeerConnection', ResourceId: ['pcc-ev1'], Tag: [{ Key: 'tmp-debug', Value: '1' }, { Key: 'tmp-keep', Value: '1' }, { Key: 'env', Value: 'dev' }] });
    await eventually(async () => ((await tagsOf('pcc-ev1'))['tmp-debug'] === undefined ? true : undefined), 20_000, 50);
    expect(await tagsOf('pcc-ev1')).toEqual({ owner: 'team-a', 'tmp-keep': '1', env: 'dev' });
    expect(await callsFor('ListTagResources', 'pcc-ev1', since)).toHaveLength(1);
    const untags = await callsFor('UnTagResources', 'pcc-ev1', since);
    expect(untags.map((c) => c.params)).toEqual([{ RegionId: HZ, ResourceType: 'PeerConnection', ResourceId: ['pcc-ev1'], TagKey: ['tmp-debug'], All: false }]);
    await eventually(async () => ((await metric('tagwarden_event_to_removal_seconds_count')) >= 1 ? true : undefined), 10_000);
    expect(await metric('tagwarden_events_acted_total')).toBeGreaterThanOrEqual(1);
    // tagwarden's own UnTagResources produced an event too: acknowledged, not acted on.
    await eventually(async () => ((await metric('tagwarden_events_ignored_total', { reason: 'other_event' })) >= 1 ? true : undefined), 10_000);
  }, 60_000);

  it('acts once on an event delivered twice, once to each replica, and on duplicates sent at once', async () => {
    await fetch(`${emulator.url}${WEBHOOK_PATH}`, {
      method: 'PUT',
      body: JSON.stringify({ urls: bases.map((b) => `${b}/v1/events`), token: EB_TOKEN, duplicates: 1 }),
    });
    const dupsBefore = await metric('tagwarden_events_duplicate_total');
    const since = (await admin.getCalls()).calls.at(-1)?.seq ?? 0;
    await api.call('TagResources', { RegionId: HZ, ResourceType: 'PeerConnection', ResourceId: ['pcc-ev2'], Tag: [{ Key: 'tmp-a', Value: '1' }] });
    await eventually(async () => ((await tagsOf('pcc-ev2'))['tmp-a'] === undefined ? true : undefined), 20_000, 50);
    await eventually(async () => ((await metric('tagwarden_events_duplicate_total')) >= dupsBefore + 1 ? true : undefined), 10_000);
    // Same event 10 times to both replicas concurrently.
    const event = tagEvent(['pcc-ev3'], ['tmp-b']);
    await api.call('TagResources', { RegionId: HZ, ResourceType: 'PeerConnection', ResourceId: ['pcc-ev3'], Tag: [{ Key: 'tmp-b', Value: '1' }] });
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => post(bases[i % 2]!, event).then((r) => r.json() as Promise<{ accepted: number; duplicates: number }>)));
    expect(answers.reduce((n, a) => n + a.accepted, 0)).toBe(1);
    expect(answers.reduce((n, a) => n + a.duplicates, 0)).toBe(9);
    await eventually(async () => ((await tagsOf('pcc-ev3'))['tmp-b'] === undefined ? true : undefined), 20_000, 50);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await callsFor('UnTagResources', 'pcc-ev2', since)).toHaveLength(1);
    expect(await callsFor('ListTagResources', 'pcc-ev2', since)).toHaveLength(1);
    // pcc-ev3: its SDK call's own event (delivered twice) and the crafted one may share or split windows,
    // but removal of tmp-b happens in one batch: later windows see it claimed or gone.
    expect(await callsFor('UnTagResources', 'pcc-ev3', since)).toHaveLength(1);
    await fetch(`${emulator.url}${WEBHOOK_PATH}`, { method: 'PUT', body: JSON.stringify({ urls: bases.map((b) => `${b}/v1/events`), token: EB_TOKEN }) });
  }, 60_000);

  it('a burst for one connection in one delivery makes one read and one batch', async () => {
    const since = (await admin.getCalls()).calls.at(-1)?.seq ?? 0;
    await api.call('TagResources', { RegionId: HZ, ResourceType: 'PeerConnection', ResourceId: ['pcc-ev4'], Tag: Array.from({ length: 15 }, (_, i) => ({ Key: `tmp-${i}`, Value: 'x' })) });
    const burst = Array.from({ length: 30 }, (_, i) => tagEvent(['pcc-ev4'], [`tmp-${i % 15}`]));
    const res = await post(bases[0]!, burst);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { accepted: number }).accepted).toBe(30);
    await eventually(async () => (Object.keys(await tagsOf('pcc-ev4')).some((k) => k.startsWith('tmp-')) ? undefined : true), 20_000, 50);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await callsFor('UnTagResources', 'pcc-ev4', since)).toHaveLength(1);
    // The SDK call's own delivered event may land in the window before the burst's: at most two reads.
    expect((await callsFor('ListTagResources', 'pcc-ev4', since)).length).toBeLessThanOrEqual(2);
  }, 60_000);

  it('ignores events about its own calls and other services, and counts them', async () => {
    await fetch(`${emulator.url}${WEBHOOK_PATH}`, { method: 'DELETE' });
    await api.call('TagResources', { RegionId: HZ, ResourceType: 'PeerConnection', ResourceId: ['pcc-ev5'], Tag: [{ Key: 'tmp-own', Value: '1' }] });
    const since = (await admin.getCalls()).calls.at(-1)?.seq ?? 0;
    const ownBefore = await metric('tagwarden_events_ignored_total', { reason: 'own_call' });
    const own = tagEvent(['pcc-ev5'], ['tmp-own'], 'AlibabaCloud (linux; x64) Node.js/v20.20.0 Core/1.0.8 TeaDSL/2 tagwarden/1');
    const ecs = tagEvent(['pcc-ev5'], ['tmp-own']);
    (ecs['data'] as Record<string, unknown>)['serviceName'] = 'Ecs';
    const failed = tagEvent(['pcc-ev5'], ['tmp-own']);
    (failed['data'] as Record<string, unknown>)['errorCode'] = 'Forbidden.RAM';
    const other = { ...tagEvent(['pcc-ev5'], []), type: 'actiontrail:ActionTrail:AliyunServiceEvent', data: { eventName: 'DeleteDisk', eventType: 'AliyunServiceEvent' } };
    const res = await post(bases[1]!, [own, ecs, failed, other]);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ received: 4, accepted: 0, ignored: 4, duplicates: 0 });
    expect(await metric('tagwarden_events_ignored_total', { reason: 'own_call' })).toBe(ownBefore + 1);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await callsFor('ListTagResources', 'pcc-ev5', since)).toHaveLength(0);
    expect((await tagsOf('pcc-ev5'))['tmp-own']).toBe('1');
  }, 30_000);

  it('refuses unauthenticated and malformed deliveries, naming the field, and accepts nothing from them', async () => {
    const base = bases[0]!;
    const good = tagEvent(['pcc-ev6'], ['tmp-x']);
    expect((await post(base, good, {})).status).toBe(401);
    expect((await post(base, good, { 'x-eventbridge-signature-token': 'wrong-token-wrong-token' })).status).toBe(401);
    expect((await post(base, good, { authorization: `Bearer ${EB_TOKEN}` })).status).toBe(401);
    const problems = async (body: unknown): Promise<{ status: number; text: string }> => {
      const r = await post(base, body);
      return { status: r.status, text: await r.text() };
    };
    const { id: _id, ...noId } = good;
    expect(await problems(noId)).toMatchObject({ status: 400, text: expect.stringContaining('event.id: required') as unknown });
    expect(await problems([good, { ...good, id: 'x2', specversion: '0.3' }])).toMatchObject({ status: 400, text: expect.stringContaining('events[1].specversion') as unknown });
    expect(await problems({ ...good, id: 'a'.repeat(300) })).toMatchObject({ status: 400, text: expect.stringContaining('event.id: at most 256') as unknown });
    expect(await problems({ ...good, time: 'yesterday' })).toMatchObject({ status: 400, text: expect.stringContaining('event.time') as unknown });
    const badId = tagEvent(['pcc-ev6; DROP'], ['tmp-x']);
    expect(await problems(badId)).toMatchObject({ status: 400, text: expect.stringContaining('resource ID') as unknown });
    expect((await problems('{not json')).status).toBe(400);
    const tiny = { specversion: '1.0', source: 's', type: 't' };
    expect(await problems(Array.from({ length: 1001 }, (_, i) => ({ ...tiny, id: `e${i}` })))).toMatchObject({ status: 400, text: expect.stringContaining('at most 1000') as unknown });
    expect((await problems({ ...good, data: { pad: 'x'.repeat(2 * 1024 * 1024) } })).status).toBe(413);
    // Deep JSON in data: parsed or refused, never a crash; the replica answers after it.
    const deep = `{"specversion":"1.0","id":"deep","source":"s","type":"t","data":${'['.repeat(200_000)}${']'.repeat(200_000)}}`;
    expect([200, 400, 413]).toContain((await problems(deep)).status);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    // The bearer API token works too; the good event of the refused batch was not recorded.
    const ok = await post(base, good, { authorization: `Bearer ${API_TOKEN}` });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { accepted: number }).accepted).toBe(1);
    expect(await metric('tagwarden_events_refused_total')).toBeGreaterThanOrEqual(5);
  }, 30_000);

  it('acts on CreateVpcPeerConnection with tags, and leaves regions no policy covers alone', async () => {
    await api.call('TagResources', { RegionId: HZ, ResourceType: 'PeerConnection', ResourceId: ['pcc-ev7'], Tag: [{ Key: 'tmp-born', Value: '1' }] });
    const create = tagEvent([], []);
    const data = create['data'] as Record<string, unknown>;
    data['eventName'] = 'CreateVpcPeerConnection';
    data['requestParameters'] = JSON.stringify({ RegionId: HZ, VpcId: 'vpc-1', AcceptingVpcId: 'vpc-2', 'Tag.1.Key': 'tmp-born', 'Tag.1.Value': '1' });
    data['responseElements'] = { RequestId: 'R-2', InstanceId: 'pcc-ev7' };
    delete data['referencedResources'];
    data['resourceName'] = '';
    const noTags = { ...create, id: 'create-no-tags', data: { ...data, requestParameters: { RegionId: HZ, VpcId: 'vpc-1' } } };
    const elsewhere: Record<string, unknown> = { ...tagEvent(['pcc-far'], ['tmp-x']), id: 'far' };
    (elsewhere['data'] as Record<string, unknown>)['acsRegion'] = 'eu-west-1';
    const res = await post(bases[1]!, [create, noTags, elsewhere]);
    expect(await res.json()).toEqual({ received: 3, accepted: 1, ignored: 2, duplicates: 0 });
    await eventually(async () => ((await tagsOf('pcc-ev7'))['tmp-born'] === undefined ? true : undefined), 20_000, 50);
    expect(await metric('tagwarden_events_ignored_total', { reason: 'no_policy' })).toBeGreaterThanOrEqual(1);
    expect(await metric('tagwarden_events_ignored_total', { reason: 'no_tags' })).toBeGreaterThanOrEqual(1);
  }, 30_000);
});
