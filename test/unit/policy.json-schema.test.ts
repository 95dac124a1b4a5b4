import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { policyJsonSchema } from '../../src/policy/index.js';

/** Every property path in a JSON Schema, e.g. spec.selector.attributes.vpcIds. */
function fieldPaths(schema: unknown, prefix = ''): string[] {
  if (typeof schema !== 'object' || schema === null) return [];
  const s = schema as { properties?: Record<string, unknown>; items?: unknown; anyOf?: unknown[] };
  const out: string[] = [];
  for (const [name, sub] of Object.entries(s.properties ?? {})) {
    const path = prefix ? `${prefix}.${name}` : name;
    out.push(path, ...fieldPaths(sub, path));
  }
  if (s.items) out.push(...fieldPaths(s.items, `${prefix}[]`));
  for (const alt of s.anyOf ?? []) out.push(...fieldPaths(alt, prefix));
  return out;
}

describe('policies/tagpolicy.schema.json', () => {
  const schema = policyJsonSchema();

  it('equals the schema generated from the loader schema (regenerate: node dist/cmd/tagwarden.js validate --print-schema > policies/tagpolicy.schema.json)', () => {
    expect(JSON.parse(readFileSync('policies/tagpolicy.schema.json', 'utf8'))).toEqual(schema);
  });

  it('is a draft 2020-12 schema that rejects unknown fields and describes every field', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.additionalProperties).toBe(false);
    const text = JSON.stringify(schema);
    expect(text).toContain('"oneOf":[{"required":["every"]},{"required":["cron"]}]');
    const undescribed: string[] = [];
    const walk = (node: unknown, path: string) => {
      if (typeof node !== 'object' || node === null) return;
      const n = node as { properties?: Record<string, { description?: string }>; items?: unknown };
      for (const [name, sub] of Object.entries(n.properties ?? {})) {
        if (!sub.description) undescribed.push(`${path}${name}`);
        walk(sub, `${path}${name}.`);
      }
      if (n.items) walk(n.items, `${path}[].`);
    };
    walk(schema, '');
    expect(undescribed).toEqual([]);
  });

  it('has every field documented in policies/README.md', () => {
    const readme = readFileSync('policies/README.md', 'utf8');
    const missing = [...new Set(fieldPaths(schema))].filter((path) => !readme.includes(`\`${path.replace(/\[\]/g, '[]')}\``));
    expect(missing).toEqual([]);
  });
});
