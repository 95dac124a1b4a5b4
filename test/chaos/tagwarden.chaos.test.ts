// The reliability suite (issue 7): tagwarden daemons against SIGKILLs, a Redis outage, cloud faults, bad input
// and unauthenticated callers. Every scenario checks the emulator's final state exactly and that no ClientToken was
// used with two parameter sets; the suite ends with a summary table. Run with `npm run test:chaos`.
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, type EmulatorAdmin, type RunningEmulator } from '../../src/emulator/index.js';
import type { CompiledPolicy } from '../../src/policy/index.js';
import { createRedis } from '../../src/queue/index.js';
import { REDIS_URL, cleanupPrefix, eventually, uniquePrefix } from '../support/harness.js';
import {
  chaosEnv, chaosPolicyDir, chaosQueues, compileDir, pendingJobs, scanCount, seededRandom, sleep, startChaosEmulator,
  waitForRunEnd,
} from './support/cluster.js';
import { countBy, judgeRun, observedCode, plannedBatches, type RunVerdict } from './support/oracle.js';
import { isRunning, scrapeMetrics, startDaemon, stopAll, stopProcess, type Daemon } from './support/processes.js';
import { sumBy } from './support/prom.js';
import { startTestRedis } from './support/redis-server.js';
import { renderSummary, type ScenarioRow } from './support/summary.js';

const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const API_TOKEN = `chaos-api-${randomUUID()}`;
const rows: ScenarioRow[] = [];
const OUTAGE_MS = 20_000;

/** Everything one scenario owns, released in `close` whatever happened. */
interface Stage {
  prefix: string;
  emulator: RunningEmulator;
  admin: EmulatorAdmin;
  policiesDir: string;
  policies: CompiledPolicy[];
  now: Date;
  daemons: Daemon[];
  redisUrl: string;
  close(): Promise<void>;
}

async function stage(name: string, options: { count: number; seed: number; redisUrl?: string; faults?: Parameters<typeof startChaosEmulator>[0]['faults'] }): Promise<Stage> {
  const prefix = uniquePrefix(`chaos-${name}`);
  const emulator = await startChaosEmulator({ count: options.count, seed: options.seed, ...(options.faults ? { faults: options.faults } : {}) });
  const policiesDir = chaosPolicyDir();
  const now = new Date();
  const policies = await compileDir(policiesDir, now);
  const redisUrl = options.redisUrl ?? REDIS_URL;
  const daemons: Daemon[] = [];
  return {
    prefix, emulator, admin: createEmulatorAdmin(emulator.url), policiesDir, policies, now, daemons, redisUrl,
    async close() {
      await Promise.all(daemons.map((d) => stopProcess(d, 10_000)));
      await emulator.close();
      await cleanupPrefix(prefix, redisUrl).catch(() => undefined);
      rmSync(policiesDir, { recursive: true, force: true });
    },
  };
}

/** Reads the final state, the call log and the planned batches, and judges them. */
async function judge(s: Stage, before: Awaited<ReturnType<EmulatorAdmin['getState']>>['resources']): Promise<RunVerdict> {
  const redis = createRedis(s.redisUrl, { connectionName: 'tagwarden-chaos-judge' });
  const queues = chaosQueues(redis, s.prefix);
  try {
    const [after, log, batches] = await Promise.all([s.admin.getState(), s.admin.getCalls(), plannedBatches(queues.untag.values())]);
    expect(log.dropped, 'the emulator call log dropped records').toBe(0);
    return judgeRun({ before, after: after.resources, policies: s.policies, now: s.now, calls: log.calls, batches });
  } finally {
    await queues.close();
    redis.disconnect();
  }
}

/** The assertions every scenario makes on its verdict. */
function expectExact(verdict: RunVerdict): void {
  expect(verdict.planned, 'the run planned no batch: the scenario tested nothing').toBeGreaterThan(0);
  expect(verdict.tokenConflicts, 'ClientTokens used with two parameter sets').toEqual([]);
  expect(verdict.mismatches, 'IdempotentParameterMismatch answers').toBe(0);
  expect(verdict.lost, 'lost batches').toEqual([]);
  expect(verdict.doubled, 'doubled batches').toEqual([]);
  expect(verdict.state.notRemoved, 'tags that had to go and are still there').toEqual([]);
  expect(verdict.state.wronglyRemoved, 'tags removed that had to stay').toEqual([]);
  expect(verdict.state.removed).toBeGreaterThan(0);
}

