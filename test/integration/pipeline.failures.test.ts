// The failure table end to end: 5xx, resets, apply-then-drop, HTML 502, throttling, resources deleted mid-run.
import { afterEach, describe, expect, it } from 'vitest';
import { checkState, createEmulatorAdmin, startEmulator, type RunningEmulator, expectedRemovals } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { createCore, runOnce } from '../../src/runtime/index.js';
import { createProducer } from '../../src/queue/index.js';
import {
  EMULATOR_KEYS,
  cleanupPrefix,
  eventually,
  financeKeysPolicy,
  temporaryTagsPolicy,
  startStagedRun,
  testConfig,
  UNLIMITED_QUOTAS,
  tokensReusedWithOtherParams,
  uniquePrefix,
  writePolicies,
} from '../support/harness.js';

const REGIONS = ['cn-hangzhou', 'cn-shanghai'];
const HUGE = UNLIMITED_QUOTAS;
const TEMP = temporaryTagsPolicy(REGIONS);
const FINANCE = financeKeysPolicy(REGIONS);

describe('pipeline failures', () => {
  let emulator: RunningEmulator | undefined;
  const prefixes: string[] = [];
  afterEach(async () => {
    await emulator?.close();
    for (const p of prefixes.splice(0)) await cleanupPrefix(p);
  });

  async function setup(count: number, quotas: Record<string, number> = HUGE) {
    emulator = await startEmulator({ generate: { count, seed: 11, regions: REGIONS }, quotas });
    const prefix = uniquePrefix('fail');
    prefixes.push(prefix);
    return { admin: createEmulatorAdmin(emulator.url), prefix, url: emulator.url };
  }

  it('retries 5xx, resets, HTML 502 and apply-then-drop with the same token, removing each tag once', async () => {
    const { admin, prefix, url } = await setup(1_500);
    await admin.setFaults({
      serviceUnavailable: 0.15,
      internalError: 0.05,
      reset: 0.1,
      applyThenDrop: 0.1,
      html502: 0.05,
      actions: ['UnTagResources'],
      seed: 5,
    });
    const dir = writePolicies([TEMP, FINANCE]);
    const config = testConfig({ emulatorUrl: url, prefix, regions: REGIONS, policiesDir: dir, overrides: { quotas: HUGE, retryAttempts: 40, retryBaseMs: 1, retryMaxMs: 20 } });
    const { logger } = createMemoryLogger({ level: 'warn', secrets: [] });
    const now = new Date();
    const before = (await admin.getState()).resources;
    const result = await runOnce(config, { policiesPaths: [dir], credentials: EMULATOR_KEYS, logger, now: () => now });
    expect(result.failed).toBe(false);
    const after = (await admin.getState()).resources;
    const check = checkState(before, after, expectedRemovals(before, result.policies, now));
    expect(check.notRemoved).toEqual([]);
    expect(check.wronglyRemoved).toEqual([]);
    const stats = await admin.getStats();
    expect(stats.faults.applyThenDrop ?? 0).toBeGreaterThan(0);
    expect(stats.faults.reset ?? 0).toBeGreaterThan(0);
    expect(stats.byAction.UnTagResources?.replayed ?? 0).toBeGreaterThan(0);
    // Each tag was removed by exactly one applied call: the retries after apply-then-drop changed nothing.
    expect(stats.byAction.UnTagResources?.tagsRemoved).toBe(check.removed);
    expect(result.summary.reduce((n, s) => n + s.removed, 0)).toBe(check.removed);
    const { calls } = await admin.getCalls({ action: 'UnTagResources' });
    expect(tokensReusedWithOtherParams(calls)).toEqual([]);
  }, 120_000);

  it('resumes a scan from the failed page instead of starting it over', async () => {
    const { admin, prefix, url } = await setup(2_000);
    await admin.setFaults({ serviceUnavailable: 0.2, reset: 0.05, actions: ['ListVpcPeerConnections', 'ListTagResources'], seed: 3 });
    const dir = writePolicies([TEMP, FINANCE]);
    const config = testConfig({ emulatorUrl: url, prefix, regions: REGIONS, policiesDir: dir, overrides: { quotas: HUGE, retryAttempts: 20, retryBaseMs: 1, retryMaxMs: 10 } });
    const now = new Date();
    const before = (await admin.getState()).resources;
    const result = await runOnce(config, { policiesPaths: [dir], credentials: EMULATOR_KEYS, logger: createMemoryLogger({ level: 'warn', secrets: [] }).logger, now: () => now });
    expect(result.failed).toBe(false);
    expect(result.summary.every((s) => s.scansFailed === 0 && s.scans === REGIONS.length)).toBe(true);
    const check = checkState(before, (await admin.getState()).resources, expectedRemovals(before, result.policies, now));
    expect(check.ok).toBe(true);
    const stats = await admin.getStats();
    expect(stats.byAction.ListVpcPeerConnections?.codes.ServiceUnavailable ?? 0).toBeGreaterThan(0);
    // Every page was read successfully exactly once: nothing restarted from the first page.
    const { calls } = await admin.getCalls({ action: 'ListVpcPeerConnections' });
    const pages = calls.filter((c) => c.code === 'OK').map((c) => `${c.region} ${String(c.params.NextToken ?? '')}`);
    expect(new Set(pages).size).toBe(pages.length);
    for (const region of REGIONS) {
      expect(pages.filter((p) => p.startsWith(`${region} `))).toHaveLength(Math.ceil(before.filter((r) => r.region === region).length / 100));
    }
  }, 120_000);

  it('waits out throttling without spending attempts', async () => {
    // The emulator allows 3 calls per second per region; tagwarden is told the quota is far higher, so it
    // is throttled, and with one attempt per batch any attempt spent on throttling would fail the batch.
    const { admin, prefix, url } = await setup(600, { ...HUGE, UnTagResources: 3 });
    await admin.setQuotas({ windowMs: 1_000 });
    const dir = writePolicies([TEMP]);
    const config = testConfig({
      emulatorUrl: url,
      prefix,
      regions: REGIONS,
      policiesDir: dir,
      overrides: { quotas: { ...HUGE, UnTagResources: 200 }, quotaWindowMs: 1_000, retryAttempts: 1 },
    });
    const { logger } = createMemoryLogger({ level: 'warn', secrets: [] });
    const now = new Date();
    const before = (await admin.getState()).resources;
    const result = await runOnce(config, { policiesPaths: [dir], credentials: EMULATOR_KEYS, logger, now: () => now });
    expect(result.failed).toBe(false);
    const stats = await admin.getStats();
    expect(stats.byAction.UnTagResources?.codes['Throttling.User'] ?? 0).toBeGreaterThan(0);
    const check = checkState(before, (await admin.getState()).resources, expectedRemovals(before, result.policies, now));
    expect(check.ok).toBe(true);
    expect(check.removed).toBeGreaterThan(50);
  }, 120_000);

  it('finishes a batch for the resources that still exist when some were deleted after the scan', async () => {
    const { admin, prefix, url } = await setup(1_000);
    const dir = writePolicies([FINANCE]);
    const logger = createMemoryLogger({ level: 'warn', secrets: [] }).logger;
    // Scan with workers for an unrelated region only, so the batches wait in their queues.
    const scan = await startStagedRun({ emulatorUrl: url, prefix, regions: ['eu-west-1'], policiesDir: dir, logger });
    const runId = 'notfound-run';
    await scan.scanNow(runId);
    const planned = await eventually(async () => {
      const summary = await scan.core.ledger.summary(runId);
      return summary[0]?.scans === REGIONS.length ? summary[0] : undefined;
    });
    await scan.close();
    expect(planned.batches).toBeGreaterThan(5);

    // Delete every third resource that carries a targeted key, then let the untag workers run.
    const before = (await admin.getState()).resources;
    const targeted = before.filter((r) => 'FinanceDept' in r.tags || 'legacy-billing-code' in r.tags);
    const deleted = targeted.filter((_, i) => i % 3 === 0).map((r) => r.id);
    await admin.deleteResources(deleted);
    const untag = await startStagedRun({ emulatorUrl: url, prefix, regions: REGIONS, policiesDir: dir, logger });
    try {
      await eventually(async () => ((await untag.core.ledger.pending(runId)) === 0 ? true : undefined), 60_000);
      const [summary] = await untag.core.ledger.summary(runId);
      expect(summary?.failed).toBe(0);
      expect(summary?.notFound).toBe(deleted.length);
      const survivors = before.filter((r) => !deleted.includes(r.id));
      const check = checkState(survivors, (await admin.getState()).resources, expectedRemovals(survivors, [scan.policy], new Date()));
      expect(check.ok).toBe(true);
      expect(summary?.removed).toBe(check.removed);
      const stats = await admin.getStats();
      expect(stats.byAction.UnTagResources?.codes['InvalidInstanceIds.NotFound'] ?? 0).toBeGreaterThan(0);
    } finally {
      await untag.close();
    }
  }, 120_000);

  it('stops taking batches while the credentials are refused, and resumes once they work again', async () => {
    // The emulator knows only other keys at first: every call is refused as an unknown AccessKeyId.
    emulator = await startEmulator({ generate: { count: 200, seed: 4, regions: ['cn-hangzhou'] }, credentials: [{ accessKeyId: 'other', accessKeySecret: 'other-secret' }] });
    const port = Number(new URL(emulator.url).port);
    const prefix = uniquePrefix('auth');
    prefixes.push(prefix);
    const core = createCore(testConfig({ emulatorUrl: emulator.url, prefix, regions: ['cn-hangzhou'], overrides: { quotas: HUGE, concurrency: 2 } }), {
      credentials: EMULATOR_KEYS,
      logger: createMemoryLogger({ level: 'warn', secrets: [] }).logger,
      authProbeMs: 300,
    });
    const producer = createProducer({ connection: core.redis, prefix, account: core.config.accountId });
    const workers = core.createWorkers();
    const queue = core.queueFor('cn-hangzhou');
    try {
      const before = (await createEmulatorAdmin(emulator.url).getState()).resources;
      const owners = before.filter((r) => 'owner' in r.tags).slice(0, 100).map((r) => r.id);
      for (let i = 0; i < owners.length; i += 20) {
        await producer.untag({ region: 'cn-hangzhou', resourceIds: owners.slice(i, i + 20), tagKeys: ['owner'], reason: 'auth test', idempotencyKey: `auth-${i}` });
      }
      workers.start();
      await eventually(async () => (core.auth.failing ? true : undefined));
      await eventually(async () => ((await queue.getActiveCount()) === 0 ? true : undefined));
      // Only the batches in flight when the key was refused failed; the rest wait.
      const failed = await queue.getFailedCount();
      expect(failed).toBeGreaterThan(0);
      expect(failed).toBeLessThanOrEqual(2);
      expect(await queue.getWaitingCount()).toBe(5 - failed);
      expect((await queue.getFailed())[0]?.failedReason).toMatch(/authentication failed with InvalidAccessKeyId.NotFound.*RAM policy/);
      expect(await core.registry.getSingleMetricAsString('tagwarden_auth_failing')).toMatch(/tagwarden_auth_failing 1/);

      // The keys become valid (same address, new emulator): the probe succeeds and the backlog drains.
      await emulator.close();
      emulator = await startEmulator({ port, fixture: { resources: before } });
      await eventually(async () => ((await queue.getCompletedCount()) === 5 - failed ? true : undefined), 30_000);
      expect(core.auth.failing).toBe(false);
    } finally {
      await workers.close();
      await producer.close();
      await core.close();
    }
  }, 60_000);

  it('reads tags exactly while other batches change the same resources', async () => {
    // 20 resources with 25 tags' worth of keys across batches; 10 batches, each removing one key from all 20,
    // run 8 at a time: every read happens while others remove keys from the same resources.
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`);
    const resources = Array.from({ length: 20 }, (_, i) => ({
      id: `pcc-shared${String(i).padStart(12, '0')}`,
      region: 'cn-hangzhou',
      tags: Object.fromEntries([...keys, 'x1', 'x2', 'x3', 'x4', 'x5', 'x6', 'x7', 'x8', 'x9', 'x10'].map((k) => [k, 'v'])),
    }));
    emulator = await startEmulator({ fixture: { resources }, quotas: HUGE });
    const admin = createEmulatorAdmin(emulator.url);
    const prefix = uniquePrefix('shared');
    prefixes.push(prefix);
    const core = createCore(testConfig({ emulatorUrl: emulator.url, prefix, regions: ['cn-hangzhou'], overrides: { quotas: HUGE, concurrency: 8 } }), {
      credentials: EMULATOR_KEYS,
      logger: createMemoryLogger({ level: 'warn', secrets: [] }).logger,
    });
    const producer = createProducer({ connection: core.redis, prefix, account: core.config.accountId });
    const ids = resources.map((r) => r.id);
    for (const key of keys) await producer.untag({ region: 'cn-hangzhou', resourceIds: ids, tagKeys: [key], reason: 'shared' });
    const workers = core.createWorkers();
    workers.start();
    const queue = core.queueFor('cn-hangzhou');
    try {
      await eventually(async () => ((await queue.getCompletedCount()) + (await queue.getFailedCount()) === keys.length ? true : undefined), 30_000);
      expect(await queue.getFailedCount()).toBe(0);
      const jobs = await queue.getCompleted();
      for (const job of jobs) expect((job.returnvalue as { removed: number }).removed).toBe(20);
      for (const r of (await admin.getState()).resources) expect(Object.keys(r.tags).sort()).toEqual(['x1', 'x10', 'x2', 'x3', 'x4', 'x5', 'x6', 'x7', 'x8', 'x9']);
    } finally {
      await workers.close();
      await producer.close();
      await core.close();
    }
  }, 60_000);

  it('reads current tags first for work from other systems, and reports deleted IDs as not found', async () => {
    const { admin, prefix, url } = await setup(200);
    const before = (await admin.getState()).resources.filter((r) => r.region === 'cn-hangzhou');
    const withOwner = before.filter((r) => 'owner' in r.tags).slice(0, 3);
    const without = before.filter((r) => !('owner' in r.tags)).slice(0, 1);
    const ids = [...withOwner, ...without].map((r) => r.id);
    const core = createCore(testConfig({ emulatorUrl: url, prefix, regions: ['cn-hangzhou'], overrides: { quotas: HUGE } }), {
      credentials: EMULATOR_KEYS,
      logger: createMemoryLogger({ level: 'warn', secrets: [] }).logger,
    });
    const producer = createProducer({ connection: core.redis, prefix, account: core.config.accountId });
    const workers = core.createWorkers();
    workers.start();
    try {
      const { jobIds } = await producer.untag({ region: 'cn-hangzhou', resourceIds: [...ids, 'pcc-deleted0000000000'], tagKeys: ['owner'], reason: 'test' });
      expect(jobIds).toHaveLength(1);
      // Read the job again once it is completed: a Job fetched while active carries no returnvalue.
      const queue = core.queueFor('cn-hangzhou');
      await eventually(async () => ((await queue.getJobState(jobIds[0]!)) === 'completed' ? true : undefined));
      const job = await queue.getJob(jobIds[0]!);
      const result = job!.returnvalue as { outcome: string; removed: number; resources: Record<string, { outcome: string }> };
      expect(result.outcome).toBe('succeeded');
      expect(result.removed).toBe(3);
      expect(result.resources['pcc-deleted0000000000']?.outcome).toBe('not_found');
      expect(result.resources[without[0]!.id]?.outcome).toBe('nothing_to_remove');
      for (const r of withOwner) expect(result.resources[r.id]?.outcome).toBe('removed');
      const after = await admin.getState({ ids });
      for (const r of after.resources) expect('owner' in r.tags).toBe(false);
      // One call, for the three resources that carried the key.
      const { calls } = await admin.getCalls({ action: 'UnTagResources' });
      expect(calls.filter((c) => c.code === 'OK')).toHaveLength(1);
    } finally {
      await workers.close();
      await producer.close();
      await core.close();
    }
  }, 60_000);
});
