// `tagwarden jobs`: list, show and retry jobs (failed batches stay listed with their reason until retention ends).
// Fails within seconds when Redis cannot be reached; results on stdout, messages on stderr.
import { Command, Option } from 'commander';
import type { JobInspector, JobView } from '../../src/queue/index.js';
import { escapeControl } from '../../src/logging/escape.js';
import { collect, configOrExit, out, redisReachable, say, table } from './shared.js';

/** The states `jobs list --state` accepts (kept here so `--help` loads no queue code; checked against src/queue). */
export const JOB_STATES = ['failed', 'completed', 'waiting', 'delayed', 'active'] as const;

async function withInspector(run: (inspector: JobInspector) => Promise<void>, accounts?: readonly string[]): Promise<void> {
  const config = await configOrExit({}, process.env, { logLevel: 'warn' });
  if (!config) return;
  if (accounts && !config.accountsFile) {
    say('--account needs an accounts file (TAGWARDEN_ACCOUNTS_FILE)');
    process.exitCode = 1;
    return;
  }
  if (!(await redisReachable(config.redisUrl))) return;
  const { createJobInspector } = await import('../../src/queue/index.js');
  const runtime = await import('../../src/runtime/index.js');
  const { TagwardenError } = await import('../../src/errors.js');
  const { cliLogger } = await import('./shared.js');
  const logger = await cliLogger(config);
  const cores: Array<{ account: string; core: ReturnType<typeof runtime.createCore> }> = [];
  try {
    if (config.accountsFile) {
      // With an accounts file every account's queues are read (each under its own prefix), and each job names its account.
      const { restrictAccounts } = await import('../../src/accounts/index.js');
      const all = await runtime.loadAccounts(config, await runtime.readAccountsFile(config.accountsFile));
      const { accounts: chosen, unknown } = restrictAccounts(all, accounts);
      if (unknown.length > 0) throw new TagwardenError('CONFIG_INVALID', `--account names no governed account: ${unknown.join(', ')}`);
      for (const a of chosen) cores.push({ account: a.id, core: runtime.createCore(runtime.accountConfig(config, a), { logger }) });
      const members = cores.map((c) => ({ account: c.account, jobs: createJobInspector({ queues: c.core.queues(), secrets: config.secrets }) }));
      await run(runtime.mergedJobInspector(() => members));
    } else {
      const core = runtime.createCore(config, { logger });
      cores.push({ account: config.accountId, core });
      await run(createJobInspector({ queues: core.queues(), secrets: config.secrets }));
    }
  } catch (e) {
    if (!(e instanceof TagwardenError)) throw e;
    say(e.message);
    process.exitCode = 1;
  } finally {
    await Promise.all(cores.map((c) => c.core.close()));
  }
}

const dataOf = (v: JobView) => (typeof v.data === 'object' && v.data !== null ? (v.data as Record<string, unknown>) : {});

/** `jobs show` for people: what the batch is, where it stands, why it failed, and what happened per resource. */
export function renderJob(v: JobView): string {
  const d = dataOf(v);
  const ids = Array.isArray(d.resourceIds) ? (d.resourceIds as unknown[]).map(String) : [];
  const keys = Array.isArray(d.tagKeys) ? (d.tagKeys as unknown[]).map(String) : [];
  const lines = [
    `job       ${v.id}`,
    ...('account' in v ? [`account   ${String((v as JobView & { account?: unknown }).account)}`] : []),
    `queue     ${v.queue}`,
    `state     ${v.state}   attempts ${v.attemptsMade}/${v.attempts}`,
    `policy    ${String(d.policy ?? '-')}   region ${String(d.region ?? '-')}   run ${String(d.runId ?? '-')}`,
    `source    ${String(d.source ?? '-')}${d.dryRun === true ? '   (dry-run)' : ''}${d.reason ? `   reason: ${JSON.stringify(d.reason)}` : ''}`,
    `removes   ${d.all === true ? 'every tag (All=true)' : keys.map((k) => JSON.stringify(k)).join(', ') || '-'}`,
    `from      ${ids.length} connection(s): ${ids.slice(0, 20).join(' ')}${ids.length > 20 ? ' ...' : ''}`,
    `created   ${v.timestamps.created}   processed ${v.timestamps.processed ?? '-'}   finished ${v.timestamps.finished ?? '-'}`,
  ];
  if (v.failedReason) lines.push(`failed    ${v.failedReason}`);
  const rv = v.returnvalue as { outcome?: string; removed?: number; resources?: Record<string, { outcome?: string; keys?: string[] }> } | null;
  if (rv && typeof rv === 'object') {
    lines.push(`outcome   ${String(rv.outcome ?? '-')}   tags removed ${String(rv.removed ?? 0)}`);
    for (const [id, r] of Object.entries(rv.resources ?? {})) lines.push(`  ${id}  ${String(r.outcome ?? '')}${r.keys?.length ? `  ${r.keys.join(',')}` : ''}`);
  }
  // Every field is data from Redis (keys, reasons, IDs): each line is escaped whole, so none can break another.
  return `${lines.map((l) => escapeControl(l)).join('\n')}\n`;
}

export function jobsCommand(): Command {
  const jobs = new Command('jobs').description('inspect and retry queued, failed and finished jobs');
  jobs
    .command('list')
    .description('list jobs in one state across every queue, newest first')
    .addOption(new Option('--state <state>', 'job state').choices([...JOB_STATES]).default('failed'))
    .option('--policy <name>', 'only jobs of this policy ("api" for work from other systems)')
    .option('--region <region>', 'only jobs in this region')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print one JSON document (an array of jobs)')
    .option('--account <id-or-name>', 'with an accounts file: only these accounts (repeatable, or comma-separated)', collect)
    .action(async (opts: { state: (typeof JOB_STATES)[number]; policy?: string; region?: string; limit: string; json?: boolean; account?: string[] }) =>
      withInspector(async (inspector) => {
        const views = await inspector.list(opts.state, {
          limit: Number(opts.limit),
          ...(opts.policy !== undefined ? { policy: opts.policy } : {}),
          ...(opts.region !== undefined ? { region: opts.region } : {}),
        });
        if (opts.json) out(`${JSON.stringify(views, null, 2)}\n`);
        else {
          const many = views.some((v) => 'account' in v);
          const rows = views.map((v) => {
            const d = dataOf(v);
            const account = many ? [String((v as JobView & { account?: string }).account ?? '-')] : [];
            return [v.id, ...account, String(d.policy ?? '-'), String(d.region ?? '-'), v.state, `${v.attemptsMade}/${v.attempts}`, (v.failedReason ?? '').slice(0, 100)];
          });
          out(`${table(['id', ...(many ? ['account'] : []), 'policy', 'region', 'state', 'attempts', 'reason'], rows)}\n`);
        }
      }, opts.account),
    );
  jobs
    .command('show <id>')
    .description('one job: state, attempts, failure reason and per-resource outcome')
    .option('--json', 'print the job as one JSON document')
    .action(async (id: string, opts: { json?: boolean }) =>
      withInspector(async (inspector) => {
        const view = await inspector.find(id);
        if (!view) {
          say(`no job ${id} in any queue`);
          process.exitCode = 1;
          return;
        }
        out(opts.json ? `${JSON.stringify(view, null, 2)}\n` : renderJob(view));
      }),
    );
  jobs
    .command('retry <id>')
    .description('move a failed job back to waiting (same batch, same ClientToken)')
    .action(async (id: string) =>
      withInspector(async (inspector) => {
        const view = await inspector.retry(id);
        out(`retrying ${view.id} on ${view.queue}\n`);
      }),
    );
  return jobs;
}
