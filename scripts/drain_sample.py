#!/usr/bin/env python3
"""Samples the receiver's /metrics every second while wrk runs, then until the inbox is
drained, and prints accepted and processed events per second (scripts/load.sh drain).

usage: drain_sample.py METRICS_URL LOAD_SECONDS LABEL
"""
import re
import sys
import time
import urllib.request

url, load_seconds, label = sys.argv[1], float(sys.argv[2]), sys.argv[3]


def scrape():
    text = urllib.request.urlopen(url, timeout=5).read().decode()

    def value(pattern):
        m = re.search(pattern + r"\s+([0-9.e+]+)", text)
        return float(m.group(1)) if m else 0.0

    return {
        "queued": value(r'genesys_webhook_requests_total\{outcome="queued"\}'),
        "full": value(r'genesys_webhook_requests_total\{outcome="refused",reason="inbox_full"\}'),
        "refused": value(r'genesys_webhook_requests_total\{outcome="refused",reason="inbox_unavailable"\}'),
        "processed": value(r'genesys_webhook_deliveries_total\{outcome="processed"\}'),
    }


start = time.monotonic()
first = scrape()
samples = [(0.0, first)]
while time.monotonic() - start < load_seconds:
    time.sleep(1)
    samples.append((time.monotonic() - start, scrape()))
end_of_load = samples[-1]
# Then until everything accepted is processed (or 120 s more).
while samples[-1][1]["processed"] < samples[-1][1]["queued"] and time.monotonic() - start < load_seconds + 120:
    time.sleep(0.5)
    samples.append((time.monotonic() - start, scrape()))

t, last = end_of_load
accepted = (last["queued"] - first["queued"]) / t
processed = (last["processed"] - first["processed"]) / t
backlog = max(s["queued"] - s["processed"] for _, s in samples)
drained_t, drained = samples[-1]
print(
    f"{label:6} accepted {accepted:8.0f}/s  processed {processed:8.0f}/s  processed/accepted {processed / max(accepted, 1):.3f}  "
    f"largest backlog {backlog:.0f} events  inbox_full {last['full']:.0f}  unavailable {last['refused']:.0f}  "
    f"all processed {drained_t - t:.1f} s after the load: {'yes' if drained['processed'] >= drained['queued'] else 'NO'}"
)
