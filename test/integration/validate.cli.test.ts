import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { PolicyFinding } from '../../src/policy/index.js';

const CLI = 'dist/cmd/tagwarden.js';
const NOW = '2026-11-27T12:00:00Z';

function newestSource(dirs: string[]): number {
  let newest = 0;
  for (const dir of dirs) {
    for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
      if (entry.isFile() && entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
    }
  }
  return newest;
}

/** Runs the compiled CLI; resolves with its exit code and output (never rejects on a non-zero exit). */
function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(() => {
  // `npm test` builds first (pretest); a direct vitest run rebuilds only when dist is missing or stale.
  const built = join('dist', 'cmd', 'commands', 'validate.js');
  if (!existsSync(built) || statSync(built).mtimeMs < newestSource(['src/policy', 'src/policy-files', 'cmd'])) {
    try {
      execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'pipe' });
    } catch {
      // tsc still emits when some other module has a type error; the tests below judge the CLI itself.
    }
  }
}, 120_000);

describe('tagwarden validate', () => {
  it('exits 0 for the shipped policies and lists each valid policy and a summary', async () => {
    const { code, stdout, stderr } = await run(['validate', 'policies', '--now', NOW]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('ok remove-legacy-finance-keys (policies/remove-legacy-finance-keys.yaml:');
    expect(stdout).toContain('discovery ListTagResources by key');
    expect(stdout.trim().split('\n').at(-1)).toBe('7 valid policies in 6 files: 0 errors, 0 warnings');
  });

  it('exits 1 for the broken fixtures and prints every finding as file:line:col: severity: path: message (valid: ...)', async () => {
    const { code, stdout } = await run(['validate', 'test/fixtures/policies-bad', '--now', NOW]);
    expect(code).toBe(1);
    const lines = stdout.trim().split('\n');
    expect(lines).toContain(
      "test/fixtures/policies-bad/a-many-errors.yaml:7:26: warning: spec.regions[1]: region 'cn-moon' is not in VpcPeer's endpoint list; it is governed anyway (check the ID) (valid: one of cn-qingdao, cn-beijing, cn-zhangjiakou, cn-huhehaote, cn-wulanchabu, cn-hangzhou, cn-shanghai, cn-nanjing, cn-shenzhen, cn-heyuan, cn-guangzhou, cn-chengdu, cn-hongkong, ap-northeast-1, ap-northeast-2, ap-southeast-1, ap-southeast-2, ap-southeast-3, ap-southeast-5, ap-southeast-6, ap-southeast-7, ap-south-1, us-east-1, us-west-1, eu-west-1, eu-central-1, me-east-1, me-central-1) [policy Strip_Temp]",
    );
    expect(lines.some((l) => /^test\/fixtures\/policies-bad\/b-syntax\.yaml:\d+:\d+: error: /.test(l))).toBe(true);
    expect(lines.some((l) => l.startsWith('test/fixtures/policies-bad/c-duplicate.yaml:5:9: error: metadata.name: policy name \'good-neighbour\' is already used'))).toBe(true);
    expect(lines).toContain(`ok good-neighbour (test/fixtures/policies-bad/a-many-errors.yaml:27): enforce, every 10m, cn-shanghai, discovery ListTagResources by key, at most 1000 removals per run`);
    expect(lines.at(-1)).toMatch(/^1 valid policy in 3 files: \d+ errors, 3 warnings$/);
  });

  it('prints machine-readable findings with --json', async () => {
    const { code, stdout } = await run(['validate', 'test/fixtures/policies-bad', 'policies/dev-unknown-owner.yaml', '--json', '--now', NOW]);
    expect(code).toBe(1);
    const report = JSON.parse(stdout) as { valid: boolean; summary: Record<string, number>; policies: Array<{ name: string }>; findings: PolicyFinding[] };
    expect(report.valid).toBe(false);
    expect(report.policies.map((p) => p.name)).toEqual(['good-neighbour', 'dev-unknown-owner']);
    expect(report.summary.files).toBe(4);
    expect(report.summary.errors).toBe(report.findings.filter((f) => f.severity === 'error').length);
    expect(report.findings.find((f) => f.path === 'spec.mode')).toEqual({
      file: 'test/fixtures/policies-bad/a-many-errors.yaml', line: 22, column: 9, path: 'spec.mode', message: 'invalid value "sometimes"',
      expected: 'enforce or dryRun', severity: 'error', stage: 'schema', policy: 'Strip_Temp',
    });
  });

  it('accepts ap-south-1 (Mumbai) cleanly, and an unlisted well-formed region with a warning and exit 0', async () => {
    const mumbai = await run(['validate', 'test/fixtures/policies-regions/mumbai.yaml', '--now', NOW]);
    expect(mumbai.stdout.trim().split('\n').at(-1)).toBe('1 valid policy in 1 file: 0 errors, 0 warnings');
    expect(mumbai.stdout).toContain('ap-south-1');
    expect(mumbai.code).toBe(0);
    const future = await run(['validate', 'test/fixtures/policies-regions/unlisted.yaml', '--now', NOW]);
    expect(future.stdout).toContain("warning: spec.regions[1]: region 'ap-southeast-9' is not in VpcPeer's endpoint list; it is governed anyway");
    expect(future.stdout.trim().split('\n').at(-1)).toBe('1 valid policy in 1 file: 0 errors, 1 warning');
    expect(future.code).toBe(0);
  });

  it('exits 1 for a path that does not exist, and 0 with only warnings', async () => {
    const missing = await run(['validate', 'no/such/dir']);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toContain('no/such/dir: error: cannot read path (ENOENT)');
    const warningsOnly = await run(['validate', 'policies', '--now', '2027-02-15T00:00:00Z']);
    expect(warningsOnly.code).toBe(0);
    expect(warningsOnly.stdout).toMatch(/warning: spec\.exemptions\[0\]\.until: exemption expired \(until 2027-01-31\)/);
  });

  it('refuses to run without a path, and prints the JSON Schema on request', async () => {
    const none = await run(['validate']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('give at least one policy file or directory');
    const schema = await run(['validate', '--print-schema']);
    expect(schema.code).toBe(0);
    expect(JSON.parse(schema.stdout)).toMatchObject({ $schema: 'https://json-schema.org/draft/2020-12/schema', title: 'tagwarden TagPolicy' });
  });
});
