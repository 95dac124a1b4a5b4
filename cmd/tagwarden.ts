#!/usr/bin/env node
// Thin CLI entry: builds the command tree and owns process.exit. Each command lives in cmd/commands/ and loads its
// heavy modules only when it runs, so `--help` and `validate` start fast.
import { Command, CommanderError } from 'commander';
import { commands } from './commands/index.js';
import { guardPipes, packageVersion, say, writable } from './commands/shared.js';

guardPipes();

const program = new Command('tagwarden')
  .description('Enforces tag policies on Alibaba Cloud VPC peering connections')
  .version(packageVersion())
  .showHelpAfterError()
  .exitOverride();
for (const make of commands) program.addCommand(make());

/**
 * Exits once what was written to stdout and stderr has reached the OS: writes to a pipe are asynchronous, and
 * process.exit() drops what is still queued (a `validate --json | jq` would read truncated JSON). Bounded, so a
 * reader that stopped reading cannot keep the process alive; a closed pipe is not waited for.
 */
async function exitAfterFlush(code: number): Promise<never> {
  const flushed = (stream: NodeJS.WriteStream) =>
    writable(stream) ? new Promise<void>((resolve) => stream.write('', () => resolve())) : Promise.resolve();
  const bound = new Promise<void>((resolve) => setTimeout(resolve, 5_000).unref());
  await Promise.race([Promise.all([flushed(process.stdout), flushed(process.stderr)]), bound]);
  // A write failure found while flushing (results to a full disk) turns success into 1.
  process.exit(code === 0 && typeof process.exitCode === 'number' ? process.exitCode : code);
}

try {
  await program.parseAsync(process.argv);
  // A command has finished (the daemon has drained or given up): leave now, even if jobs abandoned to
  // their locks still hold timers, so a pod never outlives its grace period.
  await exitAfterFlush(typeof process.exitCode === 'number' ? process.exitCode : 0);
} catch (e) {
  if (e instanceof CommanderError) await exitAfterFlush(e.exitCode);
  say(e instanceof Error ? e.message : String(e));
  await exitAfterFlush(1);
}
