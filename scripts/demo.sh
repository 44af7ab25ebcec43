#!/bin/sh
# A demo of runs on a fresh Debian/Ubuntu machine (about 20 s): installs what is missing
# (see scripts/test.sh), makes a throwaway git repository with a small training program
# that writes TensorBoard scalars, and shows a sweep through the queue, a log, a kill,
# the compare table, a diff and a reproduce. Each command is printed before it runs.
set -eu
cd "$(dirname "$0")/.."
here=$(pwd)
. scripts/_setup.sh
need_system_packages
# The metrics extra (TensorBoard's event format) into .venv, unless it is there already.
.venv/bin/python -c 'import yaml, tabulate, git, libtmux, tensorboard, crc32c' 2>/dev/null || need_venv "[metrics]"
PATH="$here/.venv/bin:$PATH"
PYTHONPATH="$here"  # this checkout's runs, whatever .venv holds
demo=$(mktemp -d "${TMPDIR:-/tmp}/runs-demo.XXXXXX")
TMUX_TMPDIR="$demo/tmux"  # a tmux server of the demo's own, not yours
mkdir "$TMUX_TMPDIR"
unset TMUX
export PATH PYTHONPATH TMUX_TMPDIR
runs() { python -m runs_manager "$@"; }
step() { printf '\n$ %s\n' "$1"; eval "$1"; }
finished() { [ -z "$(runs list --status queued,running)" ]; }

mkdir "$demo/repo"
cd "$demo/repo"
git init -q
cp "$here/scripts/demo_train.py" train.py
git add train.py
git -c user.name=demo -c user.email=demo@example.com commit -qm "A small training program"
start=$(date +%s)

# Six runs, two at a time: the other four wait in the queue, no daemon needed.
step "runs new sw 'python train.py --lr {lr} --seed {seed}' --grid lr=0.3,0.1,0.03 --grid seed=1,2 --max-parallel 2 --description 'lr x seed'"
step "runs table -c name,status,command"
sleep 1.5
step "runs logs sw/lr-0.3_seed-1"
step "runs kill --yes sw/lr-0.3_seed-2"
step "runs table -c name,status,exit_code"
printf '\n(waiting for the queue to run the rest)\n'
for _ in $(seq 120); do finished && break; sleep 0.5; done
finished || { echo "demo: the sweep did not finish in 60 s" >&2; exit 1; }
step "runs table --params --metrics loss:min,acc:max --sort -acc:max"
step "runs diff sw/lr-0.3_seed-1 sw/lr-0.03_seed-1"
best=$(runs table -c name --metrics acc:max --sort -acc:max -f tsv | sed -n 2p | cut -f1)
step "runs reproduce '$best'"

echo
echo "The demo took $(($(date +%s) - start)) s. Its repository is $demo/repo; to look around:"
echo "    cd '$demo/repo' && export PATH='$here/.venv/bin':\$PATH PYTHONPATH='$here' TMUX_TMPDIR='$TMUX_TMPDIR' && runs table"
echo "To clean up:"
echo "    TMUX_TMPDIR='$TMUX_TMPDIR' tmux kill-server; rm -rf '$demo'"
