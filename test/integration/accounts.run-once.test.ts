// run --once over many accounts, end to end on the real Redis and the emulator over HTTP with the real
// credentials library: policies scoped by account tags, a denied role skipping one account, per-account
// quota isolation (one account throttled hard). Oracles: each account's emulator state and call log, Redis keys.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type EmulatorAccount, type EmulatorResource, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { accountQueuePrefix, accountTag } from '../../src/queue/index.js';
import { planAccounts, readAccountsFile, runOnceAccounts } from '../../src/runtime/index.js';
import { EMULATOR_KEYS, REDIS_URL, UNLIMITED_QUOTAS, cleanupPrefix, policyDoc, testConfig, uniquePrefix, writePolicies } from '../support/harness.js';

const REGION = 'cn-hangzhou';
const PROD = '1000000000000001';
const DEV = '1000000000000002';
const LOCKED = '1000000000000003';

function estate(account: string, count: number): EmulatorResource[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `pcc-${account.slice(-1)}x${String(i).padStart(4, '0')}`,
    region: REGION,
    tags: { 'tmp-a': String(i), legacy: 'yes', owner: 'net' },
  }));
}

const accounts: EmulatorAccount[] = [
  { id: PROD, roleName: 'tagwarden', fixture: { resources: estate(PROD, 60) } },
  // Throttled hard: half of its UnTagResources calls answer Throttling.User.
  { id: DEV, roleName: 'tagwarden', fixture: { resources: estate(DEV, 60) }, faults: { throttle: 0.5, actions: ['UnTagResources'], seed: 3 } },
  { id: LOCKED, roleName: 'tagwarden', denied: true, fixture: { resources: estate(LOCKED, 10) } },
];

const ACCOUNTS_FILE = `apiVersion: tagwarden/v1
kind: AccountList
accounts:
  - { id: "${PROD}", name: prod, roleArn: "acs:ram::${PROD}:role/tagwarden", tags: { env: production } }
  - { id: "${DEV}", name: dev, roleArn: "acs:ram::${DEV}:role/tagwarden", tags: { env: dev } }
  - { id: "${LOCKED}", name: locked, roleArn: "acs:ram::${LOCKED}:role/tagwarden", tags: { env: production } }
`;

let emu: RunningEmulator;
let prefix: string;
let accountsPath: string;
let policiesDir: string;

beforeAll(async () => {
  emu = await startEmulator({ accounts, quotas: UNLIMITED_QUOTAS, quotaWindowMs: 1_000 });
  prefix = uniquePrefix('accounts');
  const dir = mkdtempSync(join(tmpdir(), 'tw-accounts-'));
  accountsPath = join(dir, 'accounts.yaml');
  writeFileSync(accountsPath, ACCOUNTS_FILE);
  policiesDir = writePolicies([
    policyDoc('strip-tmp', { regions: [REGION], remove: { keys: ['tmp-a'] }, limits: { maxRemovalsPerRun: 100_000 } }),
    policyDoc('prod-legacy', { regions: [REGION], accounts: { tags: { env: 'prod*' } }, remove: { keys: ['legacy'] }, limits: { maxRemovalsPerRun: 100_000 } }),
  ]);
});
afterAll(async () => {
  await emu.close();
  await cleanupPrefix(prefix);
});

const config = () => testConfig({
  emulatorUrl: emu.url, prefix, policiesDir, regions: [REGION],
  overrides: { accountsFile: accountsPath, stsEndpoint: emu.url, quotas: UNLIMITED_QUOTAS, quotaWindowMs: 1_000, concurrency: 4 },
});

async function tagsOf(account: string): Promise<Array<Record<string, string>>> {
  return (await createEmulatorAdmin(emu.url).account(account).getState()).resources.map((r) => r.tags);
}

