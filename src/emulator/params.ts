// Reading RPC parameters: flattened lists (`ResourceId.1`), tag pairs (`Tag.1.Key`), integers, booleans,
// and the tag key/value rules of reference §1.2.1 and §7.1.
import { ApiFailure, invalid, missing } from './api-errors.js';

/** Flat parameter map after query and body were merged and percent-decoded. */
export type Params = Readonly<Record<string, string>>;

/** Values of `Name.1`, `Name.2`, ... in index order; empty when none is given (plain `Name` is ignored). */
export function readList(params: Params, name: string): string[] {
  const found: Array<[number, string]> = [];
  const prefix = `${name}.`;
  for (const key of Object.keys(params)) {
    if (!key.startsWith(prefix)) continue;
    const rest = key.slice(prefix.length);
    if (!/^[1-9]\d{0,5}$/.test(rest)) continue;
    found.push([Number(rest), params[key] ?? '']);
  }
  return found.sort((a, b) => a[0] - b[0]).map(([, v]) => v);
}

/** A `Name.N.Key` / `Name.N.Value` pair; either side may be missing. */
export interface TagPair {
  index: number;
  key: string | undefined;
  value: string | undefined;
}

/** The `Name.N.Key` / `Name.N.Value` pairs in index order. */
export function readPairs(params: Params, name: string): TagPair[] {
  const byIndex = new Map<number, TagPair>();
  const re = new RegExp(`^${name.replace(/[.]/g, '\\.')}\\.([1-9]\\d{0,5})\\.(Key|Value)$`);
  for (const key of Object.keys(params)) {
    const m = re.exec(key);
    if (!m) continue;
    const index = Number(m[1]);
    const pair = byIndex.get(index) ?? { index, key: undefined, value: undefined };
    if (m[2] === 'Key') pair.key = params[key];
    else pair.value = params[key];
    byIndex.set(index, pair);
  }
  return [...byIndex.values()].sort((a, b) => a.index - b.index);
}

/** A required, non-empty parameter. */
export function required(params: Params, name: string): string {
  const v = params[name];
  if (v === undefined || v === '') throw missing(name);
  return v;
}

/** An optional non-empty parameter (empty counts as absent). */
export function optional(params: Params, name: string): string | undefined {
  const v = params[name];
  return v === undefined || v === '' ? undefined : v;
}

/** An integer in [min, max], `fallback` when absent. */
export function readInt(params: Params, name: string, min: number, max: number, fallback: number): number {
  const v = optional(params, name);
  if (v === undefined) return fallback;
  if (!/^-?\d{1,9}$/.test(v)) throw invalid(name, `must be an integer between ${min} and ${max}`);
  const n = Number(v);
  if (n < min || n > max) throw invalid(name, `must be an integer between ${min} and ${max}`);
  return n;
}

/** A boolean (`true`/`false`, any case), `fallback` when absent. */
export function readBool(params: Params, name: string, fallback: boolean): boolean {
  const v = optional(params, name);
  if (v === undefined) return fallback;
  const lower = v.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  throw invalid(name, 'must be true or false');
}

/** Longest tag key or value, in characters. */
export const MAX_TAG_TEXT = 128;

function charLength(text: string): number {
  return text.length <= MAX_TAG_TEXT ? text.length : Array.from(text).length;
}

/**
 * Checks a tag key: 1-128 characters (empty allowed only when `allowEmpty`), no `aliyun`/`acs:` prefix
 * (`Forbidden.TagKeys`), no `http://`/`https://` (`IllegalParam.TagKey`).
 */
export function checkTagKey(key: string, allowEmpty: boolean): void {
  if (key === '') {
    if (allowEmpty) return;
    throw new ApiFailure('IllegalParam.TagKey', 'The tag key must not be empty.');
  }
  if (charLength(key) > MAX_TAG_TEXT) throw new ApiFailure('IllegalParam.TagKey', `The tag key is longer than ${MAX_TAG_TEXT} characters.`);
  if (key.startsWith('aliyun') || key.startsWith('acs:')) {
    throw new ApiFailure('Forbidden.TagKeys', 'The tag key must not start with "aliyun" or "acs:"; this request may not operate on it.');
  }
  if (key.includes('http://') || key.includes('https://')) {
    throw new ApiFailure('IllegalParam.TagKey', 'The tag key must not contain "http://" or "https://".');
  }
}

/** Checks a tag value: 0-128 characters, no `aliyun`/`acs:` prefix, no `http://`/`https://`. */
export function checkTagValue(value: string): void {
  if (charLength(value) > MAX_TAG_TEXT) throw new ApiFailure('IllegalParam.TagValue', `The tag value is longer than ${MAX_TAG_TEXT} characters.`);
  if (value.startsWith('aliyun') || value.startsWith('acs:')) {
    throw new ApiFailure('IllegalParam.TagValue', 'The tag value must not start with "aliyun" or "acs:".');
  }
  if (value.includes('http://') || value.includes('https://')) {
    throw new ApiFailure('IllegalParam.TagValue', 'The tag value must not contain "http://" or "https://".');
  }
}

/** Longest ClientToken, in ASCII characters (reference §4). */
export const MAX_CLIENT_TOKEN = 64;

/** The ClientToken, if given: ASCII only, at most 64 characters. */
export function readClientToken(params: Params): string | undefined {
  const token = optional(params, 'ClientToken');
  if (token === undefined) return undefined;
  if (token.length > MAX_CLIENT_TOKEN || !/^[\x20-\x7e]+$/.test(token)) {
    throw invalid('ClientToken', `must be 1-${MAX_CLIENT_TOKEN} printable ASCII characters`);
  }
  return token;
}
