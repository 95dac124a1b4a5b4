// Event-driven enforcement end to end over HTTP: the official SDK writes a forbidden tag on the emulator, the
// emulator delivers the ActionTrail CloudEvent to two real daemons (as an EventBridge HTTP target behind a
// Service), and the tag disappears. Oracles: the emulator's state and call log, and each daemon's /metrics.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actionTrailEvent, createEmulatorAdmin, startEmulator, WEBHOOK_PATH, type EmulatorAdmin, type RunningEmulator } from '../../src/emulator/index.js';
import type { CallRecord } from '../../src/emulator/index.js';
import {
  EMULATOR_KEYS,
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
const IDS = ['pcc-ev1', 'pcc-ev2', 'pcc-ev3', 'pcc-ev4', 'pcc-ev5', 'pcc-ev6', 'pcc-ev7', 'pcc-ev8', 'pcc-ev9'];
/** The account the emulator writes into events; the daemons govern it (TAGWARDEN_ACCOUNT_ID). */
const ACCOUNT = '1234567890123456';
/** Each replica signs with its own key (as RRSA gives each pod its own STS key); a person writes tags with a third. */
const REPLICA_KEYS = [EMULATOR_KEYS, { accessKeyId: 'tagwarden-replica-b', accessKeySecret: 'tagwarden-replica-b-secret' }];
const WRITER = { accessKeyId: 'someone-at-the-console', accessKeySecret: 'someone-at-the-console-secret' };
const OWN_UA = 'AlibabaCloud (linux; x64) Node.js/v20.20.0 Core/1.0.8 TeaDSL/2 tagwarden/1';
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
  function tagEvent(ids: string[], keys: string[], userAgent = 'AlibabaCloud (linux; x64) Node.js/v20 console', accessKeyId = WRITER.accessKeyId, at = Date.now()): Record<string, unknown> {
    const params: Record<string, string> = { RegionId: HZ, ResourceType: 'PeerConnection' };
    ids.forEach((id, i) => (params[`ResourceId.${i + 1}`] = id));
    keys.forEach((k, i) => {
      params[`Tag.${i + 1}.Key`] = k;
      params[`Tag.${i + 1}.Value`] = 'v';
    });
    return actionTrailEvent({ action: 'TagResources', region: HZ, requestId: 'R-1', params, accessKeyId, userAgent, sourceIp: '10.0.0.1', at }, ACCOUNT);
  }
  async function webhook(config: Record<string, unknown> | null): Promise<void> {
    const res = await fetch(`${emulator.url}${WEBHOOK_PATH}`, config ? { method: 'PUT', body: JSON.stringify({ urls: bases.map((b) => `${b}/v1/events`), token: EB_TOKEN, retryBaseMs: 50, ...config }) } : { method: 'DELETE' });
    expect(res.status).toBe(200);
  }
  async function webhookStats(): Promise<{ events: number; delivered: number; duplicated: number; pending: number }> {
    return ((await (await fetch(`${emulator.url}${WEBHOOK_PATH}`)).json()) as { stats: { events: number; delivered: number; duplicated: number; pending: number } }).stats;
  }

  beforeAll(async () => {
    emulator = await startEmulator({ fixture: FIXTURE, credentials: [...REPLICA_KEYS, WRITER] });
    admin = createEmulatorAdmin(emulator.url);
    api = sdkCaller(emulator.url, WRITER);
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
            // Long enough that deliveries sent together share a window even on a loaded machine.
            TAGWARDEN_EVENTS_WINDOW_MS: '1000',
            TAGWARDEN_ACCOUNT_ID: ACCOUNT,
            ALIBABA_CLOUD_ACCESS_KEY_ID: REPLICA_KEYS[i]!.accessKeyId,
            ALIBABA_CLOUD_ACCESS_KEY_SECRET: REPLICA_KEYS[i]!.accessKeySecret,
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
    const otherBefore = await metric('tagwarden_events_ignored_total', { reason: 'other_event' });
    const ownBefore = await metric('tagwarden_events_ignored_total', { reason: 'own_call' });
    await api.call('TagResources', { RegionId: HZ, ResourceType: 'PeerConnection', ResourceId: ['pcc-ev1'], Tag: [{ Key: 'tmp-debug', Value: '1' }, { Key: 'tmp-keep', Value: '1' }, { Key: 'env', Value: 'dev' }] });
    await eventually(async () => ((await tagsOf('pcc-ev1'))['tmp-debug'] === undefined ? true : undefined), 20_000, 50);
    expect(await tagsOf('pcc-ev1')).toEqual({ owner: 'team-a', 'tmp-keep': '1', env: 'dev' });
    expect(await callsFor('ListTagResources', 'pcc-ev1', since)).toHaveLength(1);
    const untags = await callsFor('UnTagResources', 'pcc-ev1', since);
    expect(untags.map((c) => c.params)).toEqual([{ RegionId: HZ, ResourceType: 'PeerConnection', ResourceId: ['pcc-ev1'], TagKey: ['tmp-debug'], All: false }]);
    await eventually(async () => ((await metric('tagwarden_event_to_removal_seconds_count')) >= 1 ? true : undefined), 10_000);
    expect(await metric('tagwarden_events_acted_total')).toBeGreaterThanOrEqual(1);
    // tagwarden's own UnTagResources produced an event too: recognised by its signing key, acknowledged, not acted on.
    await eventually(async () => ((await webhookStats()).pending === 0 && (await metric('tagwarden_events_ignored_total', { reason: 'own_call' })) >= ownBefore + 1 ? true : undefined), 10_000);
    expect(await metric('tagwarden_events_ignored_total', { reason: 'other_event' })).toBe(otherBefore);
    expect(await callsFor('UnTagResources', 'pcc-ev1', since)).toHaveLength(1);
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

  it('a burst for one connection, split over deliveries to both replicas, makes one read and one batch', async () => {
    await webhook(null);
    await api.call('TagResources', { RegionId: HZ, ResourceType: 'PeerConnection', ResourceId: ['pcc-ev4'], Tag: Array.from({ length: 15 }, (_, i) => ({ Key: `tmp-${i}`, Value: 'x' })) });
    const since = (await admin.getCalls()).calls.at(-1)?.seq ?? 0;
    const burst = Array.from({ length: 30 }, (_, i) => tagEvent(['pcc-ev4'], [`tmp-${i % 15}`]));
    const answers = await Promise.all([0, 1, 2].map((d) => post(bases[d % 2]!, burst.slice(d * 10, d * 10 + 10)).then(async (r) => ({ status: r.status, body: (await r.json()) as { accepted: number } }))));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(answers.reduce((n, a) => n + a.body.accepted, 0)).toBe(30);
    await eventually(async () => (Object.keys(await tagsOf('pcc-ev4')).some((k) => k.startsWith('tmp-')) ? undefined : true), 20_000, 50);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await callsFor('ListTagResources', 'pcc-ev4', since)).toHaveLength(1);
    const untags = await callsFor('UnTagResources', 'pcc-ev4', since);
    expect(untags).toHaveLength(1);
    expect((untags[0]?.params['TagKey'] as string[]).sort()).toEqual(Array.from({ length: 15 }, (_, i) => `tmp-${i}`).sort());
    await webhook({ actions: ['TagResources', 'UnTagResources'] });
  }, 60_000);

  it("knows its own calls by the signing key, whichever replica signed, and not by a user agent anyone can send", async () => {
    await webhook(null);
    // A key one replica signed with (it is in the emulator's call log), offered to the other replica: a
    // per-process memory of our keys would not know it.
    const signed = (await admin.getCalls()).calls.find((c) => c.code === 'OK' && REPLICA_KEYS.some((k) => k.accessKeyId === c.accessKeyId));
    expect(signed).toBeDefined();
    const signer = REPLICA_KEYS.findIndex((k) => k.accessKeyId === signed?.accessKeyId);
    const other = bases[1 - signer]!;
    await api.call('TagResources', { RegionId: HZ, ResourceType: 'PeerConnection', ResourceId: ['pcc-ev5'], Tag: [{ Key: 'tmp-own', Value: '1' }] });
    await api.call('TagResources', { RegionId: HZ, ResourceType: 'PeerConnection', ResourceId: ['pcc-ev8'], Tag: [{ Key: 'tmp-spoof', Value: '1' }] });
    const since = (await admin.getCalls()).calls.at(-1)?.seq ?? 0;
    const ownBefore = await metric('tagwarden_events_ignored_total', { reason: 'own_call' });
    const own = tagEvent(['pcc-ev5'], ['tmp-own'], 'AlibabaCloud (linux; x64) Node.js/v20 console', REPLICA_KEYS[signer]!.accessKeyId);
    const ownRes = await post(other, own);
    expect(await ownRes.json()).toEqual({ received: 1, accepted: 0, ignored: 1, duplicates: 0 });
    expect(await metric('tagwarden_events_ignored_total', { reason: 'own_call' })).toBe(ownBefore + 1);
    // Someone else's write that carries tagwarden's user agent is acted on.
    const spoofed = await post(bases[0]!, tagEvent(['pcc-ev8'], ['tmp-spoof'], OWN_UA));
    expect(await spoofed.json()).toEqual({ received: 1, accepted: 1, ignored: 0, duplicates: 0 });
    await eventually(async () => ((await tagsOf('pcc-ev8'))['tmp-spoof'] === undefined ? true : undefined), 20_000, 50);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await callsFor('ListTagResources', 'pcc-ev5', since)).toHaveLength(0);
    expect((await tagsOf('pcc-ev5'))['tmp-own']).toBe('1');
  }, 30_000);

  it('ignores events about other services, failed calls, other event types and other accounts, and counts them', async () => {
    await webhook(null);
    const since = (await admin.getCalls()).calls.at(-1)?.seq ?? 0;
    const before = await metric('tagwarden_events_ignored_total');
    const foreign = { ...tagEvent(['pcc-ev5'], ['tmp-own']), aliyunaccountid: '9999999999999999' };
    const ecs = tagEvent(['pcc-ev5'], ['tmp-own']);
    (ecs['data'] as Record<string, unknown>)['serviceName'] = 'Ecs';
    const failed = tagEvent(['pcc-ev5'], ['tmp-own']);
    (failed['data'] as Record<string, unknown>)['errorCode'] = 'Forbidden.RAM';
    const other = { ...tagEvent(['pcc-ev5'], []), type: 'actiontrail:ActionTrail:AliyunServiceEvent', data: { eventName: 'DeleteDisk', eventType: 'AliyunServiceEvent' } };
    const res = await post(bases[1]!, [foreign, ecs, failed, other]);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ received: 4, accepted: 0, ignored: 4, duplicates: 0 });
    expect(await metric('tagwarden_events_ignored_total')).toBe(before + 4);
    for (const reason of ['other_account', 'other_service', 'failed_call', 'not_actiontrail']) {
      expect(await metric('tagwarden_events_ignored_total', { reason }), reason).toBeGreaterThanOrEqual(1);
    }
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

  it("measures event-to-removal from the event's time, not from its arrival", async () => {
    await webhook(null);
    await api.call('TagResources', { RegionId: HZ, ResourceType: 'PeerConnection', ResourceId: ['pcc-ev9'], Tag: [{ Key: 'tmp-old', Value: '1' }] });
    const bucket = (le: string) => metric('tagwarden_event_to_removal_seconds_bucket', { le });
    const [under10, under60] = [await bucket('10'), await bucket('60')];
    // Delivered 30 s after the write (EventBridge retried it): the histogram sees at least 30 s.
    await post(bases[0]!, tagEvent(['pcc-ev9'], ['tmp-old'], undefined, WRITER.accessKeyId, Date.now() - 30_000));
    await eventually(async () => ((await bucket('60')) > under60 ? true : undefined), 20_000, 50);
    expect(await bucket('10')).toBe(under10);
    expect((await tagsOf('pcc-ev9'))['tmp-old']).toBeUndefined();
  }, 30_000);

  it("counts received, acted and duplicate events as the emulator delivered them", async () => {
    await webhook({ duplicates: 1 });
    const before = { stats: await webhookStats(), received: await metric('tagwarden_events_received_total'), acted: await metric('tagwarden_events_acted_total'), dup: await metric('tagwarden_events_duplicate_total'), ignored: await metric('tagwarden_events_ignored_total') };
    const targets = ['pcc-ev1', 'pcc-ev2', 'pcc-ev3', 'pcc-ev6', 'pcc-ev7'];
    for (const id of targets) await api.call('TagResources', { RegionId: HZ, ResourceType: 'PeerConnection', ResourceId: [id], Tag: [{ Key: 'tmp-count', Value: '1' }] });
    await eventually(async () => ((await webhookStats()).pending === 0 ? true : undefined), 20_000, 50);
    for (const id of targets) await eventually(async () => ((await tagsOf(id))['tmp-count'] === undefined ? true : undefined), 20_000, 50);
    const stats = await webhookStats();
    const events = stats.events - before.stats.events;
    const copies = stats.duplicated - before.stats.duplicated;
    expect(events).toBe(targets.length);
    expect(copies).toBe(targets.length);
    expect(stats.delivered - before.stats.delivered).toBe(events + copies);
    expect((await metric('tagwarden_events_received_total')) - before.received).toBe(events + copies);
    expect((await metric('tagwarden_events_acted_total')) - before.acted).toBe(events);
    expect((await metric('tagwarden_events_duplicate_total')) - before.dup).toBe(copies);
    expect((await metric('tagwarden_events_ignored_total')) - before.ignored).toBe(0);
    await webhook({ actions: ['TagResources', 'UnTagResources'] });
  }, 60_000);
});
