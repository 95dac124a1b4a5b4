// Watches Redis for what tagwarden cannot see by itself: data lost (restarted empty, flushed: an identity
// marker vanished or changed), an eviction policy that would drop jobs and schedulers, and a second deployment
// with another policy set sharing the prefix. Each is logged at error, counted in a metric and shown in /readyz.
import { createHash, randomUUID } from 'node:crypto';
import type { RedisClient } from '../queue/index.js';
import type { ReadinessCheck } from '../http/index.js';
import type { Logger } from '../logging/index.js';
import type { Metrics } from '../metrics/index.js';

export interface RedisGuardOptions {
  redis: RedisClient;
  prefix: string;
  logger: Logger;
  metrics: Metrics;
  now(): Date;
  /** How often replicas announce their policy set; an announcement older than 3 of these is gone. */
  heartbeatMs: number;
  /** How long two policy sets may coexist (a rollout, a ConfigMap change) before it is a conflict. */
  conflictGraceMs: number;
}

/** A fingerprint of a policy set: names and content hashes, in order. */
export function policySetFingerprint(policies: ReadonlyArray<{ name: string; hash: string }>): string {
  const text = policies.map((p) => `${p.name}:${p.hash}`).sort().join('\n');
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

export function createRedisGuard(options: RedisGuardOptions) {
  const { redis, prefix, logger, metrics } = options;
  const identityKey = `${prefix}:identity`;
  const deploymentsKey = `${prefix}:deployments`;
  const replica = randomUUID();
  let known: string | undefined;
  let lostAt: string | undefined;
  let losses = 0;
  let eviction: string | undefined;
  let evictionUnreadable = false;
  let conflictSince: number | undefined;
  let conflict: string[] | undefined;

  return {
    /**
     * Checks the identity marker (creating it when absent) and the eviction policy. Returns true when Redis
     * lost its data since the last check: the caller re-creates its schedulers.
     */
    async check(): Promise<boolean> {
      let lost = false;
      let current = await redis.get(identityKey);
      if (current === null) {
        await redis.set(identityKey, JSON.stringify({ id: randomUUID(), createdAt: options.now().toISOString() }), 'NX');
        current = await redis.get(identityKey);
        if (known !== undefined) lost = true;
      } else if (known !== undefined && current !== known) {
        lost = true;
      }
      if (lost) {
        losses += 1;
        lostAt = options.now().toISOString();
        metrics.redisStateLost.inc();
        logger.error('redis lost its data: the identity marker is gone or changed; re-creating job schedulers', { losses });
      }
      known = current ?? undefined;

      try {
        const reply = (await redis.config('GET', 'maxmemory-policy')) as unknown as string[];
        const policy = reply[1];
        evictionUnreadable = false;
        if (policy !== undefined && policy !== 'noeviction') {
          if (eviction !== policy) logger.error('redis maxmemory-policy evicts keys: set it to noeviction; not ready until then', { maxmemoryPolicy: policy });
          eviction = policy;
          metrics.redisEvictionUnsafe.set(1);
        } else {
          if (eviction !== undefined) logger.info('redis maxmemory-policy is noeviction again');
          eviction = undefined;
          metrics.redisEvictionUnsafe.set(0);
        }
      } catch (err) {
        // Managed Redis may refuse CONFIG: say so once, and do not block readiness on what cannot be read.
        if (!evictionUnreadable) logger.warn('cannot read redis maxmemory-policy; make sure it is noeviction', { err: err instanceof Error ? err.message : String(err) });
        evictionUnreadable = true;
      }
      return lost;
    },

    /** Announces this replica's policy set and looks for a live replica with another one. */
    async heartbeat(fingerprint: string, policies: readonly string[]): Promise<void> {
      const now = options.now().getTime();
      await redis.hset(deploymentsKey, replica, JSON.stringify({ fingerprint, policies: policies.slice(0, 50), at: now }));
      const all = await redis.hgetall(deploymentsKey);
      const others = new Map<string, string[]>();
      const stale: string[] = [];
      for (const [id, raw] of Object.entries(all)) {
        let entry: { fingerprint?: string; policies?: string[]; at?: number };
        try {
          entry = JSON.parse(raw) as typeof entry;
        } catch {
          entry = {};
        }
        if (typeof entry.at !== 'number' || now - entry.at > 3 * options.heartbeatMs) {
          stale.push(id);
          continue;
        }
        if (entry.fingerprint && entry.fingerprint !== fingerprint) others.set(entry.fingerprint, entry.policies ?? []);
      }
      if (stale.length > 0) await redis.hdel(deploymentsKey, ...stale);
      if (others.size === 0) {
        if (conflict) logger.info('no other policy set shares this queue prefix any more');
        conflictSince = undefined;
        conflict = undefined;
        metrics.prefixConflict.set(0);
        return;
      }
      conflictSince ??= now;
      if (now - conflictSince < options.conflictGraceMs) return;
      const theirs = [...new Set([...others.values()].flat())].filter((p) => !policies.includes(p)).sort();
      if (!conflict) {
        logger.error('another deployment with a different policy set shares this queue prefix: one prefix belongs to one deployment; stale schedulers are kept, not removed', {
          policySets: others.size + 1,
          policiesOnlyThere: theirs.slice(0, 20),
        });
      }
      conflict = theirs;
      metrics.prefixConflict.set(1);
    },

    /** True while another policy set shares the prefix (stale schedulers must then not be removed). */
    conflicting(): boolean {
      return conflict !== undefined;
    },

    /** The readiness checks this guard owns. */
    checks(): Record<string, ReadinessCheck> {
      const state: ReadinessCheck = eviction
        ? { ok: false, detail: `redis maxmemory-policy is ${eviction}: it evicts jobs and schedulers; set maxmemory-policy noeviction` }
        : lostAt
          ? { ok: true, detail: `redis lost its data ${losses} time(s), last at ${lostAt} (identity marker changed); schedulers re-created` }
          : { ok: true };
      const deployment: ReadinessCheck = conflict
        ? { ok: false, detail: `another deployment with a different policy set shares queue prefix ${prefix}${conflict.length ? ` (policies only there: ${conflict.slice(0, 5).join(', ')})` : ''}; give each deployment its own TAGWARDEN_QUEUE_PREFIX` }
        : { ok: true };
      return { redisState: state, deployment };
    },
  };
}

export type RedisGuard = ReturnType<typeof createRedisGuard>;
