// Compiles a policy from just its spec (regions default to cn-hangzhou), for unit tests of the policy engine.
import { compilePolicyDocument, type CompiledPolicy } from '../../src/policy/index.js';

export const POLICY_NOW = new Date('2026-11-27T12:00:00Z');

/** A compiled policy named `p`; throws with the findings when the spec is invalid. */
export function compiledPolicy(spec: Record<string, unknown>, now: Date = POLICY_NOW): CompiledPolicy {
  const { policy, findings } = compilePolicyDocument(
    { apiVersion: 'tagwarden/v1', kind: 'TagPolicy', metadata: { name: 'p' }, spec: { regions: ['cn-hangzhou'], ...spec } },
    now,
  );
  if (!policy) throw new Error(JSON.stringify(findings));
  return policy;
}
