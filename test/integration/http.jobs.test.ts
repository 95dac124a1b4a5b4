// Job inspection over HTTP and through the inspector itself, with real BullMQ workers failing and completing jobs.
import { Worker, type Job } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { createJobInspector, createRedis } from '../../src/queue/index.js';
import { REDIS_URL, TOKEN, call, startFixture, type Fixture } from './http.fixture.js';

type View = { id: string; queue: string; state: string; attemptsMade: number; attempts: number; failedReason: string | null; data: { batchId: string }; returnvalue: unknown };

/** Runs a worker on the queue until `done` says a job reached the state we wait for, then closes it. */
async function runWorker(fixture: Fixture, queueName: string, processor: (job: Job) => Promise<unknown>, until: 'failed' | 'completed', jobId: string): Promise<void> {
  const connection = createRedis(REDIS_URL, { connectionName: 'tagwarden-http-test-worker' });
  const worker = new Worker(queueName, processor, { connection, prefix: fixture.prefix, settings: { backoffStrategy: () => 0 }, autorun: false });
  try {
    const reached = new Promise<void>((resolve, reject) => {
      worker.on('error', reject);
      worker.on(until, (job: Job | undefined) => {
        if (job?.id === jobId && (until === 'completed' || job.finishedOn !== undefined)) resolve();
      });
    });
    void worker.run();
    await reached;
  } finally {
    await worker.close();
    await connection.quit();
  }
}

describe('GET /v1/jobs', () => {
  let fixture: Fixture | undefined;
  afterEach(async () => {
    await fixture?.close();
    fixture = undefined;
  });

  const enqueue = async (f: Fixture, region: string, resourceIds: string[]) => {
    const res = await call(f, 'POST', '/v1/untag', { token: TOKEN, body: { region, resourceIds, tagKeys: ['temp'], reason: 'jobs test' } });
    expect(res.status).toBe(202);
    return (res.body as { jobIds: string[] }).jobIds[0]!;
  };

  it('shows state, attempts and failure reason, and retries a failed job once', async () => {
    fixture = await startFixture({ token: TOKEN });
    const id = await enqueue(fixture, 'cn-hangzhou', ['pcc-job1', 'pcc-job2']);

    const waiting = await call(fixture, 'GET', `/v1/jobs/${id}`, { token: TOKEN });
    expect(waiting.status).toBe(200);
    expect(waiting.body).toMatchObject({ id, queue: 'untag-{acct}-cn-hangzhou', name: 'untag', state: 'waiting', attemptsMade: 0, attempts: 3, failedReason: null, returnvalue: null });
    expect((waiting.body as View).data.batchId).toBe(id);

    await runWorker(fixture, 'untag-{acct}-cn-hangzhou', async () => {
      throw new Error('emulated failure');
    }, 'failed', id);

    const failed = await call(fixture, 'GET', `/v1/jobs/${id}`, { token: TOKEN });
    expect(failed.body).toMatchObject({ id, state: 'failed', attemptsMade: 3, failedReason: 'emulated failure' });
    expect((failed.body as { timestamps: { finished: string | null } }).timestamps.finished).toMatch(/^\d{4}-\d\d-\d\dT/);

    const listed = await call(fixture, 'GET', '/v1/jobs?state=failed', { token: TOKEN });
    expect(listed.status).toBe(200);
    expect((listed.body as { jobs: View[] }).jobs.map((j) => j.id)).toEqual([id]);

    const retried = await call(fixture, 'POST', `/v1/jobs/${id}/retry`, { token: TOKEN });
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ id, state: 'waiting' });
    expect(await fixture.untagQueue('cn-hangzhou').getJobCountByTypes('failed')).toBe(0);

    const again = await call(fixture, 'POST', `/v1/jobs/${id}/retry`, { token: TOKEN });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ error: 'conflict', details: { state: 'waiting' } });
  });

  it('shows the return value of a completed job', async () => {
    fixture = await startFixture({ token: TOKEN });
    const id = await enqueue(fixture, 'cn-beijing', ['pcc-done1']);
    const outcome = { resources: { 'pcc-done1': { outcome: 'removed', keys: ['temp'] } } };
    await runWorker(fixture, 'untag-{acct}-cn-beijing', async () => outcome, 'completed', id);
    const res = await call(fixture, 'GET', `/v1/jobs/${id}`, { token: TOKEN });
    expect(res.body).toMatchObject({ id, queue: 'untag-{acct}-cn-beijing', state: 'completed', attemptsMade: 1, returnvalue: outcome });
  });

  it('answers 404 for unknown jobs and 400 for a bad state or limit', async () => {
    fixture = await startFixture({ token: TOKEN });
    expect((await call(fixture, 'GET', '/v1/jobs/no-such-job', { token: TOKEN })).status).toBe(404);
    expect((await call(fixture, 'POST', '/v1/jobs/no-such-job/retry', { token: TOKEN })).status).toBe(404);
    const bad = await call(fixture, 'GET', '/v1/jobs?state=stuck&limit=0', { token: TOKEN });
    expect(bad.status).toBe(400);
    expect((bad.body as { problems: string[] }).problems).toEqual([
      'state: must be one of failed, completed, waiting, delayed, active',
      'limit: must be an integer from 1 to 1000',
    ]);
  });

  it('lists across queues, newest first, within the limit', async () => {
    fixture = await startFixture({ token: TOKEN });
    const first = await enqueue(fixture, 'cn-hangzhou', ['pcc-l1']);
    const second = await enqueue(fixture, 'cn-beijing', ['pcc-l2']);
    const third = await enqueue(fixture, 'cn-hangzhou', ['pcc-l3']);
    const inspector = createJobInspector({ queues: fixture.queues });
    const all = await inspector.list('waiting');
    expect(new Set(all.map((j) => j.id))).toEqual(new Set([first, second, third]));
    expect(all.every((j) => j.state === 'waiting')).toBe(true);
    const created = all.map((j) => Date.parse(j.timestamps.created));
    expect([...created].sort((a, b) => b - a)).toEqual(created);
    expect(await inspector.list('waiting', { limit: 2 })).toHaveLength(2);
    expect(await inspector.list('failed')).toEqual([]);
    expect((await inspector.find(second))?.queue).toBe('untag-{acct}-cn-beijing');
    await expect(inspector.retry(first)).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(inspector.retry('missing-id')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
