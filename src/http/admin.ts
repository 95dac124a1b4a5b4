// The Bull Board dashboard at /admin/queues and the login that lets a browser reach it with a session cookie.
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import express, { type Request, type RequestHandler, type Response, type Router } from 'express';
import { SESSION_COOKIE, SESSION_SECONDS, readCookie, type Authenticator } from './auth.js';
import { isSessionId, newSessionId, sessionKey } from './sessions.js';
import type { SessionStore } from './types.js';

export const ADMIN_BASE = '/admin/queues';
export const LOGIN_PATH = '/admin/login';

/** How a queue is shown on the dashboard: its card title and the text of the card's info tip. */
export interface QueueLabel {
  displayName: string;
  description: string;
}

/**
 * Bull Board's BullMQ adapter, telling "rate limited" the way tagwarden means it. BullMQ keeps a worker
 * limiter's window counter in the same key that a throttling pause (`queue.rateLimit(ms)`) sets to the maximum,
 * and Bull Board asks for the key's TTL without a maximum, so every queue whose workers ran a job in the last
 * window showed "rate limited". Asking with the limiter's maximum reports only a queue at its limit or paused.
 */
class TagwardenQueueAdapter extends BullMQAdapter {
  constructor(
    private readonly source: Queue,
    options: Partial<QueueLabel>,
    private readonly rateLimitMax: number,
  ) {
    super(source, options);
  }

  override async getActiveRateLimitTtl(): Promise<number> {
    const ttl = await this.source.getRateLimitTtl(this.rateLimitMax);
    return ttl > 0 ? ttl : 0;
  }
}

/**
 * Express router serving the Bull Board UI and its API for these queues (no authentication of its own). `labels`
 * give cards a title and info tip (by queue name); `rateLimitMax` is the untag workers' limiter maximum (default:
 * only a throttling pause counts as rate limited).
 */
export function createDashboard(queues: readonly Queue[], labels: Readonly<Record<string, QueueLabel>> = {}, rateLimitMax = Number.MAX_SAFE_INTEGER): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(ADMIN_BASE);
  createBullBoard({
    queues: queues.map((queue) => new TagwardenQueueAdapter(queue, labels[queue.name] ?? {}, rateLimitMax)),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'tagwarden', menu: { width: '340px' } } },
  });
  return serverAdapter.getRouter() as Router;
}

/** True when the request came over TLS, directly or through a proxy that says so. */
function isHttps(req: Request): boolean {
  const forwarded = req.headers['x-forwarded-proto'];
  const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim().toLowerCase();
  return first === 'https' || (req.socket as { encrypted?: boolean }).encrypted === true;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * True when a browser request comes from this origin: `Sec-Fetch-Site: same-origin` where the browser sends it,
 * else an `Origin` equal to this server's. A request with neither is no browser's state-changing request.
 */
export function sameOrigin(req: Request): boolean {
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string') return site === 'same-origin';
  const origin = req.headers.origin;
  if (typeof origin !== 'string' || origin === 'null') return false;
  const host = req.headers.host;
  return host !== undefined && (origin === `http://${host}` || origin === `https://${host}`);
}

const CROSS_SITE = {
  error: 'forbidden',
  message: 'cross-site request refused: state-changing dashboard requests must come from the dashboard page (same origin), or carry the bearer token',
};

/** The session ID of the request's cookie when the store knows it. */
async function sessionOf(req: Request, sessions: SessionStore): Promise<string | undefined> {
  const id = readCookie(req.headers.cookie, SESSION_COOKIE);
  if (!isSessionId(id)) return undefined;
  return (await sessions.exists(sessionKey(id))) ? id : undefined;
}

/**
 * Lets in requests with the bearer header, or with a live session cookie; with the cookie, a state-changing
 * request must also be same-origin (a form or text/plain post from another site carries the cookie too).
 * Sends browsers to the login page otherwise.
 */
export function requireAdmin(auth: Authenticator, sessions: SessionStore): RequestHandler {
  return (req, res, next) => {
    if (auth.bearer(req.headers) === 'ok') {
      next();
      return;
    }
    sessionOf(req, sessions).then((session) => {
      if (session) {
        if (!SAFE_METHODS.has(req.method) && !sameOrigin(req)) {
          res.status(403).json(CROSS_SITE);
          return;
        }
        next();
        return;
      }
      // The dashboard's own XHR calls get a 401; page loads go to the login form.
      if (req.method === 'GET' && !req.path.startsWith('/api/')) {
        res.redirect(302, LOGIN_PATH);
        return;
      }
      res.set('WWW-Authenticate', 'Bearer realm="tagwarden"').status(401).json({ error: 'unauthorized', message: 'log in at /admin/login' });
    }, next);
  };
}

const LOGIN_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

function loginPage(res: Response, status: number, failed: boolean): void {
  res
    .status(status)
    .set({ 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': LOGIN_CSP, 'X-Frame-Options': 'DENY', 'Cache-Control': 'no-store' })
    .send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>tagwarden - log in</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}label,input,button{display:block;width:100%;margin:.4rem 0}input{padding:.5rem}button{padding:.5rem}.error{color:#b00020}</style>
</head><body>
<h1>tagwarden dashboard</h1>
${failed ? '<p class="error" role="alert">That token is not right.</p>' : ''}
<form method="post" action="${LOGIN_PATH}">
<label for="token">API token (TAGWARDEN_API_TOKEN)</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button>
</form>
</body></html>`);
}

/** GET/POST /admin/login and POST /admin/logout. */
export function createLoginRoutes(auth: Authenticator, sessions: SessionStore): Router {
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 10 });

  router.get(LOGIN_PATH, (req, res, next) => {
    res.locals.route = LOGIN_PATH;
    sessionOf(req, sessions).then((session) => {
      if (session) res.redirect(302, ADMIN_BASE);
      else loginPage(res, 200, false);
    }, next);
  });

  router.post(LOGIN_PATH, (_req, res, next) => {
    res.locals.route = LOGIN_PATH;
    next();
  }, form, (req, res, next) => {
    const body = req.body as Record<string, unknown> | undefined;
    const token = typeof body?.token === 'string' ? body.token : '';
    if (!token || !auth.matches(token)) {
      loginPage(res, 401, true);
      return;
    }
    // A new random session per login: two logins never share a cookie, and each can be revoked alone.
    const id = newSessionId();
    sessions.create(sessionKey(id), SESSION_SECONDS).then(() => {
      res.cookie(SESSION_COOKIE, id, {
        httpOnly: true,
        sameSite: 'strict',
        secure: isHttps(req),
        path: '/admin',
        maxAge: SESSION_SECONDS * 1000,
        encode: String,
      });
      res.redirect(303, ADMIN_BASE);
    }, next);
  });

  router.post('/admin/logout', (req, res, next) => {
    res.locals.route = '/admin/logout';
    const id = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (isSessionId(id) && !sameOrigin(req) && auth.bearer(req.headers) !== 'ok') {
      res.status(403).json(CROSS_SITE);
      return;
    }
    const revoke = isSessionId(id) ? sessions.remove(sessionKey(id)) : Promise.resolve();
    revoke.then(() => {
      res.clearCookie(SESSION_COOKIE, { path: '/admin', httpOnly: true, sameSite: 'strict' });
      res.redirect(303, LOGIN_PATH);
    }, next);
  });

  return router;
}
