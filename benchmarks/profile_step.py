"""Where a train step's time goes, op by op (TensorFlow's profiler).

    python benchmarks/profile_step.py lambda/global/fft 32       # any bench method, any s
    python benchmarks/profile_step.py attention 32 --dim 128 --steps 3
    python benchmarks/profile_step.py model/lambda_resnet50 128   # models: batch 16, SGD step

Builds the bench's case (batch 8, d = 128, h = 4, k = 16; models: batch 16), runs its train step
(the bench's `tf.function`) under `tf.profiler`, and sums the ops' time by op
type over the executor threads: thread time, so shares, not wall time (the two
cores run ops side by side). Each op counts once: the executor's wrappers
("Process", "ParallelFor") that contain other ops are left out. benchmarks/history/profile.md
has the breakdowns this printed.
"""

import argparse
import collections
import glob
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

WRAPPERS = ("Process", "ParallelFor", "ExecutorDoneCallback")  # contain the ops, not ops


def read_profile(logdir):
    """The XSpace (planes of lines of events) TensorFlow's profiler wrote in `logdir`."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    path = max(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))
    space = xplane_pb2.XSpace()
    with open(path, "rb") as file:
        space.ParseFromString(file.read())
    return space


def warmed_step(method, size, dim):
    """(train_step, x): the bench's train step of a case and its input (layers: batch 8;
    models: `MODEL_BATCH` and an SGD update), traced and run once."""
    from keras_lambda.bench import measure
    from keras_lambda.bench.methods import MODEL_BATCH, Case, Method

    is_model = Method.parse(method).kind == "model"
    batch = MODEL_BATCH if is_model else 8
    module, shape = measure.build(Case(method, size, dim, batch))
    train_step, _, x, _ = measure.steps(module, shape, is_model, batch)
    measure.wait(train_step(x))
    return train_step, x


def op_times(logdir, steps):
    """{op type: milliseconds of thread time a step} from the profile in `logdir`."""
    times = collections.Counter()
    for plane in read_profile(logdir).planes:
        if "host:CPU" not in plane.name:
            continue
        names = {key: value.name for key, value in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):  # the executor's threads
                continue
            for event in line.events:
                op_type = names[event.metadata_id].split(":")[-1]
                if op_type not in WRAPPERS:
                    times[op_type] += event.duration_ps / 1e9 / steps
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("method")
    parser.add_argument("size", type=int)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()

    import tensorflow as tf

    from keras_lambda.bench import measure

    train_step, x = warmed_step(args.method, args.size, args.dim)
    started = time.perf_counter()
    for _ in range(args.steps):
        measure.wait(train_step(x))
    wall = (time.perf_counter() - started) / args.steps
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(args.steps):
            measure.wait(train_step(x))
        tf.profiler.experimental.stop()
        times = op_times(logdir, args.steps)
    total = sum(times.values())
    print(f"{args.method} s={args.size} d={args.dim}: {wall * 1e3:.0f} ms a step (wall), "
          f"{total:.0f} ms of op time on the executor threads")
    print("| op | ms a step | share |\n|---|---:|---:|")
    for op_type, milliseconds in times.most_common(args.top):
        print(f"| {op_type} | {milliseconds:.0f} | {milliseconds / total:.0%} |")


if __name__ == "__main__":
    main()
