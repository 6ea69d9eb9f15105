#!/usr/bin/env bash
# Builds every contract in chaincode/contracts for wasm32-unknown-unknown
# (release) and copies each module to chaincode/contracts/build/<name>.wasm,
# where the peer's tooling and the runtime's tests look for it.
#
#   chaincode/build-contracts.sh            # from anywhere
#
# Installs the wasm32-unknown-unknown target with rustup when it is missing.
# Builds into $CARGO_TARGET_DIR when it is set (one target dir per worktree),
# else into chaincode/contracts/target.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
contracts="$here/contracts"
target_dir="${CARGO_TARGET_DIR:-$contracts/target}"
out_dir="$contracts/build"
target=wasm32-unknown-unknown

if ! rustup target list --installed | grep -qx "$target"; then
    echo "installing the $target target with rustup"
    rustup target add "$target"
fi

# Contract crates: the folders under contracts/ whose Cargo.toml builds a cdylib.
crates=()
for manifest in "$contracts"/*/Cargo.toml; do
    grep -q '"cdylib"' "$manifest" || continue
    crates+=("$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -n 1)")
done
if [ "${#crates[@]}" -eq 0 ]; then
    echo "no contract crates found in $contracts" >&2
    exit 1
fi

# From inside the contracts workspace: cargo finds `.cargo/config.toml` (the
# contracts' 64 KiB stack) by the working directory, not by --manifest-path.
(cd "$contracts" && cargo build --release --target "$target" \
    --target-dir "$target_dir" --locked --workspace)

mkdir -p "$out_dir"
for crate in "${crates[@]}"; do
    name="${crate//-/_}"
    src="$target_dir/$target/release/$name.wasm"
    if [ ! -f "$src" ]; then
        echo "expected $src after the build" >&2
        exit 1
    fi
    cp "$src" "$out_dir/$name.wasm"
    printf '%-24s %8d bytes\n' "$name.wasm" "$(stat -c %s "$out_dir/$name.wasm")"
done
