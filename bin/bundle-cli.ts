/**
 * Build step: bundles the `mp-pipelines` command and the worker threads of local runs into
 * `dist/bundle/cli/`, as the Lambda functions are bundled. Loading the compiled modules one by one (the
 * SDK's, the Step Functions interpreter's and its schema validator's, several hundred files) took half a
 * second of CPU on the main thread and a quarter on each worker thread, while the emulator booted on
 * the same cores; bundled, about half of that (see README, Performance).
 */
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const dist = (path: string) => fileURLToPath(new URL(`../${path}`, import.meta.url));

/**
 * Loaded from node_modules as they are: DuckDB is a native addon, zstd's WebAssembly and piscina's
 * worker script are files their modules find next to themselves.
 */
const EXTERNAL = ['@duckdb/*', '@bokuweb/zstd-wasm', 'piscina'];

await build({
  // Two levels below dist/, as the compiled modules: `workflows.json` and the worker script are found
  // by the same relative URLs (`workflow-definitions.ts`, `task-pool.ts`).
  outdir: dist('bundle/cli'),
  entryPoints: {
    main: dist('src/cli/main.js'),
    'task-worker': dist('src/local/task-worker.js'),
  },
  bundle: true,
  // Code loaded only by some commands (the engine, the Parquet writer) stays in chunks of its own.
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  // Bundled CommonJS modules require Node's built-in modules.
  banner: {
    js: "import { createRequire as bundleRequire } from 'node:module'; const require = bundleRequire(import.meta.url);",
  },
  sourcemap: true,
  logLevel: 'warning',
});
