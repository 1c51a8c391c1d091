#!/usr/bin/env python3
"""Sessions an AudioHook server sustains: starts a server, loads it with
`genesys-webhook audiohook-load`, samples the server's CPU and RSS from /proc.

    scripts/audiohook-load.sh [SESSIONS ...]

Each run: the server starts fresh; its idle RSS is read; the load generator opens
SESSIONS signed sessions over RAMP seconds, streams SECONDS of stereo PCMU to each at
real-time pace (200 ms frames) with a ping every 5 s. While every session streams, the
server's CPU time and RSS are sampled once a second. Printed per run, as one JSON line:
sessions that kept real time, ping p50/p99, server CPU (% of one core), RSS per session
((plateau RSS - idle RSS) / sessions), the generator's CPU.

Environment: SERVER (the server binary), CLI (genesys-webhook), MODE (transcription:
the voice-activity detector runs; monitor: it does not), RAMP, SECONDS, SERVER_ENV
(extra KEY=VALUE pairs for the server, space-separated).
"""
import json
import os
import subprocess
import sys
import threading
import time

SERVER = os.environ["SERVER"]
CLI = os.environ["CLI"]
MODE = os.environ.get("MODE", "transcription")
RAMP = int(os.environ.get("RAMP", "20"))
SECONDS = int(os.environ.get("SECONDS_OF_AUDIO", os.environ.get("SECONDS", "40")))
TICK = os.sysconf("SC_CLK_TCK")
KEY = "load-key"
SECRET = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start_server():
    env = dict(os.environ)
    env.update(
        AUDIOHOOK_API_KEY=KEY,
        AUDIOHOOK_CLIENT_SECRET=SECRET,
        LISTEN_ADDR="127.0.0.1:0",
        RUST_LOG="warn,genesys_webhook=warn",
    )
    for pair in os.environ.get("SERVER_ENV", "").split():
        k, v = pair.split("=", 1)
        env[k] = v
    env["RUST_LOG"] = "info" if "RUST_LOG_SERVER" in os.environ else env["RUST_LOG"]
    server = subprocess.Popen(
        [SERVER], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    # The example logs "listening on http://ADDR" at info; at warn it does not, so
    # find the port from /proc instead.
    deadline = time.time() + 30
    while time.time() < deadline:
        port = listening_port(server.pid)
        if port:
            threading.Thread(target=server.stdout.read, daemon=True).start()
            return server, port
        time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not start")


def listening_port(pid):
    try:
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[3] == "0A" and parts[9] in inodes:
                    return int(parts[1].split(":")[1], 16)
    except OSError:
        return None
    return None


def run(sessions):
    server, port = start_server()
    time.sleep(1)
    idle_rss = rss_kib(server.pid)
    env = dict(os.environ, AUDIOHOOK_API_KEY=KEY, AUDIOHOOK_CLIENT_SECRET=SECRET)
    load = subprocess.Popen(
        [
            CLI, "--json", "audiohook-load", f"ws://127.0.0.1:{port}/audiohook/ws",
            "--sessions", str(sessions), "--ramp", str(RAMP), "--seconds", str(SECONDS),
            "--mode", MODE,
        ],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    began = time.time()
    # Every session streams from RAMP + 1 s to RAMP + 1 s + SECONDS: sample inside,
    # leaving 3 s at each edge.
    window = (began + RAMP + 4, began + RAMP + 1 + SECONDS - 3)
    samples = []
    while load.poll() is None:
        now = time.time()
        if window[0] <= now <= window[1]:
            try:
                samples.append((now, cpu_seconds(server.pid), rss_kib(server.pid), cpu_seconds(load.pid)))
            except OSError:
                pass
        time.sleep(1)
    report = json.loads(load.stdout.read() or "{}")
    server.kill()
    server.wait()
    if len(samples) < 2:
        return {"sessions": sessions, "error": "no samples", "load": report}
    (t0, c0, _, g0), (t1, c1, _, g1) = samples[0], samples[-1]
    plateau_rss = max(s[2] for s in samples)
    return {
        "mode": MODE,
        "sessions": sessions,
        "opened": report.get("opened"),
        "completed": report.get("completed"),
        "kept_real_time": report.get("sustained"),
        "fell_behind": report.get("behind"),
        "max_late_ms": report.get("maxLateMs"),
        "ping_p50_ms": round(report.get("pingP50Ms", 0), 2),
        "ping_p99_ms": round(report.get("pingP99Ms", 0), 2),
        "ping_max_ms": round(report.get("pingMaxMs", 0), 2),
        "transcript_events": report.get("transcriptEvents"),
        "server_cpu_pct_of_one_core": round(100 * (c1 - c0) / (t1 - t0), 1),
        "generator_cpu_pct_of_one_core": round(100 * (g1 - g0) / (t1 - t0), 1),
        "server_idle_rss_kib": idle_rss,
        "server_plateau_rss_kib": plateau_rss,
        "rss_per_session_kib": round((plateau_rss - idle_rss) / sessions, 1),
        "window_s": round(t1 - t0, 1),
        "errors": report.get("errors"),
    }


def main():
    for arg in sys.argv[1:] or ["1000"]:
        print(json.dumps(run(int(arg))), flush=True)


if __name__ == "__main__":
    main()
