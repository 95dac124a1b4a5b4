// API all=true jobs send the same call on every attempt (issue 11). The request from another system says
// "remove every tag" (UnTagResources All=true); `carried` (read once, before the first call, for counts and the
// audit) is written into the job after the first attempt, and must not turn a retry into an explicit-keys call:
// the batch's ClientToken goes with the same parameters every time. Oracle: the emulator's call log across
// retries, and its end state.
import { Worker } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { classifyError } from '../../src/cloud/index.js';
import { createEmulatorAdmin, startEmulator, type CallRecord, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { createRedis, untagJobOptions, type UntagJob } from '../../src/queue/index.js';
import { createCore } from '../../src/runtime/index.js';
import { createUntagProcessor } from '../../src/worker/untag.js';
import { EMULATOR_KEYS, REDIS_URL, cleanupPrefix, eventually, testConfig, uniquePrefix } from '../support/harness.js';

const REGION = 'cn-hangzhou';
const A = 'pcc-apiall00000000001';
const B = 'pcc-apiall00000000002';

/** What a call sent, whether the emulator logged it normalised (answered) or raw (a fault answered first). */
function sent(c: CallRecord): { all: boolean; ids: string[]; keys: string[]; token: string | null } {
  const p = c.params;
  const list = (name: string): string[] =>
    Array.isArray(p[name]) ? (p[name] as string[]) : Object.keys(p).filter((k) => k.startsWith(`${name}.`)).sort().map((k) => String(p[k]));
  return { all: p['All'] === true || p['All'] === 'true', ids: list('ResourceId').sort(), keys: list('TagKey').sort(), token: c.clientToken ?? (p['ClientToken'] as string | undefined) ?? null };
}

describe('API all=true jobs across retries', () => {
  let emulator: RunningEmulator | undefined;
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await emulator?.close();
  });

  it('send All=true with the same IDs and ClientToken on every attempt, also when a tag was added between attempts', async () => {
    emulator = await startEmulator({
      fixture: { resources: [{ id: A, region: REGION, tags: { 'tmp-a': '1', owner: 'x' } }, { id: B, region: REGION, tags: { env: 'dev' } }] },
    });
    const admin = createEmulatorAdmin(emulator.url);
    const prefix = uniquePrefix('apiall');
    cleanups.push(() => cleanupPrefix(prefix));
    const { logger } = createMemoryLogger({ level: 'warn', secrets: [] });
    const core = createCore(testConfig({ emulatorUrl: emulator.url, prefix, regions: [REGION] }), { credentials: EMULATOR_KEYS, logger });
    cleanups.push(() => core.close());
    const queue = core.queueFor(REGION);
    const connection = createRedis(REDIS_URL);
    const worker = new Worker(
      queue.name,
      createUntagProcessor({ cloud: core.cloud, classify: classifyError, metrics: core.metrics, ledger: core.ledger, logger, dryRun: false, queueFor: () => queue, throttleDelayMs: 1000 }),
      { connection, prefix },
    );
    cleanups.push(async () => {
      await worker.close();
      connection.disconnect();
    });
    const untagCalls = async () => (await admin.getCalls({ action: 'UnTagResources' })).calls;

    // Every UnTagResources call fails (503) until told otherwise.
    await admin.setFaults({ serviceUnavailable: 1, actions: ['UnTagResources'] });
    const job: UntagJob = { v: 1, batchId: 'tw-apiall-1', policy: 'api', region: REGION, runId: 'api-r', resourceIds: [A, B], tagKeys: [], all: true, source: 'api', dryRun: false };
    await queue.add('untag', job, { ...untagJobOptions({ attempts: 10, completedRetentionHours: 1, failedRetentionDays: 1 }), backoff: { type: 'fixed', delay: 2_500 }, jobId: job.batchId });

    // The first attempt failed; then another system adds a tag to A before the retry.
    await eventually(async () => ((await untagCalls()).length >= 1 ? true : undefined), 30_000);
    await admin.upsertResources([{ id: A, region: REGION, tags: { 'tmp-a': '1', owner: 'x', 'added-later': 'y' } }]);
    // A second attempt (it reads the tags again before its call) fails too; then the service recovers.
    await eventually(async () => ((await untagCalls()).length >= 2 ? true : undefined), 30_000);
    await admin.setFaults({});

    const done = await eventually(async () => {
      const j = await queue.getJob(job.batchId);
      return j?.finishedOn ? j : undefined;
    }, 30_000);
    expect(await done.getState()).toBe('completed');
    const calls = await untagCalls();
    expect(calls.length).toBeGreaterThanOrEqual(3);
    expect(calls.filter((c) => c.code === 'OK')).toHaveLength(1);
    // Every attempt, failed or not, sent the same call.
    expect(new Set(calls.map((c) => JSON.stringify(sent(c)))).size).toBe(1);
    expect(sent(calls[0]!)).toEqual({ all: true, ids: [A, B].sort(), keys: [], token: job.batchId });
    // Everything the resources carried when the call landed is gone: the requester asked for all.
    const state = await admin.getState();
    expect(state.resources.map((r) => [r.id, r.tags])).toEqual([[A, {}], [B, {}]]);
  }, 90_000);
});
