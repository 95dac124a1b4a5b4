// `plan --out FILE` and `run --once --plan FILE`: what runs is what was reviewed. The file holds the plan's batches
// with their ids (= ClientTokens); applying it enqueues exactly those batches and waits for them, after refusing a
// plan that is stale (too old, or a policy changed since), made for another estate (endpoint, account), modified
// after it was written (a digest over the document, each batch id recomputed from its contents, each key checked
// against the policy) or truncated. A refusal is a TagwardenError PLAN_REFUSED: `run --once --plan` exits 4.
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import type { AppConfig } from '../config/index.js';
import { TagwardenError } from '../errors.js';
import type { Batch } from '../model.js';
import { batchId } from '../planner/index.js';
import { compilePolicies, removesAll, removesKey } from '../policy/index.js';
import { readPolicySources } from '../policy-files/index.js';
import { scanJobOf, type PolicyRunSummary } from '../queue/index.js';
import { createCore, jobOptionsOf, type RuntimeOptions } from './core.js';
import type { PlanReport } from './plan.js';

export const SAVED_PLAN_KIND = 'tagwarden-plan';
export const SAVED_PLAN_VERSION = 1;
/** Default age after which a saved plan is refused: the estate has had time to change under it. */
export const DEFAULT_MAX_PLAN_AGE_MS = 3_600_000;
/** `run --once --plan` exits with this when it refuses the file (nothing was applied). */
export const PLAN_REFUSED_EXIT = 4;

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
  /** `sha256:<hex>` of the document without this field, as compact JSON: a file edited by hand is refused. */
  digest: string;
}

/** The digest of a saved plan's other fields, in their order. */
export function savedPlanDigest(body: Omit<SavedPlan, 'digest'>): string {
  return `sha256:${createHash('sha256').update(JSON.stringify(body)).digest('hex')}`;
}

function refused(message: string, reasons: readonly string[] = [message]): TagwardenError {
  return new TagwardenError('PLAN_REFUSED', `refusing to apply the saved plan, nothing was applied:\n  ${reasons.join('\n  ')}`, { details: { reasons: [...reasons] } });
}

