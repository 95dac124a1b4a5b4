// Classifies every failure of a cloud call, once, from one table (reference §1.7-1.8).
import { TagwardenError, type TagwardenErrorCode } from '../errors.js';
import type { ApiName } from '../model.js';
import { redact } from './redact.js';
import { escapeControl } from '../logging/escape.js';
import type { CloudFailure, FailureKind } from './types.js';

interface CodeRule {
  readonly kind: FailureKind;
  readonly codes?: readonly string[];
  readonly prefixes?: readonly string[];
  readonly contains?: string;
  readonly statuses?: readonly number[];
  readonly statusRange?: readonly [number, number];
}

/**
 * The classification table. `synthetic` names failures that carry no API code (by Node errno, error
 * name or message); `rules` map API or synthetic codes, then bare HTTP statuses, to a kind. First match
 * wins; anything unmatched is permanent.
 */
export const CLASSIFICATION = {
  synthetic: {
    /** Node/undici socket errors. */
    NetworkError: {
      errnos: [
        'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN',
        'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ERR_STREAM_PREMATURE_CLOSE',
      ],
      messages: [/socket hang up/i, /other side closed/i],
    },
    Timeout: {
      errnos: ['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT'],
      names: ['RequestTimeoutError', 'TimeoutError'],
      messages: [/\b(Read|Connect)Timeout\b/],
    },
    /** A body that is not JSON (an HTML 502 page from a proxy) makes the SDK's JSON.parse throw. */
    /** A body over TAGWARDEN_MAX_RESPONSE_BYTES is cut off unread (sdk-transport.ts): a bad response too. */
    BadResponse: { names: ['SyntaxError', 'ResponseTooLargeError'] },
    CredentialsUnavailable: {
      names: ['CredentialsUnavailableError'],
      messages: [/unable to get credentials/i],
    },
  },
  rules: [
    { kind: 'throttled', contains: 'Throttling' },
    { kind: 'not-found', codes: ['InvalidInstanceIds.NotFound', 'ResourceNotFound.InstanceId'] },
    {
      kind: 'auth',
      codes: [
        'SignatureDoesNotMatch', 'IncompleteSignature', 'Forbidden', 'Forbidden.RAM', 'Forbidden.NoPermission',
        'Forbidden.RiskControl', 'InvalidCredentials', 'CredentialsUnavailable', 'MissingSecurityToken',
      ],
      prefixes: ['InvalidAccessKeyId', 'InvalidSecurityToken', 'InvalidTimeStamp'],
    },
    {
      kind: 'transient',
      codes: [
        'ServiceUnavailable', 'InternalError', 'Conflict.Operation', 'SignatureNonceUsed', 'IncorrectStatus.VpcPeer',
        'NetworkError', 'Timeout', 'BadResponse', 'HookFailed', 'UnsuccessfulResponse',
      ],
    },
    {
      kind: 'permanent',
      codes: [
        'IdempotentParameterMismatch', 'MissingParameter', 'InvalidParameter', 'Forbidden.TagKeys',
        'Forbidden.TagKey.Duplicated', 'InvalidInstanceType.NotFound', 'InvalidTagKey', 'BothEmpty.TagsAndResources',
        'InvalidRequest',
      ],
      prefixes: ['NumberExceed.', 'IllegalParam.', 'Missing', 'Invalid'],
    },
    { kind: 'throttled', statuses: [429] },
    { kind: 'transient', statusRange: [500, 599] },
    { kind: 'auth', statuses: [401, 403] },
  ] satisfies readonly CodeRule[] as readonly CodeRule[],
} as const;

const ERROR_CODES: Readonly<Record<FailureKind, TagwardenErrorCode>> = {
  throttled: 'CLOUD_THROTTLED',
  transient: 'CLOUD_TRANSIENT',
  permanent: 'CLOUD_PERMANENT',
  auth: 'CLOUD_AUTH',
  'not-found': 'CLOUD_NOT_FOUND',
};

