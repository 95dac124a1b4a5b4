// The scan lease: at most one scan of a (policy, region) runs at a time, across every replica and entry point
// (schedule, API, `run --once`). A lease in Redis, renewed while the scan runs, held by one run ID.
import { cachedScript, type RedisClient } from './redis.js';

/** Who holds a scan lease: the run and the scan job. */
export interface LeaseHolder {
  runId: string;
  jobId: string;
}

// KEYS: lease. ARGV: holder JSON, runId, ttl ms. Takes a free lease, or one this run already holds (a scan job
// re-run after its worker died keeps its run ID and takes over). Returns '' when taken, else the holder JSON.
const ACQUIRE = `
local held = redis.call('GET', KEYS[1])
if held then
  local ok, holder = pcall(cjson.decode, held)
  if not ok or type(holder) ~= 'table' or holder.runId ~= ARGV[2] then return held end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return ''`;

// KEYS: lease. ARGV: runId, ttl ms (0 = release). Renews or releases only a lease this run holds.
const RENEW = `
local held = redis.call('GET', KEYS[1])
if not held then return 0 end
local ok, holder = pcall(cjson.decode, held)
if not ok or type(holder) ~= 'table' or holder.runId ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`;

const acquireScript = cachedScript(ACQUIRE);
const renewScript = cachedScript(RENEW);

export interface ScanLease {
  /** Takes the lease for `holder`; returns undefined when taken, else who holds it. */
  acquire(policy: string, region: string, holder: LeaseHolder, ttlMs: number): Promise<LeaseHolder | undefined>;
  /** Extends a lease this run holds; false when it is no longer ours (expired and taken, or gone). */
  renew(policy: string, region: string, runId: string, ttlMs: number): Promise<boolean>;
  release(policy: string, region: string, runId: string): Promise<void>;
  /** The current holder, if any. */
  holder(policy: string, region: string): Promise<LeaseHolder | undefined>;
}

function parse(raw: string): LeaseHolder {
  try {
    const value = JSON.parse(raw) as Partial<LeaseHolder>;
    return { runId: String(value.runId ?? ''), jobId: String(value.jobId ?? '') };
  } catch {
    return { runId: '', jobId: '' };
  }
}

/** Scan leases under `prefix:scan-lease:`. */
export function createScanLease(redis: RedisClient, prefix: string): ScanLease {
  const key = (policy: string, region: string) => `${prefix}:scan-lease:${policy}|${region}`;
  return {
    async acquire(policy, region, holder, ttlMs) {
      const held = String(await acquireScript(redis, [key(policy, region)], [JSON.stringify(holder), holder.runId, String(Math.max(1, Math.round(ttlMs)))]));
      return held === '' ? undefined : parse(held);
    },
    async renew(policy, region, runId, ttlMs) {
      return Number(await renewScript(redis, [key(policy, region)], [runId, String(Math.max(1, Math.round(ttlMs)))])) === 1;
    },
    async release(policy, region, runId) {
      await renewScript(redis, [key(policy, region)], [runId, '0']);
    },
    async holder(policy, region) {
      const raw = await redis.get(key(policy, region));
      return raw === null ? undefined : parse(raw);
    },
  };
}
