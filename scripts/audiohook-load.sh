#!/usr/bin/env bash
# How many AudioHook sessions the example server sustains, and what each costs.
#
#   scripts/audiohook-load.sh 1000 3000 5000      one run per session count
#   MODE=monitor scripts/audiohook-load.sh 5000  without the voice-activity detector
#   BASELINE=<git revision> scripts/audiohook-load.sh 5000
#                                                 the same load, in the same run, against
#                                                 the example of that revision as well
#
# The release builds of examples/audiohook.rs and of `genesys-webhook audiohook-load`
# run on this machine together, over loopback. RAMP (20) and SECONDS_OF_AUDIO (40)
# set the opening spread and how long every session streams. One JSON line a run; see
# scripts/audiohook_load.py for what each field means.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
cargo build -q --release --all-features --example audiohook --bin genesys-webhook
# Two sockets a session on each side, plus room.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
export CLI="$target_dir/release/genesys-webhook"
if [[ -n "${BASELINE:-}" ]]; then
  base_dir=$(mktemp -d)
  git worktree add -q --detach "$base_dir" "$BASELINE"
  trap 'git worktree remove --force "$base_dir"' EXIT
  (cd "$base_dir" && CARGO_TARGET_DIR="$target_dir/baseline" cargo build -q --release --features audiohook --example audiohook)
  echo "baseline: examples/audiohook.rs at $(git rev-parse --short "$BASELINE")" >&2
  SERVER="$target_dir/baseline/release/examples/audiohook" MODE=monitor python3 scripts/audiohook_load.py "$@" | sed 's/^/baseline /'
fi
SERVER="$target_dir/release/examples/audiohook" python3 scripts/audiohook_load.py "$@"
