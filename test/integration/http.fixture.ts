// Starts the real HTTP server over real BullMQ queues in Redis, each fixture with its own key prefix.
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Registry } from 'prom-client';
import { createHttpServer, type HttpDeps, type PolicyDirectory, type ReadinessReport, type SessionStore } from '../../src/http/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { SCAN_QUEUE, createJobInspector, createProducer, createRedis, deletePrefix, untagQueueName } from '../../src/queue/index.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const TOKEN = 'tw-test-token-9f8e7d6c5b4a3210';
export const ACCOUNT = 'acct';
export const REGIONS = ['cn-hangzhou', 'cn-beijing'] as const;

export interface FixtureOptions {
  token?: string;
  open?: boolean;
  maxBodyBytes?: number;
  readiness?: () => Promise<ReadinessReport>;
  policies?: PolicyDirectory;
  registry?: Registry;
  probeTimeoutMs?: number;
  sessions?: SessionStore;
}

export type Fixture = Awaited<ReturnType<typeof startFixture>>;

/** A running server at `base`; close() stops it, closes every connection and deletes the prefix's keys. */
export async function startFixture(options: FixtureOptions = {}) {
  const prefix = `twtest-http-${randomUUID().slice(0, 12)}`;
  const redis = createRedis(REDIS_URL, { connectionName: 'tagwarden-http-test' });
  const producer = createProducer({ connection: redis, prefix, account: ACCOUNT, retention: { attempts: 3 } });
  const untagQueues = new Map(REGIONS.map((region) => [region, new Queue(untagQueueName(ACCOUNT, region), { connection: redis, prefix })]));
  const scanQueue = new Queue(SCAN_QUEUE, { connection: redis, prefix });
  const queues = [...untagQueues.values(), scanQueue];
  const { logger, lines } = createMemoryLogger({ level: 'debug', secrets: options.token ? [options.token] : [] });
  const registry = options.registry ?? new Registry();
  const deps: HttpDeps = {
    logger,
    registry,
    liveness: () => ({ ok: true }),
    readiness: options.readiness ?? (async () => ({ ready: true, checks: { redis: { ok: true } } })),
    api: { token: options.token, open: options.open ?? false, maxBodyBytes: options.maxBodyBytes ?? 64 * 1024 },
    producer,
    jobs: createJobInspector({ queues }),
    policies: options.policies ?? { list: async () => [], scanNow: async () => null },
    queues,
    ...(options.probeTimeoutMs === undefined ? {} : { probeTimeoutMs: options.probeTimeoutMs }),
    ...(options.sessions === undefined ? {} : { sessions: options.sessions }),
  };
  const server = createHttpServer(deps);
  const { port } = await server.listen(0, '127.0.0.1');

  return {
    base: `http://127.0.0.1:${port}`,
    prefix,
    redis,
    lines,
    queues,
    scanQueue,
    untagQueue(region: (typeof REGIONS)[number]): Queue {
      const queue = untagQueues.get(region);
      if (!queue) throw new Error(`no queue for ${region}`);
      return queue;
    },
    async close() {
      await server.close();
      await producer.close();
      await Promise.all(queues.map((q) => q.close()));
      await deletePrefix(redis, prefix);
      await redis.quit();
    },
  };
}

/** JSON request helper; `token: null` sends no Authorization header. */
export async function call(
  fixture: { base: string },
  method: string,
  path: string,
  options: { token?: string | null; body?: unknown; rawBody?: string; contentType?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; body: unknown; text: string }> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.rawBody !== undefined) body = options.rawBody;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
  const res = await fetch(`${fixture.base}${path}`, { method, headers, ...(body === undefined ? {} : { body }), redirect: 'manual' });
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}
