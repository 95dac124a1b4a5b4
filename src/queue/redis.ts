// Redis connections for BullMQ: workers need maxRetriesPerRequest null so commands wait out a Redis outage.
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';

/** Opens a connection suitable for BullMQ queues and workers. The URL is never logged by this module. */
export function createRedis(url: string, options: { connectionName?: string } = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    connectionName: options.connectionName ?? 'tagwarden',
    // Reconnect forever with a bounded delay: the daemon survives Redis restarts and reports not-ready meanwhile.
    retryStrategy: (times) => Math.min(200 * times, 2_000),
  });
}

/** Deletes every key under `prefix:` (queues, ledger, limiter state): for demos and tests sharing a Redis. */
export async function deletePrefix(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** A Lua script sent by SHA (EVALSHA), and in full only when Redis does not have it cached yet. */
export function cachedScript(lua: string): (redis: Redis, keys: readonly string[], args: readonly string[]) => Promise<unknown> {
  const sha = createHash('sha1').update(lua).digest('hex');
  return async (redis, keys, args) => {
    try {
      return await redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(lua, keys.length, ...keys, ...args);
    }
  };
}
