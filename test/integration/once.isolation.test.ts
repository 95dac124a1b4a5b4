// `run --once` does only its own work: a daemon's schedulers and batches left on the same prefix are not
// touched, --policy restricts scans and batches, an unknown policy is an error, and the summary equals what the
// emulator recorded. A halt is not success: plan exits 3 and run --once exits 3 with the real counts.
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type EmulatorResource, type RunningEmulator } from '../../src/emulator/index.js';
import { TagwardenError } from '../../src/errors.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { compilePolicies } from '../../src/policy/index.js';
import { readPolicySources } from '../../src/policy-files/index.js';
import { SCAN_QUEUE, createProducer, createRedis, scanJobOptions, untagQueueName } from '../../src/queue/index.js';
import { runOnce } from '../../src/runtime/index.js';
import { createPolicyScheduler } from '../../src/scheduler/index.js';
import { untagCall } from '../chaos/support/oracle.js';
import {
  EMULATOR_KEYS,
  REDIS_URL,
  cleanupPrefix,
  policyDoc,
  spawnTagwarden,
  tagwardenEnv,
  testConfig,
  uniquePrefix,
  writePolicies,
} from '../support/harness.js';

const REGION = 'cn-hangzhou';
const resources: EmulatorResource[] = Array.from({ length: 60 }, (_, i) => ({
  id: `pcc-once${String(i).padStart(12, '0')}`,
  region: REGION,
  tags: { mine: 'x', theirs: 'y', [`tmp-${i % 3}`]: 'z', owner: 'team' },
}));
const mine = policyDoc('mine', { regions: [REGION], remove: { keys: ['mine'] }, limits: { maxRemovalsPerRun: 1000 } });
const theirs = policyDoc('theirs', { regions: [REGION], remove: { keys: ['theirs'] }, schedule: { every: '1m' }, limits: { maxRemovalsPerRun: 1000 } });

