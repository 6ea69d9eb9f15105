#!/usr/bin/env bash
# Runs every QCSS test: unit tests, the chaincode runtime against the built
# example contracts, and the multi-process end-to-end tests in tests/.
# Usage: scripts/test.sh [extra nextest args]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v openssl >/dev/null; then
    echo "scripts/test.sh: openssl is needed by the CA tests (apt-get install -y openssl)" >&2
    exit 1
fi

# Contracts are wasm, built by their own command (see chaincode/README.md).
if [ -x chaincode/build-contracts.sh ]; then
    chaincode/build-contracts.sh
fi

# Fabric's official Node client drives the peer in tests/tests/fabric_node_client.rs.
if [ ! -d tests/node/node_modules/@hyperledger/fabric-gateway ]; then
    if ! command -v npm >/dev/null; then
        echo "scripts/test.sh: Node.js and npm are needed for the Fabric client test" >&2
        exit 1
    fi
    npm ci --prefix tests/node --no-audit --no-fund
fi

# Build the binary the end-to-end tests start, once, and tell them where it is.
cargo build -p qcss
export QCSS_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/qcss"

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
    # nextest does not run doctests.
    cargo test --workspace --doc
else
    cargo test --workspace --no-fail-fast "$@"
fi
