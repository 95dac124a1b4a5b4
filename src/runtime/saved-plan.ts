// `plan --out FILE` and `run --once --plan FILE`: what runs is what was reviewed. The file holds the plan's batches
// with their ids (= ClientTokens); applying it enqueues exactly those batches and waits for them, after refusing a
// plan that is stale (too old, or a policy changed since) or made for another estate (endpoint, account).
import { readFile, writeFile } from 'node:fs/promises';
import type { AppConfig } from '../config/index.js';
import { TagwardenError } from '../errors.js';
import type { Batch } from '../model.js';
import { compilePolicies } from '../policy/index.js';
import { readPolicySources } from '../policy-files/index.js';
import type { PolicyRunSummary, UntagJob } from '../queue/index.js';
import { createCore, jobOptionsOf, type RuntimeOptions } from './core.js';
import type { PlanReport } from './plan.js';

export const SAVED_PLAN_KIND = 'tagwarden-plan';
export const SAVED_PLAN_VERSION = 1;
/** Default age after which a saved plan is refused: the estate has had time to change under it. */
export const DEFAULT_MAX_PLAN_AGE_MS = 3_600_000;

/** The file `plan --out` writes. */
export interface SavedPlan {
  kind: typeof SAVED_PLAN_KIND;
  version: typeof SAVED_PLAN_VERSION;
  runId: string;
  createdAt: string;
  /** The estate the plan was read from; another one is refused. */
  estate: { endpoint: string; accountId: string };
  /** Every planned (policy, region): its counts, the policy hash it was planned with, and its batches. */
  rows: Array<{
    policy: string;
    policyHash: string;
    region: string;
    scanned: number;
    violating: number;
    tagsToRemove: number;
    /** Halted (over its cap) or dry-run rows are kept for the record but apply nothing. */
    applies: boolean;
    why?: 'halted' | 'dryRun';
    batches: Batch[];
  }>;
}

/** Writes the plan of `report` (made with keepBatches) to `file`, readable only by its owner. */
export async function savePlan(file: string, report: PlanReport, config: AppConfig): Promise<SavedPlan> {
  const saved: SavedPlan = {
    kind: SAVED_PLAN_KIND,
    version: SAVED_PLAN_VERSION,
    runId: report.runId,
    createdAt: report.createdAt,
    estate: { endpoint: config.endpoint, accountId: config.accountId },
    rows: report.rows.map((r) => {
      const why = r.overCap ? ('halted' as const) : r.mode === 'dryRun' ? ('dryRun' as const) : undefined;
      return {
        policy: r.policy,
        policyHash: r.policyHash,
        region: r.region,
        scanned: r.scanned,
        violating: r.violating,
        tagsToRemove: r.tagsToRemove,
        applies: why === undefined,
        ...(why ? { why } : {}),
        batches: why === undefined ? (r.batches ?? []) : [],
      };
    }),
  };
  await writeFile(file, `${JSON.stringify(saved, null, 2)}\n`, { mode: 0o600 });
  return saved;
}

/** Reads and checks the shape of a saved plan; throws CONFIG_INVALID saying what is wrong. */
export async function readSavedPlan(file: string): Promise<SavedPlan> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new TagwardenError('CONFIG_INVALID', `${file}: not a saved plan (${err instanceof Error ? err.message : String(err)})`);
  }
  const d = doc as Partial<SavedPlan>;
  if (typeof d !== 'object' || d === null || d.kind !== SAVED_PLAN_KIND) {
    throw new TagwardenError('CONFIG_INVALID', `${file}: not a saved plan (write one with \`tagwarden plan --out ${file}\`)`);
  }
  if (d.version !== SAVED_PLAN_VERSION) {
    throw new TagwardenError('CONFIG_INVALID', `${file}: saved plan version ${String(d.version)} is not ${SAVED_PLAN_VERSION}; plan again`);
  }
  if (typeof d.runId !== 'string' || typeof d.createdAt !== 'string' || !d.estate || !Array.isArray(d.rows)) {
    throw new TagwardenError('CONFIG_INVALID', `${file}: saved plan is incomplete; plan again`);
  }
  return d as SavedPlan;
}

/**
 * Why this plan must not be applied with this config and these policies now, or [] when it may. Stale: older
 * than maxAgeMs, or a policy it planned has changed or is gone. Another estate: another endpoint or account.
 */
export async function refusalsOf(plan: SavedPlan, config: AppConfig, policiesPaths: readonly string[], now: Date, maxAgeMs: number): Promise<string[]> {
  const reasons: string[] = [];
  if (plan.estate.endpoint !== config.endpoint || plan.estate.accountId !== config.accountId) {
    reasons.push(
      `the plan is for another estate: endpoint ${plan.estate.endpoint}, account ${plan.estate.accountId}; ` +
        `this run targets endpoint ${config.endpoint}, account ${config.accountId}`,
    );
  }
  const ageMs = now.getTime() - Date.parse(plan.createdAt);
  if (!Number.isFinite(ageMs) || ageMs > maxAgeMs) {
    reasons.push(`the plan is stale: made ${plan.createdAt}, ${Math.round(ageMs / 60_000)} min ago, older than ${Math.round(maxAgeMs / 60_000)} min (--max-plan-age); plan again`);
  } else if (ageMs < -60_000) {
    reasons.push(`the plan is dated in the future (${plan.createdAt}); plan again`);
  }
  const read = await readPolicySources(policiesPaths);
  const current = new Map(compilePolicies(read.sources, now).policies.map((p) => [p.name, p.hash]));
  for (const name of new Set(plan.rows.map((r) => r.policy))) {
    const planned = plan.rows.find((r) => r.policy === name)?.policyHash;
    const hash = current.get(name);
    if (hash === undefined) reasons.push(`the plan is stale: policy ${name} is no longer in ${policiesPaths.join(', ')} (or is invalid)`);
    else if (hash !== planned) reasons.push(`the plan is stale: policy ${name} changed since the plan (hash ${String(planned).slice(0, 12)} -> ${hash.slice(0, 12)})`);
  }
  return reasons;
}

