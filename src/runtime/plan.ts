// `tagwarden plan`: read-only. Reads the live state, matches and plans, and reports what a run would change.
import { randomUUID } from 'node:crypto';
import { createCloudClient, type SdkCredentialsProvider } from '../cloud/index.js';
import type { AppConfig } from '../config/index.js';
import { MAX_KEYS_PER_CALL, type Batch, type Removal, type Resource } from '../model.js';
import { compilePolicies, explainResource, type CompiledPolicy, type PolicyFinding } from '../policy/index.js';
import { readPolicySources } from '../policy-files/index.js';
import { createLocalPacer } from '../ratelimit/index.js';
import { createUnsendableTally, planRegion, type PageRetry } from '../worker/index.js';
import { cloudOptionsOf, pageRetryOf } from './core.js';

/** One connection in the diff: the tags it loses (with their values), and with verbose what it keeps. */
export interface PlanResource {
  id: string;
  /** True when UnTagResources All=true removes every tag. */
  all: boolean;
  /** The keys removed (with all: every key carried). */
  keys: readonly string[];
  /** Values of the removed keys, as read. */
  values: Readonly<Record<string, string>>;
  /** With verbose: keys the policy targets but keeps (keep rules, system tags). */
  kept?: readonly string[];
  /** With verbose: an exemption in force leaves these keys on the connection until `until`. */
  exempt?: { keys: readonly string[]; until: string };
}

export interface PlanRow {
  policy: string;
  /** The policy's content hash: a saved plan applies only while the policy is unchanged. */
  policyHash: string;
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
  maxRemovalsPerRun: number;
  /** With details: every connection that loses tags (and with verbose, exempt ones), in discovery order. */
  resources?: PlanResource[];
  /** With keepBatches: the planned calls, with their ids (= ClientTokens). */
  batches?: Batch[];
}

export interface PlanReport {
  /** The plan's run id: part of every batch id (and so of every ClientToken) a saved plan applies. */
  runId: string;
  createdAt: string;
  findings: readonly PolicyFinding[];
  rows: PlanRow[];
  /** True when any enforcing policy would change something. */
  changesPending: boolean;
  /** True when any policy would be halted by its blast-radius cap (`plan` exits 3: see PLAN_EXIT). */
  halted: boolean;
  /** What would be applied: enforcing rows that are not halted. Halted and dry-run policies are counted apart. */
  totals: { tags: number; connections: number; calls: number; policies: number; halted: number; dryRun: number };
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
  /** 'diff': connections that lose tags, with values; 'verbose': also kept and exempt keys. Default none. */
  details?: 'none' | 'diff' | 'verbose';
  /** Keep the planned batches in the report (for `plan --out`). */
  keepBatches?: boolean;
  /** Bounds the page retries (default: the config's retry attempts) and tells of each. */
  retry?: Partial<Pick<PageRetry, 'maxFailures' | 'onRetry'>>;
  credentials?: { accessKeyId: string; accessKeySecret: string };
  /** A member account's assumed-role credentials (runtime/accounts.ts); wins over `credentials`. */
  credentialsProvider?: SdkCredentialsProvider;
  /** Only policies for which this holds (e.g. those governing the plan's account). */
  selectPolicy?: (policy: CompiledPolicy) => boolean;
  onProgress?: (event: { policy: string; region: string; scanned: number; regionsDone: number; regions: number }) => void;
  now?: () => Date;
  /** Deprecated spelling of details: 'verbose'. */
  verbose?: boolean;
}

