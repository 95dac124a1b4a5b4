// Separates the SDK's connect timeout from its read timeout. Must not change anything else about a request:
// same host, headers, body, keep-alive pooling; it only decides which timer bounds which phase.
//
// Why: the SDK's HTTP layer (httpx, under @darabonba/typescript) passes `connectTimeout` to `http.request` as
// `timeout`, which Node applies as the socket's idle timeout for the whole exchange. A server that takes
// longer than the connect timeout to answer was therefore cut off at the connect timeout (connect 5000 / read
// 10000: a 6 s answer failed every time), whatever the read timeout said.
//
// It also caps response bodies: the SDK reads a whole body into memory before parsing it, so a 100 MB answer
// (eight at once: over a gigabyte) would be held whole. A body declared or found larger than the cap of the
// call (withResponseLimit) fails as ResponseTooLargeError as soon as the cap is passed; the socket is dropped,
// nothing more is read.
import { AsyncLocalStorage } from 'node:async_hooks';
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import { Transform, type Duplex } from 'node:stream';

interface HttpxOptions {
  readTimeout?: number;
  connectTimeout?: number;
  agent?: http.Agent;
  beforeRequest?: (options: http.RequestOptions) => http.RequestOptions;
  [key: string]: unknown;
}
interface HttpxModule {
  request: (url: string | URL, opts?: HttpxOptions) => Promise<unknown>;
  [PATCHED]?: true;
}
const PATCHED = Symbol.for('tagwarden.httpx.timeouts');

/** Extra idle time beyond the read timeout, so the SDK's own read timer (from connect) always fires first. */
const IDLE_GRACE_MS = 1_000;

function connectTimeoutError(host: string | undefined, ms: number): Error {
  const err = new Error(`ConnectTimeout: no connection to ${host ?? 'the endpoint'} within ${ms} ms`);
  err.name = 'RequestTimeoutError';
  return err;
}

/** Bounds only the connection phase of each new socket by `connectTimeoutMs`. */
function guardConnect(socket: Duplex, connectTimeoutMs: number, host: string | undefined): void {
  const s = socket as Duplex & { connecting?: boolean };
  if (s.connecting !== true) return;
  const timer = setTimeout(() => socket.destroy(connectTimeoutError(host, connectTimeoutMs)), connectTimeoutMs);
  timer.unref();
  const done = (): void => clearTimeout(timer);
  socket.once('connect', done);
  socket.once('close', done);
}

class ConnectTimeoutHttpAgent extends http.Agent {
  constructor(private readonly connectTimeoutMs: number) {
    super({ keepAlive: true });
  }
  override createConnection(options: http.ClientRequestArgs, cb?: (err: Error | null, socket: Duplex) => void): Duplex {
    const socket = (http.Agent.prototype as unknown as { createConnection: (o: unknown, c?: unknown) => Duplex }).createConnection.call(this, options, cb);
    guardConnect(socket, this.connectTimeoutMs, options.host ?? undefined);
    return socket;
  }
}

class ConnectTimeoutHttpsAgent extends https.Agent {
  constructor(private readonly connectTimeoutMs: number) {
    super({ keepAlive: true });
  }
  override createConnection(options: http.ClientRequestArgs, cb?: (err: Error | null, socket: Duplex) => void): Duplex {
    const socket = (https.Agent.prototype as unknown as { createConnection: (o: unknown, c?: unknown) => Duplex }).createConnection.call(this, options, cb);
    guardConnect(socket, this.connectTimeoutMs, options.host ?? undefined);
    return socket;
  }
}

/** A response body over the call's cap; classified as BadResponse. */
export class ResponseTooLargeError extends Error {
  override readonly name = 'ResponseTooLargeError';
  readonly code = 'ERR_RESPONSE_TOO_LARGE';
  constructor(readonly limitBytes: number) {
    super(`the response body is larger than the ${limitBytes}-byte limit (TAGWARDEN_MAX_RESPONSE_BYTES); it was not read`);
  }
}

/** Response bodies above this are refused unread unless configured otherwise: a VpcPeer page is a few hundred KiB. */
export const DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024;

const responseLimit = new AsyncLocalStorage<number>();

