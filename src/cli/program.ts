/** The `mp-pipelines` command tree, assembled from its command groups. */
import type { Command } from 'commander';
import { addLocalCommands } from './local-command.js';
import { addPipelinesCommands } from './pipelines-command.js';
import { addReconcileCommand } from './reconcile-command.js';
import { rootCommand } from './root-command.js';
import { addRunsCommands } from './runs-command.js';
import { addStatusCommand } from './status-command.js';
import { addWarehouseCommands } from './warehouse-command.js';

/** Builds the `mp-pipelines` command tree. */
export function buildProgram(): Command {
  const program = rootCommand();

  addPipelinesCommands(program);
  addRunsCommands(program);
  addStatusCommand(program);
  addReconcileCommand(program);
  addWarehouseCommands(program);
  addLocalCommands(program);
  return program;
}
