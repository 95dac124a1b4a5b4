// Errors that are not the cloud's: a Redis error after a successful UnTagResources call (here a real closed
// connection) is retried with backoff and logged with its real message, not failed for good as
// "permanent, code Unknown". The oracle: the job's state and failedReason in Redis, and the emulator's state.
import { Worker } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { classifyError } from '../../src/cloud/index.js';
import { createEmulatorAdmin, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { createLedger, createRedis, untagJobOptions, type Ledger, type UntagJob } from '../../src/queue/index.js';
import { createCore } from '../../src/runtime/index.js';
import { createUntagProcessor } from '../../src/worker/untag.js';
import { EMULATOR_KEYS, REDIS_URL, cleanupPrefix, eventually, testConfig, uniquePrefix } from '../support/harness.js';

const REGION = 'cn-hangzhou';
const ID = 'pcc-internal0000000001';

describe('untag errors that are not the cloud\'s', () => {
  let emulator: RunningEmulator | undefined;
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await emulator?.close();
  });

  it('retries a Redis error after a successful call and keeps its real message', async () => {
    emulator = await startEmulator({ fixture: { resources: [{ id: ID, region: REGION, tags: { 'tmp-a': '1', owner: 'x' } }] } });
    const prefix = uniquePrefix('internal');
    cleanups.push(() => cleanupPrefix(prefix));
    const { logger, lines } = createMemoryLogger({ level: 'info', secrets: [] });
    const core = createCore(testConfig({ emulatorUrl: emulator.url, prefix, regions: [REGION] }), { credentials: EMULATOR_KEYS, logger });
    cleanups.push(() => core.close());
    // The first end-of-batch write goes over a connection that is closed: a real ioredis error.
    const closed = createRedis(REDIS_URL);
    await closed.quit();
    const broken = createLedger(closed, prefix);
    let writes = 0;
    const ledger: Ledger = { ...core.ledger, recordBatchEnd: (...args) => (++writes === 1 ? broken.recordBatchEnd(...args) : core.ledger.recordBatchEnd(...args)) };
    const queue = core.queueFor(REGION);
    const connection = createRedis(REDIS_URL);
    const worker = new Worker(
      queue.name,
      createUntagProcessor({ cloud: core.cloud, classify: classifyError, metrics: core.metrics, ledger, logger, dryRun: false, queueFor: () => queue, throttleDelayMs: 1000 }),
      { connection, prefix },
    );
    cleanups.push(async () => {
      await worker.close();
      connection.disconnect();
    });
    const job: UntagJob = { v: 1, batchId: 'tw-internal-1', policy: 'p', region: REGION, runId: 'r', resourceIds: [ID], tagKeys: ['tmp-a'], all: false, source: 'scan', dryRun: false };
    await queue.add('untag', job, { ...untagJobOptions({ attempts: 3, completedRetentionHours: 1, failedRetentionDays: 1 }), backoff: { type: 'fixed', delay: 50 }, jobId: job.batchId });
    const done = await eventually(async () => {
      const j = await queue.getJob(job.batchId);
      return j?.finishedOn ? j : undefined;
    });
    expect(await done.getState()).toBe('completed');
    expect(done.attemptsMade).toBeGreaterThanOrEqual(2);
    expect((done.stacktrace ?? []).join('\n')).toMatch(/Connection is closed/);
    expect(lines.some((l) => l.includes('batch failed outside the cloud, will retry') && l.includes('Connection is closed'))).toBe(true);
    expect(lines.some((l) => l.includes('batch failed permanently'))).toBe(false);
    expect((await createEmulatorAdmin(emulator.url).getState()).resources[0]?.tags).toEqual({ owner: 'x' });
    expect((await core.ledger.summary('r'))[0]).toMatchObject({ batchesEnded: 1, failed: 0 });
  }, 60_000);
});
