#!/usr/bin/env bash
# benches/list.sh — how long `drop list --all` takes over 1,000 pages.
#
# What it measures:
#   Wall time of `drop list --all` (stdout to /dev/null) with a registry of
#   1,000 published static pages, next to `drop --version` in the same
#   hyperfine run as the baseline cost of starting the process. Prints both
#   means and their ratio. Goal: under 20 ms.
#
# How to run (from anywhere inside the repo):
#   bash benches/list.sh
#   RUNS=100 bash benches/list.sh     # minimum runs (default 30; warmup 3)
#
# Needs: cargo, python3; installs hyperfine with apt-get when missing.
# Works in a temp DROP_HOME (removed on exit); starts no server.
# Exits non-zero if any step fails.
set -euo pipefail

PAGES=1000
RUNS="${RUNS:-30}"

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup hyperfine

# --- temp home with 1,000 pages ----------------------------------------------
home="$tmp/home"
mkdir -p "$home" "$tmp/site"
chmod 700 "$home"

# 1,000 small files, and pages.json written directly (id -> record), which is
# what 1,000 `drop add` calls would leave behind.
python3 - "$home/pages.json" "$tmp/site" "$PAGES" <<'PY'
import json, os, secrets, string, sys
path, site, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
alphabet = string.ascii_lowercase + string.digits
pages = {}
while len(pages) < count:
    n = len(pages)
    source = os.path.join(site, f"file-{n}.html")
    with open(source, "w") as f:
        f.write(f"<!doctype html><title>page {n}</title><p>page {n}</p>\n")
    pid = "".join(secrets.choice(alphabet) for _ in range(20))
    pages[pid] = {
        "type": "static",
        "source": source,
        "is_dir": False,
        "name": "",
        "description": "",
        "password_hash": "",
        "created_at": "2026-01-01T00:00:00Z",
    }
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    json.dump(pages, f, indent=2)
os.chmod(path, 0o600)
PY

# drop must read this registry and still be able to add to it.
count_pages() {
    DROP_HOME="$home" "$DROP" list --all --json |
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)["pages"]))'
}
before="$(count_pages)"
[[ $before -eq $PAGES ]] || { echo "error: drop lists $before pages, expected $PAGES" >&2; exit 1; }
echo "<!doctype html><p>extra</p>" >"$tmp/site/extra.html"
DROP_HOME="$home" "$DROP" add "$tmp/site/extra.html" --json >/dev/null
after="$(count_pages)"
[[ $after -eq $((PAGES + 1)) ]] || { echo "error: after drop add, drop lists $after pages, expected $((PAGES + 1))" >&2; exit 1; }
echo "registry ok: $before pages, $after after one 'drop add'" >&2
lines="$(DROP_HOME="$home" "$DROP" list --all | wc -l)"
echo "'drop list --all' prints $lines lines" >&2

# --- timing ------------------------------------------------------------------
export DROP_HOME="$home"
hyperfine --warmup 3 --min-runs "$RUNS" --shell=none --style basic \
    --export-json "$tmp/hyperfine.json" \
    --command-name "drop list --all" "$DROP list --all" \
    --command-name "drop --version" "$DROP --version" \
    --output=null >&2

echo
python3 - "$tmp/hyperfine.json" "$after" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
lst, ver = results["drop list --all"], results["drop --version"]
ms = lambda s: s * 1000
print(f"pages in registry:     {sys.argv[2]}")
print(f"runs:                  {len(lst['times'])} (warmup 3)")
print(f"drop list --all:       {ms(lst['mean']):7.2f} ms ± {ms(lst['stddev']):.2f}  (min {ms(lst['min']):.2f}, max {ms(lst['max']):.2f})")
print(f"drop --version:        {ms(ver['mean']):7.2f} ms ± {ms(ver['stddev']):.2f}  (min {ms(ver['min']):.2f}, max {ms(ver['max']):.2f})")
print(f"ratio list/version:    {lst['mean'] / ver['mean']:7.2f} x")
print(f"list minus start cost: {ms(lst['mean'] - ver['mean']):7.2f} ms")
PY
echo "goal: under 20 ms"
