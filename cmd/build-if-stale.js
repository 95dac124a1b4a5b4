#!/usr/bin/env node
// `npm run demo` and `npm test` build first, but only when dist/ is older than what it is built from: `npm ci`
// has just built it (the prepare script), and a second full build costs 20 s and half a gigabyte of memory.
// Stale means: dist/cmd/tagwarden.js is missing, or any .ts file under cmd/, src/, test/bench/ or test/support/,
// a tsconfig, package.json or package-lock.json is newer than it. Prints what it decides on stderr.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const OUTPUT = join(ROOT, 'dist/cmd/tagwarden.js');
const SOURCES = ['cmd', 'src', 'test/bench', 'test/support'];
const FILES = ['tsconfig.json', 'tsconfig.build.json', 'package.json', 'package-lock.json'];

function newest(dir) {
  let latest = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) latest = Math.max(latest, newest(full));
    else if (entry.name.endsWith('.ts')) latest = Math.max(latest, statSync(full).mtimeMs);
  }
  return latest;
}

let built = 0;
try {
  built = statSync(OUTPUT).mtimeMs;
} catch {
  built = 0;
}
const sources = Math.max(
  ...SOURCES.map((d) => newest(join(ROOT, d))),
  ...FILES.map((f) => {
    try {
      return statSync(join(ROOT, f)).mtimeMs;
    } catch {
      return 0;
    }
  }),
);
if (built > 0 && built >= sources) {
  process.stderr.write('build: dist/ is current, not rebuilding\n');
  process.exit(0);
}
process.stderr.write(built === 0 ? 'build: no dist/ yet, building\n' : 'build: sources changed since the last build, building\n');
const result = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
process.exit(result.status ?? 1);
