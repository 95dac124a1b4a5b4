// One POST /v1/untag may become at most 500 batches: 10,000 IDs x 1,000 keys (25,000 batches) is refused with a
// 400 that says how to split it, nothing is queued, and its idempotencyKey stays free; 500 batches still pass.
import { afterEach, describe, expect, it } from 'vitest';
import { TOKEN, call, startFixture, type Fixture } from './http.fixture.js';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `pcc-cap${String(i).padStart(6, '0')}`);
const keys = (n: number) => Array.from({ length: n }, (_, i) => `k${i}`);

describe('POST /v1/untag: at most 500 batches a request', () => {
  let fixture: Fixture | undefined;
  afterEach(async () => {
    await fixture?.close();
    fixture = undefined;
  });

  it('refuses 10,000 IDs x 1,000 keys with how to split, queues nothing, and keeps the idempotencyKey free', async () => {
    fixture = await startFixture({ token: TOKEN, maxBodyBytes: 1_048_576 });
    const res = await call(fixture, 'POST', '/v1/untag', {
      token: TOKEN,
      body: { region: 'cn-hangzhou', resourceIds: ids(10_000), tagKeys: keys(1_000), reason: 'flood', idempotencyKey: 'flood-1' },
    });
    expect(res.status).toBe(400);
    const problems = (res.body as { problems: string[] }).problems;
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/makes 25000 batches/);
    expect(problems[0]).toMatch(/at most 500 per request: split resourceIds into requests of at most 200 IDs \(50 requests\)/);
    const counts = await fixture.untagQueue('cn-hangzhou').getJobCounts('waiting', 'delayed', 'prioritized');
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0);

    const split = await call(fixture, 'POST', '/v1/untag', {
      token: TOKEN,
      body: { region: 'cn-hangzhou', resourceIds: ids(200), tagKeys: keys(1_000), reason: 'flood split', idempotencyKey: 'flood-1' },
    });
    expect(split.status).toBe(202);
    expect((split.body as { jobIds: string[] }).jobIds).toHaveLength(500);
  });

  it('10,000 IDs x 21 keys (1,000 batches): split into requests of at most 5,000 IDs', async () => {
    fixture = await startFixture({ token: TOKEN, maxBodyBytes: 1_048_576 });
    const res = await call(fixture, 'POST', '/v1/untag', { token: TOKEN, body: { region: 'cn-hangzhou', resourceIds: ids(10_000), tagKeys: keys(21), reason: 'r' } });
    expect(res.status).toBe(400);
    expect((res.body as { problems: string[] }).problems[0]).toMatch(/makes 1000 batches .*at most 5000 IDs \(2 requests\)/);
  });

  it('exactly 500 batches (10,000 IDs, one key; or all: true) are accepted', async () => {
    fixture = await startFixture({ token: TOKEN, maxBodyBytes: 1_048_576 });
    const one = await call(fixture, 'POST', '/v1/untag', { token: TOKEN, body: { region: 'cn-hangzhou', resourceIds: ids(10_000), tagKeys: ['k'], reason: 'r' } });
    expect(one.status).toBe(202);
    expect((one.body as { jobIds: string[] }).jobIds).toHaveLength(500);
    const all = await call(fixture, 'POST', '/v1/untag', { token: TOKEN, body: { region: 'cn-shanghai', resourceIds: ids(10_000), all: true, reason: 'r' } });
    expect(all.status).toBe(202);
    expect((all.body as { jobIds: string[] }).jobIds).toHaveLength(500);
  });
});
