// The error codes and HTTP statuses the emulator answers with (reference §1.2-1.8), and the wire error.
// Where the reference gives two statuses, the choice is made here, once.

/**
 * Every error code the emulator can return, with its HTTP status. Choices where the docs disagree:
 * `SignatureDoesNotMatch` 403 (most pages), `InvalidAccessKeyId.NotFound` 404, `InvalidAction.NotFound` 404,
 * `IdempotentParameterMismatch` 400, `Throttling.User` 400. Tag-key rule violations: a reserved prefix
 * (`aliyun`, `acs:`) is `Forbidden.TagKeys`; a bad length or a URL in the key is `IllegalParam.TagKey`.
 */
export const EMULATOR_ERRORS = Object.freeze({
  MissingParameter: 400,
  InvalidParameter: 400,
  InvalidRegionId: 400,
  InvalidVersion: 400,
  'InvalidAction.NotFound': 404,
  IncompleteSignature: 400,
  SignatureDoesNotMatch: 403,
  'InvalidAccessKeyId.NotFound': 404,
  'InvalidTimeStamp.Expired': 400,
  'InvalidTimeStamp.Format': 400,
  SignatureNonceUsed: 400,
  MissingSecurityToken: 400,
  'InvalidSecurityToken.MismatchWithAccessKey': 400,
  'InvalidSecurityToken.Expired': 400,
  IdempotentParameterMismatch: 400,
  'Throttling.User': 400,
  'NumberExceed.ResourceIds': 400,
  'NumberExceed.Tags': 400,
  'Forbidden.TagKeys': 400,
  'Forbidden.TagKey.Duplicated': 400,
  'IllegalParam.TagKey': 400,
  'IllegalParam.TagValue': 400,
  'InvalidInstanceIds.NotFound': 400,
  'InvalidInstanceType.NotFound': 400,
  'BothEmpty.TagsAndResources': 400,
  'ResourceNotFound.InstanceId': 400,
  'IncorrectStatus.VpcPeer': 400,
  'Forbidden.NoPermission': 400,
  'Conflict.Operation': 400,
  InvalidTagKey: 400,
  InternalError: 500,
  ServiceUnavailable: 503,
  // Temporary (STS) keys, STS AssumeRole 2015-04-01 and Resource Directory ListAccounts (src/emulator/accounts.ts).
  'InvalidParameter.RoleArn': 400,
  'InvalidParameter.RoleSessionName': 400,
  'InvalidParameter.DurationSeconds': 400,
  'EntityNotExist.Role': 404,
  NoPermission: 403,
} as const);

/** A code of EMULATOR_ERRORS. */
export type EmulatorErrorCode = keyof typeof EMULATOR_ERRORS;

/** A failed API call: thrown inside the emulator, turned into the JSON error body by the server. */
export class ApiFailure extends Error {
  override readonly name = 'ApiFailure';
  readonly status: number;

  constructor(
    readonly code: EmulatorErrorCode,
    message: string,
    /** Another status where the service may answer differently (throttling at 429). */
    status?: number,
    /** Extra response headers (`x-acs-retry-after`). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.status = status ?? EMULATOR_ERRORS[code];
  }
}

/** `MissingParameter` naming the parameter, worded as the gateway words it. */
export function missing(name: string): ApiFailure {
  return new ApiFailure(
    'MissingParameter',
    `The input parameter "${name}" that is mandatory for processing this request is not supplied.`,
  );
}

/** `InvalidParameter` naming the parameter. */
export function invalid(name: string, why: string): ApiFailure {
  return new ApiFailure('InvalidParameter', `The specified parameter "${name}" is not valid: ${why}`);
}
