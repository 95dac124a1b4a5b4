// tagwarden on a real Redis Cluster (3 masters, 3 replicas) and a real Sentinel setup, started by the test:
// the pipeline ends exact, every script keeps to one slot (the cluster refuses CROSSSLOT), keys are laid out by
// hash tag, and /readyz and /metrics name the topology and the master in trouble during a failover.
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkState, createEmulatorAdmin, expectedRemovals, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { checkRedis, createProducer, createRedis, untagQueueName, type RedisClient } from '../../src/queue/index.js';
import { createRateLimiter } from '../../src/ratelimit/index.js';
import { runOnce, startDaemon, type Daemon } from '../../src/runtime/index.js';
import { EMULATOR_KEYS, UNLIMITED_QUOTAS, eventually, testConfig, tokensReusedWithOtherParams, uniquePrefix } from '../support/harness.js';
import { keySlot } from '../support/key-slot.js';
import { startTestCluster, startTestSentinel, type TestTopology } from '../support/redis-topology.js';
import { Cluster } from 'ioredis';

const REGIONS = ['cn-hangzhou', 'cn-shanghai', 'cn-beijing'];
/**
 * Job locks long enough for a loaded 2-core machine running six redis-servers beside the test (the harness's 3 s
 * lock expired there mid-scan); a failover still ends well within them.
 */
const LOCKS = { lockDurationMs: 15_000, stalledIntervalMs: 10_000 };

/** Every key under `prefix:` on every master, with its slot as the server computes it. */
async function keysBySlot(redis: RedisClient, prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) out.set(key, Number(await node.call('CLUSTER', 'KEYSLOT', key)));
    } while (cursor !== '0');
  }
  return out;
}

/** run --once on the topology: removes exactly what the policies select, with one parameter set per ClientToken. */
async function runExact(topology: TestTopology, emulator: RunningEmulator, prefix: string) {
  const admin = createEmulatorAdmin(emulator.url);
  const config = testConfig({
    emulatorUrl: emulator.url, prefix, regions: REGIONS,
    overrides: { redisUrl: topology.url, quotas: UNLIMITED_QUOTAS, concurrency: 8, ...LOCKS },
  });
  const { logger, lines } = createMemoryLogger({ level: 'warn', secrets: [topology.password] });
  const now = new Date();
  const before = (await admin.getState()).resources;
  const result = await runOnce(config, { policiesPaths: [config.policiesDir], credentials: EMULATOR_KEYS, logger, now: () => now });
  expect(result.failed, lines.join('\n')).toBe(false);
  const after = (await admin.getState()).resources;
  const check = checkState(before, after, expectedRemovals(before, result.policies, now));
  expect(check.notRemoved).toEqual([]);
  expect(check.wronglyRemoved).toEqual([]);
  expect(check.removed).toBeGreaterThan(100);
  const { calls } = await admin.getCalls({ action: 'UnTagResources' });
  expect(tokensReusedWithOtherParams(calls)).toEqual([]);
  expect(lines.join('\n')).not.toMatch(/CROSSSLOT/);
  for (const line of lines) expect(line).not.toContain(topology.password);
  return { result, lines };
}

