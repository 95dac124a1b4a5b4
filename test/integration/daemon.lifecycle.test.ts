// The daemon as a process: SIGKILL mid-batch, SIGTERM drain, a second SIGTERM, and three replicas sharing a quota.
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { checkState, createEmulatorAdmin, startEmulator, type EmulatorAdmin, type RunningEmulator, expectedRemovals } from '../../src/emulator/index.js';
import { compilePolicies } from '../../src/policy/index.js';
import { readPolicySources } from '../../src/policy-files/index.js';
import { createRedis, untagQueueName } from '../../src/queue/index.js';
import {
  cleanupPrefix,
  eventually,
  temporaryTagsPolicy,
  spawnTagwarden,
  tagwardenEnv,
  tokensReusedWithOtherParams,
  uniquePrefix,
  writePolicies,
  type TagwardenProcess,
} from '../support/harness.js';

const REGION = 'cn-hangzhou';
const TEMP = temporaryTagsPolicy([REGION]);

describe('daemon lifecycle', () => {
  let emulator: RunningEmulator | undefined;
  const procs: TagwardenProcess[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const p of procs.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await emulator?.close();
    for (const c of cleanups.splice(0)) await c();
  });

  async function setup(count: number, extraEnv: Record<string, string> = {}) {
    emulator = await startEmulator({ generate: { count, seed: 21, regions: [REGION] } });
    const admin = createEmulatorAdmin(emulator.url);
    const prefix = uniquePrefix('life');
    const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    const queue = new Queue(untagQueueName('default', REGION), { connection: redis, prefix });
    cleanups.push(async () => {
      await queue.close();
      redis.disconnect();
      await cleanupPrefix(prefix);
    });
    const dir = writePolicies([TEMP]);
    const env = tagwardenEnv({
      emulatorUrl: emulator.url,
      prefix,
      regions: [REGION],
      extra: {
        TAGWARDEN_POLICIES_DIR: dir,
        TAGWARDEN_STALLED_INTERVAL_MS: '1000',
        TAGWARDEN_LOCK_DURATION_MS: '2000',
        TAGWARDEN_RETRY_BASE_MS: '20',
        TAGWARDEN_RETRY_MAX_MS: '200',
        ...extraEnv,
      },
    });
    const now = new Date();
    const before = (await admin.getState()).resources;
    const policies = compilePolicies((await readPolicySources([dir])).sources, now).policies;
    const removals = expectedRemovals(before, policies, now);
    const start = () => {
      const proc = spawnTagwarden(['run'], env);
      procs.push(proc);
      return proc;
    };
    return { admin, queue, start, before, removals, dir };
  }

  async function finished(admin: EmulatorAdmin, before: Awaited<ReturnType<typeof setup>>['before'], removals: Awaited<ReturnType<typeof setup>>['removals'], queue: Queue) {
    await eventually(async () => (checkState(before, (await admin.getState()).resources, removals).ok ? true : undefined), 90_000, 250);
    await eventually(async () => {
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed');
      return (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0) === 0 ? true : undefined;
    }, 30_000);
  }

  it('recovers the batches of a worker killed with SIGKILL with the same tokens: nothing lost, nothing doubled', async () => {
    const { admin, queue, start, before, removals } = await setup(2_000, { TAGWARDEN_CONCURRENCY: '4' });
    await admin.setFaults({ latencyMs: 300, actions: ['UnTagResources'] });
    const first = start();
    await eventually(async () => ((await admin.getStats()).byAction.UnTagResources?.total ?? 0) >= 20 ? true : undefined, 60_000);
    expect((await queue.getActiveCount()) > 0).toBe(true);
    first.child.kill('SIGKILL');
    await first.exited;
    start();
    await finished(admin, before, removals, queue);

    expect(await queue.getJobCounts('failed')).toEqual({ failed: 0 });
    const { calls } = await admin.getCalls({ action: 'UnTagResources' });
    expect(tokensReusedWithOtherParams(calls)).toEqual([]);
    // Nothing doubled: each targeted tag was removed by exactly one applied call.
    const removed = calls.reduce((n, c) => n + c.removed, 0);
    expect(removed).toBe([...removals.values()].reduce((n, keys) => n + keys.size, 0));
    // The killed worker's in-flight batches were sent again with the same token (applied once, replayed after).
    const byToken = new Map<string, number>();
    for (const c of calls) if (c.clientToken) byToken.set(c.clientToken, (byToken.get(c.clientToken) ?? 0) + 1);
    expect([...byToken.values()].some((n) => n > 1)).toBe(true);
  }, 180_000);

  it('drains in-flight calls on SIGTERM and exits 0', async () => {
    const { admin, queue, start } = await setup(600, { TAGWARDEN_CONCURRENCY: '2', TAGWARDEN_DRAIN_TIMEOUT_MS: '15000' });
    await admin.setFaults({ latencyMs: 1_500, actions: ['UnTagResources'] });
    const daemon = start();
    await eventually(async () => ((await queue.getActiveCount()) > 0 ? true : undefined), 60_000, 50);
    const active = (await queue.getJobs(['active'])).map((j) => j.id!);
    expect(active.length).toBeGreaterThan(0);
    daemon.child.kill('SIGTERM');
    const exit = await daemon.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(daemon.lines.some((l) => l.includes('"message":"stopped"') && l.includes('"drained":true'))).toBe(true);
    // The batches in flight at SIGTERM finished there: completed, their calls applied.
    for (const id of active) expect(await (await queue.getJob(id))?.getState()).toBe('completed');
    const { calls } = await admin.getCalls({ action: 'UnTagResources' });
    for (const id of active) expect(calls.some((c) => c.clientToken === id && c.applied)).toBe(true);
  }, 120_000);

  it('exits at once on a second SIGTERM; another replica finishes the interrupted batches with the same tokens', async () => {
    const { admin, queue, start, before, removals } = await setup(600, { TAGWARDEN_CONCURRENCY: '2', TAGWARDEN_DRAIN_TIMEOUT_MS: '15000' });
    await admin.setFaults({ latencyMs: 1_500, actions: ['UnTagResources'] });
    const daemon = start();
    await eventually(async () => ((await queue.getActiveCount()) > 0 ? true : undefined), 60_000, 50);
    const active = (await queue.getJobs(['active'])).map((j) => j.id!);
    daemon.child.kill('SIGTERM');
    await daemon.waitFor(/"message":"stopping"/, 10_000);
    daemon.child.kill('SIGTERM');
    const exit = await daemon.exited;
    expect(exit.code).toBe(130);
    // Interrupted while their calls were in flight: not completed by the first replica.
    for (const id of active) expect(await (await queue.getJob(id))?.getState()).toBe('active');
    await admin.setFaults({});
    start();
    await finished(admin, before, removals, queue);
    for (const id of active) expect(await (await queue.getJob(id))?.getState()).toBe('completed');
    const { calls } = await admin.getCalls({ action: 'UnTagResources' });
    expect(tokensReusedWithOtherParams(calls)).toEqual([]);
    expect(calls.reduce((n, c) => n + c.removed, 0)).toBe([...removals.values()].reduce((n, keys) => n + keys.size, 0));
  }, 120_000);

  it('three replicas share one backlog and the quota holds in total', async () => {
    // Quota 40 calls per 2 s window per region at the emulator; every replica is told the same and uses 90%.
    const { admin, queue, start, before, removals, dir } = await setup(6_000, {
      TAGWARDEN_QUOTA_UNTAGRESOURCES: '40',
      TAGWARDEN_QUOTA_WINDOW_MS: '2000',
      TAGWARDEN_QUOTA_FRACTION: '0.9',
    });
    await admin.setQuotas({ quotas: { UnTagResources: 40 }, windowMs: 2_000 });
    // The policy appears only once all three replicas run, so a slow start on a loaded machine cannot leave
    // one replica alone with the whole backlog.
    const file = join(dir, 'policy-0.yaml');
    renameSync(file, `${file}.off`);
    const replicas = [start(), start(), start()];
    await Promise.all(replicas.map((r) => r.waitFor(/"message":"started"/, 120_000)));
    renameSync(`${file}.off`, file);
    await finished(admin, before, removals, queue);
    const stats = await admin.getStats();
    const total = stats.byAction.UnTagResources?.total ?? 0;
    expect(total).toBeGreaterThan(60);
    // Three limiters of their own would send 2.7x the quota: about 63% of calls throttled. One shared limiter
    // admits at most the quota per window on Redis time, but this emulator runs in the test process and counts
    // a call when its event loop gets to it, so on a loaded machine calls admitted before a window edge can be
    // counted after it. Edge effects are tolerated; a throttled share near what separate limiters cause is not.
    expect(stats.byAction.UnTagResources?.codes['Throttling.User'] ?? 0).toBeLessThanOrEqual(Math.ceil(total * 0.2));
    const workedOn = replicas.filter((r) => r.lines.some((l) => l.includes('"audit":true')));
    expect(workedOn.length).toBeGreaterThanOrEqual(2);
  }, 180_000);
});
