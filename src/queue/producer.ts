// The producer API other systems use to hand tagwarden work: validated, split into valid batches, deduplicated.
import { createHash, randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { TagwardenError } from '../errors.js';
import { MAX_IDS_PER_CALL, MAX_KEYS_PER_CALL } from '../model.js';
import { batchId, splitIntoCalls } from '../planner/index.js';
import { UntagRequestSchema, describeIssues, type UntagJob, type UntagRequest } from './payloads.js';
import { createLogger, type Logger } from '../logging/index.js';
import { connectionErrorReporter, createRedis, reportErrors, type RedisClient } from './redis.js';
import { untagJobOptions, untagQueueName, type RetentionOptions } from './names.js';

export interface ProducerOptions {
  /** A Redis URL, or a connection to share (the caller keeps ownership and closes it). */
  connection: string | RedisClient;
  /** TAGWARDEN_QUEUE_PREFIX of the deployment that should do the work (default `tagwarden`). */
  prefix?: string;
  /** TAGWARDEN_ACCOUNT_ID of that deployment (default `default`). */
  account?: string;
  retention?: Partial<RetentionOptions>;
  /** Where connection errors are logged (redacted); JSON lines on stderr when absent. */
  logger?: Logger;
  /** The most batches one request may become (default 500); larger requests are refused with how to split them. */
  maxBatchesPerRequest?: number;
}

export interface EnqueueResult {
  /** The jobIds (also the ClientTokens) of the batches, in order. */
  jobIds: string[];
  /** False when the idempotencyKey had been used before with the same request: nothing new was queued. */
  created: boolean;
}

/** The batches one untag request becomes (the same split and ids `untag` queues), without touching Redis. */
export function untagJobsOf(req: UntagRequest, runId: string): UntagJob[] {
  const all = req.all === true;
  const ctx = { policy: 'api', region: req.region, runId };
  return splitIntoCalls(req.resourceIds, req.tagKeys ?? [], all).map((call): UntagJob => ({
    v: 1,
    batchId: batchId(ctx, call.resourceIds, call.tagKeys, all),
    policy: 'api',
    region: req.region,
    runId,
    resourceIds: call.resourceIds,
    tagKeys: call.tagKeys,
    all,
    source: 'api',
    dryRun: req.dryRun === true,
    reason: req.reason,
  }));
}

/** Validates an untag request as `untag` does; throws PAYLOAD_INVALID naming each bad field. */
export function parseUntagRequest(request: UntagRequest): UntagRequest {
  const parsed = UntagRequestSchema.safeParse(request);
  if (!parsed.success) {
    const problems = describeIssues(parsed.error);
    throw new TagwardenError('PAYLOAD_INVALID', `invalid untag request: ${problems.join('; ')}`, { details: { problems } });
  }
  return parsed.data;
}

export interface Producer {
  /** Validates and queues an untag request of any size. Throws PAYLOAD_INVALID naming each bad field. */
  untag(request: UntagRequest): Promise<EnqueueResult>;
  close(): Promise<void>;
}

let sharedStderrLogger: Logger | undefined;
/** Secrets are not known here; URL passwords and bearer values are still redacted by pattern. */
function stderrLogger(): Logger {
  return (sharedStderrLogger ??= createLogger({ level: 'warn', secrets: [], stream: process.stderr, base: { service: 'tagwarden' } }));
}

/** The most batches one untag request may become. */
export const DEFAULT_MAX_BATCHES = 500;

const DEFAULT_RETENTION: RetentionOptions = { attempts: 8, completedRetentionHours: 24, failedRetentionDays: 14 };
const IDEMPOTENCY_TTL_SECONDS = 86_400;

/**
 * Creates a producer that adds untag jobs straight to tagwarden's queues.
 *
 * The same `idempotencyKey` with the same request enqueues once (within 24 h); with a different request it is
 * refused with CONFLICT.
 */
export function createProducer(options: ProducerOptions): Producer {
  const ownsConnection = typeof options.connection === 'string';
  const redis =
    typeof options.connection === 'string'
      ? createRedis(options.connection, { connectionName: 'tagwarden-producer', ...(options.logger ? { logger: options.logger } : {}) })
      : options.connection;
  // A queue without an error listener prints its connection's errors raw (with the AUTH arguments).
  const reportError = connectionErrorReporter(options.logger ?? (() => stderrLogger()));
  const prefix = options.prefix ?? 'tagwarden';
  const maxBatches = options.maxBatchesPerRequest ?? DEFAULT_MAX_BATCHES;
  const account = options.account ?? 'default';
  const jobOptions = untagJobOptions({ ...DEFAULT_RETENTION, ...options.retention });
  const queues = new Map<string, Queue>();
  const queueFor = (region: string): Queue => {
    const name = untagQueueName(account, region);
    let queue = queues.get(name);
    if (!queue) {
      queue = reportErrors(new Queue(name, { connection: redis, prefix }), name, reportError);
      queues.set(name, queue);
    }
    return queue;
  };

  return {
    async untag(request) {
      const req = parseUntagRequest(request);
      if (req.account !== undefined && req.account !== account) {
        // A request for another account would be applied with this account's credentials: refuse it.
        const problem = `account: this producer queues for account ${account}, not ${req.account}`;
        throw new TagwardenError('PAYLOAD_INVALID', `invalid untag request: ${problem}`, { details: { problems: [problem] } });
      }
      const all = req.all === true;
      // One caller must not flood the queues (10,000 IDs x 1,000 keys were 25,000 batches): refuse before the
      // idempotency key is taken, saying how to split.
      const ids = new Set(req.resourceIds).size;
      const keyChunks = all ? 1 : Math.ceil(new Set(req.tagKeys ?? []).size / MAX_KEYS_PER_CALL);
      const batches = Math.ceil(ids / MAX_IDS_PER_CALL) * keyChunks;
      if (batches > maxBatches) {
        const idsPerRequest = Math.max(1, Math.floor(maxBatches / keyChunks)) * MAX_IDS_PER_CALL;
        const problem =
          keyChunks > maxBatches
            ? `(body): this request makes ${batches} batches; at most ${maxBatches} per request: send at most ${maxBatches * MAX_KEYS_PER_CALL} tagKeys per request`
            : `(body): this request makes ${batches} batches (${ids} resource IDs in calls of ${MAX_IDS_PER_CALL} x ${keyChunks} key group(s) of ${MAX_KEYS_PER_CALL}); at most ${maxBatches} per request: split resourceIds into requests of at most ${idsPerRequest} IDs (${Math.ceil(ids / idsPerRequest)} requests)`;
        throw new TagwardenError('PAYLOAD_INVALID', `invalid untag request: ${problem}`, { details: { problems: [problem], batches, maxBatches } });
      }
      const fingerprint = createHash('sha256')
        .update(JSON.stringify([req.region, [...new Set(req.resourceIds)].sort(), all ? '*all*' : [...new Set(req.tagKeys)].sort(), req.dryRun === true]))
        .digest('hex');
      let runId = `api-${randomUUID()}`;
      let created = true;
      if (req.idempotencyKey) {
        runId = `api-${req.idempotencyKey}`;
        const key = `${prefix}:idempotency:${req.idempotencyKey}`;
        const set = await redis.set(key, fingerprint, 'EX', IDEMPOTENCY_TTL_SECONDS, 'NX');
        if (set === null) {
          const previous = await redis.get(key);
          if (previous !== fingerprint) {
            throw new TagwardenError('CONFLICT', 'idempotencyKey was already used for a different request; use a new key', {
              details: { idempotencyKey: req.idempotencyKey },
            });
          }
          created = false;
        }
      }
      const jobs = untagJobsOf(req, runId);
      // Adding is idempotent too: a jobId already stored is not added again.
      await queueFor(req.region).addBulk(
        jobs.map((data) => ({ name: 'untag', data, opts: { ...jobOptions, jobId: data.batchId } })),
      );
      return { jobIds: jobs.map((j) => j.batchId), created };
    },

    async close() {
      await Promise.all([...queues.values()].map((q) => q.close()));
      if (ownsConnection) await redis.quit().catch(() => undefined);
    },
  };
}
