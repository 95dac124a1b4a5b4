// The Bull Board dashboard at /admin/queues and the login that lets a browser reach it with a session cookie.
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import express, { type Request, type RequestHandler, type Response, type Router } from 'express';
import { SESSION_COOKIE, SESSION_SECONDS, type Authenticator } from './auth.js';

export const ADMIN_BASE = '/admin/queues';
export const LOGIN_PATH = '/admin/login';

/** Express router serving the Bull Board UI and its API for these queues (no authentication of its own). */
export function createDashboard(queues: readonly Queue[]): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(ADMIN_BASE);
  createBullBoard({
    queues: queues.map((queue) => new BullMQAdapter(queue)),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'tagwarden' } },
  });
  return serverAdapter.getRouter() as Router;
}

/** True when the request came over TLS, directly or through a proxy that says so. */
function isHttps(req: Request): boolean {
  const forwarded = req.headers['x-forwarded-proto'];
  const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim().toLowerCase();
  return first === 'https' || (req.socket as { encrypted?: boolean }).encrypted === true;
}

/** Lets in requests with the bearer header or a session cookie; sends browsers to the login page otherwise. */
export function requireAdmin(auth: Authenticator, now: () => number): RequestHandler {
  return (req, res, next) => {
    if (auth.bearer(req.headers) === 'ok' || auth.session(req.headers, now())) {
      next();
      return;
    }
    // The dashboard's own XHR calls get a 401; page loads go to the login form.
    if (req.method === 'GET' && !req.path.startsWith('/api/')) {
      res.redirect(302, LOGIN_PATH);
      return;
    }
    res.set('WWW-Authenticate', 'Bearer realm="tagwarden"').status(401).json({ error: 'unauthorized', message: 'log in at /admin/login' });
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
export function createLoginRoutes(auth: Authenticator, now: () => number): Router {
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 10 });

  router.get(LOGIN_PATH, (req, res) => {
    res.locals.route = LOGIN_PATH;
    if (auth.session(req.headers, now())) {
      res.redirect(302, ADMIN_BASE);
      return;
    }
    loginPage(res, 200, false);
  });

  router.post(LOGIN_PATH, (_req, res, next) => {
    res.locals.route = LOGIN_PATH;
    next();
  }, form, (req, res) => {
    const body = req.body as Record<string, unknown> | undefined;
    const token = typeof body?.token === 'string' ? body.token : '';
    if (!token || !auth.matches(token)) {
      loginPage(res, 401, true);
      return;
    }
    res.cookie(SESSION_COOKIE, auth.issueSession(now()), {
      httpOnly: true,
      sameSite: 'strict',
      secure: isHttps(req),
      path: '/admin',
      maxAge: SESSION_SECONDS * 1000,
      encode: String,
    });
    res.redirect(303, ADMIN_BASE);
  });

  router.post('/admin/logout', (_req, res) => {
    res.locals.route = '/admin/logout';
    res.clearCookie(SESSION_COOKIE, { path: '/admin', httpOnly: true, sameSite: 'strict' });
    res.redirect(303, LOGIN_PATH);
  });

  return router;
}
