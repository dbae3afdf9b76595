/**
 * The warehouse schema a pipeline keeps in its state: the property schema merged from every committed
 * step, and the typed layout built on it. A step's commit merges the step's schema once: the state
 * remembers the last steps it merged, so a commit that runs again after a crash adds nothing twice.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { PropertySchema, type SerializedSchema } from './property-schema.js';
import { DEFAULT_MAX_TYPED_COLUMNS, type TypedColumn, typedLayout } from './typed-columns.js';

/** Steps remembered as merged: far more than can commit between a crash and the commit's retry. */
export const REMEMBERED_STEPS = 64;

/** The stored form (`warehouse/schema.json` in the pipeline's state). */
export interface WarehouseSchemaState {
  readonly format: 'mp-pipelines/warehouse-schema@1';
  readonly schema: SerializedSchema;
  /** The typed view's columns, in view order: a column keeps its name as the schema grows. */
  readonly columns: readonly TypedColumn[];
  readonly max_columns: number;
  /** The last steps merged, oldest first. */
  readonly merged_steps: readonly string[];
}

const stateShape = z
  .object({
    format: z.literal('mp-pipelines/warehouse-schema@1'),
    schema: z.unknown(),
    columns: z.array(
      z
        .object({
          name: z.string(),
          property: z.string(),
          kind: z.enum(['string', 'number', 'boolean', 'json']),
          sql_type: z.enum(['varchar', 'bigint', 'double', 'boolean']),
        })
        .strict(),
    ),
    max_columns: z.number().int().nonnegative(),
    merged_steps: z.array(z.string()),
  })
  .strict();

/** Reads a stored state back; a malformed one fails with a `ConfigError` naming the field. */
export function parseWarehouseSchemaState(value: unknown): WarehouseSchemaState {
  const parsed = stateShape.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(
      `invalid warehouse schema state: ${issue.path.join('.') || '(state)'}: ${issue.message}`,
    );
  }
  return { ...parsed.data, schema: PropertySchema.fromJSON(parsed.data.schema).toJSON() };
}

/** What merging a step changed. */
export interface SchemaAdvance {
  readonly state: WarehouseSchemaState;
  /** The typed columns changed (a column added or widened): the typed view must be redefined. */
  readonly columnsChanged: boolean;
}

/**
 * Merges one committed step's schema into the pipeline's (nothing when the state already merged that
 * step) and extends the typed layout. Pure: the caller stores `state` before the step's run record.
 */
export function mergeStepSchema(
  current: WarehouseSchemaState | undefined,
  stepId: string,
  stepSchema: PropertySchema | SerializedSchema,
  maxColumns = current?.max_columns ?? DEFAULT_MAX_TYPED_COLUMNS,
): SchemaAdvance {
  if (current?.merged_steps.includes(stepId) && current.max_columns === maxColumns)
    return { state: current, columnsChanged: false };
  const schema = PropertySchema.fromJSON(current?.schema ?? new PropertySchema().toJSON());
  if (!current?.merged_steps.includes(stepId)) schema.merge(stepSchema);
  const { columns } = typedLayout(schema, current?.columns ?? [], maxColumns);
  const merged = [...(current?.merged_steps ?? []).filter((id) => id !== stepId), stepId];
  return {
    state: {
      format: 'mp-pipelines/warehouse-schema@1',
      schema: schema.toJSON(),
      columns,
      max_columns: maxColumns,
      merged_steps: merged.slice(-REMEMBERED_STEPS),
    },
    columnsChanged: JSON.stringify(columns) !== JSON.stringify(current?.columns ?? []),
  };
}
