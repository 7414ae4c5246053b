# shellcheck shell=bash
# Headless Chromium and its WebDriver for the dashboard's browser test. Meant to be *sourced*:
#
#   source .ci/chromium.sh
#   chromium_ensure               # exports FEEDBACK_CHROMIUM and FEEDBACK_CHROMEDRIVER
#
# chromium_ensure finds Debian's `chromium` and `chromium-driver` (on PATH, else /usr/bin, /usr/lib/chromium);
# as root with apt-get and nothing found, it installs both packages (as .ci/postgres.sh installs PostgreSQL).
# Unlike PostgreSQL, a missing browser is not a reason to skip: it returns non-zero and the browser test
# fails (tests/test_dashboard_browser.py), so a machine that cannot run it never passes silently.
# No `set -e` / `exit` here: this file runs inside the caller's shell.

_chromium_log() {
    echo "[chromium.sh] $*" >&2
}

# Print "BROWSER DRIVER" when both are found; return 1 otherwise.
_chromium_find() {
    local browser="" driver="" cand
    for cand in "$(command -v chromium 2>/dev/null)" /usr/bin/chromium /usr/lib/chromium/chromium; do
        if [ -n "$cand" ] && [ -x "$cand" ]; then browser="$cand"; break; fi
    done
    for cand in "$(command -v chromedriver 2>/dev/null)" /usr/bin/chromedriver /usr/lib/chromium/chromedriver; do
        if [ -n "$cand" ] && [ -x "$cand" ]; then driver="$cand"; break; fi
    done
    [ -n "$browser" ] && [ -n "$driver" ] || return 1
    echo "$browser $driver"
}

chromium_ensure() {
    local found
    if ! found="$(_chromium_find)"; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
            _chromium_log "no chromium/chromedriver found; installing the chromium and chromium-driver packages"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >&2 ||
                { DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 &&
                    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >&2; }
            found="$(_chromium_find)" || {
                _chromium_log "ERROR: apt-get install chromium chromium-driver gave no browser/driver"
                return 1
            }
        else
            _chromium_log "ERROR: no chromium/chromedriver, and not root with apt-get to install them" \
                "(install Debian's chromium and chromium-driver): the browser test will fail"
            return 1
        fi
    fi
    export FEEDBACK_CHROMIUM="${found%% *}" FEEDBACK_CHROMEDRIVER="${found##* }"
    _chromium_log "$("$FEEDBACK_CHROMIUM" --version 2>/dev/null | head -n 1) at $FEEDBACK_CHROMIUM," \
        "driver $FEEDBACK_CHROMEDRIVER"
    return 0
}
