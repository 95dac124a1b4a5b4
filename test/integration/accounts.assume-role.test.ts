// Per-account credentials over real HTTP: the official RAMRoleARNCredentialsProvider assumes each member's
// role at the emulator's STS, the VpcPeer client uses the temporary keys, and the emulator accepts them
// only for that account. Oracles: the emulator's call log and per-account state, never our own counters.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAccountCredentials, createCloudClient, listDirectoryAccounts, type AccountRole, type CloudApi } from '../../src/cloud/index.js';
import { createEmulatorAdmin, startEmulator, type EmulatorAccount, type RunningEmulator } from '../../src/emulator/index.js';
import { TEST_KEY, sdkCaller } from './emulator.support.js';

const A = '1111111111111111';
const B = '2222222222222222';
const C = '3333333333333333';
const LONG_EXTERNAL_ID = 'x'.repeat(1224);

const accounts: EmulatorAccount[] = [
  { id: A, name: 'prod', roleName: 'tagwarden', tags: { env: 'prod' }, generate: { count: 12, seed: 11, regions: ['cn-hangzhou'] } },
  { id: B, name: 'dev', roleName: 'tagwarden', externalId: LONG_EXTERNAL_ID, tags: { env: 'dev' }, generate: { count: 5, seed: 22, regions: ['cn-hangzhou'] } },
  { id: C, name: 'locked', roleName: 'tagwarden', denied: true, generate: { count: 3, seed: 33, regions: ['cn-hangzhou'] } },
];
const role = (id: string, externalId?: string): AccountRole => ({
  accountId: id,
  roleArn: `acs:ram::${id}:role/tagwarden`,
  ...(externalId === undefined ? {} : { externalId }),
});

let emu: RunningEmulator;
const admin = () => createEmulatorAdmin(emu.url);

beforeAll(async () => {
  emu = await startEmulator({ generate: { count: 7, seed: 1, regions: ['cn-hangzhou'] }, accounts });
});
afterAll(async () => {
  await emu.close();
});
afterEach(() => {
  delete process.env.ALIBABA_CLOUD_ROLE_ARN;
});

function layer(options: { durationSeconds?: number; retryAfterMs?: number } = {}) {
  return createAccountCredentials({
    stsEndpoint: emu.url,
    durationSeconds: options.durationSeconds ?? 3600,
    sessionName: 'tagwarden-test',
    connectTimeoutMs: 2_000,
    readTimeoutMs: 5_000,
    base: TEST_KEY,
    retryAfterMs: options.retryAfterMs ?? 60_000,
  });
}

function clientFor(creds: ReturnType<typeof layer>, r: AccountRole): CloudApi {
  return createCloudClient({
    endpoint: emu.url, connectTimeoutMs: 2_000, readTimeoutMs: 5_000, signatureVersion: 'v3',
    credentialsProvider: creds.providerFor(r),
  });
}

async function ids(client: CloudApi): Promise<string[]> {
  const out: string[] = [];
  for await (const page of client.listPeerConnections('cn-hangzhou')) out.push(...page.items.map((r) => r.id));
  return out.sort();
}

async function stateIds(account?: string): Promise<string[]> {
  const a = account === undefined ? admin() : admin().account(account);
  return (await a.getState({ region: 'cn-hangzhou' })).resources.map((r) => r.id).sort();
}