export interface ApplyOptions extends RuntimeOptions {
  policiesPaths: readonly string[];
  maxAgeMs?: number;
  timeoutMs?: number;
  pollMs?: number;
  onProgress?: (progress: { batches: number; batchesEnded: number; removed: number }) => void;
}

export interface ApplyResult {
  runId: string;
  summary: PolicyRunSummary[];
  /** Batches the plan held, and how many of them were new to the queues (a re-applied plan adds none). */
  batches: number;
  added: number;
  failed: boolean;
  timedOut: boolean;
}

function jobOf(b: Batch, runId: string): UntagJob {
  return {
    v: 1,
    batchId: b.id,
    policy: b.policy,
    region: b.region as UntagJob['region'],
    runId: b.runId,
    resourceIds: [...b.resourceIds],
    tagKeys: [...b.tagKeys],
    all: b.all,
    ...(b.carried ? { carried: Object.fromEntries(Object.entries(b.carried).map(([id, k]) => [id, [...k]])) } : {}),
    source: 'scan',
    dryRun: false,
    reason: `saved plan ${runId}`,
  };
}

/** Applies a saved plan: refuses it with every reason, or enqueues exactly its batches and waits for them. */
export async function applySavedPlan(config: AppConfig, plan: SavedPlan, options: ApplyOptions): Promise<ApplyResult> {
  const now = options.now ?? (() => new Date());
  const reasons = await refusalsOf(plan, config, options.policiesPaths, now(), options.maxAgeMs ?? DEFAULT_MAX_PLAN_AGE_MS);
  if (reasons.length > 0) {
    throw new TagwardenError('CONFLICT', `refusing to apply the saved plan:\n  ${reasons.join('\n  ')}`, { details: { reasons } });
  }
  const regions = [...new Set(plan.rows.filter((r) => r.applies && r.batches.length > 0).map((r) => r.region))];
  const uncovered = regions.filter((r) => !(config.regions as readonly string[]).includes(r));
  if (uncovered.length > 0) throw new TagwardenError('CONFIG_INVALID', `the plan has batches in regions outside TAGWARDEN_REGIONS: ${uncovered.join(', ')}`);
  for (const row of plan.rows) {
    for (const b of row.batches) {
      if (b.runId !== plan.runId || b.policy !== row.policy || b.region !== row.region) {
        throw new TagwardenError('CONFIG_INVALID', `the saved plan's batch ${b.id} does not belong to its run, policy and region; plan again`);
      }
    }
  }
  const core = createCore(config, options);
  const workers = core.createWorkers();
  const runId = plan.runId;
  let timedOut = false;
  let added = 0;
  let total = 0;
  try {
    await core.redis.ping();
    for (const row of plan.rows) core.metrics.addPolicy(row.policy);
    const untag = jobOptionsOf(config).untag;
    for (const row of plan.rows) {
      if (!row.applies) {
        if (row.why === 'halted') {
          await core.ledger.recordScanWithoutBatches(runId, row.policy, row.region, 'halted', {
            scanned: row.scanned,
            violating: row.violating,
            tagsPlanned: row.tagsToRemove,
          });
        }
        continue;
      }
      const jobs = row.batches.map((b) => jobOf(b, runId));
      total += jobs.length;
      const queue = core.queueFor(row.region);
      const before = await Promise.all(jobs.map(async (j) => (await queue.getJob(j.batchId)) !== undefined));
      added += before.filter((exists) => !exists).length;
      // The run's ledger first (idempotent per batch), then the jobs (idempotent per jobId = ClientToken).
      await core.ledger.recordScan(runId, row.policy, row.region, {
        scanned: row.scanned,
        violating: row.violating,
        tagsPlanned: row.tagsToRemove,
        batchIds: jobs.map((j) => j.batchId),
        queueKey: queue.toKey(''),
      });
      if (jobs.length > 0) await queue.addBulk(jobs.map((data) => ({ name: 'untag', data, opts: { ...untag, jobId: data.batchId } })));
    }
    workers.start();
    const started = Date.now();
    for (;;) {
      const summary = await core.ledger.summary(runId);
      const pending = await core.ledger.pending(runId);
      options.onProgress?.({
        batches: summary.reduce((n, s) => n + s.batches, 0),
        batchesEnded: summary.reduce((n, s) => n + s.batchesEnded, 0),
        removed: summary.reduce((n, s) => n + s.removed, 0),
      });
      if (pending === 0) break;
      if (options.timeoutMs && Date.now() - started > options.timeoutMs) {
        timedOut = true;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 250));
    }
    const summary = await core.ledger.summary(runId);
    const failed = timedOut || summary.some((s) => s.failed > 0);
    return { runId, summary, batches: total, added, failed, timedOut };
  } finally {
    await workers.close({ force: timedOut });
    await core.close();
  }
}
