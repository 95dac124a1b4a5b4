// `tagwarden enqueue`: hand tagwarden a removal from a shell, through the same producer other systems use.
import { Command } from 'commander';
import { TagwardenError } from '../../src/errors.js';
import { createProducer } from '../../src/queue/index.js';
import { collect, configOrExit } from './shared.js';

export function enqueueCommand(): Command {
  return new Command('enqueue')
    .description('queue the removal of tags from peering connections (split into valid batches)')
    .requiredOption('--region <region>', 'region of the resources')
    .requiredOption('--resource-id <id...>', 'peering connection IDs (repeatable or comma-separated)', collect)
    .option('--tag-key <key...>', 'tag keys to remove (repeatable or comma-separated)', collect)
    .option('--all', 'remove every tag (UnTagResources All=true)')
    .option('--reason <text>', 'why, for the audit trail', 'manual enqueue from the CLI')
    .option('--idempotency-key <key>', 'the same key twice enqueues once')
    .option('--dry-run', 'plan, log and count only')
    .action(async (opts: { region: string; resourceId: string[]; tagKey?: string[]; all?: boolean; reason: string; idempotencyKey?: string; dryRun?: boolean }) => {
      const config = configOrExit({});
      if (!config) return;
      const producer = createProducer({ connection: config.redisUrl, prefix: config.queuePrefix, account: config.accountId });
      try {
        const result = await producer.untag({
          region: opts.region as never,
          resourceIds: opts.resourceId,
          ...(opts.tagKey ? { tagKeys: opts.tagKey } : {}),
          ...(opts.all ? { all: true } : {}),
          reason: opts.reason,
          ...(opts.idempotencyKey ? { idempotencyKey: opts.idempotencyKey } : {}),
          ...(opts.dryRun ? { dryRun: true } : {}),
        });
        process.stdout.write(`${result.created ? 'queued' : 'already queued'} ${result.jobIds.length} batch(es)\n${result.jobIds.join('\n')}\n`);
      } catch (err) {
        if (!(err instanceof TagwardenError)) throw err;
        process.stderr.write(`tagwarden: ${err.message}\n`);
        process.exitCode = 1;
      } finally {
        await producer.close();
      }
    });
}
