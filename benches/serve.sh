#!/usr/bin/env bash
# benches/serve.sh — drop's page server vs nginx on one small page.
#
# What it measures:
#   Throughput (requests/sec) and p99 latency of drop's HTTP page server
#   serving a published ~1 KiB index.html, next to nginx (1 worker, sendfile,
#   keepalive) serving the very same file, both on 127.0.0.1. Load comes from
#   wrk with 1 connection (-t1 -c1) and with 50 connections (-t2 -c50); runs
#   alternate drop, nginx (and a baseline drop) for each connection count in
#   the same invocation, in rounds whose order is reversed every other time.
#   Every request to drop opens the page's document, so each one is counted
#   as a view (receipts): the worst case for what counting costs.
#   Beside requests/sec, the server's CPU time per request (its processes'
#   utime+stime from /proc/<pid>/stat, before and after each run, over the
#   requests wrk completed): a figure that holds better than throughput when
#   other work shares the machine.
#
# How to run (from anywhere inside the repo):
#   bash benches/serve.sh                 # 10 s per wrk run
#   DURATION=5 bash benches/serve.sh      # shorter runs
#   DROP_WORKERS=1 bash benches/serve.sh  # drop on one thread, like nginx's one worker
#   ROUNDS=4 bash benches/serve.sh        # more rounds (default 2), order reversed every other one
#   BASELINE_DROP=/path/to/other/drop bash benches/serve.sh
#                                         # also another drop build (e.g. the
#                                         # previous commit's), in the same runs
#
# Needs: cargo, python3; installs wrk and nginx with apt-get when missing.
# Everything it starts (drop server, nginx) is stopped on exit, and its temp
# dir is removed (benches/lib.sh). Exits non-zero if any step fails.
set -euo pipefail

DURATION="${DURATION:-10}"

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup wrk nginx

mkdir -p "$tmp/site"
# A 1 KiB HTML page (exactly 1024 bytes).
python3 - "$tmp/site/index.html" <<'PY'
import sys
head = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>bench</title></head><body>\n<p>"
tail = "</p>\n</body></html>\n"
body = ("lorem ipsum dolor sit amet " * 64)[: 1024 - len(head) - len(tail)]
open(sys.argv[1], "w").write(head + body + tail)
PY

# --- servers -----------------------------------------------------------------
drop_url="$(start_drop "$DROP" "$tmp/home" "$tmp/site/index.html")"
servers=(drop)
if [[ -n $BASELINE_DROP ]]; then
    baseline_url="$(start_drop "$BASELINE_DROP" "$tmp/baseline-home" "$tmp/site/index.html")"
    servers+=(baseline)
fi
servers+=(nginx)
start_nginx "$tmp/site"
nginx_url="http://127.0.0.1:$nginx_port/index.html"

# Both must answer 200 with exactly the page.
python3 - "$tmp/site/index.html" "$drop_url" "$nginx_url" ${BASELINE_DROP:+"$baseline_url"} <<'PY'
import sys, urllib.request
want = open(sys.argv[1], "rb").read()
for url in sys.argv[2:]:
    with urllib.request.urlopen(url, timeout=5) as r:
        body = r.read()
        if r.status != 200 or body != want:
            sys.exit(f"error: {url} answered {r.status} with {len(body)} bytes, not the page")
        print(f"{url}: 200, {len(body)} bytes, content-type {r.headers.get('content-type')}", file=sys.stderr)
PY

# --- runs --------------------------------------------------------------------
# parse_wrk FILE -> "req_per_sec p99 errors requests" ; errors = non-2xx + socket errors.
parse_wrk() {
    python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
p99 = re.search(r"^\s*99%\s+(\S+)", text, re.M)
done = re.search(r"(\d+) requests in", text)
if not rps or not p99 or not done:
    sys.exit("error: cannot parse wrk output:\n" + text)
errors = 0
m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
if m:
    errors += int(m.group(1))
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
if m:
    errors += sum(int(x) for x in m.groups())
print(rps.group(1), p99.group(1), errors, done.group(1))
PY
}

