// The reliability scenarios on the two highly-available Redis topologies (issue 17), each started and stopped here
// by PID on 127.0.0.1: a Redis Cluster of 3 masters with a replica each, and a master with a replica watched by
// three Sentinels. Per topology, on one set of servers and in this order: the pipeline (two daemons, no fault), a
// whole-Redis outage, and workers plus a master SIGKILLed during a run (a failover). The oracle is the chaos
// suite's: the emulator's final state is exact, no batch is lost or applied twice, and no ClientToken was used
// with two parameter sets. What asynchronous replication lost in the failover is measured and printed: batches run
// again under their ClientToken after the kill (replays), and (resource, key) pairs left when the run ended, which
// a rescan (what the next scheduled scan does) must find again, after which the state is checked exactly again.
// Nothing any daemon printed may mention CROSSSLOT (a script across two slots) or a secret.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, type EmulatorAdmin, type EmulatorResource } from '../../src/emulator/index.js';
import type { CompiledPolicy } from '../../src/policy/index.js';
import { Cluster } from 'ioredis';
import { createRedis, untagQueueName } from '../../src/queue/index.js';
import { keySlot } from '../support/key-slot.js';
import { EMULATOR_KEYS, cleanupPrefix, eventually, uniquePrefix } from '../support/harness.js';
import { startTestCluster, startTestSentinel, type TestTopology } from '../support/redis-topology.js';
import {
  ACCOUNT, chaosEnv, chaosPolicyDir, chaosQueues, compileDir, pendingJobs, removeHomes, scanCount, sleep, startChaosEmulator, waitForRunEnd, type ChaosEmulator,
} from './support/cluster.js';
import { judgeRun, plannedBatches, type RunVerdict } from './support/oracle.js';
import { everythingPrinted, isRunning, outputFloods, startDaemon, stopAll, stopProcess, type Daemon } from './support/processes.js';
import { renderSummary, type ScenarioRow } from './support/summary.js';

const API_TOKEN = `chaos-api-${randomUUID()}`;
const OUTAGE_MS = 8_000;
const rows: ScenarioRow[] = [];
const secrets: string[] = [API_TOKEN, EMULATOR_KEYS.accessKeySecret];
/** Failover measurements, printed with the summary (docs: deploy/README "What a failover does"). */
const losses: string[] = [];
/** Slow enough calls that faults land mid-run; few enough batches that a scenario takes well under a minute. */
const FAULTS = { latencyMs: 120, jitterMs: 80, actions: ['UnTagResources' as const] };
const ESTATE = 6_000;

