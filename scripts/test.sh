#!/usr/bin/env bash
# Runs gcr's whole test suite (unit, integration with real namespaces/cgroups, interop with
# skopeo/umoci). Installs what it needs first. Root is needed for the runtime tests; with
# CI=true a skipped root test is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo nextest run --workspace --no-fail-fast "$@"
