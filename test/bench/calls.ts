// Benchmark 1: UnTagResources calls made by the real pipeline (runOnce against the emulator) on designed estates,
// against the floor (sum over (policy, region) of ceil(violating / 20)), the planner's computed lower bound, the
// calls exact-set grouping would make (sum over key sets of ceil(ids/20) x ceil(keys/20)) and a naive client.
import { performance } from 'node:perf_hooks';
import { createEmulatorAdmin, startEmulator, type EmulatorResource } from '../../src/emulator/index.js';
import { checkState, expectedRemovals, toResource } from '../../src/emulator/verify.js';
import { loadConfig } from '../../src/config/index.js';
import { MAX_IDS_PER_CALL, MAX_KEYS_PER_CALL, type Removal } from '../../src/model.js';
import { callFloor } from '../../src/planner/index.js';
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

/** Each connection carries a random subset of the policy's 10 forbidden keys (exact keys: ListTagResources discovery). */
function subsetEstate(n: number, seed: number): Estate {
  const rng = new Rng(seed);
  const forbidden = Array.from({ length: 10 }, (_, k) => keyName('legacy-', k));
  const resources = Array.from({ length: n }, (_, i) => {
    const tags = kept(rng);
    for (const key of forbidden) if (rng.next() < 0.3) tags[key] = date(rng);
    return resource('r', i, tags);
  });
  return { name: 'subset', description: 'random subsets of 10 forbidden keys (p = 0.3 each)', resources, spec: { remove: { keys: forbidden } } };
}

/** 60 pattern-matched keys, 1-4 on each connection: the removable keys' union exceeds 20 (packed against the bound). */
function wideEstate(n: number, seed: number): Estate {
  const rng = new Rng(seed);
  const resources = Array.from({ length: n }, (_, i) => {
    const tags = kept(rng);
    const count = 1 + rng.int(4);
    while (Object.keys(tags).length < 2 + count) tags[keyName('tmp-w', rng.int(60))] = date(rng);
    return resource('w', i, tags);
  });
  return { name: 'wide', description: '1-4 of 60 pattern-matched keys (union > 20)', resources, spec: { remove: { keyPatterns: ['tmp-*'] }, keep: ['owner', 'env'] } };
}

/** Lower bound and naive calls of the removals the policy engine decides, grouped per (region, exact key set). */
function bounds(before: readonly EmulatorResource[], policy: CompiledPolicy, now: Date) {
  const groups = new Map<string, { ids: number; keys: number }>();
  const byRegion = new Map<string, Removal[]>();
  let naive = 0;
  let violating = 0;
  for (const r of before) {
    const removal = matchResource(policy, toResource(r), now);
    if (!removal) continue;
    violating += 1;
    const list = byRegion.get(r.region) ?? [];
    list.push(removal);
    byRegion.set(r.region, list);
    const keys = [...new Set(removal.keys)].sort();
    naive += removal.all ? 1 : Math.ceil(keys.length / MAX_KEYS_PER_CALL);
    const signature = `${r.region}\n${removal.all ? '*all*' : keys.join('\n')}`;
    const group = groups.get(signature) ?? { ids: 0, keys: removal.all ? 1 : keys.length };
    group.ids += 1;
    groups.set(signature, group);
  }
  let exact = 0;
  for (const g of groups.values()) exact += Math.ceil(g.ids / MAX_IDS_PER_CALL) * Math.ceil(g.keys / MAX_KEYS_PER_CALL);
  let floor = 0;
  let bound = 0;
  for (const removals of byRegion.values()) {
    const f = callFloor(removals);
    floor += f.simple;
    bound += f.bound;
  }
  // The union of the policy's removable keys per region: does it fit in one call's 20 keys?
  const union = Math.max(0, ...[...byRegion.values()].map((rs) => new Set(rs.flatMap((r) => (r.all ? [] : r.keys))).size));
  return { exact, floor, bound, naive, violating, keySets: groups.size, unionKeys: union };
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
        exactCalls: b.exact,
        floor: b.floor,
        bound: b.bound,
        unionKeys: b.unionKeys,
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

const UNION_TARGET = 1.02;

export const callsBenchmark: Benchmark = {
  name: 'calls',
  title: '1. UnTagResources calls against the floor',
  async run(ctx): Promise<BenchOutcome> {
    const n = ctx.quick ? 5_000 : 50_000;
    const subsetN = ctx.quick ? 2_000 : 10_000;
    heading(`${this.title} (${n.toLocaleString('en-US')} connections per estate, subset ${subsetN.toLocaleString('en-US')}, 3 regions)`);
    const rows = [];
    const builds: Array<[(n: number, seed: number) => Estate, number]> = [
      [uniformEstate, n], [skewedEstate, n], [distinctEstate, n], [allEstate, n], [subsetEstate, subsetN], [wideEstate, n],
    ];
    for (const [i, [build, size]] of builds.entries()) {
      const estate = build(size, 1000 + i);
      note(`estate ${estate.name}: runOnce ...`);
      rows.push(await runEstate(ctx, estate));
    }
    process.stdout.write(
      table(
        ['estate', 'connections', 'violating', 'key sets', 'union keys', 'tags removed', 'naive', 'exact-set', 'floor', 'bound', 'calls made', 'made/floor', 'made/bound', 'verified', 'run s'],
        rows.map((r) => [
          r.estate, r.resources, r.violating, r.keySets, r.unionKeys, r.tagsRemoved, r.naiveCalls, r.exactCalls, r.floor, r.bound, r.calls,
          (r.calls / Math.max(1, r.floor)).toFixed(3), (r.calls / Math.max(1, r.bound)).toFixed(3), r.verified ? 'yes' : 'NO', r.runSeconds.toFixed(1),
        ]),
      ) + '\n',
    );
    process.stdout.write(
      'floor: sum over (policy, region) of ceil(violating / 20); bound: the planner\'s computed lower bound (all=true apart; ' +
        'ceil(pairs / 400) and resources losing > 20 keys); exact-set: the calls of TAGWARDEN_PACKING=exact; union keys: the most removable keys in one region.\n',
    );
    const fits = rows.filter((r) => r.unionKeys <= MAX_KEYS_PER_CALL);
    const over = rows.filter((r) => r.unionKeys > MAX_KEYS_PER_CALL);
    return {
      result: { connectionsPerEstate: n, subsetConnections: subsetN, regions: REGIONS, estates: rows },
      targets: [
        {
          benchmark: 'calls',
          target: `UnTagResources calls <= ${UNION_TARGET} x floor where the union fits in 20 keys`,
          measured: fits.map((r) => `${r.estate} ${(r.calls / Math.max(1, r.floor)).toFixed(3)}x`).join(', '),
          met: fits.every((r) => r.calls <= UNION_TARGET * r.floor && r.verified),
        },
        ...over.map((r) => ({
          benchmark: 'calls',
          target: `${r.estate} (union ${r.unionKeys} keys > 20): calls against the computed bound (reported)`,
          measured: `${r.calls} calls, bound ${r.bound} (${(r.calls / Math.max(1, r.bound)).toFixed(2)}x), floor ${r.floor}, exact-set ${r.exactCalls}`,
          met: null,
        })),
      ],
    };
  },
};
