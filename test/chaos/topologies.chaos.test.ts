// The reliability scenarios on the two highly-available Redis topologies (issue 17), each started and stopped here:
// a Redis Cluster of 3 masters with a replica each, and a master with a replica watched by three Sentinels.
// Per topology: workers SIGKILLed and a master SIGKILLed during a run (failover), and a whole-Redis outage. The
// oracle is the chaos suite's: the emulator's final state is exact and no ClientToken was used with two parameter
// sets. What asynchronous replication lost in the failover is measured (writes acknowledged by the dead master but
// not yet on its replica) and printed: a replayed batch is harmless under its ClientToken, a lost one is found by a
// scan run afterwards, which the scenario does and then checks the state again.
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, type EmulatorAdmin } from '../../src/emulator/index.js';
import type { CompiledPolicy } from '../../src/policy/index.js';
import { createRedis } from '../../src/queue/index.js';
import { EMULATOR_KEYS, cleanupPrefix, eventually, uniquePrefix } from '../support/harness.js';
import { startTestCluster, startTestSentinel, type TestTopology } from '../support/redis-topology.js';
import {
  chaosEnv, chaosPolicyDir, chaosQueues, compileDir, pendingJobs, removeHomes, scanCount, sleep, startChaosEmulator, waitForRunEnd, type ChaosEmulator,
} from './support/cluster.js';
import { judgeRun, plannedBatches, type RunVerdict } from './support/oracle.js';
import { everythingPrinted, isRunning, outputFloods, startDaemon, stopAll, stopProcess, type Daemon } from './support/processes.js';
import { renderSummary, type ScenarioRow } from './support/summary.js';

const API_TOKEN = `chaos-api-${randomUUID()}`;
const OUTAGE_MS = 10_000;
const rows: ScenarioRow[] = [];
const secrets: string[] = [API_TOKEN, EMULATOR_KEYS.accessKeySecret];
/** Slow enough calls that faults land mid-run; few enough batches that a scenario takes a minute or two. */
const FAULTS = { latencyMs: 250, jitterMs: 150, actions: ['UnTagResources' as const] };

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

