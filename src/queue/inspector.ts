// Finds, lists and retries jobs across tagwarden's queues: shared by the HTTP API and the CLI (`tagwarden jobs`).
// Knows nothing of HTTP or terminals: callers format the views.
import type { Job, JobType, Queue } from 'bullmq';
import { TagwardenError } from '../errors.js';
import { redactString, redactValue } from '../logging/index.js';

/** The states a caller may list jobs by. */
export const LISTABLE_STATES = ['failed', 'completed', 'waiting', 'delayed', 'active'] as const;
export type ListableState = (typeof LISTABLE_STATES)[number];

/** What a caller sees of one job, redacted as the logs are. */
export interface JobView {
  id: string;
  queue: string;
  name: string;
  /** BullMQ state: waiting, active, delayed, prioritized, completed, failed, waiting-children or unknown. */
  state: string;
  attemptsMade: number;
  /** Attempts allowed before the job fails for good. */
  attempts: number;
  failedReason: string | null;
  data: unknown;
  /** What the worker returned (for untag jobs: the per-resource outcome); null until it completes. */
  returnvalue: unknown;
  timestamps: { created: string; processed: string | null; finished: string | null };
}

export interface JobInspector {
  /** The job with this ID in any of the queues, or null. */
  find(id: string): Promise<JobView | null>;
  /** Jobs in one state across every queue, newest first, at most `limit` (default 50, max 1000). */
  list(state: ListableState, options?: { limit?: number; policy?: string; region?: string }): Promise<JobView[]>;
  /**
   * Moves a failed job back to waiting. Throws NOT_FOUND when no queue holds it and CONFLICT when it
   * is not failed.
   */
  retry(id: string): Promise<JobView>;
}

const MAX_LIST = 1000;

// 'waiting' also covers prioritized jobs, which BullMQ keeps in a separate set.
const JOB_TYPES: Record<ListableState, JobType[]> = {
  failed: ['failed'],
  completed: ['completed'],
  waiting: ['waiting', 'prioritized'],
  delayed: ['delayed'],
  active: ['active'],
};

/** Creates an inspector over the given queues; it opens no connections of its own. */
export function createJobInspector(options: { queues: readonly Queue[]; secrets?: readonly string[] }): JobInspector {
  const queues = [...options.queues];
  const secrets = options.secrets ?? [];
  // What is shown passes the logs' redaction: a reason stored by an older version, or data another system
  // queued, may quote a secret.
  const view = (job: Job, state: string): JobView => redactView(rawView(job, state), secrets);

  async function locate(id: string): Promise<Job | null> {
    const found = await Promise.all(queues.map((queue) => queue.getJob(id)));
    return found.find((job): job is Job => job !== undefined) ?? null;
  }

  return {
    async find(id) {
      const job = await locate(id);
      return job ? view(job, await job.getState()) : null;
    },

    async list(state, listOptions = {}) {
      const limit = Math.max(1, Math.min(MAX_LIST, Math.floor(listOptions.limit ?? 50)));
      const { policy, region } = listOptions;
      const filtered = policy !== undefined || region !== undefined;
      // With a filter, read up to the list cap per queue so `limit` counts matching jobs.
      const perQueue = await Promise.all(queues.map((queue) => queue.getJobs(JOB_TYPES[state], 0, (filtered ? MAX_LIST : limit) - 1, false)));
      const matches = (job: Job) => {
        const data = (job.data ?? {}) as { policy?: unknown; region?: unknown };
        return (policy === undefined || data.policy === policy) && (region === undefined || data.region === region);
      };
      const jobs = perQueue.flat().filter((job): job is Job => Boolean(job) && matches(job));
      jobs.sort((a, b) => b.timestamp - a.timestamp);
      return jobs.slice(0, limit).map((job) => view(job, state));
    },

    async retry(id) {
      const job = await locate(id);
      if (!job) throw new TagwardenError('NOT_FOUND', 'no job with this ID in any queue', { details: { jobId: id } });
      const state = await job.getState();
      if (state !== 'failed') {
        throw new TagwardenError('CONFLICT', 'only failed jobs can be retried', { details: { jobId: id, state } });
      }
      // A retried batch gets its full attempt budget again (and the same batch ID, so the same ClientToken).
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      const after = await locate(id);
      return after ? view(after, await after.getState()) : view(job, 'unknown');
    },
  };
}

function redactView(v: JobView, secrets: readonly string[]): JobView {
  return {
    ...v,
    name: redactString(v.name, secrets),
    failedReason: v.failedReason === null ? null : redactString(v.failedReason, secrets),
    data: redactValue(v.data, secrets),
    returnvalue: redactValue(v.returnvalue, secrets),
  };
}

function rawView(job: Job, state: string): JobView {
  const iso = (ms: number | undefined): string | null => (ms ? new Date(ms).toISOString() : null);
  return {
    id: String(job.id),
    queue: job.queueName,
    name: job.name,
    state,
    attemptsMade: job.attemptsMade,
    attempts: job.opts.attempts ?? 1,
    failedReason: job.failedReason ? job.failedReason : null,
    data: job.data as unknown,
    returnvalue: (job.returnvalue as unknown) ?? null,
    timestamps: { created: new Date(job.timestamp).toISOString(), processed: iso(job.processedOn), finished: iso(job.finishedOn) },
  };
}
