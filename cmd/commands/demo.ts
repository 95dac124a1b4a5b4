// `tagwarden demo` (npm run demo): emulator with a generated estate + Redis + `run --once` with policies/,
// then a verification from the emulator's state: every targeted tag gone, every other tag untouched.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import type { RunningEmulator } from '../../src/emulator/index.js';
import { printSummary } from './run.js';
import { cliLogger, configOrExit, createProgress, err, out } from './shared.js';

const DEMO_KEYS = { accessKeyId: 'tagwarden-test', accessKeySecret: 'tagwarden-test-secret' };
const DEMO_REGIONS = ['cn-hangzhou', 'cn-shanghai', 'cn-beijing'];

function defaultPolicies(): string {
  if (existsSync('policies')) return 'policies';
  // Installed package: policies/ sits beside dist/.
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../../policies');
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('run the shipped policies once against a local emulator and verify the result')
    .option('--connections <n>', 'peering connections in the generated estate', '3000')
    .option('--seed <n>', 'estate seed', '42')
    .option('--policies <dir>', 'policy directory')
    .action(async (opts: { connections: string; seed: string; policies?: string }) => {
      const { checkState, createEmulatorAdmin, startEmulator, expectedRemovals } = await import('../../src/emulator/index.js');
      const { formatFinding } = await import('../../src/policy/index.js');
      const { createRedis, deletePrefix } = await import('../../src/queue/index.js');
      const { runOnce } = await import('../../src/runtime/index.js');
      const { findOrStartRedis } = await import('./local-redis.js');
      const redis = await findOrStartRedis();
      let emulator: RunningEmulator | undefined;
      try {
        emulator = await startEmulator({ generate: { count: Number(opts.connections), seed: Number(opts.seed), regions: DEMO_REGIONS } });
        const admin = createEmulatorAdmin(emulator.url);
        const config = await configOrExit(
          {
            redisUrl: redis.url,
            endpoint: emulator.url,
            queuePrefix: `tagwarden-demo-${process.pid}`,
            regions: DEMO_REGIONS.join(',') as never,
            policiesDir: opts.policies ?? defaultPolicies(),
            logLevel: 'warn',
          },
          { ...process.env, TAGWARDEN_DRY_RUN: '' },
        );
        if (!config) return;
        out(`emulator: ${emulator.url} with ${opts.connections} peering connections in ${DEMO_REGIONS.join(', ')}\n`);
        out(`redis: ${redis.url.replace(/\/\/[^@]*@/, '//***@')}  policies: ${config.policiesDir}\n`);
        const progress = createProgress();
        const before = (await admin.getState()).resources;
        const now = new Date();
        const result = await runOnce(config, {
          policiesPaths: [config.policiesDir],
          credentials: DEMO_KEYS,
          logger: await cliLogger(config),
          now: () => now,
          onProgress: (p) => progress.update(`demo: scans ${p.scansEnded}/${p.scans}  batches ${p.batchesEnded}/${p.batches}  tags removed ${p.removed}`),
        });
        progress.done();
        for (const f of result.findings) err(`${formatFinding(f)}\n`);
        printSummary(result);
        const after = (await admin.getState()).resources;
        const check = checkState(before, after, expectedRemovals(before, result.policies, now));
        const stats = await admin.getStats();
        out(
          `\nverification: ${check.removed} targeted tags removed, ${check.untouched} other tags untouched, ` +
            `${check.notRemoved.length} targeted tags left, ${check.wronglyRemoved.length} tags wrongly removed\n` +
            `emulator recorded ${JSON.stringify(stats.byAction?.UnTagResources ?? stats)} UnTagResources calls\n`,
        );
        for (const line of [...check.notRemoved.slice(0, 10), ...check.wronglyRemoved.slice(0, 10)]) out(`  ${line}\n`);
        out(check.ok && !result.failed ? 'VERIFIED\n' : 'NOT VERIFIED\n');
        process.exitCode = check.ok && !result.failed ? 0 : 1;
      } finally {
        await emulator?.close();
        const cleanup = createRedis(redis.url);
        await deletePrefix(cleanup, `tagwarden-demo-${process.pid}`).finally(() => cleanup.disconnect());
        redis.stop();
      }
    });
}