async function stage(name: string, topology: TestTopology, count: number, seed: number): Promise<Stage> {
  const prefix = uniquePrefix(`chaos-${name}`);
  const emulator = await startChaosEmulator({ count, seed, faults: FAULTS });
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

async function judge(topology: TestTopology, s: Stage, before: Awaited<ReturnType<EmulatorAdmin['getState']>>['resources']): Promise<RunVerdict> {
  return withQueues(topology, s.prefix, async (queues) => {
    const [after, log, batches] = await Promise.all([s.admin.getState(), s.admin.getCalls(), plannedBatches(queues.untag.values())]);
    expect(log.dropped, 'the emulator call log dropped records').toBe(0);
    return judgeRun({ before, after: after.resources, policies: s.policies, now: s.now, calls: log.calls, batches });
  });
}

const first = (problems: readonly string[]): string[] => problems.slice(0, 20);

function expectExact(verdict: RunVerdict): void {
  expect(first(outputFloods()), 'processes that flooded their output').toEqual([]);
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

function survived(verdict: RunVerdict): boolean {
  const problems = [verdict.tokenConflicts, verdict.lost, verdict.doubled, verdict.removedTwice, verdict.replay, verdict.state.notRemoved, verdict.state.wronglyRemoved];
  return verdict.mismatches === 0 && problems.every((p) => p.length === 0) && outputFloods().length === 0;
}

/** Asks a daemon to scan every policy now (what the next scheduled scan would do), and waits for the work to end. */
async function rescan(topology: TestTopology, s: Stage, daemon: Daemon): Promise<void> {
  for (const p of s.policies) {
    const res = await fetch(`${daemon.url}/v1/policies/${p.name}/scan`, { method: 'POST', headers: { authorization: `Bearer ${API_TOKEN}` } });
    expect(res.status, `rescan ${p.name}`).toBeLessThan(300);
  }
  await withQueues(topology, s.prefix, (queues) => waitForRunEnd({ queues, scans: 2 * scanCount(s.policies), admin: s.admin, timeoutMs: 120_000 }));
}

const applied = async (s: Stage) => (await s.admin.getStats()).byAction['UnTagResources']?.applied ?? 0;
const replayed = async (s: Stage) => (await s.admin.getStats()).byAction['UnTagResources']?.replayed ?? 0;

const TOPOLOGIES: Array<{ name: string; start: () => Promise<TestTopology> }> = [
  { name: 'Redis Cluster (3 masters, 3 replicas)', start: () => startTestCluster() },
  { name: 'Sentinel (master, replica, 3 Sentinels)', start: () => startTestSentinel() },
];

describe.sequential('tagwarden on highly-available Redis under chaos', () => {
  afterAll(async () => {
    await stopAll();
    removeHomes();
    if (rows.length > 0) process.stdout.write(`\nchaos summary (Redis topologies)\n${renderSummary(rows)}\n\n`);
    // No process printed a secret: API token, cloud secret, Redis passwords.
    for (const { source, text } of everythingPrinted()) for (const secret of secrets) expect(text.includes(secret), `${source} printed a secret`).toBe(false);
  });

  for (const [index, { name, start }] of TOPOLOGIES.entries()) {
    const short = index === 0 ? 'cluster' : 'sentinel';

    it(`${short}: loses and doubles nothing when workers and a master are SIGKILLed during a run (${name})`, async () => {
      const t0 = Date.now();
      const row: ScenarioRow = { scenario: `${short}: SIGKILL workers + master`, faults: '-', survived: false, batchesLost: NaN, batchesDoubled: NaN, tagsWronglyRemoved: NaN, seconds: NaN };
      rows.push(row);
      const topology = await start();
      secrets.push(topology.password);
      const s = await stage(`${short}-kill`, topology, 9_000, 21 + index);
      try {
        const before = (await s.admin.getState()).resources;
        const live = await Promise.all([1, 2].map(() => startDaemon(`${short}-kill`, s.policiesDir, s.env)));
        s.daemons.push(...live);
        await eventually(async () => ((await applied(s)) >= 60 ? true : undefined), 120_000, 200);

        // A worker dies mid-batch; a replacement starts.
        const victim = live.shift()!;
        victim.child.kill('SIGKILL');
        await victim.exited;
        const replacement = startDaemon(`${short}-kill`, s.policiesDir, s.env).then((d) => {
          s.daemons.push(d);
          live.push(d);
        });

        // Then a master dies, with work in flight and queued.
        const pendingAtKill = await withQueues(topology, s.prefix, (q) => pendingJobs(q.all));
        const failover = await topology.killMaster();
        await replacement;
        await sleep(1_000);
        const second = live.shift()!;
        second.child.kill('SIGKILL');
        await second.exited;
        s.daemons.push(await startDaemon(`${short}-kill`, s.policiesDir, s.env).then((d) => (live.push(d), d)));
        // The dead master comes back as a replica.
        await failover.killed.start();

        await withQueues(topology, s.prefix, (queues) => waitForRunEnd({ queues, scans: scanCount(s.policies), admin: s.admin, timeoutMs: 180_000 }));
        for (const d of live) expect(isRunning(d), `${d.name} exited without being killed`).toBe(true);
        const afterRun = await judge(topology, s, before);
        // What asynchronous replication lost: work the dead master had acknowledged that the promoted replica never
        // got. A lost batch leaves its tags (found by the next scan); a lost completion makes a batch run again under
        // the same ClientToken (a replay the emulator answers without a change).
        const leftByLoss = afterRun.state.notRemoved.length;
        const replaysAfterKill = await replayed(s);
        if (leftByLoss > 0) await rescan(topology, s, live[0]!);
        const verdict = leftByLoss > 0 ? await judge(topology, s, before) : afterRun;

        Object.assign(row, {
          faults: `2 worker SIGKILL, master SIGKILL (failover ${(failover.failoverMs / 1000).toFixed(1)} s)`,
          survived: survived(verdict),
          batchesLost: verdict.lost.length, batchesDoubled: verdict.doubled.length + verdict.removedTwice.length,
          tagsWronglyRemoved: verdict.state.wronglyRemoved.length, seconds: (Date.now() - t0) / 1000,
        });
        process.stdout.write(
          `${short} kill: ${verdict.planned} batches, ${pendingAtKill} jobs pending at the master kill, failover ${failover.failoverMs} ms, ` +
            `${replaysAfterKill} ClientToken replays, ${leftByLoss} (resource, key) pairs left by replication loss before the rescan\n`,
        );
        expect(pendingAtKill, 'the master was killed after the run had ended').toBeGreaterThan(0);
        expectExact(verdict);
      } finally {
        await s.close();
        await topology.close();
      }
    }, 420_000);

    it(`${short}: stays up, reports which topology is down through a ${OUTAGE_MS / 1000} s outage of every Redis node, and ends exact (${name})`, async () => {
      const t0 = Date.now();
      const row: ScenarioRow = { scenario: `${short}: Redis outage`, faults: '-', survived: false, batchesLost: NaN, batchesDoubled: NaN, tagsWronglyRemoved: NaN, seconds: NaN };
      rows.push(row);
      const topology = await start();
      secrets.push(topology.password);
      const s = await stage(`${short}-outage`, topology, 9_000, 31 + index);
      try {
        const before = (await s.admin.getState()).resources;
        const daemons = await Promise.all([1, 2].map(() => startDaemon(`${short}-outage`, s.policiesDir, s.env)));
        s.daemons.push(...daemons);
        await eventually(async () => ((await applied(s)) >= 60 ? true : undefined), 120_000, 200);
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
          await sleep(1_000);
        }
        for (const d of daemons) expect(isRunning(d), `${d.name} exited during the outage`).toBe(true);
        await topology.startAll();
        const outageMs = Date.now() - stoppedAt;
        const settled = probes.filter((p) => p.atMs >= 3_000);
        expect(settled.length).toBeGreaterThan(4);
        // Not ready, alive, and the reason names the topology.
        const label = short === 'cluster' ? /^cluster: / : /^sentinel twmaster: /;
        expect(settled.filter((p) => p.status !== 503 || p.healthz !== 200 || !label.test(p.detail)), JSON.stringify(probes.slice(-4))).toEqual([]);

        await topology.healthy();
        for (const d of daemons) await eventually(async () => ((await fetch(`${d.url}/readyz`)).status === 200 ? true : undefined), 90_000, 250);
        await withQueues(topology, s.prefix, (queues) => waitForRunEnd({ queues, scans: scanCount(s.policies), admin: s.admin, timeoutMs: 180_000 }));
        const verdict = await judge(topology, s, before);
        Object.assign(row, {
          faults: `every node down ${(outageMs / 1000).toFixed(0)} s`, survived: survived(verdict),
          batchesLost: verdict.lost.length, batchesDoubled: verdict.doubled.length + verdict.removedTwice.length,
          tagsWronglyRemoved: verdict.state.wronglyRemoved.length, seconds: (Date.now() - t0) / 1000,
        });
        process.stdout.write(`${short} outage: ${verdict.planned} batches, ${pendingAtStop} jobs pending at the stop, probe detail "${settled.at(-1)?.detail ?? ''}"\n`);
        expect(pendingAtStop, 'Redis stopped after the run had ended').toBeGreaterThan(0);
        expectExact(verdict);
      } finally {
        await s.close();
        await topology.close();
      }
    }, 420_000);
  }
});
