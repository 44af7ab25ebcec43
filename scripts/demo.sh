#!/bin/sh
# A demo of runs on a fresh Debian/Ubuntu machine: installs what is missing (see
# scripts/test.sh), makes a throwaway git repository with a small training program,
# launches three runs in tmux and shows `runs table` and `runs reproduce`.
set -eu
cd "$(dirname "$0")/.."
here=$(pwd)
. scripts/_setup.sh
need_system_packages
need_venv ""
PATH="$here/.venv/bin:$PATH"
export PATH

demo=$(mktemp -d "${TMPDIR:-/tmp}/runs-demo.XXXXXX")
cd "$demo"
git init -q
cat > train.py <<'PY'
"""A stand-in for a training program: it takes the two flags runs passes to every run."""
import argparse
import math
import os
import time

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--steps", type=int, default=20)
parser.add_argument("--tb-dir", required=True, help="where TensorBoard events go")
parser.add_argument("--save-path", required=True, help="checkpoint path prefix")
args = parser.parse_args()

loss = 1.0
with open(os.path.join(args.tb_dir, "loss.csv"), "w") as log:
    for step in range(args.steps):
        loss *= math.exp(-args.lr)
        log.write(f"{step},{loss:.4f}\n")
        print(f"step {step:3d}  loss {loss:.4f}", flush=True)
        time.sleep(0.2)
with open(args.save_path + ".ckpt", "w") as checkpoint:
    checkpoint.write(f"lr={args.lr} loss={loss}\n")
print("saved", args.save_path + ".ckpt")
PY
git add train.py
git -c user.name=demo -c user.email=demo@example.com commit -qm "A small training program"

set -x
runs new baseline 'python3 train.py --lr 0.1' --description='the baseline'
runs new slow 'python3 train.py --lr 0.01' --description='ten times lower learning rate'
runs new sweep/lr-0.5 'python3 train.py --lr 0.5' --description="a sweep member: 'quotes' and \$dollars survive"
sleep 1
runs list
runs table
runs lookup slow commit
runs reproduce sweep/lr-0.5
set +x
echo
echo "The demo repository is $demo; the runs are still in tmux:"
echo "    tmux attach -t =baseline        (detach with Ctrl-b d)"
echo "To clean up:"
echo "    cd $demo && $here/.venv/bin/runs delete '.*' --yes && rm -rf $demo"
