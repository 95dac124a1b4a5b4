// `npm run bench -- --only accounts`: one `run --once` over many member accounts (runOnceAccounts, what the CLI
// calls with TAGWARDEN_ACCOUNTS_FILE), each reached through STS AssumeRole with the real @alicloud/credentials
// chain against the emulator over HTTP. Full: 50 accounts x 3 regions x 2,000 connections; quick: 4 accounts x
// 3 regions x 600 connections (labelled); TAGWARDEN_BENCH_ACCOUNTS=<accounts>x<connections per region> sets
// another size (labelled). One account's UnTagResources answers Throttling.User half the time.
// Figures, from the emulator's state and call log only:
// - every account reconciled exactly (each connection has exactly its tags minus the policy's keys);
// - per (account, region): OK UnTagResources calls per whole quota window over the configured quota Q (the
//   physical floor of a quota-bound run is Q per window), and the throttled share;
// - STS AssumeRole calls per account, against the bound of one per session lifetime. The emulator's sessions
//   live 904 s, so the library (refresh 900 s before expiry) renews every 4 s: the run spans several lifetimes.
// Measured, never asserted.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createEmulatorAdmin, startEmulator, type CallRecord, type EmulatorAccount } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/logging/index.js';
import { readAccountsFile, runOnceAccounts } from '../../src/runtime/index.js';
import { EMULATOR_KEYS, temporaryTagsPolicy, testConfig, writePolicies } from '../support/harness.js';
import { HUGE_QUOTAS, withPrefix, type Benchmark } from './lib/context.js';
import { heading, note, percent, table, type TargetCheck } from './lib/report.js';

const REGIONS = ['cn-hangzhou', 'cn-shanghai', 'cn-beijing'];
const SESSION_S = 904;
/** tagwarden's share of each quota (TAGWARDEN_QUOTA_FRACTION): its limiter's long-run ceiling is FRACTION x Q. */
const FRACTION = 0.95;
const REMOVED = (key: string) => key.startsWith('tmp-') || /^scratch-\d+$/.test(key);

interface Figures {
  account: string;
  region: string;
  windows: number;
  ofQ: number;
  calls: number;
  throttledShare: number;
}

function quotaUse(calls: readonly CallRecord[], account: string, region: string, q: number, windowMs: number): Figures {
  const mine = calls.filter((c) => c.region === region && c.action === 'UnTagResources').sort((a, b) => a.at - b.at);
  const throttled = mine.filter((c) => c.code === 'Throttling.User').length;
  const first = mine[0];
  const last = mine[mine.length - 1];
  const base = { account, region, calls: mine.length, throttledShare: mine.length ? throttled / mine.length : 0 };
  if (!first || !last) return { ...base, windows: 0, ofQ: 0 };
  // Whole epoch-aligned windows strictly between the first and the last call's windows: the run is quota-bound
  // there (the first and the last are partial).
  const from = Math.floor(first.at / windowMs) + 1;
  const to = Math.floor(last.at / windowMs) - 1;
  if (to < from) return { ...base, windows: 0, ofQ: 0 };
  let ok = 0;
  for (const c of mine) {
    const w = Math.floor(c.at / windowMs);
    if (c.code === 'OK' && w >= from && w <= to) ok++;
  }
  const windows = to - from + 1;
  return { ...base, windows, ofQ: ok / windows / q };
}

