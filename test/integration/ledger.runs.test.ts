// The run ledger on the real Redis: batches counted once, a retried failure replaced by its later success.
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { createLedger, createRedis, untagQueueName } from '../../src/queue/index.js';
import { REDIS_URL, cleanupPrefix, uniquePrefix } from '../support/harness.js';

describe('run ledger', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  function setup() {
    const prefix = uniquePrefix('ledger');
    const redis = createRedis(REDIS_URL);
    cleanups.push(async () => {
      redis.disconnect();
      await cleanupPrefix(prefix);
    });
    return createLedger(redis, prefix);
  }

  it('counts a batch removed, failed for good or invalid as ended, so a run whose batches are gone blocks nothing', async () => {
    const prefix = uniquePrefix('ledger-live');
    const redis = createRedis(REDIS_URL);
    const queue = new Queue(untagQueueName('default', 'cn-hangzhou'), { connection: redis, prefix });
    cleanups.push(async () => {
      await queue.close();
      redis.disconnect();
      await cleanupPrefix(prefix);
    });
    const ledger = createLedger(redis, prefix);
    // Two jobs a worker fails for good (one rejected as invalid, one unrecoverable), then three that wait.
    await queue.add('untag', { bad: true }, { jobId: 'b-invalid' });
    await queue.add('untag', { bad: true }, { jobId: 'b-failed' });
    const workerConnection = createRedis(REDIS_URL, { connectionName: 'tagwarden-test-worker' });
    const worker = new Worker(queue.name, async () => {
      throw new UnrecoverableError('invalid untag job payload');
    }, { connection: workerConnection, prefix });
    await new Promise<void>((resolve) => {
      let failed = 0;
      worker.on('failed', () => {
        if (++failed === 2) resolve();
      });
    });
    await worker.close();
    workerConnection.disconnect();
    for (const id of ['b-waiting', 'b-removed']) await queue.add('untag', {}, { jobId: id });
    await (await queue.getJob('b-removed'))?.remove();
    const batchIds = ['b-invalid', 'b-failed', 'b-waiting', 'b-removed', 'b-never-added'];
    await ledger.recordScan('r', 'p', 'cn-hangzhou', { scanned: 5, violating: 5, tagsPlanned: 5, batchIds, queueKey: queue.toKey('') });
    // The rough count still sees five; the exact one only the batch that can still run.
    expect(await ledger.pending('r')).toBe(5);
    expect(await ledger.livePending('r', { policy: 'p', region: 'cn-hangzhou' })).toBe(1);
    expect((await ledger.summary('r'))[0]).toMatchObject({ batches: 5, batchesEnded: 4, failed: 4 });
    // Once the last one is gone too, nothing is pending (no wait for the ledger's 7-day TTL).
    await (await queue.getJob('b-waiting'))?.remove();
    expect(await ledger.livePending('r')).toBe(0);
    expect(await ledger.livePending('r', { policy: 'p', region: 'cn-hangzhou' })).toBe(0);
    expect(await ledger.livePending('r', { policy: 'p', region: 'cn-shanghai' })).toBe(0);
  });

  it('counts a scan without batches once per policy and region, with the counts of a halted one', async () => {
    const ledger = setup();
    await ledger.recordScanWithoutBatches('r', 'p', 'cn-hangzhou', 'halted', { scanned: 400, violating: 300, tagsPlanned: 320 });
    await ledger.recordScanWithoutBatches('r', 'p', 'cn-hangzhou', 'halted', { scanned: 400, violating: 300, tagsPlanned: 320 });
    await ledger.recordScanWithoutBatches('r', 'p', 'cn-shanghai', 'skipped');
    expect((await ledger.summary('r'))[0]).toMatchObject({ scans: 2, halted: 1, skipped: 1, scanned: 400, violating: 300, tagsPlanned: 320 });
    expect(await ledger.scanRecorded('r', 'p', 'cn-hangzhou')).toBe(true);
    expect(await ledger.scanRecorded('r', 'p', 'cn-beijing')).toBe(false);
  });

  it('counts planned batches once per ID and each end once', async () => {
    const ledger = setup();
    expect(await ledger.recordScan('r', 'p', 'cn-hangzhou', { scanned: 10, violating: 3, tagsPlanned: 4, batchIds: ['b1', 'b2'] })).toBe(2);
    // The same scan recorded again (re-run after a crash) counts once.
    expect(await ledger.recordScan('r', 'p', 'cn-hangzhou', { scanned: 10, violating: 3, tagsPlanned: 4, batchIds: ['b1', 'b2'] })).toBe(0);
    expect(await ledger.pending('r')).toBe(2);
    expect(await ledger.recordBatchEnd('r', 'p', 'b1', { outcome: 'succeeded', removed: 3, calls: 1, notFound: 0 })).toBe(true);
    expect(await ledger.recordBatchEnd('r', 'p', 'b1', { outcome: 'succeeded', removed: 3, calls: 1, notFound: 0 })).toBe(false);
    expect(await ledger.pending('r')).toBe(1);
    const [row] = await ledger.summary('r');
    expect(row).toMatchObject({ policy: 'p', scans: 1, scanned: 10, batches: 2, batchesEnded: 1, removed: 3, calls: 1, failed: 0 });
  });

  it('replaces a failure by the success of the same batch retried later, but never a success by a failure', async () => {
    const ledger = setup();
    await ledger.recordScan('r', 'p', 'cn-hangzhou', { scanned: 1, violating: 1, tagsPlanned: 2, batchIds: ['b1', 'b2'] });
    expect(await ledger.recordBatchEnd('r', 'p', 'b1', { outcome: 'failed', removed: 0, calls: 8, notFound: 0 })).toBe(true);
    expect((await ledger.summary('r'))[0]).toMatchObject({ failed: 1, batchesEnded: 1 });
    expect(await ledger.recordBatchEnd('r', 'p', 'b1', { outcome: 'succeeded', removed: 2, calls: 1, notFound: 0 })).toBe(true);
    expect((await ledger.summary('r'))[0]).toMatchObject({ failed: 0, batchesEnded: 1, removed: 2 });
    expect(await ledger.recordBatchEnd('r', 'p', 'b1', { outcome: 'failed', removed: 0, calls: 1, notFound: 0 })).toBe(false);
    expect((await ledger.summary('r'))[0]).toMatchObject({ failed: 0, removed: 2 });
  });

  it('keeps the status of each policy per region', async () => {
    const ledger = setup();
    await ledger.setPolicyStatus('p', 'cn-hangzhou', { runId: 'r1', halted: true });
    await ledger.setPolicyStatus('p', 'cn-shanghai', { runId: 'r2', halted: false });
    expect(await ledger.policyStatuses()).toEqual({ p: { 'cn-hangzhou': { runId: 'r1', halted: true }, 'cn-shanghai': { runId: 'r2', halted: false } } });
    expect(await ledger.regionStatus('p', 'cn-shanghai')).toEqual({ runId: 'r2', halted: false });
  });
});