/** Where a failure happened, for the error message and details. */
export interface CloudErrorContext {
  readonly api?: ApiName;
  readonly region?: string;
}

/** The only error a CloudApi method throws. `failure` says what kind it is; `code` follows the kind. */
export class CloudError extends TagwardenError {
  override readonly name: string = 'CloudError';
  readonly failure: CloudFailure;

  constructor(failure: CloudFailure, context: CloudErrorContext = {}) {
    const where = [context.api, context.region].filter(Boolean).join(' ');
    // No `cause`: SDK errors hold the signed request (URL, headers) and must not reach a log.
    super(ERROR_CODES[failure.kind], where ? `${where}: ${failure.message}` : failure.message, {
      details: { ...failure, ...context },
    });
    this.failure = failure;
  }
}

type Bag = Record<string, unknown>;

const asBag = (v: unknown): Bag | undefined => (typeof v === 'object' && v !== null ? (v as Bag) : undefined);

/** The SDK renders missing values as the strings 'undefined'/'null'. */
const str = (v: unknown): string | undefined => {
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  const s = String(v).trim();
  return s === '' || s === 'undefined' || s === 'null' ? undefined : s;
};

const num = (v: unknown): number | undefined => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
};

const header = (headers: unknown, name: string): string | undefined => {
  const bag = asBag(headers);
  if (!bag) return undefined;
  for (const [k, v] of Object.entries(bag)) if (k.toLowerCase() === name) return str(Array.isArray(v) ? v[0] : v);
  return undefined;
};

