// Benchmark 6: event-driven enforcement (issue 16). (a) A TagResources call with the official SDK on the emulator
// until the forbidden tag is removed (the UnTagResources call as the emulator's call log recorded it): the
// emulator's webhook delivers the ActionTrail CloudEvent to a spawned daemon, which reads, plans and removes.
// p50 and p99 at idle and while a backlog of batches in another region is processed. (b) Events per second one
// replica accepts on POST /v1/events with deduplication on (a share of the events are repeats).
// Floors measured in the same run: (a) the coalescing window plus one bare ListTagResources + UnTagResources
// round trip with the SDK; (b) the same bodies POSTed to a bare node:http server that parses them and answers.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import { actionTrailEvent, createEmulatorAdmin, WEBHOOK_PATH, type EmulatorAdmin, type EmulatorResource } from '../../src/emulator/index.js';
import { untagQueueName } from '../../src/queue/index.js';
import { sdkCaller, type SdkCaller } from '../integration/emulator.support.js';
import { EMULATOR_KEYS, daemonPort, policyDoc, tagwardenEnv, writePolicies } from '../support/harness.js';
import { addJobs, loadBacklogEstate, scanJobs } from './lib/backlog.js';
import { HUGE_QUOTAS, quotaEnv, waitUntil, withPrefix, withRedis, type BenchContext, type BenchOutcome, type Benchmark } from './lib/context.js';
import { spawnEmulator, spawnTracked, stopChild } from './lib/processes.js';
import { heading, note, percentile, table } from './lib/report.js';

const A = 'cn-hangzhou';
const B = 'cn-shanghai';
const EB_TOKEN = 'bench-events-eventbridge-token-0123';
/** Someone at the console: their events are acted on (tagwarden's own key would make them own calls). */
const WRITER = { accessKeyId: 'bench-console-user', accessKeySecret: 'bench-console-user-secret' };
const WINDOW_MS = 250;
const ACCOUNT = '1234567890123456';

function connections(tag: string, count: number, region: string): EmulatorResource[] {
  return Array.from({ length: count }, (_, i) => ({ id: `pcc-${tag}-${String(i).padStart(6, '0')}`, region, tags: { owner: 'bench' }, status: 'Activated' }));
}

/** Writes a forbidden tag on each connection in turn and waits for its removal; ms from the call to the UnTagResources. */
async function measureLatency(ids: readonly string[], writer: SdkCaller, admin: EmulatorAdmin, backlog?: () => Promise<number>): Promise<Array<{ ms: number; backlog: number }>> {
  const out: Array<{ ms: number; backlog: number }> = [];
  let since = (await admin.getCalls({ limit: 1 })).calls.at(-1)?.seq ?? 0;
  since = Math.max(since, (await admin.getCalls({ since })).calls.at(-1)?.seq ?? since);
  for (const id of ids) {
    const left = backlog ? await backlog() : 0;
    const at = Date.now();
    await writer.call('TagResources', { RegionId: A, ResourceType: 'PeerConnection', ResourceId: [id], Tag: [{ Key: 'bench-forbidden', Value: '1' }] });
    const removedAt = await waitUntil(`the removal on ${id}`, async () => {
      const { calls } = await admin.getCalls({ action: 'UnTagResources', since });
      const hit = calls.find((c) => c.code === 'OK' && (c.params['ResourceId'] as string[] | undefined)?.includes(id));
      return hit?.at;
    }, 60_000, 5);
    out.push({ ms: removedAt - at, backlog: left });
    since = (await admin.getCalls({ action: 'UnTagResources', since })).calls.at(-1)?.seq ?? since;
  }
  return out;
}

/** The floor of (a): one SDK ListTagResources and one UnTagResources, back to back, on an untouched connection. */
async function bareRoundTrips(ids: readonly string[], sdk: SdkCaller): Promise<number[]> {
  const out: number[] = [];
  for (const id of ids) {
    const t = performance.now();
    await sdk.call('ListTagResources', { RegionId: A, ResourceType: 'PeerConnection', ResourceId: [id] });
    await sdk.call('UnTagResources', { RegionId: A, ResourceType: 'PeerConnection', ResourceId: [id], TagKey: ['absent-key'] });
    out.push(performance.now() - t);
  }
  return out;
}

