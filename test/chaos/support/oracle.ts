// The judges of a chaos run: planned batches against the emulator's call log (lost, doubled, one parameter set per
// ClientToken), the final state against the policies (via src/emulator/verify.ts), and what tagwarden could see of
// each call (for comparing its metrics with the emulator's records).
import type { Job, Queue } from 'bullmq';
import type { CallRecord, EmulatorResource } from '../../../src/emulator/index.js';
import { checkState, expectedRemovals, type StateCheck } from '../../../src/emulator/verify.js';
import { codeLabel } from '../../../src/metrics/index.js';
import { isSystemTagKey } from '../../../src/model.js';
import type { CompiledPolicy } from '../../../src/policy/index.js';
import { UntagJobSchema } from '../../../src/queue/index.js';

/** The business parameters of one UnTagResources call, however the emulator recorded them. */
export interface UntagCall {
  seq: number;
  token: string | null;
  region: string;
  resourceIds: string[];
  tagKeys: string[];
  all: boolean;
  applied: boolean;
  removed: number;
  /** One string per distinct parameter set: region, sorted IDs, sorted keys or `*all*`. */
  canonical: string;
}

/** Reads `ResourceId` as a list (normalised record) or as `ResourceId.1..n` (raw record of a faulted call). */
function listParam(params: Record<string, unknown>, name: string): string[] {
  const value = params[name];
  if (Array.isArray(value)) return value.map(String);
  const numbered: Array<[number, string]> = [];
  for (const [key, v] of Object.entries(params)) {
    const m = new RegExp(`^${name}\\.(\\d+)$`).exec(key);
    if (m?.[1]) numbered.push([Number(m[1]), String(v)]);
  }
  return numbered.sort((a, b) => a[0] - b[0]).map(([, v]) => v);
}

/** Canonical parameters of a call or a batch. */
export function canonicalUntag(region: string, resourceIds: readonly string[], tagKeys: readonly string[], all: boolean): string {
  const keys = [...new Set(tagKeys.filter((k) => k !== ''))].sort();
  return JSON.stringify([region, [...resourceIds].sort(), all ? '*all*' : keys]);
}

/** An UnTagResources call record in canonical form. Faults drawn before validation leave raw params; both read. */
export function untagCall(rec: CallRecord): UntagCall {
  const p = rec.params;
  const resourceIds = listParam(p, 'ResourceId');
  const tagKeys = listParam(p, 'TagKey');
  const all = p['All'] === true || p['All'] === 'true';
  const region = typeof p['RegionId'] === 'string' ? p['RegionId'] : rec.region;
  const token = rec.clientToken ?? (typeof p['ClientToken'] === 'string' ? p['ClientToken'] : null);
  return {
    seq: rec.seq,
    token,
    region,
    resourceIds,
    tagKeys,
    all,
    applied: rec.applied,
    removed: rec.removed,
    canonical: canonicalUntag(region, resourceIds, all ? [] : tagKeys, all),
  };
}

/** A batch as planned and queued (one untag job), with the state its job ended in. */
export interface PlannedBatch {
  id: string;
  policy: string;
  runId: string;
  region: string;
  resourceIds: string[];
  tagKeys: string[];
  all: boolean;
  carried?: Record<string, string[]>;
  dryRun: boolean;
  state: string;
  failedReason?: string;
}

