#!/usr/bin/env bash
# Load, memory, attack and soak measurements of the example receiver, with wrk.
#
#   scripts/load.sh            throughput + attack + memory (about 3 minutes)
#   scripts/load.sh soak       the above, then 5 minutes of mixed traffic with RSS sampled
#   scripts/load.sh throughput|attack|memory   one part only
#   scripts/load.sh inbox      group commit: SQLite grouped, SQLite one commit per
#                              event, and the memory inbox (not part of the default run)
#   scripts/load.sh compare    the layer against the hand-written check and against no
#                              check (benches/bench_server.rs), wrk -c32, 1 KiB, 64 KiB, 1 MiB;
#                              ROUTES="layer plain buffered" SIZES=1024 for other routes
#   scripts/load.sh drain      processing against acceptance: wrk -c64, 1 KiB events for
#                              DURATION (30 s) into SQLite and into Redis (appendfsync
#                              always), the worker's handler doing nothing; /metrics
#                              sampled every second
#   scripts/load.sh relay      genesys-webhook serve against the in-process worker: wrk
#                              -c64, 1 KiB events for DURATION (30 s) into SQLite and into
#                              Redis (appendfsync always); the relay forwards to
#                              bench_server's /app, which answers at once and records the
#                              delay from acceptance to delivery (p50, p99); the example
#                              receiver's worker (a handler that does nothing) alongside;
#                              events of CONVERSATIONS (1000) conversations in turn
#   scripts/load.sh anchor     the example receiver's verified route (memory inbox)
#                              against bench_server's hand-written check, 1 KiB
#   scripts/load.sh bot        a Bot Connector turn through BotConnectorRouter (credential
#                              header, typed parsing) against a bare Json<Value> handler
#   scripts/load.sh flood      200 concurrent 1 MiB wrongly signed bodies against the
#                              64 MiB buffering budget, valid requests alongside and after
#   DURATION=5 ROUNDS=2 scripts/load.sh   shorter runs
#
# Everything runs on loopback. The receiver is the release build of
# examples/receiver.rs with the memory inbox (INBOX changes it), replay protection off
# (GENESYS_REPLAY_STORE=none: wrk repeats one body) and its
# benchmark-only baseline route on (GENESYS_BENCH_BASELINE=1): POST /bench/unverified
# runs the same handler without the signature check, in the same process.
set -euo pipefail
cd "$(dirname "$0")/.."
# Where cargo puts the builds: CARGO_TARGET_DIR when set, as cargo itself reads it.
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

MODE=${1:-}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
SOAK_SECONDS=${SOAK_SECONDS:-300}
SECRET=load-test-secret

if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

cargo build --release --features redis --example receiver >&2

work=$(mktemp -d)
receiver_pid=
cleanup() {
  if [ -n "$receiver_pid" ]; then kill "$receiver_pid" 2>/dev/null || true; wait "$receiver_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_receiver() {
  GENESYS_WEBHOOK_SECRET=$SECRET GENESYS_REPLAY_STORE=none GENESYS_BENCH_BASELINE=1 \
    GENESYS_INBOX=${INBOX:-memory} GENESYS_INBOX_MAX_EVENTS=10000000 \
    GENESYS_INBOX_MAX_BYTES=$((64 * 1024 * 1024 * 1024)) GENESYS_MAX_BODY_BYTES=$((2 * 1024 * 1024)) \
    RUST_LOG=warn,receiver::summary=info LISTEN_ADDR=127.0.0.1:$port \
    "$target_dir"/release/examples/receiver >"$work/receiver.log" 2>&1 &
  receiver_pid=$!
  for _ in $(seq 1 100); do
    if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then return; fi
    sleep 0.05
  done
  echo "receiver did not start" >&2; cat "$work/receiver.log" >&2; exit 1
}
stop_receiver() {
  kill "$receiver_pid"; wait "$receiver_pid" 2>/dev/null || true; receiver_pid=
}