describe('run --once isolation', () => {
  let emulator: RunningEmulator | undefined;
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await emulator?.close();
  });

  it("works only its own scans and batches, never a daemon's schedulers or queued batches on the same prefix", async () => {
    emulator = await startEmulator({ fixture: { resources } });
    const admin = createEmulatorAdmin(emulator.url);
    const prefix = uniquePrefix('once-iso');
    cleanups.push(() => cleanupPrefix(prefix));
    const { logger } = createMemoryLogger({ level: 'warn', secrets: [] });
    // What a stopped daemon leaves behind: its scheduler (a scan job waiting) and a queued batch from the API.
    const redis = createRedis(REDIS_URL);
    const scanQueue = new Queue(SCAN_QUEUE, { connection: redis, prefix });
    const untagQueue = new Queue(untagQueueName('default', REGION), { connection: redis, prefix });
    const producer = createProducer({ connection: redis, prefix });
    cleanups.push(async () => {
      await producer.close();
      await scanQueue.close();
      await untagQueue.close();
      redis.disconnect();
    });
    const daemonDir = writePolicies([theirs]);
    const theirPolicies = compilePolicies((await readPolicySources([daemonDir])).sources, new Date()).policies;
    await createPolicyScheduler({ queue: scanQueue, scanJobOptions: scanJobOptions({ attempts: 1, completedRetentionHours: 1, failedRetentionDays: 1 }), logger }).sync(theirPolicies);
    const { jobIds: [leftover] } = await producer.untag({ region: REGION, resourceIds: resources.slice(0, 5).map((r) => r.id), tagKeys: ['tmp-0'], reason: 'queued by another system' });
    const schedulerJobs = await scanQueue.getJobCounts('waiting', 'delayed');

    const dir = writePolicies([mine, policyDoc('also-mine', { regions: [REGION], remove: { keyPatterns: ['tmp-*'] }, limits: { maxRemovalsPerRun: 1000 } })]);
    const config = testConfig({ emulatorUrl: emulator.url, prefix, policiesDir: dir, regions: [REGION] });
    const result = await runOnce(config, { policiesPaths: [dir], policy: 'mine', credentials: EMULATOR_KEYS, logger });
    expect(result.failed).toBe(false);
    expect(result.halted).toBe(false);
    expect(result.summary.map((s) => s.policy)).toEqual(['mine']);

    // The emulator's record: only `mine` was removed, by as many calls and tags as the summary says.
    const calls = (await admin.getCalls({ action: 'UnTagResources' })).calls.map(untagCall).filter((c) => c.applied);
    expect(calls.every((c) => c.tagKeys.join() === 'mine')).toBe(true);
    const [row] = result.summary;
    expect(row).toMatchObject({ scanned: 60, violating: 60, tagsPlanned: 60, removed: 60 });
    expect(calls.reduce((n, c) => n + c.removed, 0)).toBe(row!.removed);
    expect(calls.length).toBe(row!.batches);
    for (const r of (await admin.getState()).resources) expect(Object.keys(r.tags).sort()).toEqual(['owner', 'theirs', `tmp-${Number(r.id.slice(-2)) % 3}`]);
    // The daemon's work is still there, untouched.
    expect(await (await untagQueue.getJob(leftover!))?.getState()).toBe('waiting');
    expect(await scanQueue.getJobCounts('waiting', 'delayed')).toEqual(schedulerJobs);
    expect((await scanQueue.getJobSchedulers()).map((s) => s.key)).toEqual([`scan-theirs-${REGION}`]);
    // Its own queues are gone once it has finished (the ledger stays; a limiter window expires by itself).
    const left = (await redis.keys(`${prefix}:*-${result.runId}:*`)).filter((k) => !k.endsWith(':limiter'));
    expect(left).toEqual([]);
  }, 60_000);

  it('refuses an unknown policy (exit 1), and treats a halt as no success (plan exits 3, run --once exits 3 with the real counts)', async () => {
    emulator = await startEmulator({ fixture: { resources } });
    const prefix = uniquePrefix('once-halt');
    cleanups.push(() => cleanupPrefix(prefix));
    const { logger } = createMemoryLogger({ level: 'warn', secrets: [] });
    const capped = policyDoc('capped', { regions: [REGION], remove: { keys: ['mine'] }, limits: { maxRemovalsPerRun: 10 } });
    const dir = writePolicies([capped]);
    const config = testConfig({ emulatorUrl: emulator.url, prefix, policiesDir: dir, regions: [REGION] });
    await expect(runOnce(config, { policiesPaths: [dir], policy: 'does-not-exist', credentials: EMULATOR_KEYS, logger })).rejects.toSatisfy(
      (err) => err instanceof TagwardenError && err.code === 'NOT_FOUND' && err.message.includes('does-not-exist'),
    );
    const result = await runOnce(config, { policiesPaths: [dir], credentials: EMULATOR_KEYS, logger });
    expect(result.halted).toBe(true);
    expect(result.summary[0]).toMatchObject({ policy: 'capped', halted: 1, scanned: 60, violating: 60, tagsPlanned: 60, batches: 0, removed: 0 });

    const env = tagwardenEnv({ emulatorUrl: emulator.url, prefix, regions: [REGION], extra: { TAGWARDEN_POLICIES_DIR: dir } });
    const cli = async (args: string[]) => {
      const proc = spawnTagwarden(args, env);
      return { code: (await proc.exited).code, out: proc.lines.join('\n') };
    };
    const [plan, once, unknown] = await Promise.all([cli(['plan']), cli(['run', '--once']), cli(['run', '--once', '--policy', 'does-not-exist'])]);
    expect(plan.code).toBe(3);
    expect(plan.out).toMatch(/HALT: \d+ tags > maxRemovalsPerRun \d+/);
    expect(once.code).toBe(3);
    expect(once.out).toMatch(/capped\s+60\s+60\s+60\s+0/);
    expect(once.out).toMatch(/HALTED/);
    expect(unknown.code).toBe(1);
    expect(unknown.out).toMatch(/no valid policy named does-not-exist/);
    expect((await createEmulatorAdmin(emulator.url).getCalls({ action: 'UnTagResources' })).calls).toEqual([]);
  }, 90_000);
});
