// Probes, metrics, the OpenAPI document, /v1/policies, error answers and the access log, over real HTTP.
import SwaggerParser from '@apidevtools/swagger-parser';
import { Counter, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { PolicyView } from '../../src/http/index.js';
import { TOKEN, call, startFixture, type Fixture } from './http.fixture.js';

describe('probes, metrics and documents', () => {
  let fixture: Fixture | undefined;
  afterEach(async () => {
    await fixture?.close();
    fixture = undefined;
  });

  it('serves the registry text at /metrics with its content type', async () => {
    const registry = new Registry();
    new Counter({ name: 'tagwarden_http_test_total', help: 'test counter', registers: [registry] }).inc(3);
    fixture = await startFixture({ registry });
    const res = await call(fixture, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(registry.contentType);
    expect(res.text).toContain('# TYPE tagwarden_http_test_total counter');
    expect(res.text).toMatch(/^tagwarden_http_test_total 3$/m);
  });

  it('answers /healthz 200 and /readyz 200 or 503 with the failing checks', async () => {
    let report = { ready: true, checks: { redis: { ok: true }, workers: { ok: true } } as Record<string, { ok: boolean; detail?: string }> };
    fixture = await startFixture({ readiness: async () => report });
    const live = await call(fixture, 'GET', '/healthz');
    expect(live.status).toBe(200);
    expect(live.body).toEqual({ status: 'ok' });
    const ready = await call(fixture, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ready', checks: report.checks });

    report = { ready: false, checks: { redis: { ok: false, detail: 'connection refused' }, workers: { ok: true } } };
    const notReady = await call(fixture, 'GET', '/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.body).toEqual({ status: 'not_ready', checks: { redis: { ok: false, detail: 'connection refused' }, workers: { ok: true } } });
  });

  it('answers /readyz 503 when the readiness check throws or does not answer in time', async () => {
    let mode: 'throw' | 'hang' = 'throw';
    let release: (() => void) | undefined;
    fixture = await startFixture({
      probeTimeoutMs: 200,
      readiness: async () => {
        if (mode === 'throw') throw new Error('redis exploded at /secret/path');
        await new Promise<void>((resolve) => (release = resolve));
        return { ready: true, checks: {} };
      },
    });
    const thrown = await call(fixture, 'GET', '/readyz');
    expect(thrown.status).toBe(503);
    expect(thrown.body).toEqual({ status: 'not_ready', checks: { readiness: { ok: false, detail: 'readiness check threw' } } });
    mode = 'hang';
    const hung = await call(fixture, 'GET', '/readyz');
    release?.();
    expect(hung.status).toBe(503);
    expect(hung.body).toEqual({ status: 'not_ready', checks: { readiness: { ok: false, detail: 'no answer within 200 ms' } } });
  });

  it('serves an OpenAPI 3.1 document naming every path, with resolvable references', async () => {
    fixture = await startFixture({ token: TOKEN });
    const res = await call(fixture, 'GET', '/v1/openapi.json');
    expect(res.status).toBe(200);
    const doc = JSON.parse(res.text) as { openapi: string; paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, { properties?: Record<string, unknown> }> } };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining([
      '/v1/untag', '/v1/events', '/v1/policies', '/v1/policies/{name}/scan', '/v1/jobs', '/v1/jobs/{id}', '/v1/jobs/{id}/retry', '/healthz', '/readyz', '/metrics',
    ]));
    expect(Object.keys(doc.paths['/v1/untag']!)).toEqual(['post']);
    expect(Object.keys(doc.components.schemas.UntagRequest!.properties!)).toEqual(
      expect.arrayContaining(['region', 'resourceIds', 'tagKeys', 'all', 'reason', 'idempotencyKey', 'dryRun']),
    );
    const refs = [...res.text.matchAll(/"\$ref":"#\/components\/schemas\/([A-Za-z]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(5);
    for (const name of refs) expect(doc.components.schemas[name], name).toBeDefined();
  });

  it('serves an OpenAPI document that validates against the OpenAPI 3.1 schema, POST /v1/events included', async () => {
    fixture = await startFixture({ token: TOKEN });
    const res = await call(fixture, 'GET', '/v1/openapi.json');
    const doc = JSON.parse(res.text) as Record<string, unknown>;
    // validate() checks the document against the official OpenAPI 3.1 schema and resolves every $ref.
    const checked = (await SwaggerParser.validate(structuredClone(doc) as never)) as unknown as {
      paths: Record<string, { post?: { security?: unknown; requestBody?: { content: Record<string, unknown> }; responses: Record<string, unknown> } }>;
      components: { schemas: Record<string, { required?: string[] }>; securitySchemes: Record<string, { type: string; in?: string; name?: string }> };
    };
    const events = checked.paths['/v1/events']?.post;
    expect(events?.security).toEqual([{ eventBridgeToken: [] }, { bearerAuth: [] }]);
    expect(Object.keys(events?.requestBody?.content ?? {})).toEqual(['application/cloudevents+json', 'application/cloudevents-batch+json', 'application/json']);
    expect(Object.keys(events?.responses ?? {})).toEqual(['200', '400', '401', '413', '415', '503']);
    expect(checked.components.securitySchemes['eventBridgeToken']).toMatchObject({ type: 'apiKey', in: 'header', name: 'x-eventbridge-signature-token' });
    expect(checked.components.schemas['CloudEvent']?.required).toEqual(['specversion', 'id', 'source', 'type']);
    expect(checked.components.schemas['EventsAnswer']?.required).toEqual(['received', 'accepted', 'ignored', 'duplicates']);
    // The validator is not a rubber stamp: the same document with a broken reference is refused.
    const broken = structuredClone(doc) as { paths: Record<string, { post: { responses: Record<string, unknown> } }> };
    broken.paths['/v1/events']!.post.responses['200'] = { description: 'x', content: { 'application/json': { schema: { $ref: '#/components/schemas/Nope' } } } };
    await expect(SwaggerParser.validate(broken as never)).rejects.toThrow(/Nope|resolve|pointer/i);
  });
});

describe('/v1/policies', () => {
  let fixture: Fixture | undefined;
  afterEach(async () => {
    await fixture?.close();
    fixture = undefined;
  });

  const policies: PolicyView[] = [
    { name: 'no-temp-tags', regions: ['cn-hangzhou'], dryRun: false, halted: false, lastRun: { scanned: 10, removed: 2 }, errors: [] },
    { name: 'halted-one', halted: true, errors: ['blast radius exceeded: 500 > 100'] },
  ];

  it('lists the policies and scans a known one, 404 for an unknown one', async () => {
    const scanned: string[] = [];
    fixture = await startFixture({
      token: TOKEN,
      policies: {
        list: async () => policies,
        scanNow: async (name) => {
          scanned.push(name);
          return policies.some((p) => p.name === name) ? { jobIds: [`scan-${name}-cn-hangzhou`] } : null;
        },
      },
    });
    const list = await call(fixture, 'GET', '/v1/policies', { token: TOKEN });
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ policies });
    const scan = await call(fixture, 'POST', '/v1/policies/no-temp-tags/scan', { token: TOKEN });
    expect(scan.status).toBe(202);
    expect(scan.body).toEqual({ jobIds: ['scan-no-temp-tags-cn-hangzhou'] });
    const unknown = await call(fixture, 'POST', '/v1/policies/nope/scan', { token: TOKEN });
    expect(unknown.status).toBe(404);
    expect(scanned).toEqual(['no-temp-tags', 'nope']);
  });

  it('answers 500 without stack or message when a dependency throws, logging it once', async () => {
    fixture = await startFixture({
      token: TOKEN,
      policies: {
        list: async () => {
          throw new Error('internal detail /srv/app/secret.ts');
        },
        scanNow: async () => null,
      },
    });
    const res = await call(fixture, 'GET', '/v1/policies', { token: TOKEN });
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: 'internal', message: 'internal error; see the server log' });
    expect(res.text).not.toMatch(/secret\.ts|\bat \w/);
    expect(fixture.lines.filter((l) => l.includes('"message":"http request failed"'))).toHaveLength(1);
  });

  it('writes a debug access line per request with the route template, not the raw path', async () => {
    fixture = await startFixture({ token: TOKEN });
    await call(fixture, 'GET', '/v1/jobs/some-secret-looking-id', { token: TOKEN });
    const line = fixture.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.message === 'http request' && l.route === '/v1/jobs/:id');
    expect(line).toMatchObject({ level: 'debug', method: 'GET', route: '/v1/jobs/:id', status: 404 });
    expect(typeof line?.durationMs).toBe('number');
    expect(fixture.lines.join('\n')).not.toContain('some-secret-looking-id');
  });
});
