// `tagwarden run`: the daemon, or with --once a single pass that waits for every batch and prints a summary.
import { Command, Option } from 'commander';
import { runOnce, startDaemon } from '../../src/runtime/index.js';
import { formatFinding } from '../../src/policy/index.js';
import { configOrExit, endProgress, progressLine, table } from './shared.js';
import type { OnceResult } from '../../src/runtime/index.js';

/** Prints the per-policy summary of a run. */
export function printSummary(result: OnceResult, out: NodeJS.WritableStream = process.stdout): void {
  const rows = result.summary.map((s) => [
    s.policy,
    s.scanned,
    s.violating,
    s.tagsPlanned,
    s.removed,
    s.calls,
    s.notFound,
    s.failed,
    s.dryRun,
    s.halted ? 'HALTED' : s.skipped ? 'SKIPPED (previous run pending)' : '',
  ]);
  out.write(`run ${result.runId}\n`);
  out.write(
    table(['policy', 'scanned', 'violating', 'planned', 'removed', 'calls', 'not found', 'failed', 'dry-run', ''], rows) + '\n',
  );
  if (result.timedOut) out.write('timed out before every batch ended\n');
}

export function runCommand(): Command {
  return new Command('run')
    .description('run the daemon: scheduled scans, workers and the HTTP server (or one pass with --once)')
    .option('--policies <dir>', 'policy directory or file (TAGWARDEN_POLICIES_DIR)')
    .option('--dry-run', 'never call UnTagResources; plan, log and count only (TAGWARDEN_DRY_RUN)')
    .option('--once', 'scan every policy once, wait for every batch, print a summary; exit 1 if any batch failed, 3 if a policy was halted')
    .option('--policy <name>', 'with --once: only this policy')
    .option('--json', 'with --once: print the summary as JSON')
    .option('--port <port>', 'HTTP port (TAGWARDEN_HTTP_PORT)')
    .addOption(new Option('--timeout <seconds>', 'with --once: give up waiting after this long').argParser(Number))
    .action(async (opts: { policies?: string; dryRun?: boolean; once?: boolean; policy?: string; json?: boolean; port?: string; timeout?: number }) => {
      const config = configOrExit({ policiesDir: opts.policies, dryRun: opts.dryRun, httpPort: opts.port });
      if (!config) return;
      if (opts.once) {
        const result = await runOnce(config, {
          policiesPaths: [config.policiesDir],
          ...(opts.policy ? { policy: opts.policy } : {}),
          ...(opts.timeout ? { timeoutMs: opts.timeout * 1000 } : {}),
          onProgress: (p) => progressLine(`scans ${p.scansEnded}/${p.scans}  batches ${p.batchesEnded}/${p.batches}  tags removed ${p.removed}`),
        });
        endProgress();
        for (const f of result.findings) process.stderr.write(`${formatFinding(f)}\n`);
        if (opts.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
        else printSummary(result);
        // A halt is not success: 3, as plan's exit code for a halt; a failure (1) wins.
        if (result.halted) process.stderr.write('tagwarden: a policy was halted by its maxRemovalsPerRun cap; nothing of it was enqueued\n');
        process.exitCode = result.failed ? 1 : result.halted ? 3 : 0;
        return;
      }
      const daemon = await startDaemon(config);
      await new Promise<void>((resolve) => {
        let signals = 0;
        const onSignal = (signal: NodeJS.Signals) => {
          signals += 1;
          if (signals > 1) {
            // Second signal: leave now. In-flight jobs keep their locks and another replica finishes them.
            process.stderr.write(`tagwarden: ${signal} again, exiting at once\n`);
            process.exit(130);
          }
          daemon.close().then(
            ({ drained }) => {
              process.exitCode = 0;
              if (!drained) process.stderr.write('tagwarden: drain timed out; unfinished jobs will be picked up by another replica\n');
              resolve();
            },
            (err: unknown) => {
              process.stderr.write(`tagwarden: shutdown error: ${err instanceof Error ? err.message : String(err)}\n`);
              process.exitCode = 1;
              resolve();
            },
          );
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
      });
    });
}
