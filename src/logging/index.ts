// Owns the winston logger: JSON lines to stdout, child scopes, secret redaction and the audit trail.
// Must not decide what to log: callers log constant messages with their variables as fields.
import winston from 'winston';
import { Writable } from 'node:stream';
import { escapeControl } from './escape.js';

export { escapeControl } from './escape.js';

export type Logger = winston.Logger;

const MESSAGE = Symbol.for('message');

const SECRET_FIELD = /secret|password|passwd|token|authorization|signature|credential|cookie/i;
/** Fields whose names look secret but whose values are safe, known identifiers. */
const SAFE_FIELDS = new Set(['clientToken', 'tokenSet', 'nextToken', 'signatureVersion']);
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/)([^:@/\s]*):([^@/\s]+)@/gi;
const BEARER = /\b(Bearer|ACS3-HMAC-SHA256)\s+[^\s"',]+/g;
const REDACTED = '[REDACTED]';

/** Replaces every secret value, URL password and Authorization value in a string. */
export function redactString(text: string, secrets: readonly string[]): string {
  let out = text;
  // Cheap checks first: most strings (IDs, keys, codes) hold neither a URL with a user nor a credential.
  if (out.includes('@') && out.includes('://')) out = out.replace(URL_PASSWORD, `$1$2:${REDACTED}@`);
  if (out.includes('Bearer') || out.includes('ACS3-HMAC-SHA256')) out = out.replace(BEARER, `$1 ${REDACTED}`);
  for (const secret of secrets) if (secret && out.includes(secret)) out = out.split(secret).join(REDACTED);
  return out;
}

/** Deep copy of a log record with secret-named fields and secret values removed. */
export function redactValue(value: unknown, secrets: readonly string[], depth = 0): unknown {
  if (typeof value === 'string') return redactString(value, secrets);
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    return { name: value.name, message: redactString(value.message, secrets), code: (value as { code?: unknown }).code };
  }
  if (Array.isArray(value)) return value.map((v) => redactValue(v, secrets, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = SECRET_FIELD.test(key) && !SAFE_FIELDS.has(key) && inner !== undefined && inner !== null && inner !== ''
      ? REDACTED
      : redactValue(inner, secrets, depth + 1);
  }
  return out;
}

export interface LoggerOptions {
  level: string;
  /** Secret values to scrub wherever they appear. */
  secrets: readonly string[];
  /** Where JSON lines go; stdout by default. */
  stream?: NodeJS.WritableStream;
  /** Fields on every line, e.g. { replica }. */
  base?: Record<string, unknown>;
}

let droppedLines = 0;

/** Log lines that could not be written since the process started (tagwarden_log_lines_dropped_total). */
export function logLinesDropped(): number {
  return droppedLines;
}

/** Lines are dropped rather than buffered without bound while the destination does not keep up. */
const MAX_PENDING_BYTES = 16 * 1024 * 1024;

/**
 * A stream in front of the real destination that never fails: a write error (stdout on a full disk, a closed
 * pipe) marks the line dropped instead of raising an unhandled `error` event that would stop the daemon, and
 * while the destination holds more than 16 MB unwritten, new lines are dropped too. Every drop is counted.
 */
export function createSafeStream(target: NodeJS.WritableStream): Writable {
  let broken = false;
  // An `error` listener on the destination keeps Node from throwing it; the failed line is counted below.
  target.on('error', () => {
    broken = true;
  });
  const pending = () => (target as { writableLength?: number }).writableLength ?? 0;
  return new Writable({
    write(chunk: Buffer | string, _enc, done) {
      const lines = Math.max(1, String(chunk).split('\n').length - 1);
      if (broken || (target as { destroyed?: boolean }).destroyed || pending() > MAX_PENDING_BYTES) {
        droppedLines += lines;
        done();
        return;
      }
      try {
        target.write(chunk, (err?: Error | null) => {
          if (err) droppedLines += lines;
        });
      } catch {
        droppedLines += lines;
      }
      done();
    },
  });
}

const safeStreams = new WeakMap<NodeJS.WritableStream, Writable>();
function safeStreamFor(target: NodeJS.WritableStream): Writable {
  let safe = safeStreams.get(target);
  if (!safe) {
    safe = createSafeStream(target);
    safeStreams.set(target, safe);
  }
  return safe;
}

/**
 * Fields of a record whose values were validated against a strict format before they were logged (IDs, regions,
 * names, numbers, flags): redaction skips them. Set by `audit`, under a symbol, so it never reaches the line.
 */
const KNOWN_SAFE = Symbol('tagwarden.knownSafe');

/** One JSON serialisation per line: the native one, and logform's safe one only for what it cannot write. */
const fastJson = winston.format((info) => {
  let line: string;
  try {
    line = JSON.stringify(info);
  } catch {
    return winston.format.json().transform(info) as typeof info;
  }
  (info as Record<symbol, unknown>)[MESSAGE] = line;
  return info;
});

/** Creates the process logger. Every record passes through redaction before it is written. */
export function createLogger(options: LoggerOptions): Logger {
  const secrets = options.secrets;
  const redact = winston.format((info) => {
    const safe = (info as Record<symbol, unknown>)[KNOWN_SAFE] as ReadonlyMap<string, 'skip' | 'resourceKeys'> | undefined;
    for (const key of Object.keys(info)) {
      const how = safe?.get(key);
      if (how === 'skip') continue;
      const value = info[key];
      if (how === 'resourceKeys' && value && typeof value === 'object') {
        // { [validated resource ID]: { outcome, keys } }: only the keys came from outside.
        for (const r of Object.values(value as Record<string, { keys?: unknown }>)) {
          if (Array.isArray(r.keys)) r.keys = r.keys.map((k: unknown) => (typeof k === 'string' ? redactString(k, secrets) : k));
        }
        continue;
      }
      info[key] = SECRET_FIELD.test(key) && !SAFE_FIELDS.has(key) && value ? REDACTED : redactValue(value, secrets);
    }
    return info;
  });
  // JSON escapes C0 controls itself; DEL, C1 and bidi characters it leaves raw, so the serialized line is
  // escaped too (inside JSON strings \uXXXX keeps the value, so the line stays valid and means the same).
  const escape = winston.format((info) => {
    const line = info[MESSAGE];
    if (typeof line === 'string') info[MESSAGE] = escapeControl(line);
    return info;
  });
  return winston.createLogger({
    level: options.level,
    defaultMeta: options.base ?? {},
    format: winston.format.combine(winston.format.errors({ stack: false }), redact(), winston.format.timestamp(), fastJson(), escape()),
    transports: [new winston.transports.Stream({ stream: safeStreamFor(options.stream ?? process.stdout) })],
  });
}

/** A logger that collects JSON lines in memory: for tests that grep what was logged. */
export function createMemoryLogger(options: Omit<LoggerOptions, 'stream'>): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: createLogger({ ...options, stream }), lines };
}

