// Bull Board with a session cookie: state-changing routes refuse cross-site requests (form and text/plain
// posts that carry only the cookie), same-origin ones pass; logout revokes the session; two logins never share
// a cookie. The daemon's store is Redis, so a logout on one replica revokes the session on every one.
import { afterEach, describe, expect, it } from 'vitest';
import { createRedisSessionStore } from '../../src/http/index.js';
import { createRedis, untagQueueName } from '../../src/queue/index.js';
import { REDIS_URL, cleanupPrefix, uniquePrefix } from '../support/harness.js';
import { TOKEN, call, startFixture, type Fixture } from './http.fixture.js';

function sessionCookie(setCookie: string): string {
  return setCookie.split(';')[0] ?? '';
}

describe('dashboard sessions and cross-site requests', () => {
  const fixtures: Fixture[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const f of fixtures.splice(0)) await f.close();
    for (const c of cleanups.splice(0)) await c();
  });

  async function login(fixture: Fixture): Promise<string> {
    const res = await call(fixture, 'POST', '/admin/login', { rawBody: new URLSearchParams({ token: TOKEN }).toString(), contentType: 'application/x-www-form-urlencoded' });
    expect(res.status).toBe(303);
    return sessionCookie(res.headers.get('set-cookie') ?? '');
  }

  const boardQueue = `/admin/queues/api/queues/${encodeURIComponent(untagQueueName('acct', 'cn-hangzhou'))}`;
  const addPath = `${boardQueue}/add`;
  const waiting = async (fixture: Fixture) => (await fixture.untagQueue('cn-hangzhou').getJobCounts('waiting')).waiting ?? 0;

  it('refuses cookie-only cross-site posts on every kind of state-changing route, and lets same-origin ones in', async () => {
    const fixture = await startFixture({ token: TOKEN });
    fixtures.push(fixture);
    const cookie = await login(fixture);
    const host = new URL(fixture.base).host;
    const attacks: Array<{ method: string; path: string; headers: Record<string, string>; rawBody?: string; contentType?: string }> = [
      { method: 'POST', path: addPath, headers: { cookie }, rawBody: '{"name":"x","data":{}}', contentType: 'text/plain' },
      { method: 'POST', path: addPath, headers: { cookie, origin: 'https://evil.example' }, rawBody: 'name=x&data=%7B%7D', contentType: 'application/x-www-form-urlencoded' },
      { method: 'POST', path: addPath, headers: { cookie, 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' }, rawBody: '{"name":"x"}', contentType: 'application/json' },
      { method: 'POST', path: addPath, headers: { cookie, 'sec-fetch-site': 'same-site' }, rawBody: '{"name":"x"}', contentType: 'application/json' },
      { method: 'POST', path: addPath, headers: { cookie, origin: 'null' }, rawBody: '{"name":"x"}', contentType: 'application/json' },
      { method: 'PUT', path: `${boardQueue}/clean/failed`, headers: { cookie, origin: `http://${host}.evil.example` } },
      { method: 'PUT', path: '/admin/queues/api/queues/pause', headers: { cookie } },
      { method: 'POST', path: '/admin/logout', headers: { cookie, origin: 'https://evil.example' } },
    ];
    for (const attack of attacks) {
      const res = await call(fixture, attack.method, attack.path, {
        headers: attack.headers,
        ...(attack.rawBody !== undefined ? { rawBody: attack.rawBody, contentType: attack.contentType ?? 'text/plain' } : {}),
      });
      expect({ path: attack.path, headers: attack.headers, status: res.status }).toEqual({ path: attack.path, headers: attack.headers, status: 403 });
    }
    expect(await waiting(fixture)).toBe(0);
    // The session survived the cross-site logout attempt.
    expect((await call(fixture, 'GET', '/admin/queues/api/queues', { headers: { cookie } })).status).toBe(200);

    // The dashboard itself (same origin) still works, by Sec-Fetch-Site or by Origin.
    const sameSite = await call(fixture, 'POST', addPath, { headers: { cookie, 'sec-fetch-site': 'same-origin' }, body: { name: 'manual', data: {} } });
    expect(sameSite.status).toBe(200);
    const sameOrigin = await call(fixture, 'POST', addPath, { headers: { cookie, origin: fixture.base }, body: { name: 'manual', data: {} } });
    expect(sameOrigin.status).toBe(200);
    expect(await waiting(fixture)).toBe(2);
    // A bearer token is no browser's ambient credential: no origin check.
    expect((await call(fixture, 'PUT', `${boardQueue}/pause`, { token: TOKEN })).status).toBe(200);
  });

  it('two logins get different cookies; logout revokes its session only', async () => {
    const fixture = await startFixture({ token: TOKEN });
    fixtures.push(fixture);
    const first = await login(fixture);
    const second = await login(fixture);
    expect(first).not.toBe(second);
    const out = await call(fixture, 'POST', '/admin/logout', { headers: { cookie: first, 'sec-fetch-site': 'same-origin' } });
    expect(out.status).toBe(303);
    // The revoked cookie, replayed as it was, no longer lets anyone in; the other session still does.
    expect((await call(fixture, 'GET', '/admin/queues/api/queues', { headers: { cookie: first } })).status).toBe(401);
    expect((await call(fixture, 'GET', '/admin/queues', { headers: { cookie: first } })).status).toBe(302);
    expect((await call(fixture, 'GET', '/admin/queues/api/queues', { headers: { cookie: second } })).status).toBe(200);
  });

  it('the Redis store: a session created by one replica is revoked for all, and Redis holds no usable cookie', async () => {
    const prefix = uniquePrefix('sessions');
    const redis = createRedis(REDIS_URL, { connectionName: 'tagwarden-test-sessions' });
    cleanups.push(async () => {
      await cleanupPrefix(prefix);
      redis.disconnect();
    });
    const a = await startFixture({ token: TOKEN, sessions: createRedisSessionStore(redis, prefix) });
    const b = await startFixture({ token: TOKEN, sessions: createRedisSessionStore(redis, prefix) });
    fixtures.push(a, b);
    const cookie = await login(a);
    const id = cookie.split('=')[1] ?? '';
    expect((await call(b, 'GET', '/admin/queues/api/queues', { headers: { cookie } })).status).toBe(200);
    const keys = await redis.keys(`${prefix}:admin-session:*`);
    expect(keys).toHaveLength(1);
    expect(keys[0]).not.toContain(id);
    expect(await redis.ttl(keys[0]!)).toBeGreaterThan(11 * 3600);
    expect((await call(b, 'POST', '/admin/logout', { headers: { cookie, origin: b.base } })).status).toBe(303);
    expect((await call(a, 'GET', '/admin/queues/api/queues', { headers: { cookie } })).status).toBe(401);
    expect(await redis.keys(`${prefix}:admin-session:*`)).toEqual([]);
  });
});
