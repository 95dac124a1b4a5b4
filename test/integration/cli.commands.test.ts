// The CLI as users run it: plan's exit codes (0 nothing, 2 pending, 1 error), enqueue, jobs list/show/retry.
import { Queue } from 'bullmq';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { createRedis, untagQueueName } from '../../src/queue/index.js';
import { createCore, runOnce } from '../../src/runtime/index.js';
import {
  EMULATOR_KEYS,
  REDIS_URL,
  cleanupPrefix,
  eventually,
  policyDoc,
  spawnTagwarden,
  tagwardenEnv,
  testConfig,
  uniquePrefix,
  writePolicies,
} from '../support/harness.js';

const REGION = 'cn-hangzhou';

async function cli(args: string[], env: NodeJS.ProcessEnv) {
  const proc = spawnTagwarden(args, env);
  const { code } = await proc.exited;
  return { code, out: proc.lines.join('\n') };
}

describe('cli', () => {
  let emulator: RunningEmulator | undefined;
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
    await emulator?.close();
  });

  it('plan exits 2 while changes are pending, 0 once applied, 1 on an invalid policy', async () => {
    emulator = await startEmulator({ generate: { count: 300, seed: 2, regions: [REGION] } });
    const prefix = uniquePrefix('cli-plan');
    cleanups.push(() => cleanupPrefix(prefix));
    const dir = writePolicies([policyDoc('drop-finance', { regions: [REGION], remove: { keys: ['FinanceDept'] } })]);
    const env = tagwardenEnv({ emulatorUrl: emulator.url, prefix, regions: [REGION], extra: { TAGWARDEN_POLICIES_DIR: dir } });

    const pending = await cli(['plan', '--json', '--verbose'], env);
    expect(pending.code).toBe(2);
    const report = JSON.parse(pending.out) as { rows: Array<{ policy: string; tagsToRemove: number; calls: number; floor: number; naiveCalls: number; resources: unknown[] }> };
    expect(report.rows[0]).toMatchObject({ policy: 'drop-finance' });
    expect(report.rows[0]!.tagsToRemove).toBeGreaterThan(10);
    expect(report.rows[0]!.resources).toHaveLength(report.rows[0]!.tagsToRemove);
    expect(report.rows[0]!.calls).toBe(Math.ceil(report.rows[0]!.tagsToRemove / 20));
    expect(report.rows[0]!.naiveCalls).toBe(report.rows[0]!.tagsToRemove);
    expect(report.rows[0]!.floor).toBe(Math.ceil(report.rows[0]!.tagsToRemove / 20));
    const table = await cli(['plan'], env);
    expect(table.out).toMatch(/UnTag calls\s+UnTag floor\s+naive UnTag calls/);

    const config = testConfig({ emulatorUrl: emulator.url, prefix, regions: [REGION], policiesDir: dir });
    const result = await runOnce(config, { policiesPaths: [dir], credentials: EMULATOR_KEYS, logger: createMemoryLogger({ level: 'warn', secrets: [] }).logger });
    expect(result.failed).toBe(false);
    const clean = await cli(['plan'], env);
    expect(clean.code).toBe(0);
    expect(clean.out).toMatch(/drop-finance\s+cn-hangzhou\s+enforce/);

    writeFileSync(join(dir, 'broken.yaml'), 'apiVersion: tagwarden/v1\nkind: TagPolicy\nmetadata: { name: Bad_Name }\nspec: {}\n');
    const broken = await cli(['plan'], env);
    expect(broken.code).toBe(1);
    expect(broken.out).toMatch(/broken\.yaml:3:\d+/);
  }, 90_000);

  it('enqueue queues valid batches; jobs list, show and retry work on failed jobs', async () => {
    emulator = await startEmulator({ generate: { count: 10, seed: 2, regions: [REGION] } });
    const prefix = uniquePrefix('cli-jobs');
    const redis = createRedis(REDIS_URL);
    const queue = new Queue(untagQueueName('default', REGION), { connection: redis, prefix });
    cleanups.push(async () => {
      await queue.close();
      redis.disconnect();
      await cleanupPrefix(prefix);
    });
    const env = tagwardenEnv({ emulatorUrl: emulator.url, prefix, regions: [REGION] });

    const ids = Array.from({ length: 25 }, (_, i) => `pcc-cli${String(i).padStart(4, '0')}`);
    const queued = await cli(['enqueue', '--region', REGION, '--resource-id', ids.join(','), '--tag-key', 'tmp-a', '--tag-key', 'tmp-b', '--reason', 'cli test'], env);
    expect(queued.code).toBe(0);
    const jobIds = queued.out.split('\n').filter((l) => l.startsWith('tw-'));
    expect(jobIds).toHaveLength(2);
    expect(await queue.getWaitingCount()).toBe(2);
    const bad = await cli(['enqueue', '--region', 'mars-1', '--resource-id', 'pcc-1', '--tag-key', 'acs:x'], env);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/region/);
    expect(bad.out).toMatch(/tagKeys\[0\]/);

    // A producer outside tagwarden puts a malformed job on the queue: it fails at once with a reason.
    await queue.add('untag', { v: 1, batchId: 'tw-bad-job', region: REGION, resourceIds: 'pcc-1' }, { jobId: 'tw-bad-job', attempts: 5 });
    const core = createCore(testConfig({ emulatorUrl: emulator.url, prefix, regions: [REGION] }), {
      credentials: EMULATOR_KEYS,
      logger: createMemoryLogger({ level: 'warn', secrets: [] }).logger,
    });
    const workers = core.createWorkers();
    workers.start();
    try {
      await eventually(async () => ((await (await queue.getJob('tw-bad-job'))?.getState()) === 'failed' ? true : undefined));
    } finally {
      await workers.close();
      await core.close();
    }
    const list = await cli(['jobs', 'list', '--state', 'failed', '--json'], env);
    expect(list.code).toBe(0);
    const failed = JSON.parse(list.out) as Array<{ id: string; failedReason: string; attemptsMade: number }>;
    expect(failed.map((j) => j.id)).toEqual(['tw-bad-job']);
    expect(failed[0]!.failedReason).toMatch(/invalid untag job payload: .*resourceIds.*schemas\/jobs\.schema\.json/);
    expect(failed[0]!.attemptsMade).toBe(1);
    const show = await cli(['jobs', 'show', 'tw-bad-job', '--json'], env);
    expect(JSON.parse(show.out)).toMatchObject({ id: 'tw-bad-job', state: 'failed' });
    const retry = await cli(['jobs', 'retry', 'tw-bad-job'], env);
    expect(retry.code).toBe(0);
    expect(await (await queue.getJob('tw-bad-job'))?.getState()).toBe('waiting');
    const missing = await cli(['jobs', 'show', 'tw-none'], env);
    expect(missing.code).toBe(1);
  }, 90_000);
});