interface Stage {
  prefix: string;
  emulator: ChaosEmulator;
  admin: EmulatorAdmin;
  policiesDir: string;
  policies: CompiledPolicy[];
  now: Date;
  daemons: Daemon[];
  env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

async function stage(name: string, topology: TestTopology, seed: number, faults: boolean): Promise<Stage> {
  const prefix = uniquePrefix(`chaos-${name}`);
  const emulator = await startChaosEmulator({ count: ESTATE, seed, ...(faults ? { faults: FAULTS } : {}) });
  const policiesDir = chaosPolicyDir();
  const now = new Date();
  const policies = await compileDir(policiesDir, now);
  const env = chaosEnv({ emulatorUrl: emulator.url, prefix, apiToken: API_TOKEN, redisUrl: topology.url });
  const daemons: Daemon[] = [];
  return {
    prefix, emulator, admin: createEmulatorAdmin(emulator.url), policiesDir, policies, now, daemons, env,
    async close() {
      await Promise.all(daemons.map((d) => stopProcess(d, 10_000)));
      await emulator.close();
      await cleanupPrefix(prefix, topology.url).catch(() => undefined);
    },
  };
}

async function withQueues<T>(topology: TestTopology, prefix: string, fn: (q: ReturnType<typeof chaosQueues>) => Promise<T>): Promise<T> {
  const redis = createRedis(topology.url, { connectionName: 'tagwarden-chaos-watch' });
  redis.on('error', () => undefined);
  const queues = chaosQueues(redis, prefix);
  try {
    return await fn(queues);
  } finally {
    await queues.close();
    redis.disconnect();
  }
}

async function judge(topology: TestTopology, s: Stage, before: readonly EmulatorResource[]): Promise<RunVerdict> {
  return withQueues(topology, s.prefix, async (queues) => {
    const [after, log, batches] = await Promise.all([s.admin.getState(), s.admin.getCalls(), plannedBatches(queues.untag.values())]);
    expect(log.dropped, 'the emulator call log dropped records').toBe(0);
    return judgeRun({ before, after: after.resources, policies: s.policies, now: s.now, calls: log.calls, batches });
  });
}

const first = (problems: readonly string[]): string[] => problems.slice(0, 20);

/** Lines of the stage's daemons that show a script refused for spanning two slots. */
const crossSlot = (s: Stage): string[] => s.daemons.flatMap((d) => d.lines.filter((l) => /CROSSSLOT|CrossSlotKeysError/.test(l)).map((l) => `${d.name}: ${l.slice(0, 300)}`));

function expectExact(s: Stage, verdict: RunVerdict): void {
  expect(first(outputFloods()), 'processes that flooded their output').toEqual([]);
  expect(first(crossSlot(s)), 'a script across two hash slots').toEqual([]);
  expect(verdict.planned, 'the run planned no batch: the scenario tested nothing').toBeGreaterThan(0);
  expect(first(verdict.tokenConflicts), 'ClientTokens used with two parameter sets').toEqual([]);
  expect(verdict.mismatches, 'IdempotentParameterMismatch answers').toBe(0);
  expect(first(verdict.lost), 'lost batches').toEqual([]);
  expect(first(verdict.doubled), 'doubled batches').toEqual([]);
  expect(first(verdict.removedTwice), 'tags removed twice').toEqual([]);
  expect(first(verdict.replay), 'the call log does not replay to the final state').toEqual([]);
  expect(first(verdict.state.notRemoved), 'tags that had to go and are still there').toEqual([]);
  expect(first(verdict.state.wronglyRemoved), 'tags removed that had to stay').toEqual([]);
}

function survived(s: Stage, verdict: RunVerdict): boolean {
  const problems = [verdict.tokenConflicts, verdict.lost, verdict.doubled, verdict.removedTwice, verdict.replay, verdict.state.notRemoved, verdict.state.wronglyRemoved];
  return verdict.planned > 0 && verdict.mismatches === 0 && problems.every((p) => p.length === 0) && outputFloods().length === 0 && crossSlot(s).length === 0;
}

function record(row: ScenarioRow, s: Stage, verdict: RunVerdict, faults: string, t0: number): void {
  Object.assign(row, {
    faults, survived: survived(s, verdict),
    batchesLost: verdict.lost.length, batchesDoubled: verdict.doubled.length + verdict.removedTwice.length,
    tagsWronglyRemoved: verdict.state.wronglyRemoved.length, seconds: (Date.now() - t0) / 1000,
  });
}

function newRow(scenario: string): ScenarioRow {
  const row: ScenarioRow = { scenario, faults: '-', survived: false, batchesLost: NaN, batchesDoubled: NaN, tagsWronglyRemoved: NaN, seconds: NaN };
  rows.push(row);
  return row;
}

/** Asks a daemon to scan every policy now (what the next scheduled scan does), and waits for the work to end. */
async function rescan(topology: TestTopology, s: Stage, daemon: Daemon): Promise<void> {
  const scansBefore = await withQueues(topology, s.prefix, async (q) => {
    const c = await q.scan.getJobCounts('completed', 'failed');
    return (c.completed ?? 0) + (c.failed ?? 0);
  });
  for (const p of s.policies) {
    const res = await fetch(`${daemon.url}/v1/policies/${p.name}/scan`, { method: 'POST', headers: { authorization: `Bearer ${API_TOKEN}` } });
    expect(res.status, `rescan ${p.name}`).toBeLessThan(300);
    await res.arrayBuffer();
  }
  await withQueues(topology, s.prefix, (queues) => waitForRunEnd({ queues, scans: scansBefore + scanCount(s.policies), admin: s.admin, timeoutMs: 120_000 }));
}

/** The address of the cluster master that holds a key's slot (as the cluster's slot map says now). */
async function masterOf(topology: TestTopology, key: string): Promise<string> {
  const redis = createRedis(topology.url, { connectionName: 'tagwarden-chaos-slots' });
  redis.on('error', () => undefined);
  try {
    await redis.ping();
    const address = redis instanceof Cluster ? redis.slots[keySlot(key)]?.[0] : undefined;
    if (!address) throw new Error(`no master holds the slot of ${key}`);
    return address;
  } finally {
    redis.disconnect();
  }
}

const stats = async (s: Stage) => (await s.admin.getStats()).byAction['UnTagResources'] ?? { applied: 0, replayed: 0, total: 0 };

const TOPOLOGIES: Array<{ short: 'cluster' | 'sentinel'; name: string; start: () => Promise<TestTopology>; label: RegExp }> = [
  { short: 'cluster', name: 'Redis Cluster, 3 masters + 3 replicas', start: () => startTestCluster(), label: /^cluster: / },
  { short: 'sentinel', name: 'Sentinel, master + replica + 3 Sentinels', start: () => startTestSentinel(), label: /^sentinel twmaster: / },
];

describe.sequential('tagwarden on highly-available Redis under chaos', () => {
  afterAll(async () => {
    await stopAll();
    removeHomes();
    if (rows.length > 0) process.stdout.write(`\nchaos summary (Redis topologies)\n${renderSummary(rows)}\n${losses.join('\n')}\n\n`);
    // No process printed a secret: API token, cloud secret, Redis passwords.
    for (const { source, text } of everythingPrinted()) for (const secret of secrets) expect(text.includes(secret), `${source} printed a secret`).toBe(false);
  });

  for (const [index, { short, name, start, label }] of TOPOLOGIES.entries()) {
    describe.sequential(name, () => {
      let topology: TestTopology;
      beforeAll(async () => {
        topology = await start();
        secrets.push(topology.password);
      }, 120_000);
      afterAll(async () => {
        await topology?.close();
      });

      it(`${short}: the pipeline with two daemons ends exact`, async () => {
        const t0 = Date.now();
        const row = newRow(`${short}: pipeline`);
        const s = await stage(`${short}-pipe`, topology, 11 + index, false);
        try {
          const before = (await s.admin.getState()).resources;
          s.daemons.push(...(await Promise.all([1, 2].map(() => startDaemon(`${short}-pipe`, s.policiesDir, s.env)))));
          await withQueues(topology, s.prefix, (queues) => waitForRunEnd({ queues, scans: scanCount(s.policies), admin: s.admin, timeoutMs: 120_000 }));
          const verdict = await judge(topology, s, before);
          record(row, s, verdict, 'none', t0);
          process.stdout.write(`${short} pipeline: ${verdict.planned} batches, ${verdict.applied} applied calls\n`);
          expectExact(s, verdict);
        } finally {
          await s.close();
        }
      }, 240_000);

      it(`${short}: stays up, says which topology is down through a ${OUTAGE_MS / 1000} s outage of every data node, and ends exact`, async () => {
        const t0 = Date.now();
        const row = newRow(`${short}: Redis outage`);
        const s = await stage(`${short}-outage`, topology, 31 + index, true);
        try {
          const before = (await s.admin.getState()).resources;
          const daemons = await Promise.all([1, 2].map(() => startDaemon(`${short}-outage`, s.policiesDir, s.env)));
          s.daemons.push(...daemons);
          await eventually(async () => ((await stats(s)).applied >= 40 ? true : undefined), 120_000, 200);
          const pendingAtStop = await withQueues(topology, s.prefix, (q) => pendingJobs(q.all));
          await topology.stopAll();
          const stoppedAt = Date.now();
          const probes: Array<{ atMs: number; status: number; detail: string; healthz: number }> = [];
          while (Date.now() - stoppedAt < OUTAGE_MS) {
            for (const d of daemons) {
              const ready = await fetch(`${d.url}/readyz`, { signal: AbortSignal.timeout(8_000) });
              const body = (await ready.json()) as { checks?: { redis?: { detail?: string } } };
              const health = await fetch(`${d.url}/healthz`, { signal: AbortSignal.timeout(8_000) });
              await health.arrayBuffer();
              probes.push({ atMs: Date.now() - stoppedAt, status: ready.status, detail: body.checks?.redis?.detail ?? '', healthz: health.status });
            }
            await sleep(500);
          }
          for (const d of daemons) expect(isRunning(d), `${d.name} exited during the outage`).toBe(true);
          await topology.startAll();
          const outageMs = Date.now() - stoppedAt;
          const settled = probes.filter((p) => p.atMs >= 3_000);
          expect(settled.length).toBeGreaterThan(4);
          // Not ready, alive, and the reason names the topology.
          expect(settled.filter((p) => p.status !== 503 || p.healthz !== 200 || !label.test(p.detail)), JSON.stringify(probes.slice(-4))).toEqual([]);

          await topology.healthy();
          for (const d of daemons) await eventually(async () => ((await fetch(`${d.url}/readyz`)).status === 200 ? true : undefined), 90_000, 250);
          await withQueues(topology, s.prefix, (queues) => waitForRunEnd({ queues, scans: scanCount(s.policies), admin: s.admin, timeoutMs: 180_000 }));
          const verdict = await judge(topology, s, before);
          record(row, s, verdict, `every data node down ${(outageMs / 1000).toFixed(0)} s`, t0);
          process.stdout.write(`${short} outage: ${verdict.planned} batches, ${pendingAtStop} jobs pending at the stop, probe detail "${settled.at(-1)?.detail ?? ''}"\n`);
          expect(pendingAtStop, 'Redis stopped after the run had ended').toBeGreaterThan(0);
          expectExact(s, verdict);
        } finally {
          await s.close();
        }
      }, 300_000);

      it(`${short}: loses and doubles nothing when a worker and then a master are SIGKILLed during a run; the daemons follow the failover`, async () => {
        const t0 = Date.now();
        const row = newRow(`${short}: SIGKILL worker + master`);
        const s = await stage(`${short}-kill`, topology, 21 + index, true);
        try {
          const before = (await s.admin.getState()).resources;
          const live = await Promise.all([1, 2, 3].map(() => startDaemon(`${short}-kill`, s.policiesDir, s.env)));
          s.daemons.push(...live);
          await eventually(async () => ((await stats(s)).applied >= 40 ? true : undefined), 120_000, 200);

          // A worker dies mid-batch (its jobs come back through BullMQ's stalled check).
          const victim = live.shift()!;
          victim.child.kill('SIGKILL');
          await victim.exited;
          await sleep(500);

          // Then a master dies, with work in flight and queued: on the cluster, the master of the deployment's
          // queues (the account's slot), so the daemons' own keys fail over.
          const pendingAtKill = await withQueues(topology, s.prefix, (q) => pendingJobs(q.all));
          const atKill = await stats(s);
          const victimAddress = short === 'cluster' ? await masterOf(topology, untagQueueName(ACCOUNT, 'cn-hangzhou')) : undefined;
          const failover = await topology.killMaster(victimAddress ? (masters) => masters.find((m) => m.address === victimAddress)! : undefined);
          await withQueues(topology, s.prefix, (queues) => waitForRunEnd({ queues, scans: scanCount(s.policies), admin: s.admin, timeoutMs: 180_000 }));
          // The daemons that were not killed followed the failover without a restart.
          for (const d of live) expect(isRunning(d), `${d.name} exited without being killed`).toBe(true);
          const atEnd = await stats(s);
          const afterRun = await judge(topology, s, before);
          // What asynchronous replication (and the lost locks) cost: batches run again under their ClientToken after the
          // kill, and (resource, key) pairs still tagged when the run ended (a batch whose creation the replica never got).
          const replays = atEnd.replayed - atKill.replayed;
          const leftByLoss = afterRun.state.notRemoved.length;
          let rescanned = 0;
          if (leftByLoss > 0) {
            const applied0 = (await stats(s)).applied;
            await rescan(topology, s, live[0]!);
            rescanned = (await stats(s)).applied - applied0;
          }
          const verdict = leftByLoss > 0 ? await judge(topology, s, before) : afterRun;
          // The dead master comes back (as a replica) so the servers are whole for whatever runs next.
          await failover.killed.start();

          record(row, s, verdict, `worker SIGKILL, master SIGKILL (failover ${(failover.failoverMs / 1000).toFixed(1)} s)`, t0);
          const line =
            `${short} failover: ${verdict.planned} batches, ${pendingAtKill} jobs pending at the master kill, failover ${failover.failoverMs} ms, ` +
            `${replays} batches replayed under their ClientToken after the kill, ${leftByLoss} (resource, key) pairs left at the run's end, ` +
            `${rescanned} batches applied by the rescan`;
          losses.push(line);
          process.stdout.write(`${line}\n`);
          expect(pendingAtKill, 'the master was killed after the run had ended').toBeGreaterThan(0);
          expectExact(s, verdict);
        } finally {
          await s.close();
        }
      }, 360_000);
    });
  }

  it('every topology scenario survived', () => {
    expect(rows.map((r) => `${r.scenario}: ${r.survived ? 'survived' : 'FAILED'}`)).toEqual(rows.map((r) => `${r.scenario}: survived`));
    expect(rows.length).toBe(6);
  });
});
