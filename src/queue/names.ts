// Queue names and the job options every producer uses, so jobs look the same whoever adds them.
import type { JobsOptions } from 'bullmq';

/**
 * The Redis Cluster hash tag of an account's keys. Redis hashes only the text between the first `{` and the next
 * `}` of a key, so every key carrying `{account}` (its untag queues, its rate-limiter state) lives in one slot: a
 * BullMQ or tagwarden Lua script then never touches two slots, and different accounts spread over the masters.
 * Account IDs cannot contain braces (config and payload schemas refuse them); anything else that could is
 * replaced, so the tag is never cut short. Use this for every account-scoped key or queue name.
 */
export function accountTag(account: string): string {
  const cleaned = account.replace(/[{}]/g, '_');
  return `{${cleaned === '' ? '_' : cleaned}}`;
}

/**
 * The hash tag of one run's ledger keys: a ledger script touches only the keys of one run, and runs spread over
 * the masters.
 */
export function runTag(runId: string): string {
  const cleaned = runId.replace(/[{}]/g, '_');
  return `{${cleaned === '' ? '_' : cleaned}}`;
}

/**
 * One scan queue for every policy and region; List* quotas are enforced per call by the rate limiter. Its name
 * is its own hash tag, so all its keys share one slot on Redis Cluster.
 */
export const SCAN_QUEUE = '{scan}';

/**
 * One untag queue per quota scope (account, region): a throttled region pauses only its own queue
 * (queue.rateLimit), never another region's. The account's hash tag keeps the queue's keys in one slot and
 * places all of an account's queues with its rate-limiter state.
 */
export function untagQueueName(account: string, region: string): string {
  return `untag-${accountTag(account)}-${region}`;
}

/**
 * The Redis key prefix of one member account: its scan and untag queues, rate-limiter keys, run ledger and
 * scan leases all live under it, so a throttled or broken account never shares a key with another.
 *
 * This is the only place account-scoped names are made. Rule for Redis Cluster: the account ID is the FIRST
 * `{...}` of every key of that account (`<prefix>.acct-{<id>}:...`), so all of one account's keys hash to one
 * slot (BullMQ's multi-key scripts stay legal) and accounts spread across the masters. Queue names may carry
 * their own hash tags (`{scan}`, `untag-{account}-region`) for the single-account case: Redis hashes only
 * the first `{...}` of a key, so under an account prefix the account's tag wins and the two compose. No other
 * part of a key may put a `{` before the prefix. A single-account deployment (no accounts file) keeps the
 * configured prefix unchanged.
 */
export function accountQueuePrefix(prefix: string, accountId: string): string {
  if (!/^\d{1,32}$/.test(accountId)) {
    // Braces or anything else would break the hash tag (and an account ID is digits).
    throw new TypeError(`account ID must be digits, got ${JSON.stringify(accountId.slice(0, 40))}`);
  }
  if (prefix.includes('{') || prefix.includes('}')) {
    throw new TypeError('queue prefix must not contain braces under an account: the account is the hash tag');
  }
  return `${prefix}.acct-{${accountId}}`;
}

/**
 * The queue of event coalescing windows of one deployment, under the account's hash tag (one slot for the
 * queue's keys, like an untag queue).
 */
export function eventWindowQueueName(account: string): string {
  return `events-${accountTag(account)}`;
}

/**
 * The hash tag of the event store (seen events, pending connections, windows, claims): one accept script takes
 * the keys of several scopes at once, so every key of the store shares one slot.
 */
export const EVENTS_TAG = '{events}';

/** The name of the custom backoff strategy workers register (exponential, full jitter, capped). */
export const BACKOFF_TYPE = 'jittered';

export interface RetentionOptions {
  attempts: number;
  completedRetentionHours: number;
  failedRetentionDays: number;
}

/** Options for untag jobs: attempts, our backoff, and retention (which is also the jobId dedup window). */
export function untagJobOptions(retention: RetentionOptions): JobsOptions {
  return {
    attempts: retention.attempts,
    backoff: { type: BACKOFF_TYPE },
    removeOnComplete: { age: Math.round(retention.completedRetentionHours * 3600) },
    removeOnFail: { age: Math.round(retention.failedRetentionDays * 86_400) },
  };
}

/** Scans are re-run by the next schedule, so they retry little and keep a shorter history. */
export function scanJobOptions(retention: RetentionOptions): JobsOptions {
  return {
    attempts: 3,
    backoff: { type: BACKOFF_TYPE },
    removeOnComplete: { age: Math.round(retention.completedRetentionHours * 3600), count: 1000 },
    removeOnFail: { age: Math.round(retention.failedRetentionDays * 86_400) },
  };
}

/** jobIds may not contain ':' and may not look like integers; this maps any ID to a safe one. */
export function safeRunId(id: string): string {
  const cleaned = id.replace(/[^A-Za-z0-9_-]/g, '-');
  return /^\d+$/.test(cleaned) ? `r-${cleaned}` : cleaned;
}
