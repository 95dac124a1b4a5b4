// Scrubs credentials and signed material out of text before it becomes an error message.

const REDACTED = '[REDACTED]';

// Signed query parameters (V2 puts them in the URL, which timeouts quote), headers, and V3 auth values.
const PATTERNS: readonly [RegExp, string][] = [
  [/\b(Signature|SecurityToken|AccessKeySecret|BearerToken|AccessKeyId)=[^&\s"',]*/gi, `$1=${REDACTED}`],
  [/\b(authorization|x-acs-security-token|x-acs-bearer-token)(["']?\s*[:=]\s*["']?)[^"'\n,}]*/gi, `$1$2${REDACTED}`],
  [/\bACS3-[A-Z0-9-]+\s+Credential=[^\s"',]*(,\s*SignedHeaders=[^\s"',]*)?(,\s*Signature=[^\s"',]*)?/g, REDACTED],
];

const MAX_LENGTH = 500;

/** Removes known secret values and signature-bearing fragments; caps the length. */
export function redact(text: string, secrets: Iterable<string> = []): string {
  let out = text;
  for (const secret of secrets) {
    // Very short values would blank out ordinary words; real secrets and tokens are long.
    if (secret.length < 6) continue;
    // A token quoted inside a URL appears percent-encoded.
    for (const form of new Set([secret, encodeURIComponent(secret)])) out = out.split(form).join(REDACTED);
  }
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out.length > MAX_LENGTH ? `${out.slice(0, MAX_LENGTH)}...` : out;
}
