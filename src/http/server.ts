// The Express app: probes, metrics, the /v1 API and the dashboard, with one error mapper and an access log.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type ErrorRequestHandler, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { TagwardenError } from '../errors.js';
import { redactString } from '../logging/index.js';
import { LISTABLE_STATES, type ListableState } from '../queue/index.js';
import { ADMIN_BASE, LOGIN_PATH, createDashboard, createLoginRoutes, requireAdmin } from './admin.js';
import { createAuthenticator, type Authenticator } from './auth.js';
import { buildOpenApiDocument } from './openapi.js';
import { createMemorySessionStore } from './sessions.js';
import type { HttpDeps, HttpServer } from './types.js';
import { renderMetrics } from '../metrics/index.js';

const DISABLED_MESSAGE = 'API disabled: set TAGWARDEN_API_TOKEN';
const DRAIN_MS = 5_000;

type Mode = { kind: 'token'; auth: Authenticator } | { kind: 'open' } | { kind: 'off' };

class ProbeTimeout extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProbeTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Builds the HTTP server. Routes:
 * GET /metrics, /healthz, /readyz (no authentication); GET /v1/openapi.json (no authentication);
 * POST /v1/untag, GET /v1/policies, POST /v1/policies/:name/scan, GET /v1/jobs, GET /v1/jobs/:id,
 * POST /v1/jobs/:id/retry (bearer token); /admin/queues (Bull Board: bearer token or the /admin/login cookie).
 */
