// Redis that forgets: a private redis-server (started and restarted empty by PID, on a free port) under a running
// daemon. The daemon notices (identity marker), says so (log, metric, /readyz), re-creates its schedulers and
// enforces again on its own; an eviction policy other than noeviction keeps it not ready; the ready gauge is kept
// current without anyone probing; a second deployment with another policy set on the prefix is reported.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type EmulatorResource, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { SCAN_QUEUE, createRedis } from '../../src/queue/index.js';
import { startDaemon, type Daemon } from '../../src/runtime/index.js';
import { EMULATOR_KEYS, eventually, policyDoc, testConfig, uniquePrefix, writePolicies } from '../support/harness.js';

const REGION = 'cn-hangzhou';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A private redis-server in the foreground (so its PID is ours), nothing on disk. */
async function startRedis(port: number, extra: string[] = []): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra], { stdio: 'ignore' });
  const probe = createRedis(`redis://127.0.0.1:${port}`);
  probe.on('error', () => undefined);
  try {
    await eventually(async () => ((await probe.ping()) === 'PONG' ? true : undefined), 15_000);
  } finally {
    probe.disconnect();
  }
  return child;
}

async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

function resources(prefix: string, count: number): EmulatorResource[] {
  return Array.from({ length: count }, (_, i) => ({ id: `pcc-${prefix}${String(i).padStart(12, '0')}`, region: REGION, tags: { 'tmp-x': '1', owner: 'team' } }));
}

describe('redis that forgets', () => {
  let emulator: RunningEmulator | undefined;
  const redises: ChildProcess[] = [];
  const daemons: Daemon[] = [];
  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.close({ force: true }).catch(() => undefined);
    for (const r of redises.splice(0)) await stopRedis(r);
    await emulator?.close();
  });

  async function daemonOn(port: number, docs: Array<Record<string, unknown>>, prefix: string, overrides: Record<string, unknown> = {}) {
    const { logger, lines } = createMemoryLogger({ level: 'info', secrets: [] });
    const config = testConfig({ emulatorUrl: emulator!.url, prefix, policiesDir: writePolicies(docs), regions: [REGION], overrides: { redisUrl: `redis://127.0.0.1:${port}`, ...overrides } });
    const daemon = await startDaemon(config, { credentials: EMULATOR_KEYS, logger, resyncMs: 1_000, readyRefreshMs: 200, conflictGraceMs: 1_500, ...(overrides.options as object) });
    daemons.push(daemon);
    return { daemon, lines, base: `http://127.0.0.1:${daemon.httpPort}` };
  }

  const clean = (admin: ReturnType<typeof createEmulatorAdmin>) => async () =>
    ((await admin.getState()).resources.every((r) => !('tmp-x' in r.tags)) ? true : undefined);

  it('notices Redis restarted empty, says so, and enforces again on its own', async () => {
    emulator = await startEmulator({ fixture: { resources: resources('lost', 30) } });
    const admin = createEmulatorAdmin(emulator.url);
    const port = await freePort();
    redises.push(await startRedis(port));
    const doc = policyDoc('temps', { regions: [REGION], remove: { keyPatterns: ['tmp-*'] }, schedule: { every: '1h' }, limits: { maxRemovalsPerRun: 1000 } });
    const { daemon, lines, base } = await daemonOn(port, [doc], uniquePrefix('lost'));
    await eventually(clean(admin), 30_000);
    // The ready gauge is 1 without anyone calling /readyz.
    await eventually(async () => (/^tagwarden_ready 1$/m.test(await (await fetch(`${base}/metrics`)).text()) ? true : undefined));

    // Redis dies and comes back empty; meanwhile someone tags the connections again.
    await stopRedis(redises.pop()!);
    redises.push(await startRedis(port));
    await admin.upsertResources(resources('lost', 30));
    // The every-1h policy scans again at once: its scheduler is re-created, whose first scan runs now.
    await eventually(clean(admin), 30_000);
    expect(lines.some((l) => l.includes('redis lost its data'))).toBe(true);
    expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/^tagwarden_redis_state_lost_total [1-9]/m);
    const ready = (await daemon.readiness()).checks.redisState;
    expect(ready).toMatchObject({ ok: true });
    expect(ready?.detail).toMatch(/lost its data/);
  }, 90_000);

  it('refuses readiness while maxmemory-policy evicts keys, and reports a second deployment on the prefix', async () => {
    emulator = await startEmulator({ fixture: { resources: resources('evict', 5) } });
    const port = await freePort();
    redises.push(await startRedis(port, ['--maxmemory-policy', 'allkeys-lru']));
    const prefix = uniquePrefix('evict');
    const a = policyDoc('alpha', { regions: [REGION], remove: { keys: ['a'] }, schedule: { every: '1h' } });
    const b = policyDoc('beta', { regions: [REGION], remove: { keys: ['b'] }, schedule: { every: '1h' } });
    const first = await daemonOn(port, [a], prefix);
    const report = await first.daemon.readiness();
    expect(report.ready).toBe(false);
    expect(report.checks.redisState).toMatchObject({ ok: false });
    expect(report.checks.redisState?.detail).toMatch(/allkeys-lru.*noeviction/);
    expect(first.lines.some((l) => l.includes('redis maxmemory-policy evicts keys'))).toBe(true);
    const probe = await fetch(`${first.base}/readyz`);
    expect(probe.status).toBe(503);
    expect(await (await fetch(`${first.base}/metrics`)).text()).toMatch(/^tagwarden_redis_eviction_unsafe 1$/m);

    const admin = createRedis(`redis://127.0.0.1:${port}`);
    try {
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
    } finally {
      admin.disconnect();
    }
    await eventually(async () => ((await first.daemon.readiness()).ready ? true : undefined), 15_000);

    // A second deployment with another policy set on the same prefix: both say so, and keep each other's schedulers.
    const second = await daemonOn(port, [b], prefix);
    for (const d of [first, second]) {
      await eventually(async () => ((await d.daemon.readiness()).checks.deployment?.ok === false ? true : undefined), 20_000);
      expect(d.lines.some((l) => l.includes('another deployment with a different policy set shares this queue prefix') && l.includes('"level":"error"'))).toBe(true);
      expect(await (await fetch(`${d.base}/metrics`)).text()).toMatch(/^tagwarden_prefix_conflict 1$/m);
      expect((await fetch(`${d.base}/readyz`)).status).toBe(503);
    }
    expect((await second.daemon.readiness()).checks.deployment?.detail).toMatch(/alpha/);
    const check = createRedis(`redis://127.0.0.1:${port}`);
    try {
      const keys = await check.keys(`${prefix}:${SCAN_QUEUE}:repeat:*`);
      expect(keys.some((k) => k.includes('scan-alpha-')) && keys.some((k) => k.includes('scan-beta-'))).toBe(true);
    } finally {
      check.disconnect();
    }
  }, 90_000);
});