# payload NAME SIZE SIGNATURE_MODE: writes a JSON body of SIZE bytes and a wrk script
# posting it. SIGNATURE_MODE: valid | wrong | none | malformed.
payload() {
  python3 - "$work" "$1" "$2" "$3" "$SECRET" <<'PY'
import hmac, hashlib, json, sys
work, name, size, mode, secret = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
head = '{"event":"routing:conversation:updated","conversationId":"load","text":"'
body = (head + "a" * (size - len(head) - 2) + '"}').encode()
assert len(body) == size
open(f"{work}/{name}.json", "wb").write(body)
sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
headers = {"Content-Type": "application/json"}
if mode == "valid":
    headers["X-Genesys-Signature"] = sig
elif mode == "wrong":
    headers["X-Genesys-Signature"] = hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
elif mode == "malformed":
    headers["X-Genesys-Signature"] = "not-a-digest"
lines = ['wrk.method = "POST"', f'local f = io.open("{work}/{name}.json", "rb")', "wrk.body = f:read(\"*a\")", "f:close()"]
lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
open(f"{work}/{name}.lua", "w").write("\n".join(lines) + "\n")
PY
}

# run SCRIPT PATH [CONNECTIONS] -> prints "rps p99_ms non2xx cpu_us_per_request"
run() {
  local script=$1 path=$2 conns=${3:-$CONNECTIONS}
  local before after out
  before=$(awk '{print $14 + $15}' "/proc/$receiver_pid/stat")
  out=$(wrk -t2 -c"$conns" -d"${DURATION}s" --latency -s "$work/$script.lua" "http://127.0.0.1:$port$path" 2>&1)
  after=$(awk '{print $14 + $15}' "/proc/$receiver_pid/stat")
  python3 - "$before" "$after" "$(getconf CLK_TCK)" <<PY
import re, sys
out = """$out"""
before, after, tck = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
total = int(re.search(r"(\d+) requests in", out).group(1))
m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
errors = re.search(r"Socket errors: (.*)", out)
cpu_us = (after - before) / tck * 1e6 / max(total, 1)
print(f"{rps:.0f} {p99:.2f} {int(bad.group(1)) if bad else 0} {cpu_us:.1f}" + (f" [{errors.group(1)}]" if errors else ""))
PY
}

median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

# start_bench_server PORT: bench_server on PORT, waited for; its pid in bench_pid.
start_bench_server() {
  BENCH_SECRET=$SECRET RUST_LOG=warn LISTEN_ADDR=127.0.0.1:$1 "$bench_server" >"$work/bench.log" 2>&1 &
  bench_pid=$!
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null "http://127.0.0.1:$1/plain" 2>/dev/null; then return; fi
    sleep 0.05
  done
  echo "bench_server did not start" >&2; cat "$work/bench.log" >&2; exit 1
}

# alternate FIRST SECOND: ROUNDS rounds of two measuring functions, alternating which
# goes first; `round` is set for them.
alternate() {
  for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then "$1"; "$2"; else "$2"; "$1"; fi
  done
}

# ratio LABEL "A..." "B...": the per-round ratios A/B, their median, and both medians.
ratio() {
  python3 - "$@" <<'PY'
import statistics, sys
label, a, b = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
rounds = [x / y for x, y in zip(a, b)]
print(f"{label} per-round ratio: median {statistics.median(rounds):.3f} (rounds: {' '.join(f'{r:.3f}' for r in rounds)}); medians {statistics.median(a):.0f} and {statistics.median(b):.0f} req/s")
PY
}

