// The run ledger in Redis: which batches a run planned, which ended, and per-policy counters.
// Counting happens once per batch even when a crashed worker's job is processed again.
import type { Redis } from 'ioredis';

export interface ScanSummary {
  scanned: number;
  violating: number;
  tagsPlanned: number;
  batchIds: readonly string[];
}

export interface BatchEnd {
  outcome: 'succeeded' | 'failed' | 'dry_run' | 'not_found';
  /** Tags removed (0 for failed, dry-run and not-found batches). */
  removed: number;
  /** API calls the batch made, follow-ups included. */
  calls: number;
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
  calls: number;
  notFound: number;
  failed: number;
  dryRun: number;
  halted: number;
}

const FIELDS: Array<keyof Omit<PolicyRunSummary, 'policy'>> = [
  'scans', 'scansFailed', 'scanned', 'violating', 'tagsPlanned', 'batches', 'batchesEnded',
  'removed', 'calls', 'notFound', 'failed', 'dryRun', 'halted',
];

// KEYS: ended set, counters hash. ARGV: batchId, then field/increment pairs. Increments only on first end.
const END_BATCH = `
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
for i = 2, #ARGV, 2 do redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[1], 604800)
redis.call('EXPIRE', KEYS[2], 604800)
return 1`;

// KEYS: batches set, counters hash. ARGV: policy, scanned, violating, tagsPlanned, then batch IDs.
// A re-run of the same scan (after a crash) adds only batches not yet recorded.
const RECORD_SCAN = `
local added = 0
for i = 5, #ARGV do added = added + redis.call('SADD', KEYS[1], ARGV[i]) end
local p = ARGV[1]
redis.call('HINCRBY', KEYS[2], p .. '|scans', 1)
redis.call('HINCRBY', KEYS[2], p .. '|scanned', ARGV[2])
redis.call('HINCRBY', KEYS[2], p .. '|violating', ARGV[3])
redis.call('HINCRBY', KEYS[2], p .. '|tagsPlanned', ARGV[4])
redis.call('HINCRBY', KEYS[2], p .. '|batches', added)
redis.call('EXPIRE', KEYS[1], 604800)
redis.call('EXPIRE', KEYS[2], 604800)
return added`;

/** Bookkeeping for runs (`run --once`, `/v1/policies`). Keys expire after 7 days. */
export function createLedger(redis: Redis, prefix: string) {
  const key = (runId: string, part: string) => `${prefix}:run:${runId}:${part}`;
  const statusKey = `${prefix}:policy-status`;

  return {
    /** Records a finished scan and the batches it enqueued (idempotent per batch ID). */
    async recordScan(runId: string, policy: string, summary: ScanSummary): Promise<number> {
      const args = [policy, summary.scanned, summary.violating, summary.tagsPlanned, ...summary.batchIds].map(String);
      const added = await redis.eval(RECORD_SCAN, 2, key(runId, 'batches'), key(runId, 'counters'), ...args);
      return Number(added);
    },

    async recordScanFailure(runId: string, policy: string, halted: boolean): Promise<void> {
      await redis
        .multi()
        .hincrby(key(runId, 'counters'), `${policy}|scans`, 1)
        .hincrby(key(runId, 'counters'), `${policy}|${halted ? 'halted' : 'scansFailed'}`, 1)
        .expire(key(runId, 'counters'), 604_800)
        .exec();
    },

    /** Records the end of a batch once; returns false when it had already been recorded. */
    async recordBatchEnd(runId: string, policy: string, batchId: string, end: BatchEnd): Promise<boolean> {
      const increments: Array<[string, number]> = [
        ['batchesEnded', 1],
        ['removed', end.removed],
        ['calls', end.calls],
        ['notFound', end.notFound],
        ['failed', end.outcome === 'failed' ? 1 : 0],
        ['dryRun', end.outcome === 'dry_run' ? 1 : 0],
      ];
      const args = [batchId, ...increments.flatMap(([field, n]) => [`${policy}|${field}`, String(n)])];
      const first = await redis.eval(END_BATCH, 2, key(runId, 'ended'), key(runId, 'counters'), ...args);
      return Number(first) === 1;
    },

    /** Batches planned by the run that have not ended yet. */
    async pending(runId: string): Promise<number> {
      const [planned, ended] = await Promise.all([redis.scard(key(runId, 'batches')), redis.scard(key(runId, 'ended'))]);
      return Math.max(0, planned - ended);
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

    /** Latest status per policy (last run, halted, error), shared by every replica. */
    async setPolicyStatus(policy: string, status: Record<string, unknown>): Promise<void> {
      await redis.hset(statusKey, policy, JSON.stringify(status));
    },

    async policyStatuses(): Promise<Record<string, Record<string, unknown>>> {
      const raw = await redis.hgetall(statusKey);
      return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, JSON.parse(v) as Record<string, unknown>]));
    },
  };
}

export type Ledger = ReturnType<typeof createLedger>;
