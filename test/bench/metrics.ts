// `npm run bench -- --only metrics`: a daemon with 10,000 policies (quick: 1,000), each in one of three regions:
// how long GET /metrics takes, how many series it serves and the daemon's RSS. Floors measured in the same run:
// rendering the same number of series from a bare prom-client registry in this process (what serving that many
// series costs at least), and the RSS of an idle `node` process. Measured, never asserted.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Counter, Registry } from 'prom-client';
import { stringify } from 'yaml';
import { createServer } from 'node:net';
import { eventually, tagwardenEnv } from '../support/harness.js';
import { HUGE_QUOTAS, quotaEnv, withPrefix, type Benchmark } from './lib/context.js';
import { peakRssProbe, procMemory, spawnEmulator, spawnTracked, stopChild, track } from './lib/processes.js';
import { heading, median, note, table, type TargetCheck } from './lib/report.js';

const REGIONS = ['cn-hangzhou', 'cn-shanghai', 'cn-beijing'];
const PER_FILE = 100;

function writeManyPolicies(count: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'tw-bench-metrics-'));
  for (let f = 0; f * PER_FILE < count; f++) {
    const docs: string[] = [];
    for (let i = f * PER_FILE; i < Math.min(count, (f + 1) * PER_FILE); i++) {
      docs.push(
        stringify({
          apiVersion: 'tagwarden/v1', kind: 'TagPolicy', metadata: { name: `bench-policy-${i}` },
          // A yearly cron: loaded and scheduled, never run during the measurement.
          spec: { resourceType: 'PeerConnection', regions: [REGIONS[i % REGIONS.length]], remove: { keys: [`tmp-${i}`] }, schedule: { cron: '0 3 1 1 *' } },
        }),
      );
    }
    writeFileSync(join(dir, `policies-${String(f).padStart(4, '0')}.yaml`), docs.join('---\n'));
  }
  return dir;
}

/** A port free now (the daemon logs at warn, so its `http listening` line is not there to read). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** ms to render `series` series from a bare registry: the floor of serving that many. */
async function renderFloor(series: number): Promise<number> {
  const registry = new Registry();
  const counters = Array.from({ length: 10 }, (_, i) => new Counter({ name: `floor_metric_${i}_total`, help: 'floor', labelNames: ['policy', 'region'], registers: [registry] }));
  for (let s = 0; s < series; s++) counters[s % 10]!.inc({ policy: `bench-policy-${Math.floor(s / 10)}`, region: REGIONS[s % 3]! }, 0);
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await registry.metrics();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** Peak RSS (KiB) of an idle node process: the floor of any daemon's memory. */
async function idleNodeRssKb(): Promise<number> {
  const child = track(spawn(process.execPath, ['-e', 'setTimeout(() => {}, 2000)'], { stdio: 'ignore' }));
  await new Promise((r) => setTimeout(r, 1000));
  const kb = procMemory(child.pid ?? 0)?.rssKb ?? 0;
  await stopChild(child, 2_000);
  return kb;
}

export const metricsBenchmark: Benchmark = {
  name: 'metrics',
  title: '/metrics and RSS with 10,000 policies',
  async run({ quick, redisUrl }) {
    const count = quick ? 1_000 : 10_000;
    heading(`metrics: a daemon with ${count.toLocaleString('en-US')} policies (one region each of ${REGIONS.length})`);
    const dir = writeManyPolicies(count);
    const emulator = await spawnEmulator({ quotas: HUGE_QUOTAS, maxCallLog: 1_000, generate: { count: 30, seed: 1, regions: REGIONS } });
    try {
      return await withPrefix('metrics', redisUrl, async (prefix) => {
        const probe = peakRssProbe();
        const port = await freePort();
        const started = performance.now();
        const daemon = spawnTracked(
          ['run'],
          { ...tagwardenEnv({ emulatorUrl: emulator.url, prefix, redisUrl, regions: REGIONS, extra: { TAGWARDEN_POLICIES_DIR: dir, TAGWARDEN_LOG_LEVEL: 'warn', TAGWARDEN_HTTP_PORT: String(port), ...quotaEnv(HUGE_QUOTAS) } }), ...probe.env },
          probe.nodeArgs,
        );
        try {
          const url = `http://127.0.0.1:${port}/metrics`;
          let text = '';
          await eventually(async () => {
            if (daemon.child.exitCode !== null) throw new Error(`daemon exited: ${daemon.lines.slice(-5).join(' | ')}`);
            const res = await fetch(url);
            text = await res.text();
            return res.status === 200 && new RegExp(`^tagwarden_policies_loaded ${count}$`, 'm').test(text) ? true : undefined;
          }, quick ? 120_000 : 600_000, 500);
          const loadSeconds = (performance.now() - started) / 1000;
          const times: number[] = [];
          const statuses: number[] = [];
          for (let i = 0; i < (quick ? 5 : 10); i++) {
            const t0 = performance.now();
            const res = await fetch(url);
            text = await res.text();
            times.push(performance.now() - t0);
            statuses.push(res.status);
          }
          const series = text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
          const policySeries = text.split('\n').filter((l) => l.includes('policy="bench-policy-')).length;
          const rssKb = procMemory(daemon.child.pid ?? 0)?.rssKb ?? 0;
          daemon.child.kill('SIGTERM');
          await daemon.exited;
          const peakKb = probe.read() ?? rssKb;
          const floorMs = await renderFloor(series);
          const idleKb = await idleNodeRssKb();
          const medianMs = median(times);
          const maxMs = Math.max(...times);
          process.stdout.write(
            `${table(
              ['policies', 'series', 'series per policy', '/metrics median ms', 'max ms', 'floor ms (bare registry)', 'ratio', 'RSS MB', 'peak RSS MB', 'idle node MB', 'load s'],
              [[count, series, (policySeries / count).toFixed(1), medianMs.toFixed(0), maxMs.toFixed(0), floorMs.toFixed(0), (medianMs / floorMs).toFixed(1), (rssKb / 1024).toFixed(0), (peakKb / 1024).toFixed(0), (idleKb / 1024).toFixed(0), loadSeconds.toFixed(1)]],
            )}\n`,
          );
          note('statuses of the timed scrapes: ' + [...new Set(statuses)].join(', '));
          const targets: TargetCheck[] = quick
            ? []
            : [
                { benchmark: 'metrics', target: '/metrics answers in under 2 s with 10,000 policies', measured: `${maxMs.toFixed(0)} ms (max of ${times.length})`, met: maxMs < 2_000 && statuses.every((s) => s === 200) },
                { benchmark: 'metrics', target: 'daemon under 512 MB RSS with 10,000 policies', measured: `${(peakKb / 1024).toFixed(0)} MB peak`, met: peakKb < 512 * 1024 },
              ];
          return {
            result: { policies: count, series, policySeries, scrapeMs: times, medianMs, maxMs, floorMs, rssKb, peakRssKb: peakKb, idleNodeRssKb: idleKb, loadSeconds, statuses },
            targets,
          };
        } finally {
          if (daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill('SIGKILL');
        }
      });
    } finally {
      await emulator.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