if [ "$MODE" = compare ]; then
  # ROUTES: the first is weighed against each of the others (bench_server's routes:
  # layer, hand, plain, buffered, layer/json). SIZES: body sizes in bytes.
  read -r -a routes <<<"${ROUTES:-layer hand plain}"
  read -r -a sizes <<<"${SIZES:-1024 65536 1048576}"
  bench_server=$(scripts/bench-binary.sh bench_server)
  export SECRET
  for size in "${sizes[@]}"; do payload "cmp$size" "$size" valid; done
  echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
  echo "## ${routes[*]}: wrk -t2 -c32 -d${DURATION}s, $ROUNDS rounds, order rotated"
  start_bench_server "$port"
  receiver_pid=$bench_pid
  count=${#routes[@]}
  for size in "${sizes[@]}"; do
    declare -A rps=()
    for round in $(seq 1 "$ROUNDS"); do
      shift_by=$((round % count))
      rotated=("${routes[@]:$shift_by}" "${routes[@]:0:$shift_by}")
      for route in "${rotated[@]}"; do
        read -r r p99 bad cpu rest < <(run "cmp$size" "/$route" 32)
        if [ "$bad" != 0 ]; then echo "WARNING: $route answered $bad non-2xx" >&2; fi
        rps[$route]="${rps[$route]:-} $r"
      done
    done
    args=()
    for route in "${routes[@]}"; do args+=("$route" "${rps[$route]}"); done
    python3 - "$size" "${args[@]}" <<'PY'
import statistics, sys
size, rest = int(sys.argv[1]), sys.argv[2:]
names = rest[0::2]
rounds = [[float(x) for x in r.split()] for r in rest[1::2]]
medians = ", ".join(f"{n} {statistics.median(r):.0f}" for n, r in zip(names, rounds))
# Ratios within each round (the runs of a round are back to back), then their median:
# this machine's speed drifts between rounds by more than the differences measured.
ratios = ", ".join(
    f"{names[0]}/{n} {statistics.median(a / b for a, b in zip(rounds[0], r)):.3f}"
    for n, r in zip(names[1:], rounds[1:]))
print(f"{size:>8} B: req/s (medians) {medians}; per-round medians: {ratios}")
for n, r in zip(names, rounds):
    print(f"           {n:12} rounds: {' '.join(f'{x:.0f}' for x in r)}")
PY
    unset rps
  done
  stop_receiver
  exit 0
fi

if [ "$MODE" = anchor ]; then
  # The example receiver's verified route (memory inbox, replay protection off, its
  # worker and metrics on) against the hand-written verification anchor
  # (bench_server's /hand: axum's Bytes, HMAC, a JSON answer), 1 KiB, CONNECTIONS
  # connections, rounds alternating which goes first.
  bench_server=$(scripts/bench-binary.sh bench_server)
  payload anchor1k 1024 valid
  start_receiver
  r_pid=$receiver_pid; r_port=$port
  b_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  start_bench_server "$b_port"
  b_pid=$bench_pid
  echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
  echo "## receiver /webhook/receive against bench_server /hand: wrk -t2 -c$CONNECTIONS -d${DURATION}s, 1 KiB, $ROUNDS rounds"
  recv=(); hand=()
  measure_receiver() {
    receiver_pid=$r_pid port=$r_port
    read -r r p99 bad cpu rest < <(run anchor1k /webhook/receive)
    echo "round $round receiver : $r req/s, p99 $p99 ms, non-2xx $bad, cpu $cpu us/req $rest"
    recv+=("$r")
  }
  measure_hand() {
    receiver_pid=$b_pid port=$b_port
    read -r r p99 bad cpu rest < <(run anchor1k /hand)
    echo "round $round hand     : $r req/s, p99 $p99 ms, non-2xx $bad, cpu $cpu us/req $rest"
    hand+=("$r")
  }
  alternate measure_receiver measure_hand
  ratio receiver/hand "${recv[*]}" "${hand[*]}"
  kill "$b_pid"; wait "$b_pid" 2>/dev/null || true
  receiver_pid=$r_pid port=$r_port
  stop_receiver
  exit 0
fi

if [ "$MODE" = bot ]; then
  # bench_server's /bot/messages (credential layer, typed turn, deadline, intent check)
  # against its /bot-bare (axum's Json<Value>, the same answer), the same body,
  # CONNECTIONS connections, rounds alternating which goes first.
  bench_server=$(scripts/bench-binary.sh bench_server)
  python3 - "$work" "$SECRET" <<'PY'
import json, sys
work, secret = sys.argv[1], sys.argv[2]
turn = {"botId": "bench-bot", "botVersion": "1", "botSessionId": "5f0e3e1e-9b9b-48f6-a737-d1a263a5461d",
        "messageId": "2537692c-02c7-4242-8053-0db0a7d16ac0",
        "inputMessage": {"type": "Text", "text": "I would like to change my delivery address, please"},
        "languageCode": "en-us", "botSessionTimeout": 60,
        "genesysConversationId": "4cf88436-1953-4378-85d5-26fe45039105",
        "parameters": {"customerTier": "gold", "queue": "support"}}
open(f"{work}/turn.json", "w").write(json.dumps(turn))
lines = ['wrk.method = "POST"', f'local f = io.open("{work}/turn.json", "rb")', 'wrk.body = f:read("*a")', "f:close()",
         'wrk.headers["Content-Type"] = "application/json"', f'wrk.headers["X-Bot-Connector-Secret"] = "{secret}"']
open(f"{work}/turn.lua", "w").write("\n".join(lines) + "\n")
PY
  start_bench_server "$port"
  receiver_pid=$bench_pid
  echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
  echo "## /bot/messages against /bot-bare: wrk -t2 -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds"
  bot=(); bare=()
  measure() {
    read -r r p99 bad cpu rest < <(run turn "$1")
    if [ "$bad" != 0 ]; then echo "WARNING: $1 answered $bad non-2xx" >&2; fi
    echo "round $round $1: $r req/s, p99 $p99 ms, non-2xx $bad, cpu $cpu us/req $rest"
    if [ "$1" = /bot/messages ]; then bot+=("$r"); else bare+=("$r"); fi
  }
  measure_bot() { measure /bot/messages; }
  measure_bare() { measure /bot-bare; }
  alternate measure_bot measure_bare
  ratio bot/bare "${bot[*]}" "${bare[*]}"
  stop_receiver
  exit 0
fi

if [ "$MODE" = flood ]; then
  payload wrong1m 1048576 wrong
  payload valid1k 1024 valid
  budget=${BUDGET:-$((64 * 1024 * 1024))}
  echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
  echo "## Flood: 200 connections of 1 MiB wrong-signature bodies for ${DURATION}s, buffering budget $((budget / 1024 / 1024)) MiB"
  # glibc raises its mmap threshold after large frees and then keeps freed body
  # buffers in its arenas; a fixed threshold hands them back at once (README,
  # "Deploying"). MALLOC=default measures without it.
  if [ "${MALLOC:-fixed}" = fixed ]; then export MALLOC_MMAP_THRESHOLD_=131072; fi
  echo "# MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-unset}"
  GENESYS_MAX_BUFFERED_BYTES=$budget start_receiver
  unset MALLOC_MMAP_THRESHOLD_
  idle=$(awk '/VmRSS/ {print $2}' "/proc/$receiver_pid/status")
  wrk -t1 -c200 -d"${DURATION}s" -s "$work/wrong1m.lua" "http://127.0.0.1:$port/webhook/receive" >"$work/flood.txt" 2>&1 &
  flood_pid=$!
  sleep 1
  during=$(wrk -t1 -c4 -d"$((DURATION - 2))s" -s "$work/valid1k.lua" "http://127.0.0.1:$port/webhook/receive" 2>&1)
  wait "$flood_pid" || true
  after=$(wrk -t1 -c4 -d3s -s "$work/valid1k.lua" "http://127.0.0.1:$port/webhook/receive" 2>&1)
  peak=$(awk '/VmHWM/ {print $2}' "/proc/$receiver_pid/status")
  stop_receiver
  python3 - "$idle" "$peak" "$budget" "$work/flood.txt" <<PY
import re, sys
idle, peak, budget = int(sys.argv[1]) / 1024, int(sys.argv[2]) / 1024, int(sys.argv[3]) / 1024 / 1024
flood = open(sys.argv[4]).read()
def counts(out):
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return total, int(bad.group(1)) if bad else 0
ft, fbad = counts(flood)
dt, dbad = counts("""$during""")
at, abad = counts("""$after""")
limit = budget + 40
print(f"flood: {ft} wrong-signature requests answered, {fbad} of them non-2xx (401 or 503 overloaded)")
print(f"valid during the flood: {dt - dbad} of {dt} answered 2xx; after it: {at - abad} of {at}")
print(f"RSS idle {idle:.1f} MiB, peak {peak:.1f} MiB; target <= budget + 40 = {limit:.0f} MiB: {'met' if peak <= limit else 'MISSED'}")
PY
  exit 0
fi

# start_redis: a Redis that fsyncs every write (appendfsync always) on a free port, in
# rport and redis_pid.
start_redis() {
  rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p "$work/redis"
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync always \
    --dir "$work/redis" >"$work/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 1 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
}

# processing KIND BACKEND LOCATION: one run of wrk with valid1k.lua against the example
# receiver's in-process worker (KIND worker) or the relay forwarding to app_port (KIND
# relay), on an empty inbox at LOCATION, /metrics sampled every second; worker_concurrency
# deliveries at once.
processing() {
  local program=("$target_dir"/release/examples/receiver)
  if [ "$1" = relay ]; then
    program=("$target_dir"/release/genesys-webhook serve --forward "http://127.0.0.1:$app_port/app")
    curl -s "http://127.0.0.1:$app_port/app/latency" >/dev/null
  fi
  redis-cli -p "$rport" flushall >/dev/null
  rm -f "$work"/drain.db*
  GENESYS_WEBHOOK_SECRET=$SECRET GENESYS_REPLAY_STORE=none GENESYS_INBOX=$3 \
    GENESYS_FORWARD_SECRET=forward-secret GENESYS_WORKER_CONCURRENCY=$worker_concurrency \
    RUST_LOG=warn,receiver::summary=info LISTEN_ADDR=127.0.0.1:$port \
    "${program[@]}" >"$work/receiver.log" 2>&1 &
  receiver_pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
  python3 scripts/drain_sample.py "http://127.0.0.1:$port/metrics" "$DURATION" "$1/$2" >"$work/samples.txt" &
  sampler=$!
  out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s "$work/valid1k.lua" "http://127.0.0.1:$port/webhook/receive" 2>&1)
  wait "$sampler"
  stop_receiver
  echo "${round:+round $round }$(cat "$work/samples.txt")"
  echo "$out" | grep -E "Requests/sec|Non-2xx" | sed "s/^/  wrk: /" || true
  if [ "$1" = relay ]; then
    echo "  acceptance to delivery: $(curl -s "http://127.0.0.1:$app_port/app/latency")"
  fi
}

