// The scan processor: one job = one policy in one region: discover, match, plan, check the cap, enqueue.
import { UnrecoverableError, type Job, type JobsOptions, type Queue } from 'bullmq';
import type { CloudApi, CloudFailure, Page } from '../cloud/types.js';
import type { Logger } from '../logging/index.js';
import type { Metrics } from '../metrics/index.js';
import type { Batch, Removal, Resource } from '../model.js';
import { createBatchPlanner } from '../planner/index.js';
import { compilePolicyDocument, discoveryPlan, formatFinding, matchResource, type CompiledPolicy } from '../policy/index.js';
import { ScanJobSchema, describeIssues, safeRunId, type Ledger, type UntagJob } from '../queue/index.js';

export interface ScanDeps {
  cloud: CloudApi;
  pageRetry: PageRetry;
  metrics: Metrics;
  ledger: Ledger;
  logger: Logger;
  now(): Date;
  /** Force every policy into dry-run (TAGWARDEN_DRY_RUN). */
  dryRun: boolean;
  queueFor(region: string): Queue;
  untagJobOptions: JobsOptions;
}

/** What a completed scan job returns. */
export interface ScanResult {
  policy: string;
  region: string;
  runId: string;
  scanned: number;
  violating: number;
  tagsPlanned: number;
  batches: number;
  halted: boolean;
  dryRun: boolean;
  /** True when the scan did not run because the previous run still had batches pending. */
  skipped?: boolean;
}

const ENQUEUE_CHUNK = 500;

/** How a listing resumes after a transient or throttled page: from that page's token, after a pause. */
export interface PageRetry {
  classify(err: unknown): CloudFailure;
  /** Consecutive failed pages before the scan gives up (and the job's own retry takes over). */
  maxFailures: number;
  backoff(failures: number): number;
}

/**
 * Pages a listing, resuming from the last good page's token when a page fails transiently, so one 503 in a
 * million-connection scan does not start it over.
 */
async function* resumable<T>(open: (startToken?: string) => AsyncIterable<Page<T>>, retry: PageRetry): AsyncIterable<Page<T>> {
  let token: string | undefined;
  let failures = 0;
  for (;;) {
    try {
      for await (const page of open(token)) {
        failures = 0;
        yield page;
        token = page.nextToken;
      }
      return;
    } catch (err) {
      const kind = retry.classify(err).kind;
      failures += 1;
      if ((kind !== 'transient' && kind !== 'throttled') || failures > retry.maxFailures) throw err;
      await new Promise((resolve) => setTimeout(resolve, retry.backoff(failures)));
    }
  }
}

/**
 * Streams candidate resources for a policy in one region, never holding the estate: ListVpcPeerConnections
 * pages, or (for exact keys selected by tags only) ListTagResources per key, merged per resource.
 */
export async function* discover(cloud: CloudApi, policy: CompiledPolicy, region: string, retry: PageRetry): AsyncIterable<Resource> {
  const plan = discoveryPlan(policy);
  if (plan.kind === 'connections') {
    const { instanceIds, vpcIds, name, resourceGroupId, tags } = plan.filter;
    const base = {
      ...(vpcIds ? { vpcIds } : {}),
      ...(name !== undefined ? { name } : {}),
      ...(resourceGroupId !== undefined ? { resourceGroupId } : {}),
      ...(tags ? { tags } : {}),
    };
    for (const instanceId of instanceIds ?? [undefined]) {
      const filter = instanceId === undefined ? base : { ...base, instanceId };
      for await (const page of resumable((token) => cloud.listPeerConnections(region, filter, token), retry)) yield* page.items;
    }
    return;
  }
  // Rows come one per (resource, tag); a resource's rows may span pages and keys, so merge before matching.
  // Only resources carrying a targeted key are held, not the estate.
  const found = new Map<string, Record<string, string>>();
  for (const key of plan.tagKeys) {
    const tagKeys = [key, ...plan.tags.map((t) => t.key).filter((k) => k !== key)];
    for await (const page of resumable((token) => cloud.listTagResources(region, { tagKeys }, token), retry)) {
      for (const row of page.items) {
        const tags = found.get(row.resourceId) ?? {};
        tags[row.tagKey] = row.tagValue;
        found.set(row.resourceId, tags);
      }
    }
  }
  for (const [id, tags] of found) yield { id, region, tags, attributes: {} };
}

