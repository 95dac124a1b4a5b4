// `npm run bench -- --only cli`: how long the built CLI takes from spawn to exit, as a shell user waits for it:
// `--help`, `--version`, `validate policies/`, and `run --once --fail-fast` / `plan --fail-fast` against a dead
// endpoint (nothing listens on the port). The physical floor is `node -e 0` measured in the same run: the ratio
// says what tagwarden adds to starting Node. Measured, never asserted.
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CLI, REPO_ROOT, tagwardenEnv } from '../support/harness.js';
import { withPrefix, type Benchmark } from './lib/context.js';
import { heading, median, note, percentile, table, type TargetCheck } from './lib/report.js';

async function deadPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 1));
    });
  });
}

interface Case {
  name: string;
  args: string[];
  /** The exit code the case must end with (a wrong one means the figure is not what it says). */
  code: number;
  /** Target in ms, when the issue gives one. */
  targetMs?: number;
}

/** Wall-clock ms of each run of `node args`, checking the exit code each time. */
function timeRuns(args: readonly string[], env: NodeJS.ProcessEnv, runs: number, code: number): number[] {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { env, cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
    times.push(performance.now() - t0);
    if (r.status !== code) throw new Error(`node ${args.join(' ')} exited ${String(r.status)}, expected ${code}: ${r.stderr.toString('utf8').slice(-500)}`);
  }
  return times;
}

export const cliBenchmark: Benchmark = {
  name: 'cli',
  title: 'CLI start-up and fail-fast times (spawn to exit)',
  async run({ quick, redisUrl }) {
    heading('CLI: spawn to exit, against `node -e 0` in the same run');
    const runs = quick ? 5 : 15;
    return withPrefix('cli', redisUrl, async (prefix) => {
      const env = tagwardenEnv({ emulatorUrl: `http://127.0.0.1:${await deadPort()}`, prefix, redisUrl, extra: { TAGWARDEN_POLICIES_DIR: join(REPO_ROOT, 'policies') } });
      const floor = timeRuns(['-e', '0'], env, runs, 0);
      const cases: Case[] = [
        { name: '--version', args: [CLI, '--version'], code: 0 },
        { name: '--help', args: [CLI, '--help'], code: 0, targetMs: 500 },
        { name: 'run --help', args: [CLI, 'run', '--help'], code: 0 },
        { name: 'validate policies/', args: [CLI, 'validate', join(REPO_ROOT, 'policies')], code: 0, targetMs: 500 },
        { name: 'plan --fail-fast, dead endpoint', args: [CLI, 'plan', '--fail-fast'], code: 1 },
        { name: 'run --once --fail-fast, dead endpoint', args: [CLI, 'run', '--once', '--fail-fast'], code: 1 },
      ];
      const floorMs = median(floor);
      const rows: Array<Array<string | number>> = [['node -e 0 (floor)', floorMs, percentile(floor, 90), 1]];
      const figures: Record<string, { medianMs: number; p90Ms: number; ratioToFloor: number }> = {};
      const targets: TargetCheck[] = [];
      for (const c of cases) {
        note(`cli: ${c.name} x ${runs}`);
        const t = timeRuns(c.args, env, runs, c.code);
        const m = median(t);
        figures[c.name] = { medianMs: Math.round(m), p90Ms: Math.round(percentile(t, 90)), ratioToFloor: Math.round((m / floorMs) * 100) / 100 };
        rows.push([c.name, m, percentile(t, 90), m / floorMs]);
        if (c.targetMs !== undefined) {
          targets.push({ benchmark: 'cli', target: `${c.name} < ${c.targetMs} ms`, measured: `${Math.round(m)} ms median (floor ${Math.round(floorMs)} ms)`, met: m < c.targetMs });
        }
      }
      process.stdout.write(`${table(['command', 'median ms', 'p90 ms', 'x floor'], rows)}\n`);
      return { result: { runs, floorMs: Math.round(floorMs), figures }, targets };
    });
  },
};
