/**
 * `mp-pipelines pipelines create|list|show|pause|unpause|delete`, on the local home or a deployment
 * (`--stack`). Each prints tables for people or, with `--json`, one JSON document for scripts.
 */
import type { Command } from 'commander';
import { withoutSecrets } from '../core/pipeline-config.js';
import type { StoredPipeline } from '../core/pipeline-rules.js';
import { changeStatus, createPipeline, ManagementError, type StatusAction } from '../management/pipelines.js';
import { addConfigOptions, configFields } from './config-flags.js';
import { table } from './format.js';
import { print } from './shared.js';
import { type OutputFlags, type Target, targetOptions, withTarget } from './target.js';

/** The flags of a command on one pipeline. */
export interface PipelineFlags extends OutputFlags {
  readonly project: string;
  readonly name: string;
}

/** Adds `pipelines`. */
export function addPipelinesCommands(program: Command): void {
  const pipelines = program
    .command('pipelines')
    .description('create, view, pause, unpause and delete pipelines');

  targetOptions(
    addConfigOptions(pipelines.command('create'), 'pipelines create').description(
      'create a pipeline (rules: docs/contract.md#management-rules; a refusal says why)',
    ),
  ).action(async (flags: OutputFlags) => {
    const fields = configFields(flags);
    await withTarget(flags, async (target) => {
      const created = await createPipeline(target.configs, fields, target.now());
      await target.saved();
      print(flags, pipelineJson(created), () => `created ${describe(created)}\n\n${showText(created)}`);
    });
  });

  targetOptions(
    pipelines.command('list').description('list pipelines').option('--project <id>', 'only this project'),
  ).action(async (flags: OutputFlags & { project?: string }) => {
    await withTarget(flags, async (target) => {
      const all = await pipelinesOf(target, flags.project);
      print(flags, all.map(pipelineJson), () =>
        all.length === 0
          ? 'no pipelines'
          : table(
              ['project', 'name', 'source', 'frequency', 'sync', 'trial', 'from', 'to', 'status', 'reason'],
              all.map((p) => [
                p.project_id,
                p.name,
                cellOf(p.fields.data_source ?? 'events'),
                cellOf(p.fields.frequency ?? '?'),
                p.config?.sync ? 'yes' : 'no',
                p.config?.trial ? 'yes' : 'no',
                cellOf(p.fields.from_date ?? '?'),
                cellOf(p.fields.to_date ?? '-'),
                p.management.status,
                p.management.status_reason ?? '',
              ]),
            ),
      );
    });
  });

  targetOptions(pipelineCommand(pipelines, 'show', 'show one pipeline: config, status and version')).action(
    async (flags: PipelineFlags) => {
      await withTarget(flags, async (target) => {
        const pipeline = await findPipeline(target, flags);
        print(flags, pipelineJson(pipeline), () => showText(pipeline));
      });
    },
  );

  const actions: [StatusAction, string][] = [
    ['pause', 'stop new steps at once (a running step finishes and commits)'],
    ['unpause', 'resume where the pipeline stopped, backfill included'],
    ['delete', 'stop the pipeline for good; its exported data and run history stay'],
  ];
  for (const [action, description] of actions) {
    targetOptions(pipelineCommand(pipelines, action, description)).action(async (flags: PipelineFlags) => {
      await withTarget(flags, async (target) => {
        const changed = await changeStatus(target.configs, flags.project, flags.name, action, target.now());
        await target.saved();
        print(flags, pipelineJson(changed), () => `${describe(changed)}`);
      });
    });
  }
}

/** A subcommand of `parent` on one pipeline, named by `--project` and `--name`. */
export function pipelineCommand(parent: Command, name: string, description: string): Command {
  return parent
    .command(name)
    .description(description)
    .requiredOption('--project <id>', 'project id')
    .requiredOption('--name <name>', 'pipeline name');
}

/** Every stored pipeline, or one project's. */
export async function pipelinesOf(
  target: Target,
  projectId: string | undefined,
): Promise<readonly StoredPipeline[]> {
  return projectId === undefined
    ? target.configs.listAll()
    : (await target.configs.readProject(projectId)).pipelines;
}

/** The pipeline the flags name; a `not-found` error when the target has none. */
export async function findPipeline(
  target: Target,
  flags: { project: string; name: string },
): Promise<StoredPipeline> {
  const pipeline = (await target.configs.readProject(flags.project)).pipelines.find(
    (p) => p.name === flags.name,
  );
  if (pipeline === undefined)
    throw new ManagementError(
      `no pipeline ${flags.project}/${flags.name} in ${target.description} (see \`pipelines list\`)`,
      'not-found',
    );
  return pipeline;
}

/** A stored attribute as a table cell: any value a hand edit left there (a map, a set) shows, never throws. */
function cellOf(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value, (_key, inner: unknown) =>
      inner instanceof Set ? [...inner] : typeof inner === 'bigint' ? String(inner) : inner,
    );
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** A pipeline as the CLI shows it: config, management fields and problems, the external id masked. */
function pipelineJson(pipeline: StoredPipeline): Record<string, unknown> {
  return withoutSecrets({
    ...pipeline.fields,
    ...pipeline.config,
    ...pipeline.management,
    ...(pipeline.problems === undefined ? {} : { problems: pipeline.problems }),
  });
}

function describe(pipeline: StoredPipeline): string {
  const { status, status_reason: reason, version } = pipeline.management;
  return `${pipeline.project_id}/${pipeline.name}: ${status}${reason === undefined ? '' : ` (${reason})`}, version ${version}`;
}

function showText(pipeline: StoredPipeline): string {
  const rows = Object.entries(pipelineJson(pipeline)).map(([field, value]) => [
    field,
    typeof value === 'string' ? value : JSON.stringify(value),
  ]);
  return table(['field', 'value'], rows);
}
