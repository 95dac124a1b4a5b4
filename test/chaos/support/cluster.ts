// The pieces every chaos scenario sets up: the shipped policies made to run once at start, an emulator with
// quotas out of the way, the daemons' environment, and the wait for a run to end.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { createEmulatorAdmin, type EmulatorAdmin, type FaultConfig } from '../../../src/emulator/index.js';
import { API_NAMES } from '../../../src/model.js';
import { compilePolicies, type CompiledPolicy } from '../../../src/policy/index.js';
import { readPolicySources } from '../../../src/policy-files/index.js';
import { SCAN_QUEUE, untagQueueName, type RedisClient } from '../../../src/queue/index.js';
import { REPO_ROOT, spawnTagwarden, tagwardenEnv } from '../../support/harness.js';
import { stopProcess, track, type TrackedProcess } from './processes.js';

/** The regions of the generated estate and of the shipped policies. */
export const REGIONS = ['cn-hangzhou', 'cn-shanghai', 'cn-beijing'] as const;
/** TAGWARDEN_ACCOUNT_ID of every chaos daemon: queues are `untag-{chaos}-<region>`. */
export const ACCOUNT = 'chaos';
/** Temporary HOME directories of the processes started here, removed by removeHomes. */
const homes: string[] = [];
/** Far above anything a scenario sends: the scenarios test faults, not quotas. */
const BIG_QUOTA = 1_000_000;

/**
 * The shipped policies/ with every schedule set to `every: 1h`: BullMQ runs an `every` scheduler at once, so each
 * policy scans each of its regions exactly once during a scenario (a cron schedule would wait for its minute).
 */
export function chaosPolicyDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tw-chaos-policies-'));
  const shipped = join(REPO_ROOT, 'policies');
  for (const file of readdirSync(shipped).filter((f) => /\.ya?ml$/.test(f))) {
    const text = readFileSync(join(shipped, file), 'utf8').replace(/^(\s*)schedule:.*$/gm, '$1schedule: { every: 1h }');
    writeFileSync(join(dir, file), text);
  }
  return dir;
}

/** Compiles the policies of a directory as the daemon does. */
export async function compileDir(dir: string, now: Date): Promise<CompiledPolicy[]> {
  const read = await readPolicySources([dir]);
  const { policies, findings } = compilePolicies(read.sources, now);
  const errors = findings.filter((f) => f.severity === 'error');
  if (errors.length > 0) throw new Error(`chaos policies do not compile: ${JSON.stringify(errors)}`);
  return policies;
}

/** An emulator process (`tagwarden emulator`), apart from the test runner so a flood of calls cannot exhaust it. */
export interface ChaosEmulator {
  readonly url: string;
  readonly process: TrackedProcess;
  close(): Promise<void>;
}

