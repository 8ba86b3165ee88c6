#!/usr/bin/env bash
# Run every test on a fresh machine: the README's test command, also called by .ci/run.
#
#   scripts/test.sh [pytest arguments…]          e.g.  scripts/test.sh -m "not browser and not app"
#
# 1. Builds a virtual environment, .venv-test/, from the requirements files alone (requirements-test.txt, which
#    includes requirements.txt and the optional requirements-ray.txt, so the Ray sweep is tested too), so a
#    package installed elsewhere on the machine can never make the tests pass here and fail for a newcomer. It is
#    rebuilt from scratch (`python -m venv --clear`) when the requirements change, when FRESH_VENV=1, and always
#    on CI (CI=true); otherwise the last one is reused. pip's wheel cache makes a rebuild take a minute or two.
#    `pip check` must pass.
# 2. Finds or provides a headless Chromium for the browser tests, first match wins:
#      CHROMIUM=/path/to/chrome if you set it;
#      `chromium` already on PATH;
#      Debian's `chromium` package via apt-get, where apt-get exists and we are root (or have password-less sudo);
#      Playwright's own Chromium download (`python -m playwright install chromium`, a few hundred MB into
#      ~/.cache/ms-playwright), where the network allows.
#    With apt-get it also installs fonts-noto-color-emoji, so screenshots show the page icons.
#    If none works it stops and says how to set CHROMIUM.
# 3. Lints with `ruff check .` (ruff.toml), then runs `python -m pytest "$@"` in that environment. Collecting no
#    test (pytest's exit code 5) is a failure. Markers: `browser` (tests/e2e, headless Chromium) and `app`
#    (tests/app, streamlit.testing AppTest); `-m "not browser and not app"` is the quick unit run.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'scripts/test.sh: %s\n' "$*" >&2; }

as_root() {  # run a command as root, or fail
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo -n "$@"
  else return 1; fi
}

apt_install() {  # apt_install PACKAGE… : quietly, non-interactively; fails without apt-get or root
  command -v apt-get >/dev/null 2>&1 || return 1
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

VENV=.venv-test
# the interpreter the environment is built from: COMPRESS_LAB_PYTHON, else python3 (or python) on PATH, resolved to
# its base installation (if .venv-test itself is active, --clear must not delete the interpreter it runs on)
BASE_PYTHON=${COMPRESS_LAB_PYTHON:-$(command -v python3 || command -v python || true)}
[ -n "$BASE_PYTHON" ] || { say "no python3 on PATH: install Python 3.11 (or set COMPRESS_LAB_PYTHON)"; exit 1; }
BASE_PYTHON=$("$BASE_PYTHON" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')
stamp=$(cat requirements.txt requirements-ray.txt requirements-test.txt | "$BASE_PYTHON" -c 'import hashlib, sys
print(hashlib.sha256(sys.stdin.buffer.read() + sys.version.encode()).hexdigest())')
if [ "${CI:-}" = true ] || [ "${FRESH_VENV:-0}" = 1 ] || [ ! -x "$VENV/bin/python" ] ||
   [ "$(cat "$VENV/.requirements-sha256" 2>/dev/null)" != "$stamp" ]; then
  say "building a fresh virtual environment in $VENV from requirements-test.txt (and the files it includes)"
  if ! "$BASE_PYTHON" -m venv --clear "$VENV"; then  # Debian's python3 needs python3-venv for this
    apt_install python3-venv && "$BASE_PYTHON" -m venv --clear "$VENV" ||
      { say "cannot create a virtual environment: install python3-venv (Debian/Ubuntu) and run again"; exit 1; }
  fi
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements-test.txt
  echo "$stamp" > "$VENV/.requirements-sha256"
else
  say "reusing $VENV (its requirements are unchanged; FRESH_VENV=1 rebuilds it)"
fi
"$VENV/bin/python" -m pip check >&2
export PATH="$PWD/$VENV/bin:$PATH" VIRTUAL_ENV="$PWD/$VENV"
hash -r
[ "$(python -c 'import sys; print(sys.prefix)')" = "$PWD/$VENV" ] || { say "python is not $VENV's"; exit 1; }

find_chromium() {
  if [ -n "${CHROMIUM:-}" ]; then
    [ -x "$CHROMIUM" ] || { say "CHROMIUM=$CHROMIUM is not an executable file"; exit 1; }
    say "browser: CHROMIUM=$CHROMIUM"; return
  fi
  if command -v chromium >/dev/null 2>&1; then
    CHROMIUM=$(command -v chromium); say "browser: $CHROMIUM"; return
  fi
  if apt_install chromium fonts-noto-color-emoji && command -v chromium >/dev/null 2>&1; then
    CHROMIUM=$(command -v chromium); say "browser: Debian's chromium, installed with apt-get ($CHROMIUM)"; return
  fi
  say "no Debian chromium (no apt-get, not root, or no such package); trying Playwright's own download"
  if python -m playwright install chromium >&2; then
    CHROMIUM=$(python -c 'from playwright.sync_api import sync_playwright
with sync_playwright() as p: print(p.chromium.executable_path)')
    if [ -x "$CHROMIUM" ]; then say "browser: Playwright's Chromium ($CHROMIUM)"; return; fi
  fi
  say "No Chromium found and none could be installed (offline?). Install one and run again with"
  say "  CHROMIUM=/path/to/chromium scripts/test.sh"
  exit 1
}

find_chromium
export CHROMIUM
# Screenshots: colour emoji for the page icons. Best effort: the tests pass without them.
if ! fc-list 2>/dev/null | grep -qi "color emoji"; then
  apt_install fonts-noto-color-emoji ||
    say "note: no colour emoji font (fonts-noto-color-emoji): icons in screenshots show as boxes"
fi

python -m ruff check .

rc=0
python -m pytest "$@" || rc=$?
if [ "$rc" = 5 ]; then say "pytest collected no tests: that is a failure"; fi
exit "$rc"
