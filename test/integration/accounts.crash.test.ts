// Crash recovery over many accounts: a `tagwarden run` daemon with an accounts file is SIGKILLed while batches
// of two member accounts are in flight; a second daemon on the same Redis finishes them. Oracles, per account,
// from the emulator's call log and state: every forbidden tag removed exactly once, each ClientToken sent with
// one parameter set and only to its own account, and the killed batches replayed with the same tokens.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type EmulatorResource, type RunningEmulator } from '../../src/emulator/index.js';
import {
  UNLIMITED_QUOTAS, cleanupPrefix, daemonPort, eventually, policyDoc, spawnTagwarden, tagwardenEnv, tokensReusedWithOtherParams, uniquePrefix, writePolicies,
  type TagwardenProcess,
} from '../support/harness.js';

const REGION = 'cn-hangzhou';
const A = '1400000000000001';
const B = '1400000000000002';
const COUNT = 400;

const estate = (account: string): EmulatorResource[] =>
  Array.from({ length: COUNT }, (_, i) => ({ id: `pcc-k${account.slice(-1)}x${String(i).padStart(4, '0')}`, region: REGION, tags: { 'tmp-a': String(i), owner: 'net' } }));

let emu: RunningEmulator;
let prefix: string;
let env: NodeJS.ProcessEnv;
const procs: TagwardenProcess[] = [];

beforeAll(async () => {
  const slow = { latencyMs: 1_000, actions: ['UnTagResources' as const] };
  emu = await startEmulator({
    accounts: [
      { id: A, roleName: 'tagwarden', fixture: { resources: estate(A) }, faults: slow },
      { id: B, roleName: 'tagwarden', fixture: { resources: estate(B) }, faults: slow },
    ],
    quotas: UNLIMITED_QUOTAS,
  });
  prefix = uniquePrefix('acctcrash');
  const dir = mkdtempSync(join(tmpdir(), 'tw-accounts-crash-'));
  const accountsFile = join(dir, 'accounts.yaml');
  writeFileSync(accountsFile, `apiVersion: tagwarden/v1\nkind: AccountList\naccounts:\n${[A, B].map((id) => `  - { id: "${id}", name: m${id.slice(-1)}, roleArn: "acs:ram::${id}:role/tagwarden" }\n`).join('')}`);
  env = tagwardenEnv({
    emulatorUrl: emu.url,
    prefix,
    regions: [REGION],
    extra: {
      TAGWARDEN_ACCOUNTS_FILE: accountsFile,
      TAGWARDEN_STS_ENDPOINT: emu.url,
      TAGWARDEN_POLICIES_DIR: writePolicies([policyDoc('strip-tmp', { regions: [REGION], schedule: { every: '1h' }, remove: { keys: ['tmp-a'] }, limits: { maxRemovalsPerRun: 100_000 } })]),
      TAGWARDEN_CONCURRENCY: '4',
      TAGWARDEN_STALLED_INTERVAL_MS: '2000',
      TAGWARDEN_LOCK_DURATION_MS: '3000',
      TAGWARDEN_RETRY_BASE_MS: '50',
      TAGWARDEN_RETRY_MAX_MS: '500',
    },
  });
});

afterAll(async () => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  await emu.close();
  await cleanupPrefix(prefix);
});

describe('crash recovery over many accounts', () => {
  it('a SIGKILLed daemon\'s batches are finished by another with the same tokens, per account', async () => {
    const admin = createEmulatorAdmin(emu.url);
    const untagCalls = async (account: string) => (await admin.account(account).getCalls()).calls.filter((c) => c.action === 'UnTagResources');
    const first = spawnTagwarden(['run'], env);
    procs.push(first);
    await daemonPort(first);
    // Both accounts have batches under way (the 1 s latency keeps them in flight), then the process dies.
    await eventually(async () => ((await untagCalls(A)).length >= 2 && (await untagCalls(B)).length >= 2 ? true : undefined), 60_000, 50);
    first.child.kill('SIGKILL');
    await first.exited;
    const atKill = new Map<string, number>();
    for (const account of [A, B]) atKill.set(account, (await untagCalls(account)).length);
    const second = spawnTagwarden(['run'], env);
    procs.push(second);
    await daemonPort(second);
    for (const account of [A, B]) {
      await eventually(async () => ((await admin.account(account).getState()).resources.every((r) => r.tags['tmp-a'] === undefined) ? true : undefined), 90_000, 250);
    }
    second.child.kill('SIGTERM');
    await second.exited;

    const tokens = new Map<string, Set<string>>();
    let replayed = 0;
    for (const account of [A, B]) {
      const state = (await admin.account(account).getState()).resources;
      expect(state).toHaveLength(COUNT);
      expect(state.every((r) => r.tags['owner'] === 'net' && r.tags['tmp-a'] === undefined)).toBe(true);
      const calls = await untagCalls(account);
      expect(tokensReusedWithOtherParams(calls)).toEqual([]);
      // Nothing doubled: each connection's tag was removed by exactly one applied call.
      expect(calls.reduce((n, c) => n + c.removed, 0)).toBe(COUNT);
      const byToken = new Map<string, number>();
      for (const c of calls) if (c.clientToken) byToken.set(c.clientToken, (byToken.get(c.clientToken) ?? 0) + 1);
      tokens.set(account, new Set(byToken.keys()));
      replayed += [...byToken.values()].filter((n) => n > 1).length;
      // Every call of the account was made with the account's own temporary key.
      expect(calls.every((c) => c.account === account && c.accessKeyId?.startsWith('STS.'))).toBe(true);
    }
    // The killed daemon left work that the second finished (a batch it had in flight is sent again with its
    // token, checked above to carry one parameter set; how many were in flight depends on the machine's speed);
    // no token crossed accounts.
    let after = 0;
    for (const account of [A, B]) after += (await untagCalls(account)).length - (atKill.get(account) ?? 0);
    expect(after + replayed, 'the second daemon had nothing left to finish: the crash tested nothing').toBeGreaterThan(0);
    const inA = tokens.get(A) ?? new Set<string>();
    expect([...(tokens.get(B) ?? [])].filter((t) => inA.has(t))).toEqual([]);
  }, 180_000);
});
