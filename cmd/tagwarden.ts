#!/usr/bin/env node
// Thin CLI entry: builds the command tree and owns process.exit. Each command lives in cmd/commands/ and loads its
// heavy modules only when it runs, so `--help` and `validate` start fast.
import { Command, CommanderError } from 'commander';
import { commands } from './commands/index.js';
import { exitAfterFlush, guardPipes, packageVersion, say } from './commands/shared.js';

guardPipes();

const program = new Command('tagwarden')
  .description('Enforces tag policies on Alibaba Cloud VPC peering connections')
  .version(packageVersion())
  .showHelpAfterError()
  .exitOverride();
for (const make of commands) program.addCommand(make());

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
