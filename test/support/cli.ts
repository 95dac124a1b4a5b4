// Running the built CLI the way a user's shell does: `tw` stands for `node dist/cmd/tagwarden.js`, pipes and
// pipefail included, every run bounded. Shared by the CLI tests.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { CLI } from './harness.js';

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall-clock milliseconds from spawn to exit (for liveness bounds and reports, never asserted as speed). */
  ms: number;
}

/** Runs a shell line with `tw` standing for the built CLI, pipefail on; killed (and failed) after `limitMs`. */
export function sh(line: string, env: NodeJS.ProcessEnv, limitMs = 60_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn('bash', ['-o', 'pipefail', '-c', `tw() { "${process.execPath}" "${CLI}" "$@"; }\n${line}`], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so a run that overstays is stopped whole (bash and the node it started).
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => {
      try {
        process.kill(-(child.pid ?? 0), 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
      reject(new Error(`\`${line}\` did not end within ${limitMs} ms; stderr so far:\n${stderr.slice(-2000)}`));
    }, limitMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** A TCP port nothing listens on (bound, then closed). */
export async function deadPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 1));
    });
  });
}
