// The untag processor: one job = one UnTagResources call (plus follow-ups when resources were deleted).
import { UnrecoverableError, Worker, type Job, type Queue } from 'bullmq';
import { CloudError } from '../cloud/index.js';
import type { CloudApi, CloudFailure } from '../cloud/types.js';
import { LEAVING_STATUSES, isSystemTagKey } from '../model.js';
import { audit, type Logger, type ResourceOutcome } from '../logging/index.js';
import { codeLabel, type Metrics } from '../metrics/index.js';
import { derivedToken, splitIntoCalls } from '../planner/index.js';
import { UntagJobSchema, describeIssues, type Ledger, type UntagJob } from '../queue/index.js';
import { actionFor } from './failures.js';

export interface UntagDeps {
  cloud: CloudApi;
  classify(err: unknown): CloudFailure;
  metrics: Metrics;
  ledger: Ledger;
  logger: Logger;
  /** Force every job into dry-run (TAGWARDEN_DRY_RUN). */
  dryRun: boolean;
  /** The region queue, to pause it for everyone after a throttling answer. */
  queueFor(region: string): Queue;
  /** Least pause of a region queue after a throttling answer (the server's Retry-After wins when longer). */
  throttleDelayMs: number;
  /** Clock for the event-to-removal histogram (default Date). */
  now?(): Date;
}

type Resources = Record<string, { outcome: ResourceOutcome; keys: string[] }>;

/** What a completed untag job returns (kept by BullMQ, shown by `jobs show` and GET /v1/jobs/{id}). */
export interface UntagResult {
  outcome: 'succeeded' | 'dry_run' | 'not_found';
  removed: number;
  /** UnTagResources calls. */
  calls: number;
  /** Read calls (ListTagResources, GetVpcPeerConnectionAttribute). */
  reads: number;
  requestIds: string[];
  resources: Resources;
}

/** Counts the calls one attempt makes (UnTagResources apart from reads), and counts failed UnTagResources calls by code. */
class Attempt {
  calls = 0;
  reads = 0;
  readonly requestIds: string[] = [];
  constructor(
    private readonly batch: UntagJob,
    private readonly deps: UntagDeps,
  ) {}

  /** One UnTagResources call: the batch's keys (or all), or the explicit `keys` given. */
  async untag(resourceIds: string[], clientToken: string, keys?: string[]): Promise<void> {
    const { batch, deps } = this;
    this.calls += 1;
    const what = keys ? { tagKeys: keys, all: false } : { tagKeys: batch.tagKeys, all: batch.all };
    try {
      const { requestId } = await deps.cloud.untagResources({ region: batch.region, resourceIds, ...what, clientToken });
      this.requestIds.push(requestId);
    } catch (err) {
      const code = codeLabel(deps.classify(err).code);
      deps.metrics.untagFailures.inc({ policy: batch.source === 'api' ? 'api' : deps.metrics.policyLabel(batch.policy), region: batch.region, code });
      throw err;
    }
  }

  /**
   * The IDs that still exist in the batch's region, asked one by one (GetVpcPeerConnectionAttribute answers per
   * ID). Get is central: it also answers for an ID of another region, and for a connection being deleted;
   * neither can be untagged here, so both count as gone (else the batch would retry until it fails).
   */
  async existing(ids: string[]): Promise<string[]> {
    const { batch, deps } = this;
    this.reads += ids.length;
    const found = await Promise.all(ids.map((id) => deps.cloud.getPeerConnection(batch.region, id)));
    return ids.filter((_, i) => {
      const r = found[i];
      return r !== null && r !== undefined && r.region === batch.region && !LEAVING_STATUSES.has(r.attributes.status ?? '');
    });
  }

