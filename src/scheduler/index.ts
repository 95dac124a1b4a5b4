// Owns turning policies into BullMQ job schedulers (one scan per interval whatever the replica count) and the
// reload loop: policy files change -> compile -> keep last good versions -> sync schedulers.
// Must not scan or call the cloud: scans are jobs that worker/ processes.
import type { JobsOptions, Queue } from 'bullmq';
import { CronExpressionParser } from 'cron-parser';
import type { Logger } from '../logging/index.js';
import type { Metrics } from '../metrics/index.js';
import { compilePolicies, formatFinding, retainLastGood, type CompiledPolicy, type PolicyFinding, type PolicySource } from '../policy/index.js';
import type { ScanJob, ScanLease } from '../queue/index.js';

const SCHEDULER_PREFIX = 'scan-';

/**
 * A policy's scan interval in seconds: `every`, or for cron the gap between its next two runs after `now`
 * (cron-parser is the library BullMQ itself uses for job schedulers, so both agree on the schedule).
 */
export function intervalSeconds(policy: CompiledPolicy, now: Date): number {
  if ('everyMs' in policy.schedule) return policy.schedule.everyMs / 1000;
  const cron = CronExpressionParser.parse(policy.schedule.cron, { currentDate: now, tz: 'UTC' });
  const first = cron.next().getTime();
  return (cron.next().getTime() - first) / 1000;
}

/** The scheduler ID of one policy in one region. */
export function schedulerId(policy: string, region: string): string {
  return `${SCHEDULER_PREFIX}${policy}-${region}`;
}

function scanData(policy: CompiledPolicy, region: string, trigger: ScanJob['trigger'], runId?: string): ScanJob {
  return {
    v: 1,
    policy: policy.document as unknown as Record<string, unknown>,
    region: region as ScanJob['region'],
    trigger,
    ...(runId ? { runId } : {}),
  };
}

export interface PolicySchedulerOptions {
  queue: Queue;
  scanJobOptions: JobsOptions;
  logger: Logger;
}

/** Keeps the scan queue's job schedulers equal to the policy set; idempotent, safe from every replica. */
export function createPolicyScheduler(options: PolicySchedulerOptions) {
  const { queue, logger } = options;
  return {
    /**
     * Upserts the schedulers of `policies` and, when `removeStale`, removes the scan schedulers of policies
     * that are gone. Callers pass removeStale=false whenever the load had errors: a replica that could not
     * read a file (or the whole directory) must not delete the schedulers every other replica relies on.
     */
    async sync(policies: readonly CompiledPolicy[], { removeStale = true }: { removeStale?: boolean } = {}): Promise<{ upserted: number; removed: number }> {
      const desired = new Map<string, { policy: CompiledPolicy; region: string }>();
      for (const policy of policies) for (const region of policy.regions) desired.set(schedulerId(policy.name, region), { policy, region });
      const existing = await queue.getJobSchedulers(0, -1, true);
      let removed = 0;
      for (const scheduler of existing) {
        const id = scheduler.key;
        if (removeStale && id.startsWith(SCHEDULER_PREFIX) && !desired.has(id)) {
          await queue.removeJobScheduler(id);
          removed += 1;
        }
      }
      let upserted = 0;
      for (const [id, { policy, region }] of desired) {
        const data = scanData(policy, region, 'schedule');
        const repeat = 'everyMs' in policy.schedule ? { every: policy.schedule.everyMs } : { pattern: policy.schedule.cron, tz: 'UTC' };
        const current = existing.find((s) => s.key === id);
        const same =
          current !== undefined &&
          JSON.stringify(current.template?.data) === JSON.stringify(data) &&
          (current.every ?? undefined) === ('every' in repeat ? repeat.every : undefined) &&
          (current.pattern ?? undefined) === ('pattern' in repeat ? repeat.pattern : undefined);
        if (same) continue; // upserting an unchanged scheduler would move its next run
        await queue.upsertJobScheduler(id, repeat, { name: 'scan', data, opts: options.scanJobOptions });
        upserted += 1;
      }
      if (upserted + removed > 0) logger.info('job schedulers synced', { upserted, removed, schedulers: desired.size });
      return { upserted, removed };
    },

    /** Adds one scan job per region of the policy now, outside its schedule. */
    async scanNow(policy: CompiledPolicy, trigger: ScanJob['trigger'], runId?: string): Promise<string[]> {
      const jobs = await queue.addBulk(
        policy.regions.map((region) => ({ name: 'scan', data: scanData(policy, region, trigger, runId), opts: options.scanJobOptions })),
      );
      return jobs.map((j) => j.id ?? '');
    },
  };
}