function retryAfterMsOf(err: Bag, data: Bag | undefined): number | undefined {
  const explicit = num(err['retryAfterMs']);
  if (explicit !== undefined) return Math.max(0, explicit);
  // openapi-core reads `x-acs-retry-after` into `retryAfter`, in milliseconds (its retry policy sleeps that long).
  const sdk = num(err['retryAfter']);
  if (sdk !== undefined) return Math.max(0, sdk);
  const headers = err['headers'] ?? asBag(err['response'])?.['headers'] ?? data?.['headers'];
  const acs = num(header(headers, 'x-acs-retry-after'));
  if (acs !== undefined) return Math.max(0, acs);
  const standard = header(headers, 'retry-after');
  if (standard === undefined) return undefined;
  const seconds = num(standard);
  if (seconds !== undefined) return Math.max(0, seconds * 1000);
  const date = Date.parse(standard);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function syntheticCode(err: Bag): string | undefined {
  const errno = str(err['code']) ?? str(asBag(err['cause'])?.['code']);
  const name = str(err['name']);
  const message = str(err['message']) ?? '';
  for (const [code, spec] of Object.entries(CLASSIFICATION.synthetic)) {
    const s = spec as { errnos?: readonly string[]; names?: readonly string[]; messages?: readonly RegExp[] };
    if (errno !== undefined && s.errnos?.includes(errno)) return code;
    if (name !== undefined && s.names?.some((n) => name === n || name.endsWith(n))) return code;
    if (s.messages?.some((re) => re.test(message))) return code;
  }
  return undefined;
}

function kindOf(code: string | undefined, status: number | undefined): FailureKind {
  for (const rule of CLASSIFICATION.rules) {
    if (code !== undefined) {
      if (rule.codes?.includes(code)) return rule.kind;
      if (rule.prefixes?.some((p) => code.startsWith(p))) return rule.kind;
      if (rule.contains !== undefined && code.includes(rule.contains)) return rule.kind;
    }
    if (status !== undefined) {
      if (rule.statuses?.includes(status)) return rule.kind;
      if (rule.statusRange && status >= rule.statusRange[0] && status <= rule.statusRange[1]) return rule.kind;
    }
  }
  return 'permanent';
}

/** What an error code (and a request ID) may look like; anything else is reported as `other`. */
export const CODE_SHAPE = /^[A-Za-z0-9._-]{1,64}$/;

/** The code itself when it is a short identifier, else `other`. */
export function boundedCode(code: string): string {
  return CODE_SHAPE.test(code) ? code : 'other';
}

const ERRNO = /^(E[A-Z0-9_]+|UND_ERR_[A-Z_]+|ERR_[A-Z0-9_]+)$/;

const SYNTHETIC_MESSAGES: Readonly<Record<string, string>> = {
  NetworkError: 'the connection failed or was reset',
  Timeout: 'the request timed out',
  BadResponse: 'the response body was not valid JSON',
};

/**
 * Classifies any thrown value: openapi-core's ThrottlingError/ClientError/ServerError, openapi-client's
 * plain errors, raw Node socket errors, SyntaxError from a non-JSON body, credential-provider failures,
 * and plain objects (`{ Code, statusCode }`). `secrets` are scrubbed from the message.
 */
export function classifyError(err: unknown, secrets: Iterable<string> = []): CloudFailure {
  if (err instanceof CloudError) return err.failure;
  const bag: Bag = asBag(err) ?? { message: String(err) };
  const data = asBag(bag['data']) ?? asBag(bag['body']);

  const status =
    num(bag['statusCode']) ?? num(bag['httpStatus']) ?? num(bag['status']) ?? num(data?.['statusCode']) ??
    num(asBag(bag['response'])?.['status']);
  // API codes come from the body, or from the SDK error's `code`; a Node errno there is not an API code.
  const ownCode = str(bag['code']);
  const apiCode =
    str(bag['Code']) ?? str(data?.['Code']) ?? str(data?.['code']) ?? (ownCode && !ERRNO.test(ownCode) ? ownCode : undefined);
  const synthetic = apiCode === undefined ? syntheticCode(bag) : undefined;
  // A code is a label, a metric value and part of a stored reason: an endpoint that echoes a header or a token
  // in its Code must not put it there. Anything but a short identifier becomes `other`.
  const code = boundedCode(apiCode ?? synthetic ?? (status !== undefined ? `Http${status}` : 'Unknown'));
  const kind = kindOf(code, status);
  const rawRequestId = str(bag['requestId']) ?? str(bag['RequestId']) ?? str(data?.['RequestId']) ?? str(data?.['requestId']);
  const requestId = rawRequestId !== undefined && CODE_SHAPE.test(rawRequestId) ? rawRequestId : undefined;
  const retryAfterMs = retryAfterMsOf(bag, data);

  let detail: string;
  if (apiCode !== undefined) {
    detail = str(data?.['Message']) ?? str(data?.['message']) ?? str(bag['Message']) ?? str(bag['description']) ??
      str(bag['message']) ?? 'no message';
  } else if (synthetic === 'CredentialsUnavailable') {
    detail = str(bag['message']) ?? 'no credentials available';
  } else if (synthetic === 'BadResponse' && bag['name'] === 'ResponseTooLargeError') {
    detail = str(bag['message']) ?? 'the response body is over the size limit';
  } else if (synthetic !== undefined) {
    const errno = str(bag['code']) ?? str(asBag(bag['cause'])?.['code']);
    detail = `${SYNTHETIC_MESSAGES[synthetic] ?? synthetic}${errno && errno !== synthetic ? ` (${errno})` : ''}`;
  } else {
    // Unknown shapes may quote a signed URL: keep only the error's name.
    detail = str(bag['name']) ?? 'unrecognised error';
  }
  // Control characters (an endpoint's ESC sequences, a newline that forges a log line) are spelled out.
  const message = escapeControl(redact(`${code}${status !== undefined ? ` (HTTP ${status})` : ''}: ${detail}`, secrets));

  return {
    kind,
    code,
    message,
    ...(status !== undefined ? { httpStatus: status } : {}),
    ...(requestId !== undefined ? { requestId } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  };
}
