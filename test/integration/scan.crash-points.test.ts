// A scan stopped before any one of its Redis writes neither loses nor doubles a batch: the next scan of the
// policy and region (the same run retried, or a later run once the dead scan's lease expired) finishes the
// work. The write points are found by running a scan once with a recording hook, so a write added later is
// crash-tested too; every point reported is one of SCAN_WRITE_POINTS. Discovery pages 8 connections at a time,
// so the scan logs several pages and enqueues batches between them (a stop between two pages' writes is
// covered). Oracles from outside: the emulator's state and call log, the queued jobs, the ledger.
import { afterEach, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type EmulatorResource, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { SCAN_WRITE_POINTS, scanWritePointOf } from '../../src/worker/index.js';
import { judgeRun, plannedBatches } from '../chaos/support/oracle.js';
import { cleanupPrefix, eventually, policyDoc, startStagedRun, uniquePrefix, writePolicies } from '../support/harness.js';

const REGION = 'cn-hangzhou';
const resources: EmulatorResource[] = Array.from({ length: 48 }, (_, i) => ({
  id: `pcc-crash${String(i).padStart(12, '0')}`,
  region: REGION,
  tags: { [`tmp-${i % 3}`]: 'x', owner: 'team-a' },
}));
const doc = policyDoc('crash', { regions: [REGION], remove: { keyPatterns: ['tmp-*'] }, limits: { maxRemovalsPerRun: 1000 } });

describe('a scan stopped between two of its Redis writes', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** A fresh emulator and prefix, and a staged run whose scans call `hook` before each Redis write. */
  async function stage(hook: (point: string) => void) {
    const emulator: RunningEmulator = await startEmulator({ fixture: { resources } });
    cleanups.push(() => emulator.close());
    const prefix = uniquePrefix('crash');
    cleanups.push(() => cleanupPrefix(prefix));
    const { logger } = createMemoryLogger({ level: 'warn', secrets: [] });
    const run = await startStagedRun({
      emulatorUrl: emulator.url,
      prefix,
      regions: [REGION],
      policiesDir: writePolicies([doc]),
      logger,
      runtime: { enqueueChunk: 1, listPageSize: 8, beforeScanWrite: hook },
    });
    cleanups.push(() => run.close());
    const ended = (id: string) =>
      eventually(async () => {
        const state = await (await run.core.scanQueue.getJob(id))?.getState();
        return state === 'completed' || state === 'failed' ? state : undefined;
      });
    return { run, prefix, admin: createEmulatorAdmin(emulator.url), ended };
  }

  async function writePoints(): Promise<string[]> {
    const points: string[] = [];
    const { run, ended } = await stage((point) => void points.push(point));
    const [id] = await run.scanNow('enumerate');
    expect(await ended(id!)).toBe('completed');
    for (const c of cleanups.splice(0).reverse()) await c();
    return points;
  }

  async function crashAt(k: number, next: 'same run retried' | 'next run after the lease expired'): Promise<string> {
    let writes = 0;
    let crashed = '';
    // For the next run, the stopped scan stays dead: every later write of its retries fails too.
    let dead = false;
    const { run, prefix, admin, ended } = await stage((point) => {
      writes += 1;
      if (writes === k) crashed = point;
      if (writes === k || dead) {
        if (next === 'next run after the lease expired') dead = true;
        throw new Error(`simulated crash before ${point}`);
      }
    });
    const before = (await admin.getState()).resources;
    const [first] = await run.scanNow('run-1');
    const runs = ['run-1'];
    if (next === 'same run retried') {
      // The scan job's own retry (same job, same run ID) is the next scan.
      expect(await ended(first!), `after a crash before ${crashed}`).toBe('completed');
    } else {
      expect(await ended(first!)).toBe('failed');
      dead = false;
      await run.core.redis.del(`${prefix}:scan-lease:crash|${REGION}`);
      runs.push('run-2');
      const [again] = await run.scanNow('run-2');
      expect(await ended(again!), `after a crash before ${crashed}`).toBe('completed');
    }

    const queue = run.core.queueFor(REGION);
    await eventually(async () => {
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      if (Object.values(counts).some((n) => n > 0)) return undefined;
      for (const r of runs) if ((await run.core.ledger.livePending(r)) > 0) return undefined;
      return true;
    });
    const after = (await admin.getState()).resources;
    const { calls } = await admin.getCalls();
    const batches = await plannedBatches([queue]);
    const verdict = judgeRun({ before, after, policies: [run.policy], now: new Date(), calls, batches });
    const where = `crash before ${crashed} (write ${k}), then ${next}`;
    expect(verdict.lost, where).toEqual([]);
    expect(verdict.doubled, where).toEqual([]);
    expect(verdict.removedTwice, where).toEqual([]);
    expect(verdict.tokenConflicts, where).toEqual([]);
    expect(verdict.replay, where).toEqual([]);
    expect(verdict.state.notRemoved, where).toEqual([]);
    expect(verdict.state.wronglyRemoved, where).toEqual([]);
    expect(after.every((r) => Object.keys(r.tags).join() === 'owner'), where).toBe(true);
    // The ledger counts each batch once, in the run that enqueued it.
    let recorded = 0;
    for (const r of runs) recorded += (await run.core.ledger.summary(r)).reduce((n, s) => n + s.batches, 0);
    expect(recorded, where).toBe(batches.length);
    for (const c of cleanups.splice(0).reverse()) await c();
    return crashed;
  }

  for (const next of ['same run retried', 'next run after the lease expired'] as const) {
    it(`finishes the work exactly once when the ${next}, whichever write it stopped before`, async () => {
      const points = await writePoints();
      // Lease, log, six pages, enqueue calls between them, the run record, the status: every kind of stop.
      expect(points.filter((p) => p.startsWith('log.append#')).length).toBe(6);
      expect(points.filter((p) => p.startsWith('queue.addBulk#')).length).toBeGreaterThanOrEqual(3);
      // Batches are enqueued while discovery still pages: an enqueue comes before the last page is logged.
      expect(points.findIndex((p) => p.startsWith('queue.addBulk#'))).toBeLessThan(points.lastIndexOf('log.append#5'));
      expect(points.filter((p) => scanWritePointOf(p) === undefined)).toEqual([]);
      expect(new Set(points.map(scanWritePointOf)).size).toBeLessThanOrEqual(SCAN_WRITE_POINTS.length);
      const crashed: string[] = [];
      for (let k = 1; k <= points.length; k += 1) crashed.push(await crashAt(k, next));
      expect(crashed).toEqual(points);
    }, 240_000);
  }
});