export type PolicyScheduler = ReturnType<typeof createPolicyScheduler>;

/** What a scan request got, per region. */
export interface ScanRequestResult {
  region: string;
  jobId: string;
  /** running: a scan of this policy and region was running, and this is it; queued: a scan job waits. */
  state: 'running' | 'queued';
}

/**
 * A scan requested from outside the schedule (the API): per region, the running scan when one holds the lease,
 * else one queued scan job, deduplicated per (policy, region) until it ends, so requests that arrive together
 * get the same job.
 */
export async function requestScan(queue: Queue, lease: Pick<ScanLease, 'holder'>, policy: CompiledPolicy, scanJobOptions: JobsOptions): Promise<ScanRequestResult[]> {
  const out: ScanRequestResult[] = [];
  for (const region of policy.regions) {
    const holder = await lease.holder(policy.name, region);
    if (holder?.jobId) {
      out.push({ region, jobId: holder.jobId, state: 'running' });
      continue;
    }
    const job = await queue.add('scan', scanData(policy, region, 'api'), { ...scanJobOptions, deduplication: { id: schedulerId(policy.name, region) } });
    out.push({ region, jobId: job.id ?? '', state: 'queued' });
  }
  return out;
}

export interface PolicySetOptions {
  read(): Promise<{ sources: PolicySource[]; findings: PolicyFinding[] }>;
  now(): Date;
  metrics: Metrics;
  logger: Logger;
  /** Only the policies for which this holds run here (a member account runs those that govern it). */
  select?: (policy: CompiledPolicy) => boolean;
  /** Called after every load with the policies that run now and whether the load was free of errors. */
  onChange(policies: readonly CompiledPolicy[], clean: boolean): Promise<void>;
}

/**
 * The live policy set: loads, reports every finding (log and metric), keeps the last good version of a policy
 * whose file broke, and hands the result on. One bad file never stops the good policies.
 */
export function createPolicySet(options: PolicySetOptions) {
  let current: CompiledPolicy[] = [];
  let findings: PolicyFinding[] = [];
  let loaded = false;
  return {
    /** Compiles what was read (or reads now); safe to call repeatedly (each call replaces the set). */
    async reload(read?: { sources: PolicySource[]; findings: PolicyFinding[] }): Promise<void> {
      const { sources, findings: readFindings } = read ?? (await options.read());
      const compiled = compilePolicies(sources, options.now());
      findings = [...readFindings, ...compiled.findings];
      const chosen = options.select === undefined ? compiled.policies : compiled.policies.filter(options.select);
      const { policies, retained } = retainLastGood(current, { policies: chosen, findings });
      // Series follow the loaded policies: zeroed for each one's own regions, removed for the ones gone.
      for (const p of policies) options.metrics.addPolicy(p.name, p.regions);
      await options.metrics.retainPolicies(new Set(policies.map((p) => p.name)));
      for (const f of findings) {
        const fields = { file: f.file, line: f.line, column: f.column, path: f.path, stage: f.stage, policy: f.policy, finding: formatFinding(f) };
        if (f.severity === 'error') {
          // A name from a broken document is a label only when that policy runs (its last good version).
          options.metrics.policyErrors.inc({ policy: options.metrics.policyLabel(f.policy), reason: f.stage === 'yaml' && f.line === 0 ? 'load' : 'validation' });
          options.logger.error('policy finding', fields);
        } else options.logger.warn('policy finding', fields);
      }
      for (const p of retained) options.logger.warn('policy file broken, last good version keeps running', { policy: p.name, file: p.source.file });
      for (const p of policies) {
        options.metrics.policyInterval.set({ policy: p.name }, intervalSeconds(p, options.now()));
      }
      options.metrics.policiesLoaded.set(policies.length);
      current = policies;
      loaded = true;
      await options.onChange(current, !findings.some((f) => f.severity === 'error'));
    },
    policies(): readonly CompiledPolicy[] {
      return current;
    },
    findings(): readonly PolicyFinding[] {
      return findings;
    },
    loaded(): boolean {
      return loaded;
    },
  };
}

export type PolicySet = ReturnType<typeof createPolicySet>;
