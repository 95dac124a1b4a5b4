import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readPolicySources } from '../../src/policy-files/index.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tagwarden-policy-files-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const write = async (rel: string, text: string) => {
  await mkdir(join(root, rel, '..'), { recursive: true });
  await writeFile(join(root, rel), text);
};

describe('readPolicySources', () => {
  it('expands directories recursively to *.yaml and *.yml files, sorted, skipping hidden names and other extensions', async () => {
    await write('b.yaml', 'b');
    await write('a.yml', 'a');
    await write('sub/c.YAML', 'c');
    await write('sub/deeper/d.yaml', 'd');
    await write('notes.txt', 'x');
    await write('.hidden.yaml', 'h');
    await write('.git/e.yaml', 'e');
    const { sources, findings } = await readPolicySources([root]);
    expect(findings).toEqual([]);
    expect(sources.map((s) => s.file)).toEqual(['a.yml', 'b.yaml', 'sub/c.YAML', 'sub/deeper/d.yaml'].map((f) => join(root, f)));
    expect(sources.map((s) => s.text)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('reads an explicitly named file whatever its extension, and a file named twice once', async () => {
    await write('p.txt', 'p');
    const file = join(root, 'p.txt');
    const { sources } = await readPolicySources([file, file, root]);
    expect(sources).toEqual([{ file, text: 'p' }]);
  });

  it('reads a ConfigMap volume through its top-level symlinks, once per file', async () => {
    // The layout kubelet writes: ..2026_11_27_…/files, ..data -> that dir, top-level name -> ..data/name.
    await write('..2026_11_27_10_00_00.123/one.yaml', 'one');
    await write('..2026_11_27_10_00_00.123/two.yaml', 'two');
    await symlink('..2026_11_27_10_00_00.123', join(root, '..data'));
    await symlink('..data/one.yaml', join(root, 'one.yaml'));
    await symlink('..data/two.yaml', join(root, 'two.yaml'));
    const { sources, findings } = await readPolicySources([root]);
    expect(findings).toEqual([]);
    expect(sources).toEqual([
      { file: join(root, 'one.yaml'), text: 'one' },
      { file: join(root, 'two.yaml'), text: 'two' },
    ]);
  });

  it('follows symlinked directories without looping', async () => {
    await write('real/p.yaml', 'p');
    await symlink(root, join(root, 'real', 'loop'));
    const { sources } = await readPolicySources([root]);
    expect(sources.map((s) => s.text)).toEqual(['p']);
  });

  it('turns missing, unreadable and dangling paths into findings and still reads the rest', async () => {
    await write('ok.yaml', 'ok');
    await write('secret.yaml', 's');
    await chmod(join(root, 'secret.yaml'), 0o000);
    await symlink('nowhere.yaml', join(root, 'dangling.yaml'));
    const missing = join(root, 'missing');
    const { sources, findings } = await readPolicySources([root, missing]);
    expect(sources.map((s) => s.text)).toContain('ok');
    const byFile = new Map(findings.map((f) => [f.file, f]));
    expect(byFile.get(join(root, 'dangling.yaml'))).toMatchObject({ severity: 'error', line: 0, message: 'cannot read file (ENOENT)' });
    expect(byFile.get(missing)).toMatchObject({ severity: 'error', message: 'cannot read path (ENOENT)' });
    if (process.getuid?.() !== 0) {
      // root reads any file, so the permission case only shows for other users.
      expect(byFile.get(join(root, 'secret.yaml'))).toMatchObject({ severity: 'error', message: 'cannot read file (EACCES)' });
    }
  });

  it('warns about a directory without policy files', async () => {
    await write('readme.md', 'x');
    const { sources, findings } = await readPolicySources([root]);
    expect(sources).toEqual([]);
    expect(findings).toMatchObject([{ file: root, severity: 'warning', message: 'no *.yaml or *.yml files found' }]);
  });

  it('refuses oversized files and strips a byte order mark', async () => {
    await write('big.yaml', 'x'.repeat(1024 * 1024 + 1));
    await write('bom.yaml', '\uFEFFa: 1');
    const { sources, findings } = await readPolicySources([root]);
    expect(sources).toEqual([{ file: join(root, 'bom.yaml'), text: 'a: 1' }]);
    expect(findings[0]?.message).toMatch(/larger than the 1048576-byte limit/);
  });
});
