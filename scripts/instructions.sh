#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: repeatable whatever else
# the machine does, where timings on it drift by 10 % or more.
#
#   scripts/instructions.sh [receiver|compare] [REQUESTS]
#
#   receiver  the example receiver: its verified route against the same handler
#             unverified (default)
#   compare   benches/bench_server.rs: the layer, the hand-written check and no check
#             (the routes of `scripts/load.sh compare`), the layer with axum's `Json`
#             extractor, and the least any body-reading middleware costs (`/buffered`);
#             then the functions where the layer's route spends more than the
#             unverified one
#
# Each route is counted twice, with REQUESTS (default 2000) and with 200 requests on one
# connection, and the difference is divided by the difference in requests: start-up and
# shutdown cancel out. Under valgrind, SHA-256 runs its portable code (valgrind does not
# offer the SHA CPU extensions), so the SHA-256 share is reported apart from everything
# else.
set -euo pipefail
cd "$(dirname "$0")/.."
# Where cargo puts the builds: CARGO_TARGET_DIR when set, as cargo itself reads it.
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
MODE=${1:-receiver}
REQUESTS=${2:-2000}
FEW=200

if ! command -v valgrind >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

case "$MODE" in
  receiver)
    cargo build --release --example receiver >&2
    binary="$target_dir"/release/examples/receiver
    secret=load-test-secret
    routes="/webhook/receive /bench/unverified"
    ready=/healthz
    ;;
  compare)
    bench_server=$(scripts/bench-binary.sh bench_server)
    binary=$bench_server
    secret=bench-secret
    routes="/layer /hand /plain /layer/json /buffered"
    ready=/plain
    ;;
  *) echo "unknown mode: $MODE" >&2; exit 2 ;;
esac

# count PATH REQUESTS OUT: runs the server under callgrind and sends REQUESTS requests.
count() {
  local path=$1 n=$2 out=$3 port pid
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  GENESYS_WEBHOOK_SECRET=$secret BENCH_SECRET=$secret GENESYS_REPLAY_STORE=none \
    GENESYS_INBOX=memory GENESYS_BENCH_BASELINE=1 RUST_LOG=warn LISTEN_ADDR=127.0.0.1:$port \
    valgrind --tool=callgrind --callgrind-out-file="$out" "$binary" >"$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do
    curl -s -o /dev/null "http://127.0.0.1:$port$ready" 2>/dev/null && break
    sleep 0.1
  done
  python3 - "$port" "$path" "$n" "$secret" <<'PY'
import hashlib, hmac, socket, sys
port, path, n, secret = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4].encode()
head = '{"event":"routing:conversation:updated","conversationId":"load","text":"'
body = (head + "a" * (1024 - len(head) - 2) + '"}').encode()
sig = hmac.new(secret, body, hashlib.sha256).hexdigest()
request = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           f"X-Genesys-Signature: {sig}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
s = socket.create_connection(("127.0.0.1", port))
for _ in range(n):
    s.sendall(request)
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("connection closed")
        answer += chunk
    if not answer.startswith(b"HTTP/1.1 2"):
        raise SystemExit(f"{path}: {answer[:60]!r}")
PY
  kill -INT "$pid"
  wait "$pid" || true
  callgrind_annotate --threshold=100 "$out" >"$out.txt"
}

for route in $routes; do
  name=$(echo "$route" | tr -c 'a-z0-9\n' '_')
  count "$route" "$FEW" "$work/$name.few"
  count "$route" "$REQUESTS" "$work/$name.many"
done

python3 - "$work" "$MODE" "$REQUESTS" "$FEW" $routes <<'PY'
import re, sys
work, mode, many, few, routes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]

def functions(path):
    found = {}
    for line in open(path):
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S.*?)(?: \[.*\])?$", line)
        if m:
            found[m.group(2)] = found.get(m.group(2), 0) + int(m.group(1).replace(",", ""))
    return found

per_request = {}
for route in routes:
    name = re.sub(r"[^a-z0-9\n]", "_", route)
    a, b = functions(f"{work}/{name}.many.txt"), functions(f"{work}/{name}.few.txt")
    per_request[route] = {k: (a.get(k, 0) - b.get(k, 0)) / (many - few) for k in set(a) | set(b)}

def total(route):
    return per_request[route].get("PROGRAM TOTALS", 0)

def sha(route):
    return sum(v for k, v in per_request[route].items() if "sha2::sha256" in k)

base = routes[1] if mode == "receiver" else "/plain"
print(f"instructions per request, 1 KiB body ({many} - {few} requests on one connection)")
for route in routes:
    extra = total(route) - total(base)
    print(f"  {route:18} {total(route):9,.0f}   SHA-256 {sha(route):7,.0f}   "
          f"over {base}: {extra:7,.0f}, of which not SHA-256 {extra - sha(route) + sha(base):7,.0f}")

verified = routes[0]
print(f"\nwhere {verified} spends more than {base} (SHA-256 left out), largest first:")
rows = []
for k in set(per_request[verified]) | set(per_request[base]):
    if k == "PROGRAM TOTALS" or "sha2::sha256" in k:
        continue
    d = per_request[verified].get(k, 0) - per_request[base].get(k, 0)
    rows.append((d, k))
for d, k in sorted(rows, reverse=True)[:20]:
    print(f"  {d:7,.0f}  {k[:110]}")
PY
