// Policies -> BullMQ job schedulers on the real Redis: one scheduler per (policy, region), idempotent sync.
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryLogger } from '../../src/logging/index.js';
import { compilePolicyDocument, type CompiledPolicy } from '../../src/policy/index.js';
import { SCAN_QUEUE, createRedis, scanJobOptions } from '../../src/queue/index.js';
import { createPolicyScheduler, intervalSeconds, schedulerId } from '../../src/scheduler/index.js';
import { REDIS_URL, cleanupPrefix, policyDoc, uniquePrefix } from '../support/harness.js';

const now = new Date('2026-11-27T12:00:00Z');
function compiled(name: string, spec: Record<string, unknown>): CompiledPolicy {
  const { policy, findings } = compilePolicyDocument(policyDoc(name, spec), now);
  expect(findings.filter((f) => f.severity === 'error')).toEqual([]);
  return policy!;
}

describe('policy scheduler', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  async function setup() {
    const prefix = uniquePrefix('sched');
    const redis = createRedis(REDIS_URL);
    const queue = new Queue(SCAN_QUEUE, { connection: redis, prefix });
    cleanups.push(async () => {
      await queue.close();
      redis.disconnect();
      await cleanupPrefix(prefix);
    });
    const { logger } = createMemoryLogger({ level: 'warn', secrets: [] });
    const scheduler = createPolicyScheduler({ queue, scanJobOptions: scanJobOptions({ attempts: 1, completedRetentionHours: 1, failedRetentionDays: 1 }), logger });
    return { queue, scheduler };
  }

  const a = compiled('alpha', { regions: ['cn-hangzhou', 'cn-shanghai'], remove: { keys: ['x'] }, schedule: { every: '10m' } });
  const b = compiled('beta', { regions: ['cn-beijing'], remove: { keys: ['y'] }, schedule: { cron: '*/15 * * * *' } });

  it('creates one scheduler per policy and region, and changes nothing when synced again', async () => {
    const { queue, scheduler } = await setup();
    expect(await scheduler.sync([a, b])).toEqual({ upserted: 3, removed: 0 });
    const ids = (await queue.getJobSchedulers(0, -1)).map((s) => s.key).sort();
    expect(ids).toEqual([schedulerId('alpha', 'cn-hangzhou'), schedulerId('alpha', 'cn-shanghai'), schedulerId('beta', 'cn-beijing')].sort());
    const every = (await queue.getJobSchedulers(0, -1)).find((s) => s.key === schedulerId('alpha', 'cn-hangzhou'));
    expect(every?.every).toBe(600_000);
    expect(every?.template?.data).toMatchObject({ v: 1, region: 'cn-hangzhou', trigger: 'schedule', policy: { metadata: { name: 'alpha' } } });
    expect(await scheduler.sync([a, b])).toEqual({ upserted: 0, removed: 0 });
  });

  it('removes the schedulers of a removed policy or region and updates a changed one', async () => {
    const { queue, scheduler } = await setup();
    await scheduler.sync([a, b]);
    const a2 = compiled('alpha', { regions: ['cn-hangzhou'], remove: { keys: ['x', 'z'] }, schedule: { every: '10m' } });
    expect(await scheduler.sync([a2])).toEqual({ upserted: 1, removed: 2 });
    const schedulers = await queue.getJobSchedulers(0, -1);
    expect(schedulers.map((s) => s.key)).toEqual([schedulerId('alpha', 'cn-hangzhou')]);
    expect(schedulers[0]?.template?.data).toMatchObject({ policy: { spec: { remove: { keys: ['x', 'z'] } } } });
  });

  it('never removes schedulers after a load that had errors', async () => {
    const { queue, scheduler } = await setup();
    await scheduler.sync([a, b]);
    expect(await scheduler.sync([a], { removeStale: false })).toEqual({ upserted: 0, removed: 0 });
    expect(await queue.getJobSchedulers(0, -1)).toHaveLength(3);
  });

  it('reports the interval of every and cron schedules', () => {
    expect(intervalSeconds(a, now)).toBe(600);
    expect(intervalSeconds(b, now)).toBe(900);
  });
});
