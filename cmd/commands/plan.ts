// `tagwarden plan`: what a run would change, from read-only calls, shown like `terraform plan`: per connection the
// tags it loses with their values, a table per policy and region, and a totals line.
// Exit 0 nothing to change, 2 changes pending, 3 a policy would be halted by its blast-radius cap, 1 error.
import { Command, InvalidArgumentError, Option } from 'commander';
import type { AccountsPlanReport, PlanOptions, PlanReport, PlanResource, PlanRow } from '../../src/runtime/index.js';
import { escapeControl } from '../../src/logging/escape.js';
import { collect, configOrExit, createProgress, err, out, plural, progressIntervalMs, say, saySkippedAccounts, table, unlessConfigInvalid } from './shared.js';

interface PlanFlags {
  policies?: string;
  policy?: string;
  json?: boolean;
  verbose?: boolean;
  out?: string;
  retries?: number;
  failFast?: boolean;
  progressInterval?: string;
  account?: string[];
}

/** `--retries <n>`: a non-negative integer. */
export function retriesArg(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 100) throw new InvalidArgumentError('must be an integer from 0 to 100');
  return n;
}

/** A tag key as shown: bare when plain printable ASCII, else quoted with control and bidi characters escaped. */
export function shownKey(key: string): string {
  return /^[\x21-\x7e]+$/.test(key) && !key.includes('"') ? key : escapeControl(JSON.stringify(key));
}

function describeResource(r: PlanResource, verbose: boolean): string[] {
  const lines: string[] = [];
  if (r.keys.length > 0) {
    lines.push(`  ~ ${r.id}${r.all ? '  (every tag: UnTagResources All=true)' : ''}`);
    for (const k of r.keys) lines.push(`      - ${shownKey(k)} = ${escapeControl(JSON.stringify(r.values[k] ?? ''))}`);
  } else {
    lines.push(`  = ${r.id}`);
  }
  if (verbose) {
    for (const k of r.kept ?? []) lines.push(`        ${shownKey(k)}  kept (keep rule or system tag)`);
    if (r.exempt) {
      for (const k of r.exempt.keys) lines.push(`        ${shownKey(k)}  exempt until ${r.exempt.until}`);
    }
  }
  return lines;
}

function rowState(r: PlanRow): string {
  if (r.overCap) return `HALT: ${r.tagsToRemove} tags > maxRemovalsPerRun ${r.maxRemovalsPerRun}`;
  if (r.mode === 'dryRun' && r.tagsToRemove > 0) return 'dry-run: not applied';
  return '';
}

/** The totals line: `Plan: 1,753 tags on 1,204 connections in 96 calls; 2 policies halted`. */
export function totalsLine(report: PlanReport): string {
  const t = report.totals;
  const parts = [`Plan: ${plural(t.tags, 'tag')} on ${plural(t.connections, 'connection')} in ${plural(t.calls, 'call')}`];
  if (t.halted > 0) parts.push(`${plural(t.halted, 'policy', 'policies')} halted`);
  if (t.dryRun > 0) parts.push(`${plural(t.dryRun, 'dry-run policy', 'dry-run policies')} not applied`);
  return parts.join('; ');
}

/** The human-readable plan. */
export function renderPlan(report: PlanReport | AccountsPlanReport, verbose: boolean): string {
  const lines: string[] = [];
  // With an accounts file every row names its account (and a skipped account has its own row).
  const many = 'accounts' in report;
  const accountOf = (r: PlanRow): string => (r as PlanRow & { account?: string }).account ?? '';
  for (const r of report.rows) {
    const shown = r.resources ?? [];
    if (shown.length === 0) continue;
    lines.push(`${many ? `account ${accountOf(r)}: ` : ''}${r.policy} in ${r.region} (${r.mode}${r.overCap ? ', HALTED: over its cap, nothing would be applied' : ''}):`);
    for (const res of shown) lines.push(...describeResource(res, verbose));
    lines.push('');
  }
  const rows: Array<Array<string | number>> = report.rows.map((r) => [
    ...(many ? [accountOf(r)] : []),
    r.policy, r.region, r.mode, r.scanned, r.violating, r.tagsToRemove, r.calls, r.floor, r.naiveCalls, rowState(r),
  ]);
  if (many) {
    for (const a of report.accounts) {
      if (a.status === 'skipped') rows.push([a.account, '-', '-', '-', 0, 0, 0, 0, 0, 0, `SKIPPED (${a.reason ?? 'role not assumed'})`]);
    }
  }
  lines.push(
    table([...(many ? ['account'] : []), 'policy', 'region', 'mode', 'connections scanned', 'connections violating', 'tags to remove', 'UnTag calls', 'UnTag floor', 'naive UnTag calls', ''], rows),
    '',
    totalsLine(report),
  );
  return `${lines.join('\n')}\n`;
}

