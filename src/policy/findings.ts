// Formats findings for people and counts them.
import { escapeControl } from '../logging/escape.js';
import type { PolicyFinding } from './types.js';

/**
 * `file:line:col: error: spec.remove.keys[2]: message (valid: ...)`; line:col is left out when unknown. One
 * line always: control and bidi characters from file names, keys or values are spelled out (escapeControl).
 */
export function formatFinding(f: PolicyFinding): string {
  const where = f.line > 0 ? `${f.file}:${f.line}:${f.column}` : f.file;
  const path = f.path.length > 0 ? `${f.path}: ` : '';
  const valid = f.expected !== undefined ? ` (valid: ${f.expected})` : '';
  const policy = f.policy !== undefined ? ` [policy ${f.policy}]` : '';
  return escapeControl(`${where}: ${f.severity}: ${path}${f.message}${valid}${policy}`);
}

/** True when any finding is an error. */
export function hasErrors(findings: readonly PolicyFinding[]): boolean {
  return findings.some((f) => f.severity === 'error');
}
