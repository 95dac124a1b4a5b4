// The command list: one factory per subcommand. Each command sets process.exitCode; only cmd/ exits.
import type { Command } from 'commander';

export const commands: Array<() => Command> = [];