describe('AssumeRole per account', () => {
  it('each account sees only its own estate, with the member role ARN sent even when ALIBABA_CLOUD_ROLE_ARN is set', async () => {
    process.env.ALIBABA_CLOUD_ROLE_ARN = 'acs:ram::9999999999999999:role/rrsa-pod-role';
    await admin().clearCalls();
    const creds = layer();
    expect(await ids(clientFor(creds, role(A)))).toEqual(await stateIds(A));
    expect(await ids(clientFor(creds, role(B, LONG_EXTERNAL_ID)))).toEqual(await stateIds(B));
    expect(await stateIds(A)).toHaveLength(12);
    expect(await stateIds(B)).toHaveLength(5);
    const calls = (await admin().getCalls({ action: 'AssumeRole' })).calls;
    expect(calls.map((c) => [c.params['RoleArn'], c.code, c.account])).toEqual([
      [`acs:ram::${A}:role/tagwarden`, 'OK', A],
      [`acs:ram::${B}:role/tagwarden`, 'OK', B],
    ]);
    expect(calls[1]?.params['ExternalId']).toBe(LONG_EXTERNAL_ID);
    expect(calls.every((c) => c.accessKeyId === TEST_KEY.accessKeyId && c.signature === 'v2')).toBe(true);
    // The VpcPeer calls were made with temporary keys, each logged under its account.
    const lists = (await admin().getCalls({ action: 'ListVpcPeerConnections' })).calls;
    expect(lists.map((c) => c.account).sort()).toEqual([A, B]);
    expect(lists.every((c) => c.accessKeyId?.startsWith('STS.'))).toBe(true);
  });

  it('reuses one session for many concurrent calls (one AssumeRole)', async () => {
    const creds = layer();
    const before = (await admin().listAccounts()).accounts.find((a) => a.id === A)?.stsCalls['OK'] ?? 0;
    const client = clientFor(creds, role(A));
    const results = await Promise.all(Array.from({ length: 12 }, () => ids(client)));
    expect(new Set(results.map((r) => r.join(','))).size).toBe(1);
    const after = (await admin().listAccounts()).accounts.find((a) => a.id === A)?.stsCalls['OK'] ?? 0;
    expect(after - before).toBe(1);
    expect(creds.status(A)).toMatchObject({ state: 'ok', stsCalls: 1 });
  });

  it('refuses a denied role and a wrong ExternalId, and the other accounts go on', async () => {
    const creds = layer();
    const denied = clientFor(creds, role(C));
    await expect(ids(denied)).rejects.toMatchObject({ failure: { kind: 'auth' } });
    expect(creds.status(C)).toMatchObject({ state: 'denied', lastError: 'NoPermission' });
    await expect(ids(clientFor(creds, role(B, 'not-the-external-id')))).rejects.toMatchObject({ failure: { kind: 'auth' } });
    expect(creds.status(B)).toMatchObject({ state: 'denied', lastError: 'NoPermission' });
    await expect(ids(clientFor(creds, { accountId: A, roleArn: `acs:ram::${A}:role/no-such-role` }))).rejects.toBeTruthy();
    expect(creds.status(A)).toMatchObject({ state: 'denied', lastError: 'EntityNotExist.Role' });
    // A fresh layer for A still works: a refusal of one account touches no other.
    const other = layer();
    expect(await ids(clientFor(other, role(A)))).toHaveLength(12);
    // C's estate was never touched or read.
    expect((await admin().account(C).getCalls()).calls.filter((c) => c.action !== 'AssumeRole')).toEqual([]);
  });

  it('fails fast during the cool-down after a refusal instead of calling STS again', async () => {
    const creds = layer({ retryAfterMs: 60_000 });
    const client = clientFor(creds, role(C));
    const before = (await admin().listAccounts()).accounts.find((a) => a.id === C)?.stsCalls['NoPermission'] ?? 0;
    for (let i = 0; i < 5; i++) await expect(ids(client)).rejects.toBeTruthy();
    const after = (await admin().listAccounts()).accounts.find((a) => a.id === C)?.stsCalls['NoPermission'] ?? 0;
    expect(after - before).toBe(1);
    expect(creds.status(C)?.stsCalls).toBe(1);
  });

  it('a role granted again is assumed once the cool-down ends', async () => {
    const creds = layer({ retryAfterMs: 1 });
    const r = { accountId: C, roleArn: `acs:ram::${C}:role/tagwarden` };
    expect((await creds.check(r)).state).toBe('denied');
    await admin().updateAccount(C, { denied: false });
    try {
      let status = await creds.check(r);
      for (let i = 0; i < 50 && status.state !== 'ok'; i++) status = await creds.check(r);
      expect(status.state).toBe('ok');
      expect(await ids(clientFor(creds, r))).toEqual(await stateIds(C));
    } finally {
      await admin().updateAccount(C, { denied: true });
    }
  });
});

