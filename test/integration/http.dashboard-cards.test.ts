// Bull Board as an operator sees it on a running daemon (the built CLI, real workers, the emulator): every untag
// queue card is titled by its region in full (not cut by the card's width, even beside a badge), the full queue
// name and account are in the card's info tip, and only a
// queue that really is rate limited (paused after a throttling answer) shows "rate limited": a queue whose workers
// just ran a batch (BullMQ's window counter is set, far below its maximum) does not. Checked in Bull Board's own
// API JSON and in its pages in headless Chromium.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { createEmulatorAdmin, startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { sh } from '../support/cli.js';
import { untagQueueName } from '../../src/queue/index.js';
import { cleanupPrefix, daemonPort, eventually, policyDoc, spawnTagwarden, tagwardenEnv, uniquePrefix, writePolicies, type TagwardenProcess } from '../support/harness.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const TOKEN = 'tw-cards-token-0123456789abcdef';
const CALM = 'cn-hangzhou';
const THROTTLED = 'ap-southeast-1';
// A long account id (as Alibaba Cloud's are) makes queue names longer than a card is wide.
const ACCOUNT = '1234567890123456';

interface BoardQueue {
  name: string;
  displayName?: string;
  description?: string;
  activeRateLimitTtl: number;
  counts: Record<string, number>;
}

describe('Bull Board queue cards', () => {
  let emulator: RunningEmulator | undefined;
  let daemon: TagwardenProcess | undefined;
  let context: BrowserContext | undefined;
  let profile: string | undefined;
  let prefix: string | undefined;
  afterEach(async () => {
    await context?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
    daemon?.child.kill('SIGTERM');
    await daemon?.exited;
    await emulator?.close();
    if (prefix) await cleanupPrefix(prefix);
  });

  it('show each region in full and "rate limited" only on the throttled queue', { timeout: 120_000 }, async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium is required for this test and is missing at ${CHROMIUM}: install it with \`apt-get install -y chromium\``);
    const resources = [CALM, THROTTLED].flatMap((region) => Array.from({ length: 20 }, (_, i) => ({ id: `pcc-${region.replace(/-/g, '')}${String(i).padStart(8, '0')}`, region, tags: { 'tmp-x': '1' } })));
    // Every UnTagResources call in the throttled region is answered with Throttling.User and a 60 s retry-after.
    emulator = await startEmulator({ fixture: { resources }, faults: { throttle: 1, regions: [THROTTLED], actions: ['UnTagResources'], retryAfterMs: 60_000 } });
    const admin = createEmulatorAdmin(emulator.url);
    prefix = uniquePrefix('cards');
    const env = tagwardenEnv({
      emulatorUrl: emulator.url,
      prefix,
      regions: [CALM, THROTTLED],
      extra: {
        TAGWARDEN_API_TOKEN: TOKEN,
        TAGWARDEN_ACCOUNT_ID: ACCOUNT,
        TAGWARDEN_POLICIES_DIR: writePolicies([policyDoc('idle', { regions: [CALM], remove: { keys: ['never-carried'] } })]),
      },
    });
    daemon = spawnTagwarden(['run'], env);
    const port = await daemonPort(daemon);
    const base = `http://127.0.0.1:${port}`;
    for (const region of [CALM, THROTTLED]) {
      const ids = resources.filter((r) => r.region === region).map((r) => r.id).join(',');
      const q = await sh(`tw enqueue --region ${region} --resource-id ${ids} --tag-key tmp-x`, env);
      expect(q.code, q.stderr).toBe(0);
    }
    const board = async () =>
      ((await (await fetch(`${base}/admin/queues/api/queues`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { queues: BoardQueue[] }).queues;
    const calmName = untagQueueName(ACCOUNT, CALM);
    const throttledName = untagQueueName(ACCOUNT, THROTTLED);
    // The calm region's batch ran (its tags are gone); the throttled region's queue was paused by the answer.
    await eventually(async () => ((await admin.getState({ region: CALM })).resources.every((r) => !('tmp-x' in r.tags)) ? true : undefined), 60_000);
    await eventually(async () => ((await board()).find((q) => q.name === throttledName)?.activeRateLimitTtl ?? 0) > 0 || undefined, 60_000);
    const queues = await board();
    const calm = queues.find((q) => q.name === calmName)!;
    const throttled = queues.find((q) => q.name === throttledName)!;
    expect(calm.counts.completed).toBe(1);
    expect(calm.activeRateLimitTtl, 'a queue that just ran a batch is not rate limited').toBe(0);
    expect(throttled.activeRateLimitTtl).toBeGreaterThan(0);
    for (const q of queues.filter((x) => x.name.startsWith('untag-'))) {
      const region = q.name.slice(untagQueueName(ACCOUNT, '').length);
      expect(q.displayName, q.name).toBe(region);
      expect(q.description).toContain(q.name);
    }

    profile = await mkdtemp(join(tmpdir(), 'tagwarden-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 20_000, viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(15_000);
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(`${base}/admin/login`);
    await page.fill('#token', TOKEN);
    await Promise.all([page.waitForURL(`${base}/admin/queues`), page.click('button[type=submit]')]);
    // A card is the grid item around its title link, in the page's main section (the side menu lists the same
    // links, outside it).
    const titleOf = (region: string) => page.locator(`section a[href$="/queue/${encodeURIComponent(untagQueueName(ACCOUNT, region))}"]`);
    const cardOf = (region: string) => titleOf(region).locator('xpath=ancestor::li[1]');
    await titleOf(THROTTLED).waitFor();
    for (const region of [CALM, THROTTLED]) {
      const link = titleOf(region);
      const title = await link.evaluate((el) => ({ text: el.textContent ?? '', cut: el.scrollWidth > el.clientWidth }));
      expect(title.text, 'card title').toBe(region);
      expect(title.cut, `card title of ${region} is cut: ${title.text}`).toBe(false);
    }
    expect(await cardOf(CALM).getByText(/rate limited/i).count()).toBe(0);
    await cardOf(THROTTLED).getByText(/rate limited \d+s/i).first().waitFor();
  });
});
