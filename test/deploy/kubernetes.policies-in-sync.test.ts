import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findObject, kustomize, readYaml, repoPath } from './tools.js';

const FIX = 'run `bash deploy/sync.sh` to refresh deploy/kubernetes/base/policies from policies/';

function policyFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name) && e.name !== 'kustomization.yaml')
    .map((e) => e.name)
    .sort();
}

describe('policies copy for kustomize', () => {
  const source = repoPath('policies');
  const copy = repoPath('deploy', 'kubernetes', 'base', 'policies');

  it('policies/ holds at least one policy, all at the top level (ConfigMap keys are flat)', () => {
    expect(policyFiles(source).length).toBeGreaterThan(0);
    const nested = readdirSync(source, { withFileTypes: true, recursive: true }).filter(
      (e) => e.isFile() && /\.ya?ml$/.test(e.name) && e.parentPath !== source,
    );
    expect(nested.map((e) => `${e.parentPath}/${e.name}`)).toEqual([]);
  });

  it('deploy/kubernetes/base/policies has the same files as policies/, byte for byte', () => {
    expect(policyFiles(copy), FIX).toEqual(policyFiles(source));
    for (const name of policyFiles(source)) {
      const same = readFileSync(`${source}/${name}`).equals(readFileSync(`${copy}/${name}`));
      expect(same, `${name} differs: ${FIX}`).toBe(true);
    }
  });

  it('the generator lists exactly those files, and the built ConfigMap carries them unchanged', () => {
    const generator = readYaml('deploy', 'kubernetes', 'base', 'policies', 'kustomization.yaml') as {
      configMapGenerator: Array<{ name: string; files?: string[] }>;
    };
    expect([...(generator.configMapGenerator[0]?.files ?? [])].sort(), FIX).toEqual(policyFiles(source));

    const built = findObject(kustomize('deploy/kubernetes/overlays/ack'), 'ConfigMap', 'tagwarden-policies') as {
      data?: Record<string, string>;
    };
    expect(Object.keys(built.data ?? {}).sort()).toEqual(policyFiles(source));
    for (const name of policyFiles(source)) {
      expect(built.data?.[name], name).toBe(readFileSync(`${source}/${name}`, 'utf8'));
    }
  });
});
