// Separates the SDK's connect timeout from its read timeout. Must not change anything else about a request:
// same host, headers, body, keep-alive pooling; it only decides which timer bounds which phase.
//
// Why: the SDK's HTTP layer (httpx, under @darabonba/typescript) passes `connectTimeout` to `http.request` as
// `timeout`, which Node applies as the socket's idle timeout for the whole exchange. A server that takes
// longer than the connect timeout to answer was therefore cut off at the connect timeout (connect 5000 / read
// 10000: a 6 s answer failed every time), whatever the read timeout said.
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';

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
 * Makes the SDK's HTTP layer use the connect timeout for the connection only and the read timeout for the
 * answer (the SDK's read timer runs from connect until the body is read; the socket's idle timeout becomes
 * read timeout + 1 s). Idempotent; applies to every SDK caller of the process, which all want this.
 */
export function separateSdkTimeouts(): void {
  const fromSdk = createRequire(createRequire(import.meta.url).resolve('@darabonba/typescript'));
  const httpx = fromSdk('httpx') as HttpxModule;
  if (httpx[PATCHED]) return;
  const original = httpx.request.bind(httpx);
  httpx.request = (url, opts = {}) => {
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
  httpx[PATCHED] = true;
}