/** Writes the plan of `report` (made with keepBatches) to `file`, readable only by its owner. */
export async function savePlan(file: string, report: PlanReport, config: AppConfig): Promise<SavedPlan> {
  const body: Omit<SavedPlan, 'digest'> = {
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
  const saved: SavedPlan = { ...body, digest: savedPlanDigest(body) };
  await writeFile(file, `${JSON.stringify(saved, null, 2)}\n`, { mode: 0o600 });
  return saved;
}

/**
 * Reads a saved plan and checks that it is whole and unmodified; throws PLAN_REFUSED saying what is wrong
 * (unreadable, truncated or not JSON, not a plan, another format version, incomplete, digest mismatch).
 */
export async function readSavedPlan(file: string): Promise<SavedPlan> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw refused(`cannot read the saved plan ${file}: ${(err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err))}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw refused(`${file} is not a saved plan: it is truncated or not JSON (${err instanceof Error ? err.message : String(err)}); plan again`);
  }
  const d = doc as Partial<SavedPlan>;
  if (typeof d !== 'object' || d === null || d.kind !== SAVED_PLAN_KIND) {
    throw refused(`${file} is not a saved plan (write one with \`tagwarden plan --out ${file}\`)`);
  }
  if (d.version !== SAVED_PLAN_VERSION) {
    throw refused(`${file}: saved plan version ${String(d.version)} is not ${SAVED_PLAN_VERSION}; plan again`);
  }
  const rowsWhole = Array.isArray(d.rows) && d.rows.every((r) => typeof r === 'object' && r !== null && Array.isArray(r.batches));
  if (typeof d.runId !== 'string' || typeof d.createdAt !== 'string' || typeof d.estate !== 'object' || d.estate === null || !rowsWhole || typeof d.digest !== 'string') {
    throw refused(`${file}: the saved plan is incomplete; plan again`);
  }
  const { digest, ...body } = d as SavedPlan;
  if (savedPlanDigest(body) !== digest) {
    throw refused(`${file} was modified after \`tagwarden plan --out\` wrote it (its digest does not match); plan again`);
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
  const current = new Map(compilePolicies(read.sources, now).policies.map((p) => [p.name, p]));
  for (const name of new Set(plan.rows.map((r) => r.policy))) {
    const planned = plan.rows.find((r) => r.policy === name)?.policyHash;
    const hash = current.get(name)?.hash;
    if (hash === undefined) reasons.push(`the plan is stale: policy ${name} is no longer in ${policiesPaths.join(', ')} (or is invalid)`);
    else if (hash !== planned) reasons.push(`the plan is stale: policy ${name} changed since the plan (hash ${String(planned).slice(0, 12)} -> ${hash.slice(0, 12)})`);
  }
  // Each batch is what its id says (the id is the ClientToken: a hash of policy, region, run, IDs and keys), and
  // names only what its policy removes: a file edited with its digest recomputed is still refused.
  for (const row of plan.rows) {
    const policy = current.get(row.policy);
    for (const b of row.batches) {
      if (b.runId !== plan.runId || b.policy !== row.policy || b.region !== row.region) {
        reasons.push(`batch ${b.id} does not belong to the plan's run, policy and region`);
      } else if (b.id !== batchId({ policy: b.policy, region: b.region, runId: b.runId }, b.resourceIds, b.tagKeys, b.all)) {
        reasons.push(`batch ${b.id} does not match its contents (policy, region, run, IDs, keys): the file was edited`);
      } else if (policy && policy.hash === row.policyHash) {
        if (b.all && !removesAll(policy)) reasons.push(`batch ${b.id} removes every tag (All=true), which policy ${row.policy} does not do`);
        for (const key of b.tagKeys.filter((k) => !removesKey(policy, k))) {
          reasons.push(`batch ${b.id} names tag key ${JSON.stringify(key)}, which policy ${row.policy} does not remove`);
        }
      }
      if (reasons.length > 20) return [...reasons.slice(0, 20), '(more reasons not shown)'];
    }
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

/** Applies a saved plan: refuses it with every reason, or enqueues exactly its batches and waits for them. */
export async function applySavedPlan(config: AppConfig, plan: SavedPlan, options: ApplyOptions): Promise<ApplyResult> {
  const now = options.now ?? (() => new Date());
  const reasons = await refusalsOf(plan, config, options.policiesPaths, now(), options.maxAgeMs ?? DEFAULT_MAX_PLAN_AGE_MS);
  if (reasons.length > 0) {
    throw refused(reasons[0] ?? '', reasons);
  }
  const regions = [...new Set(plan.rows.filter((r) => r.applies && r.batches.length > 0).map((r) => r.region))];
  const uncovered = regions.filter((r) => !(config.regions as readonly string[]).includes(r));
  if (uncovered.length > 0) throw refused(`the plan has batches in regions outside TAGWARDEN_REGIONS: ${uncovered.join(', ')}`);
  // Run-scoped queues, as `run --once`: this process works only the plan's batches, and a daemon on the same
  // prefix never takes one of them (nor this process one of the daemon's).
  const core = createCore(config, { ...options, queueScope: plan.runId });
  const workers = core.createWorkers();
  const runId = plan.runId;
  let timedOut = false;
  let added = 0;
  let total = 0;
  try {
    await core.redis.ping();
    for (const row of plan.rows) core.metrics.addPolicy(row.policy, [row.region]);
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
      const jobs = row.batches.map((b) => scanJobOf(b, { dryRun: false, reason: `saved plan ${runId}` }));
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
    try {
      await workers.close({ force: timedOut });
      // The run's queues are its own: nothing else will ever work them.
      for (const queue of core.queues()) await queue.obliterate({ force: true }).catch((err: unknown) => core.logger.warn('run queues not removed', { queue: queue.name, err }));
    } finally {
      await core.close();
    }
  }
}
