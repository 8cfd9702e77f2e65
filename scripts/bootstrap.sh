#!/usr/bin/env bash
# Install what a fresh Debian/Ubuntu machine lacks: the lab's Debian packages (as root) and a
# virtualenv (.venv) with the project and its test dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES="mariadb-server redis-server redis-sentinel"
OPTIONAL_DEB_PACKAGES="chromium"   # renders report.html in the report screenshot test
PYTHON="${PYTHON:-python3}"

not_installed() {
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || printf ' %s' "$pkg"
    done
}
missing=$(not_installed $DEB_PACKAGES)
optional=$(not_installed $OPTIONAL_DEB_PACKAGES)
if [ -n "$missing$optional" ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        echo "bootstrap: installing Debian packages:$missing$optional"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends $missing $optional
    elif [ -n "$missing" ]; then
        echo "bootstrap: missing Debian packages:$missing$optional" >&2
        echo "bootstrap: install them as root: sudo apt-get install -y$missing$optional" >&2
        exit 1
    else
        echo "bootstrap: optional package not installed:$optional (the report screenshot test will be skipped)"
    fi
fi

if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(cat setup.cfg pyproject.toml | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[lab,test]'
    rm -f .venv/.installed-* && touch "$stamp"
fi
echo "bootstrap: ready (.venv/bin/gameday)"
