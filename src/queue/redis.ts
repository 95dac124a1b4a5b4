// Redis connections for BullMQ: workers need maxRetriesPerRequest null so commands wait out a Redis outage.
// Every connection made here, and every duplicate of it (BullMQ duplicates for workers), reports its errors
// through the redacting logger: ioredis errors carry the AUTH arguments (the password) on `command.args`,
// and an unhandled one is printed raw by ioredis or BullMQ.
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { createLogger, type Logger } from '../logging/index.js';

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
function fallbackLogger(url: string): Logger {
  const secrets: string[] = [];
  try {
    const parsed = new URL(url);
    if (parsed.password) secrets.push(decodeURIComponent(parsed.password), parsed.password);
  } catch {
    // An unparsable URL fails in ioredis itself; URL passwords are redacted by pattern as well.
  }
  return createLogger({ level: 'warn', secrets, stream: process.stderr, base: { service: 'tagwarden' } });
}

/** Makes `redis` and every duplicate made from it (recursively) report errors through `report`. */
function watchConnection(redis: Redis, name: string, report: (source: string, err: unknown) => void): Redis {
  reportErrors(redis, name, report);
  const duplicate = redis.duplicate.bind(redis);
  redis.duplicate = (override) => {
    const copy = duplicate(override);
    return watchConnection(copy, override?.connectionName ?? name, report);
  };
  return redis;
}

/**
 * Opens a connection suitable for BullMQ queues and workers. The URL is never logged by this module; its errors
 * (and those of its duplicates) are logged through `options.logger`, redacted and with repeats summarised.
 */
export function createRedis(url: string, options: RedisConnectionOptions = {}): Redis {
  const name = options.connectionName ?? 'tagwarden';
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    connectionName: name,
    // Reconnect forever with a bounded delay: the daemon survives Redis restarts and reports not-ready meanwhile.
    retryStrategy: (times) => Math.min(200 * times, 2_000),
  });
  let fallback: Logger | undefined;
  const logger = options.logger ?? (() => (fallback ??= fallbackLogger(url)));
  return watchConnection(redis, name, connectionErrorReporter(logger));
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
