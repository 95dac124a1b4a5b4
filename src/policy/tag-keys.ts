// Tag key rules for policies, built on the shared rules in model.ts (reference §1.2.1 and §7.1).
import { MAX_TAG_TEXT_LENGTH, codePointLength, isSystemTagKey, tagKeyProblem as modelTagKeyProblem } from '../model.js';

export { isSystemTagKey };

/** What a removable tag key must look like, for "valid: ..." hints. */
export const TAG_KEY_RULE =
  "1-128 characters, not starting with 'acs:' or 'aliyun' (system tags), not containing 'http://' or 'https://'";

/** Why `key` cannot be removed by UnTagResources, or undefined when it can. */
export function tagKeyProblem(key: string): string | undefined {
  if (isSystemTagKey(key)) return `'${key}' is a system tag key; system tags are never removed`;
  const problem = modelTagKeyProblem(key);
  return problem === undefined ? undefined : `tag key '${key}' ${problem}`;
}

/** Why `key` cannot be used in a tag filter (selector or exemption), or undefined. System keys are allowed there. */
export function filterKeyProblem(key: string): string | undefined {
  if (key.length === 0) return 'a tag key must not be empty';
  const length = codePointLength(key);
  if (length > MAX_TAG_TEXT_LENGTH) return `tag key is ${length} characters long; at most ${MAX_TAG_TEXT_LENGTH} are allowed`;
  if (/https?:\/\//.test(key)) return `tag key '${key}' must not contain "http://" or "https://"`;
  return undefined;
}
