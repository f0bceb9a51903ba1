#!/usr/bin/env bash
# benches/large.sh — drop's page server vs nginx on one large file.
#
# What it measures:
#   Downloads of one published 256 MiB file (random bytes) from drop, from
#   nginx (1 worker, sendfile on) serving the very same file, and from a
#   baseline drop when BASELINE_DROP is given, all on 127.0.0.1 with the file
#   in the page cache. benches/download.py downloads it over and over on 1
#   and on 8 keep-alive connections at once for DURATION seconds, reading
#   into a 4 MiB buffer (wrk reads 8 KiB at a time and would cap the
#   figures); runs alternate the servers in rounds whose order is reversed
#   every other time.
#   - throughput: body bytes downloaded over the run's time, in GB/s (10^9);
#   - CPU per GiB: the server's CPU time (utime+stime of its processes from
#     /proc/<pid>/stat, read before and after each run) over the GiB it sent
#     meanwhile (the downloads under way at the end are read to their end,
#     so that no connection closes with bytes unread), in CPU-seconds per
#     GiB; the client's CPU is not counted;
#   - memory: the server's resident set (VmRSS of its processes, sampled
#     every 0.2 s) while 50 connections download the file at once, at its
#     largest, next to its RSS when idle before.
#   Every response body is checked against the file (cmp) once before the
#   runs.
#
# How to run (from anywhere inside the repo):
#   bash benches/large.sh                  # 10 s per run, 2 rounds
#   DURATION=5 ROUNDS=4 bash benches/large.sh
#   SIZE_MIB=64 bash benches/large.sh      # another file size
#   DROP_WORKERS=1 bash benches/large.sh   # drop on one thread, like nginx's one worker
#   BASELINE_DROP=/path/to/other/drop bash benches/large.sh
#                                          # also another drop build, in the same runs
#
# Needs: cargo, python3, curl; installs nginx with apt-get when missing. Everything it starts is stopped on exit and its temp dir removed
# (benches/lib.sh). Exits non-zero if any step fails.
set -euo pipefail

DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-2}"
SIZE_MIB="${SIZE_MIB:-256}"

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup nginx curl

mkdir -p "$tmp/site"
file="$tmp/site/large.bin"
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$file"

# --- servers -----------------------------------------------------------------
declare -A url home_of
url[drop]="$(start_drop "$DROP" "$tmp/home" "$file")"
home_of[drop]="$tmp/home"
servers=(drop)
if [[ -n $BASELINE_DROP ]]; then
    url[baseline]="$(start_drop "$BASELINE_DROP" "$tmp/baseline-home" "$file")"
    home_of[baseline]="$tmp/baseline-home"
    servers+=(baseline)
fi
start_nginx "$tmp/site"
url[nginx]="http://127.0.0.1:$nginx_port/large.bin"
home_of[nginx]=nginx
servers+=(nginx)

# Each sends exactly the file (which also reads it into the page cache).
for server in "${servers[@]}"; do
    curl -sSf "${url[$server]}" | cmp - "$file" ||
        { echo "error: $server did not send the file" >&2; exit 1; }
    echo "${url[$server]}: the whole file, byte for byte" >&2
done

# --- runs --------------------------------------------------------------------
# download URL CONNECTIONS -> "bytes-by-deadline seconds all-bytes complete errors"
download() {
    python3 "$script_dir/download.py" "$1" "$2" "$DURATION"
}

reversed=()
for ((i = ${#servers[@]} - 1; i >= 0; i--)); do reversed+=("${servers[i]}"); done
results=()
for conns in 1 8; do
    for ((round = 1; round <= ROUNDS; round++)); do
        order=("${servers[@]}")
        ((round % 2 == 0)) && order=("${reversed[@]}")
        for server in "${order[@]}"; do
            echo "$server: $conns connection(s) downloading for ${DURATION}s" >&2
            pids=($(server_pids "${home_of[$server]}"))
            ticks_before="$(cpu_ticks "${pids[@]}")"
            read -r bytes secs sent complete errs <<<"$(download "${url[$server]}" "$conns")"
            ticks="$(($(cpu_ticks "${pids[@]}") - ticks_before))"
            ((errs == 0)) || echo "warning: $server with $conns connections: $errs errors" >&2
            results+=("$conns $server $bytes $secs $sent $ticks $errs")
        done
    done
done

# The largest resident set while 50 connections download at once.
memory=()
for server in "${servers[@]}"; do
    pids=($(server_pids "${home_of[$server]}"))
    idle="$(rss_kib "${pids[@]}")"
    echo "$server: 50 connections downloading for ${DURATION}s (sampling RSS)" >&2
    download "${url[$server]}" 50 >"$tmp/rss-$server.txt" &
    client_pid=$!
    peak=$idle
    while kill -0 "$client_pid" 2>/dev/null; do
        now="$(rss_kib "${pids[@]}")"
        ((now > peak)) && peak=$now
        sleep 0.2
    done
    wait "$client_pid"
    memory+=("$server $idle $peak")
done

# --- table -------------------------------------------------------------------
echo
python3 - "$TICKS_PER_SEC" "${memory[*]}" "${results[@]}" <<'PY'
import sys
hz = float(sys.argv[1])
memory = sys.argv[2].split()
runs = {}
for line in sys.argv[3:]:
    conns, server, size, secs, sent, ticks, errs = line.split()
    runs.setdefault((int(conns), server), []).append(
        (int(size), float(secs), int(sent), int(ticks), int(errs)))
# Throughput and CPU per GiB over all rounds together.
rows = {}
for (conns, server), seen in runs.items():
    size = sum(r[0] for r in seen)
    secs = sum(r[1] for r in seen)
    sent = sum(r[2] for r in seen)
    cpu = sum(r[3] for r in seen) / hz
    rows.setdefault(conns, {})[server] = (size / secs / 1e9, cpu / (sent / 2**30), sum(r[4] for r in seen))
names = [s for s in ("drop", "baseline", "nginx") if any(s in r for r in rows.values())]
head = f"{'conns':>5}" + "".join(f"  {n + ' GB/s':>13}  {n + ' cpu s/GiB':>17}" for n in names)
head += f"  {'drop/nginx GB/s':>15}  {'drop/nginx cpu':>14}"
head += f"  {'drop/baseline GB/s':>18}" if "baseline" in names else ""
print(head + f"  {'errors':>8}")
for conns in sorted(rows):
    r = rows[conns]
    line = f"{conns:>5}" + "".join(f"  {r[n][0]:>13.2f}  {r[n][1]:>17.3f}" for n in names)
    line += f"  {r['drop'][0] / r['nginx'][0]:>15.2f}  {r['drop'][1] / r['nginx'][1]:>14.2f}"
    if "baseline" in names:
        line += f"  {r['drop'][0] / r['baseline'][0]:>18.2f}"
    print(line + f"  {'/'.join(str(r[n][2]) for n in names):>8}")
print()
print("RSS with 50 concurrent downloads (MiB): " + ", ".join(
    f"{memory[i]} {int(memory[i + 1]) / 1024:.1f} idle, {int(memory[i + 2]) / 1024:.1f} peak"
    for i in range(0, len(memory), 3)))
PY
echo "file: $SIZE_MIB MiB; drop workers: ${DROP_WORKERS:-one per core}; nginx: 1 worker, sendfile; $ROUNDS round(s) of ${DURATION} s each, the order reversed every other round"
echo "goals: drop >= 0.8 x nginx's GB/s, CPU per GiB <= 1.5 x nginx's"
