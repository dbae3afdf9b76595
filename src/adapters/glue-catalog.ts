/**
 * The Glue Data Catalog adapter of the warehouse: makes a project's database and keeps its tables and
 * views as `core/warehouse/glue-tables.ts` defines them. A table is created when missing, updated
 * (a new Glue table version) when its definition changed, e.g. when the typed view gained columns,
 * and left alone when it is current, so repeated commits do not pile up versions.
 */
import {
  AlreadyExistsException,
  CreateDatabaseCommand,
  CreateTableCommand,
  EntityNotFoundException,
  GetDatabaseCommand,
  GetTableCommand,
  type GlueClient,
  type Table,
  type TableInput,
  UpdateTableCommand,
} from '@aws-sdk/client-glue';
import type { WarehouseCatalog } from '../core/ports.js';
import type { GlueTableInput } from '../core/warehouse/glue-tables.js';
import { asTransient } from './aws-errors.js';

/** What `putTable` did. */
export type TableOutcome = 'created' | 'updated' | 'unchanged';

/** A project's database and tables in one Glue Data Catalog. */
export class GlueCatalog implements WarehouseCatalog {
  /**
   * @param client a Glue client of the catalog's region
   * @param catalogId the catalog's account id; @default the caller's account
   */
  constructor(
    private readonly client: GlueClient,
    private readonly catalogId?: string,
  ) {}

  /** Creates the database unless it exists; `true` when it was created. */
  async ensureDatabase(name: string, description: string): Promise<boolean> {
    try {
      await this.client.send(new GetDatabaseCommand({ ...this.catalog(), Name: name }));
      return false;
    } catch (error) {
      if (!(error instanceof EntityNotFoundException)) throw asTransient(error, `Glue GetDatabase ${name}`);
    }
    try {
      await this.client.send(
        new CreateDatabaseCommand({
          ...this.catalog(),
          DatabaseInput: { Name: name, Description: description },
        }),
      );
      return true;
    } catch (error) {
      // Another writer made it first: the database is there, which is all this asks.
      if (error instanceof AlreadyExistsException) return false;
      throw asTransient(error, `Glue CreateDatabase ${name}`);
    }
  }

  /** Creates or updates one table or view so that it matches `input`. */
  async putTable(database: string, input: GlueTableInput): Promise<TableOutcome> {
    const current = await this.getTable(database, input.Name);
    const tableInput = input as TableInput;
    if (current === undefined) {
      try {
        await this.client.send(
          new CreateTableCommand({ ...this.catalog(), DatabaseName: database, TableInput: tableInput }),
        );
        return 'created';
      } catch (error) {
        if (!(error instanceof AlreadyExistsException))
          throw asTransient(error, `Glue CreateTable ${database}.${input.Name}`);
      }
    } else if (matches(current, input)) return 'unchanged';
    try {
      await this.client.send(
        new UpdateTableCommand({ ...this.catalog(), DatabaseName: database, TableInput: tableInput }),
      );
    } catch (error) {
      throw asTransient(error, `Glue UpdateTable ${database}.${input.Name}`);
    }
    return 'updated';
  }

  /**
   * Makes the database and every table of a warehouse (`warehouseTables(...)`), in order; returns what
   * happened to each table.
   */
  async applyWarehouse(
    database: string,
    description: string,
    tables: readonly GlueTableInput[],
  ): Promise<Record<string, TableOutcome>> {
    await this.ensureDatabase(database, description);
    const outcomes: Record<string, TableOutcome> = {};
    for (const table of tables) outcomes[table.Name] = await this.putTable(database, table);
    return outcomes;
  }

  /** The stored table, or `undefined` when there is none. */
  async getTable(database: string, name: string): Promise<Table | undefined> {
    try {
      const { Table: table } = await this.client.send(
        new GetTableCommand({ ...this.catalog(), DatabaseName: database, Name: name }),
      );
      return table;
    } catch (error) {
      if (error instanceof EntityNotFoundException) return undefined;
      throw asTransient(error, `Glue GetTable ${database}.${name}`);
    }
  }

  private catalog(): { CatalogId?: string } {
    return this.catalogId === undefined ? {} : { CatalogId: this.catalogId };
  }
}

/** Whether the stored table already holds everything `input` sets (Glue may add parameters of its own). */
function matches(table: Table, input: GlueTableInput): boolean {
  const columns = (list: readonly { Name?: string; Type?: string }[] | undefined) =>
    JSON.stringify((list ?? []).map((c) => [c.Name, c.Type]));
  const holds = (
    stored: Record<string, string> | undefined,
    wanted: Readonly<Record<string, string>> | undefined,
  ) => Object.entries(wanted ?? {}).every(([key, value]) => stored?.[key] === value);
  const sd = table.StorageDescriptor;
  const want = input.StorageDescriptor;
  return (
    table.TableType === input.TableType &&
    (table.Description ?? '') === input.Description &&
    holds(table.Parameters, input.Parameters) &&
    columns(table.PartitionKeys) === columns(input.PartitionKeys) &&
    columns(sd?.Columns) === columns(want.Columns) &&
    (sd?.Location ?? undefined) === want.Location &&
    (sd?.InputFormat ?? undefined) === want.InputFormat &&
    (sd?.OutputFormat ?? undefined) === want.OutputFormat &&
    (sd?.SerdeInfo?.SerializationLibrary ?? undefined) === want.SerdeInfo.SerializationLibrary &&
    holds(sd?.SerdeInfo?.Parameters, want.SerdeInfo.Parameters) &&
    (table.ViewOriginalText ?? undefined) === input.ViewOriginalText &&
    (table.ViewExpandedText ?? undefined) === input.ViewExpandedText
  );
}
