// Redis connections for BullMQ: workers need maxRetriesPerRequest null so commands wait out a Redis outage.
// The one place where connections are built, for every topology (single server, Cluster, Sentinel).
// Every connection made here, and every duplicate of it (BullMQ duplicates for workers), reports its errors
// through the redacting logger: ioredis errors carry the AUTH arguments (the password) on `command.args`,
// and an unhandled one is printed raw by ioredis or BullMQ.
import { createHash } from 'node:crypto';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { createLogger, type Logger } from '../logging/index.js';
import { formatAddress, parseRedisTopology, topologySecrets, type RedisTopology, type RedisTopologyKind } from './topology.js';

/** A connection to any supported topology; BullMQ, the limiter and the ledger take either. */
export type RedisClient = Redis | Cluster;

/** How long a command waits, on a Cluster, for a slot whose master is failing over (per retry). */
const CLUSTER_RETRY_MS = 300;

/** How long identical connection errors are summarised into one line (a reconnect loop repeats them). */
const REPEAT_WINDOW_MS = 10_000;

export interface RedisConnectionOptions {
  connectionName?: string;
  /**
   * Where connection errors are logged (name, redacted message and code only; never the command's arguments).
   * Without one they go to stderr as JSON lines through a redacting logger of their own.
   */
  logger?: Logger;
}

/** Something that emits `error` events: an ioredis client, a BullMQ Queue, Worker or QueueEvents. */
export interface ErrorEmitter {
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/**
 * Returns a reporter that logs a connection error once and then, while the same error repeats within 10 s, only
 * counts it (the next line says how many were folded in). Fields: source, err {name, message, code}.
 */
export function connectionErrorReporter(logger: Logger | (() => Logger), windowMs = REPEAT_WINDOW_MS): (source: string, err: unknown) => void {
  const seen = new Map<string, { at: number; repeated: number }>();
  return (source, err) => {
    const fields = errorFields(err);
    const key = `${source}\u0000${fields.name}\u0000${fields.message}`;
    const now = Date.now();
    const last = seen.get(key);
    if (last && now - last.at < windowMs) {
      last.repeated += 1;
      return;
    }
    if (seen.size > 1_000) seen.clear();
    seen.set(key, { at: now, repeated: 0 });
    (typeof logger === 'function' ? logger() : logger).warn('redis connection error', { source, err: fields, ...(last?.repeated ? { repeated: last.repeated } : {}) });
  };
}

/** The parts of an error that are safe to log: never `command`, `args` or `previousErrors`. */
export function errorFields(err: unknown): { name: string; message: string; code?: string } {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err).slice(0, 500) };
  const code = (err as { code?: unknown }).code;
  return { name: err.name, message: err.message.slice(0, 500), ...(typeof code === 'string' ? { code } : {}) };
}

/** Attaches the reporter to an emitter's `error` event (a BullMQ queue without one prints errors raw). */
export function reportErrors<T extends ErrorEmitter>(emitter: T, source: string, report: (source: string, err: unknown) => void): T {
  emitter.on('error', (err) => report(source, err));
  return emitter;
}

/** A redacting stderr logger for connections whose owner gave none (library users, one-off CLI connections). */
function fallbackLogger(topology: RedisTopology): Logger {
  const secrets = topologySecrets(topology).flatMap((s) => [s, encodeURIComponent(s)]);
  return createLogger({ level: 'warn', secrets, stream: process.stderr, base: { service: 'tagwarden' } });
}

/** Makes `redis` and every duplicate made from it (recursively) report errors through `report`. */
function watchConnection<T extends RedisClient>(redis: T, name: string, report: (source: string, err: unknown) => void): T {
  reportErrors(redis, name, report);
  if (redis instanceof Cluster) {
    // A Cluster reports its nodes' connection errors as `node error` (with the node's address).
    redis.on('node error', (err: unknown, address: unknown) => report(`${name} node ${typeof address === 'string' ? address : ''}`.trim(), err));
    const duplicate = redis.duplicate.bind(redis);
    redis.duplicate = (nodes, options) => watchConnection(duplicate(nodes, options), options?.redisOptions?.connectionName ?? name, report);
    return redis;
  }
  const single = redis as Redis;
  const duplicate = single.duplicate.bind(single);
  single.duplicate = (override) => watchConnection(duplicate(override), override?.connectionName ?? name, report);
  return redis;
}

/**
 * Opens a connection suitable for BullMQ queues and workers, from a URL (`redis://`, `rediss://`,
 * `redis+cluster://`, `redis+sentinel://`; see parseRedisTopology) or a parsed topology. The URL is never
 * logged by this module; its errors (and those of its duplicates and, on a Cluster, of its nodes) are logged through
 * `options.logger`, redacted and with repeats summarised.
 */
