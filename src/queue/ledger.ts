// The run ledger in Redis: which batches a run planned, which ended, and per-policy counters.
// Counting happens once per batch even when a crashed worker's job is processed again.
import { runTag } from './names.js';
import { cachedScript, type RedisClient } from './redis.js';

export interface ScanSummary {
  scanned: number;
  violating: number;
  tagsPlanned: number;
  batchIds: readonly string[];
  /**
   * The key prefix of the queue the batches went to (`Queue.toKey('')`), so that whether a batch still exists
   * can be asked later by whoever checks the run (see livePending).
   */
  queueKey?: string;
}

/** The counts of a scan that enqueued nothing (halted, failed for good, skipped). */
export interface ScanCounts {
  scanned: number;
  violating: number;
  tagsPlanned: number;
}

export interface BatchEnd {
  outcome: 'succeeded' | 'failed' | 'dry_run' | 'not_found';
  /** Tags removed (0 for failed, dry-run and not-found batches). */
  removed: number;
  /** UnTagResources calls the batch made (follow-ups for IDs still there included), as `plan` counts calls. */
  calls: number;
  /** Read calls the batch made (ListTagResources before an All=true call, GetVpcPeerConnectionAttribute lookups). */
  reads?: number;
  /** Resources found deleted. */
  notFound: number;
}

export interface PolicyRunSummary {
  policy: string;
  scans: number;
  scansFailed: number;
  scanned: number;
  violating: number;
  tagsPlanned: number;
  batches: number;
  batchesEnded: number;
  removed: number;
  /** UnTagResources calls made by the run's batches. */
  calls: number;
  /** Read calls made by the run's batches (ListTagResources, GetVpcPeerConnectionAttribute); scans' reads apart. */
  reads: number;
  notFound: number;
  failed: number;
  dryRun: number;
  halted: number;
  /** Scans skipped because the previous run of the policy in that region still had batches pending. */
  skipped: number;
}

const FIELDS: Array<keyof Omit<PolicyRunSummary, 'policy'>> = [
  'scans', 'scansFailed', 'scanned', 'violating', 'tagsPlanned', 'batches', 'batchesEnded',
  'removed', 'calls', 'reads', 'notFound', 'failed', 'dryRun', 'halted', 'skipped',
];

// KEYS: ended hash (batchId -> outcome), counters hash. ARGV: batchId, policy, outcome, removed, calls, notFound, reads.
// A batch is counted once; a batch that had failed and then ends otherwise (retried by hand) replaces its
// failure. Returns 1 when the end was counted, 0 when it had been already.
const END_BATCH = `
local prev = redis.call('HGET', KEYS[1], ARGV[1])
local outcome = ARGV[3]
if prev and (prev ~= 'failed' or outcome == 'failed') then return 0 end
local p = ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], outcome)
if prev then
  redis.call('HINCRBY', KEYS[2], p .. '|failed', -1)
else
  redis.call('HINCRBY', KEYS[2], p .. '|batchesEnded', 1)
end
redis.call('HINCRBY', KEYS[2], p .. '|removed', ARGV[4])
redis.call('HINCRBY', KEYS[2], p .. '|calls', ARGV[5])
redis.call('HINCRBY', KEYS[2], p .. '|reads', ARGV[7] or 0)
redis.call('HINCRBY', KEYS[2], p .. '|notFound', ARGV[6])
if outcome == 'failed' then redis.call('HINCRBY', KEYS[2], p .. '|failed', 1) end
if outcome == 'dry_run' then redis.call('HINCRBY', KEYS[2], p .. '|dryRun', 1) end
redis.call('EXPIRE', KEYS[1], 604800)
redis.call('EXPIRE', KEYS[2], 604800)
return 1`;

