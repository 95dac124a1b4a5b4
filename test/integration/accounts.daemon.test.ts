// The daemon over many accounts, end to end on the real Redis, BullMQ, SDK and @alicloud/credentials against the
// emulator over HTTP: scheduled scans per (account, policy, region), a denied role skipped and reported (log,
// metric, /readyz, GET /v1/accounts) while the others go on, roles refreshed before expiry with at most one
// AssumeRole per session lifetime, a throttled account that never slows another, accounts added by a refresh,
// POST /v1/untag routed by account. Oracles: emulator state and call log, HTTP answers, Redis keys.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type EmulatorAccount, type EmulatorResource, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { accountQueuePrefix, accountTag, untagQueueName } from '../../src/queue/index.js';
import { startDaemon, type Daemon } from '../../src/runtime/index.js';
import {
  EMULATOR_KEYS, REDIS_URL, UNLIMITED_QUOTAS, cleanupPrefix, eventually, policyDoc, spawnTagwarden, tagwardenEnv, testConfig, uniquePrefix, writePolicies,
} from '../support/harness.js';

const REGION = 'cn-hangzhou';
const PROD = '1100000000000001';
const DEV = '1100000000000002';
const LOCKED = '1100000000000003';
const LATE = '1100000000000004';
/** The emulator's sessions live 904 s: the library refreshes 900 s before expiry, so every ~4 s. */
const SESSION_S = 904;

function estate(account: string, count: number): EmulatorResource[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `pcc-d${account.slice(-1)}x${String(i).padStart(4, '0')}`,
    region: REGION,
    tags: { 'tmp-a': String(i), legacy: 'yes', owner: 'net' },
  }));
}

const emulatorAccounts: EmulatorAccount[] = [
  { id: PROD, roleName: 'tagwarden', fixture: { resources: estate(PROD, 50) } },
  // Throttled hard: 70% of its UnTagResources calls answer Throttling.User.
  { id: DEV, roleName: 'tagwarden', fixture: { resources: estate(DEV, 50) }, faults: { throttle: 0.7, actions: ['UnTagResources'], seed: 7 } },
  { id: LOCKED, roleName: 'tagwarden', denied: true, fixture: { resources: estate(LOCKED, 10) } },
  { id: LATE, roleName: 'tagwarden', fixture: { resources: estate(LATE, 10) } },
];

const entry = (id: string, name: string, env: string) => `  - { id: "${id}", name: ${name}, roleArn: "acs:ram::${id}:role/tagwarden", tags: { env: ${env} } }\n`;
const HEAD = 'apiVersion: tagwarden/v1\nkind: AccountList\naccounts:\n';

