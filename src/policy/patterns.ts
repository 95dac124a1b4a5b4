// Patterns in policies: globs ('*' and '?') or regexes between slashes. Pure string matching.

/** A compiled pattern: test a whole string. */
export interface Pattern {
  readonly source: string;
  /** True when the pattern has no wildcard and is not a regex: it matches only itself. */
  readonly exact: boolean;
  test(value: string): boolean;
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

/** The pattern, or the reason it does not compile. Globs are anchored; regexes are not (write ^ and $). */
export function compilePattern(source: string): Pattern | { error: string } {
  const m = REGEX_FORM.exec(source);
  if (m && source.length >= 2) {
    const body = m[1] ?? '';
    const flags = m[2] ?? '';
    for (const f of flags) {
      if (!ALLOWED_FLAGS.has(f)) return { error: `regex flag '${f}' is not supported (only i and u)` };
    }
    if (new Set(flags).size !== flags.length) return { error: 'regex flags repeat' };
    if (body.length === 0) return { error: 'empty regex' };
    let re: RegExp;
    try {
      re = new RegExp(body, flags);
    } catch (e) {
      return { error: `regex does not compile: ${e instanceof Error ? e.message : String(e)}` };
    }
    return { source, exact: false, test: (v) => re.test(v) };
  }
  if (!/[*?]/.test(source)) return { source, exact: true, test: (v) => v === source };
  const re = new RegExp(`^${globToRegexBody(source)}$`, 's');
  return { source, exact: false, test: (v) => re.test(v) };
}

function globToRegexBody(glob: string): string {
  let out = '';
  for (const ch of glob) {
    if (ch === '*') out += '.*';
    else if (ch === '?') out += '.';
    else out += ch.replace(/[\\^$.|+()[\]{}/-]/g, '\\$&');
  }
  return out;
}

/** Compile a pattern known to be valid (checked during validation); throws otherwise. */
export function mustCompilePattern(source: string): Pattern {
  const p = compilePattern(source);
  if ('error' in p) throw new Error(`pattern ${JSON.stringify(source)} does not compile: ${p.error}`);
  return p;
}
