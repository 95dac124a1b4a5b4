import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readPolicySources, watchPolicySources } from '../../src/policy-files/index.js';
import type { PolicySourcesResult, PolicyWatcher } from '../../src/policy-files/index.js';

let root: string;
let watcher: PolicyWatcher | undefined;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tagwarden-policy-watch-'));
});
afterEach(async () => {
  watcher?.close();
  watcher = undefined;
  await rm(root, { recursive: true, force: true });
});

/** Collects onChange calls; `next(pred)` resolves with the first call (past or future) satisfying pred. */
function recorder() {
  const calls: PolicySourcesResult[] = [];
  const waiters: Array<{ pred: (r: PolicySourcesResult) => boolean; resolve: (r: PolicySourcesResult) => void }> = [];
  return {
    calls,
    onChange(r: PolicySourcesResult) {
      calls.push(r);
      for (const w of [...waiters]) if (w.pred(r)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(r); }
    },
    next(pred: (r: PolicySourcesResult) => boolean): Promise<PolicySourcesResult> {
      const done = calls.find(pred);
      return done ? Promise.resolve(done) : new Promise((resolve) => waiters.push({ pred, resolve }));
    },
  };
}

const texts = (r: PolicySourcesResult) => r.sources.map((s) => s.text);

describe('watchPolicySources', () => {
  it('fires on an edit, with the new content, via fs.watch (poll far away)', async () => {
    await writeFile(join(root, 'p.yaml'), 'v1');
    const rec = recorder();
    const baseline = await readPolicySources([root]);
    watcher = watchPolicySources([root], (r) => rec.onChange(r), { pollMs: 3_600_000, debounceMs: 20, baseline });
    await writeFile(join(root, 'p.yaml'), 'v2');
    const r = await rec.next((x) => texts(x).includes('v2'));
    expect(texts(r)).toEqual(['v2']);
  });

  it('does not fire when the content is unchanged (same bytes rewritten)', async () => {
    await writeFile(join(root, 'p.yaml'), 'same');
    const rec = recorder();
    watcher = watchPolicySources([root], (r) => rec.onChange(r), { pollMs: 3_600_000, fsWatch: false });
    expect(await watcher.check()).toBe(false); // the first read sets the baseline
    await writeFile(join(root, 'p.yaml'), 'same');
    expect(await watcher.check()).toBe(false);
    expect(rec.calls).toEqual([]);
    await writeFile(join(root, 'p.yaml'), 'changed');
    expect(await watcher.check()).toBe(true);
    expect(rec.calls.map(texts)).toEqual([['changed']]);
  });

  it('fires when a baseline given by the caller is already stale', async () => {
    await writeFile(join(root, 'p.yaml'), 'old');
    const baseline = await readPolicySources([root]);
    await writeFile(join(root, 'p.yaml'), 'new');
    const rec = recorder();
    watcher = watchPolicySources([root], (r) => rec.onChange(r), { pollMs: 3_600_000, fsWatch: false, baseline });
    expect(texts(await rec.next(() => true))).toEqual(['new']);
  });

  it('notices a ConfigMap update (atomic ..data symlink swap)', async () => {
    await mkdir(join(root, '..v1'));
    await writeFile(join(root, '..v1', 'p.yaml'), 'cm-v1');
    await symlink('..v1', join(root, '..data'));
    await symlink('..data/p.yaml', join(root, 'p.yaml'));
    const rec = recorder();
    const baseline = await readPolicySources([root]);
    expect(texts(baseline)).toEqual(['cm-v1']);
    watcher = watchPolicySources([root], (r) => rec.onChange(r), { pollMs: 3_600_000, debounceMs: 20, baseline });
    // What kubelet does: write the new dir, point a temporary link at it, rename it over ..data.
    await mkdir(join(root, '..v2'));
    await writeFile(join(root, '..v2', 'p.yaml'), 'cm-v2');
    await symlink('..v2', join(root, '..data_tmp'));
    await rename(join(root, '..data_tmp'), join(root, '..data'));
    await rm(join(root, '..v1'), { recursive: true });
    const r = await rec.next((x) => texts(x).includes('cm-v2'));
    expect(r.sources).toEqual([{ file: join(root, 'p.yaml'), text: 'cm-v2' }]);
  });

  it('falls back to polling when fs.watch is off, and notices new and deleted files', async () => {
    await writeFile(join(root, 'a.yaml'), 'a');
    const rec = recorder();
    watcher = watchPolicySources([root], (r) => rec.onChange(r), { pollMs: 25, fsWatch: false, baseline: await readPolicySources([root]) });
    await writeFile(join(root, 'b.yaml'), 'b');
    await rec.next((x) => texts(x).join() === 'a,b');
    await rm(join(root, 'a.yaml'));
    await rec.next((x) => texts(x).join() === 'b');
  });

  it('watches a single file across an editor-style replace (write temp, rename over)', async () => {
    const file = join(root, 'one.yaml');
    await writeFile(file, 'first');
    const rec = recorder();
    watcher = watchPolicySources([file], (r) => rec.onChange(r), { pollMs: 3_600_000, debounceMs: 20, baseline: await readPolicySources([file]) });
    await writeFile(join(root, '.one.yaml.swp'), 'second');
    await rename(join(root, '.one.yaml.swp'), file);
    expect(texts(await rec.next((x) => texts(x).includes('second')))).toEqual(['second']);
  });

  it('reports an onChange exception to onError and keeps watching; close is idempotent', async () => {
    await writeFile(join(root, 'p.yaml'), '1');
    const errors: unknown[] = [];
    let n = 0;
    watcher = watchPolicySources([root], () => { n++; throw new Error('boom'); }, { pollMs: 3_600_000, fsWatch: false, onError: (e) => errors.push(e) });
    await watcher.check();
    await writeFile(join(root, 'p.yaml'), '2');
    expect(await watcher.check()).toBe(true);
    await writeFile(join(root, 'p.yaml'), '3');
    expect(await watcher.check()).toBe(true);
    expect(n).toBe(2);
    expect(errors.map((e) => (e as Error).message)).toEqual(['boom', 'boom']);
    watcher.close();
    watcher.close();
    await writeFile(join(root, 'p.yaml'), '4');
    expect(await watcher.check()).toBe(false);
  });
});
