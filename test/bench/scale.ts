// Benchmark 4: scale. `tagwarden plan` over generated estates of 1,000,000 and 4,000,000 connections (the emulator
// in its own process): wall time and peak RSS of the tagwarden process, and RSS growth per further million
// (`--scale-sizes 1000000` runs one size only). Also Redis memory per queued batch.
import { performance } from 'node:perf_hooks';
import { createProducer } from '../../src/queue/index.js';
import type { PlanReport } from '../../src/runtime/index.js';
import { policyDoc, tagwardenEnv, writePolicies } from '../support/harness.js';
import { HUGE_QUOTAS, quotaEnv, withPrefix, withRedis, type BenchContext, type BenchOutcome, type Benchmark } from './lib/context.js';
import { peakRssProbe, procMemory, spawnEmulator, spawnTracked } from './lib/processes.js';
import { heading, note, table, type TargetCheck } from './lib/report.js';

const REGIONS = ['cn-hangzhou', 'cn-shanghai', 'cn-beijing'];
const RSS_TARGET_MB = 256;
const GROWTH_TARGET_MB = 25;

async function planRun(ctx: BenchContext, connections: number) {
  const started = performance.now();
  const emulator = await spawnEmulator({ generate: { count: connections, seed: 42, regions: REGIONS }, quotas: HUGE_QUOTAS, maxCallLog: 1_000 });
  const emulatorStartSeconds = (performance.now() - started) / 1000;
  try {
    const policiesDir = writePolicies([
      policyDoc('bench-scale', {
        regions: REGIONS,
        remove: { keyPatterns: ['tmp-*', '/^scratch-\\d+$/'] },
        keep: ['cost-center'],
        limits: { maxRemovalsPerRun: 1_000_000 },
      }),
    ]);
    const probe = peakRssProbe();
    const env = tagwardenEnv({
      emulatorUrl: emulator.url,
      prefix: 'twbench-scale-unused',
      regions: REGIONS,
      redisUrl: ctx.redisUrl,
      extra: { ...quotaEnv(HUGE_QUOTAS), ...probe.env, TAGWARDEN_LOG_LEVEL: 'warn' },
    });
    const t0 = performance.now();
    // TAGWARDEN_BENCH_SCALE_NODE_OPTIONS: V8 flags for the plan process (e.g. heap limits), reported with the run.
    const proc = spawnTracked(['plan', '--policies', policiesDir, '--json'], env, [...probe.nodeArgs, ...nodeFlags()]);
    let polledHwmKb = 0;
    const poll = setInterval(() => {
      const m = procMemory(proc.child.pid ?? 0);
      if (m) polledHwmKb = Math.max(polledHwmKb, m.hwmKb);
    }, 50);
    const exit = await proc.exited;
    clearInterval(poll);
    const seconds = (performance.now() - t0) / 1000;
    const peakKb = probe.read();
    if (exit.code !== 0 && exit.code !== 2) throw new Error(`plan exited with ${String(exit.code)}: ${proc.lines.slice(-10).join('\n')}`);
    const report = JSON.parse(proc.lines.join('\n').slice(proc.lines.join('\n').indexOf('{'))) as PlanReport;
    const sum = (f: (r: PlanReport['rows'][number]) => number) => report.rows.reduce((a, r) => a + f(r), 0);
    return {
      connections,
      scanned: sum((r) => r.scanned),
      violating: sum((r) => r.violating),
      tagsToRemove: sum((r) => r.tagsToRemove),
      calls: sum((r) => r.calls),
      naiveCalls: sum((r) => r.naiveCalls),
      wallSeconds: Math.round(seconds * 10) / 10,
      connectionsPerSecond: Math.round(connections / seconds),
      peakRssMb: peakKb === undefined ? null : Math.round(peakKb / 102.4) / 10,
      polledPeakRssMb: Math.round(polledHwmKb / 102.4) / 10,
      emulatorRssMb: Math.round((emulator.memory()?.rssKb ?? 0) / 102.4) / 10,
      emulatorStartSeconds: Math.round(emulatorStartSeconds * 10) / 10,
    };
  } finally {
    await emulator.close();
  }
}

