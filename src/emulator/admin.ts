// The unsigned admin API under /_emulator/: state, calls, stats, faults, quotas, health.
// Must not be reachable through the signed API path; large listings are streamed, never built in memory.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { once } from 'node:events';
import { type EmulatorCore, validateBehaviour } from './core.js';
import { validateFaults } from './faults.js';
import { toDoc } from './store.js';
import type { QuotaUpdate } from './types.js';

class AdminError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function reply(res: ServerResponse, status: number, value: unknown): void {
  const json = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json;charset=utf-8', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    throw new AdminError(400, 'body must be JSON');
  }
}

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new AdminError(400, `${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

/** Streams `prefix item,item,... suffix` in ~64 KiB writes, honouring backpressure. */
async function streamJson(res: ServerResponse, prefix: string, items: Iterable<unknown>, suffix: string): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/json;charset=utf-8' });
  let chunk = prefix;
  let first = true;
  for (const item of items) {
    chunk += (first ? '' : ',') + JSON.stringify(item);
    first = false;
    if (chunk.length >= 65536) {
      if (res.destroyed) return;
      if (!res.write(chunk)) await once(res, 'drain');
      chunk = '';
    }
  }
  res.end(chunk + suffix);
}

function* stateItems(core: EmulatorCore, region: string | null, ids: string[] | null): Generator<unknown> {
  if (ids !== null) {
    for (const id of ids) {
      const c = core.store.get(id);
      if (c !== undefined && (region === null || c.region === region)) yield toDoc(c);
    }
    return;
  }
  if (region !== null) {
    for (const c of core.store.region(region)?.items ?? []) if (c.live) yield toDoc(c);
    return;
  }
  for (const c of core.store.all()) yield toDoc(c);
}

function intParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new AdminError(400, `${name} must be a non-negative integer`);
  return Number(v);
}

function readResources(body: Buffer): unknown[] {
  const doc = asObject(parseJson(body), 'body');
  if (!Array.isArray(doc['resources'])) throw new AdminError(400, 'body.resources must be an array');
  return doc['resources'] as unknown[];
}

/** Handles one admin request. Errors become `{error}` with 400/404/405. */
export async function handleAdmin(
  core: EmulatorCore,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  rawQuery: string,
  body: Buffer,
): Promise<void> {
  const route = path.replace(/\/+$/, '').slice('/_emulator'.length);
  const method = req.method ?? 'GET';
  const q = new URLSearchParams(rawQuery);
  try {
    switch (`${method} ${route}`) {
      case 'GET /health':
        return reply(res, 200, { status: 'ok', resources: core.store.size });
      case 'GET /state': {
        const ids = q.get('ids');
        const region = q.get('region');
        return await streamJson(
          res,
          '{"resources":[',
          stateItems(core, region === '' ? null : region, ids === null || ids === '' ? null : ids.split(',')),
          ']}',
        );
      }
      case 'PUT /state':
        return reply(res, 200, { loaded: core.load(readResources(body), true) });
      case 'POST /resources':
        return reply(res, 200, { loaded: core.load(readResources(body), false) });
      case 'DELETE /resources': {
        const ids = (q.get('ids') ?? '').split(',').filter((id) => id !== '');
        let removed = 0;
        for (const id of ids) if (core.store.remove(id)) removed++;
        return reply(res, 200, { removed });
      }
      case 'POST /generate': {
        const g = asObject(parseJson(body), 'body');
        const count = g['count'];
        const seed = g['seed'];
        const regions = g['regions'];
        if (typeof count !== 'number' || typeof seed !== 'number') throw new AdminError(400, 'count and seed must be numbers');
        if (regions !== undefined && (!Array.isArray(regions) || !regions.every((r) => typeof r === 'string' && r !== ''))) {
          throw new AdminError(400, 'regions must be a list of region names');
        }
        const generated = core.generate(
          { count, seed, ...(regions === undefined ? {} : { regions: regions as string[] }) },
          g['replace'] !== false,
        );
        return reply(res, 200, { generated });
      }
      case 'GET /calls': {
        const action = q.get('action');
        const since = intParam(q, 'since');
        const limit = intParam(q, 'limit');
        const selected = core.log.select({
          ...(action === null || action === '' ? {} : { action }),
          ...(since === undefined ? {} : { since }),
          ...(limit === undefined ? {} : { limit }),
        });
        return await streamJson(res, '{"calls":[', selected, `],"dropped":${core.log.dropped}}`);
      }
      case 'DELETE /calls':
        core.log.clear();
        return reply(res, 200, { cleared: true });
      case 'GET /stats':
        return reply(res, 200, core.stats.snapshot(core.resourceCounts()));
      case 'DELETE /stats':
        core.stats.reset();
        return reply(res, 200, { cleared: true });
      case 'GET /faults':
        return reply(res, 200, core.faults.get());
      case 'PUT /faults':
        core.faults.set(validateFaults(parseJson(body)));
        return reply(res, 200, core.faults.get());
      case 'GET /quotas':
        return reply(res, 200, core.quotas.state());
      case 'PUT /quotas': {
        const u = asObject(parseJson(body), 'body');
        core.quotas.update(u as QuotaUpdate);
        return reply(res, 200, core.quotas.state());
      }
      case 'GET /behaviour':
        return reply(res, 200, core.behaviour);
      case 'PUT /behaviour':
        return reply(res, 200, core.setBehaviour(validateBehaviour(parseJson(body))));
      case 'DELETE /client-tokens':
        core.tokens.clear();
        return reply(res, 200, { cleared: true });
      default:
        throw new AdminError(404, `no admin route ${method} ${path}`);
    }
  } catch (err) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof AdminError) return reply(res, err.status, { error: err.message });
    // Validation errors of the estate, faults and quotas are plain Errors naming the bad field.
    return reply(res, 400, { error: err instanceof Error ? err.message : String(err) });
  }
}
