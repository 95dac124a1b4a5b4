// The run ledger on the real Redis: batches counted once, a retried failure replaced by its later success.
import { afterEach, describe, expect, it } from 'vitest';
import { createLedger, createRedis } from '../../src/queue/index.js';
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
