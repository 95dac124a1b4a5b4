// `tagwarden plan`: what a run would change, from read-only calls. Exit 0 nothing to change, 2 changes pending,
// 3 a policy would be halted by its blast-radius cap, 1 error.
import { Command } from 'commander';
import { formatFinding } from '../../src/policy/index.js';
import { planExitCode, planPolicies } from '../../src/runtime/index.js';
import { configOrExit, endProgress, progressLine, table } from './shared.js';

export function planCommand(): Command {
  return new Command('plan')
    .description('show, per policy and region, the tags a run would remove (read-only); exit 0 none, 2 pending, 3 a policy would halt, 1 error')
    .option('--policies <dir>', 'policy directory or file (TAGWARDEN_POLICIES_DIR)')
    .option('--policy <name>', 'only this policy')
    .option('--json', 'machine-readable output')
    .option('--verbose', 'list every resource with its keys')
    .action(async (opts: { policies?: string; policy?: string; json?: boolean; verbose?: boolean }) => {
      const config = configOrExit({ policiesDir: opts.policies });
      if (!config) return;
      const report = await planPolicies(config, {
        policiesPaths: [config.policiesDir],
        ...(opts.policy ? { policy: opts.policy } : {}),
        verbose: opts.verbose === true,
        onProgress: (p) => progressLine(`${p.policy} ${p.region}: ${p.scanned} scanned`),
      });
      endProgress();
      for (const f of report.findings) process.stderr.write(`${formatFinding(f)}\n`);
      if (opts.policy && report.rows.length === 0) {
        process.stderr.write(`tagwarden: no valid policy named ${opts.policy}\n`);
        process.exitCode = 1;
        return;
      }
      if (opts.json) {
        process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      } else {
        const rows = report.rows.map((r) => [
          r.policy,
          r.region,
          r.mode,
          r.scanned,
          r.violating,
          r.tagsToRemove,
          r.calls,
          r.floor,
          r.naiveCalls,
          r.overCap ? 'OVER CAP: would halt' : '',
        ]);
        process.stdout.write(table(['policy', 'region', 'mode', 'scanned', 'violating', 'tags', 'calls', 'floor', 'naive calls', ''], rows) + '\n');
        if (opts.verbose) {
          for (const r of report.rows) {
            for (const res of r.resources ?? []) {
              process.stdout.write(`${r.policy}\t${r.region}\t${res.id}\t${res.all ? '(all tags) ' : ''}${res.keys.join(',')}\n`);
            }
          }
        }
      }
      if (report.halted) process.stderr.write('tagwarden: a policy would be halted by its maxRemovalsPerRun cap (exit 3)\n');
      process.exitCode = planExitCode(report);
    });
}
