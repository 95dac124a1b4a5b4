// Queues of the naming before hash tags (`scan`, `untag-<account>-<region>`, `events-<account>`): this version
// never runs them. A deployment upgraded with jobs still in them is told so once at start, with how many, so the
// operator knows the next scans re-plan that work and can delete the old keys (deploy/README.md "Upgrade").
import type { Logger } from '../logging/index.js';
import type { RedisClient } from '../queue/index.js';

/** The queue names of the previous naming for a deployment. */
export function legacyQueueNames(account: string, regions: readonly string[]): string[] {
  return ['scan', `events-${account}`, ...regions.map((r) => `untag-${account}-${r}`)];
}

/** Jobs left (waiting, paused, prioritized, delayed, active) in each old queue that has any. */
export async function legacyBacklog(redis: RedisClient, prefix: string, names: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const name of names) {
    const k = (suffix: string) => `${prefix}:${name}:${suffix}`;
    // One key per command: legal on Redis Cluster whatever slot each key is in.
    const counts = await Promise.all([
      redis.llen(k('wait')), redis.llen(k('paused')), redis.llen(k('active')), redis.zcard(k('prioritized')), redis.zcard(k('delayed')),
    ]);
    const total = counts.reduce((a, b) => a + b, 0);
    if (total > 0) out.set(name, total);
  }
  return out;
}

/** Logs one warning when old-named queues hold jobs; never fails the start. */
export async function warnLegacyQueues(redis: RedisClient, prefix: string, account: string, regions: readonly string[], logger: Logger): Promise<number> {
  try {
    const backlog = await legacyBacklog(redis, prefix, legacyQueueNames(account, regions));
    const jobs = [...backlog.values()].reduce((a, b) => a + b, 0);
    if (jobs > 0) {
      logger.warn('queues of the previous naming hold jobs this version does not run: the next scans plan their tags again; delete the old keys (deploy/README.md, Upgrade)', {
        jobs,
        queues: Object.fromEntries(backlog),
      });
    }
    return jobs;
  } catch (err) {
    logger.warn('could not check the queues of the previous naming', { err });
    return 0;
  }
}
