// Shared support for end-to-end tests, the chaos suite and benchmarks: unique Redis prefixes, the emulator's
// keys, and tagwarden processes spawned from the built CLI (run `npm run build` first; `npm test` does).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig, type AppConfig, type AppConfigInput } from '../../src/config/index.js';
import type { Logger } from '../../src/logging/index.js';
import { compilePolicies } from '../../src/policy/index.js';
import { readPolicySources } from '../../src/policy-files/index.js';
import { createRedis, deletePrefix, scanJobOptions } from '../../src/queue/index.js';
import { createCore, type RuntimeOptions } from '../../src/runtime/index.js';
import { createPolicyScheduler } from '../../src/scheduler/index.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const EMULATOR_KEYS = { accessKeyId: 'tagwarden-test', accessKeySecret: 'tagwarden-test-secret' };
/** The repository root, whether this file runs from test/support or dist/test/support. */
export const REPO_ROOT = ((): string => {
  let dir = import.meta.dirname;
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
})();
/** The built CLI that tests spawn. */
export const CLI = join(REPO_ROOT, 'dist/cmd/tagwarden.js');

/** A Redis key prefix no other test uses. */
export function uniquePrefix(name: string): string {
  return `twtest-${name}-${randomUUID().slice(0, 8)}`;
}

/** Deletes every key of a prefix. */
export async function cleanupPrefix(prefix: string, redisUrl = REDIS_URL): Promise<void> {
  const redis = createRedis(redisUrl, { connectionName: 'tagwarden-test-cleanup' });
  try {
    await deletePrefix(redis, prefix);
  } finally {
    redis.disconnect();
  }
}

/** The environment of a tagwarden process pointed at an emulator: keys by env, no metadata service, temp HOME. */
export function tagwardenEnv(options: {
  emulatorUrl: string;
  prefix: string;
  regions?: readonly string[];
  redisUrl?: string;
  extra?: Record<string, string>;
}): NodeJS.ProcessEnv {
  const home = mkdtempSync(join(tmpdir(), 'tw-home-'));
  return {
    PATH: process.env.PATH ?? '',
    HOME: home,
    NODE_ENV: 'test',
    REDIS_URL: options.redisUrl ?? REDIS_URL,
    TAGWARDEN_ENDPOINT: options.emulatorUrl,
    TAGWARDEN_QUEUE_PREFIX: options.prefix,
    TAGWARDEN_REGIONS: (options.regions ?? ['cn-hangzhou', 'cn-shanghai', 'cn-beijing']).join(','),
    TAGWARDEN_HTTP_HOST: '127.0.0.1',
    TAGWARDEN_HTTP_PORT: '0',
    TAGWARDEN_LOG_LEVEL: 'info',
    ALIBABA_CLOUD_ACCESS_KEY_ID: EMULATOR_KEYS.accessKeyId,
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: EMULATOR_KEYS.accessKeySecret,
    ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true',
    ALIBABA_CLOUD_CLI_PROFILE_DISABLED: 'true',
    ...options.extra,
  };
}

