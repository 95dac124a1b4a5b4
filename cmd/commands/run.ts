// `tagwarden run`: the daemon, or with --once a single pass that waits for every batch and prints a summary
// (results on stdout; logs, findings and progress on stderr), or with --once --plan FILE exactly a saved plan.
import { Command, InvalidArgumentError, Option } from 'commander';
import type { AccountsOnceResult, ApplyResult, OnceOptions, OnceResult } from '../../src/runtime/index.js';
import type { PolicyRunSummary } from '../../src/queue/index.js';
import { retriesArg } from './plan.js';
import { cliLogger, collect, configOrExit, createProgress, err, out, packageVersion, progressIntervalMs, redisReachable, say, saySkippedAccounts, table, unlessConfigInvalid } from './shared.js';

/** The summary table's columns: one meaning per name, the unit in the header. */
export const SUMMARY_HEADERS = [
  'policy',
  'connections scanned',
  'connections violating',
  'tags planned',
  'tags removed',
  'batches',
  'UnTag calls',
  'batch read calls',
  'connections not found',
  'batches failed',
  'batches dry-run',
  '',
];

function summaryRows(summary: ReadonlyArray<PolicyRunSummary & { account?: string }>, many: boolean): Array<Array<string | number>> {
  return summary.map((s) => [
    ...(many ? [s.account ?? ''] : []),
    s.policy,
    s.scanned,
    s.violating,
    s.tagsPlanned,
    s.removed,
    s.batches,
    s.calls,
    s.reads,
    s.notFound,
    s.failed,
    s.dryRun,
    s.halted ? 'HALTED' : s.skipped ? 'SKIPPED (previous run pending)' : '',
  ]);
}

/** Prints the per-policy summary of a run. */
export function printSummary(
  result: Pick<OnceResult, 'runId' | 'summary' | 'timedOut'> | Pick<AccountsOnceResult, 'runId' | 'summary' | 'timedOut' | 'accounts'>,
  write: (text: string) => void = out,
): void {
  // With an accounts file every row names its account, and a skipped account (role not assumed) has its row.
  const many = 'accounts' in result;
  const rows = summaryRows(result.summary, many);
  if (many) {
    for (const a of result.accounts) {
      if (a.status === 'skipped') rows.push([a.account, '-', 0, 0, 0, 0, 0, 0, 0, 0, 0, `SKIPPED (${a.reason ?? 'role not assumed'})`]);
    }
  }
  write(`run ${result.runId}\n`);
  write(`${table([...(many ? ['account'] : []), ...SUMMARY_HEADERS], rows)}\n`);
  if (result.timedOut) write('timed out before every batch ended\n');
}

/** `--max-plan-age <minutes>`: a non-negative number. */
function minutesArg(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number of minutes, 0 or more');
  return n;
}

interface RunFlags {
  policies?: string;
  dryRun?: boolean;
  once?: boolean;
  plan?: string;
  maxPlanAge?: number;
  policy?: string;
  account?: string[];
  json?: boolean;
  port?: string;
  timeout?: number;
  retries?: number;
  failFast?: boolean;
  progressInterval?: string;
}

