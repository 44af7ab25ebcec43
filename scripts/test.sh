#!/bin/sh
# Run the test suite on a fresh Debian/Ubuntu machine: installs tmux, git and
# python3-venv when missing (as root, with apt-get; otherwise it says what to run),
# installs runs and its test tools into .venv, then runs pytest. Arguments go to pytest.
set -eu
cd "$(dirname "$0")/.."
. scripts/_setup.sh
need_system_packages
need_test_shells
sh scripts/slurm-cluster.sh install || [ "${CI:-}" != true ]  # the Slurm tests need a real cluster (skipped without, outside CI)
need_venv "[test]"
set +e
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
    # pytest's "no tests collected": nothing was proven, so that is a failure here.
    echo "scripts/test.sh: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
