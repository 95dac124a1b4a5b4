// Benchmark 6: Redis topologies. Untag batches per second through tagwarden daemons, one per account (3 accounts
// whose hash tags fall on 3 different masters), on one plain redis-server (the floor), on a Redis Cluster with 1
// master and on one with 3 masters, at the same total quota; and the Redis CPU (user + system of every master
// process) per batch. Measured, never asserted.
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createEmulatorAdmin } from '../../src/emulator/index.js';
import { untagQueueName } from '../../src/queue/index.js';
import { tagwardenEnv, writePolicies } from '../support/harness.js';
import { keySlot } from '../support/key-slot.js';
import { startTestCluster, startTestStandalone, type RedisNode } from '../support/redis-topology.js';
import { addJobs, loadBacklogEstate, scanJobs } from './lib/backlog.js';
import { HUGE_QUOTAS, quotaEnv, waitUntil, withRedis, type BenchOutcome, type Benchmark } from './lib/context.js';
import { spawnEmulator, spawnTracked, stopChild, type ChildEmulator } from './lib/processes.js';
import { heading, note, table } from './lib/report.js';

const REGION = 'cn-hangzhou';
/** UnTagResources calls per second shared by all accounts, the same on every topology (far above what 2 cores reach). */
const TOTAL_QUOTA_PER_SECOND = 30_000;

/** The master of a slot in redis-cli's even split of 3 masters (0-5460, 5461-10922, 10923-16383). */
const masterOfSlot = (slot: number): number => (slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2);

/** `count` account names whose hash tags fall on the 3 masters in turn (account k on master k mod 3). */
function spreadAccounts(count: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count && i < 100_000; i++) {
    const name = `bench-acct-${i}`;
    if (masterOfSlot(keySlot(`{${name}}`)) === out.length % 3) out.push(name);
  }
  return out;
}

/** Redis CPU (used_cpu_user + used_cpu_sys of INFO cpu) summed over the nodes, in seconds. */
async function redisCpuSeconds(nodes: readonly RedisNode[], password: string): Promise<number> {
  let total = 0;
  for (const node of nodes) {
    const redis = new Redis({ host: '127.0.0.1', port: node.port, password, lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      const info = await redis.info('cpu');
      total += Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? NaN) + Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? NaN);
    } finally {
      redis.disconnect();
    }
  }
  return total;
}

interface Pass {
  topology: string;
  masters: number;
  accounts: number;
  batches: number;
  seconds: number;
  batchesPerSecond: number;
  failed: number;
  redisCpuMsPerBatch: number | null;
}

async function pass(topology: string, url: string, password: string, masters: RedisNode[], emulator: ChildEmulator, accounts: string[], perAccount: number): Promise<Pass> {
  const admin = createEmulatorAdmin(emulator.url);
  const prefix = `bench-topology-${Date.now().toString(36)}`;
  const runId = `topology-${topology}-${Date.now()}`;
  await withRedis(url, async (redis) => {
    for (const [i, account] of accounts.entries()) {
      await loadBacklogEstate(admin, REGION, `t${i}`, perAccount);
      const queue = new Queue(untagQueueName(account, REGION), { connection: redis, prefix });
      await addJobs(queue, scanJobs(REGION, `t${i}`, perAccount, `${runId}-${i}`));
      await queue.close();
    }
  });
  const perAccountQuota = Math.floor(TOTAL_QUOTA_PER_SECOND / accounts.length);
  const daemons = accounts.map((account) =>
    spawnTracked(['run'], tagwardenEnv({
      emulatorUrl: emulator.url, prefix, regions: [REGION], redisUrl: url,
      extra: {
        ...quotaEnv({ ...HUGE_QUOTAS, UnTagResources: perAccountQuota }),
        TAGWARDEN_QUOTA_WINDOW_MS: '1000', TAGWARDEN_QUOTA_FRACTION: '1', TAGWARDEN_ACCOUNT_ID: account,
        TAGWARDEN_CONCURRENCY: '16', TAGWARDEN_POLICIES_DIR: writePolicies([]), TAGWARDEN_LOG_LEVEL: 'warn',
      },
    })),
  );
  const cpu0 = await redisCpuSeconds(masters, password);
  try {
    return await withRedis(url, async (redis) => {
      const queues = accounts.map((a) => new Queue(untagQueueName(a, REGION), { connection: redis, prefix }));
      try {
        const failed = await waitUntil(`${perAccount * accounts.length} batches to end`, async () => {
          let ended = 0;
          let failedNow = 0;
          for (const q of queues) {
            const c = await q.getJobCounts('completed', 'failed');
            ended += (c.completed ?? 0) + (c.failed ?? 0);
            failedNow += c.failed ?? 0;
          }
          return ended >= perAccount * accounts.length ? failedNow : undefined;
        }, 900_000, 250);
        const cpu1 = await redisCpuSeconds(masters, password);
        let first = Infinity;
        let last = 0;
        for (const q of queues) {
          const key = `${prefix}:${q.name}:completed`;
          const a = await redis.zrange(key, '0', '0', 'WITHSCORES');
          const b = await redis.zrange(key, '-1', '-1', 'WITHSCORES');
          first = Math.min(first, Number(a[1]));
          last = Math.max(last, Number(b[1]));
        }
        const batches = perAccount * accounts.length;
        const seconds = (last - first) / 1000;
        return {
          topology, masters: masters.length, accounts: accounts.length, batches, seconds, batchesPerSecond: (batches - 1) / seconds, failed,
          redisCpuMsPerBatch: Number.isFinite(cpu1 - cpu0) ? ((cpu1 - cpu0) * 1000) / batches : null,
        };
      } finally {
        await Promise.all(queues.map((q) => q.close()));
      }
    });
  } finally {
    await Promise.all(daemons.map((d) => stopChild(d.child, 15_000)));
  }
}

