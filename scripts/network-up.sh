#!/usr/bin/env bash
# The README's first command: builds the contracts and the qcss binary, then
# starts a whole local consortium with `qcss network up` (CAs, orderers,
# peers, the traceability contract) — by default with the demo story.
# Usage: scripts/network-up.sh [qcss network up args]   (default: --demo)
# Stop it with: target/debug/qcss network down
set -euo pipefail
cd "$(dirname "$0")/.."

chaincode/build-contracts.sh >/dev/null
cargo build -q -p qcss
QCSS="${CARGO_TARGET_DIR:-$PWD/target}/debug/qcss"
if [ "$#" -eq 0 ]; then
    set -- --demo
fi
exec "$QCSS" network up "$@"
