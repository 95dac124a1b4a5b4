// Who may use /v1 and /admin: bearer token, dashboard cookie, API off without a token, open mode for demos.
import { afterEach, describe, expect, it } from 'vitest';
import { TOKEN, call, startFixture, type Fixture } from './http.fixture.js';

const untagBody = { region: 'cn-hangzhou', resourceIds: ['pcc-auth1'], tagKeys: ['temp'], reason: 'auth test' };

function sessionCookie(setCookie: string | null): string {
  const value = setCookie?.split(';')[0];
  if (!value) throw new Error('no Set-Cookie header');
  return value;
}

describe('authentication', () => {
  let fixture: Fixture | undefined;
  afterEach(async () => {
    await fixture?.close();
    fixture = undefined;
  });

  it('answers 401 with WWW-Authenticate without a token or with a wrong one, and queues nothing', async () => {
    fixture = await startFixture({ token: TOKEN });
    const missing = await call(fixture, 'POST', '/v1/untag', { token: null, body: untagBody });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="tagwarden"');
    expect(missing.body).toMatchObject({ error: 'unauthorized' });

    const wrong = await call(fixture, 'POST', '/v1/untag', { token: 'not-the-token-at-all-xyz', body: untagBody });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);
    expect(wrong.text).not.toContain('not-the-token-at-all-xyz');
    expect(wrong.text).not.toContain(TOKEN);

    const basic = await call(fixture, 'GET', '/v1/policies', { headers: { authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}` } });
    expect(basic.status).toBe(401);

    for (const [method, path] of [['GET', '/v1/policies'], ['GET', '/v1/jobs/abc'], ['POST', '/v1/policies/p/scan'], ['GET', '/v1/jobs?state=failed']] as const) {
      expect((await call(fixture, method, path, { token: null })).status, `${method} ${path}`).toBe(401);
    }
    for (const queue of fixture.queues) expect(await queue.getJobCountByTypes('waiting')).toBe(0);
  });

  it('checks the token before reading the body, and never logs the token', async () => {
    fixture = await startFixture({ token: TOKEN, maxBodyBytes: 1024 });
    const big = await call(fixture, 'POST', '/v1/untag', { token: 'wrong-token-value-0000', rawBody: 'x'.repeat(10_000) });
    expect(big.status).toBe(401);
    const ok = await call(fixture, 'POST', '/v1/untag', { token: TOKEN, body: untagBody });
    expect(ok.status).toBe(202);
    const log = fixture.lines.join('\n');
    expect(log).toContain('"message":"http request"');
    expect(log).not.toContain(TOKEN);
  });

  it('serves probes, metrics and the OpenAPI document without a token', async () => {
    fixture = await startFixture({ token: TOKEN });
    for (const path of ['/healthz', '/readyz', '/metrics', '/v1/openapi.json']) {
      expect((await call(fixture, 'GET', path, { token: null })).status, path).toBe(200);
    }
    const unknown = await call(fixture, 'GET', '/no/such/route', { token: TOKEN });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ error: 'not_found', message: 'no such route' });
  });

  it('turns /v1 and /admin off without a token, saying so once in the log', async () => {
    fixture = await startFixture({});
    const res = await call(fixture, 'POST', '/v1/untag', { body: untagBody });
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ error: 'api_disabled', message: 'API disabled: set TAGWARDEN_API_TOKEN' });
    expect((await call(fixture, 'GET', '/admin/queues')).status).toBe(503);
    expect((await call(fixture, 'GET', '/admin/login')).status).toBe(503);
    expect((await call(fixture, 'GET', '/healthz')).status).toBe(200);
    expect(fixture.lines.filter((l) => l.includes('"message":"http api disabled"'))).toHaveLength(1);
    for (const queue of fixture.queues) expect(await queue.getJobCountByTypes('waiting')).toBe(0);
  });

  it('serves /v1 and /admin without a token in open mode, with a warning', async () => {
    fixture = await startFixture({ open: true });
    const res = await call(fixture, 'POST', '/v1/untag', { body: untagBody });
    expect(res.status).toBe(202);
    expect(await fixture.untagQueue('cn-hangzhou').getJobCountByTypes('waiting')).toBe(1);
    const board = await call(fixture, 'GET', '/admin/queues');
    expect(board.status).toBe(200);
    expect(board.headers.get('content-type')).toMatch(/text\/html/);
    expect(fixture.lines.some((l) => l.includes('"level":"warn"') && l.includes('http api open without authentication'))).toBe(true);
  });

  it('sends browsers to the login page and lets them in with a random session cookie', async () => {
    fixture = await startFixture({ token: TOKEN });
    const anonymous = await call(fixture, 'GET', '/admin/queues');
    expect(anonymous.status).toBe(302);
    expect(anonymous.headers.get('location')).toBe('/admin/login');
    expect((await call(fixture, 'GET', '/admin/queues/api/queues')).status).toBe(401);
    expect((await call(fixture, 'GET', '/admin/queues', { token: TOKEN })).status).toBe(200);

    const page = await call(fixture, 'GET', '/admin/login');
    expect(page.status).toBe(200);
    expect(page.text).toContain('name="token"');

    const form = (token: string, headers: Record<string, string> = {}) =>
      call(fixture!, 'POST', '/admin/login', { rawBody: new URLSearchParams({ token }).toString(), contentType: 'application/x-www-form-urlencoded', headers });
    const wrong = await form('wrong-token-value-0000');
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();

    const right = await form(TOKEN);
    expect(right.status).toBe(303);
    expect(right.headers.get('location')).toBe('/admin/queues');
    const setCookie = right.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Strict/i);
    expect(setCookie).not.toMatch(/;\s*Secure/i);
    expect(setCookie).not.toContain(TOKEN);
    const cookie = sessionCookie(setCookie);

    expect((await call(fixture, 'GET', '/admin/queues', { headers: { cookie } })).status).toBe(200);
    const api = await call(fixture, 'GET', '/admin/queues/api/queues', { headers: { cookie } });
    expect(api.status).toBe(200);
    expect(JSON.stringify(api.body)).toContain('untag-{acct}-cn-hangzhou');
    // The cookie is for the dashboard only, not for the work-accepting API.
    expect((await call(fixture, 'POST', '/v1/untag', { body: untagBody, headers: { cookie } })).status).toBe(401);

    const [name, value] = cookie.split('=') as [string, string];
    const flipped = `${name}=${value[0] === 'A' ? 'B' : 'A'}${value.slice(1)}`;
    const forged = `${name}=${'A'.repeat(43)}`;
    for (const bad of [flipped, forged, `${name}=${TOKEN}`, `${name}=${value}x`]) {
      expect((await call(fixture, 'GET', '/admin/queues', { headers: { cookie: bad } })).status, bad).toBe(302);
    }

    const behindTls = await form(TOKEN, { 'x-forwarded-proto': 'https' });
    expect(behindTls.headers.get('set-cookie')).toMatch(/;\s*Secure/i);
    expect(fixture.lines.join('\n')).not.toContain(TOKEN);
  });
});
