// Patterns in policies: globs ('*' and '?') or regexes between slashes. Pure string matching.
// Every pattern runs on RE2 (re2js, a pure-JavaScript port): matching time is linear in the length of the
// key or value, whatever the pattern, so a tag value built to backtrack cannot pin the CPU. RE2 has no
// backreferences and no lookaround; validation says so and what to write instead.
import { RE2JS } from 're2js';

/** A compiled pattern: test a whole string. */
export interface Pattern {
  readonly source: string;
  /** True when the pattern has no wildcard and is not a regex: it matches only itself. */
  readonly exact: boolean;
  test(value: string): boolean;
}

/** Why a pattern does not compile, and what to write instead when that is known. */
export interface PatternError {
  error: string;
  hint?: string;
}

const REGEX_FORM = /^\/(.*)\/([a-z]*)$/s;
const ALLOWED_FLAGS = new Set(['i', 'u']);

/** True when `source` is written as a regex, `/body/flags`. */
export function isRegexPattern(source: string): boolean {
  return source.length >= 2 && REGEX_FORM.test(source);
}

/** True when `source` is a glob with a wildcard or a regex (not an exact string). */
export function isWildcardPattern(source: string): boolean {
  return isRegexPattern(source) || /[*?]/.test(source);
}

/** Constructs RE2 cannot run, found on the regex body (outside character classes), with what to write instead. */
function unsupportedConstruct(body: string): PatternError | undefined {
  let inClass = false;
  for (let i = 0; i < body.length; i++) {
    const ch = body[i];
    if (ch === '\\') {
      const next = body[i + 1] ?? '';
      if (!inClass && (/[1-9]/.test(next) || next === 'k')) {
        return {
          error: `backreference '\\${next === 'k' ? 'k<…>' : next}' at offset ${i} is not supported: patterns run on a linear-time engine (RE2), which has no backreferences`,
          hint: 'spell the repeated part out, e.g. /^(dev|prod)-(dev|prod)$/ instead of /^(dev|prod)-\\1$/, or list the exact keys in remove.keys',
        };
      }
      i++;
      continue;
    }
    if (inClass) {
      if (ch === ']') inClass = false;
      continue;
    }
    if (ch === '[') {
      inClass = true;
      if (body[i + 1] === '^') i++;
      if (body[i + 1] === ']') i++;
      continue;
    }
    if (ch === '(' && body[i + 1] === '?') {
      const kind = body.slice(i + 2, i + 4);
      if (kind.startsWith('=') || kind.startsWith('!')) {
        return {
          error: `lookahead '(?${kind[0]}' at offset ${i} is not supported: patterns run on a linear-time engine (RE2), which has no lookaround`,
          hint: "match the keys to remove directly (e.g. /^tmp-[0-9]+$/) and list the ones to spare in spec.keep (keep beats remove) instead of a negative lookahead",
        };
      }
      if (kind === '<=' || kind === '<!') {
        return {
          error: `lookbehind '(?${kind}' at offset ${i} is not supported: patterns run on a linear-time engine (RE2), which has no lookaround`,
          hint: 'anchor the pattern and spell the prefix out (e.g. /^env-prod-/), and list the keys to spare in spec.keep',
        };
      }
    }
  }
  return undefined;
}

function compileRe2(body: string, flags: number): RE2JS | PatternError {
  try {
    return RE2JS.compile(body, flags);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    return { error: `regex does not compile on the linear-time engine (RE2 syntax: no backreferences, no lookaround): ${message}` };
  }
}

/** The pattern, or the reason it does not compile. Globs are anchored; regexes are not (write ^ and $). */
export function compilePattern(source: string): Pattern | PatternError {
  const m = REGEX_FORM.exec(source);
  if (m && source.length >= 2) {
    const body = m[1] ?? '';
    const flags = m[2] ?? '';
    for (const f of flags) {
      if (!ALLOWED_FLAGS.has(f)) return { error: `regex flag '${f}' is not supported (only i and u)` };
    }
    if (new Set(flags).size !== flags.length) return { error: 'regex flags repeat' };
    if (body.length === 0) return { error: 'empty regex' };
    const unsupported = unsupportedConstruct(body);
    if (unsupported) return unsupported;
    // RE2 always matches by code point, so 'u' needs no flag of its own.
    const re = compileRe2(body, flags.includes('i') ? RE2JS.CASE_INSENSITIVE : 0);
    if ('error' in re) return re;
    return { source, exact: false, test: (v) => re.test(v) };
  }
  if (!/[*?]/.test(source)) return { source, exact: true, test: (v) => v === source };
  const re = compileRe2(`^${globToRegexBody(source)}$`, RE2JS.DOTALL);
  if ('error' in re) return re;
  return { source, exact: false, test: (v) => re.test(v) };
}

function globToRegexBody(glob: string): string {
  let out = '';
  for (const ch of glob) {
    if (ch === '*') out += '.*';
    else if (ch === '?') out += '.';
    else out += ch.replace(/[\\^$.|+()[\]{}/*?-]/g, '\\$&');
  }
  return out;
}

/** Compile a pattern known to be valid (checked during validation); throws otherwise. */
export function mustCompilePattern(source: string): Pattern {
  const p = compilePattern(source);
  if ('error' in p) throw new Error(`pattern ${JSON.stringify(source)} does not compile: ${p.error}`);
  return p;
}