// KEYS: batches set, counters hash, scans set, the (policy, region)'s batches set, queues hash. ARGV: policy,
// region, scanned, violating, tagsPlanned, queue key prefix, then batch IDs. A re-run of the same scan (after a
// crash) adds only batches not yet recorded and counts once.
const RECORD_SCAN = `
local added = 0
for i = 7, #ARGV do
  added = added + redis.call('SADD', KEYS[1], ARGV[i])
  redis.call('SADD', KEYS[4], ARGV[i])
end
local p = ARGV[1]
redis.call('HSET', KEYS[5], p .. '|' .. ARGV[2], ARGV[6])
redis.call('EXPIRE', KEYS[1], 604800)
redis.call('EXPIRE', KEYS[4], 604800)
redis.call('EXPIRE', KEYS[5], 604800)
if redis.call('SADD', KEYS[3], p .. '|' .. ARGV[2]) == 0 then
  redis.call('HINCRBY', KEYS[2], p .. '|batches', added)
  return added
end
redis.call('EXPIRE', KEYS[3], 604800)
redis.call('HINCRBY', KEYS[2], p .. '|scans', 1)
redis.call('HINCRBY', KEYS[2], p .. '|scanned', ARGV[3])
redis.call('HINCRBY', KEYS[2], p .. '|violating', ARGV[4])
redis.call('HINCRBY', KEYS[2], p .. '|tagsPlanned', ARGV[5])
redis.call('HINCRBY', KEYS[2], p .. '|batches', added)
redis.call('EXPIRE', KEYS[1], 604800)
redis.call('EXPIRE', KEYS[2], 604800)
return added`;

// KEYS: counters hash, scans set. ARGV: policy, region, why, scanned, violating, tagsPlanned. Counted once per
// (policy, region) of the run, so a scan re-run after a crash does not count twice.
const RECORD_EMPTY = `
local p = ARGV[1]
if redis.call('SADD', KEYS[2], p .. '|' .. ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], p .. '|scans', 1)
redis.call('HINCRBY', KEYS[1], p .. '|' .. ARGV[3], 1)
redis.call('HINCRBY', KEYS[1], p .. '|scanned', ARGV[4])
redis.call('HINCRBY', KEYS[1], p .. '|violating', ARGV[5])
redis.call('HINCRBY', KEYS[1], p .. '|tagsPlanned', ARGV[6])
redis.call('EXPIRE', KEYS[1], 604800)
redis.call('EXPIRE', KEYS[2], 604800)
return 1`;

