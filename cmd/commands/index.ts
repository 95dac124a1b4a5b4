// The command list: one factory per subcommand. Each command sets process.exitCode; only cmd/ exits.
import type { Command } from 'commander';
import { demoCommand } from './demo.js';
import { emulatorCommand } from './emulator.js';
import { enqueueCommand } from './enqueue.js';
import { jobsCommand } from './jobs.js';
import { planCommand } from './plan.js';
import { runCommand } from './run.js';
import { validateCommand } from './validate.js';

export const commands: Array<() => Command> = [runCommand, planCommand, validateCommand, enqueueCommand, jobsCommand, demoCommand, emulatorCommand];
