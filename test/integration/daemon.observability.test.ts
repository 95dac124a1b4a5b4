// A daemon run against the emulator: /metrics equals what the emulator recorded, secrets never leak, probes,
// the authenticated API, and policies reloaded without a restart.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkState, createEmulatorAdmin, startEmulator, type EmulatorAdmin, type RunningEmulator, expectedRemovals } from '../../src/emulator/index.js';
import { compilePolicies } from '../../src/policy/index.js';
import { readPolicySources } from '../../src/policy-files/index.js';
import { createRedis, untagQueueName } from '../../src/queue/index.js';
import {
  EMULATOR_KEYS,
  REPO_ROOT,
  cleanupPrefix,
  daemonPort,
  eventually,
  financeKeysPolicy,
  policyDoc,
  temporaryTagsPolicy,
  spawnTagwarden,
  tagwardenEnv,
  uniquePrefix,
  writePolicies,
  type TagwardenProcess,
} from '../support/harness.js';

const REGIONS = ['cn-hangzhou', 'cn-shanghai'];
const TOKEN = 'obs-test-api-token-5a4b3c2d1e0f';
const TEMP = temporaryTagsPolicy(REGIONS);
const FINANCE = financeKeysPolicy(REGIONS);

/** Parses Prometheus text into samples. */
function parseMetrics(text: string): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

function sum(samples: ReturnType<typeof parseMetrics>, name: string, match: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);
}

