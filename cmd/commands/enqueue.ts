// `tagwarden enqueue`: hand tagwarden a removal from a shell, through the same producer other systems use, with
// this deployment's attempts and retention (TAGWARDEN_RETRY_ATTEMPTS, TAGWARDEN_*_RETENTION_*). `--dry-run`
// previews the batches and queues nothing; `--dry-run-job` queues batches that workers only plan, log and count.
import { Command } from 'commander';
import type { UntagRequest } from '../../src/queue/index.js';
import { collect, configOrExit, out, plural, redisReachable, say } from './shared.js';

interface EnqueueFlags {
  region: string;
  resourceId: string[];
  tagKey?: string[];
  all?: boolean;
  reason: string;
  idempotencyKey?: string;
  dryRun?: boolean;
  dryRunJob?: boolean;
  json?: boolean;
}

export function enqueueCommand(): Command {
  return new Command('enqueue')
    .description('queue the removal of tags from peering connections (split into valid batches)')
    .requiredOption('--region <region>', 'region of the resources')
    .requiredOption('--resource-id <id...>', 'peering connection IDs (repeatable or comma-separated)', collect)
    .option('--tag-key <key...>', 'tag keys to remove (repeatable or comma-separated)', collect)
    .option('--all', 'remove every tag (UnTagResources All=true)')
    .option('--reason <text>', 'why, for the audit trail', 'manual enqueue from the CLI')
    .option('--idempotency-key <key>', 'the same key twice enqueues once')
    .option('--dry-run', 'preview: print the batches that would be queued, and queue nothing')
    .option('--dry-run-job', 'queue batches that workers only plan, log and count (never call UnTagResources)')
    .option('--json', 'print one JSON document')
    .action(async (opts: EnqueueFlags) => {
      const config = await configOrExit({}, process.env, { logLevel: 'warn' });
      if (!config) return;
      const { TagwardenError } = await import('../../src/errors.js');
      const queue = await import('../../src/queue/index.js');
      const { jobOptionsOf } = await import('../../src/runtime/index.js');
      const retention = jobOptionsOf(config).retention;
      const request: UntagRequest = {
        region: opts.region as UntagRequest['region'],
        resourceIds: opts.resourceId,
        ...(opts.tagKey ? { tagKeys: opts.tagKey } : {}),
        ...(opts.all ? { all: true } : {}),
        reason: opts.reason,
        ...(opts.idempotencyKey ? { idempotencyKey: opts.idempotencyKey } : {}),
        ...(opts.dryRunJob ? { dryRun: true } : {}),
      };
      const queueName = queue.untagQueueName(config.accountId, opts.region);
      if (opts.dryRun) {
        try {
          const req = queue.parseUntagRequest(request);
          const jobs = queue.untagJobsOf(req, opts.idempotencyKey ? `api-${opts.idempotencyKey}` : 'preview');
          const preview = {
            preview: true,
            queued: 0,
            queue: queueName,
            prefix: config.queuePrefix,
            attempts: retention.attempts,
            completedRetentionHours: retention.completedRetentionHours,
            failedRetentionDays: retention.failedRetentionDays,
            batches: jobs.map((j) => ({ ...(opts.idempotencyKey ? { jobId: j.batchId } : {}), resourceIds: j.resourceIds, tagKeys: j.tagKeys, all: j.all })),
          };
          if (opts.json) out(`${JSON.stringify(preview, null, 2)}\n`);
          else {
            out(
              `preview (nothing queued): ${plural(jobs.length, 'batch', 'batches')} to ${config.queuePrefix}:${queueName}, ` +
                `${retention.attempts} attempts each, kept ${retention.completedRetentionHours} h when ended, ${retention.failedRetentionDays} d when failed\n`,
            );
            jobs.forEach((j, i) =>
              out(`  ${i + 1}. ${plural(j.resourceIds.length, 'connection')}: ${j.all ? 'every tag (All=true)' : j.tagKeys.map((k) => JSON.stringify(k)).join(', ')}${opts.idempotencyKey ? `  jobId ${j.batchId}` : ''}\n`),
            );
          }
        } catch (e) {
          if (!(e instanceof TagwardenError)) throw e;
          say(e.message);
          process.exitCode = 1;
        }
        return;
      }
      if (!(await redisReachable(config.redisUrl))) return;
      const producer = queue.createProducer({ connection: config.redisUrl, prefix: config.queuePrefix, account: config.accountId, retention });
      try {
        const result = await producer.untag(request);
        if (opts.json) out(`${JSON.stringify({ queued: result.created ? result.jobIds.length : 0, created: result.created, queue: queueName, attempts: retention.attempts, jobIds: result.jobIds }, null, 2)}\n`);
        else out(`${result.created ? 'queued' : 'already queued'} ${result.jobIds.length} batch(es)\n${result.jobIds.join('\n')}\n`);
      } catch (e) {
        if (!(e instanceof TagwardenError)) throw e;
        say(e.message);
        process.exitCode = 1;
      } finally {
        await producer.close();
      }
    });
}
