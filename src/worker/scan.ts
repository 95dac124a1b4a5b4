// The scan processor: one job = one policy in one region. The stages live elsewhere (discovery/ pages the estate,
// policy/ matches, planner/ packs; plan-region.ts joins them); this file owns the lease, the scan log, the cap and
// the enqueue, in crash-safe order, page by page: batches are enqueued while discovery still pages.
import { UnrecoverableError, type Job, type JobsOptions, type Queue } from 'bullmq';
import type { CloudApi } from '../cloud/types.js';
import { discoverPages, type DiscoveryCursor, type PageRetry } from '../discovery/index.js';
import type { Logger } from '../logging/index.js';
import type { Metrics } from '../metrics/index.js';
import type { Batch, Removal } from '../model.js';
import type { Packing } from '../planner/index.js';
import { compilePolicyDocument, formatFinding, type CompiledPolicy } from '../policy/index.js';
import { ScanJobSchema, describeIssues, safeRunId, scanJobOf, type LeaseHolder, type Ledger, type ScanLease, type UntagJob } from '../queue/index.js';
import { createRegionPlanner, createUnsendableTally } from './plan-region.js';

/**
 * Every Redis write a scan makes, in the order a scan makes them; `beforeWrite` is called with one of these
 * names, or with `<name>#<n>` for the ones a scan repeats (`log.append#0`, `queue.addBulk#3`, ...). A chaos or
 * crash-point test can iterate over them; a new write gets a name here and a call of the hook.
 */
export const SCAN_WRITE_POINTS = [
  'lease.acquire',
  'ledger.recordSkipped',
  'log.open',
  'log.append',
  'queue.addBulk',
  'ledger.recordScan',
  'ledger.recordHalted',
  'ledger.recordFailed',
  'ledger.setPolicyStatus',
  'log.delete',
  'ledger.deletePlan',
  'lease.release',
] as const;
export type ScanWritePoint = (typeof SCAN_WRITE_POINTS)[number];
/** The points a scan repeats, reported as `<name>#<n>` (n from 0 within one processing of a scan job). */
export const REPEATED_SCAN_WRITE_POINTS: readonly ScanWritePoint[] = ['log.append', 'queue.addBulk'];

