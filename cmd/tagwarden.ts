#!/usr/bin/env node
// Thin CLI entry: builds the command tree and owns process.exit. Each command lives in cmd/commands/.
import { Command, CommanderError } from 'commander';
import { commands } from './commands/index.js';

const program = new Command('tagwarden')
  .description('Enforces tag policies on Alibaba Cloud VPC peering connections')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();
for (const make of commands) program.addCommand(make());

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  process.stderr.write(`tagwarden: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
