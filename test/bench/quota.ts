// Benchmark 2: quota use. Three `tagwarden run` daemons share one Redis prefix and work a backlog in two regions
// against an emulator whose UnTagResources quota is Q per window: calls per window achieved over Q, and the share
// of calls throttled, per region; also when the emulator throttles one region hard.
import { createEmulatorAdmin, type CallRecord, type FaultConfig } from '../../src/emulator/index.js';
import { createProducer, untagQueueName } from '../../src/queue/index.js';
import { Queue } from 'bullmq';
import { tagwardenEnv, writePolicies } from '../support/harness.js';
import { enqueueWithProducer, loadBacklogEstate } from './lib/backlog.js';
import { quotaEnv, sleep, withPrefix, withRedis, type BenchContext, type BenchOutcome, type Benchmark } from './lib/context.js';
import { spawnEmulator, spawnTracked, stopChild } from './lib/processes.js';
import { heading, note, percent, table, type TargetCheck } from './lib/report.js';

const A = 'cn-hangzhou';
const B = 'cn-shanghai';
const REGIONS = [A, B];
const WORKERS = 3;
const FRACTION = 0.95;
/** Tags per backlog resource: API batches read them (ListTagResources, 50 rows a page) before untagging. */
const KEYS = 5;

interface Scenario {
  name: string;
  /** The emulator's UnTagResources quota per region (the configured Q unless overridden). */
  regionQuota(q: number): Record<string, number>;
  faults?: FaultConfig;
  /** Regions that must reach >= 0.9 Q with < 1% throttled. */
  targetRegions: string[];
}

const SCENARIOS: Scenario[] = [
  { name: 'both regions at quota', regionQuota: (q) => ({ [A]: q, [B]: q }), targetRegions: [A, B] },
  {
    name: `${B} quota Q/4 at the emulator`,
    regionQuota: (q) => ({ [A]: q, [B]: Math.floor(q / 4) }),
    targetRegions: [A],
  },
  {
    name: `${B} 50% throttling faults`,
    regionQuota: (q) => ({ [A]: q, [B]: q }),
    faults: { throttle: 0.5, regions: [B], actions: ['UnTagResources'], seed: 7 },
    targetRegions: [A],
  },
];

interface RegionFigures {
  region: string;
  emulatorQuota: number;
  windows: number;
  okPerWindow: number;
  /** OK calls per window over the configured Q. */
  ofQ: number;
  /** OK calls per window over the emulator's quota for the region. */
  ofEmulatorQuota: number;
  minWindowOfQ: number;
  callsPerSecond: number;
  calls: number;
  throttled: number;
  throttledShare: number;
  /** ListTagResources calls per UnTagResources call (API batches read the tags first). */
  readsPerCall: number;
  backlogLeft: number;
}

function analyse(all: readonly CallRecord[], region: string, q: number, emulatorQuota: number, windowMs: number, stopAt: number, backlogLeft: number): RegionFigures {
  const mine = all.filter((c) => c.region === region && c.action === 'UnTagResources').sort((x, y) => x.at - y.at);
  const reads = all.filter((c) => c.region === region && c.action === 'ListTagResources').length;
  const first = mine[0];
  const throttled = mine.filter((c) => c.code === 'Throttling.User').length;
  const base = { region, emulatorQuota, calls: mine.length, throttled, throttledShare: mine.length ? throttled / mine.length : 0, readsPerCall: mine.length ? reads / mine.length : 0, backlogLeft };
  if (!first) return { ...base, windows: 0, okPerWindow: 0, ofQ: 0, ofEmulatorQuota: 0, minWindowOfQ: 0, callsPerSecond: 0 };
  // Whole fixed windows (the emulator's, epoch-aligned) after the one of the first call and before the stop.
  const from = Math.floor(first.at / windowMs) + 1;
  const to = Math.floor(stopAt / windowMs) - 1;
  const perWindow = new Map<number, number>();
  for (let w = from; w <= to; w++) perWindow.set(w, 0);
  for (const c of mine) {
    const w = Math.floor(c.at / windowMs);
    if (c.code === 'OK' && perWindow.has(w)) perWindow.set(w, (perWindow.get(w) ?? 0) + 1);
  }
  const counts = [...perWindow.values()];
  const windows = counts.length;
  const ok = counts.reduce((a, b) => a + b, 0);
  const okPerWindow = windows ? ok / windows : 0;
  return {
    ...base,
    windows,
    okPerWindow,
    ofQ: okPerWindow / q,
    ofEmulatorQuota: emulatorQuota ? okPerWindow / emulatorQuota : 0,
    minWindowOfQ: windows ? Math.min(...counts) / q : 0,
    callsPerSecond: windows ? ok / ((windows * windowMs) / 1000) : 0,
  };
}

