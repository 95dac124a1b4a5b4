// Control and bidi characters (ESC, BEL, CSI, DEL, C1, U+202E) in tag keys, values, reasons, file names and
// Redis contents reach no terminal raw: validate, plan, run --once, enqueue, jobs list/show and the logs
// spell each one out as \uXXXX (escapeControl), while --json output stays JSON that parses to the same data.
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { createRedis, untagQueueName } from '../../src/queue/index.js';
import { REDIS_URL, cleanupPrefix, eventually, policyDoc, spawnTagwarden, tagwardenEnv, uniquePrefix } from '../support/harness.js';

const REGION = 'cn-hangzhou';
const ESC_KEY = 'tmp-\u001b[31mred\u0007';
const BIDI_KEY = 'tmp-\u202egnp.exe';
const C1_KEY = 'tmp-\u009b2J\u007f';
const ESC_VALUE = '\u001b]0;pwned\u0007\u001b[2J';
/** Any character a terminal would act on, except the line breaks of the output itself. */
// eslint-disable-next-line no-control-regex
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

async function cli(args: string[], env: NodeJS.ProcessEnv) {
  const proc = spawnTagwarden(args, env);
  const { code } = await proc.exited;
  return { code, out: proc.lines.join('\n') };
}

describe('control characters in every human-readable output', () => {
  let emulator: RunningEmulator | undefined;
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
    await emulator?.close();
  });

  it('validate, plan, run --once and their logs spell them out', async () => {
    emulator = await startEmulator({
      fixture: {
        resources: Array.from({ length: 3 }, (_, i) => ({
          id: `pcc-ctrl${String(i).padStart(13, '0')}`,
          region: REGION,
          name: `conn-${i}`,
          tags: { [ESC_KEY]: ESC_VALUE, [BIDI_KEY]: 'v\u202e', [C1_KEY]: 'x', owner: ESC_VALUE },
        })),
      },
    });
    const prefix = uniquePrefix('cli-ctrl');
    cleanups.push(() => cleanupPrefix(prefix));
    const dir = mkdtempSync(join(tmpdir(), 'tw-ctrl-policies-'));
    writeFileSync(join(dir, 'strip.yaml'), stringify(policyDoc('strip-ctrl', { regions: [REGION], remove: { keyPatterns: ['tmp-*'] }, schedule: { every: '1h' } })));
    // A broken file whose name, keys and values carry control characters: each finding echoes some of them.
    writeFileSync(
      join(dir, 'bad\u001b[2J\u202e.yaml'),
      stringify(policyDoc('bad-ctrl', { regions: [REGION], remove: { keys: ['acs:\u001b[2J', `aliyun${ESC_KEY}`], where: { owner: `/(${ESC_VALUE}/` } }, mode: `enforce\u0007` })),
    );
    const env = tagwardenEnv({ emulatorUrl: emulator.url, prefix, regions: [REGION], extra: { TAGWARDEN_POLICIES_DIR: dir } });

    const validate = await cli(['validate', dir], env);
    expect(validate.code).toBe(1);
    expect(validate.out).toContain('\\u001b');
    expect(validate.out).toMatch(/bad\\u001b\[2J\\u202e\.yaml/);
    expect(validate.out).not.toMatch(RAW);
    const validateJson = await cli(['validate', '--json', dir], env);
    expect(validateJson.out).not.toMatch(RAW);
    const report = JSON.parse(validateJson.out) as { findings: Array<{ file: string }> };
    expect(report.findings.some((f) => f.file.endsWith('bad\u001b[2J\u202e.yaml'))).toBe(true);

    const plan = await cli(['plan', '--verbose'], env);
    expect(plan.code).toBe(1); // the broken file is an error; the good policy is still planned
    expect(plan.out).toContain(JSON.stringify(ESC_KEY).replace('\u001b', '\\u001b').replace('\u0007', '\\u0007'));
    expect(plan.out).toContain('\\u202egnp.exe');
    expect(plan.out).toContain('\\u009b2J\\u007f');
    expect(plan.out).not.toMatch(RAW);
    const planJson = await cli(['plan', '--json', '--verbose'], env);
    expect(planJson.out).not.toMatch(RAW);
    const planned = JSON.parse(planJson.out.slice(planJson.out.indexOf('{'))) as { rows: Array<{ resources: Array<{ keys: string[]; values: Record<string, string> }> }> };
    expect(planned.rows[0]!.resources[0]!.keys.sort()).toEqual([BIDI_KEY, C1_KEY, ESC_KEY].sort());
    expect(planned.rows[0]!.resources[0]!.values[ESC_KEY]).toBe(ESC_VALUE);

    const once = await cli(['run', '--once'], env);
    expect(once.out).toMatch(/strip-ctrl/);
    expect(once.out).not.toMatch(RAW);
    const state = (await (await fetch(`${emulator.url}/_emulator/state`)).json()) as { resources: Array<{ tags: Record<string, string> }> };
    expect(state.resources.every((r) => Object.keys(r.tags).sort().join() === 'owner')).toBe(true);
  }, 120_000);

  it('enqueue, jobs list and jobs show spell them out, whatever Redis holds', async () => {
    emulator = await startEmulator({});
    const prefix = uniquePrefix('cli-ctrl-jobs');
    const redis = createRedis(REDIS_URL);
    const queue = new Queue(untagQueueName('default', REGION), { connection: redis, prefix });
    const workerRedis = createRedis(REDIS_URL);
    const workers: Array<{ close(): Promise<void> }> = [];
    cleanups.push(async () => {
      for (const w of workers) await w.close();
      workerRedis.disconnect();
      await queue.close();
      redis.disconnect();
      await cleanupPrefix(prefix);
    });
    const env = tagwardenEnv({ emulatorUrl: emulator.url, prefix, regions: [REGION] });
    const ids = ['pcc-ctrl0000000000001', 'pcc-ctrl0000000000002'];
    const preview = await cli(['enqueue', '--region', REGION, '--resource-id', ids.join(','), '--tag-key', ESC_KEY, '--tag-key', BIDI_KEY, '--reason', `why${ESC_VALUE}`, '--dry-run'], env);
    expect(preview.code).toBe(0);
    expect(preview.out).toContain('\\u001b');
    expect(preview.out).not.toMatch(RAW);
    const queued = await cli(['enqueue', '--region', REGION, '--resource-id', ids.join(','), '--tag-key', ESC_KEY, '--tag-key', BIDI_KEY, '--reason', `why${ESC_VALUE}`], env);
    expect(queued.code).toBe(0);
    expect(queued.out).not.toMatch(RAW);
    const jobId = queued.out.split('\n').find((l) => l.startsWith('tw-'))!;
    const show = await cli(['jobs', 'show', jobId], env);
    expect(show.code).toBe(0);
    expect(show.out).toContain('\\u202egnp.exe');
    expect(show.out).not.toMatch(RAW);

    // Something else put a failure reason full of escapes into Redis (a hostile or older producer/worker).
    const worker = new Worker(untagQueueName('default', REGION), async () => {
      throw new UnrecoverableError(`boom ${ESC_VALUE}\u009b31m\u202e done`);
    }, { connection: workerRedis, prefix, autorun: true });
    workers.push(worker);
    await eventually(async () => ((await queue.getFailedCount()) > 0 ? true : undefined));
    await worker.close();
    const failedId = (await queue.getFailed())[0]!.id!;
    const list = await cli(['jobs', 'list', '--state', 'failed'], env);
    expect(list.code).toBe(0);
    expect(list.out).toContain('boom \\u001b]0;pwned\\u0007');
    expect(list.out).not.toMatch(RAW);
    const showFailed = await cli(['jobs', 'show', failedId], env);
    expect(showFailed.out).toContain('\\u009b31m\\u202e done');
    expect(showFailed.out).not.toMatch(RAW);
    const listJson = await cli(['jobs', 'list', '--state', 'failed', '--json'], env);
    expect(listJson.out).not.toMatch(RAW);
    expect((JSON.parse(listJson.out) as Array<{ failedReason: string }>)[0]!.failedReason).toContain('\u202e done');
  }, 120_000);
});
