"""What is alive at a train step's memory peak, tensor by tensor (TensorFlow, CPU).

    python benchmarks/profile_memory.py lambda/global/fft 128      # any bench method, any s
    python benchmarks/profile_memory.py lambda/content 128 --top 10

Builds the bench's case (as profile_step.py: batch 8, d = 128, h = 4, k = 16;
models batch 16), runs its train step once to trace it, then once more under
`tf.profiler` with TensorFlow's BFC allocator on the CPU (`TF_CPU_ALLOCATOR_USE_BFC`,
set here before TensorFlow loads: the default CPU allocator records no allocations).
Replays the step's allocations and frees in time order and prints the tensors alive
at the peak, summed by the op that made
them and their shape: what to cut to lower the peak. The sum is the step's own
tensors (the weights and the input were allocated before); the allocator's peak,
printed beside it, also counts those. benchmarks/history/profile.md has what this printed.
"""

import argparse
import collections
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_CPU_ALLOCATOR_USE_BFC"] = "true"

# After the allocator's setting: profile_step loads TensorFlow only when called.
from profile_step import read_profile, warmed_step

MEMORY_EVENTS = ("MemoryAllocation", "MemoryDeallocation")


def memory_events(logdir):
    """[(picoseconds, event name, {stat: value})] of the host plane, in time order."""
    events = []
    for plane in read_profile(logdir).planes:
        if plane.name != "/host:CPU":
            continue
        names = {key: value.name for key, value in plane.event_metadata.items()}
        stat_names = {key: value.name for key, value in plane.stat_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names[event.metadata_id]
                if name not in MEMORY_EVENTS:
                    continue
                stats = {}
                for stat in event.stats:
                    # Strings are stored once, in the plane's metadata, and referenced.
                    referenced = plane.stat_metadata[stat.ref_value].name if stat.ref_value else None
                    stats[stat_names[stat.metadata_id]] = (
                        stat.str_value or referenced or stat.int64_value or stat.uint64_value)
                events.append((line.timestamp_ns * 1000 + event.offset_ps, name, stats))
    return sorted(events, key=lambda event: event[0])


def alive_at_peak(events):
    """(peak bytes, {address: (bytes, op, shape)}): the step's own allocations alive
    when their sum was largest."""
    alive, total, peak, at_peak = {}, 0, 0, {}
    for _, name, stats in events:
        address = stats.get("addr")
        if name == "MemoryAllocation":
            size = int(stats.get("allocation_bytes") or 0)
            alive[address] = (size, stats.get("tf_op"), stats.get("shape"))
            total += size
        elif address in alive:
            total -= alive.pop(address)[0]
        if total > peak:
            peak, at_peak = total, dict(alive)
    return peak, at_peak


def maker(op):
    """An op's name, short: its last two scopes, "backward" for the gradient's."""
    if op is None:
        return "?"
    short = "/".join(op.split("/")[-2:])
    return f"backward: {short}" if op.startswith("gradient_tape") else short


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("method")
    parser.add_argument("size", type=int)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()

    import tensorflow as tf

    from keras_lambda.bench import measure

    train_step, x = warmed_step(args.method, args.size, args.dim)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        measure.wait(train_step(x))
        tf.profiler.experimental.stop()
        events = memory_events(logdir)
    peak, at_peak = alive_at_peak(events)
    allocator_peak = max(int(stats.get("peak_bytes_in_use") or 0) for _, _, stats in events)
    by_maker = collections.Counter()
    count = collections.Counter()
    for size, op, tensor_shape in at_peak.values():
        by_maker[maker(op), tensor_shape] += size
        count[maker(op), tensor_shape] += 1
    print(f"{args.method} s={args.size} d={args.dim}: the step's tensors at its peak "
          f"{peak / 2**20:.0f} MiB (the allocator's peak, with weights and input: "
          f"{allocator_peak / 2**20:.0f} MiB)")
    print("| MiB | tensors | made by | shape |\n|---:|---:|---|---|")
    for (op, tensor_shape), size in by_maker.most_common(args.top):
        print(f"| {size / 2**20:.0f} | {count[op, tensor_shape]} | {op} | {tensor_shape} |")


if __name__ == "__main__":
    main()
