// Child processes of the benchmarks: the emulator and raw BullMQ workers as separate processes, tagwarden CLI
// processes, peak memory of a child. Every child is tracked and killed when the run ends, also on errors.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomUUID } from 'node:crypto';
import type { EmulatorOptions } from '../../../src/emulator/index.js';
import { spawnTagwarden, type TagwardenProcess } from '../../support/harness.js';

const live = new Set<ChildProcess>();

/** Tracks a child so `killAll` ends it; returns it. */
export function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Kills every tracked child still running (SIGKILL, by pid). Synchronous, so it also works in an exit handler. */
export function killAll(): number {
  let killed = 0;
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGKILL');
        killed += 1;
      } catch {
        // already gone
      }
    }
  }
  live.clear();
  return killed;
}

/** Children still running. */
export function liveChildren(): number {
  return [...live].filter((c) => c.exitCode === null && c.signalCode === null).length;
}

function exitOf(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the child has exited. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exitOf(child);
  clearTimeout(timer);
}

/** The compiled sibling of a file in this folder (benchmarks run from dist/). */
function sibling(name: string): string {
  return join(import.meta.dirname, name);
}

/** Reads VmRSS / VmHWM (KiB) of a running process from /proc; undefined when unavailable. */
export function procMemory(pid: number): { rssKb: number; hwmKb: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+)/.exec(status)?.[1];
    const hwm = /VmHWM:\s+(\d+)/.exec(status)?.[1];
    if (rss === undefined || hwm === undefined) return undefined;
    return { rssKb: Number(rss), hwmKb: Number(hwm) };
  } catch {
    return undefined;
  }
}

export interface ChildEmulator {
  url: string;
  pid: number;
  /** Peak resident memory of the emulator process so far (KiB), when /proc is readable. */
  memory(): { rssKb: number; hwmKb: number } | undefined;
  close(): Promise<void>;
}

/**
 * Starts the emulator in its own process (startEmulator with these options), so its CPU and memory are not
 * the measured process's. The child exits when this process goes away (IPC disconnect).
 */
export async function spawnEmulator(options: EmulatorOptions, timeoutMs = 300_000): Promise<ChildEmulator> {
  const child = track(
    spawn(process.execPath, [sibling('emulator-child.js')], {
      env: { PATH: process.env.PATH ?? '', TW_BENCH_EMULATOR_OPTIONS: JSON.stringify(options) },
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    }),
  );
  const url = await new Promise<string>((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error(`emulator did not start within ${timeoutMs} ms`)), timeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const match = /^listening (\S+)$/m.exec(buffer);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`emulator exited before listening (code ${String(code)}, signal ${String(signal)})`));
    });
  });
  const pid = child.pid ?? 0;
  return { url, pid, memory: () => procMemory(pid), close: () => stopChild(child, 5_000) };
}

/** Spawns a tagwarden CLI process (see harness.spawnTagwarden) and tracks it. */
export function spawnTracked(args: string[], env: NodeJS.ProcessEnv, nodeArgs: string[] = []): TagwardenProcess {
  const proc = spawnTagwarden(args, nodeArgs.length > 0 ? { ...env, NODE_OPTIONS: nodeArgs.join(' ') } : env);
  track(proc.child);
  return proc;
}

/** Node options that make a child write its peak RSS (process.resourceUsage().maxRSS, KiB) to a file at exit. */
export function peakRssProbe(): { nodeArgs: string[]; env: Record<string, string>; read(): number | undefined } {
  const file = join(tmpdir(), `tw-bench-rss-${randomUUID().slice(0, 8)}.json`);
  return {
    nodeArgs: [`--import=${pathToFileURL(sibling('rss-probe.js')).href}`],
    env: { TW_BENCH_RSS_FILE: file },
    read() {
      if (!existsSync(file)) return undefined;
      const value = (JSON.parse(readFileSync(file, 'utf8')) as { maxRssKb?: number }).maxRssKb;
      rmSync(file, { force: true });
      return value;
    },
  };
}

export interface RawWorker {
  pid: number;
  close(): Promise<void>;
}

/** A BullMQ Worker with an empty processor in its own process, on `queue` under `prefix`. */
export async function spawnRawWorker(options: { redisUrl: string; prefix: string; queue: string; concurrency: number }): Promise<RawWorker> {
  const child = track(
    spawn(process.execPath, [sibling('raw-worker-child.js')], {
      env: { PATH: process.env.PATH ?? '', TW_BENCH_RAW_WORKER: JSON.stringify(options) },
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    }),
  );
  await new Promise<void>((resolve, reject) => {
    let buffer = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      if (buffer.includes('running')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`raw worker exited early (code ${String(code)})`)));
  });
  return { pid: child.pid ?? 0, close: () => stopChild(child, 10_000) };
}
