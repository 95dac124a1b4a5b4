// The event state in Redis, shared by every replica: seen events (deduplication), connections waiting for
// their region's next coalescing window, the window generation, the connections a window took, its saved
// plan, and per-connection claims of batches still queued.
import { createHash } from 'node:crypto';
import { EVENTS_TAG } from '../queue/names.js';
import { cachedScript, type RedisClient } from '../queue/redis.js';

/** One region's coalescing scope. The account is part of it so many accounts never share a window. */
export interface Scope {
  account: string;
  region: string;
}

/** What one accepted event adds: the connections it names and when it happened. */
export interface PendingEvent {
  /** `source` + `id`: the CloudEvents identity. */
  source: string;
  id: string;
  scope: Scope;
  resourceIds: readonly string[];
  timeMs: number;
}

// KEYS: seen keys (one per event), then pending and generation keys (two per scope).
// ARGV: ttl seconds, event count, then per event: scope index (1-based), time ms, ID count, IDs...
// Per event: SET NX its seen key; when new, add its IDs to the scope's pending hash keeping the earliest time.
// Returns { new(1)/duplicate(0) per event..., then the current generation per scope }.
const ACCEPT = `
local ttl = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local out = {}
local at = 3
for e = 1, n do
  local scope = tonumber(ARGV[at])
  local time = tonumber(ARGV[at + 1])
  local count = tonumber(ARGV[at + 2])
  at = at + 3
  local fresh = redis.call('SET', KEYS[e], '1', 'NX', 'EX', ttl)
  if fresh then
    local pending = KEYS[n + 2 * scope - 1]
    for i = 0, count - 1 do
      local id = ARGV[at + i]
      local prev = redis.call('HGET', pending, id)
      if (not prev) or tonumber(prev) > time then redis.call('HSET', pending, id, time) end
    end
    redis.call('EXPIRE', pending, 604800)
    out[e] = 1
  else
    out[e] = 0
  end
  at = at + count
end
for s = 1, (#KEYS - n) / 2 do
  out[n + s] = tonumber(redis.call('GET', KEYS[n + 2 * s]) or '0')
end
return out`;

// KEYS: pending, generation, taken(gen). ARGV: gen.
// A window takes every pending connection at once (RENAME) and opens the next generation, so an event that
// arrives later waits for the next window. A retried window finds its taken hash again. Returns 1 when this
// generation owns a taken set, 0 when it is stale (a later window already ran).
const TAKE = `
if redis.call('EXISTS', KEYS[3]) == 1 then return 1 end
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
if cur ~= tonumber(ARGV[1]) then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('RENAME', KEYS[1], KEYS[3])
  redis.call('EXPIRE', KEYS[3], 604800)
end
redis.call('SET', KEYS[2], cur + 1)
return 1`;

const acceptScript = cachedScript(ACCEPT);
const takeScript = cachedScript(TAKE);

/** A claim: a queued batch that will remove these keys from a connection. */
export interface Claim {
  batchId: string;
  keys: string[];
}

