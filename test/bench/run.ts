// `npm run bench [-- --quick] [-- --only calls,quota]`: runs the benchmarks of issue 7 one after another,
// prints a table per benchmark and a summary of the targets, writes results/<name>.json. Speed is measured,
// never asserted: the exit code is 0 unless a benchmark crashed.
import { performance } from 'node:perf_hooks';
import { accountsBenchmark } from './accounts.js';
import { callsBenchmark } from './calls.js';
import { cliBenchmark } from './cli.js';
import { eventsBenchmark } from './events.js';
import { latencyBenchmark } from './latency.js';
import { metricsBenchmark } from './metrics.js';
import { overheadBenchmark } from './overhead.js';
import { quotaBenchmark } from './quota.js';
import { scaleBenchmark } from './scale.js';
import { wallBenchmark } from './wall.js';
import { topologyBenchmark } from './topology.js';
import { withRedis, type Benchmark } from './lib/context.js';
import { killAll, liveChildren } from './lib/processes.js';
import { gitRevision, heading, loadAverage, machineInfo, table, writeResult, type TargetCheck } from './lib/report.js';
import { REDIS_URL } from '../support/harness.js';

const BENCHMARKS: readonly Benchmark[] = [callsBenchmark, quotaBenchmark, overheadBenchmark, scaleBenchmark, latencyBenchmark, wallBenchmark, cliBenchmark, eventsBenchmark, accountsBenchmark, metricsBenchmark, topologyBenchmark];

function parseArgs(argv: readonly string[]): { quick: boolean; only: string[] | undefined } {
  let quick = false;
  let only: string[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--quick') quick = true;
    else if (arg === '--only') only = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (arg.startsWith('--only=')) only = arg.slice('--only='.length).split(',').filter(Boolean);
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`usage: npm run bench -- [--quick] [--only ${BENCHMARKS.map((b) => b.name).join(',')}]\n`);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}; try --help`);
  }
  const unknown = (only ?? []).filter((n) => !BENCHMARKS.some((b) => b.name === n));
  if (unknown.length > 0) throw new Error(`unknown benchmark ${unknown.join(', ')}; known: ${BENCHMARKS.map((b) => b.name).join(', ')}`);
  return { quick, only };
}

async function main(): Promise<void> {
  const { quick, only } = parseArgs(process.argv.slice(2));
  const redisUrl = REDIS_URL;
  const redisVersion = await withRedis(redisUrl, async (redis) => /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown');
  const machine = machineInfo(redisVersion);
  const revision = gitRevision();
  process.stdout.write(
    `tagwarden benchmarks (${quick ? 'quick' : 'full'}) at ${revision}\n` +
      `${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.node}, redis ${machine.redis}, ${machine.date}, ` +
      `load average ${machine.loadAverage}\n`,
  );
  const started = performance.now();
  const targets: TargetCheck[] = [];
  const crashed: string[] = [];
  const durations: Record<string, number> = {};
  const loads: Record<string, { before: number; after: number }> = {};
  for (const bench of BENCHMARKS) {
    if (only && !only.includes(bench.name)) continue;
    const t0 = performance.now();
    const loadBefore = loadAverage();
    try {
      const outcome = await bench.run({ quick, redisUrl });
      durations[bench.name] = Math.round((performance.now() - t0) / 100) / 10;
      const file = writeResult(bench.name, {
        benchmark: bench.name,
        title: bench.title,
        mode: quick ? 'quick' : 'full',
        revision,
        machine,
        durationSeconds: durations[bench.name],
        loadAverage: (loads[bench.name] = { before: loadBefore, after: loadAverage() }),
        ...outcome.result,
        targets: outcome.targets,
      });
      targets.push(...outcome.targets);
      process.stdout.write(`(${durations[bench.name]} s, load average ${loadBefore} -> ${loadAverage()}; ${file})\n`);
    } catch (err) {
      durations[bench.name] = Math.round((performance.now() - t0) / 100) / 10;
      crashed.push(bench.name);
      process.stdout.write(`\n${bench.name} CRASHED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      targets.push({ benchmark: bench.name, target: bench.title, measured: 'crashed', met: null });
    } finally {
      const leftover = liveChildren();
      if (leftover > 0) process.stdout.write(`(${bench.name} left ${leftover} child processes; killed)\n`);
      killAll();
    }
  }
  const totalSeconds = Math.round((performance.now() - started) / 100) / 10;
  heading(`Summary (${quick ? 'quick' : 'full'} run, ${totalSeconds} s)`);
  process.stdout.write(
    table(
      ['benchmark', 'target', 'measured', 'met'],
      targets.map((t) => [t.benchmark, t.target, t.measured, t.met === null ? 'n/a' : t.met ? 'yes' : 'NO']),
    ) + '\n',
  );
  process.stdout.write(
    `Targets are informational: figures are measured on this machine (${machine.cores} cores, load average ${machine.loadAverage} at the start), never asserted.\n`,
  );
  writeResult('summary', { mode: quick ? 'quick' : 'full', revision, machine, totalSeconds, durations, loads, crashed, targets });
  process.exitCode = crashed.length > 0 ? 1 : 0;
}

process.on('exit', () => killAll());
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAll();
    process.stderr.write(`bench: ${signal}, child processes killed\n`);
    process.exit(130);
  });
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
// A handle left open by a dependency must not keep the run alive once everything is reported.
setTimeout(() => process.exit(), 5_000).unref();