/** The name of a reported write point without its `#<n>`. */
export function scanWritePointOf(reported: string): ScanWritePoint | undefined {
  const name = reported.replace(/#\d+$/, '');
  return (SCAN_WRITE_POINTS as readonly string[]).includes(name) ? (name as ScanWritePoint) : undefined;
}

/** A resource carries at most 20 tags (the service's limit), so a resource read later removes at most 20 pairs. */
const MAX_TAGS_PER_RESOURCE = 20;

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
  /** Tests only: resources per ListVpcPeerConnections page (default the client's, 100). */
  pageSize?: number;
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

/** The header of a scan log: everything a later scan needs to plan the rest exactly as this one would have. */
interface LogHeader {
  v: 2;
  runId: string;
  /** The policy document as the scan job carried it, and the time it was matched at. */
  policy: Record<string, unknown>;
  now: string;
  packing: Packing;
  dryRun: boolean;
  trigger: string;
}

/** One logged page: where to resume after it, the bound on what was left, resources read, and the removals. */
interface LogPage {
  c: DiscoveryCursor | null;
  l?: number;
  s: number;
  /** [resourceId, all ? 1 : 0, keys] per resource with something to remove, in discovery order. */
  r: Array<[string, 0 | 1, string[]]>;
}

const toEntry = (r: Removal): [string, 0 | 1, string[]] => [r.resourceId, r.all ? 1 : 0, [...r.keys]];
const fromEntry = ([resourceId, all, keys]: [string, 0 | 1, string[]]): Removal => ({ resourceId, all: all === 1, keys });

/**
 * Creates the processor for the scan queue.
 *
 * Overlap with crash safety: a scan keeps an append-only log per (policy, region): a header (run, policy
 * document, time, packing) and then one entry per discovered page (its removals and where to resume), each
 * appended once, in order, before any batch it completes is enqueued. Planning is deterministic, so a scan
 * stopped between any two writes is finished by the next scan of the same (policy, region), whatever its run:
 * it replays the log into a planner (the same batches, the same IDs; re-adding a stored jobId adds nothing),
 * goes on discovering from the page after the last one logged, records the run once, and only then deletes
 * the log. No (resource, key) pair is planned into two batches and no planned batch is lost.
 *
 * The blast-radius cap: a batch is enqueued before discovery ends only while the pairs planned so far plus 20
 * for every resource the listing can still return (its TotalCount) stay within maxRemovalsPerRun, so even a run
 * that ends over its cap has enqueued at most the cap; otherwise batches are held until the count is known,
 * and an over-cap run enqueues nothing it held. See README "Overlap and the blast-radius cap".
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
    deps.metrics.addPolicy(policy.name, policy.regions);
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
    let addBulkCalls = 0;
    const ensureLease = async () => {
      if (lost || !(await deps.lease.renew(policy.name, region, runId, deps.leaseMs))) {
        throw new Error('scan lease lost before enqueuing; the scan will be retried');
      }
    };
    /** Adds jobs (jobId = batch ID: a repeat after a crash adds nothing while the first jobs are stored). */
    const add = async (jobs: readonly UntagJob[]): Promise<void> => {
      if (jobs.length === 0) return;
      await ensureLease();
      const queue = deps.queueFor(region);
      for (let i = 0; i < jobs.length; i += chunk) {
        const part = jobs.slice(i, i + chunk);
        await write(`queue.addBulk#${addBulkCalls++}`, () =>
          queue.addBulk(part.map((data) => ({ name: 'untag', data, opts: { ...deps.untagJobOptions, jobId: data.batchId } }))),
        );
      }
    };

    /** A plan saved whole by the previous version: enqueued and recorded as it was (an upgrade mid-scan). */
    const enqueueSaved = async (plan: SavedPlan): Promise<number> => {
      await add(plan.jobs);
      const queue = deps.queueFor(region);
      const summary = { ...plan.counts, batchIds: plan.jobs.map((j) => j.batchId), queueKey: queue.toKey('') };
      await write('ledger.recordScan', () => deps.ledger.recordScan(plan.runId, policy.name, region, summary));
      const at = deps.now().toISOString();
      const status = { policy: policy.name, region, runId: plan.runId, ...plan.counts, batches: plan.jobs.length, halted: false, dryRun, at, hash: policy.hash };
      await write('ledger.setPolicyStatus', () => deps.ledger.setPolicyStatus(policy.name, region, status));
      await write('ledger.deletePlan', () => deps.ledger.deletePlan(policy.name, region));
      return plan.jobs.length;
    };

    /**
     * Runs (or finishes) the logged scan `header`: replays `pages`, discovers the rest, enqueues as the cap
     * allows, records the run, deletes the log. `final`: this is the job's last attempt (a failure is recorded).
     */
    const runLogged = async (header: LogHeader, pages: readonly LogPage[], final: boolean): Promise<ScanResult> => {
      const at = new Date(header.now);
      const logged = compilePolicyDocument(header.policy, at).policy;
      if (!logged) throw new UnrecoverableError('the scan log holds a policy that no longer compiles; delete the log to plan anew');
      const p: CompiledPolicy = logged;
      // A key no call can name is skipped per (resource, key), counted, and logged once per key; the rest goes on.
      const unsendable = createUnsendableTally();
      const planner = createRegionPlanner(p, region, {
        runId: header.runId,
        now: at,
        packing: header.packing,
        onUnsendable: (u) => {
          deps.metrics.tagKeysSkipped.inc({ policy: p.name, region });
          if (unsendable.add(u)) log.warn('tag key cannot be sent; skipped', { key: u.key, problem: u.problem, resourceId: u.resourceId });
        },
      });
      const reason = `policy ${p.name} (${header.trigger})`;
      const jobsOf = (batches: readonly Batch[]) => batches.map((b) => scanJobOf(b, { dryRun: header.dryRun, reason }));
      const cap = p.maxRemovalsPerRun;
      const enqueued: string[] = [];
      let held: UntagJob[] = [];
      /** After each page: enqueue what is complete when the cap cannot be reached any more, else hold it. */
      const afterPage = async (batches: readonly Batch[], left: number | undefined) => {
        const jobs = jobsOf(batches);
        if (left !== undefined && planner.tagsPlanned + MAX_TAGS_PER_RESOURCE * left <= cap) {
          const now = held.length > 0 ? [...held, ...jobs] : jobs;
          held = [];
          await add(now);
          for (const j of now) enqueued.push(j.batchId);
        } else held.push(...jobs);
      };
      let cursor: DiscoveryCursor | undefined;
      let done = false;
      for (const page of pages) {
        await afterPage(planner.replay(page.r.map(fromEntry), page.s), page.l);
        if (page.c === null) done = true;
        else cursor = page.c;
      }
      let index = pages.length;
      const queueKey = deps.queueFor(region).toKey('');
      try {
        if (!done) {
          for await (const page of discoverPages(deps.cloud, p, region, deps.pageRetry, cursor, deps.pageSize)) {
            const { removals, batches } = planner.addPage(page.items);
            const entry: LogPage = { c: page.cursor, ...(page.left !== undefined ? { l: page.left } : {}), s: page.items.length, r: removals.map(toEntry) };
            const n = index++;
            await write(`log.append#${n}`, () => deps.ledger.appendScanLog(p.name, region, header.runId, n, entry));
            await afterPage(batches, page.left);
          }
        }
      } catch (err) {
        deps.metrics.policyErrors.inc({ policy: p.name, reason: 'scan' });
        if (final) {
          const counts = { scanned: planner.scanned, violating: planner.violating, tagsPlanned: planner.tagsPlanned };
          await write('ledger.recordFailed', () => deps.ledger.recordScanWithoutBatches(header.runId, p.name, region, 'scansFailed', counts));
          if (enqueued.length > 0) {
            // Its early batches run: the run waits for them, and the next run for them before it plans.
            await write('ledger.recordScan', () => deps.ledger.recordScan(header.runId, p.name, region, { ...counts, batchIds: enqueued, queueKey }));
            const status = { policy: p.name, region, runId: header.runId, ...counts, batches: enqueued.length, halted: false, failed: true, dryRun: header.dryRun, at: deps.now().toISOString(), hash: p.hash };
            await write('ledger.setPolicyStatus', () => deps.ledger.setPolicyStatus(p.name, region, status));
          }
          await write('log.delete', () => deps.ledger.deleteScanLog(p.name, region));
          await release();
        }
        log.warn('scan failed', { err, final, batchesEnqueued: enqueued.length });
        throw err;
      }
      const tail = jobsOf(planner.finish());
      const counts = { scanned: planner.scanned, violating: planner.violating, tagsPlanned: planner.tagsPlanned };
      deps.metrics.violations.set(labels, counts.tagsPlanned);
      const base = { ...none, runId: header.runId, dryRun: header.dryRun, ...counts };
      if (counts.tagsPlanned > cap) {
        deps.metrics.policyHalted.set(labels, 1);
        deps.metrics.policyErrors.inc({ policy: p.name, reason: 'halted' });
        await write('ledger.recordHalted', () => deps.ledger.recordScanWithoutBatches(header.runId, p.name, region, 'halted', counts));
        if (enqueued.length > 0) {
          // Only when the listing returned more than its TotalCount allowed for: at most the cap was enqueued.
          await write('ledger.recordScan', () => deps.ledger.recordScan(header.runId, p.name, region, { ...counts, batchIds: enqueued, queueKey }));
        }
        const status = { policy: p.name, region, runId: header.runId, ...counts, batches: enqueued.length, halted: true, at: at.toISOString(), hash: p.hash };
        await write('ledger.setPolicyStatus', () => deps.ledger.setPolicyStatus(p.name, region, status));
        await write('log.delete', () => deps.ledger.deleteScanLog(p.name, region));
        log.error('policy halted: run would exceed maxRemovalsPerRun', { tagsPlanned: counts.tagsPlanned, maxRemovalsPerRun: cap, batchesEnqueued: enqueued.length });
        return { ...base, batches: enqueued.length, halted: true };
      }
      deps.metrics.policyHalted.set(labels, 0);
      const rest = [...held, ...tail];
      await add(rest);
      for (const j of rest) enqueued.push(j.batchId);
      await write('ledger.recordScan', () => deps.ledger.recordScan(header.runId, p.name, region, { ...counts, batchIds: enqueued, queueKey }));
      const status = { policy: p.name, region, runId: header.runId, ...counts, batches: enqueued.length, halted: false, dryRun: header.dryRun, at: deps.now().toISOString(), hash: p.hash };
      await write('ledger.setPolicyStatus', () => deps.ledger.setPolicyStatus(p.name, region, status));
      await write('log.delete', () => deps.ledger.deleteScanLog(p.name, region));
      return { ...base, batches: enqueued.length };
    };

    try {
      const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      const previous = await deps.ledger.regionStatus(policy.name, region);
      let previousRun = typeof previous?.runId === 'string' ? previous.runId : undefined;
      const saved = (await deps.ledger.loadPlan(policy.name, region)) as SavedPlan | undefined;
      if (saved && (await deps.ledger.scanRecorded(saved.runId, policy.name, region)) && previousRun === saved.runId) {
        // Recorded and its status written: only the deletion of the plan was missing.
        await write('ledger.deletePlan', () => deps.ledger.deletePlan(policy.name, region));
      } else if (saved) {
        // A scan of the previous version was interrupted while enqueuing: finish enqueuing that plan, never a new one.
        log.warn('scan re-run after an interruption: enqueuing its saved plan', { batches: saved.jobs.length, plannedBy: saved.runId });
        const batches = await enqueueSaved(saved);
        if (saved.runId === runId) {
          await release();
          log.info('scan finished', { ...saved.counts, batches, dryRun });
          return { ...none, ...saved.counts, batches };
        }
        previousRun = saved.runId;
      }
      const unfinished = await deps.ledger.readScanLog(policy.name, region);
      if (unfinished) {
        const header = unfinished.header as unknown as LogHeader;
        if (previousRun === header.runId && (await deps.ledger.scanRecorded(header.runId, policy.name, region))) {
          // Recorded and its status written: only the deletion of the log was missing.
          await write('log.delete', () => deps.ledger.deleteScanLog(policy.name, region));
        } else {
          // A scan was interrupted: finish it from its log (its run, its policy, its time), never plan anew.
          log.warn('scan re-run after an interruption: finishing it from its log', { pagesLogged: unfinished.pages.length, plannedBy: header.runId });
          const result = await runLogged(header, unfinished.pages as LogPage[], final);
          if (header.runId === runId) {
            await release();
            log.info('scan finished', { scanned: result.scanned, violating: result.violating, tagsPlanned: result.tagsPlanned, batches: result.batches, dryRun: result.dryRun });
            return result;
          }
          previousRun = header.runId;
        }
      }
      if (await deps.ledger.scanRecorded(runId, policy.name, region)) {
        // This run's scan had finished (a scan job processed again after a lost lock): add nothing.
        await release();
        log.info('scan already finished for this run');
        const latest = previousRun === runId ? await deps.ledger.regionStatus(policy.name, region) : undefined;
        return latest ? { ...none, ...pick(latest) } : none;
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
      const header: LogHeader = { v: 2, runId, policy: parsed.data.policy, now: started.toISOString(), packing: deps.packing, dryRun, trigger };
      const opened = await write('log.open', () => deps.ledger.openScanLog(policy.name, region, header));
      if (!opened) throw new Error('another scan log of this policy and region appeared; the scan will be retried');
      const result = await runLogged(header, [], final);
      await release();
      const ended = deps.now();
      if (!result.halted) {
        deps.metrics.lastSuccess.set({ policy: policy.name }, ended.getTime() / 1000);
        deps.metrics.scanDuration.observe({ policy: policy.name }, (ended.getTime() - started.getTime()) / 1000);
      }
      if (!result.halted) log.info('scan finished', { scanned: result.scanned, violating: result.violating, tagsPlanned: result.tagsPlanned, batches: result.batches, dryRun });
      return result;
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