export interface RegionPlan {
  scanned: number;
  /** Resources with something to remove. */
  violating: number;
  /** (resource, key) pairs to remove; all=true counts the tags carried. */
  tagsPlanned: number;
  batches: Batch[];
}

/**
 * Discovers, matches and plans one policy in one region: the read-only heart of a scan, shared by the scan
 * job and `tagwarden plan`. Holds only the planned batches, never the estate.
 */
export async function planRegion(
  cloud: CloudApi,
  policy: CompiledPolicy,
  region: string,
  options: { runId: string; now: Date; retry: PageRetry; onRemoval?: (removal: Removal) => void; onScanned?: (scanned: number) => void },
): Promise<RegionPlan> {
  const planner = createBatchPlanner({ policy: policy.name, region, runId: options.runId });
  let scanned = 0;
  for await (const resource of discover(cloud, policy, region, options.retry)) {
    scanned += 1;
    if (scanned % 1000 === 0) options.onScanned?.(scanned);
    const removal = matchResource(policy, resource, options.now);
    if (removal) {
      planner.add(removal);
      options.onRemoval?.(removal);
    }
  }
  options.onScanned?.(scanned);
  const batches = planner.finish();
  return { scanned, violating: planner.resourceCount, tagsPlanned: planner.tagCount, batches };
}

/** A scan's plan, kept until the scan is recorded (see Ledger.savePlan). */
interface SavedPlan {
  counts: { scanned: number; violating: number; tagsPlanned: number };
  jobs: UntagJob[];
}

function toJob(b: Batch, region: UntagJob['region'], dryRun: boolean, reason: string): UntagJob {
  return {
    v: 1,
    batchId: b.id,
    policy: b.policy,
    region,
    runId: b.runId,
    resourceIds: [...b.resourceIds],
    tagKeys: [...b.tagKeys],
    all: b.all,
    ...(b.carried ? { carried: Object.fromEntries(Object.entries(b.carried).map(([id, k]) => [id, [...k]])) } : {}),
    source: 'scan',
    dryRun,
    reason,
  };
}

