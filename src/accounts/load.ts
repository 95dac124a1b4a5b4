// YAML text of an accounts file -> a validated AccountList, or findings with file:line:column (the
// policy loader's stages and formatting). Pure: the caller reads the file.
import { LineCounter, parseAllDocuments } from 'yaml';
import { formatPath, yamlLocator } from '../policy/locate.js';
import { issueFindings } from '../policy/schema-findings.js';
import type { PolicyFinding } from '../policy/index.js';
import { ROLE_ARN_RE, accountListSchema } from './schema.js';
import type { Account, AccountList } from './types.js';

const UNIT_MS: Readonly<Record<string, number>> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

function intervalMs(text: string): number {
  return Number(text.slice(0, -1)) * (UNIT_MS[text.slice(-1)] ?? 0);
}

/**
 * Validates one accounts file (exactly one YAML document: apiVersion tagwarden/v1, kind AccountList).
 * Every problem is a finding; `list` is set only when there is no error. Checks beyond the schema:
 * the role ARN's account equals `id`; IDs and names are unique.
 */
export function parseAccountList(source: { file: string; text: string }): { list?: AccountList; findings: PolicyFinding[] } {
  const { file, text } = source;
  const findings: PolicyFinding[] = [];
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined) => {
    const p = lineCounter.linePos(offset ?? 0);
    return { line: p.line, column: p.col };
  };
  const nonEmpty = docs.filter((d) => d.errors.length > 0 || (d.contents !== null && d.contents !== undefined));
  for (const doc of docs) {
    for (const e of doc.errors) {
      findings.push({ file, ...at(e.pos[0]), path: '', message: e.message, expected: 'valid YAML', severity: 'error', stage: 'yaml' });
    }
  }
  if (findings.length > 0) return { findings };
  const doc = nonEmpty[0];
  if (doc === undefined) {
    return { findings: [{ file, line: 0, column: 0, path: '', message: 'the accounts file is empty', expected: 'one AccountList document', severity: 'error', stage: 'yaml' }] };
  }
  if (nonEmpty.length > 1) {
    const second = nonEmpty[1];
    findings.push({ file, ...at(second?.range[0]), path: '', message: 'more than one YAML document', expected: 'one AccountList document per file', severity: 'error', stage: 'yaml' });
    return { findings };
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    return { findings: [{ file, ...at(doc.range[0]), path: '', message: e instanceof Error ? e.message : String(e), expected: 'valid YAML with fewer alias expansions', severity: 'error', stage: 'yaml' }] };
  }
  const locator = yamlLocator(doc, lineCounter);
  const parsed = accountListSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    return { findings: parsed.error.issues.flatMap((issue) => issueFindings(issue, { file, locator })) };
  }
  const meaning = (path: Array<string | number>, message: string, expected: string): void => {
    const p = locator.locate(path);
    findings.push({ file, line: p.line, column: p.column, path: formatPath(path), message, expected, severity: 'error', stage: 'meaning' });
  };
  const ids = new Map<string, number>();
  const names = new Map<string, number>();
  const accounts: Account[] = [];
  parsed.data.accounts.forEach((a, i) => {
    const arnAccount = ROLE_ARN_RE.exec(a.roleArn)?.[1];
    if (arnAccount !== a.id) {
      meaning(['accounts', i, 'roleArn'], `the role ARN names account ${arnAccount ?? '?'}, not ${a.id}`, `a role in account ${a.id}: acs:ram::${a.id}:role/<role name>`);
    }
    const firstId = ids.get(a.id);
    if (firstId !== undefined) meaning(['accounts', i, 'id'], `account ${a.id} is already listed at accounts[${firstId}]`, 'each account once');
    else ids.set(a.id, i);
    const firstName = names.get(a.name);
    if (firstName !== undefined) meaning(['accounts', i, 'name'], `name '${a.name}' is already used at accounts[${firstName}]`, 'a name unique in the file');
    else names.set(a.name, i);
    accounts.push({
      id: a.id, name: a.name, roleArn: a.roleArn, tags: { ...a.tags }, source: 'file',
      ...(a.externalId === undefined ? {} : { externalId: a.externalId }),
    });
  });
  if (findings.length > 0) return { findings };
  const d = parsed.data.directory;
  return {
    findings,
    list: {
      accounts,
      ...(d === undefined
        ? {}
        : { directory: { roleName: d.roleName, refreshEveryMs: intervalMs(d.refreshEvery), ...(d.externalId === undefined ? {} : { externalId: d.externalId }) } }),
    },
  };
}
