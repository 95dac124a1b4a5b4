// The README stays true to the CLI: every flag that the built command's `--help` lists has its row in the README's
// "Every flag" table, every exit code the CLI can end with has its row in "Exit codes", and every environment
// variable the config reads is in "Configuration". Run against the built CLI, as a user reads `--help`.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_ENV_NAMES } from '../../src/config/index.js';
import { PLAN_EXIT, PLAN_REFUSED_EXIT } from '../../src/runtime/index.js';
import { CLI, REPO_ROOT } from '../support/harness.js';

const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');

function section(title: string): string {
  const start = README.indexOf(`\n${title}\n`);
  if (start < 0) throw new Error(`README has no "${title}" section`);
  const rest = README.slice(start + title.length + 2);
  const end = rest.search(/\n#{2,3} /);
  return end < 0 ? rest : rest.slice(0, end);
}

function help(path: readonly string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...path, '--help'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' } });
  expect(r.status, `${path.join(' ')} --help: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** The lines of a help section ("Options:", "Commands:") up to the next blank line. */
function block(text: string, name: string): string[] {
  const lines = text.split('\n');
  const at = lines.indexOf(`${name}:`);
  if (at < 0) return [];
  const end = lines.findIndex((l, i) => i > at && l.trim() === '');
  return lines.slice(at + 1, end < 0 ? undefined : end);
}

/** Every command path of the CLI (`run`, `jobs list`, ...), from the help texts themselves. */
function commandPaths(path: readonly string[] = []): string[][] {
  const names = block(help(path), 'Commands')
    .map((l) => /^ {2}(\S+)/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined && n !== 'help');
  return names.flatMap((n) => {
    const sub = [...path, n];
    const below = commandPaths(sub);
    return below.length > 0 ? below : [sub];
  });
}

describe('README and the CLI', () => {
  it('lists every flag of every command, as --help prints it', () => {
    const table = section('### Every flag');
    const paths = commandPaths();
    expect(paths.map((p) => p.join(' '))).toEqual(expect.arrayContaining(['run', 'plan', 'validate', 'enqueue', 'jobs list', 'jobs show', 'jobs retry', 'demo', 'emulator']));
    const missing: string[] = [];
    for (const path of [[], ...paths]) {
      const name = path.length === 0 ? 'tagwarden' : path.join(' ');
      for (const line of block(help(path), 'Options')) {
        const flags = /^ {2}((?:-\w, )?--[\w-]+(?: <[^>]+>| \[[^\]]+\])?)/.exec(line)?.[1];
        if (!flags) continue;
        const row = flags === '-h, --help' ? '| every command | `-h, --help` |' : `| \`${name}\` | \`${flags}\` |`;
        if (!table.includes(row)) missing.push(`${name} ${flags}`);
      }
    }
    expect(missing, 'flags in --help without their row in the README "Every flag" table').toEqual([]);
  });

  it('gives every exit code the CLI can end with', () => {
    const codes = new Set<number>([...Object.values(PLAN_EXIT), PLAN_REFUSED_EXIT]);
    const files = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
    for (const file of files(join(REPO_ROOT, 'cmd'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/(?:process\.exitCode = |process\.exit\(|exitAfterFlush\()([^;\n]*)/g)) {
        for (const n of (m[1] ?? '').matchAll(/(?<![\w.])(\d+)(?![\w.])/g)) codes.add(Number(n[1]));
      }
    }
    const table = section('### Exit codes');
    const documented = new Set([...table.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1])));
    expect([...codes].sort((a, b) => a - b)).toEqual([...documented].sort((a, b) => a - b));
    expect(codes).toContain(4);
  });

  it('documents every environment variable the config reads', () => {
    const config = section('## Configuration');
    expect(CONFIG_ENV_NAMES.filter((name) => !config.includes(`\`${name}\``))).toEqual([]);
  });
});
