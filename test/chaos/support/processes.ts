// Every process the chaos suite starts, in one registry: so each is stopped (also when a test fails) and
// every line any of them printed can be searched for secrets at the end of the suite.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, CRASH_DAEMON, daemonPort, spawnScript, spawnTagwarden, type TagwardenProcess } from '../../support/harness.js';

/** A process started by the suite, with everything it printed. */
export interface TrackedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const processes: TrackedProcess[] = [];
/** Bodies of every /metrics answer the suite read. */
const metricsTexts: Array<{ process: string; text: string }> = [];
/** Processes killed for printing more than MAX_OUTPUT_BYTES (a log flood would exhaust the runner's memory). */
const floods: string[] = [];
const MAX_OUTPUT_BYTES = 100 * 1024 * 1024;

// The pids of the processes still running, in a file a detached reaper reads: should this test process die without
// running its hooks (a fatal out-of-memory, a SIGKILL), the reaper kills them, so no daemon outlives the suite.
const reaperDir = mkdtempSync(join(tmpdir(), 'tw-chaos-reaper-'));
const pidFile = join(reaperDir, 'pids');
writeFileSync(pidFile, '');
let reaperStarted = false;

function writePids(): void {
  writeFileSync(pidFile, processes.filter(isRunning).map((p) => `${p.child.pid ?? ''}\n`).join(''));
}

function startReaper(): void {
  if (reaperStarted) return;
  reaperStarted = true;
  const script = [
    `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done`,
    `for p in $(cat '${pidFile}'); do grep -qaE 'tagwarden|redis-server' /proc/$p/cmdline 2>/dev/null && kill -9 $p; done`,
    `rm -rf '${reaperDir}'`,
  ].join('; ');
  spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' }).unref();
}

/** Adds a process to the registry. */
export function track(proc: TrackedProcess): TrackedProcess {
  processes.push(proc);
  startReaper();
  writePids();
  void proc.exited.then(writePids);
  let bytes = 0;
  const count = (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > MAX_OUTPUT_BYTES && isRunning(proc)) {
      floods.push(`${proc.name} printed more than ${MAX_OUTPUT_BYTES} bytes; last lines:\n${proc.lines.slice(-5).join('\n').slice(0, 2_000)}`);
      proc.child.kill('SIGKILL');
    }
  };
  proc.child.stdout?.on('data', count);
  proc.child.stderr?.on('data', count);
  return proc;
}

/** Processes killed for flooding their output. */
export function outputFloods(): readonly string[] {
  return floods;
}

/** Remembers a /metrics body, for the secret search. */
export function recordMetrics(processName: string, text: string): void {
  metricsTexts.push({ process: processName, text });
}

/** Every line every tracked process printed, and every /metrics body read. */
export function everythingPrinted(): Array<{ source: string; text: string }> {
  return [
    ...processes.flatMap((p) => p.lines.map((text) => ({ source: p.name, text }))),
    ...metricsTexts.map((m) => ({ source: `${m.process} /metrics`, text: m.text })),
  ];
}

export function processCount(): number {
  return processes.length;
}

export function isRunning(proc: TrackedProcess): boolean {
  return proc.child.exitCode === null && proc.child.signalCode === null;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export async function stopProcess(proc: TrackedProcess, graceMs = 15_000): Promise<void> {
  if (!isRunning(proc)) return;
  proc.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    proc.exited.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), graceMs);
    }),
  ]);
  clearTimeout(timer);
  if (timedOut && isRunning(proc)) {
    proc.child.kill('SIGKILL');
    await proc.exited;
  }
}

/** Stops every tracked process still running (in parallel). */
export async function stopAll(): Promise<void> {
  await Promise.all(processes.filter(isRunning).map((p) => stopProcess(p, 5_000)));
}

// A worker that dies without its hooks must not leave daemons or Redis servers behind.
process.once('exit', () => {
  for (const p of processes) if (isRunning(p)) p.child.kill('SIGKILL');
});

/** A spawned `tagwarden run` daemon with its HTTP port. */
export interface Daemon extends TrackedProcess {
  readonly port: number;
  readonly url: string;
  readonly proc: TagwardenProcess;
}

let daemonSeq = 0;

/** Spawns `tagwarden run --policies DIR` and waits until its HTTP server listens. */
export async function startDaemon(label: string, policiesDir: string, env: NodeJS.ProcessEnv): Promise<Daemon> {
  const proc = spawnTagwarden(['run', '--policies', policiesDir], env);
  const name = `${label}#${++daemonSeq}`;
  track({ name, child: proc.child, lines: proc.lines, exited: proc.exited });
  const port = await daemonPort(proc, 60_000);
  return { name, child: proc.child, lines: proc.lines, exited: proc.exited, port, url: `http://127.0.0.1:${port}`, proc };
}

/**
 * Spawns the crash-test daemon (test/support/crash-daemon.ts): it reports each scan write point and, with
 * `crashBefore`, SIGKILLs itself just before that write. Resolves once it listens.
 */
export async function startCrashDaemon(label: string, env: NodeJS.ProcessEnv, crashBefore?: string): Promise<Daemon> {
  const proc = spawnScript(CRASH_DAEMON, [], { ...env, ...(crashBefore === undefined ? {} : { TW_TEST_CRASH_BEFORE: crashBefore }) });
  const name = `${label}#${++daemonSeq}`;
  track({ name, child: proc.child, lines: proc.lines, exited: proc.exited });
  // A daemon told to crash may be gone before it says where it listens: port 0 then.
  const port = await daemonPort(proc, 60_000).catch((err: unknown) => {
    if (crashBefore !== undefined && !isRunning({ name, child: proc.child, lines: proc.lines, exited: proc.exited })) return 0;
    throw err;
  });
  return { name, child: proc.child, lines: proc.lines, exited: proc.exited, port, url: `http://127.0.0.1:${port}`, proc };
}

/** The scan write points a crash-test daemon reported, in order. */
export function reportedWritePoints(daemon: Daemon): string[] {
  return daemon.lines.filter((l) => l.includes('"message":"scan write point"')).map((l) => (JSON.parse(l) as { point: string }).point);
}

/** Runs a short-lived tagwarden command (e.g. validate) to its end; stdout and stderr kept apart. */
export async function runTagwarden(
  label: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 120_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const lines: string[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => {
      lines.push(...Buffer.concat(out).toString('utf8').split('\n'), ...Buffer.concat(err).toString('utf8').split('\n'));
      resolve({ code, signal });
    });
  });
  track({ name: `${label}#${++daemonSeq}`, child, lines, exited });
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([
    exited,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${label} did not exit within ${timeoutMs} ms`)), timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
  return { ...result, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

/** GET a daemon's /metrics and remember the body for the secret search. */
export async function scrapeMetrics(daemon: Daemon): Promise<string> {
  const res = await fetch(`${daemon.url}/metrics`);
  const text = await res.text();
  recordMetrics(daemon.name, text);
  if (res.status !== 200) throw new Error(`${daemon.name} /metrics answered ${res.status}`);
  return text;
}
