// The CLI with an accounts file, as users run it: validate --accounts-file/--account (file:line:column for a
// broken accounts file), plan and run --once --account against the emulator over HTTP with the real
// credentials library (the account column, a skipped account's row and exit 1), and --account without a file.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type EmulatorResource, type RunningEmulator } from '../../src/emulator/index.js';
import { REPO_ROOT, UNLIMITED_QUOTAS, cleanupPrefix, policyDoc, spawnTagwarden, tagwardenEnv, uniquePrefix, writePolicies } from '../support/harness.js';

const REGION = 'cn-hangzhou';
const PROD = '1200000000000001';
const DEV = '1200000000000002';
const LOCKED = '1200000000000003';

const estate = (account: string, n: number): EmulatorResource[] =>
  Array.from({ length: n }, (_, i) => ({ id: `pcc-c${account.slice(-1)}x${String(i).padStart(4, '0')}`, region: REGION, tags: { 'tmp-a': 'x', legacy: 'y' } }));

let emu: RunningEmulator;
let prefix: string;
let dir: string;
let accountsPath: string;
let policiesDir: string;

async function cli(args: string[], extra: Record<string, string> = {}) {
  const proc = spawnTagwarden(args, tagwardenEnv({ emulatorUrl: emu.url, prefix, regions: [REGION], extra: { TAGWARDEN_LOG_LEVEL: 'warn', ...extra } }));
  const { code } = await proc.exited;
  return { code, out: proc.lines.join('\n') };
}

beforeAll(async () => {
  emu = await startEmulator({
    accounts: [
      { id: PROD, roleName: 'tagwarden', fixture: { resources: estate(PROD, 30) } },
      { id: DEV, roleName: 'tagwarden', fixture: { resources: estate(DEV, 30) } },
      { id: LOCKED, roleName: 'tagwarden', denied: true, fixture: { resources: estate(LOCKED, 5) } },
    ],
    quotas: UNLIMITED_QUOTAS,
  });
  prefix = uniquePrefix('acctcli');
  dir = mkdtempSync(join(tmpdir(), 'tw-accounts-cli-'));
  accountsPath = join(dir, 'accounts.yaml');
  writeFileSync(accountsPath, `apiVersion: tagwarden/v1
kind: AccountList
accounts:
  - { id: "${PROD}", name: prod, roleArn: "acs:ram::${PROD}:role/tagwarden", tags: { env: production } }
  - { id: "${DEV}", name: dev, roleArn: "acs:ram::${DEV}:role/tagwarden", tags: { env: dev } }
  - { id: "${LOCKED}", name: locked, roleArn: "acs:ram::${LOCKED}:role/tagwarden", tags: { env: production } }
`);
  policiesDir = writePolicies([
    policyDoc('strip-tmp', { regions: [REGION], remove: { keys: ['tmp-a'] } }),
    policyDoc('prod-legacy', { regions: [REGION], accounts: { tags: { env: 'prod*' } }, remove: { keys: ['legacy'] } }),
  ]);
});
afterAll(async () => {
  await emu.close();
  await cleanupPrefix(prefix);
});

const withAccounts = () => ({ TAGWARDEN_ACCOUNTS_FILE: accountsPath, TAGWARDEN_STS_ENDPOINT: emu.url });

describe('the CLI with an accounts file', () => {
  it('validate shows the accounts each policy governs, restricts with --account, and locates a broken accounts file', async () => {
    const all = await cli(['validate', policiesDir, '--accounts-file', accountsPath, '--json']);
    expect(all.code).toBe(0);
    const report = JSON.parse(all.out) as { policies: Array<{ name: string; accounts: string[] }> };
    expect(Object.fromEntries(report.policies.map((p) => [p.name, p.accounts]))).toEqual({ 'strip-tmp': [PROD, DEV, LOCKED], 'prod-legacy': [PROD, LOCKED] });
    const dev = await cli(['validate', policiesDir, '--accounts-file', accountsPath, '--account', 'dev', '--json']);
    expect((JSON.parse(dev.out) as { policies: Array<{ name: string }> }).policies.map((p) => p.name)).toEqual(['strip-tmp']);
    const unknown = await cli(['validate', policiesDir, '--accounts-file', accountsPath, '--account', 'nobody']);
    expect(unknown.code).toBe(1);
    expect(unknown.out).toContain('--account "nobody" names no listed account');
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'apiVersion: tagwarden/v1\nkind: AccountList\naccounts:\n  - { id: 12, name: x, roleArn: "acs:ram::12:role/r" }\n');
    const bad = await cli(['validate', policiesDir, '--accounts-file', broken]);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/broken\.yaml:4:\d+/);
    const noFile = await cli(['validate', policiesDir, '--account', 'dev']);
    expect(noFile.code).toBe(1);
    // The shipped example validates.
    const example = await cli(['validate', join(REPO_ROOT, 'policies'), '--accounts-file', join(REPO_ROOT, 'deploy/accounts.example.yaml')]);
    expect(example.out).not.toMatch(/accounts\.example\.yaml:\d+/);
  }, 60_000);

  it('plan and run --once --account show the account, and a denied role is a skipped row with exit 1', async () => {
    const plan = await cli(['plan', '--policies', policiesDir], withAccounts());
    expect(plan.code).toBe(1); // the locked account could not be planned
    expect(plan.out).toMatch(new RegExp(`${LOCKED}.*SKIPPED \\(role not assumed: NoPermission\\)`));
    expect(plan.out).toMatch(new RegExp(`^\\s*account\\s+policy`, 'm'));
    const planDev = await cli(['plan', '--policies', policiesDir, '--account', 'dev', '--json'], withAccounts());
    expect(planDev.code).toBe(2);
    const rows = (JSON.parse(planDev.out) as { rows: Array<{ account: string; policy: string; tagsToRemove: number }> }).rows;
    expect(rows.map((r) => [r.account, r.policy, r.tagsToRemove])).toEqual([[DEV, 'strip-tmp', 30]]);
    const out = await cli(['plan', '--policies', policiesDir, '--out', join(dir, 'p.json')], withAccounts());
    expect(out.code).toBe(1);

    const run = await cli(['run', '--once', '--policies', policiesDir, '--account', `${PROD},dev`], withAccounts());
    expect(run.code).toBe(0);
    expect(run.out).toMatch(new RegExp(`${PROD}\\s+prod-legacy\\s+30\\s+30\\s+30\\s+30`));
    const state = async (a: string) => (await createEmulatorAdmin(emu.url).account(a).getState()).resources.map((r) => r.tags);
    expect((await state(PROD)).every((t) => t['tmp-a'] === undefined && t['legacy'] === undefined)).toBe(true);
    expect((await state(DEV)).every((t) => t['tmp-a'] === undefined && t['legacy'] === 'y')).toBe(true);
    expect((await state(LOCKED)).every((t) => t['tmp-a'] === 'x')).toBe(true);

    const without = await cli(['run', '--once', '--policies', policiesDir, '--account', 'dev']);
    expect(without.code).toBe(1);
    expect(without.out).toContain('--account needs an accounts file');
    const unknown = await cli(['run', '--once', '--policies', policiesDir, '--account', 'nobody'], withAccounts());
    expect(unknown.code).toBe(1);
    expect(unknown.out).toContain('--account names no governed account: nobody');
  }, 120_000);
});