// KEYS: the scan log (a list). ARGV: the header. Opens the log only when none is there; returns 1 when opened.
const OPEN_LOG = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], 604800)
return 1`;

// KEYS: the scan log. ARGV: the page's index, the page's entry, the header's runId. Appends page n only as the
// log's (n+1)th entry of that run, so a page is recorded once whoever retries it; returns 1 when appended.
const APPEND_LOG = `
if redis.call('LLEN', KEYS[1]) ~= tonumber(ARGV[1]) + 1 then return 0 end
local header = cjson.decode(redis.call('LINDEX', KEYS[1], 0))
if header['runId'] ~= ARGV[3] then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], 604800)
return 1`;

const endBatchScript = cachedScript(END_BATCH);
const openLogScript = cachedScript(OPEN_LOG);
const appendLogScript = cachedScript(APPEND_LOG);
const recordEmptyScript = cachedScript(RECORD_EMPTY);
const recordScanScript = cachedScript(RECORD_SCAN);

/**
 * Bookkeeping for runs (`run --once`, `/v1/policies`). Keys expire after 7 days. A run's keys share its hash tag
 * (`prefix:run:{runId}:part`), so each script touches one Redis Cluster slot.
 */
export function createLedger(redis: RedisClient, prefix: string) {
  const key = (runId: string, part: string) => `${prefix}:run:${runTag(runId)}:${part}`;
  const statusKey = `${prefix}:policy-status`;
  // One saved plan per (policy, region), not per run: any later scan finds an interrupted one and finishes it.
  const planKey = (policy: string, region: string) => `${prefix}:scan-plan:${policy}|${region}`;
  // One scan log per (policy, region), for the same reason: the header, then one entry per page discovered.
  const logKey = (policy: string, region: string) => `${prefix}:scan-log:${policy}|${region}`;

  return {
    /** Records a finished scan and the batches it enqueued (idempotent per batch ID). */
    async recordScan(runId: string, policy: string, region: string, summary: ScanSummary): Promise<number> {
      const args = [policy, region, summary.scanned, summary.violating, summary.tagsPlanned, summary.queueKey ?? '', ...summary.batchIds].map(String);
      const keys = [key(runId, 'batches'), key(runId, 'counters'), key(runId, 'scans'), key(runId, `batches:${policy}|${region}`), key(runId, 'queues')];
      const added = await recordScanScript(redis, keys, args);
      return Number(added);
    },

    /**
     * Records a scan that enqueued nothing: failed for good, halted by its cap, or skipped; once per (policy,
     * region) of the run. A halted scan passes its counts, so the run shows what it scanned and would remove.
     */
    async recordScanWithoutBatches(
      runId: string,
      policy: string,
      region: string,
      why: 'scansFailed' | 'halted' | 'skipped',
      counts: ScanCounts = { scanned: 0, violating: 0, tagsPlanned: 0 },
    ): Promise<void> {
      const args = [policy, region, why, counts.scanned, counts.violating, counts.tagsPlanned].map(String);
      await recordEmptyScript(redis, [key(runId, 'counters'), key(runId, 'scans')], args);
    },

    /** True when the run has recorded its scan of this policy and region (with or without batches). */
    async scanRecorded(runId: string, policy: string, region: string): Promise<boolean> {
      return (await redis.sismember(key(runId, 'scans'), `${policy}|${region}`)) === 1;
    },

    /**
     * Records the end of a batch once; returns false when it had been recorded already (a job processed again
     * after a lost lock), so callers count metrics only on true. A failed batch that later ends otherwise is
     * re-recorded.
     */
    async recordBatchEnd(runId: string, policy: string, batchId: string, end: BatchEnd): Promise<boolean> {
      const args = [batchId, policy, end.outcome, end.removed, end.calls, end.notFound, end.reads ?? 0].map(String);
      const counted = await endBatchScript(redis, [key(runId, 'ended'), key(runId, 'counters')], args);
      return Number(counted) === 1;
    },

    /** Batches planned by the run whose end is not recorded yet (see livePending for the exact count). */
    async pending(runId: string): Promise<number> {
      const [planned, ended] = await Promise.all([redis.scard(key(runId, 'batches')), redis.hlen(key(runId, 'ended'))]);
      return Math.max(0, planned - ended);
    },

    /**
     * Batches of the run (of one policy and region, with `only`) that can still end: recorded as planned, not
     * recorded as ended, and still stored in their queue in a state other than failed or completed. A batch
     * that was removed, failed for good or was invalid (its job failed before any bookkeeping) counts as
     * ended and is recorded so (outcome failed), so a run whose batches are gone never blocks the next scan.
     */
    async livePending(runId: string, only?: { policy: string; region: string }): Promise<number> {
      const scopes = only ? [`${only.policy}|${only.region}`] : await redis.smembers(key(runId, 'scans'));
      let live = 0;
      for (const scope of scopes) {
        const [queueKey, ids] = await Promise.all([redis.hget(key(runId, 'queues'), scope), redis.smembers(key(runId, `batches:${scope}`))]);
        if (ids.length === 0) continue;
        const ended = await redis.hmget(key(runId, 'ended'), ...ids);
        const open = ids.filter((_, i) => ended[i] === null);
        if (open.length === 0) continue;
        if (!queueKey) {
          live += open.length; // recorded without its queue: cannot tell, so count it as pending
          continue;
        }
        for (let i = 0; i < open.length; i += 500) {
          const chunk = open.slice(i, i + 500);
          const pipe = redis.pipeline();
          for (const id of chunk) pipe.exists(`${queueKey}${id}`).zscore(`${queueKey}failed`, id).zscore(`${queueKey}completed`, id);
          const replies = (await pipe.exec()) ?? [];
          for (let j = 0; j < chunk.length; j += 1) {
            const [exists, failed, completed] = [replies[3 * j]?.[1], replies[3 * j + 1]?.[1], replies[3 * j + 2]?.[1]];
            if (Number(exists) === 1 && failed === null && completed === null) {
              live += 1;
              continue;
            }
            if (completed !== null && completed !== undefined && Number(exists) === 1) continue;
            const policy = scope.slice(0, scope.lastIndexOf('|'));
            await this.recordBatchEnd(runId, policy, chunk[j] ?? '', { outcome: 'failed', removed: 0, calls: 0, notFound: 0 });
          }
        }
      }
      return live;
    },

    async summary(runId: string): Promise<PolicyRunSummary[]> {
      const raw = await redis.hgetall(key(runId, 'counters'));
      const byPolicy = new Map<string, PolicyRunSummary>();
      for (const [field, value] of Object.entries(raw)) {
        const at = field.lastIndexOf('|');
        const policy = field.slice(0, at);
        const name = field.slice(at + 1) as keyof Omit<PolicyRunSummary, 'policy'>;
        if (!FIELDS.includes(name)) continue;
        let row = byPolicy.get(policy);
        if (!row) {
          row = { policy, ...(Object.fromEntries(FIELDS.map((f) => [f, 0])) as Omit<PolicyRunSummary, 'policy'>) };
          byPolicy.set(policy, row);
        }
        row[name] = Number(value);
      }
      return [...byPolicy.values()].sort((a, b) => a.policy.localeCompare(b.policy));
    },

    /** Latest status of a policy in a region (last run, halted), shared by every replica. */
    async setPolicyStatus(policy: string, region: string, status: Record<string, unknown>): Promise<void> {
      await redis.hset(statusKey, `${policy}|${region}`, JSON.stringify(status));
    },

    /**
     * Keeps a scan's planned jobs until the scan is recorded: a scan re-run after a crash mid-enqueue
     * enqueues exactly these again (stored jobIds are skipped) instead of planning anew against a partly
     * cleaned estate, which would cover the same tags with other batch IDs.
     */
    async savePlan<P extends { runId: string }>(policy: string, region: string, plan: P): Promise<void> {
      await redis.set(planKey(policy, region), JSON.stringify(plan), 'EX', 604_800);
    },

    /** The saved plan of an unfinished scan of this policy and region, whichever run it belongs to. */
    async loadPlan(policy: string, region: string): Promise<{ runId: string } | undefined> {
      const raw = await redis.get(planKey(policy, region));
      return raw === null ? undefined : (JSON.parse(raw) as { runId: string });
    },

    async deletePlan(policy: string, region: string): Promise<void> {
      await redis.unlink(planKey(policy, region));
    },

    /**
     * Opens the append-only log of a scan (its header: run, policy, time, packing), unless a log is there:
     * returns false then, and the caller reads and finishes that one first.
     */
    async openScanLog(policy: string, region: string, header: { runId: string }): Promise<boolean> {
      return Number(await openLogScript(redis, [logKey(policy, region)], [JSON.stringify(header)])) === 1;
    },

    /**
     * Appends page `index` (from 0) of the scan `runId` to its log: once, in order. Returns false when the
     * log already holds that page or is not that run's (nothing is written then).
     */
    async appendScanLog(policy: string, region: string, runId: string, index: number, entry: unknown): Promise<boolean> {
      return Number(await appendLogScript(redis, [logKey(policy, region)], [String(index), JSON.stringify(entry), runId])) === 1;
    },

    /** The log of an unfinished scan of this policy and region: its header and pages in order. */
    async readScanLog(policy: string, region: string): Promise<{ header: { runId: string } & Record<string, unknown>; pages: unknown[] } | undefined> {
      const key = logKey(policy, region);
      const length = await redis.llen(key);
      if (length === 0) return undefined;
      const raw: string[] = [];
      for (let i = 0; i < length; i += 1000) raw.push(...(await redis.lrange(key, i, Math.min(length, i + 1000) - 1)));
      const [header, ...pages] = raw.map((r) => JSON.parse(r) as unknown);
      return { header: header as { runId: string } & Record<string, unknown>, pages };
    },

    async deleteScanLog(policy: string, region: string): Promise<void> {
      await redis.unlink(logKey(policy, region));
    },

    /** The status of one policy in one region, if it ever ran. */
    async regionStatus(policy: string, region: string): Promise<Record<string, unknown> | undefined> {
      const raw = await redis.hget(statusKey, `${policy}|${region}`);
      return raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
    },

    /** Statuses by policy, then region. */
    async policyStatuses(): Promise<Record<string, Record<string, Record<string, unknown>>>> {
      const raw = await redis.hgetall(statusKey);
      const out: Record<string, Record<string, Record<string, unknown>>> = {};
      for (const [field, value] of Object.entries(raw)) {
        const at = field.lastIndexOf('|');
        (out[field.slice(0, at)] ??= {})[field.slice(at + 1)] = JSON.parse(value) as Record<string, unknown>;
      }
      return out;
    },
  };
}

export type Ledger = ReturnType<typeof createLedger>;
