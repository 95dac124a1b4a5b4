// An upgrade from the queue names before hash tags: a daemon started on a prefix whose old-named queues still
// hold jobs says so once (how many, in which queues); on a clean prefix, or with its connection gone, it says
// nothing of the kind and starts anyway. The old jobs are left alone (not run, not deleted).
import { Queue } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { SCAN_QUEUE, createRedis, untagQueueName } from '../../src/queue/index.js';
import { startDaemon, type Daemon } from '../../src/runtime/index.js';
import { legacyQueueNames, warnLegacyQueues } from '../../src/runtime/legacy-queues.js';
import { EMULATOR_KEYS, REDIS_URL, UNLIMITED_QUOTAS, cleanupPrefix, eventually, testConfig, uniquePrefix } from '../support/harness.js';

const REGION = 'cn-hangzhou';
const WARNING = 'queues of the previous naming hold jobs';

describe('queues of the previous naming', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('a daemon on a prefix with jobs in the old queues warns once with the count, and leaves them there', async () => {
    const emulator: RunningEmulator = await startEmulator({ generate: { count: 10, seed: 3, regions: [REGION] }, quotas: UNLIMITED_QUOTAS });
    cleanups.push(() => emulator.close());
    const prefix = uniquePrefix('legacy');
    cleanups.push(() => cleanupPrefix(prefix));
    const redis = createRedis(REDIS_URL);
    cleanups.push(async () => redis.disconnect());
    expect(legacyQueueNames('default', [REGION])).toEqual(['scan', 'events-default', 'untag-default-cn-hangzhou']);
    // What version 0.1 left behind: two batches and a scan waiting, one delayed retry.
    const oldUntag = new Queue('untag-default-cn-hangzhou', { connection: redis, prefix });
    const oldScan = new Queue('scan', { connection: redis, prefix });
    cleanups.push(async () => {
      await oldUntag.close();
      await oldScan.close();
    });
    await oldUntag.add('untag', { batchId: 'old-1' }, { jobId: 'old-1' });
    await oldUntag.add('untag', { batchId: 'old-2' }, { jobId: 'old-2' });
    await oldUntag.add('untag', { batchId: 'old-3' }, { jobId: 'old-3', delay: 3_600_000 });
    await oldScan.add('scan', { policy: 'p' });
    // The new names are different queues: nothing of the old ones shows there.
    expect(untagQueueName('default', REGION)).not.toBe('untag-default-cn-hangzhou');
    expect(SCAN_QUEUE).not.toBe('scan');

    const config = testConfig({ emulatorUrl: emulator.url, prefix, regions: [REGION], overrides: { quotas: UNLIMITED_QUOTAS } });
    const { logger, lines } = createMemoryLogger({ level: 'info', secrets: [] });
    let daemon: Daemon | undefined;
    try {
      daemon = await startDaemon(config, { logger, credentials: EMULATOR_KEYS });
      const line = await eventually(async () => lines.find((l) => l.includes(WARNING)), 30_000, 100);
      const parsed = JSON.parse(line) as { level: string; jobs: number; queues: Record<string, number> };
      expect(parsed.level).toBe('warn');
      expect(parsed.jobs).toBe(4);
      expect(parsed.queues).toEqual({ scan: 1, 'untag-default-cn-hangzhou': 3 });
      await eventually(async () => ((await daemon!.readiness()).ready ? true : undefined), 30_000, 100);
      expect(lines.filter((l) => l.includes(WARNING))).toHaveLength(1);
    } finally {
      await daemon?.close({ force: true });
    }
    // Not run, not deleted: the operator decides (deploy/README.md, Upgrade).
    expect(await oldUntag.getJobCounts('wait', 'delayed', 'completed')).toEqual({ wait: 2, delayed: 1, completed: 0 });
  }, 90_000);

  it('says nothing on a clean prefix, and only that it could not check when the connection is gone', async () => {
    const redis = createRedis(REDIS_URL);
    const clean = createMemoryLogger({ level: 'debug', secrets: [] });
    expect(await warnLegacyQueues(redis, uniquePrefix('legacy-clean'), 'default', [REGION, 'cn-beijing'], clean.logger)).toBe(0);
    expect(clean.lines).toEqual([]);
    redis.disconnect();
    const gone = createMemoryLogger({ level: 'debug', secrets: [] });
    expect(await warnLegacyQueues(redis, uniquePrefix('legacy-gone'), 'default', [REGION], gone.logger)).toBe(0);
    expect(gone.lines).toHaveLength(1);
    expect(gone.lines[0]).toContain('could not check the queues of the previous naming');
  });
});
