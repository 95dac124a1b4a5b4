// Benchmark 6: `run --once` wall time at the documented quotas against the time floor, and throttles by quota
// fraction. The emulator (its own process) enforces the documented quotas per region (UnTagResources 1,000 and
// ListVpcPeerConnections 360 a minute, fixed windows); `tagwarden run --once` runs as a CLI process with default
// settings (only the quota fraction varies between passes). The time floor, per region, is the longer of its
// discovery pages at 6/s and its floor calls ceil(violating / 20) at 16.7/s; regions run in parallel, so the floor
// of a run is the largest region's. Wall time is from spawning the process to its exit (start-up included).
import { performance } from 'node:perf_hooks';
import { createEmulatorAdmin, type EmulatorResource } from '../../src/emulator/index.js';
import { DOCUMENTED_QUOTAS } from '../../src/model.js';
import { compilePolicies, matchResource } from '../../src/policy/index.js';
import { readPolicySources } from '../../src/policy-files/index.js';
import { policyDoc, tagwardenEnv, writePolicies } from '../support/harness.js';
import { withPrefix, type BenchContext, type BenchOutcome, type Benchmark } from './lib/context.js';
import { spawnEmulator, spawnTracked, type ChildEmulator } from './lib/processes.js';
import { heading, note, table, type TargetCheck } from './lib/report.js';

const REGIONS = ['cn-hangzhou', 'cn-shanghai', 'cn-beijing'];
const PAGE = 100;
const TARGET = 1.25;
/** TAGWARDEN_QUOTA_FRACTION's default (src/config), the value the target is judged at. */
const DEFAULT_FRACTION = 0.95;
const SPEC = { regions: REGIONS, remove: { keyPatterns: ['tmp-*', '/^scratch-\\d+$/'] }, keep: ['cost-center'], limits: { maxRemovalsPerRun: 1_000_000 } };

interface RegionFloor {
  region: string;
  connections: number;
  violating: number;
  pages: number;
  floorCalls: number;
  /** max(pages / 6, floorCalls / 16.7), seconds. */
  floorSeconds: number;
}

interface Pass {
  connections: number;
  fraction: number;
  wallSeconds: number;
  /** From the first call the emulator saw to the last UnTagResources call. */
  callSpanSeconds: number;
  floorSeconds: number;
  ratio: number;
  spanRatio: number;
  exitCode: number | null;
  untagCalls: number;
  listCalls: number;
  throttledUntag: number;
  throttledList: number;
  removed: number;
  regions: RegionFloor[];
  /** When the last page of the slowest region was listed, and when its last UnTagResources call arrived (s after the first call). */
  lastListSeconds: number;
  verified: boolean;
}

const perSecond = (quota: number) => quota / 60;

/** The floor of each region, from the estate as the emulator holds it and the policy's own matcher. */
async function floorsOf(resources: readonly EmulatorResource[], policiesDir: string): Promise<RegionFloor[]> {
  const [policy] = compilePolicies((await readPolicySources([policiesDir])).sources, new Date()).policies;
  if (!policy) throw new Error('bench policy did not compile');
  return REGIONS.map((region) => {
    const here = resources.filter((r) => r.region === region);
    const violating = here.filter((r) => matchResource(policy, { id: r.id, region, tags: r.tags, attributes: {} }, new Date()) !== null).length;
    const pages = Math.max(1, Math.ceil(here.length / PAGE));
    const floorCalls = Math.ceil(violating / 20);
    const floorSeconds = Math.max(pages / perSecond(DOCUMENTED_QUOTAS.ListVpcPeerConnections), floorCalls / perSecond(DOCUMENTED_QUOTAS.UnTagResources));
    return { region, connections: here.length, violating, pages, floorCalls, floorSeconds };
  });
}

