import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { markdownAnchors, readRepoFile, repoPath } from './tools.js';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? filesUnder(full) : [full];
  });
}

describe('deploy/README.md links', () => {
  const readme = readRepoFile('deploy', 'README.md');
  const anchors = markdownAnchors(readme);

  it('has the runbook sections the brief asks for', () => {
    for (const anchor of ['install-on-ack-with-rrsa', 'secrets', 'network-policy', 'scale', 'upgrade', 'redis', 'ram-policy', 'image-size']) {
      expect(anchors, anchor).toContain(anchor);
    }
  });

  it('every deploy/README.md#anchor named in deploy files and docker-compose.yml exists', () => {
    const sources = [...filesUnder(repoPath('deploy')), repoPath('docker-compose.yml')];
    const missing: string[] = [];
    let seen = 0;
    for (const file of sources) {
      for (const m of readFileSync(file, 'utf8').matchAll(/deploy\/README\.md#([\w-]+)/g)) {
        seen += 1;
        if (!anchors.has(m[1] ?? '')) missing.push(`${path.relative(repoPath(), file)}: #${m[1]}`);
      }
    }
    expect(seen).toBeGreaterThan(10);
    expect(missing).toEqual([]);
  });

  it('every in-page link of the README exists', () => {
    const links = [...readme.matchAll(/\]\(#([\w-]+)\)/g)].map((m) => m[1] ?? '');
    expect(links.length).toBeGreaterThan(0);
    expect(links.filter((l) => !anchors.has(l))).toEqual([]);
  });
});
