// `tagwarden jobs`: list, show and retry jobs (failed batches stay listed with their reason until retention ends).
import { Command, Option } from 'commander';
import { TagwardenError } from '../../src/errors.js';
import { LISTABLE_STATES, createJobInspector, type JobInspector, type ListableState } from '../../src/queue/index.js';
import { createCore } from '../../src/runtime/index.js';
import { configOrExit, table } from './shared.js';

async function withInspector(run: (inspector: JobInspector) => Promise<void>): Promise<void> {
  const config = configOrExit({});
  if (!config) return;
  const core = createCore(config);
  try {
    await run(createJobInspector({ queues: core.queues(), secrets: config.secrets }));
  } catch (err) {
    if (!(err instanceof TagwardenError)) throw err;
    process.stderr.write(`tagwarden: ${err.message}\n`);
    process.exitCode = 1;
  } finally {
    await core.close();
  }
}

export function jobsCommand(): Command {
  const jobs = new Command('jobs').description('inspect and retry queued, failed and finished jobs');
  jobs
    .command('list')
    .description('list jobs in one state across every queue')
    .addOption(new Option('--state <state>', 'job state').choices([...LISTABLE_STATES]).default('failed'))
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'machine-readable output')
    .action(async (opts: { state: ListableState; limit: string; json?: boolean }) =>
      withInspector(async (inspector) => {
        const views = await inspector.list(opts.state, { limit: Number(opts.limit) });
        if (opts.json) process.stdout.write(JSON.stringify(views, null, 2) + '\n');
        else {
          const rows = views.map((v) => [v.id, v.queue, v.state, `${v.attemptsMade}/${v.attempts}`, (v.failedReason ?? '').slice(0, 100)]);
          process.stdout.write(table(['id', 'queue', 'state', 'attempts', 'reason'], rows) + '\n');
        }
      }),
    );
  jobs
    .command('show <id>')
    .description('one job: state, attempts, failure reason and per-resource outcome')
    .action(async (id: string) =>
      withInspector(async (inspector) => {
        const view = await inspector.find(id);
        if (!view) throw new TagwardenError('NOT_FOUND', `no job ${id} in any queue`);
        process.stdout.write(JSON.stringify(view, null, 2) + '\n');
      }),
    );
  jobs
    .command('retry <id>')
    .description('move a failed job back to waiting (same batch, same ClientToken)')
    .action(async (id: string) =>
      withInspector(async (inspector) => {
        const view = await inspector.retry(id);
        process.stdout.write(`retrying ${view.id} on ${view.queue}\n`);
      }),
    );
  return jobs;
}
