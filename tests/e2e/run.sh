#!/usr/bin/env bash
# End-to-end tests: the real openbridge binary, the mock provider, the openai and Vercel AI SDKs.
#   OPENBRIDGE_BIN=path/to/openbridge tests/e2e/run.sh [test files...]
# Default binary: build/openbridge. E2E_VERBOSE=1 echoes the gateway's stderr.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export OPENBRIDGE_BIN="${OPENBRIDGE_BIN:-$repo/build/openbridge}"
if [[ ! -x "$OPENBRIDGE_BIN" ]]; then
  echo "e2e: gateway binary not found at $OPENBRIDGE_BIN (build it or set OPENBRIDGE_BIN)" >&2
  exit 1
fi
cd "$here"
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
if [[ $# -gt 0 ]]; then
  exec node --test --test-concurrency=1 "$@"
fi
exec node --test --test-concurrency=1 ../../tools/mock-provider/test/*.test.mjs ./*.test.mjs