/** A copy of `value` with every string passed through the logs' redaction (keys are left as they are). */
function redactStrings(value: unknown, secrets: readonly string[], depth = 0): unknown {
  if (typeof value === 'string') return redactString(value, secrets);
  if (value === null || typeof value !== 'object' || depth > 32) return value;
  if (Array.isArray(value)) return value.map((v) => redactStrings(v, secrets, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) out[key] = redactStrings(inner, secrets, depth + 1);
  return out;
}

export function createHttpServer(deps: HttpDeps): HttpServer {
  const { logger } = deps;
  const log = logger.child({ scope: 'http' });
  const probeTimeoutMs = deps.probeTimeoutMs ?? 5_000;
  const token = deps.api.token ? deps.api.token : undefined;
  const mode: Mode = token ? { kind: 'token', auth: createAuthenticator(token) } : deps.api.open ? { kind: 'open' } : { kind: 'off' };
  if (mode.kind === 'off') log.info('http api disabled', { reason: 'TAGWARDEN_API_TOKEN unset', paths: ['/v1', '/admin'] });
  if (mode.kind === 'open') log.warn('http api open without authentication', { setting: 'TAGWARDEN_API_OPEN', paths: ['/v1', '/admin'] });
  if (mode.kind === 'token' && deps.api.open) log.warn('http api open setting ignored because a token is set', { setting: 'TAGWARDEN_API_OPEN' });
  const openapi = buildOpenApiDocument(deps.version ?? '0.0.0');
  const secrets = deps.secrets ?? [];
  const sessions = deps.sessions ?? createMemorySessionStore();

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  // Access log and common headers. Route templates, never raw URLs, so IDs stay out of the log keys.
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.set('X-Content-Type-Options', 'nosniff');
    res.on('finish', () => {
      const route = (res.locals.route as string | undefined) ?? 'unmatched';
      log.debug('http request', {
        method: req.method,
        route,
        status: res.statusCode,
        durationMs: Number(process.hrtime.bigint() - started) / 1e6,
      });
    });
    // Every JSON answer (/v1 and Bull Board's API: job data, failure reasons, stack traces, return values)
    // passes the logs' redaction: a job stored before a fix, or queued by another system, may quote a secret.
    if (secrets.length > 0) {
      const json = res.json.bind(res);
      res.json = (body: unknown) => json(redactStrings(body, secrets));
    }
    next();
  });
  const at = (route: string): RequestHandler => (_req, res, next) => {
    res.locals.route = route;
    next();
  };

  // Probes and metrics: unauthenticated, for the kubelet and Prometheus.
  app.get('/healthz', at('/healthz'), (_req, res) => {
    const result = deps.liveness();
    res.status(result.ok ? 200 : 503).set('Cache-Control', 'no-store').json({ status: result.ok ? 'ok' : 'failing', ...(result.detail ? { detail: result.detail } : {}) });
  });

  app.get('/readyz', at('/readyz'), async (_req, res) => {
    let report;
    try {
      report = await withTimeout(deps.readiness(), probeTimeoutMs);
    } catch (err) {
      const detail = err instanceof ProbeTimeout ? `no answer within ${probeTimeoutMs} ms` : 'readiness check threw';
      if (!(err instanceof ProbeTimeout)) log.error('readiness check failed', { err });
      report = { ready: false, checks: { readiness: { ok: false, detail } } };
    }
    res.status(report.ready ? 200 : 503).set('Cache-Control', 'no-store').json({ status: report.ready ? 'ready' : 'not_ready', checks: report.checks });
  });

  app.get('/metrics', at('/metrics'), async (_req, res) => {
    try {
      const text = await withTimeout(renderMetrics(deps.registry), probeTimeoutMs);
      res.status(200).set('Content-Type', deps.registry.contentType).set('Cache-Control', 'no-store').send(text);
    } catch (err) {
      log.error('metrics collection failed', { err, timedOut: err instanceof ProbeTimeout });
      res.status(503).json({ error: 'metrics_unavailable', message: 'metrics could not be collected' });
    }
  });

  app.get('/v1/openapi.json', at('/v1/openapi.json'), (_req, res) => {
    res.status(200).json(openapi);
  });

  // Everything else under /v1 needs the API to be on, and the token when one is set.
  const requireApi: RequestHandler = (req, res, next) => {
    if (mode.kind === 'open') {
      next();
      return;
    }
    if (mode.kind === 'off') {
      res.status(503).json({ error: 'api_disabled', message: DISABLED_MESSAGE });
      return;
    }
    const result = mode.auth.bearer(req.headers);
    if (result === 'ok') {
      next();
      return;
    }
    res
      .status(401)
      .set('WWW-Authenticate', result === 'missing' ? 'Bearer realm="tagwarden"' : 'Bearer realm="tagwarden", error="invalid_token"')
      .json({ error: 'unauthorized', message: 'send Authorization: Bearer <TAGWARDEN_API_TOKEN>' });
  };
  const v1 = express.Router();
  v1.use((_req, res, next) => {
    res.locals.route = '/v1/*';
    res.set('Cache-Control', 'no-store');
    next();
  });
  v1.use(requireApi);

  const jsonBody = express.json({ limit: deps.api.maxBodyBytes, type: () => true });
  const requireJson: RequestHandler = (req, res, next) => {
    const length = req.headers['content-length'];
    const hasBody = (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
    if (!hasBody) {
      res.status(400).json({ error: 'invalid_request', problems: ['(body): send the request as a JSON object'] });
      return;
    }
    if (!req.is(['application/json', 'application/*+json'])) {
      res.status(415).json({ error: 'unsupported_media_type', message: 'send Content-Type: application/json' });
      return;
    }
    next();
  };

  v1.post('/untag', at('/v1/untag'), requireJson, jsonBody, async (req, res) => {
    const result = await deps.producer.untag(req.body as unknown);
    res.status(202).json(result);
  });

  v1.get('/accounts', at('/v1/accounts'), async (_req, res) => {
    if (!deps.accounts) {
      res.status(404).json({ error: 'not_found', message: 'no accounts file: this deployment governs one account (TAGWARDEN_ACCOUNTS_FILE)' });
      return;
    }
    res.status(200).json({ accounts: await deps.accounts.list() });
  });

  v1.get('/policies', at('/v1/policies'), async (_req, res) => {
    res.status(200).json({ policies: await deps.policies.list() });
  });

  v1.post('/policies/:name/scan', at('/v1/policies/:name/scan'), async (req, res) => {
    const result = await deps.policies.scanNow(String(req.params.name));
    if (!result) {
      res.status(404).json({ error: 'not_found', message: 'no policy with this name' });
      return;
    }
    res.status(202).json({ jobIds: result.jobIds, ...(result.scans ? { scans: result.scans } : {}) });
  });

  v1.get('/jobs', at('/v1/jobs'), async (req, res) => {
    const state = req.query.state;
    const limitText = req.query.limit;
    const problems: string[] = [];
    if (typeof state !== 'string' || !(LISTABLE_STATES as readonly string[]).includes(state)) {
      problems.push(`state: must be one of ${LISTABLE_STATES.join(', ')}`);
    }
    const limit = limitText === undefined ? 50 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) problems.push('limit: must be an integer from 1 to 1000');
    if (problems.length) {
      res.status(400).json({ error: 'invalid_request', problems });
      return;
    }
    res.status(200).json({ jobs: await deps.jobs.list(state as ListableState, { limit }) });
  });

  v1.get('/jobs/:id', at('/v1/jobs/:id'), async (req, res) => {
    const job = await deps.jobs.find(String(req.params.id));
    if (!job) {
      res.status(404).json({ error: 'not_found', message: 'no job with this ID in any queue' });
      return;
    }
    res.status(200).json(job);
  });

  v1.post('/jobs/:id/retry', at('/v1/jobs/:id/retry'), async (req, res) => {
    res.status(200).json(await deps.jobs.retry(String(req.params.id)));
  });

  // EventBridge deliveries: the HTTP target's token header or the bearer token (before the /v1 router, whose
  // guard knows only the bearer token).
  const eventsAuth = deps.events?.token ? createAuthenticator(deps.events.token) : undefined;
  const requireEventsAuth: RequestHandler = (req, res, next) => {
    res.set('Cache-Control', 'no-store');
    if (!deps.events || (mode.kind === 'off' && !eventsAuth)) {
      res.status(503).json({ error: 'api_disabled', message: 'events disabled: set TAGWARDEN_EVENTS_TOKEN or TAGWARDEN_API_TOKEN' });
      return;
    }
    if (mode.kind === 'open' && !eventsAuth) {
      next();
      return;
    }
    const given = req.headers['x-eventbridge-signature-token'];
    const headerAuth = eventsAuth ?? (mode.kind === 'token' ? mode.auth : undefined);
    if (typeof given === 'string' && given !== '' && headerAuth?.matches(given)) {
      next();
      return;
    }
    if (mode.kind === 'token' && mode.auth.bearer(req.headers) === 'ok') {
      next();
      return;
    }
    res
      .status(401)
      .set('WWW-Authenticate', 'Bearer realm="tagwarden"')
      .json({ error: 'unauthorized', message: 'send x-eventbridge-signature-token: <TAGWARDEN_EVENTS_TOKEN> or Authorization: Bearer <TAGWARDEN_API_TOKEN>' });
  };
  app.post('/v1/events', at('/v1/events'), requireEventsAuth, requireJson, jsonBody, async (req, res) => {
    const answer = await (deps.events as NonNullable<HttpDeps['events']>).accept(req.body as unknown);
    res.status(200).json(answer);
  });

  app.use('/v1', v1);

  // The dashboard: same switch and token as /v1; browsers log in for a cookie.
  app.use('/admin', (_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    if (mode.kind === 'off') {
      res.locals.route = '/admin';
      res.status(503).json({ error: 'api_disabled', message: DISABLED_MESSAGE });
      return;
    }
    next();
  });
  if (mode.kind === 'token') {
    app.use(createLoginRoutes(mode.auth, sessions));
  } else {
    app.get(LOGIN_PATH, at(LOGIN_PATH), (_req, res) => res.redirect(302, ADMIN_BASE));
  }
  const dashboard = createDashboard(deps.queues, deps.queueLabels, deps.rateLimitMax);
  const adminGuard: RequestHandler = mode.kind === 'token' ? requireAdmin(mode.auth, sessions) : (_req, _res, next) => next();
  app.use(ADMIN_BASE, at(`${ADMIN_BASE}/*`), adminGuard, dashboard);

  app.use((_req, res) => {
    res.status(404).json({ error: 'not_found', message: 'no such route' });
  });

  app.use(errorHandler(log, deps.api.maxBodyBytes));

  let server: Server | undefined;
  let closing: Promise<void> | undefined;

  return {
    listen(port, host) {
      if (server) return Promise.reject(new Error('http server already listening'));
      const created = createServer(app);
      server = created;
      created.keepAliveTimeout = 5_000;
      created.headersTimeout = 10_000;
      created.requestTimeout = 60_000;
      return new Promise((resolve, reject) => {
        const onError = (err: Error): void => reject(err);
        created.once('error', onError);
        created.listen(port, host, () => {
          created.off('error', onError);
          const address = created.address() as AddressInfo;
          log.info('http listening', { host, port: address.port, api: mode.kind });
          resolve({ port: address.port });
        });
      });
    },

    close() {
      if (!server) return Promise.resolve();
      const current = server;
      closing ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => current.closeAllConnections(), DRAIN_MS);
        force.unref();
        current.close(() => {
          clearTimeout(force);
          resolve();
        });
        current.closeIdleConnections();
      });
      return closing;
    },
  };
}