describe.sequential(`tagwarden under chaos (CHAOS_SEED=${SEED})`, () => {
  afterAll(async () => {
    await stopAll();
    if (rows.length > 0) process.stdout.write(`\nchaos summary (CHAOS_SEED=${SEED})\n${renderSummary(rows)}\n\n`);
  });

  it('1. loses and doubles nothing when workers are SIGKILLed ten times during a run of thousands of batches', async () => {
    const t0 = Date.now();
    const s = await stage('kill', { count: 30_000, seed: 11, faults: { latencyMs: 100, jitterMs: 100, actions: ['UnTagResources'] } });
    const redis = createRedis(REDIS_URL, { connectionName: 'tagwarden-chaos-watch' });
    const queues = chaosQueues(redis, s.prefix);
    try {
      const before = (await s.admin.getState()).resources;
      const env = chaosEnv({ emulatorUrl: s.emulator.url, prefix: s.prefix, apiToken: API_TOKEN });
      const live: Daemon[] = await Promise.all([1, 2, 3].map(() => startDaemon('kill', s.policiesDir, env)));
      s.daemons.push(...live);
      const rng = seededRandom(SEED);
      const replacements: Array<Promise<Daemon>> = [];
      const kills: Array<{ victim: string; pendingJobs: number; atMs: number }> = [];
      for (let k = 0; k < 10; k++) {
        await sleep(1_000 + rng() * 2_000);
        while (live.length === 0) await Promise.race(replacements);
        const victim = live.splice(Math.floor(rng() * live.length), 1)[0]!;
        const pending = await pendingJobs(queues.all);
        victim.child.kill('SIGKILL');
        const exit = await victim.exited;
        expect(exit.signal).toBe('SIGKILL');
        kills.push({ victim: victim.name, pendingJobs: pending, atMs: Date.now() - t0 });
        const replacement = startDaemon('kill', s.policiesDir, env).then((d) => {
          s.daemons.push(d);
          live.push(d);
          return d;
        });
        replacements.push(replacement);
      }
      await Promise.all(replacements);
      // Every kill hit a run with work left: scans or batches still queued or in flight.
      expect(kills.filter((k) => k.pendingJobs === 0), `kills after the run had ended: ${JSON.stringify(kills)}`).toEqual([]);

      await waitForRunEnd({ queues, scans: scanCount(s.policies), admin: s.admin, timeoutMs: 180_000 });
      const scanFailed = await queues.scan.getJobCounts('failed');
      expect(scanFailed.failed, 'failed scans').toBe(0);
      for (const d of live) expect(isRunning(d), `${d.name} exited without being killed`).toBe(true);

      const verdict = await judge(s, before);
      rows.push({
        scenario: '1 SIGKILL workers', faults: `${kills.length} SIGKILL`, survived: verdict.lost.length === 0 && verdict.state.ok,
        batchesLost: verdict.lost.length, batchesDoubled: verdict.doubled.length, tagsWronglyRemoved: verdict.state.wronglyRemoved.length,
        seconds: (Date.now() - t0) / 1000,
      });
      process.stdout.write(`scenario 1: ${verdict.planned} batches, ${verdict.applied} applied calls, kills ${JSON.stringify(kills)}\n`);
      expect(verdict.planned).toBeGreaterThanOrEqual(2_000);
      expectExact(verdict);
    } finally {
      await queues.close();
      redis.disconnect();
      await s.close();
    }
  });
  it('2. stays up, reports not ready through a 20 s Redis outage, and finishes the run exactly after it', async () => {
    const t0 = Date.now();
    const redisServer = await startTestRedis();
    const s = await stage('redis', { count: 12_000, seed: 12, redisUrl: redisServer.url, faults: { latencyMs: 80, jitterMs: 80, actions: ['UnTagResources'] } });
    try {
      const before = (await s.admin.getState()).resources;
      const env = chaosEnv({ emulatorUrl: s.emulator.url, prefix: s.prefix, apiToken: API_TOKEN, redisUrl: redisServer.url });
      const daemons = await Promise.all([1, 2].map(() => startDaemon('redis', s.policiesDir, env)));
      s.daemons.push(...daemons);
      const applied = async () => (await s.admin.getStats()).byAction['UnTagResources']?.applied ?? 0;
      await eventually(async () => ((await applied()) >= 200 ? true : undefined), 120_000, 200);
      // Mid-run: batches are still queued when Redis goes away.
      const watch = createRedis(redisServer.url, { connectionName: 'tagwarden-chaos-watch' });
      const watchQueues = chaosQueues(watch, s.prefix);
      const pendingAtStop = await pendingJobs(watchQueues.all);
      await watchQueues.close();
      await watch.quit();
      expect(pendingAtStop, 'Redis stopped after the run had ended').toBeGreaterThan(0);

      await redisServer.stop();
      const stoppedAt = Date.now();
      const appliedAtStop = await applied();
      const probes: Array<{ daemon: string; atMs: number; readyz: number; redisOk: unknown; healthz: number }> = [];
      while (Date.now() - stoppedAt < OUTAGE_MS) {
        for (const d of daemons) {
          const ready = await fetch(`${d.url}/readyz`, { signal: AbortSignal.timeout(8_000) });
          const body = (await ready.json()) as { checks?: { redis?: { ok?: unknown } } };
          const health = await fetch(`${d.url}/healthz`, { signal: AbortSignal.timeout(8_000) });
          await health.arrayBuffer();
          probes.push({ daemon: d.name, atMs: Date.now() - stoppedAt, readyz: ready.status, redisOk: body.checks?.redis?.ok, healthz: health.status });
        }
        await sleep(1_000);
      }
      for (const d of daemons) expect(isRunning(d), `${d.name} exited during the Redis outage`).toBe(true);
      await redisServer.start();
      const outageMs = Date.now() - stoppedAt;

      // After the first second every probe said not ready because of Redis, and the process stayed alive.
      const settled = probes.filter((p) => p.atMs >= 1_000);
      expect(settled.length).toBeGreaterThanOrEqual(2 * 10);
      expect(settled.filter((p) => p.readyz !== 503 || p.redisOk !== false || p.healthz !== 200), JSON.stringify(probes)).toEqual([]);

      for (const d of daemons) {
        await eventually(async () => ((await fetch(`${d.url}/readyz`)).status === 200 ? true : undefined), 60_000, 250);
      }
      const judgeRedis = createRedis(redisServer.url, { connectionName: 'tagwarden-chaos-watch' });
      const queues = chaosQueues(judgeRedis, s.prefix);
      try {
        await waitForRunEnd({ queues, scans: scanCount(s.policies), admin: s.admin, timeoutMs: 180_000 });
      } finally {
        await queues.close();
        judgeRedis.disconnect();
      }
      expect(await applied(), 'no batch was applied after Redis came back').toBeGreaterThan(appliedAtStop);
      for (const d of daemons) expect(isRunning(d), `${d.name} exited`).toBe(true);

      const verdict = await judge(s, before);
      rows.push({
        scenario: '2 Redis outage', faults: `Redis down ${(outageMs / 1000).toFixed(0)} s`, survived: verdict.lost.length === 0 && verdict.state.ok,
        batchesLost: verdict.lost.length, batchesDoubled: verdict.doubled.length, tagsWronglyRemoved: verdict.state.wronglyRemoved.length,
        seconds: (Date.now() - t0) / 1000,
      });
      process.stdout.write(`scenario 2: ${verdict.planned} batches, ${appliedAtStop} applied before the outage, ${pendingAtStop} jobs pending at the stop\n`);
      expectExact(verdict);
    } finally {
      await s.close();
      await redisServer.close();
    }
  });

  it('3. counts each cloud fault as the emulator injected it, and ends exact (5xx, resets, apply-then-drop, latency, throttling)', async () => {
    const t0 = Date.now();
    const calm = {
      serviceUnavailable: 0.04, internalError: 0.03, html502: 0.03, reset: 0.05, applyThenDrop: 0.05,
      latencyMs: 5, jitterMs: 25, actions: ['UnTagResources' as const],
    };
    const s = await stage('faults', { count: 9_000, seed: 13, faults: { ...calm, seed: SEED } });
    let weather: Promise<void> | undefined;
    let stopWeather = false;
    try {
      const before = (await s.admin.getState()).resources;
      const env = chaosEnv({ emulatorUrl: s.emulator.url, prefix: s.prefix, apiToken: API_TOKEN });
      const daemons = await Promise.all([1, 2].map(() => startDaemon('faults', s.policiesDir, env)));
      s.daemons.push(...daemons);
      // Fault weather: calm spells, latency spikes (up to 1.5 s, well under the 10 s read timeout) and throttling bursts.
      const rng = seededRandom(SEED ^ 0x5eed);
      const phases = { calm: 0, spike: 0, throttle: 0 };
      weather = (async () => {
        for (let i = 0; i < 200 && !stopWeather; i++) {
          const draw = rng();
          const phase = draw < 0.6 ? 'calm' : draw < 0.8 ? 'spike' : 'throttle';
          phases[phase] += 1;
          const extra = phase === 'spike' ? { latencyMs: 800, jitterMs: 700 } : phase === 'throttle' ? { throttle: 0.5 } : {};
          await s.admin.setFaults({ ...calm, ...extra, seed: SEED + i });
          await sleep(700 + rng() * 800);
        }
        await s.admin.setFaults({});
      })();
      const redis = createRedis(REDIS_URL, { connectionName: 'tagwarden-chaos-watch' });
      const queues = chaosQueues(redis, s.prefix);
      try {
        await waitForRunEnd({ queues, scans: scanCount(s.policies), admin: s.admin, timeoutMs: 180_000 });
        stopWeather = true;
        await weather;
        await waitForRunEnd({ queues, scans: scanCount(s.policies), admin: s.admin, timeoutMs: 60_000 });
      } finally {
        await queues.close();
        redis.disconnect();
      }
      for (const d of daemons) expect(isRunning(d), `${d.name} exited`).toBe(true);

      const texts = await Promise.all(daemons.map((d) => scrapeMetrics(d)));
      const log = await s.admin.getCalls();
      const stats = await s.admin.getStats();
      const untags = log.calls.filter((c) => c.action === 'UnTagResources');
      // What tagwarden can see of each call, from the emulator's side, against what it counted.
      const seen = countBy(untags, observedCode);
      const failures = countBy(untags.filter((c) => observedCode(c) !== 'OK'), observedCode);
      expect(sumBy(texts, 'tagwarden_api_requests_total', 'code', (l) => l.api === 'UnTagResources')).toEqual(seen);
      expect(sumBy(texts, 'tagwarden_untag_failures_total', 'code')).toEqual(failures);
      for (const api of ['ListVpcPeerConnections', 'ListTagResources', 'GetVpcPeerConnectionAttribute'] as const) {
        const emulated = countBy(log.calls.filter((c) => c.action === api), observedCode);
        expect(sumBy(texts, 'tagwarden_api_requests_total', 'code', (l) => l.api === api), api).toEqual(emulated);
      }
      // The mapping itself, fault by fault: every injected fault is one failure of the code tagwarden must report.
      const f = stats.faults;
      const injected = (k: string) => f[k] ?? 0;
      expect(failures['NetworkError'] ?? 0).toBe(injected('reset') + injected('applyThenDrop'));
      expect(failures['BadResponse'] ?? 0).toBe(injected('html502'));
      expect(failures['ServiceUnavailable'] ?? 0).toBe(injected('serviceUnavailable'));
      expect(failures['InternalError'] ?? 0).toBe(injected('internalError'));
      expect(failures['Throttling.User'] ?? 0).toBe(injected('throttle'));
      for (const kind of ['reset', 'applyThenDrop', 'html502', 'serviceUnavailable', 'internalError', 'throttle']) {
        expect(injected(kind), `no ${kind} fault was injected`).toBeGreaterThan(0);
      }
      expect(phases.spike + phases.throttle).toBeGreaterThan(0);

      const verdict = await judge(s, before);
      const total = Object.values(f).reduce((a, b) => a + b, 0);
      rows.push({
        scenario: '3 cloud faults', faults: `${total} faults, ${phases.spike} latency spikes, ${phases.throttle} throttle bursts`,
        survived: verdict.lost.length === 0 && verdict.state.ok,
        batchesLost: verdict.lost.length, batchesDoubled: verdict.doubled.length, tagsWronglyRemoved: verdict.state.wronglyRemoved.length,
        seconds: (Date.now() - t0) / 1000,
      });
      process.stdout.write(`scenario 3: ${verdict.planned} batches, faults ${JSON.stringify(f)}, codes seen ${JSON.stringify(seen)}\n`);
      expectExact(verdict);
    } finally {
      stopWeather = true;
      await weather?.catch(() => undefined);
      await s.close();
    }
  });
});
