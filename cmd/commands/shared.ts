// Helpers the commands share: config from env + flags, output that a script can trust (results on stdout, logs and
// progress on stderr, quiet on a closed pipe), a fast Redis reachability check, tables.
// Imports nothing heavy at load time: `--help` and `validate` must start fast, so heavy modules load in actions.
import { createRequire } from 'node:module';
import { editDistance } from '../../src/policy/edit-distance.js';
import { escapeControl } from '../../src/logging/escape.js';
import type { AppConfig, AppConfigInput } from '../../src/config/index.js';
import type { Logger } from '../../src/logging/index.js';

/** The package's own version (package.json sits two levels above dist/cmd/commands/ and under tsx). */
export function packageVersion(): string {
  const require = createRequire(import.meta.url);
  for (const candidate of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = require(candidate) as { name?: string; version?: string };
      if (pkg.name === 'tagwarden' && pkg.version) return pkg.version;
    } catch {
      // try the next layout
    }
  }
  return 'unknown';
}

let resultsWritten = false;

/**
 * Writes results to stdout; nothing once the reader has gone (EPIPE). Control and bidi characters are
 * spelled out (escapeControl; line breaks kept), so no tag key, reason or file name reaches the terminal raw.
 */
export function out(text: string): void {
  resultsWritten = true;
  if (!closed(process.stdout)) process.stdout.write(escapeControl(text, { keepNewlines: true }));
}

/** Writes a message line to stderr (`tagwarden: ...`), control characters spelled out; nothing once stderr is closed. */
export function say(text: string): void {
  if (!closed(process.stderr)) process.stderr.write(`tagwarden: ${escapeControl(text, { keepNewlines: true })}\n`);
}

/** Writes raw text to stderr. */
export function err(text: string): void {
  if (!closed(process.stderr)) process.stderr.write(text);
}

const closedStreams = new WeakSet<NodeJS.WriteStream>();

function closed(stream: NodeJS.WriteStream): boolean {
  return closedStreams.has(stream) || stream.destroyed;
}

/**
 * A reader that closes the pipe (`| head -1`) ends the output quietly: EPIPE marks the stream closed, later
 * writes are dropped, and the command finishes and exits with the code it would have had. Any other write
 * error (stdout on a full disk) closes the stream too and never stops the process (the daemon's logger counts
 * the lines it drops); a command whose results could not be written exits 1, saying so on stderr.
 */
export function guardPipes(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      closedStreams.add(stream);
      if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED' || e.code === 'ECONNRESET') return;
      if (stream === process.stdout && resultsWritten) {
        process.exitCode = 1;
        say(`cannot write results to stdout: ${e.code ?? e.message}`);
      }
    });
  }
}

/** True when the stream can still be flushed. */
export function writable(stream: NodeJS.WriteStream): boolean {
  return !closed(stream);
}

/** Extra TAGWARDEN_* names that are read outside src/config (none today); kept here so the warning stays exact. */
const OTHER_TAGWARDEN_ENV: readonly string[] = [];

/**
 * Loads the config (flags win over the environment); prints every problem and returns undefined when invalid.
 * Warns about TAGWARDEN_* variables no setting reads, with the nearest known name.
 * `cliDefaults` apply where neither a flag nor the environment sets a value (e.g. a quieter log level).
 */
export async function configOrExit(
  overrides: Partial<AppConfigInput>,
  env: NodeJS.ProcessEnv = process.env,
  cliDefaults: Partial<AppConfigInput> = {},
): Promise<AppConfig | undefined> {
  const { CONFIG_ENV_NAMES, loadConfig, envNameOf } = await import('../../src/config/index.js');
  warnUnknownEnv(env, [...CONFIG_ENV_NAMES, ...OTHER_TAGWARDEN_ENV]);
  const defaults = Object.fromEntries(
    Object.entries(cliDefaults).filter(([key, v]) => {
      const name = envNameOf(key);
      return v !== undefined && (name === undefined || env[name] === undefined || env[name] === '');
    }),
  );
  return unlessConfigInvalid(async () => loadConfig(env, { ...defaults, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) }));
}

/**
 * Runs `run`; a configuration error (CONFIG_INVALID) is said on stderr and sets exit code 1, and the result is
 * undefined. Any other error is rethrown.
 */
export async function unlessConfigInvalid<T>(run: () => Promise<T>): Promise<T | undefined> {
  try {
    return await run();
  } catch (e) {
    const { TagwardenError } = await import('../../src/errors.js');
    if (!(e instanceof TagwardenError) || e.code !== 'CONFIG_INVALID') throw e;
    say(e.message);
    process.exitCode = 1;
    return undefined;
  }
}

