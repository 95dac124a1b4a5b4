// `tagwarden plan`: read-only. Reads the live state, matches and plans, and reports what a run would change.
import { createCloudClient } from '../cloud/index.js';
import type { AppConfig } from '../config/index.js';
import { MAX_KEYS_PER_CALL, type Removal } from '../model.js';
import { compilePolicies, type PolicyFinding } from '../policy/index.js';
import { readPolicySources } from '../policy-files/index.js';
import { createLocalPacer } from '../ratelimit/index.js';
import { planRegion } from '../worker/index.js';
import { cloudOptionsOf, pageRetryOf } from './core.js';

export interface PlanRow {
  policy: string;
  region: string;
  mode: 'enforce' | 'dryRun';
  scanned: number;
  violating: number;
  tagsToRemove: number;
  /** UnTagResources calls tagwarden would make. */
  calls: number;
  /**
   * The fewest calls these removals need whatever the packing: all=true resources in calls of 20, key removals
   * the larger of ceil(sum of ceil(keys / 20) / 20) and ceil(pairs / 400). It is ceil(violating / 20) unless a
   * resource loses more than 20 keys or all=true and key calls each leave a call part-filled.
   */
  floor: number;
  /** Calls a naive client would make: one per resource (per 20 keys). */
  naiveCalls: number;
  /** True when the run would exceed maxRemovalsPerRun and be halted. */
  overCap: boolean;
  /** With verbose: every resource and its keys (or all). */
  resources?: Array<{ id: string; all: boolean; keys: readonly string[] }>;
}

export interface PlanReport {
  findings: readonly PolicyFinding[];
  rows: PlanRow[];
  /** True when any enforcing policy would change something. */
  changesPending: boolean;
  /** True when any policy would be halted by its blast-radius cap (`plan` exits 3: see PLAN_EXIT). */
  halted: boolean;
}

/** `tagwarden plan` exit codes. A halt is neither "nothing to do" nor "changes pending": a CI gate must stop. */
export const PLAN_EXIT = { clean: 0, error: 1, changesPending: 2, halted: 3 } as const;

/** The exit code of a plan report: error, then halted, then changes pending, else clean. */
export function planExitCode(report: PlanReport): number {
  if (report.findings.some((f) => f.severity === 'error')) return PLAN_EXIT.error;
  if (report.halted) return PLAN_EXIT.halted;
  return report.changesPending ? PLAN_EXIT.changesPending : PLAN_EXIT.clean;
}

export interface PlanOptions {
  policiesPaths: readonly string[];
  policy?: string;
  verbose?: boolean;
  credentials?: { accessKeyId: string; accessKeySecret: string };
  onProgress?: (event: { policy: string; region: string; scanned: number }) => void;
  now?: () => Date;
}

/** Plans every policy against the live state with read-only calls, paced within the List* quotas. */
export async function planPolicies(config: AppConfig, options: PlanOptions): Promise<PlanReport> {
  const now = options.now ?? (() => new Date());
  const read = await readPolicySources(options.policiesPaths);
  const compiled = compilePolicies(read.sources, now());
  const findings = [...read.findings, ...compiled.findings];
  const pacer = createLocalPacer({ quotas: config.quotas, windowMs: config.quotaWindowMs, fraction: config.quotaFraction });
  const cloud = createCloudClient(cloudOptionsOf(config, options.credentials), { before: (api, region) => pacer.acquire(region, api) });
  const rows: PlanRow[] = [];
  for (const policy of compiled.policies) {
    if (options.policy !== undefined && policy.name !== options.policy) continue;
    for (const region of policy.regions) {
      const resources: NonNullable<PlanRow['resources']> = [];
      let naiveCalls = 0;
      const plan = await planRegion(cloud, policy, region, {
        runId: 'plan',
        now: now(),
        retry: pageRetryOf(config),
        packing: config.packing,
        // Only the count matters here: batches are dropped as they are planned, so memory stays flat.
        onBatches: () => undefined,
        onRemoval: (r: Removal) => {
          naiveCalls += r.all ? 1 : Math.ceil(r.keys.length / MAX_KEYS_PER_CALL);
          if (options.verbose) resources.push({ id: r.resourceId, all: r.all, keys: r.keys });
        },
        onScanned: (scanned) => options.onProgress?.({ policy: policy.name, region, scanned }),
      });
      rows.push({
        policy: policy.name,
        region,
        mode: config.dryRun ? 'dryRun' : policy.mode,
        scanned: plan.scanned,
        violating: plan.violating,
        tagsToRemove: plan.tagsPlanned,
        calls: plan.calls,
        floor: plan.floor.bound,
        naiveCalls,
        overCap: plan.tagsPlanned > policy.maxRemovalsPerRun,
        ...(options.verbose ? { resources } : {}),
      });
    }
  }
  const changesPending = rows.some((r) => r.mode === 'enforce' && r.tagsToRemove > 0 && !r.overCap);
  return { findings, rows, changesPending, halted: rows.some((r) => r.overCap) };
}
