#!/usr/bin/env bash
# Instructions per request of the example receiver, verified route vs the same handler
# unverified, counted by valgrind's callgrind: repeatable whatever else the machine does.
#
#   scripts/instructions.sh [REQUESTS]
#
# Under valgrind, SHA-256 runs its portable code (valgrind does not offer the SHA CPU
# extensions), so the SHA-256 share is reported apart from everything else.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-2000}

if ! command -v valgrind >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
cargo build --release --example receiver >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

count() {
  local path=$1 out=$2 port pid
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  GENESYS_WEBHOOK_SECRET=load-test-secret GENESYS_REPLAY_STORE=none GENESYS_BENCH_BASELINE=1 \
    RUST_LOG=warn LISTEN_ADDR=127.0.0.1:$port \
    valgrind --tool=callgrind --callgrind-out-file="$out" target/release/examples/receiver \
    >"$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  python3 - "$port" "$path" "$REQUESTS" <<'PY'
import hashlib, hmac, socket, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
head = '{"event":"routing:conversation:updated","conversationId":"load","text":"'
body = (head + "a" * (1024 - len(head) - 2) + '"}').encode()
sig = hmac.new(b"load-test-secret", body, hashlib.sha256).hexdigest()
request = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           f"X-Genesys-Signature: {sig}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
s = socket.create_connection(("127.0.0.1", port))
for _ in range(n):
    s.sendall(request)
    answer = b""
    while b"queued" not in answer:
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("connection closed")
        answer += chunk
PY
  kill -INT "$pid"
  wait "$pid" || true
}

count /webhook/receive "$work/verified.out"
count /bench/unverified "$work/unverified.out"
python3 - "$work" "$REQUESTS" <<'PY'
import re, subprocess, sys
work, n = sys.argv[1], int(sys.argv[2])
def totals(name):
    text = subprocess.run(["callgrind_annotate", f"{work}/{name}.out"], capture_output=True, text=True).stdout
    total = int(re.search(r"([\d,]+) \([\d.]+%\)\s+PROGRAM TOTALS", text).group(1).replace(",", ""))
    sha = sum(int(m.group(1).replace(",", "")) for m in re.finditer(r"^\s*([\d,]+) \([\d.]+%\)\s+\S*sha2::sha256", text, re.M))
    return total / n, sha / n
v, v_sha = totals("verified")
u, u_sha = totals("unverified")
print(f"instructions per request (whole process, {n} requests on one connection)")
print(f"  unverified: {u:,.0f}")
print(f"  verified:   {v:,.0f}, of which SHA-256 (portable code under valgrind) {v_sha:,.0f}")
print(f"  verification adds {v - u:,.0f}: SHA-256 {v_sha - u_sha:,.0f}, everything else {(v - v_sha) - (u - u_sha):,.0f}")
PY