/** Deliveries of `count` events, `perRequest` a request; `repeat` of them are copies of earlier events (same source+id). */
function deliveries(count: number, perRequest: number, repeat: number, targets: readonly string[]): { bodies: string[]; unique: number } {
  const events: Array<Record<string, unknown>> = [];
  const uniqueCount = Math.round(count * (1 - repeat));
  for (let i = 0; i < count; i++) {
    if (i >= uniqueCount) {
      events.push(events[(i * 7919) % uniqueCount]!);
      continue;
    }
    const id = targets[i % targets.length]!;
    events.push(actionTrailEvent({ action: 'TagResources', region: A, requestId: `R-${i}`, params: { RegionId: A, ResourceType: 'PeerConnection', 'ResourceId.1': id, 'Tag.1.Key': 'bench-forbidden', 'Tag.1.Value': '1' }, accessKeyId: WRITER.accessKeyId, userAgent: 'bench', sourceIp: '10.0.0.1', at: Date.now() }, ACCOUNT));
  }
  // Spread the repeats over the run, as EventBridge's retries would come.
  for (let i = events.length - 1; i > 0; i--) {
    const j = (i * 2654435761) % (i + 1);
    [events[i], events[j]] = [events[j]!, events[i]!];
  }
  const bodies: string[] = [];
  for (let i = 0; i < events.length; i += perRequest) bodies.push(JSON.stringify(events.slice(i, i + perRequest)));
  return { bodies, unique: uniqueCount };
}

/** POSTs the bodies with `concurrency` in flight; seconds taken and the answers. */
async function postAll(url: string, bodies: readonly string[], concurrency: number): Promise<{ seconds: number; answers: Array<Record<string, number>> }> {
  const answers: Array<Record<string, number>> = [];
  let next = 0;
  const t = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < bodies.length) {
      const body = bodies[next++]!;
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/cloudevents-batch+json', 'x-eventbridge-signature-token': EB_TOKEN }, body });
      if (res.status !== 200) throw new Error(`POST ${url} answered ${res.status}: ${await res.text()}`);
      answers.push((await res.json()) as Record<string, number>);
    }
  }));
  return { seconds: (performance.now() - t) / 1000, answers };
}

/** A bare receiver: parses each body as JSON and answers a fixed count (the HTTP + JSON floor of intake). */
async function bareReceiver(): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const events = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown[];
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ received: events.length }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

