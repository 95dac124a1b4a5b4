// Reads policy files: explicit files as given, directories recursively (*.yaml, *.yml), hidden names skipped.
import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import type { PolicyFinding, PolicySource } from '../policy/index.js';

/** Files larger than this are reported, not read (a policy file is a few KiB). */
export const MAX_POLICY_FILE_BYTES = 1024 * 1024;

/** The policy sources under some paths and the problems met reading them. */
export interface PolicySourcesResult {
  readonly sources: PolicySource[];
  readonly findings: PolicyFinding[];
}

const POLICY_FILE = /\.ya?ml$/i;

function readFinding(file: string, message: string, severity: 'error' | 'warning' = 'error'): PolicyFinding {
  return { file, line: 0, column: 0, path: '', message, severity, stage: 'yaml', expected: 'a readable YAML file or a directory of them' };
}

/** True when `real` (a resolved path) is `root` or lies under it. */
function within(root: string, real: string): boolean {
  return real === root || real.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** The finding for a symlink whose target leaves the policy root: names the link and its target, never reads it. */
function escapeFinding(link: string, target: string, root: string): PolicyFinding {
  return {
    ...readFinding(link, `symbolic link leads outside the policy directory (${root}) to ${target}; refused, not read`),
    expected: 'a file inside the policy directory (links within it, like a ConfigMap\'s ..data, are fine)',
  };
}

function errorCode(e: unknown): string {
  if (typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string') return e.code;
  return e instanceof Error ? e.message : String(e);
}

/**
 * Lists the policy files under `dir`, sorted. Names starting with '.' are skipped: that hides
 * editor and VCS files and the `..data` / `..2024_…` directories of a Kubernetes ConfigMap
 * volume, whose files are read through the top-level symlinks instead. Symlinks are followed
 * only while they stay inside `root` (the real path of the directory named on the command line);
 * one that leaves it is a finding and is not read. A directory reached twice (a symlink loop) is read once.
 */
async function listDirectory(dir: string, root: string, seenDirs: Set<string>, findings: PolicyFinding[]): Promise<string[]> {
  let real: string;
  try {
    real = await realpath(dir);
  } catch (e) {
    findings.push(readFinding(dir, `cannot read directory (${errorCode(e)})`));
    return [];
  }
  if (seenDirs.has(real)) return [];
  seenDirs.add(real);
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    findings.push(readFinding(dir, `cannot read directory (${errorCode(e)})`));
    return [];
  }
  const files: string[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const full = join(dir, entry.name);
    let isDir = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      try {
        const target = await realpath(full);
        if (!within(root, target)) {
          findings.push(escapeFinding(full, target, root));
          continue;
        }
        const st = await stat(target);
        isDir = st.isDirectory();
        isFile = st.isFile();
      } catch (e) {
        if (POLICY_FILE.test(entry.name)) findings.push(readFinding(full, `cannot read file (${errorCode(e)})`));
        continue;
      }
    }
    if (isDir) files.push(...(await listDirectory(full, root, seenDirs, findings)));
    else if (isFile && POLICY_FILE.test(entry.name)) files.push(full);
  }
  return files.sort();
}

/**
 * Reads the policy sources named by `paths`: a file is read whatever its extension; a directory
 * is expanded recursively to its *.yaml and *.yml files, sorted (see listDirectory for hidden
 * names and ConfigMap volumes). A file reached twice (same real path) is read once. Unreadable,
 * oversized or missing paths become error findings; an empty directory is a warning. A symlink
 * whose target lies outside its policy root (the named directory, or for a named file the
 * directory holding it) is refused with a finding and never opened.
 */
export async function readPolicySources(paths: readonly string[]): Promise<PolicySourcesResult> {
  const findings: PolicyFinding[] = [];
  const files: Array<{ file: string; root: string }> = [];
  const seenDirs = new Set<string>();
  for (const p of paths) {
    let st;
    let root: string;
    try {
      st = await stat(p);
      root = await realpath(st.isDirectory() ? p : dirname(p));
    } catch (e) {
      findings.push(readFinding(p, `cannot read path (${errorCode(e)})`));
      continue;
    }
    if (st.isDirectory()) {
      const before = findings.length;
      const listed = await listDirectory(p, root, seenDirs, findings);
      if (listed.length === 0 && findings.length === before) findings.push(readFinding(p, 'no *.yaml or *.yml files found', 'warning'));
      files.push(...listed.map((file) => ({ file, root })));
    } else if (st.isFile()) {
      files.push({ file: p, root });
    } else {
      findings.push(readFinding(p, 'not a regular file or directory'));
    }
  }
  const sources: PolicySource[] = [];
  const seenFiles = new Set<string>();
  for (const { file, root } of files) {
    try {
      const real = await realpath(file);
      // Checked again here: a named file may be a link, and a link may have been swapped since listing.
      if (!within(root, real)) {
        findings.push(escapeFinding(file, real, root));
        continue;
      }
      if (seenFiles.has(real)) continue;
      seenFiles.add(real);
      const st = await lstat(real);
      if (st.size > MAX_POLICY_FILE_BYTES) {
        findings.push(readFinding(file, `file is ${st.size} bytes, larger than the ${MAX_POLICY_FILE_BYTES}-byte limit`));
        continue;
      }
      const text = await readFile(real, 'utf8');
      sources.push({ file, text: text.startsWith('\uFEFF') ? text.slice(1) : text });
    } catch (e) {
      findings.push(readFinding(file, `cannot read file (${errorCode(e)})`));
    }
  }
  return { sources, findings };
}
