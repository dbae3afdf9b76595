/**
 * The layers, read from the import lines: the core is pure (no AWS SDK, CDK or Lambda code, no upper
 * layer); the engine uses ports, never adapters; adapters never reach the workflow layer; nothing of the
 * runtime (src/, functions/) loads the CDK, the stack or a dev dependency, so an install without dev
 * dependencies runs the CLI and the functions; only the CLI and the entry scripts import the CLI.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Every TypeScript source under `folder` (relative to the repository), with the modules it imports. */
function importsUnder(folder: string): { file: string; imports: string[] }[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) files.push(path);
    }
  };
  walk(folder);
  return files.map((file) => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    const imports = [
      ...text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+'([^']+)'/gms),
      ...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
    ].map((match) => match[1] as string);
    return { file, imports };
  });
}

/** The package an import names (`@scope/name` or `name`), or the repository path it resolves to. */
function target(file: string, specifier: string): string {
  if (specifier.startsWith('.')) return relative(ROOT, resolve(ROOT, file, '..', specifier));
  if (specifier.startsWith('node:')) return specifier;
  const [first, second] = specifier.split('/');
  return first?.startsWith('@') ? `${first}/${second}` : (first ?? specifier);
}

/** `file imports target` for every import of the files under `folder` that `forbidden` matches. */
function violations(folder: string, forbidden: (target: string) => boolean): string[] {
  return importsUnder(folder).flatMap(({ file, imports }) =>
    imports
      .map((specifier) => target(file, specifier))
      .filter(forbidden)
      .map((to) => `${file} imports ${to}`),
  );
}

const packageJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const DEV_ONLY = new Set(Object.keys(packageJson.devDependencies));
const CDK = new Set(['aws-cdk-lib', 'constructs', 'cdk-nag', 'aws-cdk']);
const AWS_CODE = (to: string) =>
  to.startsWith('@aws-sdk/') ||
  to.startsWith('@aws-lambda-powertools/') ||
  to === 'aws-lambda' ||
  CDK.has(to);
const under =
  (...folders: string[]) =>
  (to: string) =>
    folders.some((folder) => to === folder || to.startsWith(`${folder}/`));

describe('the import lines keep the layers', () => {
  test('the scanner sees the imports (a check that could not fail would prove nothing)', () => {
    const [core] = importsUnder('src/core').filter(({ file }) => file.endsWith('pipeline-config.ts'));
    assert.ok(core !== undefined && core.imports.length > 0);
    assert.ok(violations('lib', (to) => to === 'aws-cdk-lib').length > 0);
  });

  test('the core imports no AWS SDK, CDK or Lambda code and no layer above it', () => {
    assert.deepEqual(
      violations('src/core', (to) => AWS_CODE(to) || (to.startsWith('src/') && !to.startsWith('src/core/'))),
      [],
    );
  });

  test('the engine works through ports: no AWS SDK, no adapters, workflows, local runtime or CLI', () => {
    assert.deepEqual(
      violations(
        'src/engine',
        (to) =>
          AWS_CODE(to) || under('src/adapters', 'src/workflow', 'src/local', 'src/cli', 'src/management')(to),
      ),
      [],
    );
  });

  test('adapters never import the workflow layer, the local runtime or the CLI', () => {
    assert.deepEqual(violations('src/adapters', under('src/workflow', 'src/local', 'src/cli')), []);
  });

  test('the runtime never loads the CDK, the stack or a dev dependency', () => {
    for (const folder of ['src', 'functions']) {
      assert.deepEqual(
        violations(folder, (to) => CDK.has(to) || DEV_ONLY.has(to) || under('lib', 'bin')(to)),
        [],
        folder,
      );
    }
  });

  test('only the CLI and the entry scripts (src/scripts) import the CLI', () => {
    assert.deepEqual(
      [
        'src/core',
        'src/engine',
        'src/adapters',
        'src/workflow',
        'src/management',
        'src/local',
        'src/chaos',
        'functions',
      ].flatMap((folder) => violations(folder, under('src/cli'))),
      [],
    );
  });

  test('the workflow layer never chooses by data source: engineFor does, once', () => {
    const branches = importsUnder('src/workflow').filter(({ file }) =>
      /\bdata_source\s*[!=]==/.test(readFileSync(join(ROOT, file), 'utf8')),
    );
    assert.deepEqual(
      branches.map(({ file }) => file),
      [],
    );
  });
});