describe('on a Redis Cluster of 3 masters with replicas', () => {
  let topology: TestTopology;
  let emulator: RunningEmulator;
  let redis: RedisClient;
  beforeAll(async () => {
    topology = await startTestCluster();
    emulator = await startEmulator({ generate: { count: 3_000, seed: 17, regions: REGIONS }, quotas: UNLIMITED_QUOTAS });
    redis = createRedis(topology.url, { connectionName: 'tagwarden-test' });
    redis.on('error', () => undefined);
  }, 120_000);
  afterAll(async () => {
    redis?.disconnect();
    await emulator?.close();
    await topology?.close();
  });

  it('refuses a script across two slots (the oracle of the next test is live)', async () => {
    await expect(redis.eval("return redis.call('GET', KEYS[1])", 2, 'a{x}', 'b{y}')).rejects.toThrow(/CROSSSLOT|MOVED|slot/i);
  });

  it('runs the pipeline exactly; every queue, run and account keeps its keys in one slot; accounts spread over masters', async () => {
    const prefix = uniquePrefix('cluster');
    await runExact(topology, emulator, prefix);

    // Producer (idempotency key, Lua-free) and the limiter of several accounts, on the same cluster.
    const accounts = Array.from({ length: 9 }, (_, i) => `acct-${i}`);
    for (const account of accounts) {
      const producer = createProducer({ connection: redis, prefix, account });
      await producer.untag({ region: 'cn-hangzhou', resourceIds: ['pcc-x'], tagKeys: ['k'], reason: 'topology test', idempotencyKey: `idem-${account}` });
      await producer.close();
      const limiter = createRateLimiter(redis, { prefix, account, quotas: UNLIMITED_QUOTAS, windowMs: 1_000 });
      await limiter.acquire('cn-hangzhou', 'UnTagResources');
      await limiter.penalize('cn-hangzhou', 'UnTagResources', 10);
    }

    const slots = await keysBySlot(redis, prefix);
    expect(slots.size).toBeGreaterThan(20);
    const groups = new Map<string, Set<number>>();
    for (const [key, slot] of slots) {
      const rest = key.slice(prefix.length + 1);
      // BullMQ: prefix:queue:..., ledger: prefix:run:{id}:..., limiter: prefix:ratelimit:{account}:...
      const group = /^(run:\{[^}]*\}|ratelimit:\{[^}]*\}|idempotency:|policy-status$|[^:]+)/.exec(rest)?.[1] ?? rest;
      let set = groups.get(group);
      if (!set) groups.set(group, (set = new Set()));
      set.add(slot);
    }
    for (const [group, set] of groups) if (!group.startsWith('idempotency')) expect(set.size, group).toBe(1);
    expect([...groups.keys()].filter((g) => g.startsWith('run:{')).length).toBeGreaterThan(0);
    // An account's queues and its limiter share one slot.
    for (const account of accounts) {
      expect(groups.get(untagQueueName(account, 'cn-hangzhou')), account).toEqual(groups.get(`ratelimit:{${account}}`));
      expect(keySlot(`${prefix}:${untagQueueName(account, 'cn-hangzhou')}:wait`)).toBe([...groups.get(`ratelimit:{${account}}`)!][0]);
    }
    // The accounts' keys live on more than one master.
    const owners = new Set<string>();
    for (const account of accounts) {
      const slot = [...groups.get(`ratelimit:{${account}}`)!][0]!;
      const shards = (await redis.call('CLUSTER', 'SHARDS')) as unknown[];
      for (const shard of shards) {
        const fields = shard as unknown[];
        const ranges = fields[fields.indexOf('slots') + 1] as number[];
        for (let i = 0; i < ranges.length; i += 2) if (slot >= ranges[i]! && slot <= ranges[i + 1]!) owners.add(JSON.stringify(fields[fields.indexOf('nodes') + 1]).slice(0, 80));
      }
    }
    expect(owners.size).toBeGreaterThan(1);
  }, 180_000);

  it('/readyz and /metrics name the master in trouble while it fails over, then the daemon carries on without a restart', async () => {
    const prefix = uniquePrefix('cluster-ready');
    const config = testConfig({ emulatorUrl: emulator.url, prefix, regions: REGIONS, overrides: { redisUrl: topology.url, quotas: UNLIMITED_QUOTAS, ...LOCKS } });
    const { logger, lines } = createMemoryLogger({ level: 'warn', secrets: [topology.password] });
    let daemon: Daemon | undefined;
    let killing: ReturnType<TestTopology['killMaster']> | undefined;
    try {
      daemon = await startDaemon(config, { logger, credentials: EMULATOR_KEYS });
      const base = `http://127.0.0.1:${daemon.httpPort}`;
      const ready = await eventually(async () => {
        const body = (await (await fetch(`${base}/readyz`)).json()) as { status: string; checks: { redis: { ok: boolean; detail: string } } };
        return body.status === 'ready' ? body : undefined;
      }, 60_000, 250);
      expect(ready.checks.redis.detail).toBe('cluster: 3 masters answer');
      // The master of the account's queues and limiter: the daemon's own work sits on the node that dies.
      const victimAddress = (redis as Cluster).slots[keySlot(untagQueueName(config.accountId, 'cn-shanghai'))]![0]!;
      expect((await topology.masters()).map((m) => m.address)).toContain(victimAddress);
      const before = await (await fetch(`${base}/metrics`)).text();
      expect(before).toContain(`tagwarden_redis_node_up{topology="cluster",node="${victimAddress}",role="master"} 1`);

      killing = topology.killMaster((masters) => masters.find((m) => m.address === victimAddress)!);
      // While the master is down, a probe names it (it is not ready) and its gauge is 0.
      const trouble = await eventually(async () => {
        const res = await fetch(`${base}/readyz`);
        const body = (await res.json()) as { checks: { redis: { ok: boolean; detail: string } } };
        return res.status === 503 && body.checks.redis.detail.includes(victimAddress) ? body.checks.redis.detail : undefined;
      }, 30_000, 100);
      expect(trouble).toMatch(new RegExp(`^cluster: master ${victimAddress.replace(/\./g, '\\.')} not reachable`));
      const { promoted } = await killing;

      // After the failover: ready again, the promoted replica is a master, the dead node is gone from the gauge.
      await eventually(async () => ((await fetch(`${base}/readyz`)).status === 200 ? true : undefined), 60_000, 250);
      const after = await eventually(async () => {
        const text = await (await fetch(`${base}/metrics`)).text();
        return text.includes(`node="${promoted.address}"`) && !text.includes(`node="${victimAddress}"`) ? text : undefined;
      }, 30_000, 250);
      expect(after).toContain(`tagwarden_redis_node_up{topology="cluster",node="${promoted.address}",role="master"} 1`);

      // Work submitted after the failover is done by the same daemon.
      const producer = createProducer({ connection: redis, prefix, account: config.accountId });
      const admin = createEmulatorAdmin(emulator.url);
      const resource = (await admin.getState()).resources.find((r) => r.region === 'cn-shanghai' && Object.keys(r.tags).length > 0)!;
      const key = Object.keys(resource.tags)[0]!;
      const { jobIds } = await producer.untag({ region: 'cn-shanghai', resourceIds: [resource.id], tagKeys: [key], reason: 'after failover' });
      const queue = new Queue(untagQueueName(config.accountId, 'cn-shanghai'), { connection: redis, prefix });
      await eventually(async () => ((await queue.getJobState(jobIds[0]!)) === 'completed' ? true : undefined), 120_000, 250).catch(async (err: unknown) => {
        throw new Error(`job ${await queue.getJobState(jobIds[0]!)}; daemon log:\n${lines.slice(-30).join('\n')}`, { cause: err });
      });
      process.stdout.write(`cluster failover: ${lines.filter((l) => l.includes('replacing it')).length} stuck workers replaced\n`);
      const tags = (await admin.getState()).resources.find((r) => r.id === resource.id)!.tags;
      expect(tags).not.toHaveProperty(key);
      await queue.close();
      await producer.close();
    } finally {
      await daemon?.close({ force: true });
      // The dead master comes back as a replica of the promoted one.
      if (killing) await (await killing).killed.start();
    }
  }, 240_000);
});