/** Per-resource result of a batch, as written to the audit trail. */
export type ResourceOutcome = 'removed' | 'not_found' | 'failed' | 'dry_run' | 'nothing_to_remove';

export interface AuditEvent {
  policy: string;
  region: string;
  batchId: string;
  clientToken: string;
  resourceIds: readonly string[];
  tagKeys: readonly string[];
  all: boolean;
  dryRun: boolean;
  attempt: number;
  requestId?: string;
  outcome: 'succeeded' | 'failed' | 'dry_run' | 'not_found';
  reason?: string;
  resources: Readonly<Record<string, { outcome: ResourceOutcome; keys: readonly string[] }>>;
}

/**
 * Fields of an audit record validated before it is written (the job schema's formats for IDs, region, policy
 * name and token; booleans, numbers, enums), which redaction skips. Tag keys, the reason, the request ID and
 * the per-resource keys still pass it (they come from outside).
 */
const AUDIT_SAFE: ReadonlyMap<string, 'skip' | 'resourceKeys'> = new Map([
  ...['audit', 'policy', 'region', 'batchId', 'clientToken', 'resourceIds', 'all', 'dryRun', 'attempt', 'outcome'].map((k) => [k, 'skip'] as const),
  ['resources', 'resourceKeys'] as const,
]);

/** Writes one audit record per batch outcome; audit lines carry `audit: true` for log routing. */
export function audit(logger: Logger, event: AuditEvent): void {
  if (!logger.isInfoEnabled()) return;
  // A copy of the resources map, since redaction rewrites its keys lists in place.
  const resources: Record<string, { outcome: ResourceOutcome; keys: readonly string[] }> = {};
  for (const [id, r] of Object.entries(event.resources)) resources[id] = { outcome: r.outcome, keys: r.keys };
  const record: Record<string | symbol, unknown> = { audit: true, ...event, resources };
  record[KNOWN_SAFE] = AUDIT_SAFE;
  logger.info('batch outcome', record);
}