export const accountsBenchmark: Benchmark = {
  name: 'accounts',
  title: 'Many accounts: one run --once over member accounts, each with its own role and quota',
  async run(ctx) {
    // TAGWARDEN_BENCH_ACCOUNTS=20x1000 overrides the size (accounts x connections per region), labelled.
    const size = /^(\d+)x(\d+)$/.exec(process.env['TAGWARDEN_BENCH_ACCOUNTS'] ?? '');
    const accounts = size ? Number(size[1]) : ctx.quick ? 4 : 50;
    const perRegion = size ? Number(size[2]) : ctx.quick ? 600 : 2_000;
    // UnTagResources per window per (account, region), at the emulator and in tagwarden (whose GCRA limiter
    // paces at 0.95 of it: 9.5 calls a window on average, so 0.95 Q is the ceiling). Quota-bound on purpose (the
    // floor is Q per window), and low enough in total that two shared cores keep up: 50 x 3 x 0.9 calls/s in the full run.
    const q = 10;
    const windowMs = ctx.quick ? 2_000 : 10_000;
    const ids = Array.from({ length: accounts }, (_, i) => String(1_300_000_000_000_000 + i));
    const throttledAccount = ids[1] as string;
    const emulatorAccounts: EmulatorAccount[] = ids.map((id, i): EmulatorAccount => ({
      id,
      roleName: 'tagwarden',
      tags: { env: i % 2 === 0 ? 'production' : 'dev' },
      // Every connection carries a temporary tag (so every one is reconciled), a third also a scratch key.
      fixture: {
        // Quick: the throttled account has a quarter of the estate, so the run (which waits for it) stays short.
        resources: REGIONS.flatMap((region, r) => Array.from({ length: ctx.quick && id === throttledAccount ? perRegion / 4 : perRegion }, (_, n) => ({
          id: `pcc-${i}x${r}x${String(n).padStart(5, '0')}`,
          region,
          tags: { 'tmp-build': String(n), owner: 'net', ...(n % 3 === 0 ? { 'scratch-7': 'x' } : {}) },
        }))),
      },
      quotas: { ...HUGE_QUOTAS, UnTagResources: q },
      ...(id === throttledAccount ? { faults: { throttle: 0.5, actions: ['UnTagResources'], seed: 9 } } : {}),
    }));
    heading(`${size ? 'SIZED by TAGWARDEN_BENCH_ACCOUNTS: ' : ''}${ctx.quick ? 'QUICK (reduced: ' : ''}${accounts} accounts x ${REGIONS.length} regions x ${perRegion} connections${ctx.quick ? ')' : ''}; UnTagResources Q = ${q} per ${windowMs} ms per (account, region); account ${throttledAccount} throttled 50%`);
    const emu = await startEmulator({ accounts: emulatorAccounts, quotas: HUGE_QUOTAS, quotaWindowMs: windowMs, stsSessionSeconds: SESSION_S, maxCallLog: 2_000_000 });
    try {
      const admin = createEmulatorAdmin(emu.url);
      const before = new Map<string, Map<string, Record<string, string>>>();
      for (const id of ids) before.set(id, new Map((await admin.account(id).getState()).resources.map((r) => [r.id, r.tags])));
      const dir = mkdtempSync(join(tmpdir(), 'tw-bench-accounts-'));
      const accountsFile = join(dir, 'accounts.yaml');
      writeFileSync(
        accountsFile,
        `apiVersion: tagwarden/v1\nkind: AccountList\naccounts:\n${ids.map((id, i) => `  - { id: "${id}", name: member-${i}, roleArn: "acs:ram::${id}:role/tagwarden" }\n`).join('')}`,
      );
      const policiesDir = writePolicies([temporaryTagsPolicy(REGIONS)]);
      return await withPrefix('accounts', ctx.redisUrl, async (prefix) => {
        const config = testConfig({
          emulatorUrl: emu.url,
          prefix,
          policiesDir,
          regions: REGIONS,
          overrides: {
            accountsFile,
            stsEndpoint: emu.url,
            quotas: { ...HUGE_QUOTAS, UnTagResources: q },
            quotaWindowMs: windowMs,
            quotaFraction: FRACTION,
            accountConcurrency: accounts,
            concurrency: 4,
            logLevel: 'warn',
          },
        });
        const { logger } = createMemoryLogger({ level: 'warn', secrets: [] });
        const t0 = performance.now();
        const result = await runOnceAccounts(config, await readAccountsFile(accountsFile), {
          policiesPaths: [policiesDir],
          credentials: EMULATOR_KEYS,
          logger,
          timeoutMs: 30 * 60_000,
        });
        const seconds = (performance.now() - t0) / 1000;

        // Exactness, account by account, from the emulator's state.
        let exact = 0;
        const wrong: string[] = [];
        for (const id of ids) {
          const was = before.get(id) ?? new Map();
          const now = (await admin.account(id).getState()).resources;
          const ok = now.length === was.size && now.every((r) => {
            const expected = Object.fromEntries(Object.entries(was.get(r.id) ?? {}).filter(([k]) => !REMOVED(k)));
            return JSON.stringify(Object.entries(r.tags).sort()) === JSON.stringify(Object.entries(expected).sort());
          });
          if (ok) exact++;
          else wrong.push(id);
        }

        // Quota use per (account, region), and STS calls per account.
        const figures: Figures[] = [];
        for (const id of ids) {
          const calls = (await admin.account(id).getCalls()).calls;
          for (const region of REGIONS) figures.push(quotaUse(calls, id, region, q, windowMs));
        }
        const sts = new Map((await admin.listAccounts()).accounts.map((a) => [a.id, a.stsCalls['OK'] ?? 0]));
        const stsBound = Math.floor(seconds / (SESSION_S - 900)) + 1;
        const stsMax = Math.max(...ids.map((id) => sts.get(id) ?? 0));
        const healthy = figures.filter((f) => f.account !== throttledAccount && f.windows > 0);
        const minOfQ = healthy.length ? Math.min(...healthy.map((f) => f.ofQ)) : 0;
        const meanOfQ = healthy.length ? healthy.reduce((n, f) => n + f.ofQ, 0) / healthy.length : 0;
        const maxThrottled = Math.max(0, ...figures.filter((f) => f.account !== throttledAccount).map((f) => f.throttledShare));
        const hot = figures.filter((f) => f.account === throttledAccount);

        process.stdout.write(`${table(
          ['figure', 'value'],
          [
            ['run --once wall time', `${seconds.toFixed(1)} s`],
            ['accounts reconciled exactly', `${exact} / ${accounts}${wrong.length ? ` (not: ${wrong.slice(0, 5).join(', ')})` : ''}`],
            ['per-(account, region) OK UnTag calls per window / Q, other accounts: min', minOfQ.toFixed(3)],
            ['  mean', meanOfQ.toFixed(3)],
            [`  min / mean against the limiter's ceiling (${FRACTION} Q)`, `${(minOfQ / FRACTION).toFixed(3)} / ${(meanOfQ / FRACTION).toFixed(3)}`],
            ['  whole windows measured per (account, region): min', String(Math.min(...healthy.map((f) => f.windows)))],
            ['throttled share, other accounts: max', percent(maxThrottled, 2)],
            [`throttled account ${throttledAccount}: throttled share`, hot.map((f) => percent(f.throttledShare)).join(' / ')],
            [`throttled account: OK calls per window / Q`, hot.map((f) => f.ofQ.toFixed(2)).join(' / ')],
            ['STS AssumeRole calls per account: max', `${stsMax} (bound: one per ${SESSION_S - 900} s of session before its refresh = ${stsBound} in this run)`],
            ['STS calls per account per hour at TAGWARDEN_STS_DURATION_SECONDS=3600', `<= ${(3600 / 2700).toFixed(2)} (one per 2,700 s: refreshed 900 s before expiry)`],
          ],
        )}\n`);
        if (ctx.quick) note('QUICK variant: fewer accounts and connections than the issue\'s 50 x 3 x 2,000; run `npm run bench -- --only accounts` for the full figures.');
        const label = ctx.quick ? ' (quick)' : '';
        const targets: TargetCheck[] = [
          { benchmark: 'accounts', target: `every account reconciled exactly${label}`, measured: `${exact}/${accounts}`, met: exact === accounts && !result.timedOut },
          { benchmark: 'accounts', target: `per-account quota use >= 0.9 Q while one account is throttled 50%${label}`, measured: `min ${minOfQ.toFixed(3)}`, met: minOfQ >= 0.9 },
          { benchmark: 'accounts', target: `< 1% throttled in the other accounts${label}`, measured: percent(maxThrottled, 2), met: maxThrottled < 0.01 },
          { benchmark: 'accounts', target: `STS calls per account <= one per session lifetime${label}`, measured: `max ${stsMax}, bound ${stsBound}`, met: stsMax <= stsBound },
        ];
        return {
          result: {
            quick: ctx.quick, accounts, regions: REGIONS.length, connectionsPerRegion: perRegion, q, windowMs, throttledAccount,
            seconds, exact, wrong, minOfQ, meanOfQ, maxThrottled, hot, stsMax, stsBound, sessionSeconds: SESSION_S,
            failed: result.failed, timedOut: result.timedOut, figures,
          },
          targets,
        };
      });
    } finally {
      await emu.close();
    }
  },
};
