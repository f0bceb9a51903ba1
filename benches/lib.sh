# benches/lib.sh — what the benches share: the repository's root (sourcing
# this goes there, and sets script_dir to benches/), their tools, drop's
# release build, a temp dir removed on exit, drop servers (this build and an
# optional BASELINE_DROP) and an nginx with one worker, and the CPU time and
# memory of a server's processes. Sourced by them, not run.

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(git -C "$script_dir" rev-parse --show-toplevel 2>/dev/null || dirname "$script_dir")"
cd "$root"

# bench_setup TOOL... : installs the missing tools with apt-get, builds drop
# (release), and sets DROP, NGINX, BASELINE_DROP, tmp and the cleanup trap.
bench_setup() {
    local missing=() tool sudo_cmd=()
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || [[ -x /usr/sbin/$tool ]] || missing+=("$tool")
    done
    if ((${#missing[@]})); then
        echo "installing: ${missing[*]}" >&2
        [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
        "${sudo_cmd[@]}" apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    # nginx may live in /usr/sbin, which is not always on a user's PATH.
    NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
    if [[ " $* " == *" nginx "* && ! -x $NGINX ]]; then
        echo "error: nginx not found" >&2
        exit 1
    fi

    echo "building drop (release)..." >&2
    cargo build --release -q -p drop-cli
    DROP="$root/target/release/drop"
    BASELINE_DROP="${BASELINE_DROP:-}"
    if [[ -n $BASELINE_DROP && ! -x $BASELINE_DROP ]]; then
        echo "error: BASELINE_DROP=$BASELINE_DROP is not an executable" >&2
        exit 1
    fi

    tmp="$(mktemp -d)"
    nginx_pid=""
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

bench_cleanup() {
    local rc=$? started
    # One line a server `start_drop` started (it runs in a subshell when
    # its URL is captured, so a shell variable would not survive it).
    while IFS= read -r started; do
        DROP_HOME="${started#*|}" "${started%%|*}" stop >/dev/null 2>&1 || true
    done < <(cat "$tmp/started-drops" 2>/dev/null)
    if [[ -n $nginx_pid ]] && kill -0 "$nginx_pid" 2>/dev/null; then
        kill "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
    exit "$rc"
}

# start_drop BINARY HOME FILE : starts a drop server there, publishes FILE,
# prints its URL.
start_drop() {
    local bin=$1 home=$2 file=$3 out base
    echo "$bin|$home" >>"$tmp/started-drops"
    out="$(DROP_HOME="$home" DROP_BIND=127.0.0.1 "$bin" start --port 0 --host 127.0.0.1 --no-tunnel)"
    echo "$out" >&2
    base="$(sed -n 's/^Server started: //p' <<<"$out")"
    [[ -n $base ]] || { echo "error: could not read drop's address from: $out" >&2; return 1; }
    DROP_HOME="$home" "$bin" add "$file" --json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])'
}

# start_nginx ROOT : nginx with one worker, sendfile and keepalive, serving
# ROOT on a free loopback port; sets nginx_pid and nginx_port.
start_nginx() {
    local site=$1 user_line="" up=0
    mkdir -p "$tmp/nginx"
    nginx_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    # Run as root, nginx's worker would switch to `nobody` and could not read
    # the 0700 temp dir; keep the worker as the current user instead.
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
        root $site;
        index index.html;
    }
}
EOF
    "$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" &
    nginx_pid=$!
    # Wait until nginx answers (it needs a moment after starting).
    for _ in $(seq 1 100); do
        kill -0 "$nginx_pid" 2>/dev/null || { echo "error: nginx exited:" >&2; cat "$tmp/nginx/error.log" >&2; exit 1; }
        if python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2)' "$nginx_port" 2>/dev/null; then
            up=1
            break
        fi
        sleep 0.1
    done
    ((up)) || { echo "error: nginx did not start listening on $nginx_port" >&2; exit 1; }
}

# server_pids HOME_OR_nginx : the processes that serve for a drop home, or
# for nginx (its master and workers).
server_pids() {
    case $1 in
        nginx) echo "$nginx_pid" $(ps --ppid "$nginx_pid" -o pid=) ;;
        *) python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$1/server.json" ;;
    esac
}

# cpu_ticks PID... : the processes' utime+stime, in clock ticks
# (getconf CLK_TCK a second).
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
TICKS_PER_SEC="$(getconf CLK_TCK)"

# rss_kib PID... : the processes' resident memory, in KiB.
rss_kib() {
    local total=0 pid kib
    for pid in "$@"; do
        kib="$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")"
        total=$((total + kib))
    done
    echo "$total"
}
