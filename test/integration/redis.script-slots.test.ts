// Every Lua script of ours keeps its keys in one Redis Cluster slot. Static: the scripts defined in src/ (every
// `cachedScript(` there) are counted and their SHA-1s computed from the source; dynamic: each of them is run on a
// private redis-server under MONITOR, with hostile names (braces in run IDs, accounts, policies), and every
// EVAL/EVALSHA it sent is checked: its keys share one hash source (what CLUSTER KEYSLOT hashes). The pipeline on
// a real cluster (redis.topologies.test.ts, topologies.chaos.test.ts) covers BullMQ's scripts with CROSSSLOT.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventStore } from '../../src/events/index.js';
import { CrossSlotKeysError, cachedScript, createLedger, createRedis, createScanLease, hashSource, type RedisClient } from '../../src/queue/index.js';
import { createRateLimiter } from '../../src/ratelimit/index.js';
import { REPO_ROOT, UNLIMITED_QUOTAS } from '../support/harness.js';
import { keySlot } from '../support/key-slot.js';
import { startTestStandalone } from '../support/redis-topology.js';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** `const x = cachedScript(...)` sites in src/ (the helper's own definition excluded). */
function scriptSites(): string[] {
  const sites: string[] = [];
  for (const file of sourceFiles(join(REPO_ROOT, 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/cachedScript\((\w+)\)/g)) sites.push(`${file.slice(REPO_ROOT.length + 1)}:${m[1]}`);
  }
  return sites;
}

interface Sent {
  sha: string;
  keys: string[];
}

describe('Lua scripts keep to one hash slot', () => {
  let server: Awaited<ReturnType<typeof startTestStandalone>>;
  let redis: RedisClient;
  let monitor: Redis;
  const sent: Sent[] = [];

  beforeAll(async () => {
    server = await startTestStandalone();
    redis = createRedis(server.url, { connectionName: 'tagwarden-test-slots' });
    monitor = await new Redis(server.url).monitor();
    monitor.on('monitor', (_time: string, args: string[]) => {
      const command = (args[0] ?? '').toLowerCase();
      if (command !== 'evalsha' && command !== 'eval') return;
      const n = Number(args[2]);
      sent.push({ sha: command === 'eval' ? 'eval' : args[1]!, keys: args.slice(3, 3 + n) });
    });
  }, 60_000);
  afterAll(async () => {
    monitor?.disconnect();
    redis?.disconnect();
    await server?.close();
  });

  it('runs each script of src/ with hostile names, and each call names keys of one slot', async () => {
    const sites = scriptSites();
    // The ledger's 5, the lease's 2, the limiter's 1, the event store's 2 (a new script is counted here too).
    expect(sites.length, sites.join('\n')).toBeGreaterThanOrEqual(10);

    const prefix = 'tw-slots';
    const runs = ['sched-p-cn-hangzhou-1700000000000', 'api-{evil}', 'r}{', '{'.repeat(50)];
    const policies = ['temps', 'p{x}', '}{'];
    const ledger = createLedger(redis, prefix);
    for (const runId of runs) {
      for (const policy of policies) {
        await ledger.recordScan(runId, policy, 'cn-hangzhou', { scanned: 3, violating: 1, tagsPlanned: 1, batchIds: [`b-${policy}`], queueKey: 'q' });
        await ledger.recordScanWithoutBatches(runId, policy, 'cn-shanghai', 'skipped');
        await ledger.recordBatchEnd(runId, policy, `b-${policy}`, { outcome: 'succeeded', removed: 1, calls: 1, notFound: 0 });
        await ledger.openScanLog(policy, 'cn-hangzhou', { runId });
        await ledger.appendScanLog(policy, 'cn-hangzhou', runId, 0, { page: 0 });
      }
    }
    const lease = createScanLease(redis, prefix);
    for (const policy of policies) {
      await lease.acquire(policy, 'cn-hangzhou', { runId: 'r{1}', jobId: 'j' }, 5_000);
      await lease.renew(policy, 'cn-hangzhou', 'r{1}', 5_000);
      await lease.release(policy, 'cn-hangzhou', 'r{1}');
    }
    for (const account of ['default', 'a{b}', '123456789012']) {
      const limiter = createRateLimiter(redis, { prefix, account, quotas: UNLIMITED_QUOTAS, windowMs: 1_000 });
      await limiter.tryAcquire('cn-hangzhou', 'UnTagResources');
      await limiter.penalize('cn-hangzhou', 'UnTagResources', 5);
    }
    const events = createEventStore(redis, prefix);
    const { generations } = await events.accept(
      [
        { source: 'acs.actiontrail', id: 'e-1', scope: { account: 'a', region: 'cn-hangzhou' }, resourceIds: ['pcc-1'], timeMs: 1 },
        { source: 'acs.actiontrail', id: 'e-2', scope: { account: 'b{x}', region: 'cn-beijing' }, resourceIds: ['pcc-2'], timeMs: 2 },
      ],
      60,
    );
    for (const { scope, gen } of generations.values()) {
      await events.take(scope, gen);
      await events.finish(scope, gen, new Map([['pcc-1', [{ batchId: 'b', keys: ['k'] }]]]));
    }

    await expect.poll(() => new Set(sent.map((s) => s.sha)).size, { timeout: 10_000 }).toBeGreaterThanOrEqual(sites.length);
    // Every script of src/ was sent (by SHA or in full the first time), and no call spans two slots.
    const crossing = sent.filter((s) => new Set(s.keys.map(keySlot)).size > 1);
    expect(crossing.slice(0, 5)).toEqual([]);
    expect(sent.filter((s) => s.keys.length === 0)).toEqual([]);
    expect(new Set(sent.filter((s) => s.sha !== 'eval').map((s) => s.sha)).size).toBe(sites.length);
  }, 60_000);

  it('refuses, before sending, a script whose keys carry two hash tags (on a single server too)', async () => {
    const script = cachedScript("return redis.call('EXISTS', KEYS[1], KEYS[2])");
    const before = sent.length;
    await expect(script(redis, ['tw:{a}:x', 'tw:{b}:y'], [])).rejects.toBeInstanceOf(CrossSlotKeysError);
    await expect(script(redis, ['tw:plain:x', 'tw:plain:y'], [])).rejects.toThrow(/2 hash slots/);
    expect(await script(redis, ['tw:{a}:x', 'tw:{a}:y'], [])).toBe(0);
    // Redis's own rule: the first non-empty {...}; an empty one means the whole key.
    expect(hashSource('foo{}{bar}')).toBe('foo{}{bar}');
    expect(hashSource('foo{{bar}}zap')).toBe('{bar');
    expect(hashSource('tw.acct-{123}:untag-{default}-cn-hangzhou:wait')).toBe('123');
    await expect.poll(() => sent.length - before, { timeout: 5_000 }).toBeGreaterThanOrEqual(1);
    expect(sent.slice(before).every((s) => s.keys.every((k) => k.startsWith('tw:{a}')))).toBe(true);
  });
});
