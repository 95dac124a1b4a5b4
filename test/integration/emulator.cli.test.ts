// Spawns the built CLI (`npm run build` first; `npm test` does).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEmulatorAdmin } from '../../src/emulator/index.js';
import { spawnTagwarden, type TagwardenProcess } from '../support/harness.js';
import { sdkCaller } from './emulator.support.js';

const env = { PATH: process.env.PATH ?? '', HOME: tmpdir(), ALIBABA_CLOUD_ECS_METADATA_DISABLED: 'true' };
let proc: TagwardenProcess | undefined;

afterEach(async () => {
  if (proc && proc.child.exitCode === null && proc.child.signalCode === null) {
    proc.child.kill('SIGKILL');
    await proc.exited;
  }
  proc = undefined;
});

async function started(args: string[]): Promise<string> {
  proc = spawnTagwarden(['emulator', '--port', '0', ...args], env);
  const line = await proc.waitFor(/listening on http:\/\//);
  const url = /listening on (http:\/\/[^\s]+)/.exec(line)?.[1];
  if (url === undefined) throw new Error(`no url in ${line}`);
  return url;
}

describe('tagwarden emulator (CLI)', () => {
  it('serves a generated estate with the given keys, quotas and faults, then closes cleanly on SIGTERM', async () => {
    const url = await started([
      '--generate', '90', '--seed', '4', '--regions', 'cn-hangzhou,eu-central-1',
      '--access-key-id', 'cli-key', '--access-key-secret', 'cli-secret',
      '--quota', 'ListVpcPeerConnections=2', '--quota-window-ms', '3600000',
      '--fault', 'internalError=1', '--fault', 'actions=GetVpcPeerConnectionAttribute',
    ]);
    const api = sdkCaller(url, { accessKeyId: 'cli-key', accessKeySecret: 'cli-secret' });
    const page = await api.call('ListVpcPeerConnections', {}, { RegionId: 'eu-central-1', MaxResults: 100 });
    expect(page['TotalCount']).toBe(45);
    const id = (page['VpcPeerConnects'] as Array<{ InstanceId: string }>)[0]?.InstanceId;
    expect((await api.fail('GetVpcPeerConnectionAttribute', {}, { InstanceId: id })).code).toBe('InternalError');
    await api.call('ListVpcPeerConnections', {}, { RegionId: 'eu-central-1' });
    expect((await api.fail('ListVpcPeerConnections', {}, { RegionId: 'eu-central-1' })).code).toBe('Throttling.User');
    expect((await sdkCaller(url).fail('ListVpcPeerConnections', {}, { RegionId: 'cn-hangzhou' })).code).toBe('InvalidAccessKeyId.NotFound');
    proc?.child.kill('SIGTERM');
    expect(await proc?.exited).toEqual({ code: 0, signal: null });
    expect(proc?.lines.some((l) => l.includes('SIGTERM, closing'))).toBe(true);
  });

  it('loads a fixture file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-emu-'));
    const file = join(dir, 'state.json');
    writeFileSync(file, JSON.stringify({ resources: [{ id: 'pcc-fixture', region: 'cn-shanghai', tags: { env: 'prod' } }] }));
    const url = await started(['--fixture', file]);
    expect((await createEmulatorAdmin(url).getState()).resources.map((r) => r.id)).toEqual(['pcc-fixture']);
    proc?.child.kill('SIGINT');
    expect((await proc?.exited)?.code).toBe(0);
  });

  it('refuses bad flags without starting', async () => {
    proc = spawnTagwarden(['emulator', '--port', '0', '--fault', 'reset=3'], env);
    expect((await proc.exited).code).not.toBe(0);
    expect(proc.lines.join('\n')).toMatch(/faults\.reset/);
    expect(proc.lines.some((l) => l.includes('listening'))).toBe(false);
  });
});
