#!/usr/bin/env bash
# Builds a benchmark program of benches/ (release, `harness = false`) and prints the
# path of its executable: scripts/bench-binary.sh bench_server
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --no-run --bench "$1" --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
name = sys.argv[1]
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message["target"]["name"] == name and message.get("executable"):
        print(message["executable"])
' "$1"
