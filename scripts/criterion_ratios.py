#!/usr/bin/env python3
"""Prints the ratios BENCHMARKS.md reports from the last `cargo bench --bench verify`.

Reads criterion's estimates (<target dir>/criterion/<group>/<function>/<size>/new/estimates.json,
the target directory as cargo reports it, so CARGO_TARGET_DIR is followed)
and compares each measurement with its baseline from the same run.
"""
import json
import pathlib
import sys

def default_root():
    # Where cargo puts the builds (CARGO_TARGET_DIR when set), as cargo reports it.
    import json
    import subprocess

    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        check=True, capture_output=True, text=True,
    )
    return pathlib.Path(json.loads(meta.stdout)["target_directory"]) / "criterion"


root = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else default_root()


def mean_ns(*parts):
    path = root.joinpath(*parts, "new", "estimates.json")
    estimates = json.loads(path.read_text())
    return estimates["mean"]["point_estimate"], estimates["mean"]["confidence_interval"]


# The signature layer (`cargo bench --bench verify`), when that bench ran.
try:
    print("throughput, 16 KiB frames: layer vs raw Hmac<Sha256> over the same bytes")
    for size in (1024, 65536, 1048576):
        raw, _ = mean_ns("throughput", "raw_hmac", str(size))
        layer, _ = mean_ns("throughput", "layer", str(size))
        gib = lambda ns: size / ns * 1e9 / 2**30
        print(
            f"  {size:>8} B: raw {raw / 1000:9.2f} us ({gib(raw):.2f} GiB/s), "
            f"layer {layer / 1000:9.2f} us ({gib(layer):.2f} GiB/s): layer/raw throughput {raw / layer:.3f}"
        )
        try:
            replay, _ = mean_ns("throughput", "layer_replay", str(size))
            print(
                f"  {'':>8}   with replay protection {replay / 1000:9.2f} us: layer_replay/raw throughput "
                f"{raw / replay:.3f}, layer_replay/layer {layer / replay:.3f}"
            )
        except FileNotFoundError:
            pass

    direct, _ = mean_ns("overhead_1k", "inner_direct")
    layered, _ = mean_ns("overhead_1k", "through_layer")
    print("overhead at 1 KiB: inner service alone vs through the layer")
    print(
        f"  inner {direct / 1000:.3f} us, through layer {layered / 1000:.3f} us: "
        f"the layer adds {(layered - direct) / 1000:.3f} us per request"
    )
except FileNotFoundError:
    print("(no results of `cargo bench --bench verify`)")

# The head-only middlewares (`cargo bench --bench gates`), when that bench ran.
try:
    direct, _ = mean_ns("source_allowlist_10000", "inner_direct")
    print("source allowlist with 10,000 ranges: inner service alone vs through the layer")
    for case in ("admitted", "refused"):
        through, _ = mean_ns("source_allowlist_10000", case)
        print(f"  {case:9} {through:8.1f} ns against {direct:8.1f} ns: adds {through - direct:7.1f} ns per request")
    direct, _ = mean_ns("bot_credentials", "inner_direct")
    through, _ = mean_ns("bot_credentials", "admitted")
    print(f"Bot Connector credential check: adds {through - direct:.1f} ns per request ({through:.1f} against {direct:.1f} ns)")
except FileNotFoundError:
    pass