describe('daemon observability', () => {
  let emulator: RunningEmulator;
  let admin: EmulatorAdmin;
  let daemon: TagwardenProcess;
  let base: string;
  let dir: string;
  let prefix: string;
  let queues: Queue[];
  let redis: ReturnType<typeof createRedis>;
  let before: Awaited<ReturnType<EmulatorAdmin['getState']>>['resources'];

  beforeAll(async () => {
    emulator = await startEmulator({ generate: { count: 1_200, seed: 31, regions: REGIONS } });
    admin = createEmulatorAdmin(emulator.url);
    await admin.setFaults({ serviceUnavailable: 0.1, reset: 0.05, html502: 0.03, actions: ['UnTagResources'], seed: 9 });
    prefix = uniquePrefix('obs');
    redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    queues = REGIONS.map((r) => new Queue(untagQueueName('default', r), { connection: redis, prefix }));
    dir = writePolicies([TEMP, FINANCE]);
    before = (await admin.getState()).resources;
    daemon = spawnTagwarden(
      ['run'],
      tagwardenEnv({
        emulatorUrl: emulator.url,
        prefix,
        regions: REGIONS,
        extra: {
          TAGWARDEN_POLICIES_DIR: dir,
          TAGWARDEN_API_TOKEN: TOKEN,
          TAGWARDEN_RETRY_ATTEMPTS: '30',
          TAGWARDEN_RETRY_BASE_MS: '5',
          TAGWARDEN_RETRY_MAX_MS: '50',
          TAGWARDEN_POLICY_POLL_MS: '300',
        },
      }),
    );
    base = `http://127.0.0.1:${await daemonPort(daemon)}`;
  }, 60_000);

  afterAll(async () => {
    daemon.child.kill('SIGTERM');
    await daemon.exited;
    await Promise.all(queues.map((q) => q.close()));
    redis.disconnect();
    await emulator.close();
    await cleanupPrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('removes exactly the targeted tags, and /metrics counts what the emulator recorded', async () => {
    const now = new Date();
    const policies = compilePolicies((await readPolicySources([dir])).sources, now).policies;
    const removals = expectedRemovals(before, policies, now);
    await eventually(async () => (checkState(before, (await admin.getState()).resources, removals).ok ? true : undefined), 90_000, 250);
    await eventually(async () => {
      const counts = await Promise.all(queues.map((q) => q.getJobCounts('waiting', 'active', 'delayed')));
      return counts.every((c) => (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) === 0) ? true : undefined;
    });
    const samples = parseMetrics(await (await fetch(`${base}/metrics`)).text());
    const stats = await admin.getStats();
    const untag = stats.byAction.UnTagResources!;
    expect(sum(samples, 'tagwarden_tags_removed_total')).toBe(untag.tagsRemoved);
    expect(untag.tagsRemoved).toBe([...removals.values()].reduce((n, k) => n + k.size, 0));
    expect(sum(samples, 'tagwarden_untag_failures_total', { code: 'ServiceUnavailable' })).toBe(untag.codes.ServiceUnavailable ?? 0);
    expect(untag.codes.ServiceUnavailable ?? 0).toBeGreaterThan(0);
    // A reset is a dropped connection to us, and an HTML 502 a body we cannot parse.
    expect(sum(samples, 'tagwarden_untag_failures_total', { code: 'NetworkError' })).toBe(stats.faults.reset ?? 0);
    expect(sum(samples, 'tagwarden_untag_failures_total', { code: 'BadResponse' })).toBe(stats.faults.html502 ?? 0);
    expect(sum(samples, 'tagwarden_untag_failures_total')).toBe(untag.total - (untag.codes.OK ?? 0));
    expect(sum(samples, 'tagwarden_api_requests_total', { api: 'UnTagResources', code: 'OK' })).toBe(untag.codes.OK ?? 0);
    expect(sum(samples, 'tagwarden_batches_total', { outcome: 'succeeded' })).toBe(
      (await Promise.all(queues.map((q) => q.getCompletedCount()))).reduce((a, b) => a + b, 0),
    );
    expect(sum(samples, 'tagwarden_batches_total', { outcome: 'failed' })).toBe(0);
    expect(sum(samples, 'tagwarden_policies_loaded')).toBe(2);
    expect(sum(samples, 'tagwarden_policy_last_success_timestamp_seconds', { policy: 'strip-temporary' })).toBeGreaterThan(now.getTime() / 1000 - 120);
    // Every batch outcome is in the audit trail with its token and per-resource outcome.
    const audits = daemon.lines.filter((l) => l.includes('"audit":true')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audits.filter((a) => a.outcome === 'succeeded')).toHaveLength(sum(samples, 'tagwarden_batches_total', { outcome: 'succeeded' }));
    for (const a of audits) {
      expect(a.clientToken).toBe(a.batchId);
      expect(Object.keys(a.resources as object).sort()).toEqual([...(a.resourceIds as string[])].sort());
    }
  }, 120_000);

  it('exposes every metric the alert rules and the dashboard use', async () => {
    const names = new Set(parseMetrics(await (await fetch(`${base}/metrics`)).text()).map((s) => s.name));
    const used = new Set<string>();
    for (const file of ['deploy/prometheus/alerts.yml', 'deploy/grafana/tagwarden.json']) {
      for (const m of readFileSync(join(REPO_ROOT, file), 'utf8').matchAll(/\btagwarden_[a-z_]+/g)) used.add(m[0]);
    }
    expect(used.size).toBeGreaterThan(5);
    for (const name of used) expect(names.has(name) || names.has(`${name}_bucket`), name).toBe(true);
  });

  it('logs http listening once and shows the package version in its OpenAPI document', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const doc = (await (await fetch(`${base}/v1/openapi.json`)).json()) as { info: { version: string } };
    expect(doc.info.version).toBe(pkg.version);
    expect(daemon.lines.filter((l) => l.includes('"message":"http listening"'))).toHaveLength(1);
  });

  it('answers the probes, and the API only with the token', async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { checks: Record<string, { ok: boolean }> }).checks.credentials?.ok).toBe(true);
    const body = JSON.stringify({ region: 'cn-hangzhou', resourceIds: [before.find((r) => r.region === 'cn-hangzhou' && 'env' in r.tags)!.id], tagKeys: ['env'], reason: 'test' });
    const headers = { 'content-type': 'application/json' };
    expect((await fetch(`${base}/v1/untag`, { method: 'POST', headers, body })).status).toBe(401);
    expect((await fetch(`${base}/v1/untag`, { method: 'POST', headers: { ...headers, authorization: 'Bearer wrong-token-0000000000' }, body })).status).toBe(401);
    const accepted = await fetch(`${base}/v1/untag`, { method: 'POST', headers: { ...headers, authorization: `Bearer ${TOKEN}` }, body });
    expect(accepted.status).toBe(202);
    const { jobIds } = (await accepted.json()) as { jobIds: string[] };
    const job = await eventually(async () => {
      const res = await fetch(`${base}/v1/jobs/${jobIds[0]}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const view = (await res.json()) as { state: string; returnvalue: { removed: number } | null };
      return view.state === 'completed' ? view : undefined;
    });
    expect(job.returnvalue?.removed).toBe(1);
  }, 60_000);

  it('reloads policies without a restart and keeps the last good version of a broken file', async () => {
    const extra = policyDoc('drop-project', { regions: ['cn-hangzhou'], remove: { keys: ['project'] }, mode: 'dryRun', schedule: { every: '1h' } });
    writeFileSync(join(dir, 'extra.yaml'), stringify(extra));
    const names = async () =>
      ((await (await fetch(`${base}/v1/policies`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { policies: Array<{ name: string; errors?: string[] }> })
        .policies;
    await eventually(async () => ((await names()).some((p) => p.name === 'drop-project') ? true : undefined), 20_000);
    // Break the first policy file: its policy keeps running in its last good version, and the error is reported.
    writeFileSync(join(dir, 'policy-0.yaml'), 'apiVersion: tagwarden/v1\nkind: TagPolicy\nmetadata: { name: strip-temporary }\nspec: { regions: [mars-1] }\n');
    const views = await eventually(async () => {
      const list = await names();
      return list.some((p) => (p.errors ?? []).some((e) => e.includes('policy-0.yaml'))) ? list : undefined;
    }, 20_000);
    expect(views.map((p) => p.name)).toEqual(expect.arrayContaining(['strip-temporary', 'legacy-finance', 'drop-project']));
    const samples = parseMetrics(await (await fetch(`${base}/metrics`)).text());
    expect(sum(samples, 'tagwarden_policy_errors_total', { reason: 'validation' })).toBeGreaterThan(0);
    expect(sum(samples, 'tagwarden_policies_loaded')).toBe(3);
    expect(daemon.lines.some((l) => l.includes('last good version keeps running'))).toBe(true);
  }, 60_000);

  it('never writes a secret to its logs or metrics', async () => {
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const logs = daemon.lines.join('\n');
    expect(logs.length).toBeGreaterThan(1_000);
    for (const secret of [EMULATOR_KEYS.accessKeySecret, TOKEN]) {
      expect(logs.includes(secret), 'secret in logs').toBe(false);
      expect(metrics.includes(secret), 'secret in metrics').toBe(false);
    }
  });
});
