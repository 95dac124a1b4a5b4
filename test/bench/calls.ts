// Benchmark 1: UnTagResources calls made by the real pipeline (runOnce against the emulator) on four designed
// estates, against the lower bound (sum over key sets of ceil(ids/20) x ceil(keys/20)) and a naive client.
import { performance } from 'node:perf_hooks';
import { createEmulatorAdmin, startEmulator, type EmulatorResource } from '../../src/emulator/index.js';
import { checkState, expectedRemovals, toResource } from '../../src/emulator/verify.js';
import { loadConfig } from '../../src/config/index.js';
import { MAX_IDS_PER_CALL, MAX_KEYS_PER_CALL } from '../../src/model.js';
import { matchResource, type CompiledPolicy } from '../../src/policy/index.js';
import { runOnce } from '../../src/runtime/index.js';
import { EMULATOR_KEYS, policyDoc, writePolicies } from '../support/harness.js';
import { HUGE_QUOTAS, Rng, benchId, withPrefix, type BenchContext, type BenchOutcome, type Benchmark } from './lib/context.js';
import { heading, note, table } from './lib/report.js';

const REGIONS = ['cn-hangzhou', 'cn-shanghai', 'cn-beijing'] as const;
const TEAMS = ['team-alpha', 'team-beta', 'team-gamma', 'team-delta'];
const ENVS = ['prod', 'staging', 'dev'];

interface Estate {
  name: string;
  description: string;
  resources: EmulatorResource[];
  spec: Record<string, unknown>;
}

function date(rng: Rng): string {
  return new Date(Date.UTC(2025, 0, 1 + rng.int(365))).toISOString().slice(0, 10);
}

function resource(tag: string, i: number, tags: Record<string, string>): EmulatorResource {
  return { id: benchId(tag, i), region: REGIONS[i % REGIONS.length] ?? 'cn-hangzhou', tags, name: `bench-${tag}-${i}`, status: 'Activated' };
}

function kept(rng: Rng): Record<string, string> {
  return { owner: TEAMS[rng.int(TEAMS.length)] ?? 'team-alpha', env: ENVS[rng.int(ENVS.length)] ?? 'prod' };
}

const keyName = (prefix: string, k: number) => `${prefix}${String(k).padStart(2, '0')}`;

/** Every violating resource carries the same three keys: one key set per region. Exact keys (ListTagResources discovery). */
function uniformEstate(n: number, seed: number): Estate {
  const rng = new Rng(seed);
  const resources = Array.from({ length: n }, (_, i) => {
    const tags = kept(rng);
    if (rng.next() < 0.8) for (const key of ['tmp-a', 'tmp-b', 'tmp-c']) tags[key] = date(rng);
    return resource('u', i, tags);
  });
  return { name: 'uniform', description: '80% carry the same 3 keys', resources, spec: { remove: { keys: ['tmp-a', 'tmp-b', 'tmp-c'] } } };
}

/** Key sets drawn from a catalogue of 200 with Zipf(1.1) popularity: a few large groups and a long tail. */
function skewedEstate(n: number, seed: number): Estate {
  const rng = new Rng(seed);
  const catalogue = Array.from({ length: 200 }, () => {
    const size = 1 + rng.int(6);
    const keys = new Set<string>();
    while (keys.size < size) keys.add(keyName('tmp-s', rng.int(30)));
    return [...keys];
  });
  const weights = catalogue.map((_, rank) => 1 / (rank + 1) ** 1.1);
  const total = weights.reduce((a, b) => a + b, 0);
  const cdf: number[] = [];
  weights.reduce((acc, w) => {
    cdf.push((acc + w) / total);
    return acc + w;
  }, 0);
  const resources = Array.from({ length: n }, (_, i) => {
    const tags = kept(rng);
    if (rng.next() < 0.8) {
      const u = rng.next();
      const keys = catalogue[cdf.findIndex((c) => u < c)] ?? catalogue[0] ?? [];
      for (const key of keys) tags[key] = date(rng);
    }
    return resource('s', i, tags);
  });
  return {
    name: 'skewed',
    description: '80% carry 1 of 200 key sets, Zipf(1.1)',
    resources,
    spec: { remove: { keyPatterns: ['tmp-*'] }, keep: ['owner', 'env'] },
  };
}

/** Each of 12 keys present with probability 1/2: up to 4,095 key sets, few resources share one. */
function distinctEstate(n: number, seed: number): Estate {
  const rng = new Rng(seed);
  const resources = Array.from({ length: n }, (_, i) => {
    const tags = kept(rng);
    let mask = 0;
    while (mask === 0) mask = rng.int(4096);
    for (let k = 0; k < 12; k++) if (mask & (1 << k)) tags[keyName('tmp-d', k)] = date(rng);
    return resource('d', i, tags);
  });
  return {
    name: 'distinct',
    description: 'random subsets of 12 keys (4,095 key sets)',
    resources,
    spec: { remove: { keyPatterns: ['tmp-*'] }, keep: ['owner', 'env'] },
  };
}

/** remove.all: every tag goes (All=true), whatever the keys; 20% carry no tag. */
function allEstate(n: number, seed: number): Estate {
  const rng = new Rng(seed);
  const resources = Array.from({ length: n }, (_, i) => {
    const tags: Record<string, string> = {};
    if (rng.next() < 0.8) {
      const count = 1 + rng.int(8);
      while (Object.keys(tags).length < count) tags[keyName('k', rng.int(40))] = date(rng);
    }
    return resource('a', i, tags);
  });
  return { name: 'all', description: 'remove.all on 1-8 random tags; 20% untagged', resources, spec: { remove: { all: true } } };
}

