// Owns the one base error class of tagwarden and its codes.
// Must not decide queue behaviour: worker/ maps error kinds to retries.

export type TagwardenErrorCode =
  | 'CONFIG_INVALID'
  | 'POLICY_INVALID'
  | 'PAYLOAD_INVALID'
  | 'CLOUD_THROTTLED'
  | 'CLOUD_TRANSIENT'
  | 'CLOUD_PERMANENT'
  | 'CLOUD_AUTH'
  | 'CLOUD_NOT_FOUND'
  | 'BLAST_RADIUS_EXCEEDED'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'PLAN_REFUSED'
  | 'SHUTTING_DOWN';

/** Base error: a literal `code` callers switch on, an optional `cause`, and safe-to-log `details`. */
export class TagwardenError extends Error {
  override readonly name: string = 'TagwardenError';
  readonly code: TagwardenErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: TagwardenErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }
}