let emu: RunningEmulator;
let prefix: string;
let accountsPath: string;
let daemon: Daemon;
const { logger, lines } = createMemoryLogger({ level: 'info', secrets: [] });
const TOKEN = 'accounts-daemon-test-token-0123456789';
let started = 0;

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown>; text: string }> {
  const res = await fetch(`http://127.0.0.1:${daemon.httpPort}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // metrics are text
  }
  return { status: res.status, body: parsed, text };
}

async function tagsOf(account: string): Promise<Array<Record<string, string>>> {
  return (await createEmulatorAdmin(emu.url).account(account).getState()).resources.map((r) => r.tags);
}
const calls = async (account: string) => (await createEmulatorAdmin(emu.url).account(account).getCalls()).calls;

beforeAll(async () => {
  emu = await startEmulator({ accounts: emulatorAccounts, quotas: UNLIMITED_QUOTAS, quotaWindowMs: 1_000, stsSessionSeconds: SESSION_S });
  prefix = uniquePrefix('acctd');
  const dir = mkdtempSync(join(tmpdir(), 'tw-accounts-daemon-'));
  accountsPath = join(dir, 'accounts.yaml');
  writeFileSync(accountsPath, HEAD + entry(PROD, 'prod', 'production') + entry(DEV, 'dev', 'dev') + entry(LOCKED, 'locked', 'production'));
  const policiesDir = writePolicies([
    policyDoc('strip-tmp', { regions: [REGION], schedule: { every: '1m' }, remove: { keys: ['tmp-a'] }, limits: { maxRemovalsPerRun: 100_000 } }),
    policyDoc('prod-legacy', { regions: [REGION], schedule: { every: '1m' }, accounts: { tags: { env: 'prod*' } }, remove: { keys: ['legacy'] }, limits: { maxRemovalsPerRun: 100_000 } }),
  ]);
  const config = testConfig({
    emulatorUrl: emu.url, prefix, policiesDir, regions: [REGION],
    overrides: { accountsFile: accountsPath, stsEndpoint: emu.url, quotas: UNLIMITED_QUOTAS, quotaWindowMs: 1_000, concurrency: 4, apiToken: TOKEN },
  });
  started = Date.now();
  daemon = await startDaemon(config, { logger, credentials: EMULATOR_KEYS, accountsRefreshMs: 1_000, resyncMs: 2_000, readyRefreshMs: 500 });
}, 60_000);

afterAll(async () => {
  await daemon?.close({ force: true });
  await emu?.close();
  await cleanupPrefix(prefix);
});

describe('the daemon over many accounts', () => {
  it('scans each governed account on schedule, skips the denied one, and reports it everywhere', async () => {
    await eventually(async () => ((await tagsOf(PROD)).every((t) => t['tmp-a'] === undefined && t['legacy'] === undefined) ? true : undefined), 60_000, 250);
    await eventually(async () => ((await tagsOf(DEV)).every((t) => t['tmp-a'] === undefined) ? true : undefined), 60_000, 250);
    // The policy scoped by account tags touched only the production account it could reach.
    expect((await tagsOf(DEV)).every((t) => t['legacy'] === 'yes' && t['owner'] === 'net')).toBe(true);
    expect((await tagsOf(PROD)).every((t) => t['owner'] === 'net')).toBe(true);
    expect((await tagsOf(LOCKED)).every((t) => t['tmp-a'] !== undefined && t['legacy'] === 'yes')).toBe(true);
    expect((await calls(LOCKED)).filter((c) => c.action !== 'AssumeRole')).toEqual([]);

    const ready = await api('GET', '/readyz');
    expect(ready.status).toBe(200);
    const checks = ready.body.checks as Record<string, { ok: boolean; detail?: string }>;
    expect(checks.accounts?.detail).toContain(`${LOCKED} (role not assumed: NoPermission)`);
    expect(checks[`account ${PROD}`]).toEqual({ ok: true });

    const accounts = await api('GET', '/v1/accounts');
    expect(accounts.status).toBe(200);
    const byId = Object.fromEntries((accounts.body.accounts as Array<Record<string, unknown>>).map((a) => [a.id, a]));
    expect(byId[PROD]).toMatchObject({ name: 'prod', state: 'governed', policies: ['prod-legacy', 'strip-tmp'].sort() });
    expect(byId[DEV]).toMatchObject({ state: 'governed', policies: ['strip-tmp'] });
    expect(byId[LOCKED]).toMatchObject({ state: 'skipped', reason: 'role not assumed: NoPermission', policies: [] });

    const metrics = await api('GET', '/metrics');
    expect(metrics.text).toMatch(new RegExp(`^tagwarden_account_up\\{account="${LOCKED}"\\} 0$`, 'm'));
    expect(metrics.text).toMatch(new RegExp(`^tagwarden_account_up\\{account="${PROD}"\\} 1$`, 'm'));
    expect(metrics.text).toMatch(new RegExp(`^tagwarden_tags_removed_total\\{[^}]*account="${PROD}"[^}]*\\} [1-9]`, 'm'));
    expect(metrics.text).toMatch(new RegExp(`^tagwarden_sts_assume_role_total\\{account="${LOCKED}",outcome="denied"\\} [1-9]`, 'm'));

    const text = lines.join('\n');
    expect(text).toContain('account skipped: its role cannot be assumed');
    // Audit records carry their account.
    const audits = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.audit === true);
    expect(audits.some((a) => a.account === PROD)).toBe(true);
    expect(audits.every((a) => a.account === PROD || a.account === DEV)).toBe(true);
  }, 90_000);

  it('keeps quotas apart: the throttled account was throttled, the other never', async () => {
    const prodUntag = (await calls(PROD)).filter((c) => c.action === 'UnTagResources');
    const devUntag = (await calls(DEV)).filter((c) => c.action === 'UnTagResources');
    expect(devUntag.some((c) => c.code === 'Throttling.User')).toBe(true);
    expect(prodUntag.length).toBeGreaterThan(0);
    expect(prodUntag.every((c) => c.code === 'OK')).toBe(true);
    // Each account's VpcPeer calls carry its own temporary key, never another's.
    for (const account of [PROD, DEV]) {
      expect((await calls(account)).filter((c) => c.action !== 'AssumeRole').every((c) => c.account === account && c.accessKeyId?.startsWith('STS.'))).toBe(true);
    }
    // Redis: every key of an account lives under its own hash-tagged prefix, the locked one has none.
    const redis = new Redis(REDIS_URL);
    try {
      const keys = await redis.keys(`${prefix}*`);
      const under = (account: string) => keys.filter((k) => k.startsWith(`${accountQueuePrefix(prefix, account)}:`));
      expect(under(PROD).some((k) => k.includes(untagQueueName(PROD, REGION)))).toBe(true);
      expect(under(DEV).some((k) => k.includes(`ratelimit:${accountTag(DEV)}:${REGION}:UnTagResources`))).toBe(true);
      expect(under(LOCKED)).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });

  it('refreshes each role before its session expires, with at most one AssumeRole per session lifetime', async () => {
    // Scans on demand, each a little over one refresh period apart, so every one finds its session due.
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, (SESSION_S - 900) * 1000 + 500));
      expect((await api('POST', '/v1/policies/strip-tmp/scan')).status).toBe(202);
    }
    await eventually(async () => ((await createEmulatorAdmin(emu.url).listAccounts()).accounts.find((a) => a.id === PROD)?.stsCalls['OK'] ?? 0) >= 3 ? true : undefined, 60_000, 250);
    const elapsedS = (Date.now() - started) / 1000;
    const sts = (await createEmulatorAdmin(emu.url).listAccounts()).accounts;
    // The library refreshes SESSION_S - 900 = 4 s into a session: at most one call per 4 s (plus the first).
    const bound = Math.floor(elapsedS / (SESSION_S - 900)) + 1;
    for (const account of [PROD, DEV]) {
      const ok = sts.find((a) => a.id === account)?.stsCalls['OK'] ?? 0;
      expect(ok).toBeGreaterThanOrEqual(2);
      expect(ok).toBeLessThanOrEqual(bound);
    }
    // No call was ever made with an expired session.
    for (const account of [PROD, DEV]) {
      expect((await calls(account)).filter((c) => String(c.code).startsWith('InvalidSecurityToken'))).toEqual([]);
    }
  }, 90_000);

  it('POST /v1/untag takes a governed account, and refuses a missing, unknown or skipped one', async () => {
    const id = `pcc-d${PROD.slice(-1)}x0001`;
    const ok = await api('POST', '/v1/untag', { account: PROD, region: REGION, resourceIds: [id], tagKeys: ['owner'], reason: 'test' });
    expect(ok.status).toBe(202);
    expect(ok.body.account).toBe(PROD);
    await eventually(async () => ((await tagsOf(PROD)).some((t, i) => i === 1 && t['owner'] === undefined) ? true : undefined), 30_000, 200);
    // The same ID in the other account was not touched.
    expect((await tagsOf(DEV)).every((t) => t['owner'] === 'net')).toBe(true);
    const missing = await api('POST', '/v1/untag', { region: REGION, resourceIds: [id], tagKeys: ['owner'], reason: 'test' });
    expect(missing.status).toBe(400);
    expect(JSON.stringify(missing.body.problems)).toContain('account: required');
    const unknown = await api('POST', '/v1/untag', { account: '999', region: REGION, resourceIds: [id], tagKeys: ['owner'], reason: 'test' });
    expect(unknown.status).toBe(400);
    const hostile = await api('POST', '/v1/untag', { account: '{1}', region: REGION, resourceIds: [id], tagKeys: ['owner'], reason: 'test' });
    expect(hostile.status).toBe(400);
    const skipped = await api('POST', '/v1/untag', { account: LOCKED, region: REGION, resourceIds: [id], tagKeys: ['owner'], reason: 'test' });
    expect(skipped.status).toBe(409);
    const jobs = await api('GET', '/v1/jobs?state=completed&limit=1000');
    expect((jobs.body.jobs as Array<{ account: string }>).some((j) => j.account === PROD)).toBe(true);
    // The CLI reads every account's queues too, and names the account of each job (--account restricts).
    const env = tagwardenEnv({ emulatorUrl: emu.url, prefix, regions: [REGION], extra: { TAGWARDEN_ACCOUNTS_FILE: accountsPath, TAGWARDEN_LOG_LEVEL: 'warn' } });
    const listed = spawnTagwarden(['jobs', 'list', '--state', 'completed', '--limit', '1000', '--account', 'dev', '--json'], env);
    expect((await listed.exited).code).toBe(0);
    const cliJobs = JSON.parse(listed.lines.join('\n')) as Array<{ account: string; queue: string }>;
    expect(cliJobs.length).toBeGreaterThan(0);
    expect(cliJobs.every((j) => j.account === DEV)).toBe(true);
    expect(cliJobs.filter((j) => j.queue.startsWith('untag-')).every((j) => j.queue === untagQueueName(DEV, REGION))).toBe(true);
    expect(cliJobs.some((j) => j.queue.startsWith('untag-'))).toBe(true);
  }, 60_000);

  it('an account added to the accounts file is governed after the next refresh', async () => {
    writeFileSync(accountsPath, HEAD + entry(PROD, 'prod', 'production') + entry(DEV, 'dev', 'dev') + entry(LOCKED, 'locked', 'production') + entry(LATE, 'late', 'dev'));
    await eventually(async () => ((await tagsOf(LATE)).every((t) => t['tmp-a'] === undefined) ? true : undefined), 60_000, 250);
    expect((await tagsOf(LATE)).every((t) => t['legacy'] === 'yes')).toBe(true);
    const accounts = await api('GET', '/v1/accounts');
    expect((accounts.body.accounts as Array<{ id: string; state: string }>).find((a) => a.id === LATE)?.state).toBe('governed');
  }, 90_000);
});
