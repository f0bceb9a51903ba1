#!/usr/bin/env bash
# benches/idle_flood.sh — a fresh visitor after a flood of idle connections.
#
# What it measures:
#   With FLOOD (default 5000) connections open to drop that send nothing
#   (more than the connection cap, DROP_MAX_CONNECTIONS, 2,048 by default),
#   how long one fresh GET of a published page takes, from its connect to
#   the last byte of its answer, on 127.0.0.1. At the cap drop closes idle
#   connections to make room; the fresh request waits while the backlog of
#   idle ones ahead of it is accepted and closed. TRIALS (default 10) trials
#   per server, alternating this build and BASELINE_DROP when given; see
#   benches/idle_flood.py.
#
# How to run (from anywhere inside the repo):
#   bash benches/idle_flood.sh
#   FLOOD=8000 TRIALS=20 bash benches/idle_flood.sh
#   BASELINE_DROP=/path/to/other/drop bash benches/idle_flood.sh
#
# Needs: cargo, python3. Everything it starts is stopped on exit and its
# temp dir removed (benches/lib.sh). Exits non-zero if any step fails.
set -euo pipefail

TRIALS="${TRIALS:-10}"
FLOOD="${FLOOD:-5000}"

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup

echo '<!doctype html><title>flood</title><p>hello' >"$tmp/page.html"
servers=("drop=$(start_drop "$DROP" "$tmp/home" "$tmp/page.html")")
if [[ -n $BASELINE_DROP ]]; then
    servers+=("baseline=$(start_drop "$BASELINE_DROP" "$tmp/baseline-home" "$tmp/page.html")")
fi
python3 "$script_dir/idle_flood.py" "$TRIALS" "$FLOOD" "${servers[@]}"