export const eventsBenchmark: Benchmark = {
  name: 'events',
  title: '6. Events: TagResources to forbidden tag removed; events accepted per second',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const writes = ctx.quick ? 20 : 200;
    const backlog = ctx.quick ? 2_000 : 10_000;
    const eventsCount = ctx.quick ? 6_000 : 40_000;
    const perRequest = 100;
    const repeat = 0.2;
    heading(`${this.title} (${writes} sequential writes per phase; load: ${backlog.toLocaleString('en-US')} batches in ${B}; ${eventsCount.toLocaleString('en-US')} events, ${repeat * 100}% repeats)`);
    const emulator = await spawnEmulator({ credentials: [EMULATOR_KEYS, WRITER], quotas: HUGE_QUOTAS, maxCallLog: 500_000 });
    let daemon: ReturnType<typeof spawnTracked> | undefined;
    try {
      const admin = createEmulatorAdmin(emulator.url);
      await admin.upsertResources([...connections('idle', writes, A), ...connections('load', writes, A), ...connections('bare', writes, A), ...connections('tput', 500, A)]);
      await loadBacklogEstate(admin, B, 'b', backlog);
      return await withPrefix('events', ctx.redisUrl, async (prefix) => {
        // Only the bench's key is forbidden, and no scan runs (a yearly cron): removals come from events.
        const policies = writePolicies([policyDoc('no-bench-forbidden', { regions: [A, B], remove: { keys: ['bench-forbidden'] }, schedule: { cron: '0 0 1 1 *' }, limits: { maxRemovalsPerRun: 1_000_000 } })]);
        const env = tagwardenEnv({
          emulatorUrl: emulator.url,
          prefix,
          regions: [A, B],
          redisUrl: ctx.redisUrl,
          extra: { ...quotaEnv(HUGE_QUOTAS), TAGWARDEN_EVENTS_TOKEN: EB_TOKEN, TAGWARDEN_EVENTS_WINDOW_MS: String(WINDOW_MS), TAGWARDEN_POLICIES_DIR: policies },
        });
        daemon = spawnTracked(['run'], env);
        const port = await daemonPort(daemon, 60_000);
        await waitUntil('the daemon to be ready', async () => ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200 || undefined), 60_000, 100);
        const eventsUrl = `http://127.0.0.1:${port}/v1/events`;
        try {
          const hook = await fetch(`${emulator.url}${WEBHOOK_PATH}`, { method: 'PUT', body: JSON.stringify({ urls: [eventsUrl], token: EB_TOKEN, retryBaseMs: 50 }) });
          if (hook.status !== 200) throw new Error(`webhook config answered ${hook.status}`);
          const writer = sdkCaller(emulator.url, WRITER);
          const own = sdkCaller(emulator.url);
          note('floor: bare SDK round trips ...');
          const bare = await bareRoundTrips(connections('bare', writes, A).map((r) => r.id), own);
          note('idle ...');
          const idle = (await measureLatency(connections('idle', writes, A).map((r) => r.id), writer, admin)).map((m) => m.ms);
          note(`loaded: ${backlog} batches in ${B} ...`);
          const { loaded, left } = await withRedis(ctx.redisUrl, async (redis) => {
            const queue = new Queue(untagQueueName('default', B), { connection: redis, prefix });
            try {
              await addJobs(queue, scanJobs(B, 'b', backlog, `load-${Date.now()}`));
              await waitUntil('the backlog to start', async () => ((await queue.getJobCounts('completed')).completed ?? 0) > 0 || undefined, 60_000, 20);
              const pending = async () => {
                const c = await queue.getJobCounts('waiting', 'active');
                return (c.waiting ?? 0) + (c.active ?? 0);
              };
              // Only writes made while batches of the backlog were still queued count as "under load".
              const ms = (await measureLatency(connections('load', writes, A).map((r) => r.id), writer, admin, pending)).filter((m) => m.backlog > 0).map((m) => m.ms);
              const counts = await queue.getJobCounts('waiting', 'active');
              return { loaded: ms, left: (counts.waiting ?? 0) + (counts.active ?? 0) };
            } finally {
              await queue.close();
            }
          });
          await fetch(`${emulator.url}${WEBHOOK_PATH}`, { method: 'DELETE' });

          note(`throughput: ${eventsCount} events in requests of ${perRequest} ...`);
          const tputIds = connections('tput', 500, A).map((r) => r.id);
          const floorRun = deliveries(eventsCount, perRequest, repeat, tputIds);
          const receiver = await bareReceiver();
          const floor = await postAll(receiver.url, floorRun.bodies, 8).finally(() => receiver.close());
          const run = deliveries(eventsCount, perRequest, repeat, tputIds);
          const measured = await postAll(eventsUrl, run.bodies, 8);
          const accepted = measured.answers.reduce((n, a) => n + (a['accepted'] ?? 0), 0);
          const duplicates = measured.answers.reduce((n, a) => n + (a['duplicates'] ?? 0), 0);
          if (accepted !== run.unique || duplicates !== eventsCount - run.unique) {
            throw new Error(`deduplication off: ${accepted} accepted (expected ${run.unique}), ${duplicates} duplicates (expected ${eventsCount - run.unique})`);
          }
          const perSecond = eventsCount / measured.seconds;
          const floorPerSecond = eventsCount / floor.seconds;

          const floorMs = WINDOW_MS + percentile(bare, 50);
          const phases = [
            { phase: 'idle', ms: idle, backlogLeft: null as number | null },
            { phase: `${backlog.toLocaleString('en-US')} batches in ${B} (writes while it was queued)`, ms: loaded, backlogLeft: left },
          ].map((p) => ({ phase: p.phase, writes: p.ms.length, p50: Math.round(percentile(p.ms, 50)), p99: Math.round(percentile(p.ms, 99)), backlogLeft: p.backlogLeft }));
          process.stdout.write(
            table(
              ['phase', 'writes', 'p50 ms', 'p99 ms', 'p50 / floor', `${B} backlog left`],
              phases.map((p) => [p.phase, p.writes, p.p50, p.p99, (p.p50 / floorMs).toFixed(1), p.backlogLeft ?? '-']),
            ) +
              `\nfloor: window ${WINDOW_MS} ms + bare SDK ListTagResources+UnTagResources p50 ${percentile(bare, 50).toFixed(1)} ms = ${floorMs.toFixed(0)} ms\n` +
              table(
                ['intake', 'events', 'seconds', 'events/s', 'accepted', 'duplicates'],
                [
                  ['POST /v1/events (dedup in Redis)', eventsCount, measured.seconds.toFixed(2), Math.round(perSecond), accepted, duplicates],
                  ['bare node:http + JSON.parse (floor)', eventsCount, floor.seconds.toFixed(2), Math.round(floorPerSecond), '-', '-'],
                ],
              ) +
              `\nintake / floor: ${(perSecond / floorPerSecond).toFixed(2)}\n` +
              'latency: from just before the SDK TagResources call to the UnTagResources call arriving at the emulator (it applies on arrival).\n',
          );
          const idleP99 = phases[0]!.p99;
          return {
            result: { writesPerPhase: writes, backlog, windowMs: WINDOW_MS, floorMs, phases, raw: { idle, loaded, bare }, intake: { events: eventsCount, perRequest, repeat, seconds: measured.seconds, perSecond, floorPerSecond, accepted, duplicates } },
            targets: [
              { benchmark: 'events', target: 'p99 TagResources -> forbidden tag removed at idle < 2 s', measured: `${idleP99} ms (p50 ${phases[0]!.p50} ms; with backlog p50/p99 ${phases[1]!.p50}/${phases[1]!.p99} ms)`, met: idleP99 < 2_000 },
              { benchmark: 'events', target: 'events accepted per second, one replica, dedup on >= 1,000/s', measured: `${Math.round(perSecond)}/s (floor ${Math.round(floorPerSecond)}/s)`, met: perSecond >= 1_000 },
            ],
          };
        } finally {
          await stopChild(daemon.child, 15_000);
        }
      });
    } finally {
      if (daemon) await stopChild(daemon.child, 15_000);
      await emulator.close();
    }
  },
};


