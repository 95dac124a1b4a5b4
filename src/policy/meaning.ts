// Stage 3: checks what a document means (keys, patterns, regions, dates, schedules) on the raw value,
// defensively, so it also runs on documents the schema stage rejected and every error shows in one pass.
import { KNOWN_REGIONS, MAX_TAG_TEXT_LENGTH, codePointLength, isKnownRegion, regionIdProblem } from '../model.js';
import { formatPath } from './locate.js';
import type { Locator, PathSegment } from './locate.js';
import { compilePattern } from './patterns.js';
import { PATTERN_RULE } from './schema.js';
import { CRON_RULE, EVERY_RULE, cronProblem, parseEvery } from './schedule.js';
import { TAG_KEY_RULE, filterKeyProblem, isSystemTagKey, tagKeyProblem } from './tag-keys.js';
import type { PolicyFinding } from './types.js';

interface Context {
  readonly file: string;
  readonly locator: Locator;
  readonly policy?: string;
  readonly now: Date;
}

type Report = (path: PathSegment[], severity: 'error' | 'warning', message: string, expected?: string, key?: boolean) => void;

/**
 * The end of an exemption in epoch ms (exclusive), or undefined when `until` is not a real date.
 * A bare date means through the end of that day, UTC.
 */
export function exemptionEndMs(until: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})(T.*)?$/.exec(until);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const day = new Date(Date.UTC(y, mo - 1, d));
  if (day.getUTCFullYear() !== y || day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d) return undefined;
  if (m[4] === undefined) return Date.UTC(y, mo - 1, d + 1);
  const t = /^T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(m[4]);
  if (!t || Number(t[1]) > 23 || Number(t[2]) > 59 || Number(t[3] ?? 0) > 59) return undefined;
  const ms = Date.parse(until);
  return Number.isNaN(ms) ? undefined : ms;
}

/** All meaning findings for one raw document. */
export function checkMeaning(raw: unknown, ctx: Context): PolicyFinding[] {
  const findings: PolicyFinding[] = [];
  const report: Report = (path, severity, message, expected, key = false) => {
    const at = ctx.locator.locate(path, { key });
    findings.push({
      file: ctx.file,
      line: at.line,
      column: at.column,
      path: formatPath(path),
      message,
      ...(expected === undefined ? {} : { expected }),
      severity,
      stage: 'meaning',
      ...(ctx.policy === undefined ? {} : { policy: ctx.policy }),
    });
  };
  const spec = field(raw, 'spec');
  if (!isObject(spec)) return findings;
  checkRegions(spec, report);
  const removeKeys = checkRemove(spec, report);
  checkKeep(spec, removeKeys, report);
  checkSelector(spec, report);
  if (isObject(spec.accounts)) checkTagMatch(spec.accounts.tags, ['spec', 'accounts', 'tags'], report);
  checkExemptions(spec, ctx.now, report);
  checkSchedule(spec, report);
  return findings;
}

function checkRegions(spec: Record<string, unknown>, report: Report): void {
  const seen = new Set<string>();
  for (const [i, region] of strings(spec.regions)) {
    if (!/^[a-z]{2}-[a-z0-9-]{1,40}$/.test(region)) continue; // the schema stage reports the shape
    const problem = regionIdProblem(region);
    if (problem !== undefined) {
      report(['spec', 'regions', i], 'error', `region '${region}' ${problem}`, 'a region ID such as cn-hangzhou');
    } else if (!isKnownRegion(region)) {
      // A region VpcPeer opens after this list was written must not be impossible to govern.
      report(
        ['spec', 'regions', i], 'warning',
        `region '${region}' is not in VpcPeer's endpoint list; it is governed anyway (check the ID)`,
        `one of ${KNOWN_REGIONS.join(', ')}`,
      );
    }
    if (seen.has(region)) report(['spec', 'regions', i], 'warning', `region '${region}' is listed twice`);
    seen.add(region);
  }
}

