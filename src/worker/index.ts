// Owns the BullMQ workers: the scan processor, the untag processor per region, and the failure switch.
// Must not read config or the environment, nor build clients: runtime/ passes everything in.
import { Queue, Worker } from 'bullmq';
import { audit, redactString, redactValue, type Logger } from '../logging/index.js';
import type { Metrics } from '../metrics/index.js';
import { BACKOFF_TYPE, SCAN_QUEUE, UntagJobSchema, connectionErrorReporter, reportErrors, untagQueueName, type RedisClient } from '../queue/index.js';
import { jitteredBackoff, type BackoffOptions } from './backoff.js';
import { createScanProcessor, type ScanDeps } from './scan.js';
import { createUntagProcessor, type UntagDeps } from './untag.js';
import { createRegionSlots, withRegionSlot } from './region-slots.js';
import { KNOWN_REGIONS } from '../model.js';

export { jitteredBackoff } from './backoff.js';
export { actionFor, permanentReason, type FailureAction } from './failures.js';
export { discover, type PageRetry } from '../discovery/index.js';
export { createUnsendableTally, planRegion, type RegionPlan, type UnsendableKey, type UnsendableTally } from './plan-region.js';
export { REPEATED_SCAN_WRITE_POINTS, SCAN_WRITE_POINTS, scanWritePointOf, type ScanResult, type ScanWritePoint } from './scan.js';
export type { UntagResult } from './untag.js';

export interface WorkerPoolOptions {
  connection: RedisClient;
  prefix: string;
  account: string;
  regions: readonly string[];
  /** The queues to work (run-scoped for `run --once`); default the scan queue and untagQueueName(account, region). */
  queueNames?: { scan: string; untag(region: string): string };
  /** Untag jobs in flight per region queue in this process. */
  concurrency: number;
  /** Scans at once per region in this process (TAGWARDEN_SCAN_CONCURRENCY). */
  scanConcurrency: number;
  backoff: BackoffOptions;
  stalledIntervalMs: number;
  lockDurationMs: number;
  /** BullMQ's per-queue limiter on untag workers: a loose ceiling above the shared rate (see createWorkerPool). */
  untagLimiter: { max: number; durationMs: number };
  /** After close() is asked, how long in-flight jobs may finish before the workers are closed by force. */
  drainTimeoutMs: number;
  /**
   * An idle, unpaused worker whose queue has held a job this long (and is not rate-limited) has a stuck fetch
   * loop, which BullMQ can be left with after a Redis failover (a blocking connection lost with its master): the
   * worker is replaced. Default 20000 ms; 0 turns the watchdog off.
   */
  stuckAfterMs?: number;
  metrics: Metrics;
  logger: Logger;
  /** Secret values scrubbed from every failure reason and return value BullMQ stores (as the logs are). */
  secrets?: readonly string[];
}

export interface WorkerPool {
  start(): void;
  /** True while every worker is running (for readiness). */
  running(): boolean;
  /**
   * Stops taking jobs and lets in-flight ones finish within drainTimeoutMs; then closes by force. A job cut off
   * keeps its lock until it expires, and is then picked up by another replica with the same ClientToken.
   */
  close(options?: { force?: boolean }): Promise<{ drained: boolean }>;
  /** Stops taking untag jobs (in-flight ones finish), e.g. while the credentials are refused. */
  pauseUntag(): void;
  resumeUntag(): void;
}

/**
 * A processor whose failure reason, stack and return value pass the logs' redaction before BullMQ stores them
 * (in Redis for the retention period, shown by GET /v1/jobs, `jobs list` and Bull Board).
 */
export function redacting<T extends (...args: never[]) => Promise<unknown>>(processor: T, secrets: readonly string[]): T {
  return (async (...args: Parameters<T>) => {
    try {
      return redactValue(await processor(...args), secrets);
    } catch (err) {
      if (err instanceof Error) {
        err.message = redactString(err.message, secrets);
        if (err.stack) err.stack = redactString(err.stack, secrets);
      }
      throw err;
    }
  }) as T;
}

