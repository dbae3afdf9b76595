/**
 * The warehouse's catalog against moto's Glue: the database and tables are created with the projection
 * parameters, locations and SerDes the docs describe, a second pass changes nothing, and a schema that
 * grew updates the typed view only (a new table version whose columns keep their names).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GetTableVersionsCommand, GlueClient } from '@aws-sdk/client-glue';
import { FsObjectStore } from '../../src/adapters/fs-object-store.js';
import { GlueCatalog } from '../../src/adapters/glue-catalog.js';
import { parsePipelineConfig } from '../../src/core/pipeline-config.js';
import {
  athenaViewSql,
  type GlueTableInput,
  glueDatabaseName,
  mergeStepSchema,
  OVERFLOW_COLUMN,
  PropertySchema,
  type WarehouseTarget,
  warehouseTables,
} from '../../src/core/warehouse/index.js';
import { mergeStepSchemas, updateCatalog } from '../../src/engine/warehouse.js';
import { startControlPlane } from '../../src/local/control-plane.js';
import { generateLandingZone } from '../../src/local/generate.js';
import { defaultStateFolder } from '../../src/local/local-stores.js';
import { type Moto, startMoto } from '../../src/local/moto.js';
import { runLocalPipeline } from '../../src/local/run.js';
import { tempFolder } from '../support/fixtures.js';

let moto: Moto;
let glue: GlueClient;

before(async () => {
  moto = await startMoto();
  glue = new GlueClient({
    region: 'us-east-1',
    endpoint: moto.endpoint,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
});
after(async () => {
  glue?.destroy();
  await moto?.stop();
});

function schemaOf(objects: readonly Record<string, unknown>[]): PropertySchema {
  const schema = new PropertySchema();
  for (const object of objects) schema.addProperties(object);
  return schema;
}

describe('GlueCatalog on moto', () => {
  test('creates the tables, changes nothing when current, and updates the typed view as properties appear', async () => {
    // Arrange
    const target: WarehouseTarget = {
      bucket: 'customer-exports',
      prefix: 'analytics/',
      projectId: 'acme-eu',
      database: glueDatabaseName('acme-eu'),
      format: 'json',
      firstDay: '2024-11-01',
    };
    const catalog = new GlueCatalog(glue);
    const first = mergeStepSchema(undefined, 'daily-2024-11-01', schemaOf([{ $os: 'iOS', plan: 'pro' }]));

    // Act
    const created = await catalog.applyWarehouse(
      target.database,
      'acme-eu',
      warehouseTables(target, first.state.columns),
    );
    const again = await catalog.applyWarehouse(
      target.database,
      'acme-eu',
      warehouseTables(target, first.state.columns),
    );
    const grown = mergeStepSchema(
      first.state,
      'daily-2024-11-02',
      schemaOf([{ $os: 'Android', plan: 3, price: 9.5 }]),
    );
    const updated = await catalog.applyWarehouse(
      target.database,
      'acme-eu',
      warehouseTables(target, grown.state.columns),
    );

    // Assert
    assert.match(target.database, /^mp_acme_eu_[0-9a-f]{8}$/);
    const names = [
      'mp_master_event',
      'mp_master_event_raw',
      'mp_master_event_view',
      'mp_master_event_typed',
      'mp_people_data',
      'mp_people_data_view',
      'mp_identity_mappings_data',
      'mp_identity_mappings_data_view',
    ];
    assert.deepEqual(created, Object.fromEntries(names.map((n) => [n, 'created'])));
    assert.deepEqual(again, Object.fromEntries(names.map((n) => [n, 'unchanged'])));
    assert.ok(grown.columnsChanged);
    assert.deepEqual(updated, { ...again, mp_master_event_typed: 'updated' });

    const events = await catalog.getTable(target.database, 'mp_master_event');
    assert.deepEqual(events?.Parameters, {
      EXTERNAL: 'TRUE',
      classification: 'json',
      'projection.enabled': 'true',
      'projection.mp_date.type': 'date',
      'projection.mp_date.format': 'yyyy/MM/dd',
      'projection.mp_date.range': '2024/11/01,NOW+1DAYS',
      'projection.mp_date.interval': '1',
      'projection.mp_date.interval.unit': 'DAYS',
      'storage.location.template': `s3://customer-exports/analytics/acme-eu/mp_master_event/\${mp_date}/`,
    });
    assert.deepEqual(events?.PartitionKeys, [{ Name: 'mp_date', Type: 'string' }]);
    assert.equal(
      events?.StorageDescriptor?.Location,
      's3://customer-exports/analytics/acme-eu/mp_master_event/',
    );
    assert.equal(
      events?.StorageDescriptor?.SerdeInfo?.SerializationLibrary,
      'org.openx.data.jsonserde.JsonSerDe',
    );
    assert.deepEqual(
      events?.StorageDescriptor?.Columns?.map((c) => `${c.Name} ${c.Type}`),
      [
        'event_name string',
        'time bigint',
        'distinct_id string',
        'device_id string',
        'user_id string',
        'insert_id string',
        'properties string',
      ],
    );
    const rawLines = await catalog.getTable(target.database, 'mp_master_event_raw');
    assert.equal(
      rawLines?.StorageDescriptor?.SerdeInfo?.SerializationLibrary,
      'org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe',
    );
    assert.equal(rawLines?.StorageDescriptor?.SerdeInfo?.Parameters?.['field.delim'], '\u0001');
    assert.equal(
      rawLines?.Parameters?.['storage.location.template'],
      events?.Parameters?.['storage.location.template'],
    );
    const peopleTable = await catalog.getTable(target.database, 'mp_people_data');
    assert.equal(
      peopleTable?.StorageDescriptor?.InputFormat,
      'org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat',
    );
    assert.equal(
      peopleTable?.StorageDescriptor?.Location,
      's3://customer-exports/analytics/acme-eu/_warehouse/mp_people_data/',
    );

    const typed = await catalog.getTable(target.database, 'mp_master_event_typed');
    assert.equal(typed?.TableType, 'VIRTUAL_VIEW');
    assert.deepEqual(
      typed?.StorageDescriptor?.Columns?.slice(8).map((c) => `${c.Name} ${c.Type}`),
      ['mp_os string', 'plan string', 'plan_number bigint', 'price double', `${OVERFLOW_COLUMN} string`],
    );
    const sql = athenaViewSql({ ViewOriginalText: typed?.ViewOriginalText });
    assert.match(sql, /element_at\(p\.mp_properties, 'plan'\)/);
    assert.match(sql, /AS "plan_number"/);
    const versions = await glue.send(
      new GetTableVersionsCommand({ DatabaseName: target.database, TableName: 'mp_master_event_typed' }),
    );
    assert.equal(versions.TableVersions?.length, 2);
    const oldest = versions.TableVersions?.map(
      (v) => v.Table?.StorageDescriptor?.Columns?.map((c) => c.Name) ?? [],
    );
    const [before, after] = [...(oldest ?? [])].sort((a, b) => a.length - b.length);
    assert.deepEqual(
      after?.slice(0, before!.length - 1),
      before?.slice(0, -1),
      'earlier columns keep their names and order',
    );
  });

  test('Parquet output: a timestamp time column, the Parquet SerDe, and no raw line table', async () => {
    const target: WarehouseTarget = {
      bucket: 'customer-exports',
      projectId: 'acme',
      database: glueDatabaseName('acme'),
      format: 'parquet',
      firstDay: '2023-01-31',
    };
    const catalog = new GlueCatalog(glue);
    const outcomes = await catalog.applyWarehouse(target.database, 'acme', warehouseTables(target, []));
    assert.equal(target.database, 'mp_acme');
    assert.ok(!('mp_master_event_raw' in outcomes));
    const events = await catalog.getTable(target.database, 'mp_master_event');
    assert.equal(events?.StorageDescriptor?.Columns?.[1]?.Type, 'timestamp');
    assert.equal(
      events?.StorageDescriptor?.SerdeInfo?.SerializationLibrary,
      'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe',
    );
    assert.equal(events?.Parameters?.['projection.mp_date.range'], '2023/01/31,NOW+1DAYS');
    assert.equal(
      events?.Parameters?.['storage.location.template'],
      `s3://customer-exports/acme/mp_master_event/\${mp_date}/`,
    );
    const view = await catalog.getTable(target.database, 'mp_master_event_view');
    assert.equal(
      athenaViewSql({ ViewOriginalText: view?.ViewOriginalText }).includes('FROM "mp_master_event"'),
      true,
    );
  });
});

describe("a commit's catalog update (updateCatalog) on moto", () => {
  test('applies a pipeline its tables once, again only when its schema grew, and keeps destinations apart', async () => {
    // Arrange: an events pipeline's state with a stored schema, and the catalog recording what it is sent.
    const state = await tempFolder('catalog-state');
    try {
      const stores = { state: new FsObjectStore(state.path) };
      const events = parsePipelineConfig({
        project_id: 'shop',
        name: 'events-daily',
        frequency: 'daily',
        time_zone: 'UTC',
        from_date: '2024-05-01',
      });
      const applied: string[][] = [];
      const catalog = new GlueCatalog(glue);
      const recording = {
        applyWarehouse: (database: string, description: string, tables: readonly GlueTableInput[]) => {
          applied.push(tables.map((t) => t.Name));
          return catalog.applyWarehouse(database, description, tables);
        },
      };
      const storeSchema = async (step: string, properties: Record<string, unknown>) => {
        const schema = new PropertySchema();
        schema.addProperties(properties);
        await mergeStepSchemas(stores.state, step, [
          { step_id: step, task: 0, parts: [], days: {}, schema: schema.toJSON() },
        ]);
      };
      const destination = { bucket: 'exports' };

      // Act and assert
      await storeSchema('daily-2024-05-01', { plan: 'pro' });
      const first = await updateCatalog(recording, stores, events, destination);
      assert.deepEqual(first?.database, 'mp_shop');
      assert.deepEqual(Object.values(first?.tables ?? {}), ['created', 'created', 'created', 'created']);
      assert.equal(await updateCatalog(recording, stores, events, destination), undefined, 'nothing sent');
      await storeSchema('daily-2024-05-02', { plan: 'pro', seats: 3 });
      const grown = await updateCatalog(recording, stores, events, destination);
      assert.deepEqual(grown?.tables, {
        mp_master_event: 'unchanged',
        mp_master_event_raw: 'unchanged',
        mp_master_event_view: 'unchanged',
        mp_master_event_typed: 'updated',
      });
      const typed = await catalog.getTable('mp_shop', 'mp_master_event_typed');
      assert.ok(typed?.StorageDescriptor?.Columns?.some((c) => c.Name === 'seats' && c.Type === 'bigint'));
      assert.equal(applied.length, 2);

      // A snapshot pipeline keeps its own table and view; a prefixed pipeline gets its own database.
      const people = parsePipelineConfig({ ...events, name: 'people-daily', data_source: 'people' });
      const peopleState = { state: new FsObjectStore(join(state.path, 'people')) };
      const snapshot = await updateCatalog(recording, peopleState, people, destination);
      assert.deepEqual(Object.keys(snapshot?.tables ?? {}), ['mp_people_data', 'mp_people_data_view']);
      const prefixed = parsePipelineConfig({ ...events, name: 'events-eu', s3_prefix: 'eu' });
      const elsewhere = await updateCatalog(
        recording,
        { state: new FsObjectStore(join(state.path, 'eu')) },
        prefixed,
        { bucket: 'exports', prefix: 'eu' },
      );
      assert.match(elsewhere?.database ?? '', /^mp_shop_[0-9a-f]{8}$/);
      const located = await catalog.getTable(elsewhere!.database, 'mp_master_event');
      assert.equal(located?.StorageDescriptor?.Location, 's3://exports/eu/shop/mp_master_event/');
    } finally {
      await state.cleanup();
    }
  });
});

describe('the catalog update after a commit, in a local schedule', () => {
  test('a catalog that fails does not fail the committed step; the next commit applies the tables', async () => {
    // Arrange: two days of events; the catalog refuses its first call (throttled, a Lake Formation denial).
    const raw = await tempFolder('catalog-run-raw');
    const out = await tempFolder('catalog-run-out');
    try {
      const config = parsePipelineConfig({
        project_id: 'failsafe',
        name: 'events-daily',
        frequency: 'daily',
        time_zone: 'UTC',
        from_date: '2024-05-01',
      });
      await generateLandingZone({
        rawDir: raw.path,
        projectId: 'failsafe',
        seed: 9,
        start: Date.parse('2024-05-01T00:00:00Z'),
        hours: 48,
        eventsPerHour: 10,
        users: 10,
      });
      const catalog = new GlueCatalog(glue);
      let refused = 0;
      const flaky = {
        applyWarehouse: async (database: string, description: string, tables: readonly GlueTableInput[]) => {
          if (refused === 0) {
            refused += 1;
            throw new Error('AccessDeniedException: Insufficient Lake Formation permission(s)');
          }
          return catalog.applyWarehouse(database, description, tables);
        },
      };
      const warnings: string[] = [];
      const control = await startControlPlane(moto);
      try {
        // Act
        const result = await runLocalPipeline({
          config,
          folders: {
            raw: raw.path,
            out: out.path,
            state: defaultStateFolder(out.path, 'failsafe', config.name),
          },
          now: Date.parse('2024-05-04T00:00:00Z'),
          control,
          workers: 1,
          warehouse: { catalog: flaky, destinationBucket: () => 'exports' },
          progress: (message) => warnings.push(message),
        });

        // Assert
        assert.ok(result.ok, result.failures.join('\n'));
        assert.ok(result.steps.length >= 2, 'two days committed');
        assert.equal(refused, 1);
        assert.ok(warnings.some((w) => w.startsWith('warehouse tables not updated')));
        const typed = await catalog.getTable('mp_failsafe', 'mp_master_event_typed');
        assert.ok(typed?.StorageDescriptor?.Columns?.some((c) => c.Name === 'mp_os'));
      } finally {
        await control.stop();
      }
    } finally {
      await raw.cleanup();
      await out.cleanup();
    }
  });
});
