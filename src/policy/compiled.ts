// Builds CompiledPolicy values from validated documents and caches their compiled matchers.
import { createHash } from 'node:crypto';
import { exemptionEndMs } from './meaning.js';
import { mustCompilePattern } from './patterns.js';
import type { Pattern } from './patterns.js';
import { parseEvery } from './schedule.js';
import type { PolicyDocument } from './schema.js';
import type { CompiledPolicy, PolicySchedule } from './types.js';

type TagConditions = ReadonlyArray<readonly [string, Pattern]>;

/** The compiled form of a policy's conditions, used by matchResource. */
export interface Matchers {
  readonly regions: ReadonlySet<string>;
  readonly selector: {
    readonly resourceIds?: ReadonlySet<string>;
    readonly tags: TagConditions;
    readonly vpcIds?: ReadonlySet<string>;
    readonly names?: readonly Pattern[];
    readonly statuses?: ReadonlySet<string>;
    readonly resourceGroupIds?: ReadonlySet<string>;
  };
  readonly removeKeys: ReadonlySet<string>;
  readonly removePatterns: readonly Pattern[];
  readonly where: ReadonlyMap<string, Pattern>;
  readonly all: boolean;
  readonly keepExact: ReadonlySet<string>;
  readonly keepPatterns: readonly Pattern[];
  readonly exemptions: ReadonlyArray<{ readonly resourceIds?: ReadonlySet<string>; readonly tags?: TagConditions; readonly endMs: number }>;
}

const cache = new WeakMap<CompiledPolicy, Matchers>();

/** The matchers of a policy; rebuilt from `policy.document` when the object is a copy. */
export function matchersOf(policy: CompiledPolicy): Matchers {
  let m = cache.get(policy);
  if (!m) {
    m = buildMatchers(policy.document);
    cache.set(policy, m);
  }
  return m;
}

const tagConditions = (tags: Record<string, string> | undefined): TagConditions =>
  Object.entries(tags ?? {}).map(([k, v]) => [k, mustCompilePattern(v)] as const);

function buildMatchers(doc: PolicyDocument): Matchers {
  const { spec } = doc;
  const sel = spec.selector;
  const attrs = sel?.attributes;
  const keep = spec.keep.map(mustCompilePattern);
  return {
    regions: new Set(spec.regions),
    selector: {
      ...(sel?.resourceIds ? { resourceIds: new Set(sel.resourceIds) } : {}),
      tags: tagConditions(sel?.tags),
      ...(attrs?.vpcIds ? { vpcIds: new Set(attrs.vpcIds) } : {}),
      ...(attrs?.names ? { names: attrs.names.map(mustCompilePattern) } : {}),
      ...(attrs?.statuses ? { statuses: new Set<string>(attrs.statuses) } : {}),
      ...(attrs?.resourceGroupIds ? { resourceGroupIds: new Set(attrs.resourceGroupIds) } : {}),
    },
    removeKeys: new Set(spec.remove.keys ?? []),
    removePatterns: (spec.remove.keyPatterns ?? []).map(mustCompilePattern),
    where: new Map(Object.entries(spec.remove.where ?? {}).map(([k, v]) => [k, mustCompilePattern(v)])),
    all: spec.remove.all,
    keepExact: new Set(keep.filter((p) => p.exact).map((p) => p.source)),
    keepPatterns: keep.filter((p) => !p.exact),
    exemptions: spec.exemptions.map((e) => ({
      ...(e.resourceIds ? { resourceIds: new Set(e.resourceIds) } : {}),
      ...(e.tags ? { tags: tagConditions(e.tags) } : {}),
      endMs: exemptionEndMs(e.until) ?? Number.NEGATIVE_INFINITY,
    })),
  };
}

/** JSON with object keys sorted, so equal documents hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}

/** A CompiledPolicy from a document that passed every validation stage. */
export function buildPolicy(data: PolicyDocument, source: { file: string; line: number }): CompiledPolicy {
  const document = deepFreeze(structuredClone(data));
  const { spec, metadata } = document;
  let schedule: PolicySchedule;
  if (spec.schedule.cron !== undefined) {
    schedule = { cron: spec.schedule.cron.trim().split(/\s+/).join(' ') };
  } else {
    const every = parseEvery(spec.schedule.every ?? '10m');
    schedule = { everyMs: 'ms' in every ? every.ms : 600_000 };
  }
  const policy: CompiledPolicy = deepFreeze({
    name: metadata.name,
    ...(metadata.description === undefined ? {} : { description: metadata.description }),
    resourceType: spec.resourceType,
    regions: [...new Set(spec.regions)],
    mode: spec.mode,
    schedule,
    maxRemovalsPerRun: spec.limits.maxRemovalsPerRun,
    source: { file: source.file, line: source.line },
    hash: createHash('sha256').update(canonicalJson({ name: metadata.name, spec })).digest('hex'),
    document,
  });
  cache.set(policy, buildMatchers(document));
  return policy;
}