if [ "$MODE" = drain ]; then
  DURATION=${DURATION_DRAIN:-30}
  worker_concurrency=16 # the receiver's default
  # Replay protection is off (GENESYS_REPLAY_STORE=none), so the one signed body wrk
  # repeats is stored as a new event each time.
  payload valid1k 1024 valid
  echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
  echo "## Drain: wrk -t2 -c$CONNECTIONS -d${DURATION}s, 1 KiB signed events, a handler that does nothing, inbox bound 100,000"
  start_redis
  processing worker sqlite "sqlite:$work/drain.db"
  processing worker redis "redis://127.0.0.1:$rport/"
  kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true
  exit 0
fi

if [ "$MODE" = relay ]; then
  DURATION=${DURATION_DRAIN:-30}
  worker_concurrency=${RELAY_CONCURRENCY:-64}
  cargo build --release --features cli --bin genesys-webhook >&2
  bench_server=$(scripts/bench-binary.sh bench_server)
  # CONVERSATIONS signed 1 KiB bodies, one conversation each, posted in turn.
  python3 - "$work" "${CONVERSATIONS:-1000}" "$SECRET" <<'PY'
import hmac, hashlib, sys
work, count, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(f"{work}/conversations.txt", "w") as out:
    for n in range(count):
        head = '{"event":"routing:conversation:updated","conversationId":"load-%d","text":"' % n
        body = head + "a" * (1024 - len(head) - 2) + '"}'
        sig = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
        out.write(sig + "\t" + body + "\n")
