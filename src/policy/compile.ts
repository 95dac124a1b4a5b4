// The three validation stages (YAML syntax, schema, meaning) over many files, in one pass.
import { LineCounter, parseAllDocuments } from 'yaml';
import { buildPolicy } from './compiled.js';
import { NO_POSITION, yamlLocator } from './locate.js';
import type { Locator } from './locate.js';
import { checkMeaning } from './meaning.js';
import { checkSchema } from './schema-findings.js';
import type { CompiledPolicy, PolicyFinding, PolicySource } from './types.js';

const YAML_HINTS: Readonly<Record<string, string>> = {
  DUPLICATE_KEY: 'each key at most once per mapping',
  TAB_AS_INDENT: 'spaces for indentation, not tabs',
  BAD_INDENT: 'consistent indentation with spaces; close every [ and {',
  MISSING_CHAR: 'a closing quote or bracket',
  MULTILINE_IMPLICIT_KEY: 'a mapping key on one line followed by ":"',
  UNEXPECTED_TOKEN: 'valid YAML',
  BLOCK_AS_IMPLICIT_KEY: 'a "key: value" pair per line',
};

interface DocContext {
  readonly file: string;
  readonly locator: Locator;
  readonly now: Date;
  readonly line: number;
}

function policyName(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const metadata = (raw as Record<string, unknown>).metadata;
  if (typeof metadata !== 'object' || metadata === null) return undefined;
  const name = (metadata as Record<string, unknown>).name;
  return typeof name === 'string' ? name : undefined;
}

function compileRaw(raw: unknown, ctx: DocContext): { policy?: CompiledPolicy; findings: PolicyFinding[] } {
  const name = policyName(raw);
  const base = { file: ctx.file, locator: ctx.locator, ...(name === undefined ? {} : { policy: name }) };
  const schema = checkSchema(raw, base);
  const meaning = checkMeaning(raw, { ...base, now: ctx.now });
  const findings = [...schema.findings, ...meaning];
  if (!schema.data || findings.some((f) => f.severity === 'error')) return { findings };
  return { policy: buildPolicy(schema.data, { file: ctx.file, line: ctx.line }), findings };
}

/**
 * Validates every document of every source in one pass (YAML syntax, then schema and meaning)
 * and returns the valid policies with all findings. A document with an error is skipped; the
 * others still compile. A name used again (in any file) is an error on the later document.
 * Findings are ordered by source, then line and column.
 */
export function compilePolicies(
  sources: readonly PolicySource[],
  now: Date,
): { policies: CompiledPolicy[]; findings: PolicyFinding[] } {
  const policies: CompiledPolicy[] = [];
  const findings: Array<PolicyFinding & { readonly order: number }> = [];
  const firstUse = new Map<string, { file: string; line: number }>();

  for (const [order, source] of sources.entries()) {
    const push = (f: PolicyFinding) => findings.push({ ...f, order });
    const lineCounter = new LineCounter();
    const docs = parseAllDocuments(source.text, { lineCounter, prettyErrors: false, uniqueKeys: true });
    let documents = 0;
    for (const doc of docs) {
      const at = (offset: number | undefined) => {
        const p = lineCounter.linePos(offset ?? 0);
        return { line: p.line, column: p.col };
      };
      for (const e of doc.errors) {
        const hint = YAML_HINTS[e.code];
        push({ file: source.file, ...at(e.pos[0]), path: '', message: e.message, expected: hint ?? 'valid YAML', severity: 'error', stage: 'yaml' });
      }
      for (const w of doc.warnings) {
        push({ file: source.file, ...at(w.pos[0]), path: '', message: w.message, severity: 'warning', stage: 'yaml' });
      }
      if (doc.errors.length > 0) {
        documents++;
        continue;
      }
      let raw: unknown;
      try {
        raw = doc.toJS({ maxAliasCount: 100 });
      } catch (e) {
        push({ file: source.file, ...at(doc.range[0]), path: '', message: e instanceof Error ? e.message : String(e), expected: 'valid YAML with fewer alias expansions', severity: 'error', stage: 'yaml' });
        documents++;
        continue;
      }
      if (raw === null || raw === undefined) continue; // an empty document, e.g. between two '---'
      documents++;
      const locator = yamlLocator(doc, lineCounter);
      const line = locator.locate([]).line;
      const result = compileRaw(raw, { file: source.file, locator, now, line });
      result.findings.forEach(push);
      const name = policyName(raw);
      if (name !== undefined) {
        const first = firstUse.get(name);
        if (first) {
          const p = locator.locate(['metadata', 'name']);
          push({
            file: source.file, line: p.line, column: p.column, path: 'metadata.name',
            message: `policy name '${name}' is already used at ${first.file}:${first.line}`,
            expected: 'a name unique across all policy files', severity: 'error', policy: name, stage: 'meaning',
          });
          continue;
        }
        firstUse.set(name, { file: source.file, line });
      }
      if (result.policy) policies.push(result.policy);
    }
    if (documents === 0) {
      push({ file: source.file, line: 0, column: 0, path: '', message: 'file contains no policy documents', severity: 'warning', stage: 'yaml' });
    }
  }
  findings.sort((a, b) => a.order - b.order || a.line - b.line || a.column - b.column);
  return { policies, findings: findings.map(({ order: _order, ...f }) => f) };
}

/**
 * Validates one policy given as a plain JSON value (e.g. carried inside a queued job), with the
 * schema and meaning stages. Findings have line and column 0 and `file` = options.file (default `<inline>`).
 */
export function compilePolicyDocument(
  doc: unknown,
  now: Date,
  options: { file?: string } = {},
): { policy?: CompiledPolicy; findings: PolicyFinding[] } {
  return compileRaw(doc, { file: options.file ?? '<inline>', locator: NO_POSITION, now, line: 0 });
}
