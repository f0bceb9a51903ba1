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
# dir is removed. Exits non-zero if any step fails.
set -euo pipefail

DURATION="${DURATION:-10}"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(git -C "$script_dir" rev-parse --show-toplevel 2>/dev/null || dirname "$script_dir")"
cd "$root"

# --- tools -------------------------------------------------------------------
missing=()
for tool in wrk nginx; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    sudo_cmd=()
    [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# nginx may live in /usr/sbin, which is not always on a user's PATH.
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
[[ -x $NGINX ]] || { echo "error: nginx not found" >&2; exit 1; }

# --- build -------------------------------------------------------------------
echo "building drop (release)..." >&2
cargo build --release -q -p drop-cli
DROP="$root/target/release/drop"

# --- temp dir and cleanup ----------------------------------------------------
tmp="$(mktemp -d)"
nginx_pid=""
drop_started=0
baseline_started=0
BASELINE_DROP="${BASELINE_DROP:-}"
if [[ -n $BASELINE_DROP && ! -x $BASELINE_DROP ]]; then
    echo "error: BASELINE_DROP=$BASELINE_DROP is not an executable" >&2
    exit 1
fi
cleanup() {
    local rc=$?
    if ((drop_started)); then
        DROP_HOME="$tmp/home" "$DROP" stop >/dev/null 2>&1 || true
    fi
    if ((baseline_started)); then
        DROP_HOME="$tmp/baseline-home" "$BASELINE_DROP" stop >/dev/null 2>&1 || true
    fi
    if [[ -n $nginx_pid ]] && kill -0 "$nginx_pid" 2>/dev/null; then
        kill "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$tmp/site" "$tmp/nginx"
# A 1 KiB HTML page (exactly 1024 bytes).
python3 - "$tmp/site/index.html" <<'PY'
import sys
head = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>bench</title></head><body>\n<p>"
tail = "</p>\n</body></html>\n"
body = ("lorem ipsum dolor sit amet " * 64)[: 1024 - len(head) - len(tail)]
open(sys.argv[1], "w").write(head + body + tail)
PY

# --- drop --------------------------------------------------------------------
# start_drop BINARY HOME: starts a drop server there, publishes the page,
# prints its URL.
start_drop() {
    local bin=$1 home=$2 out base
    out="$(DROP_HOME="$home" DROP_BIND=127.0.0.1 "$bin" start --port 0 --host 127.0.0.1 --no-tunnel)"
    echo "$out" >&2
    base="$(sed -n 's/^Server started: //p' <<<"$out")"
    [[ -n $base ]] || { echo "error: could not read drop's address from: $out" >&2; return 1; }
    DROP_HOME="$home" "$bin" add "$tmp/site/index.html" --json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])'
}
drop_started=1
drop_url="$(start_drop "$DROP" "$tmp/home")"
servers=(drop)
if [[ -n $BASELINE_DROP ]]; then
    baseline_started=1
    baseline_url="$(start_drop "$BASELINE_DROP" "$tmp/baseline-home")"
    servers+=(baseline)
fi
servers+=(nginx)

# --- nginx -------------------------------------------------------------------
nginx_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
# Run as root, nginx's worker would switch to `nobody` and could not read the
# 0700 temp dir; keep the worker as the current user instead.
user_line=""
[[ $(id -u) -eq 0 ]] && user_line="user $(id -un) $(id -gn);"
cat >"$tmp/nginx/nginx.conf" <<EOF
$user_line
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    types { text/html html; }
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$nginx_port;
        root $tmp/site;
        index index.html;
    }
}
EOF
"$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" &
nginx_pid=$!
nginx_url="http://127.0.0.1:$nginx_port/index.html"

# Wait until nginx answers (it needs a moment after starting).
nginx_up=0
for _ in $(seq 1 100); do
    kill -0 "$nginx_pid" 2>/dev/null || { echo "error: nginx exited:" >&2; cat "$tmp/nginx/error.log" >&2; exit 1; }
    if python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2)' "$nginx_port" 2>/dev/null; then
        nginx_up=1
        break
    fi
    sleep 0.1
done
((nginx_up)) || { echo "error: nginx did not start listening on $nginx_port" >&2; exit 1; }
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
# cpu_ticks PID... -> the processes' utime+stime in clock ticks.
cpu_ticks() {
    local total=0 pid stat fields
    for pid in "$@"; do
        stat="$(cat "/proc/$pid/stat")"
        # Fields after the command name, which may hold spaces: utime and
        # stime are fields 14 and 15, the 12th and 13th after it.
        read -r -a fields <<<"${stat##*) }"
        total=$((total + fields[11] + fields[12]))
    done
    echo "$total"
}
# server_pids NAME -> the processes that serve for it.
server_pids() {
    case $1 in
        drop) python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$tmp/home/server.json" ;;
        baseline) python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$tmp/baseline-home/server.json" ;;
        nginx) echo "$nginx_pid" $(ps --ppid "$nginx_pid" -o pid=) ;;
    esac
}
TICKS_PER_SEC="$(getconf CLK_TCK)"

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
        pids=($(server_pids "$server"))
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
echo "goal: drop >= 0.8 x nginx"