export function createRedis(target: string | RedisTopology, options: RedisConnectionOptions = {}): RedisClient {
  const topology = typeof target === 'string' ? parseRedisTopology(target) : target;
  const name = options.connectionName ?? 'tagwarden';
  let fallback: Logger | undefined;
  const logger = options.logger ?? (() => (fallback ??= fallbackLogger(topology)));
  return watchConnection(connect(topology, name), name, connectionErrorReporter(logger));
}

function connect(topology: RedisTopology, name: string): RedisClient {
  const common = {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    connectionName: name,
    // Reconnect forever with a bounded delay: the daemon survives Redis restarts and reports not-ready meanwhile.
    retryStrategy: (times: number) => Math.min(200 * times, 2_000),
  } satisfies RedisOptions;
  switch (topology.kind) {
    case 'standalone':
      return new Redis(topology.url, common);
    case 'cluster':
      return new Cluster(
        topology.nodes.map((n) => ({ host: n.host, port: n.port })),
        {
          redisOptions: {
            ...common,
            ...(topology.username ? { username: topology.username } : {}),
            ...(topology.password ? { password: topology.password } : {}),
            ...(topology.tls ? { tls: {} } : {}),
          },
          // A whole-cluster outage is waited out like a single server's; a failing-over master's slots are
          // retried (MOVED/TRYAGAIN/CLUSTERDOWN) until a replica has taken over.
          clusterRetryStrategy: (times: number) => Math.min(200 * times, 2_000),
          retryDelayOnFailover: CLUSTER_RETRY_MS,
          retryDelayOnClusterDown: CLUSTER_RETRY_MS,
          retryDelayOnTryAgain: CLUSTER_RETRY_MS,
          // Enough redirections to outlast a failover (node timeout plus election) before a command fails.
          maxRedirections: 100,
          enableReadyCheck: true,
          slotsRefreshTimeout: 2_000,
          slotsRefreshInterval: 5_000,
        },
      );
    case 'sentinel':
      return new Redis({
        ...common,
        sentinels: topology.sentinels.map((n) => ({ host: n.host, port: n.port })),
        name: topology.masterName,
        role: 'master',
        db: topology.db,
        ...(topology.username ? { username: topology.username } : {}),
        ...(topology.password ? { password: topology.password } : {}),
        ...(topology.sentinelPassword ? { sentinelPassword: topology.sentinelPassword } : {}),
        ...(topology.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
        // No failoverDetector: when +switch-master arrives during a reconnect, ioredis 6 ends the connection for
        // good ("Connection is closed", status end). A failover is followed anyway: a killed master closes the
        // connection, and Sentinel kills the clients of a demoted one; each reconnect asks Sentinel for the master.
        sentinelRetryStrategy: (times: number) => Math.min(200 * times, 2_000),
        // A demoted master answers writes with READONLY: reconnect (Sentinel names the new master) and resend.
        reconnectOnError: (err: Error) => (err.message.startsWith('READONLY') ? 2 : false),
      });
  }
}

/** The topology a connection was built for. */
export function topologyKindOf(redis: RedisClient): RedisTopologyKind {
  if (redis instanceof Cluster) return 'cluster';
  return (redis.options.sentinels?.length ?? 0) > 0 ? 'sentinel' : 'standalone';
}

/** One Redis node as seen by a connection: a Cluster master, or the server (or Sentinel's master) in use. */
export interface RedisNodeState {
  /** `host:port`. */
  address: string;
  role: 'master' | 'replica' | 'server';
  /** The ioredis connection status to that node (`ready` when usable). */
  status: string;
}

/**
 * The nodes behind a connection, without a command: a Cluster's masters (with their connection state) or the
 * one server. For Sentinel, the master the connection is attached to now.
 */
export function redisNodes(redis: RedisClient): RedisNodeState[] {
  if (redis instanceof Cluster) {
    return redis.nodes('master').map((node) => ({ address: nodeAddress(node), role: 'master' as const, status: node.status }));
  }
  return [{ address: nodeAddress(redis), role: topologyKindOf(redis) === 'sentinel' ? 'master' : 'server', status: redis.status }];
}

/** The last address each connection was connected to, so a node that went away is still named. */
const lastAddress = new WeakMap<Redis, string>();

function nodeAddress(node: Redis): string {
  const remote = node.stream as { remoteAddress?: string; remotePort?: number } | undefined;
  if (remote?.remoteAddress && remote.remotePort) {
    const address = formatAddress({ host: remote.remoteAddress.replace(/^::ffff:/, ''), port: remote.remotePort });
    lastAddress.set(node, address);
    return address;
  }
  const last = lastAddress.get(node);
  if (last) return last;
  if (node.options.sentinels?.length) return `${node.options.name ?? 'master'} (not resolved yet)`;
  return formatAddress({ host: node.options.host ?? '127.0.0.1', port: node.options.port ?? 6379 });
}

/** One node's health as a readiness check and a metric show it. */
export interface RedisNodeHealth extends RedisNodeState {
  ok: boolean;
  /** Why the node is not ok: its connection status or the error of a PING. */
  reason?: string;
}

/** The health of a connection's topology, with the nodes in trouble named. */
export interface RedisHealth {
  topology: RedisTopologyKind;
  ok: boolean;
  /**
   * One line: `cluster: 3 masters answer`, `cluster: master 10.0.0.3:6379 not reachable (connection
   * reconnecting)`, `sentinel mymaster: master 10.0.0.5:6379 answers`.
   */
  detail: string;
  nodes: RedisNodeHealth[];
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Pings every master behind a connection (each bounded by `timeoutMs`, all at once) and says which answer.
 * Never waits on a node whose connection is down: that node is reported with its connection status.
 */
export async function checkRedis(redis: RedisClient, timeoutMs = 1_000): Promise<RedisHealth> {
  const topology = topologyKindOf(redis);
  const masterName = topology === 'sentinel' && !(redis instanceof Cluster) ? redis.options.name ?? 'master' : '';
  const label = topology === 'sentinel' ? `sentinel ${masterName}` : topology;
  const targets: Array<{ state: RedisNodeState; conn: Redis }> =
    redis instanceof Cluster
      ? redis.nodes('master').map((conn) => ({ state: { address: nodeAddress(conn), role: 'master' as const, status: conn.status }, conn }))
      : [{ state: redisNodes(redis)[0]!, conn: redis }];
  const nodes = await Promise.all(
    targets.map(async ({ state, conn }): Promise<RedisNodeHealth> => {
      if (conn.status !== 'ready') return { ...state, ok: false, reason: `connection ${conn.status}` };
      try {
        await within(conn.ping(), timeoutMs, 'PING');
        return { ...state, ok: true };
      } catch (err) {
        return { ...state, ok: false, reason: err instanceof Error ? err.message.slice(0, 200) : 'PING failed' };
      }
    }),
  );
  const clusterDown = redis instanceof Cluster && redis.status !== 'ready';
  const bad = nodes.filter((n) => !n.ok);
  const ok = !clusterDown && nodes.length > 0 && bad.length === 0;
  let detail: string;
  if (ok) {
    detail = topology === 'cluster' ? `cluster: ${nodes.length} masters answer` : `${label}: ${nodes[0]!.role} ${nodes[0]!.address} answers`;
  } else if (bad.length > 0) {
    const named = bad.slice(0, 5).map((n) => `${n.role} ${n.address} not reachable (${n.reason ?? 'down'})`).join('; ');
    detail = `${label}: ${named}${bad.length > 5 ? `; ${bad.length - 5} more` : ''}`;
  } else {
    detail = `${label}: not reachable (connection ${redis.status})`;
  }
  return { topology, ok, detail, nodes };
}

/** Deletes every key under `prefix:` (queues, ledger, limiter state): for demos and tests sharing a Redis. */
export async function deletePrefix(redis: RedisClient, prefix: string): Promise<number> {
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  let deleted = 0;
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${escapeGlob(prefix)}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length === 0) continue;
      if (redis instanceof Cluster) {
        // Keys of one node may sit in different slots: one UNLINK each (pipelined), never a multi-key command.
        const replies = await node.pipeline(keys.map((k) => ['unlink', k])).exec();
        deleted += (replies ?? []).reduce((n, [, v]) => n + Number(v ?? 0), 0);
      } else {
        deleted += await node.unlink(...keys);
      }
    } while (cursor !== '0');
  }
  return deleted;
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * The part of a key Redis Cluster hashes: the text between the first `{` and the next `}` when it is not empty,
 * otherwise the whole key. Two keys with the same hash source always share a slot.
 */
export function hashSource(key: string): string {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return key.slice(open + 1, close);
  }
  return key;
}

/** Thrown before a script is sent when its keys would fall in two Redis Cluster slots (on every topology). */
export class CrossSlotKeysError extends Error {
  override readonly name = 'CrossSlotKeysError';
}

/**
 * A Lua script sent by SHA (EVALSHA), and in full only when Redis does not have it cached yet. Its keys must carry
 * one hash tag (or be one key): checked before sending, on a single server too, so a script that Redis Cluster
 * would refuse with CROSSSLOT fails in every test, not only on a cluster.
 */
export function cachedScript(lua: string): (redis: RedisClient, keys: readonly string[], args: readonly string[]) => Promise<unknown> {
  const sha = createHash('sha1').update(lua).digest('hex');
  return async (redis, keys, args) => {
    const sources = new Set(keys.map(hashSource));
    if (sources.size > 1) {
      throw new CrossSlotKeysError(`script ${sha.slice(0, 12)} takes keys of ${sources.size} hash slots (${[...sources].slice(0, 3).map((k) => JSON.stringify(k.slice(0, 60))).join(', ')}): give them one hash tag`);
    }
    try {
      return await redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(lua, keys.length, ...keys, ...args);
    }
  };
}