/** One stderr line per member account a run skipped (its role could not be assumed). */
export function saySkippedAccounts(accounts: ReadonlyArray<{ account: string; status: string; reason?: string | undefined }>): void {
  for (const a of accounts) if (a.status === 'skipped') say(`account ${a.account} skipped: ${a.reason ?? 'role not assumed'}`);
}

/** Warns once per unknown TAGWARDEN_* variable, naming the known variable it most likely meant. */
export function warnUnknownEnv(env: NodeJS.ProcessEnv, known: readonly string[]): void {
  const names = new Set(known);
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('TAGWARDEN_') || names.has(name)) continue;
    const guess = nearest(name, known);
    say(`warning: ${name} is not a tagwarden setting and is ignored${guess ? `; did you mean ${guess}?` : ''}`);
  }
}

function nearest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(name, candidate);
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  // Close enough to be a typo: a few edits, relative to the part after the prefix.
  return best !== undefined && bestDistance <= Math.max(2, Math.floor((name.length - 'TAGWARDEN_'.length) / 3)) ? best : undefined;
}

/** The CLI's logger: JSON lines on stderr (stdout is for results), redacted like the daemon's. */
export async function cliLogger(config: AppConfig): Promise<Logger> {
  const { createLogger } = await import('../../src/logging/index.js');
  return createLogger({ level: config.logLevel, secrets: config.secrets, stream: process.stderr, base: { service: 'tagwarden' } });
}

/** A Redis URL as it may be shown: user kept, password removed, and whether one was removed. */
export function shownRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    const hidden = u.password !== '';
    u.password = '';
    const shown = u.toString().replace(/\/$/, '').replace(/\/\/@/, '//');
    return hidden ? `${shown} (password hidden)` : shown;
  } catch {
    return 'the configured REDIS_URL';
  }
}

/**
 * Exits once what was written to stdout and stderr has reached the OS: writes to a pipe are asynchronous, and
 * process.exit() drops what is still queued (a `validate --json | jq` would read truncated JSON). Bounded, so a
 * reader that stopped reading cannot keep the process alive; a closed pipe is not waited for.
 */
export async function exitAfterFlush(code: number): Promise<never> {
  const flushed = (stream: NodeJS.WriteStream) =>
    writable(stream) ? new Promise<void>((resolve) => stream.write('', () => resolve())) : Promise.resolve();
  const bound = new Promise<void>((resolve) => setTimeout(resolve, 5_000).unref());
  await Promise.race([Promise.all([flushed(process.stdout), flushed(process.stderr)]), bound]);
  // A write failure found while flushing (results to a full disk) turns success into 1.
  process.exit(code === 0 && typeof process.exitCode === 'number' ? process.exitCode : code);
}

/** How long Redis may stay unanswering during a command before the command gives up (exit 1). */
export const REDIS_LOST_AFTER_MS = 3_000;

/**
 * Checks within a few seconds that Redis answers; otherwise prints `cannot reach Redis at URL (password hidden)`
 * with the reason and sets exit code 1. Commands call it before they open their long-lived connections, which
 * would otherwise wait for Redis forever. Once it answers, a watchdog keeps pinging it for the rest of the
 * command (see watchRedis): Redis lost mid-command ends the command within a few seconds the same way.
 */
export async function redisReachable(url: string, timeoutMs = 3_000): Promise<boolean> {
  const started = Date.now();
  let problem = '';
  for (;;) {
    problem = await tcpProblem(url, Math.min(2_000, timeoutMs));
    if (!problem) problem = await redisProblem(url, Math.min(2_000, timeoutMs));
    if (!problem) {
      watchRedis(url);
      return true;
    }
    if (/NOAUTH|WRONGPASS|invalid password|invalid username|ENOTFOUND/i.test(problem)) break;
    if (Date.now() - started + 500 > timeoutMs) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const { redactString } = await import('../../src/logging/index.js');
  const password = passwordOf(url);
  say(`cannot reach Redis at ${shownRedisUrl(url)}: ${redactString(problem, password ? [password] : [])}`);
  process.exitCode = 1;
  return false;
}

/**
 * Watches Redis for the rest of a command: pings it on a connection of its own twice a second and, when no ping
 * has succeeded for `lostAfterMs` (and several in a row failed: a busy event loop alone never counts), prints
 * `cannot reach Redis at URL (password hidden): lost during the command (reason)` and exits 1. The command's own
 * connections (BullMQ's wait for Redis forever by design, which is right for the daemon) would hang instead.
 * Timers and socket are unref'd: the watchdog never keeps a finished command alive.
 */
export function watchRedis(url: string, lostAfterMs = REDIS_LOST_AFTER_MS): void {
  void (async () => {
    const { Redis } = await import('ioredis');
    const redis = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      connectTimeout: 1_000,
      // A loaded machine may answer a ping late; a dead or unreachable server fails it at once.
      commandTimeout: 2_000,
      connectionName: 'tagwarden-cli-watchdog',
      retryStrategy: () => 250,
    });
    let reason = '';
    redis.on('error', (e: Error & { code?: string }) => {
      reason = e.code ?? e.message;
    });
    let lastOk = Date.now();
    let failures = 0;
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      redis
        .ping()
        .then(() => {
          lastOk = Date.now();
          failures = 0;
        })
        .catch(async (e: unknown) => {
          failures += 1;
          if (failures < 3 || Date.now() - lastOk < lostAfterMs) return;
          clearInterval(timer);
          const { redactString } = await import('../../src/logging/index.js');
          const password = passwordOf(url);
          const why = reason || (e instanceof Error ? e.message : String(e));
          say(`cannot reach Redis at ${shownRedisUrl(url)}: lost during the command (${redactString(why, password ? [password] : [])}); stopped, run it again once Redis answers`);
          redis.disconnect();
          await exitAfterFlush(1);
        })
        .finally(() => {
          busy = false;
        });
    }, 500);
    timer.unref();
    redis.connect().then(
      () => (redis as unknown as { stream?: { unref?: () => void } }).stream?.unref?.(),
      () => undefined,
    );
  })();
}

