import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readPolicySources } from '../../src/policy-files/index.js';
import { compilePolicies, formatFinding } from '../../src/policy/index.js';

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

  it('refuses symlinks that leave the policy directory (files and directories), never reading them', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'tagwarden-outside-'));
    try {
      await writeFile(join(outside, 'secret.yaml'), 'OUTSIDE-SECRET-7f3a: 1\n');
      await write('ok.yaml', 'ok');
      await symlink('/etc/passwd', join(root, 'passwd.yaml'));
      await symlink('/proc/self/environ', join(root, 'environ.yaml'));
      await symlink(join(outside, 'secret.yaml'), join(root, 'relative-looking.yaml'));
      await symlink(outside, join(root, 'shared'));
      const { sources, findings } = await readPolicySources([root]);
      expect(sources.map((s) => s.text)).toEqual(['ok']);
      const refused = findings.filter((f) => f.message.includes('leads outside the policy directory'));
      expect(refused.map((f) => f.file).sort()).toEqual(
        ['environ.yaml', 'passwd.yaml', 'relative-looking.yaml', 'shared'].map((f) => join(root, f)),
      );
      expect(refused.every((f) => f.severity === 'error')).toBe(true);
      const text = JSON.stringify(findings);
      for (const leak of ['root:x:0', 'OUTSIDE-SECRET-7f3a', 'PATH=', 'HOME=']) expect(text).not.toContain(leak);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('refuses a named file that is a symlink out of its own directory; a link within it is read', async () => {
    await write('real.yaml', 'real');
    await symlink('real.yaml', join(root, 'alias.yaml'));
    await symlink('/etc/passwd', join(root, 'passwd.yaml'));
    const { sources, findings } = await readPolicySources([join(root, 'alias.yaml'), join(root, 'passwd.yaml')]);
    expect(sources).toEqual([{ file: join(root, 'alias.yaml'), text: 'real' }]);
    expect(findings).toMatchObject([{ file: join(root, 'passwd.yaml'), severity: 'error', message: expect.stringContaining('leads outside the policy directory') }]);
    expect(JSON.stringify(findings)).not.toContain('root:x:0');
  });

  it('keeps reading a ConfigMap volume whose directory is itself mounted through a symlink, beside a refused link', async () => {
    const mount = await mkdtemp(join(tmpdir(), 'tagwarden-mount-'));
    try {
      await write('..2026_12_01_12_00_00.1/one.yaml', 'one');
      await symlink('..2026_12_01_12_00_00.1', join(root, '..data'));
      await symlink('..data/one.yaml', join(root, 'one.yaml'));
      await symlink('/etc/passwd', join(root, 'evil.yaml'));
      await symlink(root, join(mount, 'policies'));
      const { sources, findings } = await readPolicySources([join(mount, 'policies')]);
      expect(sources).toEqual([{ file: join(mount, 'policies', 'one.yaml'), text: 'one' }]);
      expect(findings).toMatchObject([{ file: join(mount, 'policies', 'evil.yaml'), severity: 'error' }]);
    } finally {
      await rm(mount, { recursive: true, force: true });
    }
  });

  it('a file whose whole content is one scalar is named by its kind, never echoed, in findings', async () => {
    const line = 'db_password=SCALAR-SECRET-91 and the rest of a line long enough to matter';
    await write('notes.yaml', `${line}\n`);
    await write('list.yaml', '- LIST-SECRET-55\n');
    const read = await readPolicySources([root]);
    const { findings } = compilePolicies(read.sources, new Date('2026-12-01T12:00:00Z'));
    expect(findings.length).toBeGreaterThanOrEqual(2);
    const shown = findings.map(formatFinding).join('\n') + JSON.stringify(findings);
    expect(shown).not.toContain('SCALAR-SECRET-91');
    expect(shown).not.toContain('LIST-SECRET-55');
    expect(findings.map((f) => f.message)).toContain(`wrong type: got a string of ${line.length} characters`);
  });
});