async function pass(ctx: BenchContext, emulator: ChildEmulator, connections: number, fraction: number, seed: number): Promise<Pass> {
  const admin = createEmulatorAdmin(emulator.url);
  await admin.generate({ count: connections, seed, regions: REGIONS, replace: true });
  // setQuotas resets every window counter: no pass starts in a window the previous one used.
  await admin.setQuotas({ quotas: { ...DOCUMENTED_QUOTAS }, windowMs: 60_000 });
  await admin.clearCalls();
  await admin.resetStats();
  await admin.clearClientTokens();
  const policiesDir = writePolicies([policyDoc('bench-wall', SPEC)]);
  const before = (await admin.getState()).resources;
  const regions = await floorsOf(before, policiesDir);
  const floorSeconds = Math.max(...regions.map((r) => r.floorSeconds));
  return withPrefix('wall', ctx.redisUrl, async (prefix) => {
    const env = tagwardenEnv({
      emulatorUrl: emulator.url,
      prefix,
      regions: REGIONS,
      redisUrl: ctx.redisUrl,
      extra: { TAGWARDEN_QUOTA_FRACTION: String(fraction), TAGWARDEN_LOG_LEVEL: 'warn' },
    });
    const t0 = performance.now();
    const proc = spawnTracked(['run', '--once', '--policies', policiesDir, '--json'], env);
    const exit = await proc.exited;
    const wallSeconds = (performance.now() - t0) / 1000;
    const stats = await admin.getStats();
    const codes = (action: string) => stats.byAction[action]?.codes ?? {};
    const throttled = (action: string) => Object.entries(codes(action)).filter(([c]) => c.startsWith('Throttling')).reduce((n, [, v]) => n + v, 0);
    const calls = (await admin.getCalls({ limit: 1_000_000 })).calls;
    const first = Math.min(...calls.map((c) => c.at));
    const untagAt = calls.filter((c) => c.action === 'UnTagResources' && c.code === 'OK').map((c) => c.at);
    const listAt = calls.filter((c) => c.action === 'ListVpcPeerConnections').map((c) => c.at);
    const after = (await admin.getState()).resources;
    const [policy] = compilePolicies((await readPolicySources([policiesDir])).sources, new Date()).policies;
    const verified = policy !== undefined && after.every((r) => matchResource(policy, { id: r.id, region: r.region, tags: r.tags, attributes: {} }, new Date()) === null);
    const callSpanSeconds = ((untagAt.length > 0 ? Math.max(...untagAt) : Math.max(...listAt)) - first) / 1000;
    return {
      connections,
      fraction,
      wallSeconds: Math.round(wallSeconds * 10) / 10,
      callSpanSeconds: Math.round(callSpanSeconds * 10) / 10,
      floorSeconds: Math.round(floorSeconds * 10) / 10,
      ratio: wallSeconds / floorSeconds,
      spanRatio: callSpanSeconds / floorSeconds,
      exitCode: exit.code,
      untagCalls: codes('UnTagResources')['OK'] ?? 0,
      listCalls: codes('ListVpcPeerConnections')['OK'] ?? 0,
      throttledUntag: throttled('UnTagResources'),
      throttledList: throttled('ListVpcPeerConnections'),
      removed: stats.byAction['UnTagResources']?.tagsRemoved ?? 0,
      regions,
      lastListSeconds: Math.round(((Math.max(...listAt) - first) / 1000) * 10) / 10,
      verified,
    };
  });
}

function plan(quick: boolean): { sizes: number[]; fractions: number[] } {
  const sizes = process.env.TAGWARDEN_BENCH_WALL_SIZES?.split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);
  const fractions = process.env.TAGWARDEN_BENCH_WALL_FRACTIONS?.split(',').map(Number).filter((n) => n > 0 && n <= 1);
  return {
    sizes: sizes && sizes.length > 0 ? sizes : quick ? [12_000] : [20_000, 100_000],
    // The default first (the target), then full quota and the previous default for the fraction decision.
    fractions: fractions && fractions.length > 0 ? fractions : quick ? [DEFAULT_FRACTION, 1] : [DEFAULT_FRACTION, 1, 0.8],
  };
}