describe('plan and run --once over many accounts', () => {
  it('plans per account, honours spec.accounts tags and --account, and reports the denied role', async () => {
    const list = await readAccountsFile(accountsPath);
    const report = await planAccounts(config(), list, { policiesPaths: [policiesDir], credentials: EMULATOR_KEYS });
    expect(report.rows.map((r) => [r.account, r.policy, r.tagsToRemove]).sort()).toEqual([
      [PROD, 'prod-legacy', 60],
      [PROD, 'strip-tmp', 60],
      [DEV, 'strip-tmp', 60],
    ]);
    expect(report.accounts.find((a) => a.account === LOCKED)).toMatchObject({ status: 'skipped', reason: 'role not assumed: NoPermission' });
    const only = await planAccounts(config(), list, { policiesPaths: [policiesDir], credentials: EMULATOR_KEYS, accounts: ['dev'] });
    expect(only.rows.map((r) => r.account)).toEqual([DEV]);
    await expect(planAccounts(config(), list, { policiesPaths: [policiesDir], credentials: EMULATOR_KEYS, accounts: ['nobody'] }))
      .rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    expect((await createEmulatorAdmin(emu.url).getStats()).byAction['UnTagResources']?.total ?? 0).toBe(0);
  });

  it('reconciles each account exactly, skips the denied one, and one throttled account never slows another', async () => {
    const { logger, lines } = createMemoryLogger({ level: 'info', secrets: [] });
    const list = await readAccountsFile(accountsPath);
    const result = await runOnceAccounts(config(), list, { policiesPaths: [policiesDir], credentials: EMULATOR_KEYS, logger, timeoutMs: 120_000 });
    expect(result.timedOut).toBe(false);
    // The denied account makes the run fail (exit 1) but the others ran to the end.
    expect(result.failed).toBe(true);
    expect(result.accounts.map((a) => [a.account, a.status])).toEqual([[PROD, 'ok'], [DEV, 'ok'], [LOCKED, 'skipped']]);
    expect(result.summary.map((s) => [s.account, s.policy, s.removed, s.failed]).sort()).toEqual([
      [PROD, 'prod-legacy', 60, 0],
      [PROD, 'strip-tmp', 60, 0],
      [DEV, 'strip-tmp', 60, 0],
    ]);

    // Emulator state, account by account.
    expect((await tagsOf(PROD)).every((t) => t['tmp-a'] === undefined && t['legacy'] === undefined && t['owner'] === 'net')).toBe(true);
    expect((await tagsOf(DEV)).every((t) => t['tmp-a'] === undefined && t['legacy'] === 'yes' && t['owner'] === 'net')).toBe(true);
    expect((await tagsOf(LOCKED)).every((t) => t['tmp-a'] !== undefined && t['legacy'] === 'yes')).toBe(true);

    // Quota isolation: dev was throttled, prod never was; the locked account saw no VpcPeer call at all.
    const calls = async (account: string) => (await createEmulatorAdmin(emu.url).account(account).getCalls()).calls;
    const devUntag = (await calls(DEV)).filter((c) => c.action === 'UnTagResources');
    const prodUntag = (await calls(PROD)).filter((c) => c.action === 'UnTagResources');
    expect(devUntag.filter((c) => c.code === 'Throttling.User').length).toBeGreaterThan(0);
    expect(prodUntag.length).toBeGreaterThan(0);
    expect(prodUntag.every((c) => c.code === 'OK')).toBe(true);
    expect((await calls(LOCKED)).filter((c) => c.action !== 'AssumeRole')).toEqual([]);
    // Every VpcPeer call of an account was made with that account's temporary key.
    for (const [account, list2] of [[PROD, await calls(PROD)], [DEV, await calls(DEV)]] as const) {
      expect(list2.filter((c) => c.action !== 'AssumeRole').every((c) => c.account === account && c.accessKeyId?.startsWith('STS.'))).toBe(true);
    }
    // One session per account for the whole run.
    const sts = (await createEmulatorAdmin(emu.url).listAccounts()).accounts;
    expect(Object.fromEntries(sts.map((a) => [a.id, a.stsCalls['OK'] ?? 0]))).toMatchObject({ [PROD]: 2, [DEV]: 3 }); // plans (dev twice, once with --account) + run
    expect(result.accounts.filter((a) => a.status === 'ok').map((a) => a.stsCalls)).toEqual([1, 1]);

    // Redis: each account's queues, limiter and ledger live under its own prefix.
    const redis = new Redis(REDIS_URL);
    try {
      const keys = await redis.keys(`${prefix}*`);
      const under = (account: string) => keys.filter((k) => k.startsWith(`${accountQueuePrefix(prefix, account)}:`));
      expect(under(PROD).some((k) => k.includes(':run:'))).toBe(true);
      expect(under(DEV).some((k) => k.includes(':run:'))).toBe(true);
      expect(under(DEV).some((k) => k.includes(`ratelimit:${accountTag(DEV)}:${REGION}:UnTagResources`))).toBe(true);
      expect(under(DEV).some((k) => k.includes(PROD))).toBe(false);
      expect(under(LOCKED)).toEqual([]);
      expect(keys.filter((k) => !under(PROD).includes(k) && !under(DEV).includes(k))).toEqual([]);
    } finally {
      redis.disconnect();
    }
    // The skip is logged with its account; audit lines carry the account.
    const text = lines.join('\n');
    expect(text).toContain('account skipped: its role cannot be assumed');
    expect(text).not.toMatch(/CAIS[A-Za-z0-9_-]{20}/); // no security token in any log line
  });
});