/** Plans every policy against the live state with read-only calls, paced within the List* quotas. */
export async function planPolicies(config: AppConfig, options: PlanOptions): Promise<PlanReport> {
  const now = options.now ?? (() => new Date());
  const details = options.details ?? (options.verbose ? 'verbose' : 'none');
  const read = await readPolicySources(options.policiesPaths);
  const compiled = compilePolicies(read.sources, now());
  const findings = [...read.findings, ...compiled.findings];
  const pacer = createLocalPacer({ quotas: config.quotas, windowMs: config.quotaWindowMs, fraction: config.quotaFraction });
  const cloud = createCloudClient(
    { ...cloudOptionsOf(config, options.credentials), ...(options.credentialsProvider ? { credentialsProvider: options.credentialsProvider } : {}) },
    { before: (api, region) => pacer.acquire(region, api) },
  );
  const retry: PageRetry = { ...pageRetryOf(config), ...options.retry };
  const runId = `plan-${randomUUID()}`;
  const createdAt = now();
  const rows: PlanRow[] = [];
  const chosen = compiled.policies.filter(
    (p) => (options.policy === undefined || p.name === options.policy) && (options.selectPolicy === undefined || options.selectPolicy(p)),
  );
  const regions = chosen.reduce((n, p) => n + p.regions.length, 0);
  let regionsDone = 0;
  for (const policy of chosen) {
    for (const region of policy.regions) {
      const resources: PlanResource[] = [];
      let naiveCalls = 0;
      const at = now();
      const kept: Batch[] = [];
      const unsendable = createUnsendableTally();
      const plan = await planRegion(cloud, policy, region, {
        runId,
        onUnsendable: (u) => void unsendable.add(u),
        now: at,
        retry,
        packing: config.packing,
        // Only the count matters here unless the plan is saved: otherwise batches are dropped as they are planned,
        // so memory stays flat.
        onBatches: options.keepBatches ? (batches) => void kept.push(...batches) : () => undefined,
        onRemoval: (r: Removal) => {
          naiveCalls += r.all ? 1 : Math.ceil(r.keys.length / MAX_KEYS_PER_CALL);
        },
        ...(details !== 'none'
          ? {
              onResource: (resource: Resource, removal: Removal | null) => {
                if (!removal && details !== 'verbose') return;
                const why = details === 'verbose' ? explainResource(policy, resource, at) : null;
                if (!removal && !why?.exempt) return;
                const keys = removal?.keys ?? [];
                resources.push({
                  id: resource.id,
                  all: removal?.all === true,
                  keys,
                  values: Object.fromEntries(keys.map((k) => [k, resource.tags[k] ?? ''])),
                  ...(why ? { kept: why.kept } : {}),
                  ...(why?.exempt ? { exempt: { keys: why.exempt.keys, until: new Date(why.exempt.untilMs).toISOString().replace('.000Z', 'Z') } } : {}),
                });
              },
            }
          : {}),
        onScanned: (scanned) => options.onProgress?.({ policy: policy.name, region, scanned, regionsDone, regions }),
      });
      regionsDone += 1;
      findings.push(...unsendable.findings(policy, region));
      options.onProgress?.({ policy: policy.name, region, scanned: plan.scanned, regionsDone, regions });
      rows.push({
        policy: policy.name,
        policyHash: policy.hash,
        region,
        mode: config.dryRun ? 'dryRun' : policy.mode,
        scanned: plan.scanned,
        violating: plan.violating,
        tagsToRemove: plan.tagsPlanned,
        calls: plan.calls,
        floor: plan.floor.bound,
        naiveCalls,
        overCap: plan.tagsPlanned > policy.maxRemovalsPerRun,
        maxRemovalsPerRun: policy.maxRemovalsPerRun,
        ...(details !== 'none' ? { resources } : {}),
        ...(options.keepBatches ? { batches: kept } : {}),
      });
    }
  }
  const changesPending = rows.some((r) => r.mode === 'enforce' && r.tagsToRemove > 0 && !r.overCap);
  const haltedPolicies = new Set(rows.filter((r) => r.overCap).map((r) => r.policy));
  const live = rows.filter((r) => !r.overCap && r.mode === 'enforce');
  const totals = {
    tags: live.reduce((n, r) => n + r.tagsToRemove, 0),
    connections: live.reduce((n, r) => n + r.violating, 0),
    calls: live.reduce((n, r) => n + r.calls, 0),
    policies: new Set(rows.map((r) => r.policy)).size,
    halted: haltedPolicies.size,
    dryRun: new Set(rows.filter((r) => r.mode === 'dryRun' && !r.overCap).map((r) => r.policy)).size,
  };
  return { runId, createdAt: createdAt.toISOString(), findings, rows, changesPending, halted: rows.some((r) => r.overCap), totals };
}
