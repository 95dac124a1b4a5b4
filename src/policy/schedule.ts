// Schedules: `every` intervals and a 5-field cron validator (minute hour day-of-month month day-of-week).

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
export const MIN_EVERY_MS = 60_000;
export const MAX_EVERY_MS = 31 * 86_400_000;
export const EVERY_RULE = 'an interval such as 90s, 10m, 1h or 1d, at least 1m and at most 31d';
export const CRON_RULE =
  '5 fields "minute hour day-of-month month day-of-week" with *, numbers, names (JAN-DEC, SUN-SAT), ranges a-b, lists a,b and steps */n or a-b/n';

/** Milliseconds of an `every` value, or the reason it is not acceptable. */
export function parseEvery(text: string): { ms: number } | { error: string } {
  const m = /^([1-9][0-9]{0,6})([smhd])$/.exec(text);
  if (!m) return { error: `'${text}' is not an interval` };
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (ms < MIN_EVERY_MS) return { error: `'${text}' is shorter than the minimum of 1m` };
  if (ms > MAX_EVERY_MS) return { error: `'${text}' is longer than the maximum of 31d` };
  return { ms };
}

interface FieldSpec {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
}

const FIELDS: readonly FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'] },
  // 0 and 7 are both Sunday.
  { name: 'day-of-week', min: 0, max: 7, names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] },
];

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The set of values a cron field allows, or why it is invalid. */
function parseField(text: string, spec: FieldSpec): Set<number> | string {
  const values = new Set<number>();
  if (text.length === 0) return `${spec.name} field is empty`;
  for (const item of text.split(',')) {
    if (item.length === 0) return `${spec.name} field has an empty list item`;
    const [rangePart, stepPart, extra] = item.split('/');
    if (extra !== undefined) return `${spec.name} item '${item}' has more than one '/'`;
    let step = 1;
    if (stepPart !== undefined) {
      if (!/^[0-9]+$/.test(stepPart)) return `${spec.name} step '${stepPart}' is not a number`;
      step = Number(stepPart);
      if (step < 1 || step > spec.max) return `${spec.name} step ${step} is out of range 1-${spec.max}`;
    }
    let lo: number;
    let hi: number;
    if (rangePart === '*') {
      lo = spec.min;
      hi = spec.max;
    } else {
      const bounds = (rangePart ?? '').split('-');
      if (bounds.length > 2) return `${spec.name} range '${rangePart}' has more than one '-'`;
      const parsed: number[] = [];
      for (const b of bounds) {
        const v = parseValue(b, spec);
        if (typeof v === 'string') return v;
        parsed.push(v);
      }
      lo = parsed[0] ?? spec.min;
      hi = bounds.length === 2 ? (parsed[1] ?? spec.max) : stepPart !== undefined ? spec.max : lo;
      if (lo > hi) return `${spec.name} range '${rangePart}' runs backwards`;
    }
    for (let v = lo; v <= hi; v += step) values.add(v);
  }
  return values;
}

function parseValue(text: string, spec: FieldSpec): number | string {
  if (/^[0-9]+$/.test(text)) {
    const v = Number(text);
    if (v < spec.min || v > spec.max) return `${spec.name} value ${v} is out of range ${spec.min}-${spec.max}`;
    return v;
  }
  const idx = spec.names?.indexOf(text.toUpperCase()) ?? -1;
  if (idx >= 0) return spec.name === 'month' ? idx + 1 : idx;
  if (/[?LW#]/.test(text)) return `${spec.name} value '${text}' uses a non-standard cron extension (? L W #), which is not supported`;
  return `${spec.name} value '${text}' is not a number${spec.names ? ' or a name' : ''}`;
}

/** Undefined when `expr` is a valid 5-field cron expression that can fire, else the reason. */
export function cronProblem(expr: string): string | undefined {
  const fields = expr.trim().split(/\s+/);
  if (expr.trim().startsWith('@')) return `macros such as ${fields[0] ?? ''} are not supported; write the 5 fields`;
  if (fields.length !== 5) return `cron expression has ${fields.length} field${fields.length === 1 ? '' : 's'}, expected 5 (seconds are not supported)`;
  const sets: Set<number>[] = [];
  for (const [i, spec] of FIELDS.entries()) {
    const set = parseField(fields[i] ?? '', spec);
    if (typeof set === 'string') return set;
    sets.push(set);
  }
  // Standard cron ORs day-of-month and day-of-week when both are restricted; only when
  // day-of-week is '*' can a day-of-month/month combination make the schedule never fire.
  const [, , dom, month] = sets;
  if (fields[4] === '*' && fields[2] !== '*' && dom && month) {
    const fires = [...month].some((mo) => [...dom].some((d) => d <= (DAYS_IN_MONTH[mo - 1] ?? 31)));
    if (!fires) return 'this day-of-month and month combination never occurs, so the schedule never fires';
  }
  return undefined;
}
