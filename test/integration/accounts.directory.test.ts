// Resource Directory mode in the daemon: members come from ListAccounts (the management keys, signature-checked
// by the emulator over HTTP), reached through acs:ram::<member>:role/<roleName>, with their directory tags for
// spec.accounts; a member that joins (status becomes InviteSuccess) is governed after the next refresh; a member
// without the role is skipped and reported. Oracles: emulator state and call log, GET /v1/accounts.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type EmulatorResource, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { startDaemon, type Daemon } from '../../src/runtime/index.js';
import { EMULATOR_KEYS, UNLIMITED_QUOTAS, cleanupPrefix, eventually, policyDoc, testConfig, uniquePrefix, writePolicies } from '../support/harness.js';

const REGION = 'cn-hangzhou';
const PROD = '1500000000000001';
const JOINING = '1500000000000002';
const NOROLE = '1500000000000003';
const TOKEN = 'accounts-directory-test-token-0123456789';

const estate = (account: string): EmulatorResource[] =>
  Array.from({ length: 30 }, (_, i) => ({ id: `pcc-r${account.slice(-1)}x${String(i).padStart(4, '0')}`, region: REGION, tags: { 'tmp-a': 'x', legacy: 'y' } }));

let emu: RunningEmulator;
let prefix: string;
let daemon: Daemon;

beforeAll(async () => {
  emu = await startEmulator({
    accounts: [
      { id: PROD, name: 'payments-prod', roleName: 'tagwarden', tags: { env: 'production' }, fixture: { resources: estate(PROD) } },
      { id: JOINING, name: 'joining', roleName: 'tagwarden', status: 'InviteAwaiting', tags: { env: 'dev' }, fixture: { resources: estate(JOINING) } },
      { id: NOROLE, name: 'norole', roleName: 'OtherRole', tags: { env: 'dev' }, fixture: { resources: estate(NOROLE) } },
    ],
    quotas: UNLIMITED_QUOTAS,
  });
  prefix = uniquePrefix('acctdir');
  const dir = mkdtempSync(join(tmpdir(), 'tw-accounts-dir-'));
  const accountsFile = join(dir, 'accounts.yaml');
  writeFileSync(accountsFile, 'apiVersion: tagwarden/v1\nkind: AccountList\ndirectory:\n  roleName: tagwarden\n  refreshEvery: 1m\n');
  const policiesDir = writePolicies([
    policyDoc('strip-tmp', { regions: [REGION], schedule: { every: '1h' }, remove: { keys: ['tmp-a'] } }),
    policyDoc('prod-legacy', { regions: [REGION], schedule: { every: '1h' }, accounts: { tags: { env: 'prod*' } }, remove: { keys: ['legacy'] } }),
  ]);
  const config = testConfig({
    emulatorUrl: emu.url, prefix, policiesDir, regions: [REGION],
    overrides: { accountsFile, stsEndpoint: emu.url, resourceManagerEndpoint: emu.url, quotas: UNLIMITED_QUOTAS, apiToken: TOKEN },
  });
  daemon = await startDaemon(config, { logger: createMemoryLogger({ level: 'warn', secrets: [] }).logger, credentials: EMULATOR_KEYS, accountsRefreshMs: 1_000 });
}, 60_000);

afterAll(async () => {
  await daemon?.close({ force: true });
  await emu?.close();
  await cleanupPrefix(prefix);
});

const tagsOf = async (account: string) => (await createEmulatorAdmin(emu.url).account(account).getState()).resources.map((r) => r.tags);
const accounts = async () => {
  const res = await fetch(`http://127.0.0.1:${daemon.httpPort}/v1/accounts`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return Object.fromEntries(((await res.json()) as { accounts: Array<{ id: string; state: string; source: string; reason?: string; name: string }> }).accounts.map((a) => [a.id, a]));
};

describe('Resource Directory mode', () => {
  it('governs the working members with their directory tags, skips one without the role, and adds a member that joins', async () => {
    await eventually(async () => ((await tagsOf(PROD)).every((t) => t['tmp-a'] === undefined && t['legacy'] === undefined) ? true : undefined), 60_000, 250);
    const seen = await accounts();
    expect(seen[PROD]).toMatchObject({ state: 'governed', source: 'directory', name: 'payments-prod' });
    expect(seen[NOROLE]).toMatchObject({ state: 'skipped', reason: 'role not assumed: EntityNotExist.Role' });
    expect(seen[JOINING]).toBeUndefined();
    expect((await tagsOf(JOINING)).every((t) => t['tmp-a'] === 'x')).toBe(true);
    expect((await tagsOf(NOROLE)).every((t) => t['tmp-a'] === 'x')).toBe(true);

    await createEmulatorAdmin(emu.url).updateAccount(JOINING, { status: 'InviteSuccess' });
    await eventually(async () => ((await tagsOf(JOINING)).every((t) => t['tmp-a'] === undefined) ? true : undefined), 60_000, 250);
    // Its directory tag says dev: the production-only policy leaves it alone.
    expect((await tagsOf(JOINING)).every((t) => t['legacy'] === 'y')).toBe(true);
    expect((await accounts())[JOINING]).toMatchObject({ state: 'governed', source: 'directory' });
    // ListAccounts was read again on each refresh, with the management keys only.
    const list = (await createEmulatorAdmin(emu.url).getCalls({ action: 'ListAccounts' })).calls;
    expect(list.length).toBeGreaterThan(1);
    expect(list.every((c) => c.code === 'OK' && c.accessKeyId === EMULATOR_KEYS.accessKeyId)).toBe(true);
  }, 90_000);
});