async function runScenario(ctx: BenchContext, scenario: Scenario, p: { q: number; windowMs: number; windows: number }) {
  const regionQuota = scenario.regionQuota(p.q);
  const emulator = await spawnEmulator({
    quotas: { UnTagResources: p.q },
    regionQuotas: Object.fromEntries(Object.entries(regionQuota).map(([r, n]) => [r, { UnTagResources: n }])),
    quotaWindowMs: p.windowMs,
    ...(scenario.faults ? { faults: scenario.faults } : {}),
  });
  const daemons: Array<ReturnType<typeof spawnTracked>> = [];
  try {
    const admin = createEmulatorAdmin(emulator.url);
    // Enough for the measured windows plus slack, so the backlog never runs dry while measured.
    const perRegion = Math.ceil(p.q * (p.windows + 3) * 1.2);
    for (const [i, region] of REGIONS.entries()) await loadBacklogEstate(admin, region, `q${i}`, perRegion, KEYS);
    const policiesDir = writePolicies([]);
    return await withPrefix('quota', ctx.redisUrl, async (prefix) => {
      for (let w = 0; w < WORKERS; w++) {
        const env = tagwardenEnv({
          emulatorUrl: emulator.url,
          prefix,
          regions: REGIONS,
          redisUrl: ctx.redisUrl,
          extra: {
            ...quotaEnv({ UnTagResources: p.q }),
            TAGWARDEN_QUOTA_WINDOW_MS: String(p.windowMs),
            TAGWARDEN_QUOTA_FRACTION: String(FRACTION),
            TAGWARDEN_DRAIN_TIMEOUT_MS: '2000',
            TAGWARDEN_POLICIES_DIR: policiesDir,
          },
        });
        daemons.push(spawnTracked(['run'], env));
      }
      await Promise.all(daemons.map((d) => d.waitFor(/"message":"started"/, 60_000)));
      const producer = createProducer({ connection: ctx.redisUrl, prefix });
      try {
        for (const [i, region] of REGIONS.entries()) await enqueueWithProducer(producer, region, `q${i}`, perRegion, KEYS);
      } finally {
        await producer.close();
      }
      note(`${scenario.name}: ${perRegion} batches per region queued, measuring ${p.windows} windows of ${p.windowMs} ms`);
      await sleep((p.windows + 1.5) * p.windowMs);
      const stopAt = Date.now();
      const backlog = await withRedis(ctx.redisUrl, async (redis) => {
        const left: Record<string, number> = {};
        for (const region of REGIONS) {
          const queue = new Queue(untagQueueName('default', region), { connection: redis, prefix });
          const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
          left[region] = Object.values(counts).reduce((a, b) => a + b, 0);
          await queue.close();
        }
        return left;
      });
      await Promise.all(daemons.map((d) => stopChild(d.child, 15_000)));
      const { calls } = await admin.getCalls();
      const figures = REGIONS.map((r) => analyse(calls, r, p.q, regionQuota[r] ?? p.q, p.windowMs, stopAt, backlog[r] ?? 0));
      // Error lines of the daemons (message and code only), to explain a figure off target.
      const errors = new Map<string, number>();
      for (const d of daemons) {
        for (const line of d.lines) {
          if (!/"level":"error"/.test(line)) continue;
          let key = line.slice(0, 200);
          try {
            const rec = JSON.parse(line) as { message?: string; code?: string; err?: { message?: string } };
            key = [rec.message, rec.code, rec.err?.message].filter(Boolean).join(': ');
          } catch {
            // not JSON: keep the raw start of the line
          }
          errors.set(key, (errors.get(key) ?? 0) + 1);
        }
      }
      return { scenario: scenario.name, targetRegions: scenario.targetRegions, figures, daemonErrors: Object.fromEntries(errors) };
    });
  } finally {
    await Promise.all(daemons.map((d) => stopChild(d.child, 5_000)));
    await emulator.close();
  }
}

export const quotaBenchmark: Benchmark = {
  name: 'quota',
  title: '2. Quota use: 3 worker processes, 2 regions',
  async run(ctx): Promise<BenchOutcome> {
    const p = ctx.quick ? { q: 40, windowMs: 4_000, windows: 3 } : { q: 100, windowMs: 10_000, windows: 12 };
    const scenarios = ctx.quick ? SCENARIOS.slice(0, 2) : SCENARIOS;
    heading(`${this.title} (Q = ${p.q} UnTagResources per ${p.windowMs / 1000} s window, ${WORKERS} daemons, fraction ${FRACTION})`);
    const results = [];
    for (const scenario of scenarios) results.push(await runScenario(ctx, scenario, p));
    const rows = results.flatMap((r) =>
      r.figures.map((f) => [
        r.scenario, f.region, `${f.emulatorQuota}`, f.windows, f.okPerWindow.toFixed(1), f.callsPerSecond.toFixed(2),
        percent(f.ofQ), percent(f.minWindowOfQ), percent(f.ofEmulatorQuota), f.calls, percent(f.throttledShare, 2), f.readsPerCall.toFixed(1), f.backlogLeft,
        r.targetRegions.includes(f.region) ? 'yes' : '-',
      ]),
    );
    process.stdout.write(
      table(
        ['scenario', 'region', 'emu quota', 'windows', 'OK/window', 'calls/s', 'of Q', 'worst window', 'of emu quota', 'calls', 'throttled', 'reads/call', 'backlog left', 'target'],
        rows,
      ) + '\n',
    );
    for (const r of results) {
      for (const [message, count] of Object.entries(r.daemonErrors)) process.stdout.write(`${r.scenario}: daemons logged ${count} x error "${message}"\n`);
    }
    process.stdout.write(`Q = the configured quota (TAGWARDEN_QUOTA_UNTAGRESOURCES); tagwarden aims at ${FRACTION} x Q. Windows are the emulator's fixed windows.\n` +
        `calls: UnTagResources calls; reads/call: ListTagResources calls per UnTagResources call (API batches read the tags of their ${KEYS}-tag resources first).\n`);
    const targets: TargetCheck[] = results.map((r) => {
      const judged = r.figures.filter((f) => r.targetRegions.includes(f.region));
      return {
        benchmark: 'quota',
        target: `${r.scenario}: >= 90% of Q, < 1% throttled in ${r.targetRegions.join(' and ')}`,
        measured: judged.map((f) => `${f.region} ${percent(f.ofQ)} of Q, ${percent(f.throttledShare, 2)} throttled`).join('; '),
        met: judged.every((f) => f.ofQ >= 0.9 && f.throttledShare < 0.01 && f.windows > 0 && f.backlogLeft > 0),
      };
    });
    return { result: { params: { ...p, workers: WORKERS, fraction: FRACTION, regions: REGIONS }, scenarios: results }, targets };
  },
};