describe('on a Sentinel-monitored master with a replica', () => {
  let topology: TestTopology;
  let emulator: RunningEmulator;
  beforeAll(async () => {
    topology = await startTestSentinel();
    emulator = await startEmulator({ generate: { count: 3_000, seed: 18, regions: REGIONS }, quotas: UNLIMITED_QUOTAS });
  }, 120_000);
  afterAll(async () => {
    await emulator?.close();
    await topology?.close();
  });

  it('runs the pipeline exactly', async () => {
    await runExact(topology, emulator, uniquePrefix('sentinel'));
  }, 180_000);

  it('follows a failover without a restart, and /readyz names the master in use', async () => {
    const prefix = uniquePrefix('sentinel-ready');
    const config = testConfig({ emulatorUrl: emulator.url, prefix, regions: REGIONS, overrides: { redisUrl: topology.url, quotas: UNLIMITED_QUOTAS, ...LOCKS } });
    const { logger } = createMemoryLogger({ level: 'error', secrets: [topology.password] });
    const redis = createRedis(topology.url, { connectionName: 'tagwarden-test' });
    redis.on('error', () => undefined);
    let daemon: Daemon | undefined;
    try {
      daemon = await startDaemon(config, { logger, credentials: EMULATOR_KEYS });
      const base = `http://127.0.0.1:${daemon.httpPort}`;
      const master = (await topology.masters())[0]!;
      const ready = await eventually(async () => {
        const body = (await (await fetch(`${base}/readyz`)).json()) as { status: string; checks: { redis: { detail: string } } };
        return body.status === 'ready' ? body : undefined;
      }, 60_000, 250);
      expect(ready.checks.redis.detail).toBe(`sentinel twmaster: master ${master.address} answers`);

      const { promoted } = await topology.killMaster();
      await eventually(async () => {
        const res = await fetch(`${base}/readyz`);
        const body = (await res.json()) as { checks: { redis: { detail: string } } };
        return res.status === 200 && body.checks.redis.detail === `sentinel twmaster: master ${promoted.address} answers` ? true : undefined;
      }, 60_000, 250);
      // The test's own connection follows the failover too.
      await eventually(async () => ((await checkRedis(redis)).ok ? true : undefined), 30_000, 250);

      const producer = createProducer({ connection: redis, prefix, account: config.accountId });
      const admin = createEmulatorAdmin(emulator.url);
      const resource = (await admin.getState()).resources.find((r) => r.region === 'cn-beijing' && Object.keys(r.tags).length > 0)!;
      const key = Object.keys(resource.tags)[0]!;
      const { jobIds } = await producer.untag({ region: 'cn-beijing', resourceIds: [resource.id], tagKeys: [key], reason: 'after failover' });
      const queue = new Queue(untagQueueName(config.accountId, 'cn-beijing'), { connection: redis, prefix });
      await eventually(async () => ((await queue.getJobState(jobIds[0]!)) === 'completed' ? true : undefined), 60_000, 250);
      expect((await admin.getState()).resources.find((r) => r.id === resource.id)!.tags).not.toHaveProperty(key);
      await queue.close();
      await producer.close();
    } finally {
      await daemon?.close({ force: true });
      redis.disconnect();
    }
  }, 180_000);
});