export function createEventStore(redis: RedisClient, prefix: string) {
  const scopeKey = (s: Scope) => `${s.account}:${s.region}`;
  // Every key shares the store's hash tag: the accept script and a window's MULTI stay in one Redis Cluster slot.
  const key = (part: string) => `${prefix}:events:${EVENTS_TAG}:${part}`;
  const seenKey = (source: string, id: string) => key(`seen:${createHash('sha256').update(`${source}\n${id}`).digest('hex').slice(0, 32)}`);
  // Access key IDs are not secrets, but Redis holds only their hash: a reader learns nothing it could use.
  const ownKey = (accessKeyId: string) => key(`own:${createHash('sha256').update(accessKeyId).digest('hex').slice(0, 32)}`);

  return {
    /**
     * Records events atomically: each is new or a duplicate (same source and id within the TTL); the IDs of
     * new ones wait for their scope's window. Returns per event whether it was new, and each scope's current
     * window generation (to schedule that window).
     */
    async accept(events: readonly PendingEvent[], ttlSeconds: number): Promise<{ fresh: boolean[]; generations: Map<string, { scope: Scope; gen: number }> }> {
      const scopes = new Map<string, { scope: Scope; index: number }>();
      for (const e of events) if (!scopes.has(scopeKey(e.scope))) scopes.set(scopeKey(e.scope), { scope: e.scope, index: scopes.size + 1 });
      const keys = events.map((e) => seenKey(e.source, e.id));
      for (const { scope } of scopes.values()) keys.push(key(`pending:${scopeKey(scope)}`), key(`gen:${scopeKey(scope)}`));
      const args: string[] = [String(ttlSeconds), String(events.length)];
      for (const e of events) {
        args.push(String(scopes.get(scopeKey(e.scope))?.index ?? 1), String(Math.trunc(e.timeMs)), String(e.resourceIds.length), ...e.resourceIds);
      }
      const out = (await acceptScript(redis, keys, args)) as number[];
      const generations = new Map<string, { scope: Scope; gen: number }>();
      for (const [k, { scope, index }] of scopes) generations.set(k, { scope, gen: Number(out[events.length + index - 1] ?? 0) });
      return { fresh: events.map((_, i) => out[i] === 1), generations };
    },

    /** Takes the connections waiting for window `gen` of a scope: resource ID -> earliest event time (ms). */
    async take(scope: Scope, gen: number): Promise<Map<string, number> | undefined> {
      const taken = key(`taken:${scopeKey(scope)}:${gen}`);
      const owned = await takeScript(redis, [key(`pending:${scopeKey(scope)}`), key(`gen:${scopeKey(scope)}`), taken], [String(gen)]);
      if (Number(owned) !== 1) return undefined;
      const raw = await redis.hgetall(taken);
      return new Map(Object.entries(raw).map(([id, t]) => [id, Number(t)]));
    },

    /** Records an access key ID some replica signs with: events whose caller used it are about our own calls. */
    async rememberOwnKey(accessKeyId: string, ttlSeconds: number): Promise<void> {
      await redis.set(ownKey(accessKeyId), '1', 'EX', ttlSeconds);
    },

    /** Which of these access key IDs some replica signs with (recorded by rememberOwnKey, by any replica). */
    async ownKeys(accessKeyIds: readonly string[]): Promise<Set<string>> {
      const ids = [...new Set(accessKeyIds)];
      if (ids.length === 0) return new Set();
      const found = await redis.mget(...ids.map(ownKey));
      return new Set(ids.filter((_, i) => found[i] !== null));
    },

    /** A window's plan, saved before its first batch is enqueued (a retried window enqueues the same). */
    async savePlan(scope: Scope, gen: number, plan: unknown): Promise<void> {
      await redis.set(key(`plan:${scopeKey(scope)}:${gen}`), JSON.stringify(plan), 'EX', 604_800);
    },
    async loadPlan(scope: Scope, gen: number): Promise<unknown> {
      const raw = await redis.get(key(`plan:${scopeKey(scope)}:${gen}`));
      return raw === null ? undefined : (JSON.parse(raw) as unknown);
    },

    /** Ends a window: forgets what it took and its plan, records the claims of the batches it queued. */
    async finish(scope: Scope, gen: number, claims: ReadonlyMap<string, Claim[]>): Promise<void> {
      const multi = redis.multi();
      const claimKey = key(`claims:${scopeKey(scope)}`);
      for (const [id, list] of claims) multi.hset(claimKey, id, JSON.stringify(list));
      if (claims.size > 0) multi.expire(claimKey, 86_400);
      multi.unlink(key(`taken:${scopeKey(scope)}:${gen}`), key(`plan:${scopeKey(scope)}:${gen}`));
      await multi.exec();
    },

    /** The claims recorded for these connections (batches of earlier windows). */
    async claims(scope: Scope, ids: readonly string[]): Promise<Map<string, Claim[]>> {
      const out = new Map<string, Claim[]>();
      if (ids.length === 0) return out;
      const raw = await redis.hmget(key(`claims:${scopeKey(scope)}`), ...ids);
      ids.forEach((id, i) => {
        const value = raw[i];
        if (value) out.set(id, JSON.parse(value) as Claim[]);
      });
      return out;
    },
  };
}

export type EventStore = ReturnType<typeof createEventStore>;