describe('temporary keys are bound to their account and token', () => {
  it('rejects a temporary key with another token, and without one', async () => {
    const creds = layer();
    const c = await creds.providerFor(role(A)).getCredentials();
    const ok = await sdkCaller(emu.url, { accessKeyId: c.accessKeyId, accessKeySecret: c.accessKeySecret, securityToken: c.securityToken })
      .call('ListVpcPeerConnections', {}, { RegionId: 'cn-hangzhou' });
    expect(ok['TotalCount']).toBe(12);
    const wrong = await sdkCaller(emu.url, { accessKeyId: c.accessKeyId, accessKeySecret: c.accessKeySecret, securityToken: `${c.securityToken}x` })
      .fail('ListVpcPeerConnections', {}, { RegionId: 'cn-hangzhou' });
    expect(wrong.code).toBe('InvalidSecurityToken.MismatchWithAccessKey');
    const none = await sdkCaller(emu.url, { accessKeyId: c.accessKeyId, accessKeySecret: c.accessKeySecret })
      .fail('ListVpcPeerConnections', {}, { RegionId: 'cn-hangzhou' });
    expect(none.code).toBe('MissingSecurityToken');
  });

  it("cannot reach another account's connections, nor the management account's", async () => {
    const creds = layer();
    const fromA = clientFor(creds, role(A));
    const idOfB = (await stateIds(B))[0] ?? '';
    const idOfMgmt = (await stateIds())[0] ?? '';
    await expect(fromA.untagResources({ region: 'cn-hangzhou', resourceIds: [idOfB], tagKeys: [], all: true, clientToken: 'cross-account-1' }))
      .rejects.toMatchObject({ failure: { kind: 'not-found' } });
    await expect(fromA.untagResources({ region: 'cn-hangzhou', resourceIds: [idOfMgmt], tagKeys: [], all: true, clientToken: 'cross-account-2' }))
      .rejects.toMatchObject({ failure: { kind: 'not-found' } });
    // The management key still sees only its own estate.
    const mgmt = createCloudClient({ endpoint: emu.url, connectTimeoutMs: 2_000, readTimeoutMs: 5_000, signatureVersion: 'v3', credentials: TEST_KEY });
    expect(await ids(mgmt)).toEqual(await stateIds());
    expect(await stateIds()).toHaveLength(7);
  });

  it('refreshes the session before it expires: the old token was still valid when the new one was issued', async () => {
    // A second emulator whose sessions live 904 s: the library refreshes 900 s before expiry, so after ~4 s.
    const short = await startEmulator({ accounts: [{ id: A, roleName: 'tagwarden', generate: { count: 2, seed: 5, regions: ['cn-hangzhou'] } }], stsSessionSeconds: 904 });
    try {
      const creds = createAccountCredentials({
        stsEndpoint: short.url, durationSeconds: 3600, sessionName: 'tagwarden-test', connectTimeoutMs: 2_000, readTimeoutMs: 5_000,
        base: TEST_KEY, retryAfterMs: 1_000,
      });
      const provider = creds.providerFor(role(A));
      const first = await provider.getCredentials();
      const firstExpiry = creds.status(A)?.expiresAt ?? 0;
      let current = first;
      const deadline = Date.now() + 30_000;
      while (current.accessKeyId === first.accessKeyId && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        current = await provider.getCredentials();
      }
      expect(current.accessKeyId).not.toBe(first.accessKeyId);
      const sts = (await createEmulatorAdmin(short.url).getCalls({ action: 'AssumeRole' })).calls;
      expect(sts).toHaveLength(2);
      // Issued before the first session expired, and the first session still works until then.
      expect(sts[1]?.at ?? Infinity).toBeLessThan(firstExpiry);
      const still = await sdkCaller(short.url, { accessKeyId: first.accessKeyId, accessKeySecret: first.accessKeySecret, securityToken: first.securityToken })
        .call('ListVpcPeerConnections', {}, { RegionId: 'cn-hangzhou' });
      expect(still['TotalCount']).toBe(2);
    } finally {
      await short.close();
    }
  });

  it('rejects an expired temporary key with InvalidSecurityToken.Expired', async () => {
    let now = Date.now();
    // Sessions of 60 s, so the emulator's clock can pass the expiry while staying within the 15 min signature skew.
    const clocked = await startEmulator({ accounts: [{ id: A, roleName: 'tagwarden' }], now: () => now, stsSessionSeconds: 60 });
    try {
      const creds = createAccountCredentials({
        stsEndpoint: clocked.url, durationSeconds: 900, sessionName: 'tagwarden-test', connectTimeoutMs: 2_000, readTimeoutMs: 5_000,
        base: TEST_KEY, retryAfterMs: 1_000,
      });
      const c = await creds.providerFor(role(A)).getCredentials();
      const caller = sdkCaller(clocked.url, { accessKeyId: c.accessKeyId, accessKeySecret: c.accessKeySecret, securityToken: c.securityToken });
      now += 55_000;
      expect((await caller.call('ListVpcPeerConnections', {}, { RegionId: 'cn-hangzhou' }))['TotalCount']).toBe(0);
      now += 6_000;
      const err = await caller.fail('ListVpcPeerConnections', {}, { RegionId: 'cn-hangzhou' });
      expect(err.code).toBe('InvalidSecurityToken.Expired');
    } finally {
      await clocked.close();
    }
  });
});