  /**
   * The keys the given resources (at most 20) carry: only `keys` when given, else all of them.
   * With keys, one query per key (at most 20 rows: one page, no NextToken), so tags changed by another batch
   * meanwhile cannot shift a page. Without keys the rows are paged; a failed later page restarts the read.
   */
  async readTags(ids: string[], keys?: readonly string[]): Promise<Map<string, string[]>> {
    const { batch, deps } = this;
    const read = async (selector: { tagKeys?: string[] }) => {
      const tags = new Map<string, string[]>(ids.map((id) => [id, []]));
      let pages = 0;
      this.reads += 1;
      for await (const page of deps.cloud.listTagResources(batch.region, { resourceIds: ids, ...selector })) {
        if (++pages > 1) this.reads += 1;
        for (const row of page.items) tags.get(row.resourceId)?.push(row.tagKey);
      }
      return { tags, pages };
    };
    return (async () => {
      if (keys) {
        const tags = new Map<string, string[]>(ids.map((id) => [id, []]));
        for (const key of keys) {
          for (const [id, found] of (await read({ tagKeys: [key] })).tags) tags.get(id)?.push(...found);
        }
        return tags;
      }
      for (let attempt = 1; ; attempt += 1) {
        try {
          return (await read({})).tags;
        } catch (err) {
          if (attempt >= READ_RESTARTS || deps.classify(err).kind === 'not-found') throw err;
        }
      }
    })();
  }
}

/**
 * A failure that may mean some resource of the call is gone or being deleted: unknown IDs, or (one plausible
 * answer for a Deleting/Deleted connection) IncorrectStatus.VpcPeer. The batch then asks which IDs remain.
 */
function resourceGoneOrLeaving(failure: CloudFailure): boolean {
  return failure.kind === 'not-found' || failure.code === 'IncorrectStatus.VpcPeer';
}

/** How often a paged tag read starts over after a later page failed (its token may have gone stale). */
const READ_RESTARTS = 3;

/**
 * The keys each resource carries among those the batch removes (absent: the resource was deleted).
 * Scan batches know it from the scan. Work from other systems reads it once, before the first call, and keeps
 * it in the job, so every retry sends the same call and counts and the audit stay exact.
 */
async function carriedKeys(job: Job, batch: UntagJob, attempt: Attempt, deps: UntagDeps): Promise<Map<string, string[]>> {
  if (batch.carried) return new Map(Object.entries(batch.carried).map(([id, keys]) => [id, [...keys]]));
  if (batch.source !== 'api') return new Map(batch.resourceIds.map((id) => [id, [...batch.tagKeys]]));
  let ids = batch.resourceIds;
  let tags: Map<string, string[]>;
  const keys = batch.all ? undefined : batch.tagKeys;
  try {
    tags = await attempt.readTags(ids, keys);
  } catch (err) {
    if (!resourceGoneOrLeaving(deps.classify(err))) throw err;
    ids = await attempt.existing(ids);
    tags = ids.length > 0 ? await attempt.readTags(ids, keys) : new Map();
  }
  const wanted = new Set(batch.tagKeys);
  const carried: Record<string, string[]> = {};
  for (const [id, keys] of tags) carried[id] = keys.filter((k) => (batch.all ? !isSystemTagKey(k) : wanted.has(k))).sort();
  await job.updateData({ ...batch, carried });
  return new Map(Object.entries(carried));
}

/**
 * All=true removes whatever a resource carries when the call lands, and a key added since the scan (a kept
 * one, say) would go too. So an all=true batch from a scan reads the tags first (once; kept in the job) and,
 * when a resource gained a key the scan did not see, removes exactly the planned keys instead.
 * Returns the explicit key list to use, or undefined when All=true is still exact.
 *
 * Work from other systems (`source: 'api'`) asked for All=true itself: it is sent as All=true on every attempt.
 * Its `carried` (read before the first call, for counts and the audit) is stored in the job after that first
 * attempt and must not turn a retry into a different call under the same batch.
 */
async function explicitKeysForAll(job: Job, batch: UntagJob, targets: string[], attempt: Attempt): Promise<string[] | undefined> {
  if (!batch.all || !batch.carried || batch.source === 'api') return undefined;
  let observed = batch.observed;
  if (!observed) {
    const tags = await attempt.readTags(targets);
    observed = Object.fromEntries([...tags].map(([id, keys]) => [id, keys.filter((k) => !isSystemTagKey(k)).sort()]));
    await job.updateData({ ...batch, observed });
  }
  const gained = targets.some((id) => (observed[id] ?? []).some((k) => !(batch.carried?.[id] ?? []).includes(k)));
  if (!gained) return undefined;
  return [...new Set(targets.flatMap((id) => batch.carried?.[id] ?? []))].sort();
}

