/** The `mp-pipelines` command tree, assembled from its command groups. */
import { Command } from 'commander';
import { addLocalCommands } from './local-command.js';
import { addPipelinesCommands } from './pipelines-command.js';
import { addReconcileCommand } from './reconcile-command.js';
import { addRunsCommands } from './runs-command.js';
import { addStatusCommand } from './status-command.js';
import { addWarehouseCommands } from './warehouse-command.js';

/** Builds the `mp-pipelines` command tree. */
export function buildProgram(): Command {
  const program = new Command('mp-pipelines')
    .description(
      'Self-hosted data pipelines: export product-analytics events to <project_id>/mp_master_event/YYYY/MM/DD/',
    )
    .showHelpAfterError()
    .configureHelp({ showGlobalOptions: true })
    // Usage errors exit with EXIT.invalid, not commander's 1 (which means a run failed).
    .exitOverride();

  addPipelinesCommands(program);
  addRunsCommands(program);
  addStatusCommand(program);
  addReconcileCommand(program);
  addWarehouseCommands(program);
  addLocalCommands(program);
  return program;
}
