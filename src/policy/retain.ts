// Reload rule for the daemon: a policy whose file now fails keeps its last good version.
import type { CompiledPolicy, PolicyFinding } from './types.js';

/**
 * Merges a reload result with the previous policy set: every newly valid policy is used; a
 * previous policy that is missing from the new set is kept (its last good version) when its
 * file has an error finding now, and dropped otherwise (it was deleted or renamed in a valid file).
 * `retained` lists the kept old versions, for logging.
 */
export function retainLastGood(
  previous: readonly CompiledPolicy[],
  next: { readonly policies: readonly CompiledPolicy[]; readonly findings: readonly PolicyFinding[] },
): { policies: CompiledPolicy[]; retained: CompiledPolicy[] } {
  const failedFiles = new Set(next.findings.filter((f) => f.severity === 'error').map((f) => f.file));
  const names = new Set(next.policies.map((p) => p.name));
  const retained = previous.filter((p) => !names.has(p.name) && failedFiles.has(p.source.file));
  const policies = [...next.policies, ...retained].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { policies, retained };
}