/** Creates the processor for the untag queues. */
export function createUntagProcessor(deps: UntagDeps) {
  return async function processUntag(job: Job): Promise<UntagResult> {
    const parsed = UntagJobSchema.safeParse(job.data);
    if (!parsed.success) {
      throw new UnrecoverableError(
        `invalid untag job payload: ${describeIssues(parsed.error).join('; ')}. Fix the producer; the schema is schemas/jobs.schema.json`,
      );
    }
    const batch = parsed.data;
    if (job.id !== undefined && job.id !== batch.batchId) {
      throw new UnrecoverableError(`jobId ${job.id} differs from batchId ${batch.batchId}: add the job with opts.jobId = batchId`);
    }
    // Work from other systems is labelled `api` whatever policy name the producer chose: label values stay bounded.
    // The policy label only names a policy this process loaded or scanned: a producer cannot mint label values.
    const labels = { policy: batch.source === 'api' ? 'api' : deps.metrics.policyLabel(batch.policy), region: batch.region };
    const log = deps.logger.child({ jobId: job.id, batchId: batch.batchId, ...labels });
    const attemptNo = job.attemptsMade + 1;
    const attempt = new Attempt(batch, deps);
    const auditBase = {
      ...labels,
      batchId: batch.batchId,
      clientToken: batch.batchId,
      resourceIds: batch.resourceIds,
      tagKeys: batch.tagKeys,
      all: batch.all,
      attempt: attemptNo,
    };

    const finish = async (outcome: UntagResult['outcome'] | 'failed', resources: Resources, removed: number, reason?: string) => {
      const notFound = Object.values(resources).filter((r) => r.outcome === 'not_found').length;
      const first = await deps.ledger.recordBatchEnd(batch.runId, batch.policy, batch.batchId, { outcome, removed, calls: attempt.calls, reads: attempt.reads, notFound });
      // A job processed again after its worker lost the lock is counted once, so sums across replicas stay exact.
      if (first) {
        deps.metrics.tagsRemoved.inc(labels, removed);
        deps.metrics.batches.inc({ ...labels, outcome });
        // Event batches: how long after the event each forbidden tag was gone.
        if (batch.eventTimes && outcome === 'succeeded') {
          const nowMs = (deps.now?.() ?? new Date()).getTime();
          for (const [id, r] of Object.entries(resources)) {
            const at = batch.eventTimes[id];
            if (r.outcome === 'removed' && r.keys.length > 0 && at !== undefined) deps.metrics.eventToRemoval.observe(Math.max(0, nowMs - at) / 1000);
          }
        }
      }
      audit(log, {
        ...auditBase,
        dryRun: outcome === 'dry_run',
        outcome,
        resources,
        ...(attempt.requestIds.length ? { requestId: attempt.requestIds.join(',') } : {}),
        ...(reason ? { reason } : {}),
      });
    };

    if (batch.dryRun || deps.dryRun) {
      const resources: Resources = {};
      for (const id of batch.resourceIds) resources[id] = { outcome: 'dry_run', keys: [...(batch.carried?.[id] ?? batch.tagKeys)] };
      await finish('dry_run', resources, 0);
      return { outcome: 'dry_run', removed: 0, calls: 0, reads: 0, requestIds: [], resources };
    }

    try {
      const carried = await carriedKeys(job, batch, attempt, deps);
      const resources: Resources = {};
      for (const id of batch.resourceIds) {
        resources[id] = carried.has(id) ? { outcome: 'nothing_to_remove', keys: [] } : { outcome: 'not_found', keys: [] };
      }
      let targets = batch.resourceIds.filter((id) => (carried.get(id)?.length ?? 0) > 0);
      if (targets.length > 0) {
        // The batch ID is the ClientToken; a call for a subset of the batch derives its own, deterministically.
        const token = targets.length === batch.resourceIds.length ? batch.batchId : derivedToken(batch.batchId, targets);
        // All=true, or the planned keys when a resource gained a key since the scan (see explicitKeysForAll).
        const send = async (ids: string[], clientToken: string) => {
          const explicit = await explicitKeysForAll(job, batch, ids, attempt);
          if (!explicit) return attempt.untag(ids, clientToken);
          for (const call of splitIntoCalls(ids, explicit, false)) {
            await attempt.untag(call.resourceIds, derivedToken(clientToken, [...call.resourceIds, '#keys', ...call.tagKeys]), call.tagKeys);
          }
        };
        try {
          await send(targets, token);
        } catch (err) {
          if (!resourceGoneOrLeaving(deps.classify(err))) throw err;
          // Deleted since the scan: finish the batch for the IDs that still exist.
          deps.metrics.retries.inc({ api: 'UnTagResources', reason: 'not_found' });
          const existing = await attempt.existing(targets);
          for (const id of targets) if (!existing.includes(id)) resources[id] = { outcome: 'not_found', keys: [] };
          if (existing.length > 0) await send(existing, derivedToken(token, existing));
          targets = existing;
        }
      }
      let removed = 0;
      const observed = (job.data as UntagJob).observed;
      for (const id of targets) {
        // What the resource still carried just before the call, when that was read (all=true batches).
        const seen = observed?.[id];
        const keys = (carried.get(id) ?? []).filter((k) => !seen || seen.includes(k));
        resources[id] = { outcome: 'removed', keys };
        removed += keys.length;
      }
      const outcome = Object.values(resources).every((r) => r.outcome === 'not_found') ? 'not_found' : 'succeeded';
      await finish(outcome, resources, removed);
      return { outcome, removed, calls: attempt.calls, reads: attempt.reads, requestIds: attempt.requestIds, resources };
    } catch (err) {
      const failAll = async (reason: string) => {
        const resources: Resources = {};
        for (const id of batch.resourceIds) resources[id] = { outcome: 'failed', keys: [] };
        await finish('failed', resources, 0, reason);
      };
      // Only cloud errors are classified with the cloud table. Anything else (a Redis OOM or READONLY after a
      // successful call, a closed connection) is ours, not the API's: retried with backoff, its message logged.
      if (!(err instanceof CloudError)) {
        const message = err instanceof Error ? err.message : String(err);
        const final = attemptNo >= (job.opts.attempts ?? 1);
        deps.metrics.retries.inc({ api: 'UnTagResources', reason: 'internal' });
        if (final) await failAll(`not a cloud error: ${message}`).catch(() => undefined);
        log.warn(final ? 'batch failed outside the cloud, attempts exhausted' : 'batch failed outside the cloud, will retry', { err: message, attempt: attemptNo });
        throw err;
      }
      const failure = deps.classify(err);
      const action = actionFor(failure, deps.throttleDelayMs);
      switch (action.kind) {
        case 'rate-limit':
          // Throttling spends no attempt: the region's queue pauses for every replica (the cloud hooks have
          // already lowered the region's shared rate).
          deps.metrics.retries.inc({ api: 'UnTagResources', reason: 'throttled' });
          await deps.queueFor(batch.region).rateLimit(action.delayMs);
          log.warn('throttled, pausing region queue', { code: failure.code, delayMs: action.delayMs });
          throw Worker.RateLimitError();
        case 'retry': {
          const final = attemptNo >= (job.opts.attempts ?? 1);
          if (final) await failAll(action.error.message);
          else deps.metrics.retries.inc({ api: 'UnTagResources', reason: 'transient' });
          log.warn(final ? 'batch failed, attempts exhausted' : 'call failed, will retry', { code: failure.code, attempt: attemptNo });
          throw action.error;
        }
        case 'fail':
          await failAll(action.error.message);
          log.error('batch failed permanently', { code: failure.code, attempt: attemptNo, auth: action.auth });
          throw action.error;
      }
    }
  };
}