interface BodyParserError {
  type?: unknown;
  status?: unknown;
}

/** Maps errors to JSON answers. Never sends stack traces or internal messages; logs unexpected errors once. */
function errorHandler(log: HttpDeps['logger'], maxBodyBytes: number): ErrorRequestHandler {
  return (err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    if (err instanceof TagwardenError) {
      switch (err.code) {
        case 'PAYLOAD_INVALID': {
          const problems = Array.isArray(err.details.problems) ? err.details.problems : [err.message];
          res.status(400).json({ error: 'invalid_request', problems });
          return;
        }
        case 'CONFLICT':
        case 'BLAST_RADIUS_EXCEEDED':
          res.status(409).json({ error: 'conflict', message: err.message, details: err.details });
          return;
        case 'NOT_FOUND':
          res.status(404).json({ error: 'not_found', message: err.message, details: err.details });
          return;
        case 'SHUTTING_DOWN':
          res.status(503).json({ error: 'shutting_down', message: 'this replica is shutting down; retry' });
          return;
        default:
          break;
      }
    }
    const parserError = (err ?? {}) as BodyParserError;
    switch (parserError.type) {
      case 'entity.too.large':
        res.status(413).json({ error: 'payload_too_large', message: `the body exceeds ${maxBodyBytes} bytes (TAGWARDEN_MAX_BODY_BYTES)` });
        return;
      case 'entity.parse.failed':
        res.status(400).json({ error: 'invalid_request', problems: ['(body): not valid JSON'] });
        return;
      case 'encoding.unsupported':
      case 'charset.unsupported':
        res.status(415).json({ error: 'unsupported_media_type', message: 'send UTF-8 JSON' });
        return;
      case 'request.aborted':
      case 'request.size.invalid':
      case 'parameters.too.many':
        res.status(400).json({ error: 'bad_request', message: 'the request body could not be read' });
        return;
      default:
        break;
    }
    log.error('http request failed', { err, method: req.method, route: (res.locals.route as string | undefined) ?? 'unmatched' });
    res.status(500).json({ error: 'internal', message: 'internal error; see the server log' });
  };
}
