#!/usr/bin/env bash
# Installs drop from this checkout: builds it, puts it in ~/.local/bin,
# installs the agent skill, writes a systemd user unit when a user manager
# answers, and downloads cloudflared into ~/.drop/bin when it is not on PATH.
# Running it again changes only what is out of date. Works with bash 3.2
# (macOS): no associative arrays, no ${var,,}, guarded empty arrays.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: ./install.sh

Builds drop (cargo build --release) and installs:
  ~/.local/bin/drop                      the drop command
  ~/.claude/skills/drop/SKILL.md         the agent skill (skills/drop.md)
  ~/.config/systemd/user/drop.service    on Linux with a systemd user session:
                                         `drop start` then runs the server under
                                         systemd, which restarts it on failure
  ~/.drop/bin/cloudflared                when cloudflared is not on PATH (for
                                         tunnels from behind NAT)
Safe to run again: what is already in place is left alone.
Undo with ./uninstall.sh (your pages in ~/.drop are kept).

Environment:
  DROP_INSTALL_BIN_DIR   where drop goes            [~/.local/bin]
  DROP_SKILLS_ROOT       where the skill goes       [~/.claude/skills]
  DROP_HOME              drop's data folder         [~/.drop]
  DROP_INSTALL_BINARY    install this drop binary instead of building one
  DROP_CLOUDFLARED_URL   where cloudflared is downloaded from
                         [https://github.com/cloudflare/cloudflared/releases/latest/download]
  DROP_INSTALL_OS        platform to install for: linux or darwin  [uname -s]
  DROP_INSTALL_ARCH      x86_64, amd64, aarch64 or arm64           [uname -m]
EOF
}

case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    "") ;;
    *) echo "Error: unknown argument '$1'; see ./install.sh --help" >&2; exit 2 ;;
esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN_DIR=${DROP_INSTALL_BIN_DIR:-$HOME/.local/bin}
SKILLS_ROOT=${DROP_SKILLS_ROOT:-$HOME/.claude/skills}
DATA_DIR=${DROP_HOME:-$HOME/.drop}
CLOUDFLARED_URL=${DROP_CLOUDFLARED_URL:-https://github.com/cloudflare/cloudflared/releases/latest/download}
OS=$(printf '%s' "${DROP_INSTALL_OS:-$(uname -s)}" | tr '[:upper:]' '[:lower:]')
ARCH=${DROP_INSTALL_ARCH:-$(uname -m)}
UNIT_FILE=${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user/drop.service

# Temp files to remove however the script ends.
CLEANUP=()
cleanup() { rm -rf -- ${CLEANUP[@]+"${CLEANUP[@]}"}; }
trap cleanup EXIT

say() { printf '%s\n' "$*"; }
die() { printf 'Error: %s\n' "$*" >&2; exit 1; }

# new_temp [-d] PATH: sets TEMP to a new temp file (or, with -d, folder)
# beside PATH, so that the final mv is a rename; it goes when the script ends.
new_temp() {
    if [[ $1 == -d ]]; then
        TEMP=$(mktemp -d "$(dirname "$2")/.$(basename "$2").XXXXXX")
    else
        TEMP=$(mktemp "$(dirname "$1")/.$(basename "$1").XXXXXX")
    fi
    CLEANUP+=("$TEMP")
}

# put_file SRC DEST MODE: replaces DEST with SRC unless they are already the
# same. Returns 1 when nothing had to change.
put_file() {
    local src=$1 dest=$2 mode=$3 tmp
    if [[ -f $dest ]] && cmp -s "$src" "$dest"; then
        chmod "$mode" "$dest"
        return 1
    fi
    mkdir -p "$(dirname "$dest")"
    new_temp "$dest"
    tmp=$TEMP
    cp "$src" "$tmp"
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$dest"
}

# Sets BUILT to the drop binary to install: DROP_INSTALL_BINARY, or a
# release build of this checkout.
build_drop() {
    if [[ -n ${DROP_INSTALL_BINARY:-} ]]; then
        [[ -f $DROP_INSTALL_BINARY && -x $DROP_INSTALL_BINARY ]] ||
            die "DROP_INSTALL_BINARY '$DROP_INSTALL_BINARY' is not an executable file"
        BUILT=$DROP_INSTALL_BINARY
        return
    fi
    local cargo
    cargo=$(command -v cargo || true)
    if [[ -z $cargo && -x $HOME/.cargo/bin/cargo ]]; then
        # rustup installed it, but this shell's PATH predates that.
        PATH=$HOME/.cargo/bin:$PATH
        cargo=$HOME/.cargo/bin/cargo
    fi
    if [[ -z $cargo ]]; then
        cat >&2 <<'EOF'
Error: cargo (the Rust toolchain) is needed to build drop and is not on PATH.
Install it with rustup (https://rustup.rs):
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh
then open a new shell (or run: . "$HOME/.cargo/env") and run ./install.sh again.
EOF
        exit 1
    fi
    if ! "$cargo" --version >/dev/null 2>&1; then
        if command -v rustup >/dev/null 2>&1 && ! rustup show active-toolchain >/dev/null 2>&1; then
            die "rustup has no Rust toolchain set: run 'rustup default stable', then ./install.sh again"
        fi
        die "'$cargo --version' fails; repair the Rust toolchain (with rustup: 'rustup default stable'), then run ./install.sh again"
    fi
    if ! command -v cc >/dev/null 2>&1; then
        cat >&2 <<'EOF'
Error: a C compiler (cc) is needed to build drop (its TLS library has C parts) and is not on PATH.
Install one, then run ./install.sh again:
  Debian/Ubuntu: sudo apt-get install build-essential
  Fedora:        sudo dnf install gcc
  macOS:         xcode-select --install
EOF
        exit 1
    fi
    say "drop: building (cargo build --release; the first build takes a few minutes)"
    (cd "$REPO" && "$cargo" build --release --locked -p drop-cli) ||
        die "the build failed (see above); drop needs Rust 1.89 or newer: run 'rustup update' and try again"
    local target=${CARGO_TARGET_DIR:-target}
    [[ $target == /* ]] || target=$REPO/$target
    BUILT=$target/release/drop
}

install_drop() {
    local dest=$BIN_DIR/drop version found existed=""
    build_drop
    [[ -e $dest ]] && existed=1
    if put_file "$BUILT" "$dest" 0755; then
        if [[ -n $existed ]]; then
            say "drop: updated $dest"
            say "  (a server that is already running keeps the old version until 'drop stop && drop start')"
        else
            say "drop: installed $dest"
        fi
    else
        say "drop: already installed at $dest"
    fi
    version=$("$dest" --version) || die "the installed $dest does not run"
    say "  ($version)"
    case ":$PATH:" in
        *":$BIN_DIR:"*) ON_PATH=1 ;;
        *)
            say "warning: $BIN_DIR is not on PATH. Add it, for example:"
            say "  echo 'export PATH=\"$BIN_DIR:\$PATH\"' >> ~/.bashrc   # or ~/.zshrc, then open a new shell"
            ;;
    esac
    found=$(command -v drop || true)
    if [[ -n $found && $found != "$dest" ]]; then
        say "warning: 'drop' on PATH is $found, which comes before $dest; remove it or reorder PATH"
    fi
}

install_skill() {
    local dest=$SKILLS_ROOT/drop/SKILL.md
    [[ -f $REPO/skills/drop.md ]] || die "$REPO/skills/drop.md is missing: run install.sh from a drop checkout"
    if put_file "$REPO/skills/drop.md" "$dest" 0644; then
        say "skill: installed $dest"
    else
        say "skill: already installed at $dest"
    fi
}

# Whether `systemctl --user` reaches a manager, not merely exists.
user_systemd() {
    [[ $OS == linux ]] && command -v systemctl >/dev/null 2>&1 &&
        systemctl --user show-environment >/dev/null 2>&1
}

# systemd reads % specifiers, quotes and backslashes in unit values: paths
# holding them get no unit rather than an escaped one drop cannot read back.
unit_safe() {
    case $1 in
        *[\"\\%\$]* | *$'\n'*) return 1 ;;
    esac
}

unit_text() {
    cat <<EOF
# Written by drop's install.sh; ./uninstall.sh removes it.
# 'drop start' and 'drop stop' use this unit for the drop home below.
# 'drop start' writes the server's arguments and settings to server.env there.
[Unit]
Description=drop page server
Documentation=https://github.com/drop-share/drop

[Service]
Type=simple
Environment="DROP_HOME=$DATA_DIR"
EnvironmentFile=-$DATA_DIR/server.env
ExecStart="$BIN_DIR/drop" serve \$DROP_SERVE_ARGS
StandardOutput=append:$DATA_DIR/logs/server.log
StandardError=append:$DATA_DIR/logs/server.log
Restart=on-failure
RestartSec=2
TimeoutStopSec=15
# Apps run in process groups of their own and must outlive a restart of the
# server: stop only the server's process, not the whole control group.
KillMode=process

[Install]
WantedBy=default.target
EOF
}

install_unit() {
    if ! user_systemd; then
        say "systemd: no user session here; 'drop start' runs the server itself (auto-restart is off)"
        return
    fi
    if ! unit_safe "$DATA_DIR" || ! unit_safe "$BIN_DIR"; then
        say "systemd: skipped: '$DATA_DIR' or '$BIN_DIR' holds \", \\, % or \$, which a unit cannot take as is"
        return
    fi
    if [[ -f $UNIT_FILE && "$(cat "$UNIT_FILE")" == "$(unit_text)" ]]; then
        say "systemd: already installed at $UNIT_FILE"
    else
        mkdir -p "$(dirname "$UNIT_FILE")"
        new_temp "$UNIT_FILE"
        unit_text >"$TEMP"
        chmod 0644 "$TEMP"
        mv -f "$TEMP" "$UNIT_FILE"
        systemctl --user daemon-reload || say "warning: systemctl --user daemon-reload failed"
        say "systemd: installed $UNIT_FILE ('drop start' runs the server under it; restarts on failure)"
        say "  (to start the server at login too: systemctl --user enable drop)"
    fi
}

# The release asset for this platform, as cloudflared publishes them.
cloudflared_asset() {
    local arch
    case $ARCH in
        x86_64 | amd64) arch=amd64 ;;
        aarch64 | arm64) arch=arm64 ;;
        *) return 1 ;;
    esac
    case $OS in
        linux) printf 'cloudflared-linux-%s\n' "$arch" ;;
        darwin) printf 'cloudflared-darwin-%s.tgz\n' "$arch" ;;
        *) return 1 ;;
    esac
}

# The first line of `cloudflared --version`, if $1 is a cloudflared that runs.
cloudflared_version() {
    local out
    out=$("$1" --version 2>/dev/null) || return 1
    [[ $out =~ ^cloudflared\ version\ [^[:space:]]+ ]] || return 1
    printf '%s\n' "${out%%$'\n'*}"
}

# Why the last fetch failed, in words for the user ("" when it did not).
FETCH_FAILURE=""

# Downloads $1 to $2 quietly: curl and wget would print their own error
# once per retry. On failure, FETCH_FAILURE says why, plainly.
fetch() {
    local status=0 host=${1#*://}
    host=${host%%/*}
    FETCH_FAILURE=""
    if command -v curl >/dev/null 2>&1; then
        curl -fsL --connect-timeout 15 --retry 2 -o "$2" "$1" 2>/dev/null || status=$?
        case $status in
            0) return 0 ;;
            5 | 6 | 7 | 28) FETCH_FAILURE="this machine looks offline (no connection to $host)" ;;
            22) FETCH_FAILURE="$host answered with an error" ;;
            *) FETCH_FAILURE="the download from $host broke off (curl exit code $status)" ;;
        esac
    elif command -v wget >/dev/null 2>&1; then
        wget -q -T 15 -O "$2" "$1" 2>/dev/null || status=$?
        case $status in
            0) return 0 ;;
            4) FETCH_FAILURE="this machine looks offline (no connection to $host)" ;;
            8) FETCH_FAILURE="$host answered with an error" ;;
            *) FETCH_FAILURE="the download from $host broke off (wget exit code $status)" ;;
        esac
    else
        FETCH_FAILURE="neither curl nor wget is installed"
    fi
    return 1
}

# Downloads $1 (a binary, or a .tgz holding one) to the temp file $2.
download_cloudflared() {
    local url=$1 tmp=$2 archive unpacked
    if [[ $url != *.tgz ]]; then
        fetch "$url" "$tmp"
        return
    fi
    new_temp "$tmp.tgz"
    archive=$TEMP
    new_temp -d "$tmp.d"
    unpacked=$TEMP
    fetch "$url" "$archive" &&
        tar -xzf "$archive" -C "$unpacked" &&
        [[ -f $unpacked/cloudflared && ! -L $unpacked/cloudflared ]] &&
        mv -f "$unpacked/cloudflared" "$tmp"
}

cloudflared_by_hand() {
    local asset=$1 dest=$DATA_DIR/bin/cloudflared
    say "  drop works without it, but cannot open tunnels from behind NAT."
    say "  drop looks for cloudflared on PATH, then at $dest. To install it by hand:"
    if [[ -n $asset ]]; then
        say "    download $CLOUDFLARED_URL/$asset"
        [[ $asset == *.tgz ]] && say "    and unpack the 'cloudflared' inside it"
        say "    to $dest and make it executable (chmod +x);"
    fi
    say "  or install it from https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/"
    say "  (macOS: brew install cloudflared); or run ./install.sh again when online."
}

install_cloudflared() {
    local dest=$DATA_DIR/bin/cloudflared found version asset tmp
    if found=$(command -v cloudflared); then
        say "cloudflared: found on PATH at $found"
        return
    fi
    if [[ -x $dest ]] && version=$(cloudflared_version "$dest"); then
        say "cloudflared: already installed at $dest ($version)"
        return
    fi
    if [[ -e $dest ]]; then
        say "cloudflared: $dest does not run; downloading it again"
    fi
    if ! asset=$(cloudflared_asset); then
        say "cloudflared: no release for $OS/$ARCH"
        cloudflared_by_hand ""
        return
    fi
    (umask 077 && mkdir -p "$DATA_DIR/bin")
    new_temp "$dest"
    tmp=$TEMP
    say "cloudflared: downloading $CLOUDFLARED_URL/$asset"
    if download_cloudflared "$CLOUDFLARED_URL/$asset" "$tmp" &&
        chmod 0755 "$tmp" && version=$(cloudflared_version "$tmp"); then
        mv -f "$tmp" "$dest"
        say "cloudflared: installed $dest ($version)"
    else
        rm -f "$tmp"
        say "cloudflared: could not download it: ${FETCH_FAILURE:-what arrived does not run}"
        cloudflared_by_hand "$asset"
    fi
}

# How to give a coding agent drop's MCP tools: printed, never written into
# an agent's settings. The full path, as agents started from a desktop may
# not have BIN_DIR on their PATH.
say_mcp() {
    local drop=$BIN_DIR/drop quoted
    quoted=$(printf '%q' "$drop")
    say ""
    say "drop speaks MCP: to give a coding agent its tools (publish, wait, doctor…), add it yourself:"
    say "  Claude Code: claude mcp add drop -- $quoted mcp"
    say "  Codex:       codex mcp add drop -- $quoted mcp"
    say "  Cursor (~/.cursor/mcp.json) and other agents' mcpServers settings:"
    say "    {\"mcpServers\": {\"drop\": {\"command\": \"$drop\", \"args\": [\"mcp\"]}}}"
}

ON_PATH=""

main() {
    # drop keeps its folders owner-only; create them so before anything else.
    (umask 077 && mkdir -p "$DATA_DIR/logs")
    mkdir -p "$BIN_DIR"
    BIN_DIR=$(cd "$BIN_DIR" && pwd)
    DATA_DIR=$(cd "$DATA_DIR" && pwd)
    install_drop
    install_skill
    install_unit
    install_cloudflared
    say_mcp
    say ""
    if [[ -n $ON_PATH ]]; then
        say "Done. Try: drop start && drop add <file>"
    else
        # Not on PATH yet: a bare `drop` would not be found.
        say "Done. Try: $BIN_DIR/drop start && $BIN_DIR/drop add <file>"
    fi
}

main