/** Checks spec.remove; returns its exact keys with their indexes (for the keep checks). */
function checkRemove(spec: Record<string, unknown>, report: Report): Array<[number, string]> {
  const remove = spec.remove;
  if (!isObject(remove)) return [];
  const keys = strings(remove.keys);
  const seen = new Set<string>();
  for (const [i, key] of keys) {
    const problem = key.length >= 1 && codePointLength(key) <= MAX_TAG_TEXT_LENGTH ? tagKeyProblem(key) : undefined;
    if (problem) report(['spec', 'remove', 'keys', i], 'error', problem, TAG_KEY_RULE);
    if (/[*?]/.test(key)) {
      report(['spec', 'remove', 'keys', i], 'warning', `'${key}' is an exact key: '*' and '?' match themselves here`, 'put globs and regexes in remove.keyPatterns');
    }
    if (seen.has(key)) report(['spec', 'remove', 'keys', i], 'warning', `key '${key}' is listed twice`);
    seen.add(key);
  }
  const patterns: Array<{ test(v: string): boolean }> = [];
  for (const [i, source] of strings(remove.keyPatterns)) {
    if (source.length === 0) continue;
    const p = compilePattern(source);
    if ('error' in p) {
      report(['spec', 'remove', 'keyPatterns', i], 'error', p.error, p.hint ?? PATTERN_RULE);
      continue;
    }
    patterns.push(p);
    if (p.exact) {
      report(['spec', 'remove', 'keyPatterns', i], 'warning', `'${source}' has no wildcard and matches only the key '${source}'`, 'list exact keys in remove.keys (which also allows the cheaper ListTagResources discovery)');
    }
  }
  if (isObject(remove.where)) {
    for (const [key, value] of Object.entries(remove.where)) {
      const path: PathSegment[] = ['spec', 'remove', 'where', key];
      const problem = key.length >= 1 && codePointLength(key) <= MAX_TAG_TEXT_LENGTH ? tagKeyProblem(key) : undefined;
      if (problem) report(path, 'error', problem, TAG_KEY_RULE, true);
      if (typeof value === 'string') {
        const p = compilePattern(value);
        if ('error' in p) report(path, 'error', p.error, p.hint ?? PATTERN_RULE);
      }
      // A dead condition removes nothing it should not, so it is a warning: the rest of the policy still runs.
      if (!seen.has(key) && !patterns.some((p) => p.test(key)) && remove.all !== true) {
        report(path, 'warning', `condition on '${key}' has no effect: '${key}' is not removed by remove.keys or remove.keyPatterns`, `a key listed in remove.keys or matched by remove.keyPatterns`, true);
      }
    }
  }
  const hasKeys = Array.isArray(remove.keys) && remove.keys.length > 0;
  const hasPatterns = Array.isArray(remove.keyPatterns) && remove.keyPatterns.length > 0;
  if (remove.all === true) {
    if (hasKeys || hasPatterns || remove.where !== undefined) {
      report(['spec', 'remove', 'all'], 'error', 'all: true removes every tag, so it cannot be combined with keys, keyPatterns or where', 'either all: true (with keep to protect keys), or keys/keyPatterns/where');
    }
  } else if (!hasKeys && !hasPatterns) {
    report(['spec', 'remove'], 'error', 'this policy removes nothing', 'at least one of remove.keys, remove.keyPatterns, or remove.all: true', true);
  }
  return keys;
}

function checkKeep(spec: Record<string, unknown>, removeKeys: Array<[number, string]>, report: Report): void {
  const remove = isObject(spec.remove) ? spec.remove : {};
  const removePatterns = strings(remove.keyPatterns);
  for (const [i, entry] of strings(spec.keep)) {
    if (entry.length === 0) continue;
    const p = compilePattern(entry);
    if ('error' in p) {
      report(['spec', 'keep', i], 'error', p.error, p.hint ?? `an exact key or ${PATTERN_RULE}`);
      continue;
    }
    if (p.exact && isSystemTagKey(entry)) {
      report(['spec', 'keep', i], 'warning', `'${entry}' is a system tag key; system tags are always kept, so this entry is redundant`);
    }
    for (const [j, key] of removeKeys) {
      if (key === entry) {
        report(['spec', 'keep', i], 'error', `key '${key}' is both removed (spec.remove.keys[${j}]) and kept; keep wins, so the removal would never happen`, 'remove the key from one of the two lists');
      } else if (!p.exact && p.test(key)) {
        report(['spec', 'remove', 'keys', j], 'warning', `key '${key}' matches keep pattern '${entry}' (spec.keep[${i}]) and is never removed`);
      }
    }
    for (const [j, source] of removePatterns) {
      if (source === entry) {
        report(['spec', 'keep', i], 'error', `'${entry}' is both a remove pattern (spec.remove.keyPatterns[${j}]) and a keep pattern; keep wins, so the removal would never happen`, 'remove it from one of the two lists');
      }
    }
  }
}