export const wallBenchmark: Benchmark = {
  name: 'wall',
  title: '6. run --once wall time at the documented quotas against the time floor; throttles by quota fraction',
  async run(ctx): Promise<BenchOutcome> {
    const { sizes, fractions } = plan(ctx.quick);
    heading(`${this.title} (${sizes.map((s) => s.toLocaleString('en-US')).join(' and ')} connections, 3 regions, fractions ${fractions.join(', ')})`);
    const emulator = await spawnEmulator({ quotas: { ...DOCUMENTED_QUOTAS }, maxCallLog: 1_000_000 });
    const passes: Pass[] = [];
    try {
      for (const connections of sizes) {
        for (const fraction of fractions) {
          note(`${connections} connections, TAGWARDEN_QUOTA_FRACTION=${fraction}: run --once ...`);
          passes.push(await pass(ctx, emulator, connections, fraction, 42));
        }
      }
    } finally {
      await emulator.close();
    }
    process.stdout.write(
      table(
        ['connections', 'fraction', 'floor s', 'wall s', 'wall / floor', 'calls span s', 'span / floor', 'last page at s', 'List calls', 'UnTag calls', 'throttled List', 'throttled UnTag', 'tags removed', 'exit', 'verified'],
        passes.map((p) => [
          p.connections, p.fraction, p.floorSeconds.toFixed(1), p.wallSeconds.toFixed(1), `${p.ratio.toFixed(3)}x`, p.callSpanSeconds.toFixed(1), `${p.spanRatio.toFixed(3)}x`,
          p.lastListSeconds.toFixed(1), p.listCalls, p.untagCalls, p.throttledList, p.throttledUntag, p.removed, String(p.exitCode), p.verified ? 'yes' : 'NO',
        ]),
      ) + '\n',
    );
    for (const connections of sizes) {
      const p = passes.find((x) => x.connections === connections);
      if (!p) continue;
      process.stdout.write(
        table(
          ['region', 'connections', 'violating', 'pages', 'floor calls', 'pages / 6 s', 'floor calls / 16.7 s', 'floor s'],
          p.regions.map((r) => [r.region, r.connections, r.violating, r.pages, r.floorCalls, (r.pages / 6).toFixed(1), (r.floorCalls / (1000 / 60)).toFixed(1), r.floorSeconds.toFixed(1)]),
        ) + '\n',
      );
    }
    process.stdout.write(
      'wall: spawn of `tagwarden run --once` to its exit (Node start-up, Redis and worker set-up included); calls span: first call the emulator saw to its last UnTagResources.\n',
    );
    const targets: TargetCheck[] = [];
    for (const p of passes.filter((x) => x.fraction === DEFAULT_FRACTION)) {
      targets.push({
        benchmark: 'wall',
        target: `run --once on ${p.connections.toLocaleString('en-US')} connections <= ${TARGET}x the time floor (default settings)${ctx.quick ? ' (quick: the target is for 20,000 and 100,000)' : ''}`,
        measured: `${p.wallSeconds} s / ${p.floorSeconds} s = ${p.ratio.toFixed(3)}x (calls span ${p.spanRatio.toFixed(3)}x); ${p.throttledList + p.throttledUntag} throttled`,
        met: p.ratio <= TARGET && p.verified && p.exitCode === 0,
      });
    }
    for (const fraction of fractions) {
      const of = passes.filter((x) => x.fraction === fraction);
      const throttles = of.reduce((n, p) => n + p.throttledList + p.throttledUntag, 0);
      const calls = of.reduce((n, p) => n + p.listCalls + p.untagCalls, 0);
      targets.push({
        benchmark: 'wall',
        target: `throttles at TAGWARDEN_QUOTA_FRACTION=${fraction} (reported)`,
        measured: `${throttles} throttled of ${calls + throttles} calls; wall / floor ${of.map((p) => p.ratio.toFixed(3)).join(', ')}`,
        met: null,
      });
    }
    return { result: { sizes, fractions, defaultFraction: DEFAULT_FRACTION, passes }, targets };
  },
};