export const topologyBenchmark: Benchmark = {
  name: 'topology',
  title: '6. Redis topologies: batches/s on 1 and 3 Redis Cluster masters at the same total quota, Redis CPU per batch',
  async run(ctx): Promise<BenchOutcome> {
    const accounts = spreadAccounts(ctx.quick ? 3 : 6);
    const perAccount = ctx.quick ? 300 : 2_000;
    heading(`${this.title} (${accounts.length} accounts x ${perAccount.toLocaleString('en-US')} batches, total quota ${TOTAL_QUOTA_PER_SECOND.toLocaleString('en-US')} calls/s)`);
    const emulator = await spawnEmulator({ quotas: HUGE_QUOTAS, maxCallLog: 1_000 });
    const passes: Pass[] = [];
    try {
      note('one redis-server (floor) ...');
      const single = await startTestStandalone();
      try {
        passes.push(await pass('one server', single.url, single.password, [single.node], emulator, accounts, perAccount));
      } finally {
        await single.close();
      }
      for (const masters of [1, 3]) {
        note(`Redis Cluster, ${masters} master(s) ...`);
        const cluster = await startTestCluster({ masters, replicas: 0 });
        try {
          passes.push(await pass(`cluster ${masters}`, cluster.url, cluster.password, cluster.nodes.filter((n) => n.running) as RedisNode[], emulator, accounts, perAccount));
        } finally {
          await cluster.close();
        }
      }
    } finally {
      await emulator.close();
    }
    const floor = passes[0]!.batchesPerSecond;
    process.stdout.write(
      table(
        ['topology', 'masters', 'accounts', 'batches', 'seconds', 'batches/s', 'x one server', 'failed', 'Redis CPU ms/batch'],
        passes.map((p) => [
          p.topology, p.masters, p.accounts, p.batches, p.seconds.toFixed(2), p.batchesPerSecond.toFixed(0), (p.batchesPerSecond / floor).toFixed(2),
          p.failed, p.redisCpuMsPerBatch === null ? '-' : p.redisCpuMsPerBatch.toFixed(3),
        ]),
      ) + '\n',
    );
    process.stdout.write(
      'One daemon per account, concurrency 16 each, one region; every batch is one UnTagResources call on a zero-latency emulator. ' +
        'Redis CPU: used_cpu_user + used_cpu_sys (INFO cpu) of every master, after minus before the pass, per batch. On a 2-core machine the daemons, not Redis, are the ceiling.\n',
    );
    const three = passes.find((p) => p.topology === 'cluster 3');
    const one = passes.find((p) => p.topology === 'cluster 1');
    const ratio = three && one ? three.batchesPerSecond / one.batchesPerSecond : Number.NaN;
    return {
      result: { accounts, perAccount, region: REGION, totalQuotaPerSecond: TOTAL_QUOTA_PER_SECOND, passes, ratio3to1: ratio },
      targets: [{ benchmark: 'topology', target: 'batches/s on 3 masters vs 1 master (measured)', measured: `${ratio.toFixed(2)} x`, met: null }],
    };
  },
};