/** Starts `tagwarden emulator` with a generated estate, no quota in the way, and the faults given. */
export async function startChaosEmulator(options: { count: number; seed: number; faults?: FaultConfig }): Promise<ChaosEmulator> {
  const home = mkdtempSync(join(tmpdir(), 'tw-chaos-emulator-'));
  homes.push(home);
  const args = [
    'emulator', '--port', '0', '--generate', String(options.count), '--seed', String(options.seed), '--regions', REGIONS.join(','),
    '--max-call-log', '2000000', ...API_NAMES.flatMap((api) => ['--quota', `${api}=${BIG_QUOTA}`]),
  ];
  const proc = spawnTagwarden(args, { PATH: process.env.PATH ?? '', HOME: home, NODE_ENV: 'test' });
  const tracked = track({ name: `emulator#${options.seed}`, child: proc.child, lines: proc.lines, exited: proc.exited });
  const line = await proc.waitFor(/listening on http:\/\//, 60_000);
  const url = /listening on (http:\/\/\S+)/.exec(line)?.[1] ?? '';
  if (options.faults) await createEmulatorAdmin(url).setFaults(options.faults);
  return { url, process: tracked, close: () => stopProcess(tracked, 10_000) };
}

/** The environment of a chaos daemon: fast retries and stall detection, big quotas, a short drain. */
export function chaosEnv(options: {
  emulatorUrl: string;
  prefix: string;
  apiToken: string;
  redisUrl?: string;
  extra?: Record<string, string>;
}): NodeJS.ProcessEnv {
  const quotas = Object.fromEntries(API_NAMES.map((api) => [`TAGWARDEN_QUOTA_${api.toUpperCase()}`, String(BIG_QUOTA)]));
  const env = tagwardenEnv({
    emulatorUrl: options.emulatorUrl,
    prefix: options.prefix,
    regions: [...REGIONS],
    ...(options.redisUrl ? { redisUrl: options.redisUrl } : {}),
    extra: {
      ...quotas,
      TAGWARDEN_ACCOUNT_ID: ACCOUNT,
      TAGWARDEN_API_TOKEN: options.apiToken,
      TAGWARDEN_RETRY_BASE_MS: '50',
      TAGWARDEN_RETRY_MAX_MS: '1000',
      TAGWARDEN_RETRY_ATTEMPTS: '12',
      TAGWARDEN_STALLED_INTERVAL_MS: '3000',
      TAGWARDEN_LOCK_DURATION_MS: '3000',
      TAGWARDEN_DRAIN_TIMEOUT_MS: '3000',
      TAGWARDEN_CONCURRENCY: '4',
      ...options.extra,
    },
  });
  if (env.HOME) homes.push(env.HOME);
  return env;
}


/** Removes the temporary HOME directories made for the suite's processes. */
export function removeHomes(): void {
  for (const home of homes.splice(0)) rmSync(home, { recursive: true, force: true });
}

/** The queues of a chaos deployment, read by the test itself. */
export function chaosQueues(connection: RedisClient, prefix: string): { scan: Queue; untag: Map<string, Queue>; all: Queue[]; close(): Promise<void> } {
  const scan = new Queue(SCAN_QUEUE, { connection, prefix });
  const untag = new Map(REGIONS.map((r) => [r as string, new Queue(untagQueueName(ACCOUNT, r), { connection, prefix })]));
  const all = [scan, ...untag.values()];
  return {
    scan,
    untag,
    all,
    async close() {
      await Promise.all(all.map((q) => q.close()));
    },
  };
}

const PENDING_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;

/**
 * Jobs not yet ended in these queues. A job scheduler keeps its next run as a delayed job that has never been
 * attempted: that one is not pending work (a delayed retry has attempts made, and counts).
 */
export async function pendingJobs(queues: readonly Queue[]): Promise<number> {
  let pending = 0;
  for (const q of queues) {
    const counts = await q.getJobCounts(...PENDING_STATES);
    pending += Object.values(counts).reduce((a, b) => a + b, 0);
    if ((counts.delayed ?? 0) > 0) {
      const delayed = await q.getJobs(['delayed'], 0, -1);
      pending -= delayed.filter((j) => j.attemptsMade === 0 && j.id?.startsWith('repeat:')).length;
    }
  }
  return pending;
}

/**
 * Waits until every scan of the run has completed or failed (`scans` of them), no job is pending in any queue,
 * and the emulator saw no new UnTagResources call for two polls in a row. Bounded by `timeoutMs`.
 */
export async function waitForRunEnd(options: {
  queues: { scan: Queue; all: Queue[] };
  scans: number;
  admin: EmulatorAdmin;
  timeoutMs: number;
  onPoll?: () => Promise<void>;
}): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let lastCalls = -1;
  let quiet = 0;
  for (;;) {
    await options.onPoll?.();
    const ended = await options.queues.scan.getJobCounts('completed', 'failed');
    const pending = await pendingJobs(options.queues.all);
    const calls = (await options.admin.getStats()).byAction['UnTagResources']?.total ?? 0;
    if ((ended.completed ?? 0) + (ended.failed ?? 0) >= options.scans && pending === 0 && calls === lastCalls) {
      quiet += 1;
      if (quiet >= 2) return;
    } else quiet = 0;
    lastCalls = calls;
    if (Date.now() > deadline) {
      throw new Error(`run did not end within ${options.timeoutMs} ms: scans ended ${JSON.stringify(ended)} of ${options.scans}, pending jobs ${pending}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Scans a policy set schedules: one per policy and region. */
export function scanCount(policies: readonly CompiledPolicy[]): number {
  return policies.reduce((n, p) => n + p.regions.length, 0);
}

/** A seeded uniform [0, 1) generator (mulberry32), so a failing schedule of faults can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
