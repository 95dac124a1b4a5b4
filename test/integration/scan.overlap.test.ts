// Discovery and removal overlapped: a scan enqueues the batches the planner completes while discovery still
// pages, and its workers remove tags before the last page is read; the blast-radius cap still halts a run
// before anything over the cap is removed (early enqueue only while the pages left cannot reach the cap).
// Judged from outside: the emulator's call log (order of List and UnTag calls) and final state, the queues.
import { afterEach, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type EmulatorResource } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { judgeRun, plannedBatches } from '../chaos/support/oracle.js';
import { cleanupPrefix, eventually, policyDoc, startStagedRun, uniquePrefix, writePolicies } from '../support/harness.js';

const REGION = 'cn-hangzhou';
/** 200 connections, 10 a page: 20 pages; each carries one of four tmp-* keys and a kept owner tag. */
const resources: EmulatorResource[] = Array.from({ length: 200 }, (_, i) => ({
  id: `pcc-overlap${String(i).padStart(12, '0')}`,
  region: REGION,
  tags: { [`tmp-${i % 4}`]: 'x', owner: 'team-a' },
}));
const PAGE = 10;
const PAGES = 20;

describe('a scan overlapped with removal', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function stage(name: string, cap: number, hook?: (point: string) => Promise<void> | void) {
    const emulator = await startEmulator({ fixture: { resources } });
    cleanups.push(() => emulator.close());
    const prefix = uniquePrefix(name);
    cleanups.push(() => cleanupPrefix(prefix));
    const { logger, lines } = createMemoryLogger({ level: 'info', secrets: [] });
    const doc = policyDoc(name, { regions: [REGION], remove: { keyPatterns: ['tmp-*'] }, limits: { maxRemovalsPerRun: cap } });
    const run = await startStagedRun({
      emulatorUrl: emulator.url,
      prefix,
      regions: [REGION],
      policiesDir: writePolicies([doc]),
      logger,
      runtime: { listPageSize: PAGE, ...(hook ? { beforeScanWrite: hook } : {}) },
    });
    cleanups.push(() => run.close());
    const admin = createEmulatorAdmin(emulator.url);
    const ended = (id: string) =>
      eventually(async () => {
        const job = await run.core.scanQueue.getJob(id);
        return job?.finishedOn ? ((await job.getState()) as string) : undefined;
      });
    return { run, admin, lines, ended, before: (await admin.getState()).resources };
  }

  /** The sequence numbers of the emulator's calls of one action. */
  async function seqs(admin: ReturnType<typeof createEmulatorAdmin>, action: string): Promise<number[]> {
    return (await admin.getCalls()).calls.filter((c) => c.action === action).map((c) => c.seq);
  }

  it('removes tags while discovery still pages, and ends with every targeted tag removed exactly once', async () => {
    // The scan is held before logging its last page until the emulator has seen an UnTagResources call.
    const held: { admin?: ReturnType<typeof createEmulatorAdmin> } = {};
    const { run, lines, ended, before, admin } = await stage('overlap', 1_000_000, async (point) => {
      if (point === `log.append#${PAGES - 1}`) {
        await eventually(async () => (((await held.admin?.getStats())?.byAction.UnTagResources?.total ?? 0) > 0 ? true : undefined), 30_000);
      }
    });
    held.admin = admin;
    const [id] = await run.scanNow('run-1');
    expect(await ended(id!)).toBe('completed');
    await eventually(async () => ((await run.core.ledger.livePending('run-1')) === 0 ? true : undefined));

    const lists = await seqs(admin, 'ListVpcPeerConnections');
    const untags = await seqs(admin, 'UnTagResources');
    expect(lists).toHaveLength(PAGES);
    expect(Math.min(...untags)).toBeLessThan(Math.max(...lists));
    const verdict = judgeRun({
      before,
      after: (await admin.getState()).resources,
      policies: [run.policy],
      now: new Date(),
      calls: (await admin.getCalls()).calls,
      batches: await plannedBatches([run.core.queueFor(REGION)]),
    });
    expect(verdict.lost).toEqual([]);
    expect(verdict.doubled).toEqual([]);
    expect(verdict.removedTwice).toEqual([]);
    expect(verdict.state.notRemoved).toEqual([]);
    expect(verdict.state.wronglyRemoved).toEqual([]);
    // Union packing still reaches the floor with batches cut while paging: 200 violating, 10 calls.
    expect(untags).toHaveLength(10);
    expect((await run.core.ledger.summary('run-1'))[0]).toMatchObject({ scans: 1, violating: 200, tagsPlanned: 200, batches: 10, removed: 200 });
    expect(lines.some((l) => l.includes('scan finished'))).toBe(true);
  }, 90_000);

  it('holds every batch until the count is known when the pages left could reach the cap, then removes them', async () => {
    // 200 pairs against a cap of 1,000: under the cap, but 20 tags x the 190 connections left after page one could reach it.
    const { run, admin, ended, before } = await stage('held', 1_000);
    const [id] = await run.scanNow('run-1');
    expect(await ended(id!)).toBe('completed');
    await eventually(async () => ((await run.core.ledger.livePending('run-1')) === 0 ? true : undefined));
    const lists = await seqs(admin, 'ListVpcPeerConnections');
    const untags = await seqs(admin, 'UnTagResources');
    expect(untags.length).toBeGreaterThan(0);
    // Early enqueue began only once the connections left could no longer reach the cap: 20 x left <= 1,000 - planned.
    // After page k, left = 200 - 10k and planned = 10k, so only after page 15 (10 x 15 + 20 x 50 = 1,150 > 1,000; after page 16: 160 + 20 x 40 = 960).
    const firstUntag = Math.min(...untags);
    expect(lists.filter((s) => s < firstUntag).length).toBeGreaterThanOrEqual(16);
    const after = (await admin.getState()).resources;
    const verdict = judgeRun({ before, after, policies: [run.policy], now: new Date(), calls: (await admin.getCalls()).calls, batches: await plannedBatches([run.core.queueFor(REGION)]) });
    expect(verdict.state.notRemoved).toEqual([]);
    expect(verdict.doubled).toEqual([]);
    expect(after.every((r) => Object.keys(r.tags).join() === 'owner')).toBe(true);
  }, 90_000);

  it('halts a run over its cap with nothing removed, though its batches were planned page by page', async () => {
    const { run, admin, ended, lines, before } = await stage('over', 150);
    const [id] = await run.scanNow('run-1');
    expect(await ended(id!)).toBe('completed');
    expect((await run.core.ledger.summary('run-1'))[0]).toMatchObject({ halted: 1, batches: 0, tagsPlanned: 200 });
    expect(await seqs(admin, 'ListVpcPeerConnections')).toHaveLength(PAGES);
    expect(await seqs(admin, 'UnTagResources')).toEqual([]);
    expect(await run.core.queueFor(REGION).getJobCounts('waiting', 'delayed', 'active', 'completed', 'failed')).toEqual({ waiting: 0, delayed: 0, active: 0, completed: 0, failed: 0 });
    expect((await admin.getState()).resources).toEqual(before);
    expect(lines.some((l) => l.includes('policy halted: run would exceed maxRemovalsPerRun'))).toBe(true);
    // Nothing is left behind for the next scan to finish: the log is gone once the halt is recorded.
    expect(await run.core.ledger.readScanLog('over', REGION)).toBeUndefined();
  }, 90_000);
});
