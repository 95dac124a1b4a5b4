// The scan processor: one job = one policy in one region. The stages live elsewhere (discovery/ pages the estate,
// policy/ matches, planner/ packs; plan-region.ts streams them together); this file owns the lease, the cap, the
// saved plan and the enqueue, in crash-safe order.
import { UnrecoverableError, type Job, type JobsOptions, type Queue } from 'bullmq';
import type { CloudApi } from '../cloud/types.js';
import type { PageRetry } from '../discovery/index.js';
import type { Logger } from '../logging/index.js';
import type { Metrics } from '../metrics/index.js';
import type { Batch } from '../model.js';
import type { Packing } from '../planner/index.js';
import { compilePolicyDocument, formatFinding } from '../policy/index.js';
import { ScanJobSchema, describeIssues, safeRunId, type LeaseHolder, type Ledger, type ScanLease, type UntagJob } from '../queue/index.js';
import { planRegion, type RegionPlan } from './plan-region.js';

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
  /** One scan per (policy, region) at a time, whoever started it. */
  lease: ScanLease;
  /** How long a lease lives without renewal (a dead scan's lease frees itself after this). */
  leaseMs: number;
  /** Jobs per addBulk call while enqueuing (default 500). */
  enqueueChunk?: number;
  /**
   * Tests only: awaited before each Redis write of a scan, with the write's name. A crash-point test throws
   * (or never resolves) here to stop the scan between two writes. Every new write in a scan must call it.
   */
  beforeWrite?: (point: string) => Promise<void> | void;
  /** How removals are packed into calls (TAGWARDEN_PACKING). */
  packing: Packing;
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
  /** True when the scan did not run: the previous run still had batches pending, or another scan was running. */
  skipped?: boolean;
  /** With skipped: the scan of this policy and region that was running instead. */
  runningScan?: LeaseHolder;
}

const ENQUEUE_CHUNK = 500;

