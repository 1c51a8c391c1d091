#!/usr/bin/env bash
# SqliteInbox appends against apalis-sqlite pushes, 1 KiB each, at 1, 8 and 64
# concurrent producers, both with WAL and synchronous=FULL on every connection, on the
# same disk, alternating. The apalis side is the crate in compare/apalis (its own lock
# file; neither `cargo test` nor CI builds it).
#
#   scripts/compare-apalis.sh            10 s per run, 3 rounds
#   SECONDS_PER_RUN=5 ROUNDS=1 scripts/compare-apalis.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
ROUNDS=${ROUNDS:-3}
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
append_bench=$(scripts/bench-binary.sh append_bench)
(cd compare/apalis && cargo build --release >&2)
apalis_target=${CARGO_TARGET_DIR:-compare/apalis/target}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "# ${SECONDS_PER_RUN} s per run, ${ROUNDS} rounds, a fresh database file each run in $(df --output=source "$work" | tail -1)"
for round in $(seq 1 "$ROUNDS"); do
  for producers in 1 8 64; do
    "$append_bench" "$producers" "$SECONDS_PER_RUN" "$work/inbox-$round-$producers.db"
    "$apalis_target/release/apalis-compare" "$producers" "$SECONDS_PER_RUN" "$work/apalis-$round-$producers.db"
  done
done
