// Scan guards: the blast-radius cap (an over-cap run enqueues nothing and says so), and one run at a time per
// (policy, region) (a scan while the previous run's batches are pending is skipped).
import { afterEach, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { compilePolicies } from '../../src/policy/index.js';
import { readPolicySources } from '../../src/policy-files/index.js';
import { scanJobOptions } from '../../src/queue/index.js';
import { createCore } from '../../src/runtime/index.js';
import { createPolicyScheduler } from '../../src/scheduler/index.js';
import { EMULATOR_KEYS, cleanupPrefix, eventually, policyDoc, testConfig, uniquePrefix, writePolicies } from '../support/harness.js';

describe('scan guards', () => {
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
    expect((await core.ledger.policyStatuses()).capped?.['cn-hangzhou']).toMatchObject({ halted: true });
    const metrics = await core.registry.metrics();
    expect(metrics).toContain('tagwarden_policy_halted{policy="capped",region="cn-hangzhou"} 1');
    expect(metrics).toMatch(/tagwarden_policy_errors_total\{policy="capped",reason="halted"\} 1/);
    expect(metrics).toMatch(/tagwarden_policy_violations\{policy="capped",region="cn-hangzhou"\} [1-9]/);
    expect(lines.some((l) => l.includes('policy halted: run would exceed maxRemovalsPerRun'))).toBe(true);
  }, 60_000);

  it('skips a scan while the previous run of the policy in that region still has batches pending', async () => {
    emulator = await startEmulator({ generate: { count: 300, seed: 5, regions: ['cn-hangzhou'] } });
    const prefix = uniquePrefix('overlap');
    const dir = writePolicies([policyDoc('finance', { regions: ['cn-hangzhou'], remove: { keys: ['FinanceDept'] } })]);
    const { logger, lines } = createMemoryLogger({ level: 'info', secrets: [] });
    // Workers for another region only: the first run's batches stay queued.
    const core = createCore(testConfig({ emulatorUrl: emulator.url, prefix, regions: ['eu-west-1'], policiesDir: dir }), { credentials: EMULATOR_KEYS, logger });
    const workers = core.createWorkers();
    cleanups.push(async () => {
      await workers.close();
      await core.close();
      await cleanupPrefix(prefix);
    });
    workers.start();
    const [policy] = compilePolicies((await readPolicySources([dir])).sources, new Date()).policies;
    const scheduler = createPolicyScheduler({ queue: core.scanQueue, scanJobOptions: scanJobOptions({ attempts: 1, completedRetentionHours: 1, failedRetentionDays: 1 }), logger });
    const scanned = async (runId: string) =>
      eventually(async () => {
        const s = await core.ledger.summary(runId);
        return s[0]?.scans === 1 ? s[0] : undefined;
      });
    await scheduler.scanNow(policy!, 'once', 'run-1');
    const first = await scanned('run-1');
    expect(first.batches).toBeGreaterThan(0);
    const queued = await core.queueFor('cn-hangzhou').getWaitingCount();
    expect(queued).toBe(first.batches);

    await scheduler.scanNow(policy!, 'once', 'run-2');
    expect(await scanned('run-2')).toMatchObject({ skipped: 1, batches: 0 });
    expect(await core.queueFor('cn-hangzhou').getWaitingCount()).toBe(queued);
    expect(lines.some((l) => l.includes('scan skipped: the previous run still has batches pending'))).toBe(true);

    // The same run again (a scan job processed twice) adds nothing either.
    await scheduler.scanNow(policy!, 'once', 'run-1');
    await eventually(async () => (lines.some((l) => l.includes('scan already finished for this run')) ? true : undefined));
    expect(await core.queueFor('cn-hangzhou').getWaitingCount()).toBe(queued);
  }, 60_000);

  it('removes only the planned keys, not All, from a resource that gained a kept key after the scan', async () => {
    const resources = Array.from({ length: 5 }, (_, i) => ({
      id: `pcc-expired${String(i).padStart(12, '0')}`,
      region: 'cn-hangzhou',
      status: 'Expired',
      tags: { a: '1', b: '2' },
    }));
    emulator = await startEmulator({ fixture: { resources } });
    const admin = createEmulatorAdmin(emulator.url);
    const prefix = uniquePrefix('all-race');
    const dir = writePolicies([
      policyDoc('expired-cleanup', { regions: ['cn-hangzhou'], selector: { attributes: { statuses: ['Expired'] } }, remove: { all: true }, keep: ['owner'] }),
    ]);
    const { logger } = createMemoryLogger({ level: 'warn', secrets: [] });
    const config = (regions: string[]) => testConfig({ emulatorUrl: emulator!.url, prefix, regions, policiesDir: dir });
    const scanner = createCore(config(['eu-west-1']), { credentials: EMULATOR_KEYS, logger });
    const scanWorkers = scanner.createWorkers();
    cleanups.push(() => cleanupPrefix(prefix));
    scanWorkers.start();
    const [policy] = compilePolicies((await readPolicySources([dir])).sources, new Date()).policies;
    const scheduler = createPolicyScheduler({ queue: scanner.scanQueue, scanJobOptions: scanJobOptions({ attempts: 1, completedRetentionHours: 1, failedRetentionDays: 1 }), logger });
    await scheduler.scanNow(policy!, 'once', 'race-run');
    await eventually(async () => ((await scanner.ledger.summary('race-run'))[0]?.scans === 1 ? true : undefined));
    const [job] = await scanner.queueFor('cn-hangzhou').getWaiting();
    expect(job?.data).toMatchObject({ all: true, resourceIds: resources.map((r) => r.id) });
    await scanWorkers.close();
    await scanner.close();

    // Someone tags one connection with a key the policy keeps, after the scan and before the call.
    await admin.upsertResources([{ ...resources[2]!, tags: { ...resources[2]!.tags, owner: 'team-new' } }]);
    const core = createCore(config(['cn-hangzhou']), { credentials: EMULATOR_KEYS, logger });
    const workers = core.createWorkers();
    workers.start();
    try {
      await eventually(async () => ((await core.ledger.pending('race-run')) === 0 ? true : undefined));
      const after = new Map((await admin.getState()).resources.map((r) => [r.id, r.tags]));
      for (const r of resources) {
        expect(after.get(r.id)).toEqual(r.id === resources[2]!.id ? { owner: 'team-new' } : {});
      }
      const { calls } = await admin.getCalls({ action: 'UnTagResources' });
      expect(calls.every((c) => c.params.All !== true && c.params.All !== 'true')).toBe(true);
      const [summary] = await core.ledger.summary('race-run');
      expect(summary?.removed).toBe(10);
    } finally {
      await workers.close();
      await core.close();
    }
  }, 60_000);

  it('re-enqueues its saved plan, not a new one, when a scan is re-run after an interruption mid-enqueue', async () => {
    emulator = await startEmulator({ generate: { count: 400, seed: 8, regions: ['cn-hangzhou'] } });
    const admin = createEmulatorAdmin(emulator.url);
    const prefix = uniquePrefix('replan');
    const dir = writePolicies([policyDoc('temps', { regions: ['cn-hangzhou'], remove: { keyPatterns: ['tmp-*'] } })]);
    const { logger, lines } = createMemoryLogger({ level: 'info', secrets: [] });
    const core = createCore(testConfig({ emulatorUrl: emulator.url, prefix, regions: ['eu-west-1'], policiesDir: dir }), { credentials: EMULATOR_KEYS, logger });
    const workers = core.createWorkers();
    cleanups.push(async () => {
      await workers.close();
      await core.close();
      await cleanupPrefix(prefix);
    });
    workers.start();
    const [policy] = compilePolicies((await readPolicySources([dir])).sources, new Date()).policies;
    const scheduler = createPolicyScheduler({ queue: core.scanQueue, scanJobOptions: scanJobOptions({ attempts: 1, completedRetentionHours: 1, failedRetentionDays: 1 }), logger });
    const queue = core.queueFor('cn-hangzhou');
    await scheduler.scanNow(policy!, 'once', 'run-x');
    await eventually(async () => ((await core.ledger.summary('run-x'))[0]?.scans === 1 ? true : undefined));
    const planned = await queue.getWaiting(0, -1);
    expect(planned.length).toBeGreaterThan(5);
    expect(await core.ledger.loadPlan('run-x', 'temps', 'cn-hangzhou')).toBeUndefined(); // dropped once recorded

    // Recreate the state of a scan killed mid-enqueue: its plan saved, not finished, half its batches not yet
    // added, and the estate changed since (the first batch's tags are gone).
    const jobs = planned.map((j) => j.data as { batchId: string; resourceIds: string[]; tagKeys: string[] });
    await core.ledger.savePlan('run-x', 'temps', 'cn-hangzhou', { counts: { scanned: 400, violating: 1, tagsPlanned: 1 }, jobs: planned.map((j) => j.data) });
    await core.redis.hdel(`${prefix}:policy-status`, 'temps|cn-hangzhou');
    for (const j of planned.slice(0, Math.floor(planned.length / 2))) await j.remove();
    const first = jobs[0]!;
    const state = await admin.getState({ ids: first.resourceIds });
    await admin.upsertResources(state.resources.map((r) => ({ ...r, tags: Object.fromEntries(Object.entries(r.tags).filter(([k]) => !first.tagKeys.includes(k))) })));

    await scheduler.scanNow(policy!, 'once', 'run-x');
    await eventually(async () => (lines.some((l) => l.includes('enqueuing its saved plan')) && (await queue.getWaitingCount()) === jobs.length ? true : undefined));
    expect((await queue.getWaiting(0, -1)).map((j) => j.id).sort()).toEqual(jobs.map((j) => j.batchId).sort());
    expect((await core.ledger.summary('run-x'))[0]).toMatchObject({ scans: 1, batches: jobs.length });
  }, 60_000);
});
