// POST /v1/untag over real HTTP into real BullMQ queues: validation, splitting, idempotency and body limits.
import { afterEach, describe, expect, it } from 'vitest';
import { UntagJobSchema } from '../../src/queue/index.js';
import { TOKEN, call, startFixture, type Fixture } from './http.fixture.js';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `pcc-test${String(i).padStart(3, '0')}`);
const keys = (n: number) => Array.from({ length: n }, (_, i) => `team-key-${i}`);

describe('POST /v1/untag', () => {
  let fixture: Fixture | undefined;
  afterEach(async () => {
    await fixture?.close();
    fixture = undefined;
  });

  it('queues valid jobs in the untag queue of the region', async () => {
    fixture = await startFixture({ token: TOKEN });
    const res = await call(fixture, 'POST', '/v1/untag', {
      token: TOKEN,
      body: { region: 'cn-beijing', resourceIds: ['pcc-aaa', 'pcc-bbb'], tagKeys: ['owner', 'temp'], reason: 'cleanup ticket 42' },
    });
    expect(res.status).toBe(202);
    const body = res.body as { jobIds: string[]; created: boolean };
    expect(body.created).toBe(true);
    expect(body.jobIds).toHaveLength(1);
    const job = await fixture.untagQueue('cn-beijing').getJob(body.jobIds[0]!);
    expect(job).toBeDefined();
    const data = UntagJobSchema.parse(job!.data);
    expect(data).toMatchObject({ region: 'cn-beijing', resourceIds: ['pcc-aaa', 'pcc-bbb'], tagKeys: ['owner', 'temp'], all: false, source: 'api', dryRun: false, reason: 'cleanup ticket 42' });
    expect(data.batchId).toBe(body.jobIds[0]);
    expect(await fixture.untagQueue('cn-hangzhou').getJob(body.jobIds[0]!)).toBeUndefined();
  });

  it('splits 45 IDs x 25 keys into 3 x 2 = 6 jobs covering every pair once', async () => {
    fixture = await startFixture({ token: TOKEN });
    const resourceIds = ids(45);
    const tagKeys = keys(25);
    const res = await call(fixture, 'POST', '/v1/untag', { token: TOKEN, body: { region: 'cn-hangzhou', resourceIds, tagKeys, reason: 'bulk' } });
    expect(res.status).toBe(202);
    const { jobIds } = res.body as { jobIds: string[] };
    expect(jobIds).toHaveLength(6);
    const pairs = new Set<string>();
    for (const id of jobIds) {
      const job = await fixture.untagQueue('cn-hangzhou').getJob(id);
      const data = UntagJobSchema.parse(job?.data);
      expect(data.resourceIds.length).toBeLessThanOrEqual(20);
      expect(data.tagKeys.length).toBeLessThanOrEqual(20);
      for (const r of data.resourceIds) for (const k of data.tagKeys) pairs.add(`${r}|${k}`);
    }
    expect(pairs.size).toBe(45 * 25);
    expect(await fixture.untagQueue('cn-hangzhou').getJobCountByTypes('waiting')).toBe(6);
  });

  it('queues one set of jobs for a repeated idempotencyKey and refuses the key for another request', async () => {
    fixture = await startFixture({ token: TOKEN });
    const request = { region: 'cn-hangzhou', resourceIds: ids(25), all: true, reason: 'decommission', idempotencyKey: 'change-2024-001' };
    const first = await call(fixture, 'POST', '/v1/untag', { token: TOKEN, body: request });
    const second = await call(fixture, 'POST', '/v1/untag', { token: TOKEN, body: request });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(first.body).toMatchObject({ created: true });
    expect(second.body).toMatchObject({ created: false, jobIds: (first.body as { jobIds: string[] }).jobIds });
    expect(await fixture.untagQueue('cn-hangzhou').getJobCountByTypes('waiting')).toBe(2);

    const conflict = await call(fixture, 'POST', '/v1/untag', { token: TOKEN, body: { ...request, resourceIds: ids(3) } });
    expect(conflict.status).toBe(409);
    expect(conflict.body).toMatchObject({ error: 'conflict' });
    expect(await fixture.untagQueue('cn-hangzhou').getJobCountByTypes('waiting')).toBe(2);
  });

  it('answers 400 naming each bad field, and queues nothing', async () => {
    fixture = await startFixture({ token: TOKEN });
    const res = await call(fixture, 'POST', '/v1/untag', {
      token: TOKEN,
      body: { region: 'mars-1', resourceIds: ['pcc-ok', 'pcc-ok2', 'pcc-ok3', 'bad id!'], tagKeys: ['acs:system'], reason: '', extra: 1 },
    });
    expect(res.status).toBe(400);
    const body = res.body as { error: string; problems: string[] };
    expect(body.error).toBe('invalid_request');
    const joined = body.problems.join('\n');
    expect(joined).toMatch(/^region: /m);
    expect(joined).toMatch(/^resourceIds\[3\]: /m);
    expect(joined).toMatch(/^tagKeys\[0\]: .*acs:/m);
    expect(joined).toMatch(/^reason: /m);
    expect(joined).toMatch(/extra/);
    for (const queue of fixture.queues) expect(await queue.getJobCountByTypes('waiting')).toBe(0);
  });

  it('answers 400 for malformed JSON and a missing body, 415 for another content type', async () => {
    fixture = await startFixture({ token: TOKEN });
    const malformed = await call(fixture, 'POST', '/v1/untag', { token: TOKEN, rawBody: '{"region": "cn-hangzhou",' });
    expect(malformed.status).toBe(400);
    expect(malformed.body).toEqual({ error: 'invalid_request', problems: ['(body): not valid JSON'] });
    expect(malformed.text).not.toMatch(/at .*\.js|SyntaxError/);

    const empty = await call(fixture, 'POST', '/v1/untag', { token: TOKEN });
    expect(empty.status).toBe(400);

    const form = await call(fixture, 'POST', '/v1/untag', { token: TOKEN, rawBody: 'region=cn-hangzhou', contentType: 'application/x-www-form-urlencoded' });
    expect(form.status).toBe(415);
    expect(form.body).toMatchObject({ error: 'unsupported_media_type' });
  });

  it('answers 413 for a body over maxBodyBytes', async () => {
    fixture = await startFixture({ token: TOKEN, maxBodyBytes: 2048 });
    const body = { region: 'cn-hangzhou', resourceIds: ids(200), all: true, reason: 'big' };
    expect(JSON.stringify(body).length).toBeGreaterThan(2048);
    const res = await call(fixture, 'POST', '/v1/untag', { token: TOKEN, body });
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ error: 'payload_too_large' });
    const small = await call(fixture, 'POST', '/v1/untag', { token: TOKEN, body: { ...body, resourceIds: ids(20) } });
    expect(small.status).toBe(202);
  });
});