describe('Resource Directory ListAccounts', () => {
  it('lists every member over several pages with tags, for the management key only', async () => {
    const many: EmulatorAccount[] = Array.from({ length: 150 }, (_, i) => ({
      id: String(4_000_000_000_000_000 + i), name: `m${i}`, tags: { team: i % 2 === 0 ? 'even' : 'odd' }, ...(i === 3 ? { status: 'InviteExpired' } : {}),
    }));
    const dir = await startEmulator({ accounts: many });
    try {
      const listed = await listDirectoryAccounts({ endpoint: dir.url, connectTimeoutMs: 2_000, readTimeoutMs: 5_000, signatureVersion: 'v3', credentials: TEST_KEY });
      expect(listed).toHaveLength(150);
      expect(listed.map((a) => a.id)).toEqual(many.map((a) => a.id));
      expect(listed[1]).toEqual({ id: many[1]?.id, name: 'm1', status: 'CreateSuccess', tags: { team: 'odd' } });
      expect(listed[3]?.status).toBe('InviteExpired');
      const pages = (await createEmulatorAdmin(dir.url).getCalls({ action: 'ListAccounts' })).calls;
      expect(pages.map((c) => c.params['PageNumber'])).toEqual(['1', '2']);
      // A member's temporary key may not list the directory.
      const member = many[0]?.id ?? '';
      const creds = createAccountCredentials({
        stsEndpoint: dir.url, durationSeconds: 900, sessionName: 'tagwarden-test', connectTimeoutMs: 2_000, readTimeoutMs: 5_000, base: TEST_KEY, retryAfterMs: 1_000,
      });
      const c = await creds.providerFor({ accountId: member, roleArn: `acs:ram::${member}:role/ResourceDirectoryAccountAccessRole` }).getCredentials();
      await expect(listDirectoryAccounts({
        endpoint: dir.url, connectTimeoutMs: 2_000, readTimeoutMs: 5_000, signatureVersion: 'v3',
        credentials: { accessKeyId: c.accessKeyId, accessKeySecret: c.accessKeySecret, securityToken: c.securityToken },
      })).rejects.toMatchObject({ failure: { code: 'NoPermission', kind: 'auth' } });
    } finally {
      await dir.close();
    }
  });
});
