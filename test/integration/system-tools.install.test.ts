// test/support/system-tools.sh, which `npm test` runs first: installs only what is missing, keeps package
// services from starting while it installs (policy-rc.d answers 101), restores policy-rc.d, and fails loudly.
// apt-get is replaced by a recording script on a PATH that holds only the basic tools (nothing is installed).
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const SCRIPT = fileURLToPath(new URL('../support/system-tools.sh', import.meta.url));
const BASICS = ['bash', 'sh', 'cat', 'cp', 'chmod', 'rm', 'mv', 'tail', 'tee', 'mktemp', 'flock', 'touch'];
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Sandbox { dir: string; bin: string; log: string; policy: string; chromium: string }

/** A PATH with the basics, `id` answering 0, and an apt-get that logs its arguments and what policy-rc.d answers. */
function sandbox(opts: { have: string[]; aptFails?: boolean; policyBefore?: string }): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), 'tagwarden-tools-'));
  dirs.push(dir);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  for (const tool of BASICS) {
    const real = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    if (!real) throw new Error(`${tool} missing on this machine`);
    symlinkSync(real, join(bin, tool));
  }
  const script = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  script('id', 'echo 0');
  const log = join(dir, 'apt.log');
  const policy = join(dir, 'policy-rc.d');
  const chromium = join(dir, 'chromium');
  for (const tool of opts.have) {
    if (tool === 'chromium') script('../chromium', 'true');
    else script(tool, 'true');
  }
  const provides: Record<string, string> = { 'redis-server': 'redis-server', 'kubernetes-client': 'kubectl', prometheus: 'promtool' };
  script(
    'apt-get',
    [
      `echo "apt-get $*" >> ${log}`,
      `if [ -x ${policy} ]; then ${policy} prometheus start; echo "policy-rc.d start -> $?" >> ${log}; else echo "policy-rc.d absent" >> ${log}; fi`,
      opts.aptFails ? 'case "$*" in *install*) echo "E: Unable to locate package" >&2; exit 100;; esac' : '',
      'for p in "$@"; do case "$p" in',
      ...Object.entries(provides).map(([pkg, tool]) => `  ${pkg}) printf '#!/bin/sh\\ntrue\\n' > ${bin}/${tool}; chmod 755 ${bin}/${tool};;`),
      `  chromium) printf '#!/bin/sh\\ntrue\\n' > ${chromium}; chmod 755 ${chromium};;`,
      'esac; done',
    ].join('\n'),
  );
  if (opts.policyBefore !== undefined) {
    writeFileSync(policy, opts.policyBefore);
    chmodSync(policy, 0o755);
  }
  return { dir, bin, log, policy, chromium };
}

function run(s: Sandbox, env: Record<string, string> = {}) {
  const r = spawnSync(join(s.bin, 'bash'), [SCRIPT], {
    encoding: 'utf8',
    env: { PATH: s.bin, TMPDIR: s.dir, SYSTEM_TOOLS_CHROMIUM: s.chromium, SYSTEM_TOOLS_POLICY_RC_D: s.policy, ...env },
  });
  return { status: r.status, stderr: r.stderr, log: existsSync(s.log) ? readFileSync(s.log, 'utf8') : '' };
}

describe('system-tools.sh (the first step of npm test)', () => {
  it('does nothing when every tool is there', () => {
    const s = sandbox({ have: ['redis-server', 'kubectl', 'promtool', 'chromium'] });
    const r = run(s);
    expect(r.status).toBe(0);
    expect(r.log).toBe('');
    expect(r.stderr).toBe('');
  });

  it('installs only what is missing, with services kept from starting, and removes its policy-rc.d', () => {
    const s = sandbox({ have: ['redis-server', 'kubectl'] });
    const r = run(s);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.log.trim().split('\n');
    expect(lines).toContain('apt-get -o DPkg::Lock::Timeout=600 update -q');
    expect(lines).toContain('apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends prometheus chromium');
    // Every apt-get call ran while policy-rc.d refused to start services (101 = action forbidden).
    expect(lines.filter((l) => l.startsWith('policy-rc.d'))).toEqual(['policy-rc.d start -> 101', 'policy-rc.d start -> 101']);
    expect(existsSync(s.policy)).toBe(false);
    expect(r.stderr).toMatch(/installed prometheus chromium/);
    // A second run finds everything and installs nothing.
    writeFileSync(s.log, '');
    expect(run(s).status).toBe(0);
    expect(readFileSync(s.log, 'utf8')).toBe('');
  });

  it('puts back the policy-rc.d the machine had', () => {
    const mine = '#!/bin/sh\n# the machine\'s own\nexit 0\n';
    const s = sandbox({ have: ['redis-server', 'promtool', 'chromium'], policyBefore: mine });
    const r = run(s);
    expect(r.status, r.stderr).toBe(0);
    expect(r.log).toMatch(/install -y -q --no-install-recommends kubernetes-client\n/);
    expect(r.log).toMatch(/policy-rc.d start -> 101/);
    expect(readFileSync(s.policy, 'utf8')).toBe(mine);
  });

  it('fails with the reason and the package names when apt-get fails, and restores policy-rc.d', () => {
    const s = sandbox({ have: ['kubectl', 'promtool', 'chromium'], aptFails: true });
    const r = run(s);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/Unable to locate package/);
    expect(r.stderr).toMatch(/apt-get failed installing redis-server/);
    expect(existsSync(s.policy)).toBe(false);
  });

  it('with SYSTEM_TOOLS_NO_INSTALL=1 names what is missing and fails instead of installing', () => {
    const s = sandbox({ have: ['redis-server'] });
    const r = run(s, { SYSTEM_TOOLS_NO_INSTALL: '1' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/missing: kubernetes-client prometheus chromium/);
    expect(r.log).toBe('');
  });
});
