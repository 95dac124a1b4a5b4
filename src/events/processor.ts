// One coalescing window of one region: take the connections its events named, read each one's tags once,
// evaluate every policy covering the region, and enqueue the removals as normal untag batches (same
// planner, tokens, limits, audit and metrics as scans).
import { UnrecoverableError, type Job, type JobsOptions, type Queue } from 'bullmq';
import type { LimitFunction } from 'p-limit';
import type { CloudApi } from '../cloud/types.js';
import type { Logger } from '../logging/index.js';
import type { Metrics } from '../metrics/index.js';
import type { Removal, Resource } from '../model.js';
import { createBatchPlanner, type Packing } from '../planner/index.js';
import { matchResource, nameableWhenAbsent, type CompiledPolicy } from '../policy/index.js';
import type { UntagJob } from '../queue/index.js';
import type { PageRetry } from '../worker/index.js';
import { windowJobId, type WindowJob } from './intake.js';
import type { Claim, EventStore, Scope } from './store.js';

/** What a scope's account needs to be reached: its cloud client and its untag queues. */
export interface AccountAccess {
  cloud: CloudApi;
  queueFor(region: string): Queue;
}

export interface WindowDeps {
  store: EventStore;
  /** The account an event scope belongs to; undefined when this deployment does not govern it. */
  account(id: string): AccountAccess | undefined;
  /** The policies loaded now. */
  policies(): readonly CompiledPolicy[];
  pageRetry: PageRetry;
  limit: LimitFunction;
  untagJobOptions: JobsOptions;
  dryRun: boolean;
  /** The planner's packing (TAGWARDEN_PACKING), as scans use it. */
  packing?: Packing;
  metrics: Metrics;
  logger: Logger;
  now(): Date;
}

/** What a window job returns. */
export interface WindowResult {
  resources: number;
  read: number;
  notFound: number;
  batches: number;
  policies: number;
  replayed?: boolean;
}

interface SavedWindow {
  jobs: UntagJob[];
  claims: Array<[string, Claim[]]>;
}

const ENQUEUE_CHUNK = 500;
const OPEN_STATES = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);

/** Does any covering policy select on attributes that only GetVpcPeerConnectionAttribute returns? */
function needsAttributes(policies: readonly CompiledPolicy[]): boolean {
  return policies.some((p) => p.document.spec.selector?.attributes !== undefined);
}

async function withRetry<T>(retry: PageRetry, read: () => Promise<T>): Promise<T> {
  for (let failures = 1; ; failures += 1) {
    try {
      return await read();
    } catch (err) {
      const kind = retry.classify(err).kind;
      if ((kind !== 'transient' && kind !== 'throttled') || failures > retry.maxFailures) throw err;
      await new Promise((resolve) => setTimeout(resolve, retry.backoff(failures)));
    }
  }
}

/**
 * One read per connection: ListTagResources for its ID (its tags, at most 20 rows: one page), or, when a
 * covering policy selects on attributes, GetVpcPeerConnectionAttribute (attributes and tags in one answer).
 * Null when the connection no longer exists.
 */
async function readConnection(cloud: CloudApi, region: string, id: string, attributes: boolean, deps: WindowDeps): Promise<Resource | null> {
  if (attributes) return withRetry(deps.pageRetry, () => cloud.getPeerConnection(region, id));
  try {
    return await withRetry(deps.pageRetry, async () => {
      const tags: Record<string, string> = {};
      for await (const page of cloud.listTagResources(region, { resourceIds: [id] })) {
        for (const row of page.items) if (row.resourceId === id) tags[row.tagKey] = row.tagValue;
      }
      return { id, region, tags, attributes: {} };
    });
  } catch (err) {
    if (deps.pageRetry.classify(err).kind === 'not-found') return null;
    throw err;
  }
}

/** A removal minus the keys a still-queued batch of an earlier window already removes. */
function minusClaimed(removal: Removal, claimed: ReadonlySet<string>): Removal | null {
  if (claimed.size === 0) return removal;
  const keys = removal.keys.filter((k) => !claimed.has(k));
  if (keys.length === 0) return null;
  return { resourceId: removal.resourceId, all: false, keys };
}

