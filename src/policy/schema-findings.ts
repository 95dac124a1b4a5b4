// Stage 2: checks a plain value against the zod schema and turns every issue into a located finding.
import type { z } from 'zod';
import { formatPath } from './locate.js';
import type { Locator, PathSegment } from './locate.js';
import { policySchema } from './schema.js';
import type { PolicyDocument } from './schema.js';
import type { PolicyFinding } from './types.js';
import { editDistance } from './edit-distance.js';

export interface Context {
  readonly file: string;
  readonly locator: Locator;
  readonly policy?: string;
}

/** Validates `value` against the TagPolicy schema: the parsed document with defaults, or findings. */
export function checkSchema(value: unknown, ctx: Context): { data?: PolicyDocument; findings: PolicyFinding[] } {
  const result = policySchema.safeParse(value, { reportInput: true });
  if (result.success) return { data: result.data, findings: [] };
  const findings = result.error.issues.flatMap((issue) => issueFindings(issue, ctx));
  return { findings };
}

/** One zod issue as located findings (also used by the accounts file loader). */
export function issueFindings(issue: z.core.$ZodIssue, ctx: Context): PolicyFinding[] {
  const path = issue.path.filter((p): p is PathSegment => typeof p !== 'symbol');
  const make = (segments: PathSegment[], message: string, expected: string, key = false): PolicyFinding => {
    const at = ctx.locator.locate(segments, { key });
    return {
      file: ctx.file,
      line: at.line,
      column: at.column,
      path: formatPath(segments),
      message,
      expected,
      severity: 'error',
      stage: 'schema',
      ...(ctx.policy === undefined ? {} : { policy: ctx.policy }),
    };
  };
  const input: unknown = 'input' in issue ? issue.input : undefined;
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = issue.message.startsWith('known fields: ') ? issue.message.slice('known fields: '.length).split(', ') : [];
      return issue.keys.map((k) => {
        const guess = closest(k, known);
        return make([...path, k], `unknown field '${k}'${guess ? `; did you mean '${guess}'?` : ''}`, issue.message, true);
      });
    }
    case 'invalid_type': {
      if (input === undefined) {
        const field = path[path.length - 1];
        return [make(path, field === undefined ? 'the document is empty' : `required field '${String(field)}' is missing`, issue.message)];
      }
      // At the document root the "value" is the whole file (say /etc/passwd): name its kind, never echo it.
      return [make(path, `wrong type: got ${path.length === 0 ? kindOf(input) : describe(input)}`, issue.message)];
    }
    case 'invalid_key': {
      const inner = issue.issues[0]?.message ?? issue.message;
      return [make(path, `invalid key ${show(path[path.length - 1] ?? '')}`, inner, true)];
    }
    case 'too_small':
      if (Array.isArray(input) && input.length === 0) return [make(path, 'empty list', issue.message)];
      return [make(path, `invalid value ${path.length === 0 ? kindOf(input) : show(input)}`, issue.message)];
    default:
      return [make(path, `invalid value ${path.length === 0 ? kindOf(input) : show(input)}`, issue.message)];
  }
}

function kindOf(v: unknown): string {
  if (typeof v === 'string') return `a string of ${[...v].length} characters`;
  return describe(v);
}

function describe(v: unknown): string {
  if (v === null) return 'an empty value (null)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${show(v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `the ${typeof v} ${String(v)}`;
  return typeof v;
}

function show(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** The known field within edit distance 2 of `word`, if one is clearly closest. */
function closest(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = editDistance(word.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}
