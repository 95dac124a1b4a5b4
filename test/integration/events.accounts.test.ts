// Events with many accounts (TAGWARDEN_ACCOUNTS_FILE): the one POST /v1/events routes each event to the governor
// of its account, which reads and removes with that account's assumed role; an account no governor runs is
// acknowledged and ignored. Real Redis, BullMQ, SDK and @alicloud/credentials against the emulator over HTTP.
// Oracles: each account's emulator state and call log, the HTTP answers.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actionTrailEvent, createEmulatorAdmin, startEmulator, type EmulatorAdmin, type RunningEmulator } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { startDaemon, type Daemon } from '../../src/runtime/index.js';
import { EMULATOR_KEYS, UNLIMITED_QUOTAS, cleanupPrefix, eventually, policyDoc, testConfig, uniquePrefix, writePolicies } from '../support/harness.js';

const REGION = 'cn-hangzhou';
const PROD = '1200000000000001';
const DEV = '1200000000000002';
const NOBODY = '1299999999999999';
const EB_TOKEN = 'events-accounts-eventbridge-token-01';
const ids = (account: string) => [`pcc-e${account.slice(-1)}a`, `pcc-e${account.slice(-1)}b`];
const entry = (id: string, name: string) => `  - { id: "${id}", name: ${name}, roleArn: "acs:ram::${id}:role/tagwarden" }\n`;

let emu: RunningEmulator;
let admin: EmulatorAdmin;
let prefix: string;
let dir: string;
let policiesDir: string;
let daemon: Daemon;
const { logger } = createMemoryLogger({ level: 'info', secrets: [] });

function tagEvent(account: string, id: string): Record<string, unknown> {
  const params = { RegionId: REGION, ResourceType: 'PeerConnection', 'ResourceId.1': id, 'Tag.1.Key': 'tmp-ev', 'Tag.1.Value': '1' };
  return actionTrailEvent({ action: 'TagResources', region: REGION, requestId: `R-${id}`, params, accessKeyId: 'someone-at-the-console', userAgent: 'console', sourceIp: '10.0.0.1', at: Date.now() }, account);
}
async function post(body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${daemon.httpPort}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/cloudevents-batch+json', 'x-eventbridge-signature-token': EB_TOKEN },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
const tags = async (account: string, id: string) => (await admin.account(account).getState()).resources.find((r) => r.id === id)?.tags ?? {};
const callsNaming = async (account: string, action: string, id: string) =>
  (await admin.account(account).getCalls({ action })).calls.filter((c) => JSON.stringify(c.params).includes(`"${id}"`));

beforeAll(async () => {
  const estate = (account: string) => ({ resources: ids(account).map((id) => ({ id, region: REGION, tags: { owner: 'net', 'tmp-ev': '1' }, status: 'Activated' })) });
  emu = await startEmulator({ accounts: [{ id: PROD, roleName: 'tagwarden', fixture: estate(PROD) }, { id: DEV, roleName: 'tagwarden', fixture: estate(DEV) }], quotas: UNLIMITED_QUOTAS });
  admin = createEmulatorAdmin(emu.url);
  prefix = uniquePrefix('events-acct');
  dir = mkdtempSync(join(tmpdir(), 'tw-events-accounts-'));
  writeFileSync(join(dir, 'accounts.yaml'), `apiVersion: tagwarden/v1\nkind: AccountList\naccounts:\n${entry(PROD, 'prod')}${entry(DEV, 'dev')}`);
  // No scan during the test (a yearly cron): a removal can only come from an event.
  policiesDir = writePolicies([policyDoc('no-tmp-ev', { regions: [REGION], schedule: { cron: '0 0 1 1 *' }, remove: { keys: ['tmp-ev'] }, limits: { maxRemovalsPerRun: 1_000 } })]);
  const config = testConfig({
    emulatorUrl: emu.url, prefix, policiesDir, regions: [REGION],
    overrides: { accountsFile: join(dir, 'accounts.yaml'), stsEndpoint: emu.url, quotas: UNLIMITED_QUOTAS, eventsToken: EB_TOKEN, eventsWindowMs: 200 },
  });
  daemon = await startDaemon(config, { logger, credentials: EMULATOR_KEYS });
  await eventually(async () => ((await daemon.readiness()).ready ? true : undefined), 60_000, 200);
}, 90_000);

afterAll(async () => {
  await daemon?.close({ force: true });
  await emu?.close();
  await cleanupPrefix(prefix);
  rmSync(dir, { recursive: true, force: true });
  rmSync(policiesDir, { recursive: true, force: true });
});

describe('POST /v1/events over many accounts', () => {
  it("routes each event to its account's governor, which removes with that account's role; other accounts are ignored", async () => {
    const [prodA, prodB] = ids(PROD);
    const [devA, devB] = ids(DEV);
    const prodEvent = tagEvent(PROD, prodA!);
    const answer = await post([prodEvent, tagEvent(DEV, devA!), tagEvent(NOBODY, 'pcc-elsewhere')]);
    expect(answer).toEqual({ status: 200, body: { received: 3, accepted: 2, ignored: 1, duplicates: 0 } });
    await eventually(async () => ((await tags(PROD, prodA!))['tmp-ev'] === undefined && (await tags(DEV, devA!))['tmp-ev'] === undefined ? true : undefined), 30_000, 100);
    // Only the connections named by events: their neighbours keep the tag (no scan ran).
    expect((await tags(PROD, prodB!))['tmp-ev']).toBe('1');
    expect((await tags(DEV, devB!))['tmp-ev']).toBe('1');
    expect(await tags(PROD, prodA!)).toEqual({ owner: 'net' });
    // Each account read and removed its own connection, once, and nothing of the other's.
    for (const [account, id, other] of [[PROD, prodA!, devA!], [DEV, devA!, prodA!]] as const) {
      expect(await callsNaming(account, 'ListTagResources', id), `${account} reads`).toHaveLength(1);
      expect(await callsNaming(account, 'UnTagResources', id), `${account} removals`).toHaveLength(1);
      expect(await callsNaming(account, 'ListTagResources', other), `${account} read another account's connection`).toHaveLength(0);
    }
    // A redelivery is a duplicate, deduplicated in its account's state.
    expect(await post([prodEvent])).toEqual({ status: 200, body: { received: 1, accepted: 0, ignored: 0, duplicates: 1 } });
    // A malformed event refuses the whole delivery, whatever accounts the others belong to.
    const bad = await post([tagEvent(PROD, prodB!), { ...tagEvent(DEV, devB!), id: '' }]);
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('events[1].id');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect((await tags(PROD, prodB!))['tmp-ev']).toBe('1');
  }, 60_000);
});