const JOB_STATES = ['completed', 'failed', 'waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;

/** Every job of the untag queues, as planned batches (jobs whose data is not a batch are left out). */
export async function plannedBatches(queues: Iterable<Queue>): Promise<PlannedBatch[]> {
  const out: PlannedBatch[] = [];
  for (const queue of queues) {
    for (const state of JOB_STATES) {
      const jobs: Job[] = await queue.getJobs([state], 0, -1);
      for (const job of jobs) {
        const parsed = UntagJobSchema.safeParse(job.data);
        if (!parsed.success || job.id === undefined) continue;
        const d = parsed.data;
        out.push({
          id: job.id,
          policy: d.policy,
          runId: d.runId,
          region: d.region,
          resourceIds: d.resourceIds,
          tagKeys: d.tagKeys,
          all: d.all,
          ...(d.carried ? { carried: d.carried } : {}),
          dryRun: d.dryRun,
          state,
          ...(job.failedReason ? { failedReason: job.failedReason } : {}),
        });
      }
    }
  }
  return out;
}

/** What a run did to the batches and tags, and every inconsistency found. */
export interface RunVerdict {
  /** Batches that had to call UnTagResources (not dry-run). */
  planned: number;
  /** Applied UnTagResources calls (changed state; replays and failures excluded). */
  applied: number;
  /** Planned batches not applied exactly once under their token, or whose job did not complete. */
  lost: string[];
  /**
   * Work done twice: a token applied more than once; an applied call under a token no batch planned; or two
   * batches of one policy covering the same (resource, key) pair (two calls would remove that tag).
   */
  doubled: string[];
  /** Tokens seen with more than one parameter set (including a set different from the batch's). */
  tokenConflicts: string[];
  /** Calls answered IdempotentParameterMismatch. */
  mismatches: number;
  /**
   * Tags removed twice: a (resource, key) covered by a second applied call of the same policy (the precise form of
   * "a second applied UnTagResources for the same pair"; two policies may both target a pair, and only one removes it).
   */
  removedTwice: string[];
  /**
   * The call log replayed on the state before, in the order the calls were applied: every applied call must have
   * removed exactly the tags the replay says (its `removed`), each only tags its batch targeted, and the replay must
   * end in the state the emulator holds: no change happened outside the recorded calls.
   */
  replay: string[];
  /** Final state against the policies: notRemoved and wronglyRemoved must both be empty. */
  state: StateCheck;
}

/** Judges a run: the call log of UnTagResources against the planned batches and the final state. */
export function judgeRun(input: {
  before: readonly EmulatorResource[];
  after: readonly EmulatorResource[];
  policies: readonly CompiledPolicy[];
  now: Date;
  calls: readonly CallRecord[];
  batches: readonly PlannedBatch[];
}): RunVerdict {
  const untags = input.calls.filter((c) => c.action === 'UnTagResources').map(untagCall);
  const enforced = input.batches.filter((b) => !b.dryRun);
  const byId = new Map(enforced.map((b) => [b.id, b]));

  const paramSets = new Map<string, Set<string>>();
  for (const b of enforced) paramSets.set(b.id, new Set([canonicalUntag(b.region, b.resourceIds, b.all ? [] : b.tagKeys, b.all)]));
  const appliedByToken = new Map<string, number>();
  const doubled: string[] = [];
  let applied = 0;
  for (const call of untags) {
    const token = call.token ?? '(none)';
    let set = paramSets.get(token);
    if (!set) paramSets.set(token, (set = new Set()));
    set.add(call.canonical);
    if (!call.applied) continue;
    applied += 1;
    appliedByToken.set(token, (appliedByToken.get(token) ?? 0) + 1);
    if (!byId.has(token)) doubled.push(`applied call #${call.seq} under token ${token}, which no batch planned`);
  }
  for (const [token, n] of appliedByToken) if (n > 1) doubled.push(`token ${token} applied ${n} times`);

  // Two batches of one policy must never cover the same (resource, key): that tag would be removed by two calls.
  const owner = new Map<string, PlannedBatch>();
  for (const b of enforced) {
    for (const id of b.resourceIds) {
      // A union-packed batch names keys some of its resources lack; `carried` says what each one loses.
      const keys = b.carried?.[id] ?? (b.all ? [] : b.tagKeys);
      for (const key of keys) {
        const pair = `${b.policy}\u0000${id}\u0000${key}`;
        const first = owner.get(pair);
        if (first !== undefined && first.id !== b.id) {
          doubled.push(`policy ${b.policy} planned ${id} ${key} twice: batch ${first.id} (run ${first.runId}) and batch ${b.id} (run ${b.runId})`);
        } else owner.set(pair, b);
      }
    }
  }

  const lost: string[] = [];
  for (const b of enforced) {
    const n = appliedByToken.get(b.id) ?? 0;
    if (b.state !== 'completed') lost.push(`batch ${b.id} ended ${b.state}${b.failedReason ? `: ${b.failedReason}` : ''}`);
    else if (n === 0) lost.push(`batch ${b.id} completed without an applied UnTagResources call`);
  }

  // Coverage of each pair by applied calls, per policy of the batch the token belongs to.
  const covered = new Map<string, number>();
  const removedTwice: string[] = [];
  for (const call of untags) {
    const batch = call.applied && call.token !== null ? byId.get(call.token) : undefined;
    if (!batch) continue;
    for (const id of call.resourceIds) {
      const carried = batch.carried?.[id];
      const keys = call.all ? (carried ?? []) : carried ? call.tagKeys.filter((k) => carried.includes(k)) : call.tagKeys;
      for (const key of keys) {
        const pair = `${batch.policy} ${id} ${key}`;
        const n = (covered.get(pair) ?? 0) + 1;
        covered.set(pair, n);
        if (n === 2) removedTwice.push(pair);
      }
    }
  }

  const replay = replayCalls(input.before, input.after, input.calls, byId);
  const tokenConflicts = [...paramSets].filter(([, s]) => s.size > 1).map(([token, s]) => `${token}: ${[...s].join(' | ')}`);
  const mismatches = input.calls.filter((c) => c.action === 'UnTagResources' && c.code === 'IdempotentParameterMismatch').length;
  const state = checkState(input.before, input.after, expectedRemovals(input.before, input.policies, input.now));
  return { planned: enforced.length, applied, lost, doubled, tokenConflicts, mismatches, removedTwice, replay, state };
}

/**
 * Replays the applied UnTagResources calls, in log order (the emulator applies a call and records it in the same
 * tick, so the log order is the order of application), on the state before the run.
 */
function replayCalls(
  before: readonly EmulatorResource[],
  after: readonly EmulatorResource[],
  calls: readonly CallRecord[],
  batches: ReadonlyMap<string, PlannedBatch>,
): string[] {
  const problems: string[] = [];
  const tags = new Map(before.map((r) => [r.id, new Map(Object.entries(r.tags))]));
  for (const rec of calls) {
    if (rec.action !== 'UnTagResources' || !rec.applied) continue;
    const call = untagCall(rec);
    const batch = call.token === null ? undefined : batches.get(call.token);
    let removed = 0;
    for (const id of call.resourceIds) {
      const current = tags.get(id);
      if (!current) continue;
      const targeted = batch ? new Set(batch.carried?.[id] ?? (batch.all ? [] : batch.tagKeys)) : undefined;
      for (const key of [...current.keys()]) {
        const hit = call.all ? !isSystemTagKey(key) : call.tagKeys.includes(key);
        if (!hit) continue;
        current.delete(key);
        removed += 1;
        if (targeted && !targeted.has(key)) problems.push(`call #${rec.seq} removed ${id} ${key}, which its batch did not target`);
      }
    }
    if (removed !== rec.removed) problems.push(`call #${rec.seq} recorded ${rec.removed} tags removed, the replay removed ${removed}`);
  }
  for (const r of after) {
    const replayed = tags.get(r.id);
    const same = replayed !== undefined && replayed.size === Object.keys(r.tags).length && Object.entries(r.tags).every(([k, v]) => replayed.get(k) === v);
    if (!same) problems.push(`${r.id}: the state differs from the replay of the call log`);
  }
  return problems;
}

/**
 * The code tagwarden's client sees for a call the emulator recorded: a dropped socket (reset, apply-then-drop)
 * is a NetworkError whatever the emulator did; an HTML 502 fails JSON parsing (BadResponse); anything else is the
 * API code, bounded as the metrics bound it.
 */
export function observedCode(rec: CallRecord): string {
  if (rec.status === 0) return 'NetworkError';
  if (rec.code === 'Fault.Html502') return 'BadResponse';
  return codeLabel(rec.code);
}

/** Counts by key. */
export function countBy<T>(items: Iterable<T>, key: (item: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) {
    const k = key(item);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}