/** Why a TCP connection to the URL's host and port fails (ECONNREFUSED, ENOTFOUND, a timeout), or ''. */
async function tcpProblem(url: string, timeoutMs: number): Promise<string> {
  let host = '127.0.0.1';
  let port = 6379;
  try {
    const u = new URL(url);
    host = u.hostname.replace(/^\[|\]$/g, '') || host;
    port = u.port ? Number(u.port) : port;
  } catch {
    return 'REDIS_URL is not a URL';
  }
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(`connect timed out after ${timeoutMs} ms (${host}:${port})`);
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve('');
    });
    socket.once('error', (e: Error) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(e.message);
    });
  });
}

/** Why Redis itself refuses (a wrong password, TLS, not Redis), or ''. */
async function redisProblem(url: string, timeoutMs: number): Promise<string> {
  const { Redis } = await import('ioredis');
  let socketError = '';
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: timeoutMs, retryStrategy: () => null });
  redis.on('error', (e: Error) => {
    socketError = e.message;
  });
  try {
    await redis.connect();
    await redis.ping();
    return '';
  } catch (e) {
    return socketError || (e instanceof Error ? e.message : String(e));
  } finally {
    redis.disconnect();
  }
}

function passwordOf(url: string): string | undefined {
  try {
    const p = decodeURIComponent(new URL(url).password);
    return p || undefined;
  } catch {
    return undefined;
  }
}

/** Collects a repeatable option into an array. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)];
}

export interface Progress {
  /** The current state; shown live on a terminal, at most every `intervalMs` otherwise. */
  update(text: string): void;
  /** Clears the live line (terminal) or prints the last state (otherwise, when something was shown). */
  done(): void;
}

/**
 * Progress on stderr: a live line on a terminal, a periodic line otherwise (logs, CI), never on stdout.
 */
export function createProgress(options: { intervalMs?: number; tty?: boolean } = {}): Progress {
  const tty = options.tty ?? process.stderr.isTTY === true;
  const intervalMs = options.intervalMs ?? 10_000;
  const started = Date.now();
  let lastShown = started;
  let last = '';
  let shown = false;
  const elapsed = () => `${Math.round((Date.now() - started) / 1000)}s`;
  return {
    update(text) {
      text = escapeControl(text);
      last = text;
      if (tty) {
        err(`\r\x1b[2K${text}`);
        shown = true;
      } else if (Date.now() - lastShown >= intervalMs) {
        lastShown = Date.now();
        shown = true;
        err(`progress (${elapsed()}): ${text}\n`);
      }
    },
    done() {
      if (tty && shown) err('\r\x1b[2K');
      else if (!tty && shown && last) err(`progress (${elapsed()}): ${last}\n`);
    },
  };
}

/** Parses `--progress-interval <seconds>`. */
export function progressIntervalMs(seconds: string | undefined): number | undefined {
  if (seconds === undefined) return undefined;
  const n = Number(seconds);
  return Number.isFinite(n) && n >= 0 ? n * 1000 : undefined;
}

/** Renders rows as an aligned text table: the first column left-aligned, the others right-aligned. */
export function table(headers: string[], rows: Array<Array<string | number>>): string {
  // A cell is one line of plain text: a control character in a key or reason must not break the columns.
  const cells = [headers, ...rows.map((r) => r.map((c) => escapeControl(String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ').trimEnd())
    .join('\n');
}

/** `n word(s)`, with thousands separators. */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? word : many}`;
}
