/**
 * The warehouse core: schemas inferred from exported events, typed columns named by the vendor's
 * rules, Glue table definitions and the SQL of the views and published queries (Athena and DuckDB).
 * Pure: no AWS SDK, no file system. The Glue adapter is `adapters/glue-catalog.ts`, the local
 * warehouse `local/duckdb-warehouse.ts`.
 */
export * from './glue-tables.js';
export * from './property-schema.js';
export * from './schema-state.js';
export * from './sql.js';
export * from './typed-columns.js';
