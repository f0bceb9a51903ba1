#!/usr/bin/env bash
# Undoes install.sh: stops drop's server and every app it runs, removes the drop command, the
# agent skill and the systemd user unit. Keeps ~/.drop (pages, logs and the
# cloudflared install.sh downloaded). Running it again changes nothing.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: ./uninstall.sh

Stops the drop server and every app it runs (once drop is gone nothing
could stop them), then removes what ./install.sh put in place:
  ~/.local/bin/drop, ~/.claude/skills/drop/SKILL.md and, when present,
  ~/.config/systemd/user/drop.service.
Keeps ~/.drop: your pages, logs and ~/.drop/bin/cloudflared. Delete that
folder yourself to remove everything.

Takes the same DROP_INSTALL_BIN_DIR, DROP_SKILLS_ROOT and DROP_HOME as
install.sh; see ./install.sh --help.
EOF
}

case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    "") ;;
    *) echo "Error: unknown argument '$1'; see ./uninstall.sh --help" >&2; exit 2 ;;
esac

BIN=${DROP_INSTALL_BIN_DIR:-$HOME/.local/bin}/drop
SKILL_DIR=${DROP_SKILLS_ROOT:-$HOME/.claude/skills}/drop
DATA_DIR=${DROP_HOME:-$HOME/.drop}
UNIT_FILE=${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user/drop.service

say() { printf '%s\n' "$*"; }

user_systemd() {
    [[ $(uname -s) == Linux ]] && command -v systemctl >/dev/null 2>&1 &&
        systemctl --user show-environment >/dev/null 2>&1
}

# `drop stop` knows whether the server runs under the unit or on its own;
# `--all` stops the apps first, so none is left serving with no drop to
# stop it (it names each one).
if [[ -x $BIN ]]; then
    "$BIN" stop --all ||
        say "warning: 'drop stop --all' failed (see above); stop what it names yourself if it still runs"
fi

if [[ -f $UNIT_FILE ]]; then
    if user_systemd; then
        systemctl --user disable --now drop.service >/dev/null 2>&1 || true
    fi
    rm -f "$UNIT_FILE"
    if user_systemd; then
        systemctl --user daemon-reload || true
    fi
    say "systemd: removed $UNIT_FILE"
fi

if [[ -e $BIN ]]; then
    rm -f "$BIN"
    say "drop: removed $BIN"
else
    say "drop: not installed at $BIN"
fi

if [[ -e $SKILL_DIR/SKILL.md ]]; then
    rm -f "$SKILL_DIR/SKILL.md"
    rmdir "$SKILL_DIR" 2>/dev/null || true
    say "skill: removed $SKILL_DIR/SKILL.md"
else
    say "skill: not installed at $SKILL_DIR/SKILL.md"
fi

say "Kept $DATA_DIR: your pages, logs and cloudflared. Remove it with: rm -rf '$DATA_DIR'"