export function runCommand(): Command {
  return new Command('run')
    .description('run the daemon: scheduled scans, workers and the HTTP server (or one pass with --once)')
    .option('--policies <dir>', 'policy directory or file (TAGWARDEN_POLICIES_DIR)')
    .option('--dry-run', 'never call UnTagResources; plan, log and count only (TAGWARDEN_DRY_RUN)')
    .option('--once', 'scan every policy once, wait for every batch, print a summary; exit 1 if any batch failed, 3 if a policy was halted')
    .option('--plan <file>', 'with --once: apply exactly this saved plan (`tagwarden plan --out FILE`), no new scan; exit 4 when the file is refused (stale, another estate, modified, truncated)')
    .addOption(new Option('--max-plan-age <minutes>', 'with --plan: refuse a plan older than this (exit 4)').argParser(minutesArg).default(60))
    .option('--policy <name>', 'with --once: only this policy')
    .option('--account <id-or-name>', 'with --once and an accounts file: only these accounts (repeatable, or comma-separated)', collect)
    .option('--json', 'with --once: print the summary as one JSON document')
    .option('--port <port>', 'HTTP port (TAGWARDEN_HTTP_PORT)')
    .addOption(new Option('--timeout <seconds>', 'with --once: give up waiting after this long').argParser(Number))
    .addOption(new Option('--retries <n>', 'with --once: attempts after the first for a failed call (default 3, or TAGWARDEN_RETRY_ATTEMPTS)').argParser(retriesArg))
    .option('--fail-fast', 'with --once: no retries, one attempt per scan, and the run stops at its first failed call (exit 1, what failed on stderr)')
    .option('--progress-interval <seconds>', 'with --once, when stderr is not a terminal: a progress line this often', '10')
    .action(async (opts: RunFlags) => {
      if (!opts.once) {
        if (opts.plan !== undefined) {
          say('--plan applies a saved plan once: use it with --once');
          process.exitCode = 1;
          return;
        }
        return daemon(opts);
      }
      const retries = opts.failFast ? 0 : opts.retries;
      const config = await configOrExit(
        { policiesDir: opts.policies, dryRun: opts.dryRun, httpPort: opts.port, ...(retries !== undefined ? { retryAttempts: retries + 1 } : {}) },
        process.env,
        // A one-shot command gives up sooner than the daemon, and logs only warnings unless asked.
        { retryAttempts: 4, retryMaxMs: 10_000, logLevel: 'warn' },
      );
      if (!config) return;
      if (opts.account && !config.accountsFile) {
        say('--account needs an accounts file (TAGWARDEN_ACCOUNTS_FILE)');
        process.exitCode = 1;
        return;
      }
      if (!(await redisReachable(config.redisUrl))) return;
      const logger = await cliLogger(config);
      const runtime = await import('../../src/runtime/index.js');
      const progress = createProgress({ intervalMs: progressIntervalMs(opts.progressInterval) ?? 10_000 });
      if (opts.plan !== undefined) {
        let result: ApplyResult;
        try {
          const plan = await runtime.readSavedPlan(opts.plan);
          result = await runtime.applySavedPlan(config, plan, {
            policiesPaths: [config.policiesDir],
            logger,
            maxAgeMs: (opts.maxPlanAge ?? 60) * 60_000,
            ...(opts.timeout ? { timeoutMs: opts.timeout * 1000 } : {}),
            onProgress: (p) => progress.update(`run --plan: batches ${p.batchesEnded}/${p.batches}  tags removed ${p.removed}`),
          });
        } catch (e) {
          progress.done();
          const { TagwardenError } = await import('../../src/errors.js');
          if (!(e instanceof TagwardenError)) throw e;
          say(e.message);
          process.exitCode = e.code === 'PLAN_REFUSED' ? runtime.PLAN_REFUSED_EXIT : 1;
          return;
        }
        progress.done();
        if (opts.json) out(`${JSON.stringify(result, null, 2)}\n`);
        else {
          printSummary({ runId: result.runId, summary: result.summary, timedOut: result.timedOut });
          out(`applied saved plan ${opts.plan}: ${result.batches} batches (${result.added} new to the queues)\n`);
        }
        process.exitCode = result.failed ? 1 : 0;
        return;
      }
      const { formatFinding } = await import('../../src/policy/index.js');
      const onceOptions: OnceOptions = {
        policiesPaths: [config.policiesDir],
        logger,
        ...(opts.policy ? { policy: opts.policy } : {}),
        ...(opts.timeout ? { timeoutMs: opts.timeout * 1000 } : {}),
        ...(opts.failFast ? { failFast: true } : {}),
        onProgress: (p: { scansEnded: number; scans: number; batchesEnded: number; batches: number; removed: number }) =>
          progress.update(`run --once: scans ${p.scansEnded}/${p.scans}  batches ${p.batchesEnded}/${p.batches}  tags removed ${p.removed}`),
      };
      let result: OnceResult | AccountsOnceResult | undefined;
      try {
        result = await unlessConfigInvalid(async () =>
          config.accountsFile
            ? runtime.runOnceAccounts(config, await runtime.readAccountsFile(config.accountsFile), {
                ...onceOptions,
                ...(opts.account ? { accounts: opts.account } : {}),
              })
            : runtime.runOnce(config, onceOptions),
        );
      } finally {
        progress.done();
      }
      if (result === undefined) return;
      if ('accounts' in result) saySkippedAccounts((result as AccountsOnceResult).accounts);
      for (const f of result.findings) err(`${formatFinding(f)}\n`);
      if (opts.json) out(`${JSON.stringify(result, null, 2)}\n`);
      else printSummary(result);
      if (result.stoppedAt) say(`--fail-fast: stopped at the first failure: ${result.stoppedAt}`);
      // A halt is not success: 3, as plan's exit code for a halt; a failure (1) wins.
      if (result.halted) say('a policy was halted by its maxRemovalsPerRun cap; nothing of it was enqueued');
      process.exitCode = result.failed ? 1 : result.halted ? 3 : 0;
    });
}

async function daemon(opts: RunFlags): Promise<void> {
  const config = await configOrExit({ policiesDir: opts.policies, dryRun: opts.dryRun, httpPort: opts.port });
  if (!config) return;
  const { startDaemon } = await import('../../src/runtime/index.js');
  // Signals are handled from before the start: a SIGTERM while the daemon starts (its HTTP port may already
  // answer) waits for the start to finish and then drains, instead of killing the process mid-start.
  let stopping: Promise<void> | undefined;
  let signals = 0;
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const starting = startDaemon(config, { version: packageVersion() });
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      // Second signal: leave now. In-flight jobs keep their locks and another replica finishes them.
      say(`${signal} again, exiting at once`);
      process.exit(130);
    }
    stopping = starting
      .then((running) => running.close())
      .then(
        ({ drained }) => {
          process.exitCode = 0;
          if (!drained) say('drain timed out; unfinished jobs will be picked up by another replica');
        },
        (e: unknown) => {
          say(`shutdown error: ${e instanceof Error ? e.message : String(e)}`);
          process.exitCode = 1;
        },
      )
      .finally(stop);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await starting;
  } catch (e) {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    if (stopping === undefined) throw e;
  }
  await stopped;
}