/** Creates one scan worker and one untag worker per region queue (a throttled region pauses only its queue). */
export function createWorkerPool(
  options: WorkerPoolOptions,
  deps: Omit<ScanDeps, 'queueFor'> & Omit<UntagDeps, 'queueFor'>,
  queueFor: (region: string) => Queue,
): WorkerPool {
  const workers: Worker[] = [];
  /** Jobs in flight per worker, from its own events (BullMQ exposes no count). */
  const inFlight = new Map<Worker, number>();
  let closing: Promise<{ drained: boolean }> | undefined;
  let watchdog: NodeJS.Timeout | undefined;
  const common = {
    connection: options.connection,
    prefix: options.prefix,
    autorun: false,
    stalledInterval: options.stalledIntervalMs,
    lockDuration: options.lockDurationMs,
    maxStalledCount: 3,
    settings: {
      backoffStrategy: (attemptsMade: number, type?: string) => {
        if (type !== BACKOFF_TYPE) throw new Error(`unknown backoff type ${type ?? ''}`);
        return strategy(attemptsMade);
      },
    },
  };
  const strategy = jitteredBackoff(options.backoff);

  const watch = (worker: Worker, api: 'UnTagResources' | 'ListVpcPeerConnections') => {
    inFlight.set(worker, 0);
    worker.on('active', () => inFlight.set(worker, (inFlight.get(worker) ?? 0) + 1));
    const ended = () => inFlight.set(worker, Math.max(0, (inFlight.get(worker) ?? 0) - 1));
    worker.on('completed', ended);
    worker.on('failed', ended);
    worker.on('error', (err) => options.logger.error('worker error', { queue: worker.name, err }));
    worker.on('stalled', (jobId) => {
      options.metrics.retries.inc({ api, reason: 'stalled' });
      options.logger.warn('job stalled, moved back to wait', { queue: worker.name, jobId });
    });
    workers.push(worker);
  };

  const secrets = options.secrets ?? [];
  const scanName = options.queueNames?.scan ?? SCAN_QUEUE;
  const untagName = options.queueNames?.untag ?? ((region: string) => untagQueueName(options.account, region));
  // Scans are bounded per region (the List quota's scope), so every region scans at once: the worker takes up
  // to that many scans of each known region, and a scan whose region is full waits in the delayed set.
  const slots = createRegionSlots(options.scanConcurrency);
  const scan = withRegionSlot(
    slots,
    (job) => {
      const region = (job.data as { region?: unknown } | undefined)?.region;
      return typeof region === 'string' ? region : undefined;
    },
    redacting(createScanProcessor({ ...deps, queueFor }), secrets),
    (job, region) => options.logger.debug('scan waits for a slot of its region', { jobId: job.id, region }),
  );
  const scanWorkerConcurrency = Math.min(256, options.scanConcurrency * KNOWN_REGIONS.length);
  /** How to build each worker again, for the watchdog. */
  const factories = new Map<Worker, () => Worker>();
  const makeScan = (): Worker => {
    const worker = new Worker(scanName, scan, { ...common, concurrency: scanWorkerConcurrency });
    watch(worker, 'ListVpcPeerConnections');
    factories.set(worker, makeScan);
    return worker;
  };
  makeScan();
  const untag = redacting(createUntagProcessor({ ...deps, queueFor }), secrets);
  const makeUntag = (region: string): Worker => {
    // The limiter never binds before the shared GCRA limiter does (twice its rate); it is there because BullMQ
    // honours a queue's rate-limit pause (queue.rateLimit after a throttling answer) only on limited workers.
    const worker = new Worker(untagName(region), untag, {
      ...common,
      concurrency: options.concurrency,
      limiter: { max: options.untagLimiter.max, duration: options.untagLimiter.durationMs },
    });
    // A job whose workers kept dying fails without reaching the processor's own bookkeeping: record it here.
    worker.on('failed', (job, err) => {
      if (!job || !/stalled more than allowable limit/i.test(err.message)) return;
      const batch = UntagJobSchema.safeParse(job.data);
      if (!batch.success) return;
      const { runId, policy, batchId, resourceIds, tagKeys, all, dryRun, source } = batch.data;
      const label = source === 'api' ? 'api' : deps.metrics.policyLabel(policy);
      deps.ledger
        .recordBatchEnd(runId, policy, batchId, { outcome: 'failed', removed: 0, calls: 0, notFound: 0 })
        .then((first) => {
          if (first) deps.metrics.batches.inc({ policy: label, region, outcome: 'failed' });
        })
        .catch((e: unknown) => options.logger.error('ledger update failed', { batchId, err: e }));
      const resources = Object.fromEntries(resourceIds.map((id) => [id, { outcome: 'failed' as const, keys: [] }]));
      audit(options.logger.child({ jobId: job.id, batchId, policy, region }), {
        policy,
        region,
        batchId,
        clientToken: batchId,
        resourceIds,
        tagKeys,
        all,
        dryRun,
        attempt: job.attemptsMade,
        outcome: 'failed',
        reason: err.message,
        resources,
      });
    });
    watch(worker, 'UnTagResources');
    factories.set(worker, () => makeUntag(region));
    return worker;
  };
  for (const region of options.regions) makeUntag(region);

  const run = (worker: Worker) => {
    worker.run().catch((err: unknown) => options.logger.error('worker stopped with an error', { queue: worker.name, err }));
  };
  /** True when the worker takes nothing while its queue has had a job waiting for longer than stuckAfterMs. */
  const stuck = async (worker: Worker, stuckAfterMs: number): Promise<boolean> => {
    if ((inFlight.get(worker) ?? 0) > 0 || worker.isPaused() || !worker.isRunning()) return false;
    const target = queueOf(worker);
    if ((await target.getRateLimitTtl()) > 0) return false;
    const [oldest] = await target.getJobs(['wait'], -1, -1, true);
    return oldest !== undefined && Date.now() - oldest.timestamp > stuckAfterMs && (inFlight.get(worker) ?? 0) === 0;
  };
  const queues = new Map<string, Queue>();
  const report = connectionErrorReporter(options.logger);
  const queueOf = (worker: Worker): Queue => {
    let queue = queues.get(worker.name);
    if (!queue) {
      queue = reportErrors(new Queue(worker.name, { connection: options.connection, prefix: options.prefix }), `watchdog ${worker.name}`, report);
      queues.set(worker.name, queue);
    }
    return queue;
  };
  const checkStuck = async (stuckAfterMs: number) => {
    for (const worker of [...workers]) {
      if (closing) return;
      if (!(await stuck(worker, stuckAfterMs).catch(() => false)) || closing) continue;
      // Replace it: the old one is closed by force without waiting (its loop may never return).
      options.logger.warn('worker takes no jobs while its queue has waiting ones; replacing it', { queue: worker.name, stuckAfterMs });
      options.metrics.retries.inc({ api: worker.name === scanName ? 'ListVpcPeerConnections' : 'UnTagResources', reason: 'stalled' });
      const make = factories.get(worker);
      workers.splice(workers.indexOf(worker), 1);
      inFlight.delete(worker);
      factories.delete(worker);
      void worker.close(true).catch(() => undefined);
      if (make) run(make());
    }
  };

  return {
    start() {
      for (const worker of workers) run(worker);
      const stuckAfterMs = options.stuckAfterMs ?? 20_000;
      if (stuckAfterMs > 0) {
        let checking = false;
        watchdog = setInterval(() => {
          if (checking || closing) return;
          checking = true;
          void checkStuck(stuckAfterMs).finally(() => {
            checking = false;
          });
        }, Math.max(1_000, Math.round(stuckAfterMs / 4)));
        watchdog.unref();
      }
    },
    running() {
      return closing === undefined && workers.every((w) => w.isRunning());
    },
    close({ force = false } = {}) {
      closing ??= (async () => {
        clearInterval(watchdog);
        // Pausing stops taking jobs and resolves once the active ones have finished; the first close() then
        // decides graceful or forced (BullMQ hands every later close() the first one's promise).
        let drained = false;
        if (!force) {
          let timer: NodeJS.Timeout | undefined;
          const timeout = new Promise<false>((resolve) => {
            timer = setTimeout(() => resolve(false), options.drainTimeoutMs);
          });
          drained = await Promise.race([Promise.all(workers.map((w) => w.pause())).then(() => true), timeout]);
          clearTimeout(timer);
          if (!drained) options.logger.warn('drain timed out, closing workers by force', { drainTimeoutMs: options.drainTimeoutMs });
        }
        await Promise.all(workers.map((w) => w.close(!drained)));
        await Promise.all([...queues.values()].map((q) => q.close().catch(() => undefined)));
        return { drained };
      })();
      return closing;
    },
    pauseUntag() {
      for (const w of workers) if (w.name !== scanName && !w.isPaused()) void w.pause(true);
    },
    resumeUntag() {
      if (closing) return;
      for (const w of workers) if (w.name !== scanName && w.isPaused()) void w.resume();
    },
  };
}
