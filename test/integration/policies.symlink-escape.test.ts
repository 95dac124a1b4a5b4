// A policy directory holding symlinks that leave it (-> /etc/passwd, -> /proc/self/environ, -> a file with a
// secret elsewhere) beside a ConfigMap-style layout: `validate` and the daemon refuse the escaping links with
// a finding, keep loading the ConfigMap's policy, and neither the CLI output, the daemon's logs nor
// GET /v1/policies carries a byte of the linked files.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startEmulator, type RunningEmulator } from '../../src/emulator/index.js';
import { cleanupPrefix, daemonPort, eventually, policyDoc, spawnTagwarden, tagwardenEnv, uniquePrefix, type TagwardenProcess } from '../support/harness.js';

const TOKEN = 'symlink-test-api-token-77aa88bb99cc';
const ENV_MARKER = 'ENVIRON-SECRET-4c1d9e';
const FILE_MARKER = 'OUTSIDE-FILE-SECRET-8b2f';

function layout(): { dir: string; outside: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tw-symlink-policies-'));
  const outside = mkdtempSync(join(tmpdir(), 'tw-symlink-outside-'));
  writeFileSync(join(outside, 'creds.yaml'), `token: ${FILE_MARKER}\n`);
  const data = join(dir, '..2026_12_01_12_00_00.42');
  mkdirSync(data);
  writeFileSync(join(data, 'strip.yaml'), stringify(policyDoc('cm-strip', { regions: ['cn-hangzhou'], remove: { keys: ['tmp'] }, schedule: { every: '1h' } })));
  symlinkSync('..2026_12_01_12_00_00.42', join(dir, '..data'));
  symlinkSync('..data/strip.yaml', join(dir, 'strip.yaml'));
  symlinkSync('/etc/passwd', join(dir, 'passwd.yaml'));
  symlinkSync('/proc/self/environ', join(dir, 'environ.yaml'));
  symlinkSync(join(outside, 'creds.yaml'), join(dir, 'creds.yaml'));
  return { dir, outside };
}

describe('policy symlinks that leave the policy directory', () => {
  let emulator: RunningEmulator | undefined;
  const procs: TagwardenProcess[] = [];
  const dirs: string[] = [];
  const prefix = uniquePrefix('symlink');
  afterEach(async () => {
    for (const p of procs.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await emulator?.close();
    await cleanupPrefix(prefix);
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  const leaks = (text: string) => [ENV_MARKER, FILE_MARKER, 'root:x:0:0', '/bin/bash', 'ALIBABA_CLOUD_ACCESS_KEY_SECRET'].filter((m) => text.includes(m));

  it('validate refuses them with findings and echoes nothing of them', async () => {
    const { dir, outside } = layout();
    dirs.push(dir, outside);
    emulator = await startEmulator({});
    for (const args of [['validate', dir], ['validate', '--json', dir]]) {
      const proc = spawnTagwarden(args, { ...tagwardenEnv({ emulatorUrl: emulator.url, prefix }), TW_MARKER: ENV_MARKER });
      procs.push(proc);
      expect((await proc.exited).code).toBe(1);
      const out = proc.lines.join('\n');
      for (const f of ['passwd.yaml', 'environ.yaml', 'creds.yaml']) expect(out).toContain(f);
      expect(out).toContain('leads outside the policy directory');
      expect(leaks(out)).toEqual([]);
    }
  }, 60_000);

  it('the daemon loads the ConfigMap policy, lists the refused links in /v1/policies, and leaks nothing', async () => {
    const { dir, outside } = layout();
    dirs.push(dir, outside);
    emulator = await startEmulator({});
    const daemon = spawnTagwarden(['run'], {
      ...tagwardenEnv({ emulatorUrl: emulator.url, prefix, regions: ['cn-hangzhou'], extra: { TAGWARDEN_POLICIES_DIR: dir, TAGWARDEN_API_TOKEN: TOKEN } }),
      TW_MARKER: ENV_MARKER,
    });
    procs.push(daemon);
    const port = await daemonPort(daemon);
    const body = await eventually(async () => {
      const res = await fetch(`http://127.0.0.1:${port}/v1/policies`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const text = await res.text();
      return res.status === 200 && text.includes('cm-strip') ? text : undefined;
    });
    const views = (JSON.parse(body) as { policies: Array<{ name: string; errors?: string[] }> }).policies;
    expect(views.map((v) => v.name)).toContain('cm-strip');
    const errors = views.flatMap((v) => v.errors ?? []).join('\n');
    for (const f of ['passwd.yaml', 'environ.yaml', 'creds.yaml']) expect(errors).toMatch(new RegExp(`${f}.*leads outside the policy directory`));
    expect(leaks(body)).toEqual([]);
    daemon.child.kill('SIGTERM');
    expect((await daemon.exited).code).toBe(0);
    const logs = daemon.lines.join('\n');
    expect(logs).toContain('leads outside the policy directory');
    expect(leaks(logs)).toEqual([]);
  }, 60_000);
});
