// Helpers the commands share: config from env + flags, printing errors, signal handling.
import { loadConfig, type AppConfig, type AppConfigInput } from '../../src/config/index.js';
import { TagwardenError } from '../../src/errors.js';

/** Loads the config (flags win over the environment); prints every problem and returns undefined when invalid. */
export function configOrExit(overrides: Partial<AppConfigInput>, env: NodeJS.ProcessEnv = process.env): AppConfig | undefined {
  try {
    return loadConfig(env, Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)));
  } catch (err) {
    if (err instanceof TagwardenError && err.code === 'CONFIG_INVALID') {
      process.stderr.write(`tagwarden: ${err.message}\n`);
      process.exitCode = 1;
      return undefined;
    }
    throw err;
  }
}

/** Collects a repeatable option into an array. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)];
}

/** A single line of progress on a terminal (stderr), nothing when piped. */
export function progressLine(text: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[2K${text}`);
}

export function endProgress(): void {
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[2K');
}

/** Renders rows as an aligned text table. */
export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')).join('\n');
}