/** Redis memory per batch queued through the producer (20 IDs x 2 keys each), nothing processing them. */
async function redisPerBatch(ctx: BenchContext, batches: number) {
  return withPrefix('scale-mem', ctx.redisUrl, async (prefix) =>
    withRedis(ctx.redisUrl, async (redis) => {
      const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 'NaN');
      const producer = createProducer({ connection: redis, prefix });
      const before = await usedMemory();
      for (let j = 0; j < batches; j += 200) {
        await Promise.all(
          Array.from({ length: Math.min(200, batches - j) }, (_, k) =>
            producer.untag({
              region: 'cn-hangzhou',
              resourceIds: Array.from({ length: 20 }, (_, i) => `pcc-bp1${((j + k) * 20 + i).toString(36).padStart(17, '0')}`),
              tagKeys: ['tmp-debug', 'tmp-migration'],
              reason: 'benchmark: memory per queued batch',
            }),
          ),
        );
      }
      const after = await usedMemory();
      await producer.close();
      // Exact per-key accounting of this prefix only (other users of the same Redis do not disturb it).
      let cursor = '0';
      let bytes = 0;
      let keys = 0;
      do {
        const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        cursor = next;
        const pipeline = redis.pipeline();
        for (const key of found) pipeline.memory('USAGE', key, 'SAMPLES', '0');
        for (const [err, value] of (await pipeline.exec()) ?? []) if (!err) bytes += Number(value);
        keys += found.length;
      } while (cursor !== '0');
      return { batches, keys, bytesPerBatch: Math.round(bytes / batches), usedMemoryDeltaPerBatch: Math.round((after - before) / batches) };
    }),
  );
}

function nodeFlags(): string[] {
  return (process.env.TAGWARDEN_BENCH_SCALE_NODE_OPTIONS ?? '').split(' ').filter(Boolean);
}

function sizes(quick: boolean): number[] {
  const given = process.env.TAGWARDEN_BENCH_SCALE_SIZES;
  if (given) return given.split(',').map((n) => Number(n)).filter((n) => Number.isInteger(n) && n > 0);
  return quick ? [100_000, 400_000] : [1_000_000, 4_000_000];
}

export const scaleBenchmark: Benchmark = {
  name: 'scale',
  title: '4. Scale: plan of large estates, Redis memory per batch',
  async run(ctx): Promise<BenchOutcome> {
    const batches = ctx.quick ? 2_000 : 20_000;
    const runs: Array<Awaited<ReturnType<typeof planRun>>> = [];
    for (const connections of sizes(ctx.quick)) {
      heading(`${this.title} (${connections.toLocaleString('en-US')} connections, 3 regions)`);
      note(`emulator generating ${connections} connections, then tagwarden plan ...`);
      runs.push(await planRun(ctx, connections));
    }
    process.stdout.write(
      table(
        ['connections', 'scanned', 'violating', 'tags', 'calls planned', 'naive calls', 'wall s', 'conn/s', 'peak RSS MB', 'polled peak MB', 'emulator RSS MB'],
        runs.map((plan) => [plan.connections, plan.scanned, plan.violating, plan.tagsToRemove, plan.calls, plan.naiveCalls, plan.wallSeconds.toFixed(1),
          plan.connectionsPerSecond, plan.peakRssMb ?? '-', plan.polledPeakRssMb, plan.emulatorRssMb]),
      ) + '\n',
    );
    process.stdout.write(
      `peak RSS: process.resourceUsage().maxRSS of the \`tagwarden plan\` process at exit; polled: /proc VmHWM every 50 ms. Node flags: ${nodeFlags().join(' ') || 'none'}.\n`,
    );
    note(`queueing ${batches} batches through the producer ...`);
    const mem = await redisPerBatch(ctx, batches);
    process.stdout.write(
      table(['queued batches', 'redis keys', 'bytes/batch (MEMORY USAGE)', 'bytes/batch (used_memory delta)'], [[mem.batches, mem.keys, mem.bytesPerBatch, mem.usedMemoryDeltaPerBatch]]) +
        '\n',
    );
    const peakOf = (plan: Awaited<ReturnType<typeof planRun>>) => plan.peakRssMb ?? plan.polledPeakRssMb;
    const first = runs[0];
    const last = runs[runs.length - 1];
    const targets: TargetCheck[] = [];
    if (first) {
      targets.push({
        benchmark: 'scale',
        target: `peak RSS of plan over ${first.connections.toLocaleString('en-US')} connections < ${RSS_TARGET_MB} MB${first.connections === 1_000_000 ? '' : ' (target is for 1,000,000)'}`,
        measured: `${peakOf(first)} MB in ${first.wallSeconds} s`,
        met: peakOf(first) < RSS_TARGET_MB && first.scanned === first.connections,
      });
    }
    if (first && last && last !== first) {
      const growth = ((peakOf(last) - peakOf(first)) * 1_000_000) / (last.connections - first.connections);
      targets.push({
        benchmark: 'scale',
        target: `RSS growth < ${GROWTH_TARGET_MB} MB per further million connections`,
        measured:
          `${growth.toFixed(1)} MB per million (${peakOf(first)} MB at ${first.connections.toLocaleString('en-US')}, ${peakOf(last)} MB at ${last.connections.toLocaleString('en-US')})` +
          (first.connections < 1_000_000 ? `; extrapolated from ${first.connections.toLocaleString('en-US')} and ${last.connections.toLocaleString('en-US')}, not measured at 1M and 4M` : ''),
        met: growth < GROWTH_TARGET_MB && last.scanned === last.connections,
      });
    }
    return { result: { plans: runs, redis: mem, nodeFlags: nodeFlags() }, targets };
  },
};
