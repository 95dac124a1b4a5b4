// An endpoint that echoes the Authorization header and the STS token in its error Code, Message and RequestId:
// none of it may reach what tagwarden stores or shows. The daemon runs against that endpoint; the batch fails
// for good; then Redis (job hash: failedReason, stacktrace, data, return value), GET /v1/jobs/:id, GET /v1/jobs,
// Bull Board's API, `tagwarden jobs list/show` and every output line are searched for the secrets.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createRedis, untagQueueName } from '../../src/queue/index.js';
import { REDIS_URL, cleanupPrefix, daemonPort, eventually, spawnTagwarden, tagwardenEnv, uniquePrefix, writePolicies, type TagwardenProcess } from '../support/harness.js';

const REGION = 'cn-hangzhou';

/** Every form a secret may be found in. */
function forms(secret: string): string[] {
  return [secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64'), JSON.stringify(secret).slice(1, -1)];
}

describe('reflected credentials never reach storage or output', () => {
  const procs: TagwardenProcess[] = [];
  let server: Server | undefined;
  const prefix = uniquePrefix('reflect');
  afterEach(async () => {
    for (const p of procs.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    await cleanupPrefix(prefix);
  });

  it('an echoing endpoint: Redis, /v1/jobs, Bull Board and the CLI show neither the token nor the signature', async () => {
    const sts = `CAIS${randomBytes(24).toString('base64url')}`;
    const secret = `sk-${randomBytes(16).toString('hex')}`;
    const apiToken = `tok-${randomBytes(16).toString('hex')}`;
    const signatures: string[] = [];
    server = createServer((req, res) => {
      const authorization = String(req.headers.authorization ?? '');
      const token = String(req.headers['x-acs-security-token'] ?? '');
      const signature = /Signature=([0-9a-f]+)/.exec(authorization)?.[1];
      if (signature) signatures.push(signature);
      req.resume();
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ Code: authorization, Message: `you sent token ${token} and ${authorization}`, RequestId: token, HostId: 'h', Recommend: token }));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const env = tagwardenEnv({
      emulatorUrl: endpoint,
      prefix,
      regions: [REGION],
      extra: {
        TAGWARDEN_POLICIES_DIR: writePolicies([]),
        TAGWARDEN_API_TOKEN: apiToken,
        ALIBABA_CLOUD_ACCESS_KEY_ID: 'STS.reflect-test',
        ALIBABA_CLOUD_ACCESS_KEY_SECRET: secret,
        ALIBABA_CLOUD_SECURITY_TOKEN: sts,
        TAGWARDEN_RETRY_BASE_MS: '20',
        TAGWARDEN_RETRY_MAX_MS: '100',
        TAGWARDEN_RETRY_ATTEMPTS: '2',
      },
    });
    const daemon = spawnTagwarden(['run'], env);
    procs.push(daemon);
    const port = await daemonPort(daemon);
    const base = `http://127.0.0.1:${port}`;
    const auth = { authorization: `Bearer ${apiToken}`, 'content-type': 'application/json' };
    const queued = await fetch(`${base}/v1/untag`, { method: 'POST', headers: auth, body: JSON.stringify({ region: REGION, resourceIds: ['pcc-reflect1'], tagKeys: ['temp'], reason: 'reflect test' }) });
    expect(queued.status).toBe(202);
    const { jobIds } = (await queued.json()) as { jobIds: string[] };
    const id = jobIds[0]!;

    const job = await eventually(async () => {
      const res = await fetch(`${base}/v1/jobs/${id}`, { headers: auth });
      const body = (await res.json()) as { state: string; failedReason: string | null };
      return body.state === 'failed' && typeof body.failedReason === 'string' ? body : undefined;
    }, 60_000, 200);
    expect(signatures.length).toBeGreaterThan(0);
    expect(job.failedReason).toMatch(/other \(HTTP 400\)/);

    const seen: Array<{ where: string; text: string }> = [{ where: 'GET /v1/jobs/:id', text: JSON.stringify(job) }];
    const list = await fetch(`${base}/v1/jobs?state=failed`, { headers: auth });
    seen.push({ where: 'GET /v1/jobs', text: await list.text() });
    const board = await fetch(`${base}/admin/queues/api/queues?activeQueue=${encodeURIComponent(untagQueueName('default', REGION))}&status=failed&page=1&jobsPerPage=10`, { headers: { authorization: `Bearer ${apiToken}` } });
    expect(board.status).toBe(200);
    const boardText = await board.text();
    expect(boardText).toContain(id);
    seen.push({ where: 'Bull Board api', text: boardText });

    const redis = createRedis(REDIS_URL, { connectionName: 'tagwarden-test-reflect' });
    try {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
      expect(keys.length).toBeGreaterThan(0);
      for (const key of keys) {
        const type = await redis.type(key);
        const text =
          type === 'hash' ? JSON.stringify(await redis.hgetall(key))
          : type === 'string' ? String(await redis.get(key))
          : type === 'list' ? JSON.stringify(await redis.lrange(key, 0, -1))
          : type === 'zset' ? JSON.stringify(await redis.zrange(key, '0', '-1'))
          : type === 'set' ? JSON.stringify(await redis.smembers(key))
          : type === 'stream' ? JSON.stringify(await redis.xrange(key, '-', '+'))
          : '';
        seen.push({ where: `redis ${key}`, text });
      }
    } finally {
      redis.disconnect();
    }

    for (const args of [['jobs', 'list', '--state', 'failed'], ['jobs', 'list', '--state', 'failed', '--json'], ['jobs', 'show', id]]) {
      const cli = spawnTagwarden(args, env);
      procs.push(cli);
      expect((await cli.exited).code).toBe(0);
      seen.push({ where: `tagwarden ${args.join(' ')}`, text: cli.lines.join('\n') });
    }
    daemon.child.kill('SIGTERM');
    await daemon.exited;
    seen.push({ where: 'daemon output', text: daemon.lines.join('\n') });

    const needles = [...forms(sts), ...forms(secret), ...forms(apiToken), ...signatures];
    const leaks = seen.flatMap(({ where, text }) => needles.filter((n) => text.includes(n)).map((n) => `${where}: ${n.slice(0, 12)}…`));
    expect(leaks).toEqual([]);
  }, 120_000);
});
