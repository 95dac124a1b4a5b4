// End to end in headless Chromium: /admin/queues -> login page -> token -> Bull Board showing tagwarden's queues.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { TOKEN, call, startFixture, type Fixture } from './http.fixture.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe('Bull Board in a browser', () => {
  let fixture: Fixture | undefined;
  let context: BrowserContext | undefined;
  let profile: string | undefined;
  afterEach(async () => {
    await context?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
    await fixture?.close();
    context = undefined;
    profile = undefined;
    fixture = undefined;
  });

  it('redirects to the login page, accepts the token and shows the queues', { timeout: 45_000 }, async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`Chromium is required for this test and is missing at ${CHROMIUM}: install it with \`apt-get install -y chromium\``);
    }
    fixture = await startFixture({ token: TOKEN });
    const queued = await call(fixture, 'POST', '/v1/untag', {
      token: TOKEN,
      body: { region: 'cn-hangzhou', resourceIds: ['pcc-browser1'], tagKeys: ['temp'], reason: 'dashboard test' },
    });
    expect(queued.status).toBe(202);

    profile = await mkdtemp(join(tmpdir(), 'tagwarden-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 20_000 });
    context.setDefaultTimeout(15_000);
    const page = context.pages()[0] ?? (await context.newPage());

    await page.goto(`${fixture.base}/admin/queues`);
    expect(new URL(page.url()).pathname).toBe('/admin/login');
    await page.fill('#token', 'wrong-token-value-0000');
    await page.click('button[type=submit]');
    await page.getByRole('alert').waitFor();
    expect(new URL(page.url()).pathname).toBe('/admin/login');

    await page.fill('#token', TOKEN);
    await Promise.all([page.waitForURL(`${fixture.base}/admin/queues`), page.click('button[type=submit]')]);
    await page.getByText('untag-{acct}-cn-hangzhou').first().waitFor();
    await page.getByText('untag-{acct}-cn-beijing').first().waitFor();
    expect(await page.title()).toBe('tagwarden');

    const cookies = await context.cookies(`${fixture.base}/admin/queues`);
    const session = cookies.find((c) => c.name === 'tagwarden_admin');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/admin', secure: false });
    expect(session?.value).not.toContain(TOKEN);
  });
});
