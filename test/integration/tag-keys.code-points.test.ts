// Tag key length is measured in Unicode code points everywhere, as the API counts: a key of "tmp-" + 100 emoji
// (104 code points, 204 UTF-16 units) validates in a policy, is planned, passes the job schema, is sent and
// removed by the emulator; POST /v1/untag accepts it. A key that truly cannot be sent (129 code points) is
// skipped per key with a plan finding, a log line and tagwarden_tag_keys_skipped_total, while the other keys of
// the same connections are removed, and the policy's later scans still run.
import { afterEach, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type EmulatorResource, type RunningEmulator } from '../../src/emulator/index.js';
import { cleanupPrefix, daemonPort, eventually, policyDoc, spawnTagwarden, tagwardenEnv, uniquePrefix, writePolicies, type TagwardenProcess } from '../support/harness.js';

const REGION = 'cn-hangzhou';
const TOKEN = 'codepoints-api-token-1f2e3d4c5b6a';
const EMOJI_KEY = 'tmp-' + '😀'.repeat(100);
const EXACT_EMOJI_KEY = 'cost-' + '🧪'.repeat(123); // 128 code points, 251 UTF-16 units: listed in remove.keys
const TOO_LONG_KEY = 'tmp-' + 'x'.repeat(125); // 129 code points: no call can name it

function sum(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

describe('tag keys measured in code points', () => {
  let emulator: RunningEmulator | undefined;
  const procs: TagwardenProcess[] = [];
  const prefix = uniquePrefix('codepoints');
  afterEach(async () => {
    for (const p of procs.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await emulator?.close();
    await cleanupPrefix(prefix);
  });

  it('removes a 104-code-point emoji key end to end and skips only an unsendable one', async () => {
    expect([EMOJI_KEY.length, [...EMOJI_KEY].length, [...EXACT_EMOJI_KEY].length, [...TOO_LONG_KEY].length]).toEqual([204, 104, 128, 129]);
    const resources: EmulatorResource[] = Array.from({ length: 3 }, (_, i) => ({
      id: `pcc-emoji${String(i).padStart(12, '0')}`,
      region: REGION,
      name: `conn-${i}`,
      tags: { [EMOJI_KEY]: 'v', [EXACT_EMOJI_KEY]: 'w', [TOO_LONG_KEY]: 'v', 'tmp-a': '1', owner: 'team' },
    }));
    emulator = await startEmulator({ fixture: { resources } });
    const admin = createEmulatorAdmin(emulator.url);
    const dir = writePolicies([policyDoc('strip-emoji', { regions: [REGION], schedule: { every: '1h' }, remove: { keys: [EXACT_EMOJI_KEY], keyPatterns: ['tmp-*'] } })]);
    const env = tagwardenEnv({ emulatorUrl: emulator.url, prefix, regions: [REGION], extra: { TAGWARDEN_POLICIES_DIR: dir, TAGWARDEN_API_TOKEN: TOKEN } });

    const validate = spawnTagwarden(['validate', dir], env);
    procs.push(validate);
    expect((await validate.exited).code).toBe(0);

    const plan = spawnTagwarden(['plan', '--json', '--verbose'], env);
    procs.push(plan);
    expect((await plan.exited).code).toBe(2);
    // stdout holds the JSON document; the findings also go to stderr as text lines.
    const report = JSON.parse(plan.lines.slice(plan.lines.indexOf('{'), plan.lines.lastIndexOf('}') + 1).join('\n')) as { findings: Array<{ severity: string; message: string }>; rows: Array<{ tagsToRemove: number; resources: Array<{ keys: string[] }> }> };
    expect(report.rows[0]!.tagsToRemove).toBe(9);
    expect(report.rows[0]!.resources.every((r) => r.keys.includes(EMOJI_KEY) && r.keys.includes(EXACT_EMOJI_KEY) && !r.keys.includes(TOO_LONG_KEY))).toBe(true);
    expect(report.findings).toHaveLength(1);
    expect(report.findings[0]).toMatchObject({ severity: 'warning' });
    expect(report.findings[0]!.message).toContain('is 129 characters long');
    expect(report.findings[0]!.message).toContain('skipped on 3 connection(s)');
    expect(plan.lines.some((l) => l.includes(': warning: ') && l.includes('is 129 characters long'))).toBe(true);

    const daemon = spawnTagwarden(['run'], env);
    procs.push(daemon);
    const port = await daemonPort(daemon);
    const base = `http://127.0.0.1:${port}`;
    const tagsOf = async () => (await admin.getState()).resources.map((r) => Object.keys(r.tags).sort());
    await eventually(async () => ((await tagsOf()).every((keys) => keys.join() === [TOO_LONG_KEY, 'owner'].sort().join()) ? true : undefined), 60_000, 250);
    const calls = (await admin.getCalls({ action: 'UnTagResources' })).calls;
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.every((c) => c.code === 'OK')).toBe(true);
    expect(JSON.stringify(calls.map((c) => c.params))).not.toContain(TOO_LONG_KEY);
    const skippedLines = () => daemon.lines.filter((l) => l.includes('"message":"tag key cannot be sent; skipped"'));
    expect(skippedLines()).toHaveLength(1);
    expect(skippedLines()[0]).toContain(TOO_LONG_KEY);
    const metrics = async () => (await fetch(`${base}/metrics`)).text();
    await eventually(async () => (sum(await metrics(), 'tagwarden_batches_total', { policy: 'strip-emoji', outcome: 'succeeded' }) > 0 ? true : undefined));
    let text = await metrics();
    expect(sum(text, 'tagwarden_tag_keys_skipped_total', { policy: 'strip-emoji', region: REGION })).toBe(3);
    expect(sum(text, 'tagwarden_batches_total', { policy: 'strip-emoji', outcome: 'failed' })).toBe(0);

    // The policy is not blocked: a later scan removes a new temporary key, skipping the long one again.
    await admin.upsertResources([{ ...resources[0]!, tags: { [TOO_LONG_KEY]: 'v', owner: 'team', 'tmp-b': '2', [EMOJI_KEY]: 'again' } }]);
    const scan = await fetch(`${base}/v1/policies/strip-emoji/scan`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(scan.status).toBeLessThan(300);
    await eventually(async () => ((await tagsOf()).every((keys) => keys.join() === [TOO_LONG_KEY, 'owner'].sort().join()) ? true : undefined), 60_000, 250);
    await eventually(async () => (sum(await metrics(), 'tagwarden_tag_keys_skipped_total', { policy: 'strip-emoji' }) === 6 ? true : undefined));

    // Another system may name the emoji key (204 UTF-16 units) through the API; a 129-code-point key is a 400.
    await admin.upsertResources([{ ...resources[1]!, tags: { [EMOJI_KEY]: 'api' } }]);
    const post = (tagKeys: string[]) =>
      fetch(`${base}/v1/untag`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({ region: REGION, resourceIds: [resources[1]!.id], tagKeys, reason: 'code points' }),
      });
    expect((await post([TOO_LONG_KEY])).status).toBe(400);
    const accepted = await post([EMOJI_KEY]);
    expect(accepted.status).toBe(202);
    await eventually(async () => ((await admin.getState({ ids: [resources[1]!.id] })).resources[0]!.tags[EMOJI_KEY] === undefined ? true : undefined), 30_000, 250);
    text = await metrics();
    expect(sum(text, 'tagwarden_batches_total', { outcome: 'failed' })).toBe(0);
    daemon.child.kill('SIGTERM');
    expect((await daemon.exited).code).toBe(0);
  }, 150_000);
});
