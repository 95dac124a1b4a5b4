// Real Redis topologies for tests and benchmarks, started and stopped by PID on 127.0.0.1: a Redis Cluster of
// 3 masters with one replica each (`redis-cli --cluster create`), and a Sentinel setup (a master, a replica and
// three Sentinels). Ports come from TAGWARDEN_TOPOLOGY_PORTS (default 17000-17999), picked at random per run and
// checked free, so concurrent runs do not collide. Every server has a password and keeps an append-only file, so
// it can be stopped and started again on its data.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

const [PORT_MIN, PORT_MAX] = ((): [number, number] => {
  const m = /^(\d+)-(\d+)$/.exec(process.env.TAGWARDEN_TOPOLOGY_PORTS ?? '');
  return m ? [Number(m[1]), Number(m[2])] : [17_000, 17_999];
})();

/** Every server process started here, so a test run that fails half-way still stops them (by PID). */
const started = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** `count` consecutive free ports in the range, from a random start. */
export async function reservePorts(count: number): Promise<number[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = PORT_MIN + Math.floor(Math.random() * (PORT_MAX - PORT_MIN + 1 - count));
    const ports = Array.from({ length: count }, (_, i) => base + i);
    let free = true;
    for (const p of ports) if (!(await portFree(p))) free = false;
    if (free) return ports;
  }
  throw new Error(`no ${count} consecutive free ports in ${PORT_MIN}-${PORT_MAX}`);
}

