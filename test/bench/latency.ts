// Benchmark 5: latency. A batch queued through the HTTP API (POST /v1/untag to a spawned daemon) until its tags
// are removed (the UnTagResources call as the emulator's call log recorded it) and until its job completed:
// p50 and p99 at idle, and while a backlog in another region is being processed.
import { Queue, QueueEvents } from 'bullmq';
import { createEmulatorAdmin, type EmulatorAdmin } from '../../src/emulator/index.js';
import { createRedis, untagQueueName } from '../../src/queue/index.js';
import { daemonPort, tagwardenEnv, writePolicies } from '../support/harness.js';
import { addJobs, batchTarget, groupsFor, loadBacklogEstate, scanJobs } from './lib/backlog.js';
import { HUGE_QUOTAS, quotaEnv, sleep, waitUntil, withPrefix, withRedis, type BenchContext, type BenchOutcome, type Benchmark } from './lib/context.js';
import { spawnEmulator, spawnTracked, stopChild } from './lib/processes.js';
import { heading, note, percentile, table } from './lib/report.js';

const A = 'cn-hangzhou';
const B = 'cn-shanghai';
const TOKEN = 'bench-latency-token-0123456789';
/** Tags per requested resource (an API batch reads them, 50 rows a page, before UnTagResources). */
const KEYS = 5;

interface Phase {
  phase: string;
  requests: number;
  /** ListTagResources calls per request (the read before the untag). */
  readsPerRequest: number;
  removedMs: number[];
  completedMs: number[];
  backlogLeftAtEnd: number | null;
}

/** State, attempts and failure of a job, to explain a request that never ended. */
async function describeJob(queue: Queue, jobId: string): Promise<string> {
  const job = await queue.getJob(jobId);
  if (!job) return 'not found';
  return JSON.stringify({ state: await job.getState(), attemptsMade: job.attemptsMade, failedReason: job.failedReason, processedOn: job.processedOn });
}

/** Sends `count` requests one after another; each waits for its job to end before the next is sent. */
async function measurePhase(
  name: string,
  /** The resources of this phase (each phase has its own, so both read the same numbers of tags). */
  tag: string,
  count: number,
  api: string,
  events: QueueEvents,
  queue: Queue,
  admin: EmulatorAdmin,
): Promise<Omit<Phase, 'backlogLeftAtEnd'>> {
  const ended = new Map<string, number>();
  const onEnd = ({ jobId }: { jobId: string }) => ended.set(jobId, Date.now());
  events.on('completed', onEnd);
  events.on('failed', onEnd);
  const sent: Array<{ jobId: string; at: number }> = [];
  try {
    for (let j = 0; j < count; j++) {
      const t = batchTarget(tag, j, KEYS, groupsFor(count, KEYS));
      const at = Date.now();
      const res = await fetch(`${api}/v1/untag`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ region: A, resourceIds: t.resourceIds, tagKeys: [t.tagKey], reason: 'benchmark latency' }),
      });
      if (res.status !== 202) throw new Error(`POST /v1/untag answered ${res.status}: ${await res.text()}`);
      const { jobIds } = (await res.json()) as { jobIds: string[] };
      const jobId = jobIds[0] ?? '';
      sent.push({ jobId, at });
      // The completed event ends the wait at once; polling the job is the fallback should an event be missed.
      let polled = Date.now();
      for (;;) {
        if (ended.has(jobId)) break;
        if (Date.now() - polled > 250) {
          polled = Date.now();
          if ((await queue.getJob(jobId))?.finishedOn !== undefined) break;
        }
        if (Date.now() - at > 60_000) throw new Error(`job ${jobId} did not end within 60 s: ${await describeJob(queue, jobId)}`);
        await sleep(1);
      }
      await sleep(20);
    }
  } finally {
    events.off('completed', onEnd);
    events.off('failed', onEnd);
  }
  const { calls } = await admin.getCalls();
  const started = sent[0]?.at ?? 0;
  const reads = calls.filter((c) => c.action === 'ListTagResources' && c.region === A && c.at >= started).length;
  const removedAt = new Map<string, number>();
  for (const c of calls) if (c.action === 'UnTagResources' && c.code === 'OK' && c.clientToken && !removedAt.has(c.clientToken)) removedAt.set(c.clientToken, c.at);
  const finishedOn = new Map<string, number>();
  for (const s of sent) finishedOn.set(s.jobId, (await queue.getJob(s.jobId))?.finishedOn ?? Number.NaN);
  const missing = sent.filter((s) => !removedAt.has(s.jobId)).length;
  if (missing > 0) throw new Error(`${missing} of ${sent.length} requests have no successful UnTagResources call`);
  return {
    phase: name,
    requests: count,
    readsPerRequest: reads / count,
    removedMs: sent.map((s) => (removedAt.get(s.jobId) ?? Number.NaN) - s.at),
    completedMs: sent.map((s) => (finishedOn.get(s.jobId) ?? Number.NaN) - s.at),
  };
}