/** Creates the processor for the scan queue. */
export function createScanProcessor(deps: ScanDeps) {
  return async function processScan(job: Job): Promise<ScanResult> {
    const parsed = ScanJobSchema.safeParse(job.data);
    if (!parsed.success) {
      throw new UnrecoverableError(`invalid scan job payload: ${describeIssues(parsed.error).join('; ')}`);
    }
    const { region, trigger } = parsed.data;
    const started = deps.now();
    const compiled = compilePolicyDocument(parsed.data.policy, started);
    const errors = compiled.findings.filter((f) => f.severity === 'error');
    if (!compiled.policy || errors.length > 0) {
      throw new UnrecoverableError(`invalid policy in scan job: ${errors.map(formatFinding).join('; ')}`);
    }
    const policy = compiled.policy;
    const runId = parsed.data.runId ?? safeRunId(job.id ?? `${policy.name}-${started.getTime()}`);
    const dryRun = deps.dryRun || policy.mode === 'dryRun';
    const labels = { policy: policy.name, region };
    const log = deps.logger.child({ jobId: job.id, runId, ...labels });
    deps.metrics.addPolicy(policy.name);

    // One run at a time per (policy, region): a scan that planned while the previous run's batches were still
    // queued would send removals twice. A scan job re-run after it had finished (a lost lock) adds nothing.
    const previous = await deps.ledger.regionStatus(policy.name, region);
    const previousRun = typeof previous?.runId === 'string' ? previous.runId : undefined;
    if (previousRun === runId) {
      log.info('scan already finished for this run');
      return { ...(previous as unknown as ScanResult), policy: policy.name, region, runId };
    }
    let counts: { scanned: number; violating: number; tagsPlanned: number };
    let jobs: UntagJob[];
    const saved = (await deps.ledger.loadPlan(runId, policy.name, region)) as SavedPlan | undefined;
    if (saved) {
      // This scan was interrupted while enqueuing: finish enqueuing the same plan, never a new one.
      log.warn('scan re-run after an interruption: enqueuing its saved plan', { batches: saved.jobs.length });
      ({ counts, jobs } = saved);
    } else {
      if (previousRun !== undefined && (await deps.ledger.pending(previousRun)) > 0) {
        await deps.ledger.recordScanWithoutBatches(runId, policy.name, 'skipped');
        log.warn('scan skipped: the previous run still has batches pending', { previousRun });
        return { policy: policy.name, region, runId, scanned: 0, violating: 0, tagsPlanned: 0, batches: 0, halted: false, dryRun, skipped: true };
      }
      let plan: RegionPlan;
      try {
        plan = await planRegion(deps.cloud, policy, region, { runId, now: started, retry: deps.pageRetry });
      } catch (err) {
        deps.metrics.policyErrors.inc({ policy: policy.name, reason: 'scan' });
        const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
        if (final) await deps.ledger.recordScanWithoutBatches(runId, policy.name, 'scansFailed');
        log.warn('scan failed', { err, final });
        throw err;
      }
      counts = { scanned: plan.scanned, violating: plan.violating, tagsPlanned: plan.tagsPlanned };
      deps.metrics.violations.set(labels, plan.tagsPlanned);

      // The blast-radius cap is checked before anything is enqueued: an over-cap run enqueues nothing.
      if (plan.tagsPlanned > policy.maxRemovalsPerRun) {
        deps.metrics.policyHalted.set(labels, 1);
        deps.metrics.policyErrors.inc({ policy: policy.name, reason: 'halted' });
        await deps.ledger.recordScanWithoutBatches(runId, policy.name, 'halted');
        const status = { policy: policy.name, region, runId, ...counts, halted: true, at: started.toISOString(), hash: policy.hash };
        await deps.ledger.setPolicyStatus(policy.name, region, status);
        log.error('policy halted: run would exceed maxRemovalsPerRun', { tagsPlanned: plan.tagsPlanned, maxRemovalsPerRun: policy.maxRemovalsPerRun });
        return { policy: policy.name, region, runId, ...counts, batches: 0, halted: true, dryRun };
      }
      deps.metrics.policyHalted.set(labels, 0);
      jobs = plan.batches.map((b) => toJob(b, region, dryRun, `policy ${policy.name} (${trigger})`));
      await deps.ledger.savePlan(runId, policy.name, region, { counts, jobs } satisfies SavedPlan);
    }
    const base = { policy: policy.name, region, runId, ...counts };

    // jobId = batch ID: a scan re-run after a crash adds nothing twice while the first jobs are stored.
    const queue = deps.queueFor(region);
    for (let i = 0; i < jobs.length; i += ENQUEUE_CHUNK) {
      await queue.addBulk(
        jobs.slice(i, i + ENQUEUE_CHUNK).map((data) => ({ name: 'untag', data, opts: { ...deps.untagJobOptions, jobId: data.batchId } })),
      );
    }
    await deps.ledger.recordScan(runId, policy.name, region, { ...base, batchIds: jobs.map((j) => j.batchId) });
    const ended = deps.now();
    deps.metrics.lastSuccess.set({ policy: policy.name }, ended.getTime() / 1000);
    deps.metrics.scanDuration.observe({ policy: policy.name }, (ended.getTime() - started.getTime()) / 1000);
    await deps.ledger.setPolicyStatus(policy.name, region, { ...base, batches: jobs.length, halted: false, dryRun, at: ended.toISOString(), hash: policy.hash });
    await deps.ledger.deletePlan(runId, policy.name, region);
    log.info('scan finished', { ...counts, batches: jobs.length, dryRun });
    return { ...base, batches: jobs.length, halted: false, dryRun };
  };
}