/** Lower bound and naive calls of the removals the policy engine decides, grouped per (region, exact key set). */
function bounds(before: readonly EmulatorResource[], policy: CompiledPolicy, now: Date) {
  const groups = new Map<string, { ids: number; keys: number }>();
  let naive = 0;
  let violating = 0;
  for (const r of before) {
    const removal = matchResource(policy, toResource(r), now);
    if (!removal) continue;
    violating += 1;
    const keys = [...new Set(removal.keys)].sort();
    naive += removal.all ? 1 : Math.ceil(keys.length / MAX_KEYS_PER_CALL);
    const signature = `${r.region}\n${removal.all ? '*all*' : keys.join('\n')}`;
    const group = groups.get(signature) ?? { ids: 0, keys: removal.all ? 1 : keys.length };
    group.ids += 1;
    groups.set(signature, group);
  }
  let lowerBound = 0;
  for (const g of groups.values()) lowerBound += Math.ceil(g.ids / MAX_IDS_PER_CALL) * Math.ceil(g.keys / MAX_KEYS_PER_CALL);
  return { lowerBound, naive, violating, keySets: groups.size };
}

async function runEstate(ctx: BenchContext, estate: Estate) {
  const emulator = await startEmulator({ quotas: HUGE_QUOTAS, fixture: { resources: estate.resources } });
  try {
    const admin = createEmulatorAdmin(emulator.url);
    const policiesDir = writePolicies([
      policyDoc(`bench-${estate.name}`, { regions: [...REGIONS], ...estate.spec, limits: { maxRemovalsPerRun: 1_000_000 } }),
    ]);
    return await withPrefix(`calls-${estate.name}`, ctx.redisUrl, async (prefix) => {
      const config = loadConfig(
        { HOME: process.env.HOME ?? '/tmp', ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true' },
        {
          redisUrl: ctx.redisUrl,
          endpoint: emulator.url,
          queuePrefix: prefix,
          regions: REGIONS.join(',') as never,
          policiesDir,
          quotas: HUGE_QUOTAS,
          concurrency: 16,
          retryBaseMs: 20,
          retryMaxMs: 500,
          logLevel: 'warn',
        },
      );
      const before = (await admin.getState()).resources;
      const now = new Date();
      const started = performance.now();
      const result = await runOnce(config, { policiesPaths: [policiesDir], credentials: EMULATOR_KEYS, now: () => now, timeoutMs: 600_000 });
      const seconds = (performance.now() - started) / 1000;
      const policy = result.policies[0];
      if (!policy) throw new Error(`policy of estate ${estate.name} did not compile: ${JSON.stringify(result.findings)}`);
      const after = (await admin.getState()).resources;
      const check = checkState(before, after, expectedRemovals(before, result.policies, now));
      const stats = await admin.getStats();
      const untag = stats.byAction.UnTagResources;
      const b = bounds(before, policy, now);
      return {
        estate: estate.name,
        description: estate.description,
        resources: before.length,
        violating: b.violating,
        keySets: b.keySets,
        tagsRemoved: check.removed,
        naiveCalls: b.naive,
        lowerBound: b.lowerBound,
        calls: untag?.total ?? 0,
        callsOk: untag?.codes['OK'] ?? 0,
        readCalls: (stats.byAction.ListVpcPeerConnections?.total ?? 0) + (stats.byAction.ListTagResources?.total ?? 0),
        verified: check.ok && !result.failed,
        notRemoved: check.notRemoved.length,
        wronglyRemoved: check.wronglyRemoved.length,
        runSeconds: Math.round(seconds * 10) / 10,
      };
    });
  } finally {
    await emulator.close();
  }
}

export const callsBenchmark: Benchmark = {
  name: 'calls',
  title: '1. UnTagResources calls against the lower bound',
  async run(ctx): Promise<BenchOutcome> {
    const n = ctx.quick ? 5_000 : 50_000;
    heading(`${this.title} (${n.toLocaleString('en-US')} connections per estate, 3 regions)`);
    const rows = [];
    for (const [i, build] of [uniformEstate, skewedEstate, distinctEstate, allEstate].entries()) {
      const estate = build(n, 1000 + i);
      note(`estate ${estate.name}: runOnce ...`);
      rows.push(await runEstate(ctx, estate));
    }
    process.stdout.write(
      table(
        ['estate', 'connections', 'violating', 'key sets', 'tags removed', 'naive calls', 'lower bound', 'calls made', 'made/bound', 'naive/made', 'verified', 'run s'],
        rows.map((r) => [
          r.estate, r.resources, r.violating, r.keySets, r.tagsRemoved, r.naiveCalls, r.lowerBound, r.calls,
          (r.calls / Math.max(1, r.lowerBound)).toFixed(3), (r.naiveCalls / Math.max(1, r.calls)).toFixed(1), r.verified ? 'yes' : 'NO', r.runSeconds.toFixed(1),
        ]),
      ) + '\n',
    );
    process.stdout.write('key sets: distinct (region, keys to remove) groups; lower bound: sum of ceil(ids/20) x ceil(keys/20) over them.\n');
    const atBound = rows.every((r) => r.calls === r.lowerBound);
    return {
      result: { connectionsPerEstate: n, regions: REGIONS, estates: rows },
      targets: [
        {
          benchmark: 'calls',
          target: 'UnTagResources calls = lower bound (every estate)',
          measured: rows.map((r) => `${r.estate} ${r.calls}/${r.lowerBound}`).join(', '),
          met: atBound && rows.every((r) => r.verified),
        },
      ],
    };
  },
};