export interface TagwardenProcess {
  child: ChildProcess;
  /** Every line written to stdout and stderr so far. */
  lines: string[];
  /** Resolves with the first line (new or already seen) matching `pattern`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `node dist/cmd/tagwarden.js ...args`. */
export function spawnTagwarden(args: string[], env: NodeJS.ProcessEnv): TagwardenProcess {
  return spawnScript(CLI, args, env);
}

/** The built crash-test daemon (test/support/crash-daemon.ts): a daemon that can SIGKILL itself before a scan write. */
export const CRASH_DAEMON = join(REPO_ROOT, 'dist/test/support/crash-daemon.js');

/** Spawns `node <script> ...args`, with the line capture of spawnTagwarden. */
export function spawnScript(script: string, args: string[], env: NodeJS.ProcessEnv): TagwardenProcess {
  const child = spawn(process.execPath, [script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  const onData = (buffer: { partial: string }) => (chunk: Buffer) => {
    const text = buffer.partial + chunk.toString('utf8');
    const parts = text.split('\n');
    buffer.partial = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.pattern.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  };
  child.stdout?.on('data', onData({ partial: '' }));
  child.stderr?.on('data', onData({ partial: '' }));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
    child.on('exit', (code, signal) => resolveExit({ code, signal }));
  });
  return {
    child,
    lines,
    exited,
    waitFor(pattern, timeoutMs = 30_000) {
      const seen = lines.find((l) => pattern.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolveLine, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; last lines:\n${lines.slice(-20).join('\n')}`)), timeoutMs);
        waiters.push({
          pattern,
          resolve: (line) => {
            clearTimeout(timer);
            resolveLine(line);
          },
        });
        void exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`process exited before a line matching ${pattern}; last lines:\n${lines.slice(-20).join('\n')}`));
        });
      });
    },
  };
}

/** The HTTP port a spawned daemon bound (it logs `http listening`). */
export async function daemonPort(proc: TagwardenProcess, timeoutMs = 30_000): Promise<number> {
  const line = await proc.waitFor(/"message":"http listening"/, timeoutMs);
  return (JSON.parse(line) as { port: number }).port;
}

/** Writes policy documents as YAML files into a new temp directory and returns it. */
export function writePolicies(docs: ReadonlyArray<Record<string, unknown>>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tw-policies-'));
  docs.forEach((doc, i) => writeFileSync(join(dir, `policy-${i}.yaml`), stringify(doc)));
  return dir;
}

/** A policy document with the fixed header. */
export function policyDoc(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'tagwarden/v1', kind: 'TagPolicy', metadata: { name }, spec: { resourceType: 'PeerConnection', ...spec } };
}

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A validated config for in-process runs against an emulator, on its own prefix, with fast retries. */
export function testConfig(options: {
  emulatorUrl: string;
  prefix: string;
  policiesDir?: string;
  regions?: readonly string[];
  overrides?: Partial<AppConfigInput>;
}): AppConfig {
  return loadConfig(
    { HOME: process.env.HOME ?? '/tmp', ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true' },
    {
      redisUrl: REDIS_URL,
      endpoint: options.emulatorUrl,
      queuePrefix: options.prefix,
      regions: (options.regions ?? ['cn-hangzhou', 'cn-shanghai', 'cn-beijing']).join(',') as never,
      policiesDir: options.policiesDir ?? join(REPO_ROOT, 'policies'),
      retryBaseMs: 20,
      retryMaxMs: 200,
      stalledIntervalMs: 2_000,
      lockDurationMs: 3_000,
      httpHost: '127.0.0.1',
      httpPort: 0,
      ...options.overrides,
    },
  );
}

/** ClientTokens that the emulator saw with two different parameter sets (must be empty). */
export function tokensReusedWithOtherParams(calls: ReadonlyArray<{ action: string; clientToken?: string | null; params: unknown }>): string[] {
  const seen = new Map<string, string>();
  const bad = new Set<string>();
  for (const call of calls) {
    if (call.action !== 'UnTagResources' || !call.clientToken) continue;
    const params = JSON.stringify(call.params);
    const first = seen.get(call.clientToken);
    if (first === undefined) seen.set(call.clientToken, params);
    else if (first !== params) bad.add(call.clientToken);
  }
  return [...bad];
}

/** Quotas so high that neither the emulator nor tagwarden ever paces: for tests about something else. */
export const UNLIMITED_QUOTAS = {
  UnTagResources: 1e6,
  TagResources: 1e6,
  ListTagResources: 1e6,
  ListVpcPeerConnections: 1e6,
  GetVpcPeerConnectionAttribute: 1e6,
};

/** Removes the generated estate's temporary tags (tmp-*, scratch-<n>): the connections discovery path. */
export function temporaryTagsPolicy(regions: readonly string[], schedule: Record<string, string> = { every: '1h' }): Record<string, unknown> {
  return policyDoc('strip-temporary', {
    regions,
    remove: { keyPatterns: ['tmp-*', '/^scratch-\\d+$/'] },
    schedule,
    limits: { maxRemovalsPerRun: 100_000 },
  });
}

/** Removes the generated estate's legacy finance keys: the ListTagResources discovery path. */
export function financeKeysPolicy(regions: readonly string[], schedule: Record<string, string> = { every: '1h' }): Record<string, unknown> {
  return policyDoc('legacy-finance', {
    regions,
    remove: { keys: ['FinanceDept', 'legacy-billing-code'] },
    schedule,
    limits: { maxRemovalsPerRun: 100_000 },
  });
}

/**
 * An in-process tagwarden (workers for `regions` only) with the first policy of `policiesDir` compiled and a
 * scheduler to start scans of it by hand: for tests that stage a run step by step.
 */
export async function startStagedRun(options: {
  emulatorUrl: string;
  prefix: string;
  regions: readonly string[];
  policiesDir: string;
  logger: Logger;
  /** Extra runtime options (crash hooks, enqueue chunk). */
  runtime?: Omit<RuntimeOptions, 'credentials' | 'logger'>;
}) {
  const core = createCore(testConfig(options), { ...options.runtime, credentials: EMULATOR_KEYS, logger: options.logger });
  const workers = core.createWorkers();
  workers.start();
  const [policy] = compilePolicies((await readPolicySources([options.policiesDir])).sources, new Date()).policies;
  if (!policy) throw new Error(`no valid policy in ${options.policiesDir}`);
  const scheduler = createPolicyScheduler({
    queue: core.scanQueue,
    scanJobOptions: scanJobOptions({ attempts: 1, completedRetentionHours: 1, failedRetentionDays: 1 }),
    logger: options.logger,
  });
  return {
    core,
    policy,
    scanNow: (runId: string) => scheduler.scanNow(policy, 'once', runId),
    async close() {
      await workers.close();
      await core.close();
    },
  };
}
