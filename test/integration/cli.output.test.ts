// The built CLI as a script runs it: results on stdout, logs and progress on stderr, one JSON document with
// --json, quiet on a closed pipe (`| head -1`) with the exit code it would have had, fast failure on a dead Redis
// and a dead endpoint, plan's diff and totals, and warnings for misspelt TAGWARDEN_* variables.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { untagQueueName } from '../../src/queue/index.js';
import { deadPort, sh } from '../support/cli.js';
import { cleanupPrefix, policyDoc, tagwardenEnv, uniquePrefix, writePolicies } from '../support/harness.js';

const REGION = 'cn-hangzhou';

const id = (n: number) => `pcc-out${String(n).padStart(15, '0')}`;

describe('cli output', () => {
  let emulator: RunningEmulator;
  let env: NodeJS.ProcessEnv;
  let prefix: string;
  let dir: string;

  beforeAll(async () => {
    // 1,500 connections (a plan larger than a pipe's buffer): 1-1200 carry FinanceDept (values cc-N), 1-10 a
    // tmp-debug with quotes in its value; every one carries owner; 5 is exempt; 6 carries tmp-keepme, which is kept.
    const resources = Array.from({ length: 1500 }, (_, i) => ({
      id: id(i + 1),
      region: REGION,
      tags: {
        owner: `team-${i % 3}`,
        ...(i < 1200 ? { FinanceDept: `cc-${i + 1}` } : {}),
        ...(i === 5 ? { 'tmp-keepme': 'x' } : {}),
        ...(i < 10 ? { 'tmp-debug': `"quoted" ${i}` } : {}),
      },
    }));
    emulator = await startEmulator({ fixture: { resources } });
    prefix = uniquePrefix('cli-out');
    dir = writePolicies([
      policyDoc('drop-finance', {
        regions: [REGION],
        remove: { keys: ['FinanceDept'], keyPatterns: ['tmp-*'] },
        keep: ['tmp-keepme'],
        exemptions: [{ resourceIds: [id(5)], until: '2099-12-31', reason: 'migration' }],
        limits: { maxRemovalsPerRun: 100_000 },
      }),
    ]);
    env = tagwardenEnv({ emulatorUrl: emulator.url, prefix, regions: [REGION], extra: { TAGWARDEN_POLICIES_DIR: dir } });
  });
  afterAll(async () => {
    await emulator.close();
    await cleanupPrefix(prefix);
  });

  it('plan prints a diff with values and a totals line on stdout, nothing on stderr', async () => {
    const r = await sh('tw plan', env);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('');
    // The oracle: the emulator's own state says which tags the policy targets.
    const state = (await (await fetch(`${emulator.url}/_emulator/state`)).json()) as { resources: Array<{ id: string; tags: Record<string, string> }> };
    const targeted = state.resources
      .filter((res) => res.id !== id(5))
      .flatMap((res) => Object.entries(res.tags).filter(([k]) => (k === 'FinanceDept' || k.startsWith('tmp-')) && k !== 'tmp-keepme'));
    const connections = new Set(state.resources.filter((res) => res.id !== id(5) && ('FinanceDept' in res.tags || 'tmp-debug' in res.tags)).map((res) => res.id));
    expect(r.stdout).toContain(`  ~ ${id(1)}\n      - FinanceDept = "cc-1"\n      - tmp-debug = "\\"quoted\\" 0"\n`);
    expect(r.stdout).not.toContain(`~ ${id(5)}`);
    const removedLines = r.stdout.split('\n').filter((l) => /^ {6}- /.test(l));
    expect(removedLines).toHaveLength(targeted.length);
    expect(r.stdout).toMatch(new RegExp(`\\nPlan: ${targeted.length.toLocaleString('en-US')} tags on ${connections.size.toLocaleString('en-US')} connections in \\d+ calls\\n$`));
    expect(r.stdout).toMatch(/tags to remove\s+UnTag calls\s+UnTag floor\s+naive UnTag calls/);
    expect(r.stdout).not.toContain('kept');
  });

  it('plan --verbose names kept and exempt keys', async () => {
    const r = await sh('tw plan --verbose', env);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(new RegExp(`~ ${id(6)}\\n(?:.*\\n)*? {8}tmp-keepme  kept`));
    expect(r.stdout).toMatch(new RegExp(`= ${id(5)}\\n {8}FinanceDept  exempt until 2100-01-01T00:00:00Z`));
  });

  it('plan --json prints exactly one JSON document with the totals', async () => {
    const r = await sh('tw plan --json --verbose', env);
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.stdout) as { totals: { tags: number; connections: number }; rows: Array<{ resources: Array<{ id: string; values: Record<string, string> }> }> };
    expect(doc.totals.tags).toBe(1199 + 9);
    expect(doc.rows[0]!.resources.find((x) => x.id === id(2))?.values).toEqual({ FinanceDept: 'cc-2', 'tmp-debug': '"quoted" 1' });
  });

  it('ends quietly on a closed pipe, with the exit code it would have had', async () => {
    for (const line of ['tw plan --verbose | head -3', 'tw plan --json --verbose | head -1', 'tw validate --json ' + dir + ' | head -1']) {
      const r = await sh(line, env);
      expect(r.stderr, line).not.toMatch(/EPIPE|Error|at /);
      expect(r.stdout.split('\n').length, line).toBeLessThanOrEqual(4);
      expect(r.code, line).toBe(line.includes('validate') ? 0 : 2);
    }
  });

  it('fails within seconds with the Redis address and no password when Redis cannot be reached', async () => {
    const dead = { ...env, REDIS_URL: 'redis://:s3cret-pw@127.0.0.1:1' };
    for (const line of ['tw jobs list', `tw enqueue --region ${REGION} --resource-id ${id(1)} --tag-key x`, 'tw run --once']) {
      const r = await sh(line, dead, 30_000);
      expect(r.code, line).toBe(1);
      expect(r.stderr, line).toMatch(/^tagwarden: cannot reach Redis at redis:\/\/127\.0\.0\.1:1 \(password hidden\): .*ECONNREFUSED/m);
      expect(r.stderr + r.stdout, line).not.toContain('s3cret-pw');
      expect(r.stderr.split('\n').length, line).toBeLessThan(5);
    }
  }, 120_000);

  it('shows retries on stderr and gives up after --retries on a dead endpoint; --fail-fast does not retry', async () => {
    const dead = { ...env, TAGWARDEN_ENDPOINT: `http://127.0.0.1:${await deadPort()}`, TAGWARDEN_RETRY_BASE_MS: '10' };
    const r = await sh('tw plan --retries 2', dead);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/retry 1\/2 in/);
    expect(r.stderr).toMatch(/retry 2\/2 in/);
    expect(r.stderr).not.toMatch(/retry 3\//);
    expect(r.stderr).toMatch(/ECONNREFUSED/);
    const fast = await sh('tw plan --fail-fast', dead);
    expect(fast.code).toBe(1);
    expect(fast.stderr).not.toMatch(/retry \d/);
    expect(fast.stderr).toMatch(/ECONNREFUSED/);
  });

  it('prints periodic progress on stderr when it is not a terminal', async () => {
    const r = await sh('tw plan --progress-interval 0', env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^progress \(\d+s\): plan: drop-finance cn-hangzhou: 1,500 scanned \(1\/1 policy regions done\)$/m);
    expect(r.stderr.includes('\r') || r.stderr.includes(String.fromCharCode(27))).toBe(false);
    expect(r.stdout).not.toMatch(/progress/);
  });

  it('warns about unknown TAGWARDEN_* variables with the nearest name, and still runs', async () => {
    const r = await sh(`tw plan --json`, { ...env, TAGWARDEN_CONCURENCY: '4', TAGWARDEN_WHATEVER_ELSE_ENTIRELY: '1' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/warning: TAGWARDEN_CONCURENCY is not a tagwarden setting and is ignored; did you mean TAGWARDEN_CONCURRENCY\?/);
    expect(r.stderr).toMatch(/warning: TAGWARDEN_WHATEVER_ELSE_ENTIRELY is not a tagwarden setting and is ignored\n/);
    expect(() => JSON.parse(r.stdout) as unknown).not.toThrow();
  });

  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const r = await sh('tw --version', env);
    expect(r.stdout.trim()).toBe(pkg.version);
  });
  it('run --once --json: one JSON document on stdout, logs on stderr, even at info level', async () => {
    const once = uniquePrefix('cli-once');
    const fresh = await startEmulator({ generate: { count: 200, seed: 7, regions: [REGION] } });
    const onceEnv = { ...env, TAGWARDEN_ENDPOINT: fresh.url, TAGWARDEN_QUEUE_PREFIX: once };
    try {
      const r = await sh('tw run --once --json', { ...onceEnv, TAGWARDEN_LOG_LEVEL: 'info' });
      expect(r.code, r.stderr.slice(-2000)).toBe(0);
      const doc = JSON.parse(r.stdout) as { summary: Array<{ policy: string; removed: number }> };
      expect(doc.summary[0]).toMatchObject({ policy: 'drop-finance' });
      expect(doc.summary[0]!.removed).toBeGreaterThan(10);
      const logLines = r.stderr.split('\n').filter((l) => l.startsWith('{'));
      expect(logLines.length).toBeGreaterThan(0);
      for (const l of logLines) expect(() => JSON.parse(l) as unknown).not.toThrow();
      // Piped into head: quiet, and the exit code of the run.
      const piped = await sh('tw run --once --json | head -1', onceEnv);
      expect(piped.stdout).toBe('{\n');
      expect(piped.stderr).not.toMatch(/EPIPE/);
      expect(piped.code).toBe(0);
    } finally {
      await fresh.close();
      await cleanupPrefix(once);
    }
  }, 120_000);

  it('enqueue honours TAGWARDEN_RETRY_ATTEMPTS, --dry-run queues nothing, jobs list filters and pipes, jobs show reads', async () => {
    const queued = uniquePrefix('cli-enq');
    const qEnv = { ...env, TAGWARDEN_QUEUE_PREFIX: queued, TAGWARDEN_RETRY_ATTEMPTS: '2' };
    const ids = Array.from({ length: 400 }, (_, i) => id(i + 1)).join(',');
    try {
      const preview = await sh(`tw enqueue --dry-run --region ${REGION} --resource-id ${ids} --tag-key FinanceDept --json`, qEnv);
      expect(preview.code, preview.stderr).toBe(0);
      expect(JSON.parse(preview.stdout)).toMatchObject({ preview: true, queued: 0, attempts: 2 });
      const none = await sh('tw jobs list --state waiting --json', qEnv);
      expect(JSON.parse(none.stdout)).toEqual([]);
      const real = await sh(`tw enqueue --region ${REGION} --resource-id ${ids} --tag-key FinanceDept`, qEnv);
      expect(real.code, real.stderr).toBe(0);
      const all = JSON.parse((await sh('tw jobs list --state waiting --limit 1000 --json', qEnv)).stdout) as Array<{ id: string; attempts: number }>;
      expect(all).toHaveLength(20);
      for (const j of all) expect(j.attempts).toBe(2);
      expect(JSON.parse((await sh('tw jobs list --state waiting --policy api --region cn-shanghai --json', qEnv)).stdout)).toEqual([]);
      expect(JSON.parse((await sh('tw jobs list --state waiting --policy api --region cn-hangzhou --limit 5 --json', qEnv)).stdout)).toHaveLength(5);
      const jobs = await sh('tw jobs list --state waiting --limit 1000 --json | head -1', qEnv);
      expect(jobs.stderr).toBe('');
      expect(jobs.stdout).toBe('[\n');
      expect(jobs.code).toBe(0);
      const table = await sh('tw jobs list --state waiting | head -1', qEnv);
      expect(table.stdout).toMatch(/^id\s+policy\s+region\s+state\s+attempts\s+reason\n$/);
      expect(table.code).toBe(0);
      const show = await sh(`tw jobs show ${all[0]!.id}`, qEnv);
      expect(show.stdout).toMatch(new RegExp(`^job {7}${all[0]!.id}\nqueue {5}${untagQueueName('default', 'cn-hangzhou').replace(/[{}]/g, '\\$&')}\nstate {5}waiting   attempts 0/2\n`));
      expect(show.stdout).toMatch(/removes {3}"FinanceDept"/);
    } finally {
      await cleanupPrefix(queued);
    }
  }, 120_000);
});
