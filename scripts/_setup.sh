# Shared by scripts/test.sh and scripts/demo.sh (sourced, not run): make sure the system
# programs runs needs are there, and a virtualenv in .venv with runs installed.

need_system_packages() {
    missing=""
    command -v python3 >/dev/null 2>&1 || missing="$missing python3"
    command -v git >/dev/null 2>&1 || missing="$missing git"
    command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
    if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        missing="$missing python3-venv"
    fi
    [ -z "$missing" ] && return 0
    if ! apt_install "" $missing; then
        echo "runs needs$missing. Install with:" >&2
        echo "    sudo apt-get install -y$missing" >&2
        exit 1
    fi
}

# apt_install WHY PACKAGE...: install with apt-get when root; fails (status 1) otherwise.
apt_install() {
    why=$1
    shift
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
    echo "Installing $*$why with apt-get ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# need_venv EXTRA: create .venv (if needed) and install runs into it, with extras EXTRA.
need_venv() {
    version=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))'; then
        echo "runs needs Python 3.9 or newer; python3 is $version" >&2
        exit 1
    fi
    if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c pass >/dev/null 2>&1; then
        rm -rf .venv
        python3 -m venv .venv
    fi
    .venv/bin/python -m pip install -q --disable-pip-version-check ".$1"
}

# need_test_shells: zsh and fish, in which the tests drive the completion scripts
# (bash is there already). Installed with apt-get as root; otherwise those tests are skipped.
need_test_shells() {
    missing=""
    command -v zsh >/dev/null 2>&1 || missing="$missing zsh"
    command -v fish >/dev/null 2>&1 || missing="$missing fish"
    [ -z "$missing" ] && return 0
    if ! apt_install " (for the completion tests)" $missing; then
        echo "The completion tests for$missing are skipped; to run them: sudo apt-get install -y$missing" >&2
    fi
}
