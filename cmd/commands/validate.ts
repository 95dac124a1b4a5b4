// `tagwarden validate PATH...`: checks policy files (YAML syntax, schema, meaning) and reports every finding.
// Loads the policy modules only when it runs, so it starts fast.
import { Command, Option } from 'commander';
import type { CompiledPolicy, PolicyFinding } from '../../src/policy/index.js';
import { collect, out, say } from './shared.js';

interface ValidateOptions {
  json?: boolean;
  printSchema?: boolean;
  now?: string;
  accountsFile?: string;
  account?: string[];
}

function describeSchedule(p: CompiledPolicy): string {
  if ('cron' in p.schedule) return `cron "${p.schedule.cron}" UTC`;
  const ms = p.schedule.everyMs;
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000]] as const) {
    if (ms % size === 0) return `every ${ms / size}${unit}`;
  }
  return `every ${ms / 1000}s`;
}

/** The JSON report printed by --json. */
export interface ValidateReport {
  valid: boolean;
  summary: { files: number; policies: number; errors: number; warnings: number };
  policies: Array<{
    name: string; file: string; line: number; mode: string; regions: readonly string[];
    schedule: string; discovery: string; maxRemovalsPerRun: number; hash: string;
    /** With an accounts file: the IDs of the listed accounts the policy governs (spec.accounts). */
    accounts?: string[];
  }>;
  findings: PolicyFinding[];
}

/** Validates the policies under `paths` at `now`; pure apart from reading the files. */
export async function validatePaths(
  paths: readonly string[],
  now: Date,
  accounts?: { file: string; text: string; only?: readonly string[] },
): Promise<ValidateReport> {
  const { compilePolicies, discoveryPlan } = await import('../../src/policy/index.js');
  const { readPolicySources } = await import('../../src/policy-files/index.js');
  const read = await readPolicySources(paths);
  const compiled = compilePolicies(read.sources, now);
  const findings = [...read.findings, ...compiled.findings];
  // With an accounts file: it is validated too (file:line:column), and each policy names the accounts it governs.
  let governs: ((p: CompiledPolicy) => string[]) | undefined;
  let chosen = compiled.policies;
  if (accounts !== undefined) {
    const { accountsOfPolicy, parseAccountList, restrictAccounts } = await import('../../src/accounts/index.js');
    const parsed = parseAccountList({ file: accounts.file, text: accounts.text });
    findings.push(...parsed.findings);
    const listed = parsed.list?.accounts ?? [];
    const { accounts: only, unknown } = restrictAccounts(listed, accounts.only);
    for (const u of unknown) {
      findings.push({ file: accounts.file, line: 0, column: 0, path: 'accounts', message: `--account ${JSON.stringify(u)} names no listed account`, expected: listed.map((a) => `${a.id} (${a.name})`).join(', ') || 'an account in the file', severity: 'error', stage: 'meaning' });
    }
    governs = (p) => accountsOfPolicy(p, only).map((a) => a.id);
    if (accounts.only !== undefined && accounts.only.length > 0) chosen = chosen.filter((p) => (governs as (p: CompiledPolicy) => string[])(p).length > 0);
  }
  const errors = findings.filter((f) => f.severity === 'error').length;
  return {
    valid: errors === 0,
    summary: { files: read.sources.length, policies: chosen.length, errors, warnings: findings.length - errors },
    policies: chosen.map((p) => ({
      name: p.name,
      file: p.source.file,
      line: p.source.line,
      mode: p.mode,
      regions: p.regions,
      schedule: describeSchedule(p),
      discovery: discoveryPlan(p).kind === 'tag-keys' ? 'ListTagResources by key' : 'ListVpcPeerConnections',
      maxRemovalsPerRun: p.maxRemovalsPerRun,
      hash: p.hash,
      ...(governs ? { accounts: governs(p) } : {}),
    })),
    findings,
  };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The `validate` subcommand. Exit code 0 when every policy is valid (warnings allowed), 1 otherwise. */
export function validateCommand(): Command {
  return new Command('validate')
    .description('Validate tag policy files (YAML syntax, schema, meaning) and report every finding')
    .argument('[paths...]', 'policy files, or directories searched recursively for *.yaml and *.yml')
    .option('--json', 'print machine-readable findings')
    .option('--print-schema', 'print the JSON Schema of a TagPolicy document (policies/tagpolicy.schema.json) and exit')
    .option('--accounts-file <file>', 'also validate this AccountList and show the accounts each policy governs')
    .option('--account <id-or-name>', 'with --accounts-file: only the policies governing these accounts (repeatable, or comma-separated)', collect)
    .addOption(new Option('--now <time>', 'judge exemption expiry at this ISO 8601 time instead of now').hideHelp())
    .action(async (paths: string[], options: ValidateOptions) => {
      const { formatFinding, policyJsonSchema } = await import('../../src/policy/index.js');
      if (options.printSchema) {
        out(`${JSON.stringify(policyJsonSchema(), null, 2)}\n`);
        return;
      }
      if (paths.length === 0) {
        say('validate: give at least one policy file or directory');
        process.exitCode = 1;
        return;
      }
      const now = options.now === undefined ? new Date() : new Date(options.now);
      if (Number.isNaN(now.getTime())) {
        say('validate: --now is not a valid time');
        process.exitCode = 1;
        return;
      }
      if (options.account && !options.accountsFile) {
        say('validate: --account needs --accounts-file');
        process.exitCode = 1;
        return;
      }
      let accounts: { file: string; text: string; only?: string[] } | undefined;
      if (options.accountsFile !== undefined) {
        const { readFile } = await import('node:fs/promises');
        try {
          accounts = { file: options.accountsFile, text: await readFile(options.accountsFile, 'utf8'), ...(options.account ? { only: options.account } : {}) };
        } catch (e) {
          say(`validate: accounts file ${options.accountsFile} cannot be read: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
          process.exitCode = 1;
          return;
        }
      }
      const report = await validatePaths(paths, now, accounts);
      if (options.json) {
        out(`${JSON.stringify(report, null, 2)}\n`);
      } else {
        const lines = report.findings.map(formatFinding);
        for (const p of report.policies) {
          const governed = p.accounts === undefined ? '' : `, accounts ${p.accounts.length ? p.accounts.join(' ') : '(none listed)'}`;
          lines.push(`ok ${p.name} (${p.file}:${p.line}): ${p.mode}, ${p.schedule}, ${p.regions.join(' ')}, discovery ${p.discovery}, at most ${p.maxRemovalsPerRun} removals per run${governed}`);
        }
        const { files, policies, errors, warnings } = report.summary;
        const valid = policies === 1 ? '1 valid policy' : `${policies} valid policies`;
        lines.push(`${valid} in ${plural(files, 'file')}: ${plural(errors, 'error')}, ${plural(warnings, 'warning')}`);
        out(`${lines.join('\n')}\n`);
      }
      process.exitCode = report.valid ? 0 : 1;
    });
}
