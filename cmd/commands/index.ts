// The command list: one factory per subcommand. Each command sets process.exitCode; only cmd/ exits.
import type { Command } from 'commander';
import { validateCommand } from './validate.js';

export const commands: Array<() => Command> = [validateCommand];