function checkTagMatch(value: unknown, path: PathSegment[], report: Report): void {
  if (!isObject(value)) return;
  for (const [key, pattern] of Object.entries(value)) {
    const problem = key.length >= 1 && codePointLength(key) <= MAX_TAG_TEXT_LENGTH ? filterKeyProblem(key) : undefined;
    if (problem) report([...path, key], 'error', problem, '1-128 characters without http:// or https://', true);
    if (typeof pattern === 'string') {
      const p = compilePattern(pattern);
      if ('error' in p) report([...path, key], 'error', p.error, p.hint ?? PATTERN_RULE);
    }
  }
}

function checkSelector(spec: Record<string, unknown>, report: Report): void {
  const selector = spec.selector;
  if (!isObject(selector)) return;
  checkTagMatch(selector.tags, ['spec', 'selector', 'tags'], report);
  const attributes = selector.attributes;
  if (isObject(attributes)) {
    for (const [i, source] of strings(attributes.names)) {
      const p = source.length > 0 ? compilePattern(source) : undefined;
      if (p && 'error' in p) report(['spec', 'selector', 'attributes', 'names', i], 'error', p.error, p.hint ?? PATTERN_RULE);
    }
  }
}

function checkExemptions(spec: Record<string, unknown>, now: Date, report: Report): void {
  const exemptions = spec.exemptions;
  if (!Array.isArray(exemptions)) return;
  for (const [i, exemption] of exemptions.entries()) {
    if (!isObject(exemption)) continue;
    const path: PathSegment[] = ['spec', 'exemptions', i];
    if (exemption.resourceIds === undefined && exemption.tags === undefined) {
      report(path, 'error', 'exemption names no resources', 'resourceIds and/or tags');
    }
    checkTagMatch(exemption.tags, [...path, 'tags'], report);
    const until = exemption.until;
    if (typeof until === 'string' && /^\d{4}-\d{2}-\d{2}/.test(until)) {
      const end = exemptionEndMs(until);
      if (end === undefined) {
        report([...path, 'until'], 'error', `'${until}' is not a real date or time`, 'a calendar date YYYY-MM-DD, optionally with a time and offset');
      } else if (end <= now.getTime()) {
        report([...path, 'until'], 'warning', `exemption expired (until ${until}); it no longer protects these resources`, 'a future date, or delete the exemption');
      }
    }
  }
}

function checkSchedule(spec: Record<string, unknown>, report: Report): void {
  const schedule = spec.schedule;
  if (!isObject(schedule)) return;
  const hasEvery = schedule.every !== undefined;
  const hasCron = schedule.cron !== undefined;
  if (hasEvery && hasCron) {
    report(['spec', 'schedule'], 'error', 'schedule gives both every and cron', 'exactly one of every or cron', true);
  } else if (!hasEvery && !hasCron) {
    report(['spec', 'schedule'], 'error', 'schedule gives neither every nor cron', 'exactly one of every or cron (or omit schedule for every 10m)', true);
  }
  if (typeof schedule.every === 'string' && /^[1-9][0-9]{0,6}[smhd]$/.test(schedule.every)) {
    const every = parseEvery(schedule.every);
    if ('error' in every) report(['spec', 'schedule', 'every'], 'error', every.error, EVERY_RULE);
  }
  if (typeof schedule.cron === 'string' && schedule.cron.length > 0) {
    const problem = cronProblem(schedule.cron);
    if (problem) report(['spec', 'schedule', 'cron'], 'error', problem, CRON_RULE);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function field(v: unknown, name: string): unknown {
  return isObject(v) ? v[name] : undefined;
}

function strings(v: unknown): Array<[number, string]> {
  if (!Array.isArray(v)) return [];
  const out: Array<[number, string]> = [];
  for (const [i, item] of v.entries()) if (typeof item === 'string') out.push([i, item]);
  return out;
}
