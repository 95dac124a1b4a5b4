// `run --once`: scan every policy once, wait until every batch of the run has ended, return the summary.
import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { AppConfig } from '../config/index.js';
import { TagwardenError } from '../errors.js';
import { compilePolicies, type CompiledPolicy, type PolicyFinding } from '../policy/index.js';
import { readPolicySources } from '../policy-files/index.js';
import type { PolicyRunSummary } from '../queue/index.js';
import { createPolicyScheduler } from '../scheduler/index.js';
import { createCore, jobOptionsOf, type RuntimeOptions } from './core.js';

export interface OnceProgress {
  scans: number;
  scansEnded: number;
  batches: number;
  batchesEnded: number;
  removed: number;
}

export interface OnceOptions extends RuntimeOptions {
  policiesPaths: readonly string[];
  /** Only this policy. */
  policy?: string;
  /** Only policies for which this holds (e.g. those governing the run's account). */
  selectPolicy?: (policy: CompiledPolicy) => boolean;
  onProgress?: (progress: OnceProgress) => void;
  /** Give up waiting after this long (0 = wait as long as it takes). */
  timeoutMs?: number;
  pollMs?: number;
  /**
   * Stop the whole run at its first failure: no page retry, one attempt per scan (batches get the config's
   * attempts: `--fail-fast` sets them to 1), and no further waiting once a scan or a batch has failed.
   */
  failFast?: boolean;
}

export interface OnceResult {
  runId: string;
  policies: readonly CompiledPolicy[];
  findings: readonly PolicyFinding[];
  summary: PolicyRunSummary[];
  /** True when any batch or scan job failed for good, or the wait timed out. */
  failed: boolean;
  /** True when any policy was halted by its blast-radius cap (nothing of it was enqueued): not a success. */
  halted: boolean;
  timedOut: boolean;
  /** With failFast, when the run was stopped: what failed first (`scan of P in R failed: reason`). */
  stoppedAt?: string;
}

/** Runs every (valid) policy once with this process's workers, and waits for the whole run to end. */
export async function runOnce(config: AppConfig, options: OnceOptions): Promise<OnceResult> {
  const read = await readPolicySources(options.policiesPaths);
  const now = options.now ?? (() => new Date());
  const compiled = compilePolicies(read.sources, now());
  const findings = [...read.findings, ...compiled.findings];
  const named = compiled.policies.filter((p) => options.policy === undefined || p.name === options.policy);
  if (options.policy !== undefined && named.length === 0) {
    throw new TagwardenError('NOT_FOUND', `no valid policy named ${options.policy}`, { details: { policy: options.policy, valid: compiled.policies.map((p) => p.name) } });
  }
  const policies = named.filter((p) => options.selectPolicy?.(p) ?? true);
  // Batches for a region without an untag worker in this process would wait forever: refuse up front.
  const uncovered = policies.flatMap((p) => p.regions.filter((r) => !(config.regions as readonly string[]).includes(r)).map((r) => `${p.name}/${r}`));
  if (uncovered.length > 0) {
    throw new TagwardenError('CONFIG_INVALID', `policies name regions outside TAGWARDEN_REGIONS: ${uncovered.join(', ')}`);
  }
  const runId = `once-${randomUUID()}`;
  // Run-scoped queues: this process works only its own scans and batches, never a daemon's schedulers' jobs
  // that share the prefix. The scan lease and the shared rate limiter still see the daemon's work.
  const core = createCore(config, { ...options, queueScope: runId, ...(options.failFast ? { pageRetries: 0 } : {}) });
  const workers = core.createWorkers();
  const scanJobOptions = options.failFast ? { ...jobOptionsOf(config).scan, attempts: 1 } : jobOptionsOf(config).scan;
  const scheduler = createPolicyScheduler({ queue: core.scanQueue, scanJobOptions, logger: core.logger });
  let timedOut = false;
  let stoppedAt: string | undefined;
  let scanJobFailed = false;
  try {
    await core.redis.ping();
    workers.start();
    for (const p of policies) core.metrics.addPolicy(p.name, p.regions);
    const scanIds: string[] = [];
    for (const policy of policies) scanIds.push(...(await scheduler.scanNow(policy, 'once', runId)));
    const started = Date.now();
    for (;;) {
      const states = await Promise.all(scanIds.map(async (id) => (await core.scanQueue.getJob(id))?.getState() ?? 'unknown'));
      const scansEnded = states.filter((s) => s === 'completed' || s === 'failed' || s === 'unknown').length;
      scanJobFailed = states.includes('failed');
      const summary = await core.ledger.summary(runId);
      const pending = await core.ledger.livePending(runId);
      options.onProgress?.({
        scans: scanIds.length,
        scansEnded,
        batches: summary.reduce((n, s) => n + s.batches, 0),
        batchesEnded: summary.reduce((n, s) => n + s.batchesEnded, 0),
        removed: summary.reduce((n, s) => n + s.removed, 0),
      });
      if (options.failFast && (scanJobFailed || summary.some((s) => s.failed > 0 || s.scansFailed > 0))) {
        stoppedAt = await firstFailure(core.queues());
        break;
      }
      if (scansEnded === scanIds.length && pending === 0) break;
      if (options.timeoutMs && Date.now() - started > options.timeoutMs) {
        timedOut = true;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 250));
    }
    const summary = await core.ledger.summary(runId);
    const failed = timedOut || scanJobFailed || summary.some((s) => s.failed > 0 || s.scansFailed > 0);
    const halted = summary.some((s) => s.halted > 0);
    return { runId, policies, findings, summary, failed: failed || stoppedAt !== undefined, halted, timedOut, ...(stoppedAt !== undefined ? { stoppedAt } : {}) };
  } finally {
    try {
      await workers.close({ force: timedOut || stoppedAt !== undefined });
      // The run's queues are its own: nothing else will ever work them.
      for (const queue of core.queues()) await queue.obliterate({ force: true }).catch((err: unknown) => core.logger.warn('run queues not removed', { queue: queue.name, err }));
    } finally {
      await core.close();
    }
  }
}

/** The earliest failed job of the run's queues, as `scan of P in R failed: reason` or `batch B of P in R failed: reason`. */
async function firstFailure(queues: ReadonlyArray<Queue>): Promise<string> {
  const failed = (await Promise.all(queues.map((q) => q.getFailed(0, 20)))).flat();
  failed.sort((a, b) => (a.finishedOn ?? 0) - (b.finishedOn ?? 0));
  const job = failed[0];
  if (!job) return 'a scan or batch failed';
  const d = (job.data ?? {}) as { policy?: string | { metadata?: { name?: string }; name?: string }; region?: string; batchId?: string };
  // A scan job carries its policy document; a batch names its policy.
  const policy = typeof d.policy === 'object' ? (d.policy.metadata?.name ?? d.policy.name) : d.policy;
  const what = d.batchId ? `batch ${d.batchId} of ${String(policy)}` : `scan of ${String(policy)}`;
  return `${what} in ${String(d.region)} failed: ${job.failedReason}`;
}
