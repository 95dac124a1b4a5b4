// The blast-radius cap: a run that would remove more than maxRemovalsPerRun enqueues nothing and says so.
import { afterEach, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { compilePolicies } from '../../src/policy/index.js';
import { readPolicySources } from '../../src/policy-files/index.js';
import { scanJobOptions } from '../../src/queue/index.js';
import { createCore } from '../../src/runtime/index.js';
import { createPolicyScheduler } from '../../src/scheduler/index.js';
import { EMULATOR_KEYS, cleanupPrefix, eventually, policyDoc, testConfig, uniquePrefix, writePolicies } from '../support/harness.js';

describe('blast-radius cap', () => {
  let emulator: RunningEmulator | undefined;
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
    await emulator?.close();
  });

  it('halts an over-cap run before anything is enqueued, and reports it in logs, metrics and status', async () => {
    emulator = await startEmulator({ generate: { count: 400, seed: 5, regions: ['cn-hangzhou'] } });
    const admin = createEmulatorAdmin(emulator.url);
    const prefix = uniquePrefix('cap');
    const dir = writePolicies([
      policyDoc('capped', { regions: ['cn-hangzhou'], remove: { keys: ['env'] }, limits: { maxRemovalsPerRun: 10 } }),
    ]);
    const { logger, lines } = createMemoryLogger({ level: 'info', secrets: [] });
    const core = createCore(testConfig({ emulatorUrl: emulator.url, prefix, regions: ['cn-hangzhou'], policiesDir: dir }), {
      credentials: EMULATOR_KEYS,
      logger,
    });
    const workers = core.createWorkers();
    cleanups.push(async () => {
      await workers.close();
      await core.close();
      await cleanupPrefix(prefix);
    });
    workers.start();
    const [policy] = compilePolicies((await readPolicySources([dir])).sources, new Date()).policies;
    const scheduler = createPolicyScheduler({ queue: core.scanQueue, scanJobOptions: scanJobOptions({ attempts: 1, completedRetentionHours: 1, failedRetentionDays: 1 }), logger });
    await scheduler.scanNow(policy!, 'once', 'cap-run');
    const [summary] = await eventually(async () => {
      const s = await core.ledger.summary('cap-run');
      return s[0]?.scans === 1 ? s : undefined;
    });
    expect(summary).toMatchObject({ policy: 'capped', halted: 1, batches: 0, removed: 0 });
    expect(await core.queueFor('cn-hangzhou').getJobCounts('waiting', 'delayed', 'active', 'completed')).toEqual({
      waiting: 0,
      delayed: 0,
      active: 0,
      completed: 0,
    });
    expect((await admin.getStats()).byAction.UnTagResources?.total ?? 0).toBe(0);
    expect((await core.ledger.policyStatuses()).capped).toMatchObject({ halted: true });
    const metrics = await core.registry.metrics();
    expect(metrics).toContain('tagwarden_policy_halted{policy="capped"} 1');
    expect(metrics).toMatch(/tagwarden_policy_errors_total\{policy="capped",reason="halted"\} 1/);
    expect(metrics).toMatch(/tagwarden_policy_violations\{policy="capped",region="cn-hangzhou"\} [1-9]/);
    expect(lines.some((l) => l.includes('policy halted: run would exceed maxRemovalsPerRun'))).toBe(true);
  }, 60_000);
});