/** Creates the processor of the window queue. */
export function createWindowProcessor(deps: WindowDeps) {
  return async function processWindow(job: Job): Promise<WindowResult> {
    const data = job.data as Partial<WindowJob>;
    if (data.v !== 1 || typeof data.account !== 'string' || typeof data.region !== 'string' || typeof data.gen !== 'number') {
      throw new UnrecoverableError('invalid event window job: expected {v: 1, account, region, gen}');
    }
    const scope: Scope = { account: data.account, region: data.region };
    const gen = data.gen;
    const runId = windowJobId(scope, gen);
    const log = deps.logger.child({ jobId: job.id, runId, region: scope.region, account: scope.account });
    const access = deps.account(scope.account);
    if (!access) {
      log.warn('event window for an account this deployment does not govern');
      return { resources: 0, read: 0, notFound: 0, batches: 0, policies: 0 };
    }
    const saved = (await deps.store.loadPlan(scope, gen)) as SavedWindow | undefined;
    if (saved) {
      // Interrupted after planning: enqueue exactly the saved plan (stored jobIds are skipped).
      await enqueue(access.queueFor(scope.region), saved.jobs, deps.untagJobOptions);
      await deps.store.finish(scope, gen, new Map(saved.claims));
      log.warn('event window re-run after an interruption: enqueued its saved plan', { batches: saved.jobs.length });
      return { resources: 0, read: 0, notFound: 0, batches: saved.jobs.length, policies: 0, replayed: true };
    }
    const taken = await deps.store.take(scope, gen);
    if (!taken || taken.size === 0) return { resources: 0, read: 0, notFound: 0, batches: 0, policies: 0 };
    const policies = deps.policies().filter((p) => p.regions.includes(scope.region));
    if (policies.length === 0) {
      await deps.store.finish(scope, gen, new Map());
      log.info('event window: no policy covers the region any more', { resources: taken.size });
      return { resources: taken.size, read: 0, notFound: 0, batches: 0, policies: 0 };
    }
    const ids = [...taken.keys()].sort();
    // Keys that batches of earlier windows still queued will remove are not planned twice. Checked before the
    // reads: a batch that ends after this check ends after nothing we read, and one still open removes its keys.
    const claims = await deps.store.claims(scope, ids);
    const open = new Map<string, Claim[]>();
    const queue = access.queueFor(scope.region);
    for (const [id, list] of claims) {
      const states = await Promise.all(list.map((c) => queue.getJobState(c.batchId)));
      const still = list.filter((_, i) => OPEN_STATES.has(states[i] ?? 'unknown'));
      if (still.length > 0) open.set(id, still);
    }
    const attributes = needsAttributes(policies);
    const resources = await Promise.all(ids.map((id) => deps.limit(() => readConnection(access.cloud, scope.region, id, attributes, deps))));
    const found = resources.filter((r): r is Resource => r !== null);

    const now = deps.now();
    const jobs: UntagJob[] = [];
    const nextClaims = new Map<string, Claim[]>(open);
    for (const policy of policies) {
      deps.metrics.addPolicy(policy.name, policy.regions);
      // A key claimed by a queued batch is left out of this resource's removal, so the planner must not name
      // it for the resource either: with claims open, union packing may name only keys each resource loses.
      const planner = createBatchPlanner(
        { policy: policy.name, region: scope.region, runId },
        { packing: deps.packing ?? 'union', nameableWhenAbsent: (key) => open.size === 0 && nameableWhenAbsent(policy, key) },
      );
      const removals = new Map<string, Removal>();
      for (const resource of found) {
        const claimed = new Set((open.get(resource.id) ?? []).flatMap((c) => c.keys));
        const matched = matchResource(policy, resource, now);
        const removal = matched && minusClaimed(matched, claimed);
        if (!removal) continue;
        removals.set(resource.id, removal);
        planner.add(removal);
      }
      const batches = planner.finish();
      if (planner.tagCount > policy.maxRemovalsPerRun) {
        deps.metrics.policyErrors.inc({ policy: policy.name, reason: 'halted' });
        log.error('event window halted for a policy: removals would exceed maxRemovalsPerRun', { policy: policy.name, tagsPlanned: planner.tagCount });
        continue;
      }
      const dryRun = deps.dryRun || policy.mode === 'dryRun';
      for (const b of batches) {
        const carried: Record<string, string[]> = {};
        for (const id of b.resourceIds) {
          const planned = b.carried?.[id] ?? removals.get(id)?.keys ?? [];
          carried[id] = b.all ? [...planned].sort() : planned.filter((k) => b.tagKeys.includes(k)).sort();
        }
        const eventTimes: Record<string, number> = {};
        for (const id of b.resourceIds) eventTimes[id] = taken.get(id) ?? now.getTime();
        jobs.push({
          v: 1,
          batchId: b.id,
          policy: policy.name,
          region: scope.region as UntagJob['region'],
          runId,
          resourceIds: [...b.resourceIds],
          tagKeys: [...b.tagKeys],
          all: b.all,
          carried,
          eventTimes,
          source: 'event',
          dryRun,
          reason: `policy ${policy.name} (event)`,
        });
        for (const id of b.resourceIds) {
          const list = nextClaims.get(id) ?? [];
          nextClaims.set(id, [...list, { batchId: b.id, keys: carried[id] ?? [] }]);
        }
      }
    }
    await deps.store.savePlan(scope, gen, { jobs, claims: [...nextClaims] } satisfies SavedWindow);
    await enqueue(queue, jobs, deps.untagJobOptions);
    await deps.store.finish(scope, gen, nextClaims);
    const result = { resources: ids.length, read: ids.length, notFound: ids.length - found.length, batches: jobs.length, policies: policies.length };
    log.info('event window planned', result);
    return result;
  };
}

async function enqueue(queue: Queue, jobs: readonly UntagJob[], options: JobsOptions): Promise<void> {
  for (let i = 0; i < jobs.length; i += ENQUEUE_CHUNK) {
    await queue.addBulk(jobs.slice(i, i + ENQUEUE_CHUNK).map((data) => ({ name: 'untag', data, opts: { ...options, jobId: data.batchId } })));
  }
}