# Each round runs the servers one after another; every other round in the
# reverse order, so that whatever favours an early (or late) run favours
# each server alike. Requests/sec are averaged over the rounds.
ROUNDS="${ROUNDS:-2}"
reversed=()
for ((i = ${#servers[@]} - 1; i >= 0; i--)); do reversed+=("${servers[i]}"); done
results=()
for conns in 1 50; do
    threads=1
    ((conns > 1)) && threads=2
    for ((round = 1; round <= ROUNDS; round++)); do
    order=("${servers[@]}")
    ((round % 2 == 0)) && order=("${reversed[@]}")
    for server in "${order[@]}"; do
        case $server in
            drop) url=$drop_url ;;
            baseline) url=$baseline_url ;;
            nginx) url=$nginx_url ;;
        esac
        out="$tmp/wrk-$server-$conns.txt"
        echo "wrk -t$threads -c$conns -d${DURATION}s --latency $url" >&2
        case $server in
            drop) pids=($(server_pids "$tmp/home")) ;;
            baseline) pids=($(server_pids "$tmp/baseline-home")) ;;
            nginx) pids=($(server_pids nginx)) ;;
        esac
        ticks_before="$(cpu_ticks "${pids[@]}")"
        wrk -t"$threads" -c"$conns" -d"${DURATION}s" --latency "$url" >"$out"
        ticks="$(($(cpu_ticks "${pids[@]}") - ticks_before))"
        parsed="$(parse_wrk "$out")"
        read -r rps p99 errs completed <<<"$parsed"
        cpu_us="$(python3 -c 'import sys; t, hz, n = map(float, sys.argv[1:]); print(f"{t / hz * 1e6 / max(n, 1):.1f}")' "$ticks" "$TICKS_PER_SEC" "$completed")"
        if ((errs > 0)); then
            echo "warning: $server with $conns connections: $errs non-2xx/socket errors" >&2
            grep -E "Non-2xx|Socket errors" "$out" >&2 || true
        fi
        results+=("$conns $server $rps $p99 $errs $cpu_us")
    done
    done
done

# --- table -------------------------------------------------------------------
echo
python3 - "${results[@]}" <<'PY'
import sys
def micros(text):
    for unit, scale in (("us", 1), ("ms", 1000), ("s", 1000000)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return float(text)

runs = {}
for line in sys.argv[1:]:
    conns, server, rps, p99, errs, cpu = line.split()
    runs.setdefault((int(conns), server), []).append((float(rps), p99, int(errs), float(cpu)))
# Mean requests/sec and CPU per request over the rounds; the worst p99;
# every error.
rows = {}
for (conns, server), seen in runs.items():
    rps = sum(r for r, _, _, _ in seen) / len(seen)
    p99 = max((p for _, p, _, _ in seen), key=micros)
    cpu = sum(c for _, _, _, c in seen) / len(seen)
    rows.setdefault(conns, {})[server] = (rps, p99, sum(e for _, _, e, _ in seen), cpu)
names = [s for s in ("drop", "baseline", "nginx") if any(s in r for r in rows.values())]
head = f"{'conns':>5}" + "".join(
    f"  {n + ' req/s':>14}  {n + ' p99':>12}  {n + ' cpu us/req':>16}" for n in names
)
head += f"  {'drop/nginx':>10}" + (f"  {'drop/baseline':>13}" if "baseline" in names else "")
print(head + f"  {'errors':>8}")
for conns in sorted(rows):
    r = rows[conns]
    line = f"{conns:>5}" + "".join(
        f"  {r[n][0]:>14.0f}  {r[n][1]:>12}  {r[n][3]:>16.1f}" for n in names
    )
    line += f"  {r['drop'][0] / r['nginx'][0]:>10.2f}"
    if "baseline" in names:
        line += f"  {r['drop'][0] / r['baseline'][0]:>13.2f}"
    print(line + f"  {'/'.join(str(r[n][2]) for n in names):>8}")
PY
echo "drop workers: ${DROP_WORKERS:-one per core}; nginx: 1 worker; $ROUNDS round(s) of ${DURATION} s each, the order reversed every other round"
echo "goal: drop >= 1.0 x nginx at 1 and 50 connections"
