// One scan per (policy, region) at a time, whoever starts it: a second scan job skips and names the running one,
// and API requests that arrive during a scheduled scan are answered with that scan, not a second one. The oracle
// is the emulator's call log and the queued batches: no (resource, key) pair is planned into two batches.
import { afterEach, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type EmulatorResource, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { compilePolicies } from '../../src/policy/index.js';
import { readPolicySources } from '../../src/policy-files/index.js';
import { startDaemon } from '../../src/runtime/index.js';
import { judgeRun, plannedBatches } from '../chaos/support/oracle.js';
import { SCAN_QUEUE, untagQueueName } from '../../src/queue/index.js';
import { EMULATOR_KEYS, cleanupPrefix, eventually, policyDoc, startStagedRun, testConfig, uniquePrefix, writePolicies } from '../support/harness.js';

const REGION = 'cn-hangzhou';
const TOKEN = 'lease-test-token-0123456789';
const resources: EmulatorResource[] = Array.from({ length: 107 }, (_, i) => ({
  id: `pcc-lease${String(i).padStart(12, '0')}`,
  region: REGION,
  tags: { [`tmp-${i % 4}`]: 'x', owner: 'team-a' },
}));
const doc = policyDoc('lease', { regions: [REGION], remove: { keyPatterns: ['tmp-*'] }, schedule: { every: '1h' }, limits: { maxRemovalsPerRun: 1000 } });

/** A hook that holds the first scan to reach `point` until released. */
function gate(point: string) {
  let release!: () => void;
  let reached!: () => void;
  const opened = new Promise<void>((resolve) => (release = resolve));
  const arrived = new Promise<void>((resolve) => (reached = resolve));
  let used = false;
  return {
    hook: async (p: string) => {
      if (p !== point || used) return;
      used = true;
      reached();
      await opened;
    },
    arrived,
    release: () => release(),
  };
}

describe('scan lease', () => {
  let emulator: RunningEmulator | undefined;
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await emulator?.close();
  });

  it('lets a second scan job of a running (policy, region) skip and name the running scan', async () => {
    emulator = await startEmulator({ fixture: { resources } });
    const admin = createEmulatorAdmin(emulator.url);
    const prefix = uniquePrefix('lease');
    cleanups.push(() => cleanupPrefix(prefix));
    const held = gate('log.open');
    const { logger, lines } = createMemoryLogger({ level: 'info', secrets: [] });
    const run = await startStagedRun({ emulatorUrl: emulator.url, prefix, regions: [REGION], policiesDir: writePolicies([doc]), logger, runtime: { beforeScanWrite: held.hook } });
    cleanups.push(() => run.close());
    const before = (await admin.getState()).resources;

    const [first] = await run.scanNow('run-a');
    await held.arrived;
    const [second] = await run.scanNow('run-b');
    const skipped = await eventually(async () => {
      const job = await run.core.scanQueue.getJob(second!);
      return job?.finishedOn ? (job.returnvalue as Record<string, unknown>) : undefined;
    });
    expect(skipped).toMatchObject({ skipped: true, batches: 0, runningScan: { runId: 'run-a', jobId: first } });
    expect(lines.some((l) => l.includes('another scan of this policy and region is running'))).toBe(true);
    held.release();

    await eventually(async () => ((await run.core.scanQueue.getJob(first!))?.finishedOn ? true : undefined));
    const queue = run.core.queueFor(REGION);
    await eventually(async () => ((await run.core.ledger.livePending('run-a')) === 0 ? true : undefined));
    const verdict = judgeRun({
      before,
      after: (await admin.getState()).resources,
      policies: [run.policy],
      now: new Date(),
      calls: (await admin.getCalls()).calls,
      batches: await plannedBatches([queue]),
    });
    expect(verdict.doubled).toEqual([]);
    expect(verdict.removedTwice).toEqual([]);
    expect(verdict.state.notRemoved).toEqual([]);
    expect((await run.core.ledger.summary('run-b'))[0]).toMatchObject({ skipped: 1, batches: 0 });
  }, 60_000);

  it('answers API scan requests made during a scheduled scan with the running scan, and queues one scan when none runs', async () => {
    emulator = await startEmulator({ fixture: { resources } });
    const admin = createEmulatorAdmin(emulator.url);
    const prefix = uniquePrefix('lease-api');
    cleanups.push(() => cleanupPrefix(prefix));
    const dir = writePolicies([doc]);
    const held = gate('log.open');
    const { logger } = createMemoryLogger({ level: 'warn', secrets: [] });
    const config = testConfig({ emulatorUrl: emulator.url, prefix, policiesDir: dir, regions: [REGION], overrides: { apiToken: TOKEN } });
    const daemon = await startDaemon(config, { credentials: EMULATOR_KEYS, logger, beforeScanWrite: held.hook });
    cleanups.push(async () => {
      await daemon.close();
    });
    const before = (await admin.getState()).resources;
    const base = `http://127.0.0.1:${daemon.httpPort}`;
    const scan = async () => {
      const res = await fetch(`${base}/v1/policies/lease/scan`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
      expect(res.status).toBe(202);
      return (await res.json()) as { jobIds: string[]; scans: Array<{ region: string; jobId: string; state: string }> };
    };

    // The scheduler's first scan is held after taking its lease; three requests arrive together meanwhile.
    await held.arrived;
    const answers = await Promise.all([scan(), scan(), scan()]);
    const running = answers[0]!.scans[0]!;
    expect(running).toMatchObject({ region: REGION, state: 'running' });
    expect(running.jobId).toMatch(/^repeat:/);
    for (const a of answers) expect(a.scans).toEqual([running]);
    held.release();

    const redisQueue = (await import('bullmq')).Queue;
    const untag = new redisQueue(untagQueueName(config.accountId, REGION), { connection: { url: config.redisUrl }, prefix });
    const scanQueue = new redisQueue(SCAN_QUEUE, { connection: { url: config.redisUrl }, prefix });
    cleanups.push(async () => {
      await untag.close();
      await scanQueue.close();
    });
    await eventually(async () => ((await scanQueue.getJob(running.jobId))?.finishedOn ? true : undefined));
    await eventually(async () => ((await untag.getJobCounts('waiting', 'active', 'delayed')).waiting === 0 && (await untag.getActiveCount()) === 0 ? true : undefined));

    // No scan runs now: two requests together get one queued scan.
    const [x, y] = await Promise.all([scan(), scan()]);
    expect(x.jobIds).toHaveLength(1);
    expect(y.jobIds).toEqual(x.jobIds);
    await eventually(async () => ((await scanQueue.getJob(x.jobIds[0]!))?.finishedOn ? true : undefined));
    expect(await scanQueue.getCompletedCount()).toBe(2);

    const policies = compilePolicies((await readPolicySources([dir])).sources, new Date()).policies;
    const verdict = judgeRun({
      before,
      after: (await admin.getState()).resources,
      policies,
      now: new Date(),
      calls: (await admin.getCalls()).calls,
      batches: await plannedBatches([untag]),
    });
    expect(verdict.doubled).toEqual([]);
    expect(verdict.removedTwice).toEqual([]);
    expect(verdict.lost).toEqual([]);
    expect(verdict.state.notRemoved).toEqual([]);
  }, 60_000);
});
