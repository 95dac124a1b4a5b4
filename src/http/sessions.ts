// Dashboard sessions: a random ID per login (two logins never share a cookie), kept by its SHA-256 in a store
// every replica shares (Redis in the daemon), so logging out on one replica revokes the session on all.
import { createHash, randomBytes } from 'node:crypto';
import type { SessionStore } from './types.js';

/** A new session ID: 32 random bytes, base64url (43 characters). */
export function newSessionId(): string {
  return randomBytes(32).toString('base64url');
}

/** The form a session ID is stored in: a cookie read out of the store cannot be replayed. */
export function sessionKey(id: string): string {
  return createHash('sha256').update(id, 'utf8').digest('base64url');
}

/** True when `value` has the shape of a session ID (checked before any store lookup). */
export function isSessionId(value: string | undefined): value is string {
  return value !== undefined && /^[A-Za-z0-9_-]{43}$/.test(value);
}

/** Sessions in this process only: for tests and a single replica. */
export function createMemorySessionStore(now: () => number = Date.now): SessionStore {
  const sessions = new Map<string, number>();
  return {
    async create(key, ttlSeconds) {
      for (const [k, until] of sessions) if (until <= now()) sessions.delete(k);
      sessions.set(key, now() + ttlSeconds * 1000);
    },
    async exists(key) {
      const until = sessions.get(key);
      return until !== undefined && until > now();
    },
    async remove(key) {
      sessions.delete(key);
    },
  };
}

/** The commands of a Redis client this store uses. */
export interface SessionRedis {
  set(key: string, value: string, ex: 'EX', seconds: number): Promise<unknown>;
  exists(key: string): Promise<number>;
  del(key: string): Promise<number>;
}

/** Sessions in Redis under `prefix:admin-session:`, expiring with the cookie. */
export function createRedisSessionStore(redis: SessionRedis, prefix: string): SessionStore {
  const key = (k: string) => `${prefix}:admin-session:${k}`;
  return {
    async create(k, ttlSeconds) {
      await redis.set(key(k), '1', 'EX', ttlSeconds);
    },
    async exists(k) {
      return (await redis.exists(key(k))) === 1;
    },
    async remove(k) {
      await redis.del(key(k));
    },
  };
}