lua = """
local signatures, bodies = {}, {}
for line in io.lines("%s/conversations.txt") do
  local signature, body = line:match("([^\t]+)\t(.*)")
  signatures[#signatures + 1] = signature
  bodies[#bodies + 1] = body
end
local n = 0
request = function()
  n = n %% #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["X-Genesys-Signature"] = signatures[n]}, bodies[n])
end
""" % work
open(f"{work}/valid1k.lua", "w").write(lua)
PY
  app_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  start_bench_server "$app_port"
  app_pid=$bench_pid
  echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
  echo "## Relay: wrk -t2 -c$CONNECTIONS -d${DURATION}s, 1 KiB signed events of ${CONVERSATIONS:-1000} conversations in turn; ${ROUNDS} rounds, worker and relay alternating"
  start_redis
  for variant in "sqlite sqlite:$work/drain.db" "redis redis://127.0.0.1:$rport/"; do
    set -- $variant
    backend=$1 location=$2
    # RELAY_BACKENDS="redis": one backend only.
    case " ${RELAY_BACKENDS:-sqlite redis} " in *" $backend "*) ;; *) continue ;; esac
    worker_run() { processing worker "$backend" "$location"; }
    relay_run() { processing relay "$backend" "$location"; }
    alternate worker_run relay_run
  done
  kill "$redis_pid" "$app_pid"; wait "$redis_pid" "$app_pid" 2>/dev/null || true
  exit 0