export const latencyBenchmark: Benchmark = {
  name: 'latency',
  title: '5. Latency: POST /v1/untag to tags removed',
  async run(ctx: BenchContext): Promise<BenchOutcome> {
    const requests = ctx.quick ? 40 : 200;
    const backlog = ctx.quick ? 3_000 : 12_000;
    heading(`${this.title} (${requests} sequential requests per phase, 20 IDs x 1 key each; load: ${backlog.toLocaleString('en-US')} batches in ${B})`);
    const emulator = await spawnEmulator({ quotas: HUGE_QUOTAS, maxCallLog: 100_000 });
    let daemon: ReturnType<typeof spawnTracked> | undefined;
    try {
      const admin = createEmulatorAdmin(emulator.url);
      await loadBacklogEstate(admin, A, 'li', requests, KEYS);
      await loadBacklogEstate(admin, A, 'll', requests, KEYS);
      await loadBacklogEstate(admin, B, 'b', backlog);
      return await withPrefix('latency', ctx.redisUrl, async (prefix) => {
        const env = tagwardenEnv({
          emulatorUrl: emulator.url,
          prefix,
          regions: [A, B],
          redisUrl: ctx.redisUrl,
          extra: { ...quotaEnv(HUGE_QUOTAS), TAGWARDEN_API_TOKEN: TOKEN, TAGWARDEN_POLICIES_DIR: writePolicies([]) },
        });
        daemon = spawnTracked(['run'], env);
        const port = await daemonPort(daemon, 60_000);
        await daemon.waitFor(/"message":"started"/, 60_000);
        const api = `http://127.0.0.1:${port}`;
        const eventsConnection = createRedis(ctx.redisUrl, { connectionName: 'tagwarden-bench-events' });
        const events = new QueueEvents(untagQueueName('default', A), { connection: eventsConnection, prefix });
        const queueConnection = createRedis(ctx.redisUrl, { connectionName: 'tagwarden-bench-queue' });
        const queueA = new Queue(untagQueueName('default', A), { connection: queueConnection, prefix });
        try {
          await events.waitUntilReady();
          note('idle ...');
          const idle = await measurePhase('idle', 'li', requests, api, events, queueA, admin);
          note(`loaded: ${backlog} batches in ${B} ...`);
          const backlogLeft = await withRedis(ctx.redisUrl, async (redis) => {
            const queue = new Queue(untagQueueName('default', B), { connection: redis, prefix });
            try {
              await addJobs(queue, scanJobs(B, 'b', backlog, `load-${Date.now()}`));
              await waitUntil('the backlog to start', async () => ((await queue.getJobCounts('completed')).completed ?? 0) > 0 || undefined, 60_000, 20);
              const loaded = await measurePhase('under load', 'll', requests, api, events, queueA, admin);
              const left = await queue.getJobCounts('waiting', 'active');
              return { loaded, left: (left.waiting ?? 0) + (left.active ?? 0) };
            } finally {
              await queue.close();
            }
          });
          const phases: Phase[] = [
            { ...idle, backlogLeftAtEnd: null },
            { ...backlogLeft.loaded, backlogLeftAtEnd: backlogLeft.left },
          ];
          const summary = phases.map((p) => ({
            phase: p.phase,
            requests: p.requests,
            readsPerRequest: p.readsPerRequest,
            removedP50: percentile(p.removedMs, 50),
            removedP99: percentile(p.removedMs, 99),
            completedP50: percentile(p.completedMs, 50),
            completedP99: percentile(p.completedMs, 99),
            backlogLeftAtEnd: p.backlogLeftAtEnd,
          }));
          process.stdout.write(
            table(
              ['phase', 'requests', 'reads/request', 'removed p50 ms', 'removed p99 ms', 'completed p50 ms', 'completed p99 ms', `${B} backlog left`],
              summary.map((s) => [s.phase, s.requests, s.readsPerRequest.toFixed(1), s.removedP50, s.removedP99, s.completedP50, s.completedP99, s.backlogLeftAtEnd ?? '-']),
            ) + '\n',
          );
          process.stdout.write(
            'removed: POST sent -> the UnTagResources call arrived at the emulator (it applies on arrival); completed: -> the job finishedOn (BullMQ).\n' +
              'Each API batch first reads the tags of its resources (ListTagResources, 50 rows a page; here 20 IDs x up to 5 tags). A batch queued behind a backlog of the same region waits its turn (FIFO).\n',
          );
          return {
            result: { requestsPerPhase: requests, backlog, phases: summary, raw: phases },
            targets: [
              {
                benchmark: 'latency',
                target: 'p50 / p99 POST -> tags removed (no target; reported)',
                measured: summary.map((s) => `${s.phase} ${s.removedP50}/${s.removedP99} ms`).join('; '),
                met: null,
              },
            ],
          };
        } finally {
          await events.close();
          await queueA.close();
          await eventsConnection.quit().catch(() => eventsConnection.disconnect());
          await queueConnection.quit().catch(() => queueConnection.disconnect());
          // Stop the daemon before the prefix is deleted, or it would write keys again.
          await stopChild(daemon.child, 15_000);
        }
      });
    } finally {
      if (daemon) await stopChild(daemon.child, 15_000);
      await emulator.close();
    }
  },
};
