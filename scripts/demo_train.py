"""The demo's training program: a made-up loss curve, written as real TensorBoard scalars.

It takes the two flags runs passes to every run (--tb-dir, --save-path), shows a progress
bar, and writes ``loss`` and ``acc`` with TensorBoard's own event writer (the ``metrics``
extra), so that `runs table --metrics loss:min,acc:max` reads them as it would any run's.
"""
import argparse
import math
import sys
import time

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--steps", type=int, default=20)
parser.add_argument("--tb-dir", required=True, help="where TensorBoard events go")
parser.add_argument("--save-path", required=True, help="checkpoint path prefix")
args = parser.parse_args()

writer = EventFileWriter(args.tb_dir)
best = 0.9 - abs(math.log10(args.lr) + 1) * 0.2 + args.seed * 0.01  # lr 0.1 is the sweet spot
for step in range(args.steps):
    loss = 2.0 * math.exp(-args.lr * 10 * (step + 1) / args.steps) + 0.05 * args.seed
    acc = best * (1 - math.exp(-3 * (step + 1) / args.steps))
    values = [summary_pb2.Summary.Value(tag=tag, simple_value=v) for tag, v in (("loss", loss), ("acc", acc))]
    writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=values)))
    done = (step + 1) * 20 // args.steps
    sys.stdout.write(f"\rstep {step + 1:2d}/{args.steps} [{'#' * done}{'.' * (20 - done)}] loss {loss:.3f} acc {acc:.3f}")
    sys.stdout.flush()
    time.sleep(0.1)
writer.close()
with open(args.save_path + ".ckpt", "w") as checkpoint:
    checkpoint.write(f"lr={args.lr} seed={args.seed} acc={acc:.4f}\n")
print(f"\nsaved {args.save_path}.ckpt")
