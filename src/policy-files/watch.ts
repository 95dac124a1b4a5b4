// Watches policy paths: fs.watch for prompt notice, a content-hash poll as the fallback; fires only on change.
import { createHash } from 'node:crypto';
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { readPolicySources } from './read.js';
import type { PolicySourcesResult } from './read.js';

/** Options of watchPolicySources. */
export interface WatchOptions {
  /** Re-read and compare every this many ms whatever fs.watch reports. Default 5000. */
  readonly pollMs?: number;
  /** Wait this long after an fs event before re-reading, so a burst of events reads once. Default 100. */
  readonly debounceMs?: number;
  /** Use fs.watch as well as polling. Default true. */
  readonly fsWatch?: boolean;
  /** What the caller already loaded; a difference from it fires at once. Without it the first read is the baseline. */
  readonly baseline?: PolicySourcesResult;
  /** Called when reading or onChange throws; the watcher keeps going. */
  readonly onError?: (err: unknown) => void;
}

/** A running watch. */
export interface PolicyWatcher {
  /** Re-read now; resolves true when the content changed (and onChange was called). Never rejects. */
  check(): Promise<boolean>;
  /** Stops watching and polling; idempotent. */
  close(): void;
}

/** Hash of everything a reload depends on: file names, texts and read problems. */
export function sourcesHash(result: PolicySourcesResult): string {
  return createHash('sha256').update(JSON.stringify([result.sources, result.findings])).digest('hex');
}

/**
 * Calls `onChange` with a fresh read whenever the policy content under `paths` changes: file
 * edits, new or deleted files, and Kubernetes ConfigMap updates (an atomic swap of the `..data`
 * symlink, seen by watching the directory). Unchanged content (a touch, a rewrite with the same
 * bytes) does not fire. Timers and watchers do not keep the process alive.
 */
export function watchPolicySources(
  paths: readonly string[],
  onChange: (result: PolicySourcesResult) => void,
  options: WatchOptions = {},
): PolicyWatcher {
  const pollMs = options.pollMs ?? 5000;
  const debounceMs = options.debounceMs ?? 100;
  const onError = options.onError ?? (() => undefined);
  let lastHash = options.baseline ? sourcesHash(options.baseline) : undefined;
  let closed = false;
  let running: Promise<boolean> | undefined;
  let again = false;
  let debounce: NodeJS.Timeout | undefined;
  const watchers: FSWatcher[] = [];

  const readOnce = async (): Promise<boolean> => {
    const result = await readPolicySources(paths);
    const hash = sourcesHash(result);
    if (closed) return false;
    if (lastHash === undefined) {
      lastHash = hash;
      return false;
    }
    if (hash === lastHash) return false;
    lastHash = hash;
    try {
      onChange(result);
    } catch (e) {
      onError(e);
    }
    return true;
  };

  const check = (): Promise<boolean> => {
    if (closed) return Promise.resolve(false);
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      let changed = false;
      try {
        do {
          again = false;
          changed = (await readOnce()) || changed;
        } while (again && !closed);
      } catch (e) {
        onError(e);
      } finally {
        running = undefined;
      }
      return changed;
    })();
    return running;
  };

  const onEvent = () => {
    if (closed) return;
    if (debounce) clearTimeout(debounce);
    debounce = setTimeout(() => void check(), debounceMs);
    debounce.unref();
  };

  const poll = setInterval(() => void check(), pollMs);
  poll.unref();
  void check();

  if (options.fsWatch ?? true) {
    void (async () => {
      for (const p of paths) {
        let target = p;
        let recursive = false;
        try {
          const st = await stat(p);
          recursive = st.isDirectory();
          // Editors and ConfigMaps replace files by rename, which a watch on the file itself misses.
          if (!recursive) target = dirname(p);
        } catch {
          continue; // a missing path is still polled
        }
        if (closed) return;
        const add = (rec: boolean): boolean => {
          try {
            const w = watch(target, { persistent: false, recursive: rec }, onEvent);
            w.on('error', () => undefined); // a watched directory that disappears: polling carries on
            watchers.push(w);
            return true;
          } catch {
            return false;
          }
        };
        if (!add(recursive) && recursive) add(false);
      }
    })().catch(onError);
  }

  return {
    check,
    close() {
      if (closed) return;
      closed = true;
      clearInterval(poll);
      if (debounce) clearTimeout(debounce);
      for (const w of watchers.splice(0)) w.close();
    },
  };
}
