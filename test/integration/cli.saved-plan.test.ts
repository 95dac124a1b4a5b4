// `tagwarden plan --out FILE` then `tagwarden run --once --plan FILE`, run as a user runs them (the built CLI,
// the emulator over HTTP, the shared Redis): what runs is exactly what was reviewed (the ClientTokens the
// emulator received are the file's batch ids, the end state is exact, a connection that started violating after
// the review is left alone), a file that is stale, for another estate, modified or truncated is refused with
// exit 4 and the reason, and beside a daemon on the same prefix the apply does only its own work.
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type EmulatorAdmin, type RunningEmulator } from '../../src/emulator/index.js';
import type { CallRecord, EmulatorResource } from '../../src/emulator/index.js';
import { batchId } from '../../src/planner/index.js';
import { sh } from '../support/cli.js';
import { cleanupPrefix, eventually, policyDoc, spawnTagwarden, tagwardenEnv, uniquePrefix, UNLIMITED_QUOTAS, writePolicies, type TagwardenProcess } from '../support/harness.js';

const REGION = 'cn-hangzhou';
const DAEMON_KEY = { accessKeyId: 'tagwarden-daemon', accessKeySecret: 'tagwarden-daemon-secret' };
const TEST_KEY = { accessKeyId: 'tagwarden-test', accessKeySecret: 'tagwarden-test-secret' };
const id = (n: number) => `pcc-sp${String(n).padStart(16, '0')}`;
const TARGETED = (k: string) => k === 'FinanceDept' || k.startsWith('tmp-');

interface SavedBatch {
  id: string;
  policy: string;
  region: string;
  runId: string;
  resourceIds: string[];
  tagKeys: string[];
  all: boolean;
  carried?: Record<string, string[]>;
}
interface SavedDoc {
  runId: string;
  digest: string;
  rows: Array<{ policy: string; batches: SavedBatch[] }>;
}

/** 260 connections: 1-200 carry FinanceDept, every fourth a tmp- key, all an owner and bk-0 to bk-4 (the daemon's backlog). */
function estate(): EmulatorResource[] {
  return Array.from({ length: 260 }, (_, i) => ({
    id: id(i + 1),
    region: REGION,
    tags: { owner: `team-${i % 3}`, ...Object.fromEntries([0, 1, 2, 3, 4].map((k) => [`bk-${k}`, 'b'])), ...(i < 200 ? { FinanceDept: `cc-${i + 1}` } : {}), ...(i % 4 === 0 ? { [`tmp-${i % 7}`]: 'x' } : {}) },
  }));
}

const POLICY = policyDoc('drop-finance', { regions: [REGION], remove: { keys: ['FinanceDept'], keyPatterns: ['tmp-*'] }, limits: { maxRemovalsPerRun: 100_000 } });

/** The digest `plan --out` writes: sha256 of the document without its `digest` field, as compact JSON. */
function redigest(doc: Record<string, unknown>): Record<string, unknown> {
  const { digest: _digest, ...rest } = doc;
  return { ...rest, digest: `sha256:${createHash('sha256').update(JSON.stringify(rest)).digest('hex')}` };
}

function untagParams(call: CallRecord): { ids: string[]; keys: string[]; all: boolean } {
  const p = call.params as { ResourceId: string[]; TagKey: string[]; All: boolean };
  return { ids: [...p.ResourceId].sort(), keys: [...p.TagKey].sort(), all: p.All };
}

