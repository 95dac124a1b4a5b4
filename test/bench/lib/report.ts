// Output of the benchmarks: aligned tables on stdout, one JSON file per benchmark, the machine it ran on.
// Must not judge speed: figures are measured and printed; targets are reported as met or not, never asserted.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../support/harness.js';

/** Where `<name>.json` results go (git-ignored). */
export const RESULTS_DIR = join(REPO_ROOT, 'test/bench/results');

/** The machine and software a result was measured on. */
export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  platform: string;
  redis: string;
  date: string;
  /** 1-minute load average when the run started: other work on the machine skews the figures. */
  loadAverage: number;
}

/** Describes this machine; `redisVersion` comes from INFO server. */
export function machineInfo(redisVersion: string): MachineInfo {
  const cpu = cpus();
  return {
    cpuModel: cpu[0]?.model.trim() ?? 'unknown',
    cores: cpu.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    redis: redisVersion,
    date: new Date().toISOString(),
    loadAverage: loadAverage(),
  };
}

/** The 1-minute load average, rounded (0 where the platform has none). */
export function loadAverage(): number {
  return Math.round((loadavg()[0] ?? 0) * 100) / 100;
}

/** The commit the benchmarks ran on, with `+dirty` when the tree had changes (best effort). */
export function gitRevision(): string {
  try {
    const rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    return dirty === '' ? rev : `${rev}+dirty`;
  } catch {
    return 'unknown';
  }
}

/** A target of the issue and whether this run met it (informational). */
export interface TargetCheck {
  benchmark: string;
  target: string;
  measured: string;
  /** null when the run could not tell (e.g. the benchmark crashed or the figure does not apply). */
  met: boolean | null;
}

/** Renders rows as an aligned text table; the first column is left-aligned, the others right-aligned. */
export function table(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cells = [headers.map(String), ...rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(cells[0] ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

/** Integers with thousands separators; other numbers with up to 3 significant decimals. */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  const abs = Math.abs(n);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** `0.953` -> `95.3%`. */
export function percent(ratio: number, digits = 1): string {
  return `${(ratio * 100).toFixed(digits)}%`;
}

/** The p-th percentile (0-100) of the values, nearest-rank; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Writes `results/<name>.json` and returns its path. */
export function writeResult(name: string, doc: Record<string, unknown>): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${name}.json`);
  writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
  return file;
}

/** A section heading on stdout. */
export function heading(text: string): void {
  process.stdout.write(`\n== ${text} ==\n`);
}

/** A line of progress on stderr (so stdout stays the report). */
export function note(text: string): void {
  process.stderr.write(`  .. ${text}\n`);
}
