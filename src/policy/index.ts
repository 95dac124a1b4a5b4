// Owns the tag policy language: YAML text -> validated, compiled policies; pure matching and discovery choice.
// Must not do I/O: no fs, Redis, HTTP, process, Date.now() or Math.random(); time comes in as an argument.
export { compilePolicies, compilePolicyDocument } from './compile.js';
export { matchResource, nameableWhenAbsent, removesAll, removesKey } from './match.js';
export { explainResource, type ResourceExplanation } from './explain.js';
export { discoveryPlan } from './discovery.js';
export { formatFinding, hasErrors } from './findings.js';
export { retainLastGood } from './retain.js';
export { policyJsonSchema, CONNECTION_STATUSES } from './schema.js';
export type { PolicyDocument, PolicyDocumentInput } from './schema.js';
export { isSystemTagKey } from './tag-keys.js';
export type {
  CompiledPolicy,
  DiscoveryPlan,
  PolicyFinding,
  PolicySchedule,
  PolicySource,
  PolicyStage,
  TagFilter,
} from './types.js';
