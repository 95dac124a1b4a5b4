// A batch naming a connection that is being deleted, deleted, or lives in another region finishes the rest of
// the batch and records that one as not found: it neither retries eight times nor fails. Every plausible
// answer of the service for Deleting/Deleted connections (unconfirmed, see src/emulator/API-FACTS.md) is tried.
import { afterEach, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type DeletedBehaviour, type EmulatorResource, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { createProducer } from '../../src/queue/index.js';
import { createCore } from '../../src/runtime/index.js';
import type { UntagResult } from '../../src/worker/untag.js';
import { EMULATOR_KEYS, UNLIMITED_QUOTAS, cleanupPrefix, eventually, testConfig, uniquePrefix } from '../support/harness.js';

const REGION = 'cn-hangzhou';
const FIXTURE: EmulatorResource[] = [
  { id: 'pcc-leaveactive000000001', region: REGION, status: 'Activated', tags: { tmp: '1', keep: 'k' } },
  { id: 'pcc-leavedeleted00000002', region: REGION, status: 'Deleted', tags: { tmp: '2' } },
  { id: 'pcc-leavedeleting0000003', region: REGION, status: 'Deleting', tags: { tmp: '3' } },
  // Same ID pattern, other region: Get (central) finds it, UnTagResources in cn-hangzhou does not.
  { id: 'pcc-leaveshanghai0000004', region: 'cn-shanghai', status: 'Activated', tags: { tmp: '4' } },
];
const IDS = FIXTURE.map((r) => r.id);
const ACTIVE = IDS[0]!;

const BEHAVIOURS: Array<[string, DeletedBehaviour, string[]]> = [
  // name, behaviour, the IDs whose tmp tag the batch can remove
  ['Get finds them, the tag APIs do not know them', { get: 'found', list: 'listed', tags: 'not-found' }, [ACTIVE]],
  ['Get finds them, the tag APIs answer IncorrectStatus.VpcPeer', { get: 'found', list: 'listed', tags: 'incorrect-status' }, [ACTIVE]],
  ['gone everywhere', { get: 'not-found', list: 'hidden', tags: 'not-found' }, [ACTIVE]],
  // The other-region ID sends the batch to Get, which shows the two as Deleting/Deleted: they are finished as not
  // found (their tags go with them) rather than spending calls on them.
  ['still taggable', { get: 'found', list: 'listed', tags: 'ok' }, [ACTIVE]],
];

describe('untag batches holding connections on their way out', () => {
  let emulator: RunningEmulator | undefined;
  const prefixes: string[] = [];
  afterEach(async () => {
    await emulator?.close();
    emulator = undefined;
    for (const p of prefixes.splice(0)) await cleanupPrefix(p);
  });

  it.each(BEHAVIOURS)('%s: the batch completes in one attempt; the others are not found', async (_name, deleted, removable) => {
    emulator = await startEmulator({ fixture: { resources: FIXTURE }, behaviour: { deleted }, quotas: UNLIMITED_QUOTAS });
    const admin = createEmulatorAdmin(emulator.url);
    const prefix = uniquePrefix('leaving');
    prefixes.push(prefix);
    const config = testConfig({
      emulatorUrl: emulator.url, prefix, regions: [REGION, 'cn-shanghai'],
      overrides: { quotas: UNLIMITED_QUOTAS, retryAttempts: 8, retryBaseMs: 1, retryMaxMs: 5 },
    });
    const core = createCore(config, { credentials: EMULATOR_KEYS, logger: createMemoryLogger({ level: 'error', secrets: [] }).logger });
    const producer = createProducer({ connection: core.redis, prefix, account: config.accountId });
    const workers = core.createWorkers();
    try {
      const { jobIds } = await producer.untag({ region: REGION, resourceIds: IDS, tagKeys: ['tmp'], reason: 'leaving connections', idempotencyKey: `leaving-${Date.now()}` });
      expect(jobIds).toHaveLength(1);
      workers.start();
      const queue = core.queueFor(REGION);
      const job = await eventually(async () => {
        const j = await queue.getJob(jobIds[0]!);
        return j !== undefined && (await j.isCompleted() || await j.isFailed()) ? j : undefined;
      }, 60_000);
      expect(job.failedReason).toBeUndefined();
      expect(await job.isCompleted()).toBe(true);
      // Read again: the completion is stored before the attempt count the first read may have missed.
      const done = await eventually(async () => {
        const j = await queue.getJob(jobIds[0]!);
        return j !== undefined && j.attemptsMade > 0 ? j : undefined;
      });
      expect(done.attemptsMade).toBe(1);
      expect(done.stacktrace).toEqual([]);
      const result = done.returnvalue as UntagResult;
      expect(result.outcome).toBe('succeeded');
      for (const id of IDS) expect([id, result.resources[id]?.outcome]).toEqual([id, removable.includes(id) ? 'removed' : 'not_found']);

      // The oracle is the emulator: exactly the removable tags are gone, nothing else changed.
      const state = new Map((await admin.getState()).resources.map((r) => [r.id, r.tags]));
      for (const r of FIXTURE) {
        const expected = { ...r.tags };
        if (removable.includes(r.id)) delete expected['tmp'];
        expect([r.id, state.get(r.id)]).toEqual([r.id, expected]);
      }
      const untagCalls = (await admin.getCalls({ action: 'UnTagResources' })).calls;
      expect(untagCalls.length).toBeLessThanOrEqual(2);
      expect(untagCalls.filter((c) => c.code === 'OK')).toHaveLength(1);
    } finally {
      await workers.close();
      await producer.close();
      await core.close();
    }
  }, 90_000);
});