export function planCommand(): Command {
  return new Command('plan')
    .description('show what a run would remove, per connection with values (read-only); exit 0 none, 2 pending, 3 a policy would halt, 1 error')
    .option('--policies <dir>', 'policy directory or file (TAGWARDEN_POLICIES_DIR)')
    .option('--policy <name>', 'only this policy')
    .option('--json', 'print the plan as one JSON document')
    .option('--verbose', 'also name the keys each connection keeps (keep rules, system tags) and the exempt ones')
    .option('--out <file>', 'save the plan (batches and ClientTokens) for `run --once --plan FILE`')
    .addOption(new Option('--retries <n>', 'retries of a failed page (default 3, or TAGWARDEN_RETRY_ATTEMPTS)').argParser(retriesArg))
    .option('--fail-fast', 'no retries: fail at the first unreachable endpoint or failed page')
    .option('--progress-interval <seconds>', 'when stderr is not a terminal, a progress line this often', '10')
    .option('--account <id-or-name>', 'with an accounts file: only these accounts (repeatable, or comma-separated)', collect)
    .action(async (opts: PlanFlags) => {
      const config = await configOrExit({ policiesDir: opts.policies }, process.env, { retryAttempts: 3, retryMaxMs: 10_000 });
      if (!config) return;
      if (opts.account && !config.accountsFile) {
        say('--account needs an accounts file (TAGWARDEN_ACCOUNTS_FILE)');
        process.exitCode = 1;
        return;
      }
      if (opts.out !== undefined && config.accountsFile) {
        say('--out saves a single-account plan: with an accounts file, apply with `run --once --account ID` instead');
        process.exitCode = 1;
        return;
      }
      const { planAccounts, planExitCode, planPolicies, readAccountsFile } = await import('../../src/runtime/index.js');
      const { formatFinding } = await import('../../src/policy/index.js');
      const maxFailures = opts.failFast ? 0 : (opts.retries ?? config.retryAttempts);
      const progress = createProgress({ intervalMs: progressIntervalMs(opts.progressInterval) ?? 10_000 });
      const planOptions: PlanOptions = {
        policiesPaths: [config.policiesDir],
        ...(opts.policy ? { policy: opts.policy } : {}),
        details: opts.json ? (opts.verbose ? 'verbose' : 'none') : opts.verbose ? 'verbose' : 'diff',
        keepBatches: opts.out !== undefined,
        retry: {
          maxFailures,
          onRetry: (r) => {
            progress.update('');
            const reason = r.error instanceof Error ? r.error.message : String(r.error);
            say(`read failed (${reason.slice(0, 200)}); retry ${r.failures}/${r.maxFailures} in ${(r.delayMs / 1000).toFixed(1)}s`);
          },
        },
        onProgress: (p: { policy: string; region: string; scanned: number; regionsDone: number; regions: number }) =>
          progress.update(`plan: ${p.policy} ${p.region}: ${p.scanned.toLocaleString('en-US')} scanned (${p.regionsDone}/${p.regions} policy regions done)`),
      };
      let report: PlanReport | AccountsPlanReport | undefined;
      try {
        report = await unlessConfigInvalid(async () =>
          config.accountsFile
            ? planAccounts(config, await readAccountsFile(config.accountsFile), { ...planOptions, ...(opts.account ? { accounts: opts.account } : {}) })
            : planPolicies(config, planOptions),
        );
      } finally {
        progress.done();
      }
      if (report === undefined) return;
      const skipped = 'accounts' in report ? (report as AccountsPlanReport).accounts.filter((a) => a.status === 'skipped') : [];
      saySkippedAccounts(skipped);
      for (const f of report.findings) err(`${formatFinding(f)}\n`);
      if (opts.policy && report.rows.length === 0) {
        say(`no valid policy named ${opts.policy}`);
        process.exitCode = 1;
        return;
      }
      if (opts.out !== undefined) {
        const { savePlan } = await import('../../src/runtime/index.js');
        await savePlan(opts.out, report, config);
        say(`plan saved to ${opts.out}: apply exactly it with \`tagwarden run --once --plan ${opts.out}\``);
      }
      if (opts.json) {
        out(`${JSON.stringify({ ...report, rows: report.rows.map(({ batches: _batches, ...r }) => r) }, null, 2)}\n`);
      } else {
        out(renderPlan(report, opts.verbose === true));
      }
      if (report.halted) say('a policy would be halted by its maxRemovalsPerRun cap (exit 3)');
      // A skipped account is an error: its part of the plan is unknown.
      process.exitCode = skipped.length > 0 ? 1 : planExitCode(report);
    });
}