/** Runs `call` with every SDK response body it reads capped at `maxBytes`. */
export function withResponseLimit<T>(maxBytes: number, call: () => Promise<T>): Promise<T> {
  return responseLimit.run(maxBytes, call);
}

/**
 * The response as the SDK sees it (status, headers, a readable body), with the body counted: over `limit`
 * bytes (declared by content-length, or as it streams in) it fails and the connection is dropped.
 */
function bounded(res: http.IncomingMessage, limit: number): http.IncomingMessage {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    res.destroy();
    throw new ResponseTooLargeError(limit);
  }
  let seen = 0;
  const body = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > limit) {
        res.destroy();
        done(new ResponseTooLargeError(limit));
        return;
      }
      done(null, chunk);
    },
  });
  res.on('error', (err) => body.destroy(err));
  res.pipe(body);
  return Object.assign(body, { statusCode: res.statusCode, statusMessage: res.statusMessage, headers: res.headers, rawHeaders: res.rawHeaders, req: (res as unknown as { req?: unknown }).req, socket: res.socket }) as unknown as http.IncomingMessage;
}

const agents = new Map<string, http.Agent>();
function agentFor(secure: boolean, connectTimeoutMs: number): http.Agent {
  const key = `${secure ? 'https' : 'http'}:${connectTimeoutMs}`;
  let agent = agents.get(key);
  if (!agent) {
    agent = secure ? new ConnectTimeoutHttpsAgent(connectTimeoutMs) : new ConnectTimeoutHttpAgent(connectTimeoutMs);
    agents.set(key, agent);
  }
  return agent;
}

/**
 * httpx arms a read timer per request on its socket and clears it only in its own `read()`, which the SDK does
 * not use for these calls: each timer then lived its full read timeout (10 s) holding the request, the response
 * and its body. At a hundred pages a second that kept about a thousand pages alive (`plan` peak RSS grew with
 * the page rate). The timer of this request is cleared once its response has ended or closed; a later request
 * on the same keep-alive socket arms its own, which is never touched here.
 */
function releaseReadTimer(res: http.IncomingMessage): http.IncomingMessage {
  const socket = res.socket as unknown as Record<symbol, unknown> | null;
  if (!socket) return res;
  const key = Object.getOwnPropertySymbols(socket).find((sym) => sym.description === 'TIMER::READ_TIMER');
  const timer = key === undefined ? undefined : socket[key];
  if (timer === undefined || timer === null) return res;
  const release = () => clearTimeout(timer as NodeJS.Timeout);
  res.once('end', release);
  res.once('close', release);
  return res;
}

/**
 * Makes the SDK's HTTP layer use the connect timeout for the connection only and the read timeout for the
 * answer (the SDK's read timer runs from connect until the body is read; the socket's idle timeout becomes
 * read timeout + 1 s). Idempotent; applies to every SDK caller of the process, which all want this.
 */
export function separateSdkTimeouts(): void {
  const fromSdk = createRequire(createRequire(import.meta.url).resolve('@darabonba/typescript'));
  const httpx = fromSdk('httpx') as HttpxModule;
  if (httpx[PATCHED]) return;
  const original = httpx.request.bind(httpx);
  const timed = (url: string | URL, opts: HttpxOptions): Promise<unknown> => {
    const connectTimeoutMs = opts.connectTimeout;
    const readTimeoutMs = opts.readTimeout;
    if (typeof connectTimeoutMs !== 'number' || typeof readTimeoutMs !== 'number' || opts.agent !== undefined) return original(url, opts);
    const secure = (typeof url === 'string' ? url : url.href).startsWith('https:');
    const previous = opts.beforeRequest;
    return original(url, {
      ...opts,
      beforeRequest: (options) => {
        const base = previous ? previous(options) : options;
        return { ...base, timeout: readTimeoutMs + IDLE_GRACE_MS, agent: agentFor(secure, connectTimeoutMs) };
      },
    });
  };
  httpx.request = (url, opts = {}) => {
    const limit = responseLimit.getStore();
    const pending = timed(url, opts).then((res) => releaseReadTimer(res as http.IncomingMessage));
    return limit === undefined ? pending : pending.then((res) => bounded(res as http.IncomingMessage, limit));
  };
  httpx[PATCHED] = true;
}
