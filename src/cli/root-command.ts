/** The root of the `mp-pipelines` command tree, without its command groups. */
import { Command } from 'commander';

/** The `mp-pipelines` command with its description and error handling, to which groups are added. */
export function rootCommand(): Command {
  return (
    new Command('mp-pipelines')
      .description(
        'Self-hosted data pipelines: export product-analytics events to <project_id>/mp_master_event/YYYY/MM/DD/',
      )
      .showHelpAfterError()
      .configureHelp({ showGlobalOptions: true })
      // Usage errors exit with EXIT.invalid, not commander's 1 (which means a run failed).
      .exitOverride()
  );
}
