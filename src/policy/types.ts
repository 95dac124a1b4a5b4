// Public data types of the policy module: sources in, findings and compiled policies out.
import type { PolicyDocument } from './schema.js';

/** One policy file's text and the name to report it under. */
export interface PolicySource {
  readonly file: string;
  readonly text: string;
}

/** Which validation stage produced a finding. */
export type PolicyStage = 'yaml' | 'schema' | 'meaning';

/**
 * One problem found in a policy. `line`/`column` are 1-based; 0 when unknown (e.g. a policy
 * carried as plain JSON in a job, or a file that could not be read).
 */
export interface PolicyFinding {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** Field path inside the document, e.g. `spec.remove.keys[2]`; empty for the whole document or file. */
  readonly path: string;
  readonly message: string;
  /** What would be valid here. */
  readonly expected?: string;
  /** Errors stop the policy (or file); warnings are reported and the policy still runs. */
  readonly severity: 'error' | 'warning';
  /** The policy's metadata.name, when it could be read. */
  readonly policy?: string;
  readonly stage: PolicyStage;
}

/** A policy schedule: a fixed interval, or a 5-field cron expression (UTC). */
export type PolicySchedule = { readonly everyMs: number } | { readonly cron: string };

/** A validated, ready-to-match policy. Plain data (JSON-serialisable); matching state is cached internally. */
export interface CompiledPolicy {
  readonly name: string;
  readonly description?: string;
  readonly resourceType: 'PeerConnection';
  readonly regions: readonly string[];
  readonly mode: 'enforce' | 'dryRun';
  readonly schedule: PolicySchedule;
  /** Blast-radius cap: the most (resource, key) pairs one run may remove. */
  readonly maxRemovalsPerRun: number;
  /** Where the policy came from; line is the document's first line (0 for inline documents). */
  readonly source: { readonly file: string; readonly line: number };
  /** sha256 (hex) of the canonical JSON of `{ name, spec }` after defaults: changes iff behaviour may change. */
  readonly hash: string;
  /** The validated document with defaults applied; plain JSON, accepted again by compilePolicyDocument. */
  readonly document: PolicyDocument;
}

/** A tag filter pushed down to an API call; no value means "key present, any value". */
export interface TagFilter {
  readonly key: string;
  readonly value?: string;
}

/**
 * How to find candidate resources for a policy (per region). Both kinds are pre-filters:
 * matchResource always re-evaluates every condition.
 * - `tag-keys`: for each key in `tagKeys`, page ListTagResources with Tag filter
 *   `[{Key: tagKey}, ...tags]` (the service ANDs tag filters, so one query per key) and union the
 *   resources. Chosen only when the rows' tags (at least the queried keys) suffice to match.
 * - `connections`: page ListVpcPeerConnections with this filter; instanceIds means one query per ID.
 */
export type DiscoveryPlan =
  | { readonly kind: 'tag-keys'; readonly tagKeys: readonly string[]; readonly tags: readonly TagFilter[] }
  | {
      readonly kind: 'connections';
      readonly filter: {
        readonly instanceIds?: readonly string[];
        readonly vpcIds?: readonly string[];
        readonly name?: string;
        readonly resourceGroupId?: string;
        readonly tags?: readonly TagFilter[];
      };
    };