/** A scan's plan, kept until the scan is recorded (see Ledger.savePlan). */
interface SavedPlan {
  runId: string;
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

/**
 * Creates the processor for the scan queue.
 *
 * Crash safety: every Redis write is ordered so that a scan stopped between any two of them is finished by the
 * next scan of the same (policy, region), whatever its run: the plan is saved (one per policy and region)
 * before the first batch is enqueued, batches are enqueued with jobId = batch ID (a repeat adds nothing), the
 * run records the scan once, and only then is the plan deleted. A later scan that finds a saved plan enqueues
 * that plan, never a new one, so no (resource, key) pair is planned into two batches.
 */
export function createScanProcessor(deps: ScanDeps) {
  const chunk = deps.enqueueChunk ?? ENQUEUE_CHUNK;
  const write = async <T>(point: string, fn: () => Promise<T>): Promise<T> => {
    await deps.beforeWrite?.(point);
    return fn();
  };

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
    const none = { policy: policy.name, region, runId, scanned: 0, violating: 0, tagsPlanned: 0, batches: 0, halted: false, dryRun };

    // One scan per (policy, region) at a time, whatever started it (schedule, API, run --once, any replica).
    const holder = await write('lease.acquire', () => deps.lease.acquire(policy.name, region, { runId, jobId: String(job.id ?? '') }, deps.leaseMs));
    if (holder) {
      await write('ledger.recordSkipped', () => deps.ledger.recordScanWithoutBatches(runId, policy.name, region, 'skipped'));
      log.warn('scan skipped: another scan of this policy and region is running', { runningRun: holder.runId, runningJob: holder.jobId });
      return { ...none, skipped: true, runningScan: holder };
    }
    let lost = false;
    const renewal = setInterval(() => {
      deps.lease.renew(policy.name, region, runId, deps.leaseMs).then(
        (ours) => {
          if (!ours && !lost) {
            lost = true;
            log.warn('scan lease lost', { leaseMs: deps.leaseMs });
          }
        },
        (err: unknown) => log.warn('scan lease not renewed', { err }),
      );
    }, Math.max(100, Math.floor(deps.leaseMs / 3)));
    renewal.unref();
    // Released on every path that finished its bookkeeping; a scan that throws keeps it until it expires, so
    // its own retry (same run ID) takes over and nobody else plans meanwhile.
    const release = () => write('lease.release', () => deps.lease.release(policy.name, region, runId));

    /** Enqueues a plan and records it; idempotent, so re-running it after a stop anywhere is safe. */
    const enqueue = async (plan: SavedPlan): Promise<number> => {
      if (lost || !(await deps.lease.renew(policy.name, region, runId, deps.leaseMs))) {
        throw new Error('scan lease lost before enqueuing; the scan will be retried');
      }
      // jobId = batch ID: a scan re-run after a crash adds nothing twice while the first jobs are stored.
      const queue = deps.queueFor(region);
      for (let i = 0; i < plan.jobs.length; i += chunk) {
        const jobs = plan.jobs.slice(i, i + chunk);
        await write(`queue.addBulk#${i / chunk}`, () =>
          queue.addBulk(jobs.map((data) => ({ name: 'untag', data, opts: { ...deps.untagJobOptions, jobId: data.batchId } }))),
        );
      }
      const summary = { ...plan.counts, batchIds: plan.jobs.map((j) => j.batchId), queueKey: queue.toKey('') };
      await write('ledger.recordScan', () => deps.ledger.recordScan(plan.runId, policy.name, region, summary));
      const at = deps.now().toISOString();
      const status = { policy: policy.name, region, runId: plan.runId, ...plan.counts, batches: plan.jobs.length, halted: false, dryRun, at, hash: policy.hash };
      await write('ledger.setPolicyStatus', () => deps.ledger.setPolicyStatus(policy.name, region, status));
      await write('ledger.deletePlan', () => deps.ledger.deletePlan(policy.name, region));
      return plan.jobs.length;
    };

    try {
      const previous = await deps.ledger.regionStatus(policy.name, region);
      let previousRun = typeof previous?.runId === 'string' ? previous.runId : undefined;
      const saved = (await deps.ledger.loadPlan(policy.name, region)) as SavedPlan | undefined;
      if (saved && (await deps.ledger.scanRecorded(saved.runId, policy.name, region)) && previousRun === saved.runId) {
        // Recorded and its status written: only the deletion of the plan was missing.
        await write('ledger.deletePlan', () => deps.ledger.deletePlan(policy.name, region));
      } else if (saved) {
        // A scan was interrupted while enqueuing: finish enqueuing that plan, never a new one.
        log.warn('scan re-run after an interruption: enqueuing its saved plan', { batches: saved.jobs.length, plannedBy: saved.runId });
        const batches = await enqueue(saved);
        if (saved.runId === runId) {
          await release();
          log.info('scan finished', { ...saved.counts, batches, dryRun });
          return { ...none, ...saved.counts, batches };
        }
        previousRun = saved.runId;
      }
      if (await deps.ledger.scanRecorded(runId, policy.name, region)) {
        // This run's scan had finished (a scan job processed again after a lost lock): add nothing.
        await release();
        log.info('scan already finished for this run');
        return previousRun === runId ? { ...none, ...pick(previous) } : none;
      }

      // One run at a time per (policy, region): a scan that planned while the previous run's batches were still
      // queued would send removals twice.
      if (previousRun !== undefined && previousRun !== runId) {
        const pending = await deps.ledger.livePending(previousRun, { policy: policy.name, region });
        if (pending > 0) {
          await write('ledger.recordSkipped', () => deps.ledger.recordScanWithoutBatches(runId, policy.name, region, 'skipped'));
          await release();
          log.warn('scan skipped: the previous run still has batches pending', { previousRun, pending });
          return { ...none, skipped: true };
        }
      }
      let plan: RegionPlan;
      try {
        plan = await planRegion(deps.cloud, policy, region, { runId, now: started, retry: deps.pageRetry, packing: deps.packing });
      } catch (err) {
        deps.metrics.policyErrors.inc({ policy: policy.name, reason: 'scan' });
        const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
        if (final) {
          await write('ledger.recordFailed', () => deps.ledger.recordScanWithoutBatches(runId, policy.name, region, 'scansFailed'));
          await release();
        }
        log.warn('scan failed', { err, final });
        throw err;
      }
      const counts = { scanned: plan.scanned, violating: plan.violating, tagsPlanned: plan.tagsPlanned };
      deps.metrics.violations.set(labels, plan.tagsPlanned);

      // The blast-radius cap is checked before anything is enqueued: an over-cap run enqueues nothing.
      if (plan.tagsPlanned > policy.maxRemovalsPerRun) {
        deps.metrics.policyHalted.set(labels, 1);
        deps.metrics.policyErrors.inc({ policy: policy.name, reason: 'halted' });
        await write('ledger.recordHalted', () => deps.ledger.recordScanWithoutBatches(runId, policy.name, region, 'halted', counts));
        const status = { policy: policy.name, region, runId, ...counts, halted: true, at: started.toISOString(), hash: policy.hash };
        await write('ledger.setPolicyStatus', () => deps.ledger.setPolicyStatus(policy.name, region, status));
        await release();
        log.error('policy halted: run would exceed maxRemovalsPerRun', { tagsPlanned: plan.tagsPlanned, maxRemovalsPerRun: policy.maxRemovalsPerRun });
        return { ...none, ...counts, halted: true };
      }
      deps.metrics.policyHalted.set(labels, 0);
      const jobs = plan.batches.map((b) => toJob(b, region, dryRun, `policy ${policy.name} (${trigger})`));
      const saving: SavedPlan = { runId, counts, jobs };
      await write('ledger.savePlan', () => deps.ledger.savePlan(policy.name, region, saving));
      const batches = await enqueue(saving);
      await release();
      const ended = deps.now();
      deps.metrics.lastSuccess.set({ policy: policy.name }, ended.getTime() / 1000);
      deps.metrics.scanDuration.observe({ policy: policy.name }, (ended.getTime() - started.getTime()) / 1000);
      log.info('scan finished', { ...counts, batches, dryRun });
      return { ...none, ...counts, batches };
    } finally {
      clearInterval(renewal);
    }
  };
}

/** The counts of a stored status, as numbers. */
function pick(status: Record<string, unknown> | undefined): Partial<ScanResult> {
  const n = (v: unknown) => (typeof v === 'number' ? v : 0);
  return status ? { scanned: n(status.scanned), violating: n(status.violating), tagsPlanned: n(status.tagsPlanned), batches: n(status.batches), halted: status.halted === true } : {};
}