describe('saved plans from the command line', () => {
  let emulator: RunningEmulator;
  let admin: EmulatorAdmin;
  let prefix: string;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let file: string;

  beforeEach(async () => {
    emulator = await startEmulator({ fixture: { resources: estate() }, credentials: [TEST_KEY, DAEMON_KEY], quotas: UNLIMITED_QUOTAS });
    admin = createEmulatorAdmin(emulator.url);
    prefix = uniquePrefix('cli-plan');
    dir = writePolicies([POLICY]);
    file = join(mkdtempSync(join(tmpdir(), 'tw-plan-')), 'plan.json');
    env = tagwardenEnv({ emulatorUrl: emulator.url, prefix, regions: [REGION], extra: { TAGWARDEN_POLICIES_DIR: dir, TAGWARDEN_LOG_LEVEL: 'warn' } });
  });
  afterEach(async () => {
    await emulator.close();
    await cleanupPrefix(prefix);
  });

  async function untagCalls(since: number, key = TEST_KEY.accessKeyId): Promise<CallRecord[]> {
    return (await admin.getCalls({ action: 'UnTagResources', since })).calls.filter((c) => c.accessKeyId === key);
  }
  async function lastSeq(): Promise<number> {
    return (await admin.getCalls()).calls.at(-1)?.seq ?? 0;
  }

  it('applies exactly the reviewed batches: the ClientTokens are the file\'s batch ids, the end state is exact', async () => {
    const planned = await sh(`tw plan --out ${file}`, env);
    expect(planned.code, planned.stderr).toBe(2);
    expect(planned.stderr).toMatch(/plan saved to .*plan\.json/);
    const saved = JSON.parse(readFileSync(file, 'utf8')) as SavedDoc;
    const batches = saved.rows.flatMap((r) => r.batches);
    expect(batches.length).toBeGreaterThanOrEqual(10);
    const before = (await admin.getState()).resources;
    // After the review the estate moves on: a connection starts violating. The saved plan must leave it alone.
    const late = id(9999);
    await admin.upsertResources([{ id: late, region: REGION, tags: { FinanceDept: 'late' } }]);
    const since = await lastSeq();

    const run = await sh(`tw run --once --plan ${file}`, env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`applied saved plan .*plan\\.json: ${batches.length} batches`));

    const calls = (await admin.getCalls({ since })).calls;
    // No new scan: not one read call, only the saved batches.
    expect(calls.filter((c) => c.action !== 'UnTagResources')).toEqual([]);
    const untags = calls.filter((c) => c.action === 'UnTagResources');
    expect(new Set(untags.map((c) => c.clientToken))).toEqual(new Set(batches.map((b) => b.id)));
    for (const c of untags) {
      const b = batches.find((x) => x.id === c.clientToken)!;
      expect(untagParams(c)).toEqual({ ids: [...b.resourceIds].sort(), keys: [...b.tagKeys].sort(), all: b.all });
      expect(c.code).toBe('OK');
    }
    // The end state, from the emulator's own records: every targeted tag gone, every other tag kept, the late
    // connection untouched.
    const after = new Map((await admin.getState()).resources.map((r) => [r.id, r.tags]));
    for (const r of before) {
      expect(after.get(r.id), r.id).toEqual(Object.fromEntries(Object.entries(r.tags).filter(([k]) => !TARGETED(k))));
    }
    expect(after.get(late)).toEqual({ FinanceDept: 'late' });
    const removed = before.reduce((n, r) => n + Object.keys(r.tags).filter(TARGETED).length, 0);
    const row = run.stdout.split('\n').find((l) => l.startsWith('drop-finance'));
    expect(row?.split(/\s+/)).toContain(String(removed));
  }, 120_000);

  it('refuses a stale, foreign, modified or truncated plan with exit 4 and the reason, and calls nothing', async () => {
    expect((await sh(`tw plan --out ${file}`, env)).code).toBe(2);
    const text = readFileSync(file, 'utf8');
    const doc = JSON.parse(text) as SavedDoc & Record<string, unknown>;
    const other = await startEmulator({ fixture: { resources: estate() }, credentials: [TEST_KEY] });
    const changedDir = mkdtempSync(join(tmpdir(), 'tw-policies-changed-'));
    cpSync(dir, changedDir, { recursive: true });
    writeFileSync(join(changedDir, 'policy-0.yaml'), readFileSync(join(dir, 'policy-0.yaml'), 'utf8').replace('FinanceDept', 'FinanceDepartment'));
    const emptyDir = mkdtempSync(join(tmpdir(), 'tw-policies-none-'));
    const variant = (name: string, content: string) => {
      const path = join(mkdtempSync(join(tmpdir(), 'tw-plan-')), name);
      writeFileSync(path, content);
      return path;
    };
    const first = doc.rows[0]!.batches[0]!;
    const swapped = structuredClone(doc);
    swapped.rows[0]!.batches[0]!.resourceIds[0] = id(250);
    // Someone who knows the formats: a key the policy keeps is added and the batch id and the digest recomputed.
    const widened = structuredClone(doc);
    const w = widened.rows[0]!.batches[0]!;
    w.tagKeys = [...w.tagKeys, 'owner'].sort();
    w.id = batchId({ policy: w.policy, region: w.region, runId: w.runId }, w.resourceIds, w.tagKeys, w.all);
    const cases: Array<{ what: string; line: string; env?: NodeJS.ProcessEnv; reason: RegExp }> = [
      { what: 'too old', line: `tw run --once --plan ${file} --max-plan-age 0`, reason: /the plan is stale: made .* older than 0 min \(--max-plan-age\)/ },
      { what: 'policy changed', line: `tw run --once --plan ${file}`, env: { ...env, TAGWARDEN_POLICIES_DIR: changedDir }, reason: /the plan is stale: policy drop-finance changed since the plan/ },
      { what: 'policy gone', line: `tw run --once --plan ${file}`, env: { ...env, TAGWARDEN_POLICIES_DIR: emptyDir }, reason: /the plan is stale: policy drop-finance is no longer in/ },
      { what: 'another endpoint', line: `tw run --once --plan ${file}`, env: { ...env, TAGWARDEN_ENDPOINT: other.url }, reason: /the plan is for another estate: endpoint http:\/\/127\.0\.0\.1:\d+, account default; this run targets endpoint/ },
      { what: 'another account', line: `tw run --once --plan ${file}`, env: { ...env, TAGWARDEN_ACCOUNT_ID: 'acct-other' }, reason: /the plan is for another estate: .*this run targets .*account acct-other/ },
      { what: 'edited', line: `tw run --once --plan ${variant('swapped.json', JSON.stringify(swapped, null, 2))}`, reason: /was modified after `tagwarden plan --out` wrote it \(its digest does not match\)/ },
      {
        what: 'edited, digest recomputed',
        line: `tw run --once --plan ${variant('swapped-digest.json', JSON.stringify(redigest(swapped as never), null, 2))}`,
        reason: new RegExp(`batch ${first.id} does not match its contents`),
      },
      {
        what: 'widened, id and digest recomputed',
        line: `tw run --once --plan ${variant('widened.json', JSON.stringify(redigest(widened as never), null, 2))}`,
        reason: new RegExp(`batch ${w.id} names tag key "owner", which policy drop-finance does not remove`),
      },
      { what: 'truncated', line: `tw run --once --plan ${variant('truncated.json', text.slice(0, Math.floor(text.length / 2)))}`, reason: /is not a saved plan: it is truncated or not JSON/ },
      { what: 'not a plan', line: `tw run --once --plan ${variant('other.json', '{"rows":[]}')}`, reason: /is not a saved plan \(write one with `tagwarden plan --out/ },
      { what: 'missing', line: `tw run --once --plan ${file}.missing`, reason: /cannot read the saved plan .*ENOENT/ },
    ];
    try {
      const before = await admin.getState();
      for (const c of cases) {
        const since = await lastSeq();
        const r = await sh(c.line, c.env ?? env);
        expect(r.code, `${c.what}: ${r.stderr}`).toBe(4);
        expect(r.stderr, c.what).toMatch(c.reason);
        expect(r.stderr, c.what).toMatch(/nothing was applied/);
        expect(r.stdout, c.what).toBe('');
        expect(await untagCalls(since), c.what).toEqual([]);
      }
      expect((await admin.getCalls({ action: 'UnTagResources' })).calls).toEqual([]);
      expect(await admin.getState()).toEqual(before);
      // The file itself was fine all along: applied as is, it runs.
      const ok = await sh(`tw run --once --plan ${file}`, env);
      expect(ok.code, ok.stderr).toBe(0);
    } finally {
      await other.close();
    }
  }, 180_000);

  it('beside a busy daemon on the same prefix, the apply does only its own batches and the daemon none of them', async () => {
    expect((await sh(`tw plan --out ${file}`, env)).code).toBe(2);
    const planIds = new Set((JSON.parse(readFileSync(file, 'utf8')) as SavedDoc).rows.flatMap((r) => r.batches.map((b) => b.id)));
    // The daemon's own backlog on the shared queue: 5 x 13 batches, each call slowed, one call at a time (~26 s).
    await admin.setFaults({ latencyMs: 400, actions: ['UnTagResources'] });
    const ids = Array.from({ length: 260 }, (_, i) => id(i + 1)).join(',');
    for (let k = 0; k < 5; k++) {
      const q = await sh(`tw enqueue --region ${REGION} --resource-id ${ids} --tag-key bk-${k} --reason backlog`, env);
      expect(q.code, q.stderr).toBe(0);
    }
    const daemonEnv = {
      ...env,
      TAGWARDEN_POLICIES_DIR: writePolicies([policyDoc('daemon-only', { regions: [REGION], remove: { keys: ['never-carried'] } })]),
      ALIBABA_CLOUD_ACCESS_KEY_ID: DAEMON_KEY.accessKeyId,
      ALIBABA_CLOUD_ACCESS_KEY_SECRET: DAEMON_KEY.accessKeySecret,
      TAGWARDEN_CONCURRENCY: '1',
      TAGWARDEN_DRAIN_TIMEOUT_MS: '2000',
      TAGWARDEN_LOG_LEVEL: 'info',
    };
    let daemon: TagwardenProcess | undefined;
    try {
      daemon = spawnTagwarden(['run'], daemonEnv);
      await eventually(async () => ((await untagCalls(0, DAEMON_KEY.accessKeyId)).length > 0 ? true : undefined), 60_000).catch((e: unknown) => {
        throw new Error(`the daemon made no call: ${String(e)}\n${daemon?.lines.slice(-30).join('\n')}`);
      });
      const run = await sh(`tw run --once --plan ${file}`, env);
      expect(run.code, run.stderr).toBe(0);
      const mine = await untagCalls(0);
      expect(new Set(mine.map((c) => c.clientToken))).toEqual(planIds);
      // The daemon was still working its backlog while the plan ran, and never took one of the plan's batches.
      const pendingAfter = await sh('tw jobs list --state waiting --limit 1000 --json', env);
      expect((JSON.parse(pendingAfter.stdout) as unknown[]).length).toBeGreaterThan(0);
      const theirs = await untagCalls(0, DAEMON_KEY.accessKeyId);
      expect(theirs.filter((c) => planIds.has(c.clientToken ?? ''))).toEqual([]);
    } finally {
      daemon?.child.kill('SIGTERM');
      await daemon?.exited;
    }
  }, 180_000);
});
