// Shared helpers of the offline deploy checks: external tools, kustomize builds, repository files, PromQL names.
// Must not skip a check: a missing tool is a failure whose message says how to install it.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { CONFIG_ENV_NAMES } from '../../src/config/index.js';

/** The repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Absolute path of a repository file. */
export function repoPath(...parts: string[]): string {
  return path.join(ROOT, ...parts);
}

/** Text of a repository file. */
export function readRepoFile(...parts: string[]): string {
  return readFileSync(repoPath(...parts), 'utf8');
}

/** Parses a YAML repository file (with `<<` merge keys, as docker compose does). */
export function readYaml(...parts: string[]): unknown {
  return parse(readRepoFile(...parts), { merge: true });
}

/** The Debian packages that provide each tool; test/support/system-tools.sh (run by `npm test`) installs them when absent. */
export const TOOL_PACKAGES = { kubectl: 'kubernetes-client', promtool: 'prometheus' } as const;
export type ToolName = keyof typeof TOOL_PACKAGES;

/** Absolute path of a tool on PATH; throws with the install command when it is missing. */
export function requireTool(name: ToolName): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new Error(
    `${name} is not on PATH, so the deploy checks cannot run: install it with ` +
      `\`apt-get install -y ${TOOL_PACKAGES[name]}\` (Debian), then re-run the tests.`,
  );
}

/** Runs a tool in the repository root and returns stdout; a non-zero exit throws with stdout and stderr. */
export function runTool(name: ToolName, args: readonly string[]): string {
  const bin = requireTool(name);
  try {
    return execFileSync(bin, args, {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
      maxBuffer: 32 * 1024 * 1024,
    });
  } catch (error) {
    const e = error as { status?: number; stdout?: string; stderr?: string; message: string };
    throw new Error(
      `${name} ${args.join(' ')} failed (exit ${String(e.status)}):\n${e.stdout ?? ''}\n${e.stderr ?? e.message}`,
      { cause: error },
    );
  }
}

/** A Kubernetes object as kustomize prints it. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** `kubectl kustomize <dir>` with default options, parsed into objects. */
export function kustomize(dir: string): K8sObject[] {
  const out = runTool('kubectl', ['kustomize', dir]);
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(out)) {
    if (doc.errors.length > 0) throw new Error(`kustomize output of ${dir} is not YAML: ${doc.errors[0]?.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    objects.push(value as K8sObject);
  }
  return objects;
}

/** The one object of a kind and name; throws when absent. */
export function findObject(objects: readonly K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) {
    const have = objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ');
    throw new Error(`no ${kind}/${name} in the build; it has ${have}`);
  }
  return found;
}

/**
 * Every environment variable the daemon reads: its own config (src/config), the @alicloud/credentials
 * chain (names read from the installed package's code), and Node's own.
 */
export function daemonEnvNames(): Set<string> {
  const names = new Set<string>([...CONFIG_ENV_NAMES, 'NODE_ENV', 'NODE_OPTIONS']);
  for (const name of credentialsEnvNames()) names.add(name);
  return names;
}

/** ALIBABA_CLOUD_* names that the installed @alicloud/credentials reads. */
export function credentialsEnvNames(): Set<string> {
  const dir = repoPath('node_modules', '@alicloud', 'credentials', 'dist');
  const names = new Set<string>();
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.js')) {
        for (const m of readFileSync(full, 'utf8').matchAll(/ALIBABA_CLOUD_[A-Z0-9_]+/g)) names.add(m[0]);
      }
    }
  };
  walk(dir);
  return names;
}

const PROMQL_WORDS = new Set([
  'and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset',
  'inf', 'nan',
]);

/**
 * The metric names a PromQL expression selects. Strings, label matchers, ranges, grouping label lists and
 * Grafana variables are removed first; what remains is an identifier that is not a function call or keyword.
 */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/'(?:[^'\\]|\\.)*'/g, "''")
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w.:])[A-Za-z_:][\w:]*/g)) {
    const word = m[0];
    const rest = stripped.slice((m.index ?? 0) + word.length).trimStart();
    if (rest.startsWith('(')) continue;
    if (PROMQL_WORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names];
}

/** GitHub's anchor for a Markdown heading. */
export function headingAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** Anchors of every heading of a Markdown file (outside fenced code). */
export function markdownAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    if (fenced) continue;
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (m?.[1]) anchors.add(headingAnchor(m[1]));
  }
  return anchors;
}
