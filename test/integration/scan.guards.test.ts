// Scan guards: the blast-radius cap (an over-cap run enqueues nothing and says so), one run at a time per
// (policy, region), a saved plan for scans re-run after an interruption, and All=true guarded against keys
// added after the scan.
import { afterEach, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { runTag } from '../../src/queue/index.js';
import { cleanupPrefix, eventually, policyDoc, startStagedRun, uniquePrefix, writePolicies } from '../support/harness.js';

describe('scan guards', () => {
  let emulator: RunningEmulator | undefined;
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await emulator?.close();
  });

  /** An emulator, a prefix and a staged run over one policy, with workers for `regions` only. */
  async function stage(name: string, doc: Record<string, unknown>, regions: string[], estate: Parameters<typeof startEmulator>[0]) {
    emulator = await startEmulator(estate);
    const prefix = uniquePrefix(name);
    const dir = writePolicies([doc]);
    const { logger, lines } = createMemoryLogger({ level: 'info', secrets: [] });
    cleanups.push(() => cleanupPrefix(prefix));
    const run = await startStagedRun({ emulatorUrl: emulator.url, prefix, regions, policiesDir: dir, logger });
    cleanups.push(() => run.close());
    const scanned = (runId: string) =>
      eventually(async () => {
        const s = await run.core.ledger.summary(runId);
        return s[0]?.scans === 1 ? s[0] : undefined;
      });
    return { ...run, admin: createEmulatorAdmin(emulator.url), prefix, dir, logger, lines, scanned };
  }

  it('halts an over-cap run before anything is enqueued, and reports it in logs, metrics and status', async () => {
    const doc = policyDoc('capped', { regions: ['cn-hangzhou'], remove: { keys: ['env'] }, limits: { maxRemovalsPerRun: 10 } });
    const { core, admin, lines, scanNow, scanned } = await stage('cap', doc, ['cn-hangzhou'], { generate: { count: 400, seed: 5, regions: ['cn-hangzhou'] } });
    await scanNow('cap-run');
    expect(await scanned('cap-run')).toMatchObject({ policy: 'capped', halted: 1, batches: 0, removed: 0 });
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
    // Workers for another region only: the first run's batches stay queued.
    const doc = policyDoc('finance', { regions: ['cn-hangzhou'], remove: { keys: ['FinanceDept'] } });
    const { core, lines, scanNow, scanned } = await stage('overlap', doc, ['eu-west-1'], { generate: { count: 300, seed: 5, regions: ['cn-hangzhou'] } });
    await scanNow('run-1');
    const first = await scanned('run-1');
    expect(first.batches).toBeGreaterThan(0);
    const queued = await core.queueFor('cn-hangzhou').getWaitingCount();
    expect(queued).toBe(first.batches);

    await scanNow('run-2');
    expect(await scanned('run-2')).toMatchObject({ skipped: 1, batches: 0 });
    expect(await core.queueFor('cn-hangzhou').getWaitingCount()).toBe(queued);
    expect(lines.some((l) => l.includes('scan skipped: the previous run still has batches pending'))).toBe(true);

    // The same run again (a scan job processed twice) adds nothing either.
    await scanNow('run-1');
    await eventually(async () => (lines.some((l) => l.includes('scan already finished for this run')) ? true : undefined));
    expect(await core.queueFor('cn-hangzhou').getWaitingCount()).toBe(queued);
  }, 60_000);

  it('re-enqueues its saved plan, not a new one, when a scan is re-run after an interruption mid-enqueue', async () => {
    const doc = policyDoc('temps', { regions: ['cn-hangzhou'], remove: { keyPatterns: ['tmp-*'] } });
    const { core, admin, prefix, lines, scanNow, scanned } = await stage('replan', doc, ['eu-west-1'], { generate: { count: 1200, seed: 8, regions: ['cn-hangzhou'] } });
    const queue = core.queueFor('cn-hangzhou');
    await scanNow('run-x');
    await scanned('run-x');
    const planned = await queue.getWaiting(0, -1);
    expect(planned.length).toBeGreaterThan(5);
    expect(await core.ledger.loadPlan('temps', 'cn-hangzhou')).toBeUndefined(); // dropped once recorded

    // Recreate the state of a scan killed mid-enqueue: its plan saved, not finished, half its batches not yet
    // added, and the estate changed since (the first batch's tags are gone).
    const jobs = planned.map((j) => j.data as { batchId: string; resourceIds: string[]; tagKeys: string[] });
    await core.ledger.savePlan('temps', 'cn-hangzhou', { runId: 'run-x', counts: { scanned: 1200, violating: 1, tagsPlanned: 1 }, jobs: planned.map((j) => j.data) });
    await core.redis.hdel(`${prefix}:policy-status`, 'temps|cn-hangzhou');
    await core.redis.del(...['scans', 'counters', 'batches', 'batches:temps|cn-hangzhou', 'queues'].map((k) => `${prefix}:run:${runTag('run-x')}:${k}`));
    for (const j of planned.slice(0, Math.floor(planned.length / 2))) await j.remove();
    const first = jobs[0]!;
    const state = await admin.getState({ ids: first.resourceIds });
    await admin.upsertResources(state.resources.map((r) => ({ ...r, tags: Object.fromEntries(Object.entries(r.tags).filter(([k]) => !first.tagKeys.includes(k))) })));

    await scanNow('run-x');
    await eventually(async () => (lines.some((l) => l.includes('enqueuing its saved plan')) && (await queue.getWaitingCount()) === jobs.length ? true : undefined));
    expect((await queue.getWaiting(0, -1)).map((j) => j.id).sort()).toEqual(jobs.map((j) => j.batchId).sort());
    expect((await core.ledger.summary('run-x'))[0]).toMatchObject({ scans: 1, batches: jobs.length });
  }, 60_000);

  it('removes only the planned keys, not All, from a resource that gained a kept key after the scan', async () => {
    const resources = Array.from({ length: 5 }, (_, i) => ({
      id: `pcc-expired${String(i).padStart(12, '0')}`,
      region: 'cn-hangzhou',
      status: 'Expired',
      tags: { a: '1', b: '2' },
    }));
    const doc = policyDoc('expired-cleanup', { regions: ['cn-hangzhou'], selector: { attributes: { statuses: ['Expired'] } }, remove: { all: true }, keep: ['owner'] });
    const scan = await stage('all-race', doc, ['eu-west-1'], { fixture: { resources } });
    await scan.scanNow('race-run');
    await scan.scanned('race-run');
    const [job] = await scan.core.queueFor('cn-hangzhou').getWaiting();
    expect(job?.data).toMatchObject({ all: true, resourceIds: resources.map((r) => r.id) });

    // Someone tags one connection with a key the policy keeps, after the scan and before the call.
    await scan.admin.upsertResources([{ ...resources[2]!, tags: { ...resources[2]!.tags, owner: 'team-new' } }]);
    const untag = await startStagedRun({ emulatorUrl: emulator!.url, prefix: scan.prefix, regions: ['cn-hangzhou'], policiesDir: scan.dir, logger: scan.logger });
    cleanups.push(() => untag.close());
    await eventually(async () => ((await untag.core.ledger.pending('race-run')) === 0 ? true : undefined));
    const after = new Map((await scan.admin.getState()).resources.map((r) => [r.id, r.tags]));
    for (const r of resources) expect(after.get(r.id)).toEqual(r.id === resources[2]!.id ? { owner: 'team-new' } : {});
    const { calls } = await scan.admin.getCalls({ action: 'UnTagResources' });
    expect(calls.every((c) => c.params.All !== true && c.params.All !== 'true')).toBe(true);
    expect((await untag.core.ledger.summary('race-run'))[0]?.removed).toBe(10);
  }, 60_000);
});