/** One redis-server (data node or Sentinel) that can be killed, stopped and started again on its directory. */
export class RedisNode {
  child: ChildProcess | undefined;
  readonly lines: string[] = [];
  constructor(
    readonly port: number,
    readonly dir: string,
    private readonly args: () => string[],
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const child = spawn('redis-server', this.args(), { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    started.add(child);
    this.child = child;
    let onLine: ((line: string) => void) | undefined;
    const collect = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        if (this.lines.length < 5_000) this.lines.push(line);
        onLine?.(line);
      }
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.once('exit', () => started.delete(child));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server ${this.port} did not start:\n${this.lines.slice(-20).join('\n')}`)), 30_000);
      onLine = (line) => {
        if (/Ready to accept connections|Sentinel ID is/.test(line)) {
          clearTimeout(timer);
          onLine = undefined;
          resolve();
        }
      };
      child.once('exit', () => {
        clearTimeout(timer);
        reject(new Error(`redis-server ${this.port} exited at start:\n${this.lines.slice(-20).join('\n')}`));
      });
    });
  }

  /** SIGKILL: what a crashed host or OOM-killed pod does (nothing flushed). */
  async kill(): Promise<void> {
    await this.signal('SIGKILL');
  }

  /** SIGTERM: a clean shutdown (the append-only file is flushed). */
  async stop(): Promise<void> {
    await this.signal('SIGTERM');
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  }
}

async function withClient<T>(port: number, password: string | undefined, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, connectTimeout: 2_000, ...(password ? { password } : {}) });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function dataArgs(port: number, password: string, extra: string[]): () => string[] {
  return () => [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', '.', '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec',
    '--requirepass', password, '--masterauth', password, '--daemonize', 'no', '--loglevel', 'notice', '--protected-mode', 'no',
    '--maxmemory-policy', 'noeviction', ...extra,
  ];
}

/** Common surface of the two topologies. */
export interface TestTopology {
  readonly kind: 'cluster' | 'sentinel';
  /** The REDIS_URL tagwarden takes (`redis+cluster://...` or `redis+sentinel://...`), with the password. */
  readonly url: string;
  readonly password: string;
  /** Every data node (masters and replicas). */
  readonly nodes: readonly RedisNode[];
  /** The data nodes that are masters now (asked of the servers). */
  masters(): Promise<RedisNode[]>;
  /** SIGKILLs one master and waits until its replica has taken over; returns the dead node. */
  killMaster(pick?: (masters: RedisNode[]) => RedisNode): Promise<{ killed: RedisNode; promoted: RedisNode; failoverMs: number }>;
  /** Stops every data node (SIGTERM), and starts them again on their data. */
  stopAll(): Promise<void>;
  startAll(): Promise<void>;
  /** Waits until the topology serves writes everywhere again. */
  healthy(timeoutMs?: number): Promise<void>;
  /** Stops every process and deletes the directories. */
  close(): Promise<void>;
}

/**
 * Starts a Redis Cluster: `masters` masters with one replica each, node timeout 2 s (failover in a few seconds).
 * Cluster bus ports are set explicitly (`--cluster-port`) so they stay in the port range too.
 */
export async function startTestCluster(options: { masters?: number; replicas?: 0 | 1 } = {}): Promise<TestTopology> {
  const masters = options.masters ?? 3;
  const replicas = options.replicas ?? 1;
  const count = masters * (1 + replicas);
  if (masters < 3 && replicas > 0) throw new Error('a cluster with replicas needs 3 masters or more');
  const ports = await reservePorts(count * 2);
  const password = `tw-cluster-${randomBytes(12).toString('hex')}`;
  const root = mkdtempSync(join(tmpdir(), 'tw-cluster-'));
  const nodes = ports.slice(0, count).map((port, i) => {
    const dir = join(root, String(port));
    mkdirSync(dir);
    return new RedisNode(port, dir, dataArgs(port, password, [
      '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000',
      '--cluster-port', String(ports[count + i]), '--cluster-replica-validity-factor', '0',
      '--cluster-require-full-coverage', 'yes', '--appenddirname', 'aof',
      // A lone node never learns its own address from a peer: without this, CLUSTER SLOTS names it with an empty IP.
      '--cluster-announce-ip', '127.0.0.1',
    ]));
  });
  const close = async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await Promise.all(nodes.map((n) => n.start()));
    if (masters === 1 && replicas === 0) {
      // A one-master "cluster": assign every slot to it (redis-cli --cluster create needs 3 masters).
      await withClient(nodes[0]!.port, password, async (r) => r.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383'));
    } else {
      const create = spawnSync(
        'redis-cli',
        ['--no-auth-warning', '-a', password, '--cluster', 'create', ...nodes.map((n) => n.address), '--cluster-replicas', String(replicas), '--cluster-yes'],
        { encoding: 'utf8', timeout: 60_000 },
      );
      if (create.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${create.stdout}\n${create.stderr}`);
    }
  } catch (err) {
    await close();
    throw err;
  }

  const infoOf = (node: RedisNode) => withClient(node.port, password, async (r) => String(await r.call('CLUSTER', 'INFO')));
  const roleOf = (node: RedisNode) => withClient(node.port, password, async (r) => String(((await r.call('ROLE')) as unknown[])[0]));
  const topology: TestTopology = {
    kind: 'cluster',
    url: `redis+cluster://:${password}@${nodes.map((n) => n.address).join(',')}`,
    password,
    nodes,
    async masters() {
      const out: RedisNode[] = [];
      for (const n of nodes) if (n.running && (await roleOf(n).catch(() => '')) === 'master') out.push(n);
      return out;
    },
    async killMaster(pick) {
      const current = await topology.masters();
      const victim = pick ? pick(current) : current[0]!;
      const replicasOf = await withClient(victim.port, password, async (r) => String(await r.call('INFO', 'replication')));
      const replicaPorts = [...replicasOf.matchAll(/slave\d+:ip=[^,]+,port=(\d+)/g)].map((m) => Number(m[1]));
      const t0 = Date.now();
      await victim.kill();
      const promoted = await until('a replica to take over', async () => {
        for (const n of nodes.filter((x) => replicaPorts.includes(x.port) && x.running)) {
          if ((await roleOf(n).catch(() => '')) === 'master' && /cluster_state:ok/.test(await infoOf(n))) return n;
        }
        return undefined;
      }, 60_000);
      return { killed: victim, promoted, failoverMs: Date.now() - t0 };
    },
    async stopAll() {
      await Promise.all(nodes.map((n) => n.stop()));
    },
    async startAll() {
      await Promise.all(nodes.map((n) => n.start()));
    },
    async healthy(timeoutMs = 60_000) {
      await until('cluster_state:ok on every running node', async () => {
        for (const n of nodes.filter((x) => x.running)) {
          const info = await infoOf(n);
          if (!/cluster_state:ok/.test(info) || !/cluster_slots_ok:16384/.test(info)) return undefined;
        }
        return true;
      }, timeoutMs);
      // Replicas in sync, so a failover has a replica with the data.
      await until('replicas in sync', async () => {
        for (const n of nodes.filter((x) => x.running)) {
          const info = await withClient(n.port, password, async (r) => String(await r.call('INFO', 'replication')));
          if (/role:slave/.test(info) && !/master_link_status:up/.test(info)) return undefined;
        }
        return true;
      }, timeoutMs);
    },
    close,
  };
  try {
    await topology.healthy();
  } catch (err) {
    await close();
    throw err;
  }
  return topology;
}

/** The master name the test Sentinels monitor. */
export const SENTINEL_MASTER = 'twmaster';

/**
 * Starts a Sentinel setup: a master, one replica, and three Sentinels (quorum 2, down after 1 s, failover
 * timeout 5 s). Sentinels answer without a password; the data nodes need it.
 */
export async function startTestSentinel(): Promise<TestTopology & { sentinels: readonly RedisNode[] }> {
  const ports = await reservePorts(5);
  const password = `tw-sentinel-${randomBytes(12).toString('hex')}`;
  const root = mkdtempSync(join(tmpdir(), 'tw-sentinel-'));
  const [masterPort, replicaPort, ...sentinelPorts] = ports as [number, number, ...number[]];
  const dirOf = (port: number) => {
    const dir = join(root, String(port));
    mkdirSync(dir);
    return dir;
  };
  const master = new RedisNode(masterPort, dirOf(masterPort), dataArgs(masterPort, password, []));
  const replica = new RedisNode(replicaPort, dirOf(replicaPort), dataArgs(replicaPort, password, ['--replicaof', '127.0.0.1', String(masterPort)]));
  const data = [master, replica];
  const sentinels = sentinelPorts.map((port) => {
    const dir = dirOf(port);
    writeFileSync(join(dir, 'sentinel.conf'), [
      `port ${port}`, 'bind 127.0.0.1', 'protected-mode no', `dir ${dir}`,
      `sentinel monitor ${SENTINEL_MASTER} 127.0.0.1 ${masterPort} 2`,
      `sentinel auth-pass ${SENTINEL_MASTER} ${password}`,
      `sentinel down-after-milliseconds ${SENTINEL_MASTER} 1000`,
      `sentinel failover-timeout ${SENTINEL_MASTER} 5000`,
      `sentinel parallel-syncs ${SENTINEL_MASTER} 1`, '',
    ].join('\n'));
    return new RedisNode(port, dir, () => [join(dir, 'sentinel.conf'), '--sentinel']);
  });
  const all = [...data, ...sentinels];
  const close = async () => {
    await Promise.all(all.map((n) => n.kill()));
    rmSync(root, { recursive: true, force: true });
  };
  const roleOf = (node: RedisNode) => withClient(node.port, password, async (r) => String(((await r.call('ROLE')) as unknown[])[0]));
  const sentinelMasterPort = async (): Promise<number | undefined> => {
    for (const s of sentinels.filter((x) => x.running)) {
      const reply = await withClient(s.port, undefined, async (r) => (await r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_MASTER)) as string[] | null).catch(() => null);
      if (reply?.[1]) return Number(reply[1]);
    }
    return undefined;
  };
  const topology = {
    kind: 'sentinel' as const,
    url: `redis+sentinel://:${password}@${sentinels.map((s) => s.address).join(',')}/${SENTINEL_MASTER}`,
    password,
    nodes: data,
    sentinels,
    async masters() {
      const out: RedisNode[] = [];
      for (const n of data) if (n.running && (await roleOf(n).catch(() => '')) === 'master') out.push(n);
      return out;
    },
    async killMaster(pick?: (masters: RedisNode[]) => RedisNode) {
      const current = await topology.masters();
      const victim = pick ? pick(current) : current[0]!;
      const t0 = Date.now();
      await victim.kill();
      const promoted = await until('Sentinel to promote the replica', async () => {
        const port = await sentinelMasterPort();
        const node = data.find((n) => n.port === port && n !== victim && n.running);
        return node && (await roleOf(node).catch(() => '')) === 'master' ? node : undefined;
      }, 60_000);
      return { killed: victim, promoted, failoverMs: Date.now() - t0 };
    },
    async stopAll() {
      await Promise.all(data.map((n) => n.stop()));
    },
    async startAll() {
      await Promise.all(data.map((n) => n.start()));
    },
    async healthy(timeoutMs = 60_000) {
      await until('Sentinel to name a master that answers, with its replica in sync', async () => {
        const port = await sentinelMasterPort();
        const node = data.find((n) => n.port === port && n.running);
        if (!node || (await roleOf(node)) !== 'master') return undefined;
        for (const n of data.filter((x) => x.running && x !== node)) {
          const info = await withClient(n.port, password, async (r) => String(await r.call('INFO', 'replication')));
          if (!/master_link_status:up/.test(info)) return undefined;
        }
        // Every Sentinel knows the replica, so a failover can happen.
        for (const s of sentinels) {
          const replicas = await withClient(s.port, undefined, async (r) => (await r.call('SENTINEL', 'REPLICAS', SENTINEL_MASTER)) as unknown[]);
          if (replicas.length < data.length - 1) return undefined;
        }
        return true;
      }, timeoutMs);
    },
    close,
  };
  try {
    await Promise.all(data.map((n) => n.start()));
    await Promise.all(sentinels.map((n) => n.start()));
    await topology.healthy();
  } catch (err) {
    await close();
    throw err;
  }
  return topology;
}

/** One plain redis-server on a port of the range (password, append-only file): the floor the topologies are compared to. */
export async function startTestStandalone(): Promise<{ url: string; password: string; node: RedisNode; close(): Promise<void> }> {
  const [port] = await reservePorts(1);
  const password = `tw-single-${randomBytes(12).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'tw-single-'));
  const node = new RedisNode(port!, dir, dataArgs(port!, password, []));
  await node.start();
  return {
    url: `redis://:${password}@127.0.0.1:${port}`,
    password,
    node,
    async close() {
      await node.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
