// The published JSON Schema of job payloads (schemas/jobs.schema.json) and the OpenAPI document stay generated from zod.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { buildOpenApiDocument } from '../../src/http/index.js';
import { UntagJobSchema, UntagRequestSchema, jobPayloadJsonSchema } from '../../src/queue/index.js';

const SCHEMA_FILE = new URL('../../schemas/jobs.schema.json', import.meta.url);

describe('published schemas', () => {
  // Regenerate after a payload change with: npx vitest run test/integration/http.schemas.test.ts -u
  it('schemas/jobs.schema.json equals the schema generated from the zod payloads', async () => {
    await expect(`${JSON.stringify(jobPayloadJsonSchema(), null, 2)}\n`).toMatchFileSnapshot('../../schemas/jobs.schema.json');
    const published = JSON.parse(await readFile(SCHEMA_FILE, 'utf8')) as { $defs: Record<string, unknown> };
    expect(Object.keys(published.$defs).sort()).toEqual(['ScanJob', 'UntagJob', 'UntagRequest']);
  });

  it('the OpenAPI request schemas are the zod schemas', () => {
    const doc = buildOpenApiDocument('test') as { components: { schemas: Record<string, unknown> } };
    const { $schema: _a, ...request } = z.toJSONSchema(UntagRequestSchema, { io: 'input', unrepresentable: 'any' });
    const { $schema: _b, ...job } = z.toJSONSchema(UntagJobSchema, { io: 'input', unrepresentable: 'any' });
    expect(doc.components.schemas.UntagRequest).toEqual(request);
    expect(doc.components.schemas.UntagJob).toEqual(job);
  });
});