fi

if [ "$MODE" = inbox ]; then
  payload valid1k 1024 valid
  echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
  echo "## Inbox: wrk -t2 -c$CONNECTIONS -d${DURATION}s, 1 KiB signed events; one run each"
  for variant in "grouped sqlite:$work/grouped.db 1" "single sqlite:$work/single.db 0" "memory memory 1"; do
    set -- $variant
    INBOX=$2 GENESYS_INBOX_GROUP_COMMIT=$3 start_receiver
    out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$work/valid1k.lua" "http://127.0.0.1:$port/webhook/receive" 2>&1)
    stop_receiver
    python3 - "$1" "$work/receiver.log" <<PY
import re, sys
out = """$out"""
name, log = sys.argv[1], open(sys.argv[2]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
total = int(re.search(r"(\d+) requests in", out).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
bad = int(bad.group(1)) if bad else 0
def pct(p):
    m = re.search(p + r"%\s+([\d.]+)(us|ms|s)", out)
    return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
commits = re.search(r"commits=\"?(\d+)", log)
commits = commits.group(1) if commits else "?"
acked = total - bad
per = f"{int(commits) / max(acked, 1):.4f}" if commits.isdigit() else "-"
print(f"{name:8} {rps:8.0f} req/s  p50 {pct('50'):6.2f} ms  p99 {pct('99'):7.2f} ms  acknowledged {acked}  non-2xx {bad}  commits {commits}  commits/ack {per}")
PY
  done
  exit 0
fi

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "# wrk -t2 -c$CONNECTIONS -d${DURATION}s, $ROUNDS alternating rounds"

payload valid1k 1024 valid
payload valid1m 1048576 valid
payload wrong1m 1048576 wrong
payload none1m 1048576 none
payload malformed1m 1048576 malformed
payload wrong1k 1024 wrong
payload none1k 1024 none

want() { [ -z "$MODE" ] || [ "$MODE" = soak ] || [ "$MODE" = "$1" ]; }

start_receiver

if want throughput; then
echo
echo "## Throughput, 1 KiB signed payload: verified route vs the same handler unverified"
v_rps=(); b_rps=(); v_p99=(); b_p99=()
# Alternate which route goes first (ABBA), so that order does not favour either.
measure_verified() {
  read -r rps p99 bad cpu rest < <(run valid1k /webhook/receive)
  echo "round $round verified   : $rps req/s, p99 $p99 ms, non-2xx $bad, cpu $cpu us/req $rest"
  v_rps+=("$rps"); v_p99+=("$p99"); v_cpu+=("$cpu")
}
measure_unverified() {
  read -r rps p99 bad cpu rest < <(run valid1k /bench/unverified)
  echo "round $round unverified : $rps req/s, p99 $p99 ms, non-2xx $bad, cpu $cpu us/req $rest"
  b_rps+=("$rps"); b_p99+=("$p99"); b_cpu+=("$cpu")
}
v_cpu=(); b_cpu=()
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then measure_verified; measure_unverified; else measure_unverified; measure_verified; fi
done
vr=$(median "${v_rps[@]}"); br=$(median "${b_rps[@]}")
vp=$(median "${v_p99[@]}"); bp=$(median "${b_p99[@]}")
vc=$(median "${v_cpu[@]}"); bc=$(median "${b_cpu[@]}")
python3 -c "print(f'median verified {float($vr):.0f} req/s (p99 {float($vp):.2f} ms), unverified {float($br):.0f} req/s (p99 {float($bp):.2f} ms): throughput ratio {float($vr)/float($br):.3f} (target >= 0.95); server CPU {float($vc):.1f} vs {float($bc):.1f} us/req')"
# The two runs of a round are back to back: their ratio, then the median over rounds, is
# less exposed to the machine's drift between rounds than the ratio of the medians.
python3 -c "import statistics; v = [float(x) for x in '${v_rps[*]}'.split()]; b = [float(x) for x in '${b_rps[*]}'.split()]; print(f'per-round ratio verified/unverified: median {statistics.median(a / c for a, c in zip(v, b)):.3f} (rounds: {\" \".join(f\"{a / c:.3f}\" for a, c in zip(v, b))})')"
fi

if want attack; then
echo
echo "## Under attack, 1 MiB bodies (rate and server CPU per request)"
for case in "valid1m valid, accepted" "wrong1m wrong signature" "malformed1m malformed signature" "none1m no signature"; do
  set -- $case; name=$1; shift
  read -r rps p99 bad cpu rest < <(run "$name" /webhook/receive 16)
  echo "$* : $rps req/s, p99 $p99 ms, non-2xx $bad, cpu $cpu us/req $rest"
done
for case in "wrong1k wrong signature, 1 KiB" "none1k no signature, 1 KiB"; do
  set -- $case; name=$1; shift
  read -r rps p99 bad cpu rest < <(run "$name" /webhook/receive)
  echo "$* : $rps req/s, p99 $p99 ms, non-2xx $bad, cpu $cpu us/req $rest"
done
fi
stop_receiver

if want memory; then
echo
echo "## Memory: 256 concurrent signed 1 MiB requests (buffering budget raised to 1 GiB, so none is refused)"
GENESYS_MAX_BUFFERED_BYTES=$((1024 * 1024 * 1024)) start_receiver
idle=$(awk '/VmRSS/ {print $2}' "/proc/$receiver_pid/status")
read -r rps p99 bad cpu rest < <(run valid1m /webhook/receive 256)
peak=$(awk '/VmHWM/ {print $2}' "/proc/$receiver_pid/status")
python3 -c "
idle, peak = $idle / 1024, $peak / 1024
limit = 1.3 * 256 + 40
print(f'{float(\"$rps\"):.0f} req/s, non-2xx $bad; RSS idle {idle:.1f} MiB, peak {peak:.1f} MiB; target < {limit:.1f} MiB: {\"met\" if peak < limit else \"MISSED\"}')"
stop_receiver
fi

if [ "$MODE" = soak ]; then
  echo
  echo "## Soak: ${SOAK_SECONDS}s of mixed traffic (valid, wrong, missing signatures), RSS every 10 s"
  cat > "$work/mixed.lua" <<LUA
local function load(name)
  local f = io.open("$work/" .. name .. ".json", "rb"); local b = f:read("*a"); f:close(); return b
end
local body = load("valid1k")
local sig = "$(python3 -c "import hmac,hashlib; print(hmac.new(b'$SECRET', open('$work/valid1k.json','rb').read(), hashlib.sha256).hexdigest())")"
local requests = {}
local n = 0
function init(args)
  requests[1] = wrk.format("POST", nil, {["Content-Type"]="application/json", ["X-Genesys-Signature"]=sig}, body)
  requests[2] = wrk.format("POST", nil, {["Content-Type"]="application/json", ["X-Genesys-Signature"]=string.rep("0", 64)}, body)
  requests[3] = wrk.format("POST", nil, {["Content-Type"]="application/json"}, body)
  requests[4] = wrk.format("POST", nil, {["Content-Type"]="application/json", ["X-Genesys-Signature"]=sig}, "not json")
end
function request()
  n = n + 1
  return requests[(n % 4) + 1]
end
LUA
  start_receiver
  samples="$work/rss.txt"
  ( while kill -0 "$receiver_pid" 2>/dev/null; do awk '/VmRSS/ {print $2}' "/proc/$receiver_pid/status" >>"$samples" 2>/dev/null || true; sleep 10; done ) &
  sampler=$!
  wrk -t2 -c"$CONNECTIONS" -d"${SOAK_SECONDS}s" -s "$work/mixed.lua" "http://127.0.0.1:$port/webhook/receive" | grep -E "requests in|Requests/sec|Non-2xx|Socket errors" || true
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  alive=$(kill -0 "$receiver_pid" 2>/dev/null && echo yes || echo no)
  python3 - "$samples" "$alive" <<'PY'
import sys
rss = [int(x) / 1024 for x in open(sys.argv[1]).read().split()]
third = max(len(rss) // 3, 1)
first, last = sorted(rss[:third])[len(rss[:third]) // 2], sorted(rss[-third:])[len(rss[-third:]) // 2]
print("RSS samples (MiB):", " ".join(f"{x:.1f}" for x in rss))
print(f"receiver alive: {sys.argv[2]}; median RSS first third {first:.1f} MiB, last third {last:.1f} MiB, max {max(rss):.1f} MiB; growth {last - first:+.1f} MiB")
PY
  stop_receiver
fi
