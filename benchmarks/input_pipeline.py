"""The input pipeline at scale: a generated folder of 50,000 JPEGs through
`keras-lambda bench --input-pipeline` and through a short `keras-lambda train`.

    python benchmarks/input_pipeline.py --folder /tmp/pipeline-50k

Makes the folder when it is missing (100 classes of 500 256x256 JPEGs: smooth
colour fields with noise, about 15-25 KB each), then runs, each in its own
process, with the peak resident memory of each:
  keras-lambda bench --input-pipeline --data-dir FOLDER --image-size 224 --batch-size 64
  keras-lambda train --data-dir FOLDER --model tiny --image-size 224 --epochs 1 --steps-per-epoch 10
and writes benchmarks/input-pipeline-50k.{json,md}. Targets: peak memory at most
2.5 GiB for both, the first batch within 10 s of the start.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(os.path.dirname(sys.executable), "keras-lambda")


def make_folder(folder, classes=100, per_class=500, side=256, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:side, 0:side] / side
    for label in range(classes):
        directory = os.path.join(folder, f"class_{label:03d}")
        os.makedirs(directory, exist_ok=True)
        base = rng.uniform(0, 255, size=3)
        for index in range(per_class):
            phase = rng.uniform(0, 6.3, size=3)
            field = [base[c] / 2 + 60 * np.sin(6 * rows + 4 * columns + phase[c]) + 60
                     for c in range(3)]
            image = np.stack(field, -1) + rng.normal(0, 12, (side, side, 3))
            Image.fromarray(np.clip(image, 0, 255).astype("uint8")).save(
                os.path.join(directory, f"{index:04d}.jpg"), quality=90)


MODEL_STEP = """
import resource, numpy as np, keras, tensorflow as tf
from keras_lambda.training.options import TrainConfig
from keras_lambda.training.run import build_model, compile_model
config = TrainConfig(image_size=224)
model = build_model(config, (224, 224, 3), 100)
compile_model(model, config, 10)
images = np.random.default_rng(0).integers(0, 256, (64, 224, 224, 3), dtype="uint8")
labels = keras.utils.to_categorical(np.arange(64) % 100, 100)
model.fit(tf.data.Dataset.from_tensors((images, labels)).repeat(10), epochs=1, verbose=0)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def cpu_name():
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run(command):
    """Runs a command; returns (seconds, the largest peak RSS of the children so
    far in bytes, stdout): run the smaller process first."""
    started = time.time()
    result = subprocess.run(command, capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    seconds = time.time() - started
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, result.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=os.path.join(tempfile.gettempdir(), "pipeline-50k"))
    parser.add_argument("--out", default=os.path.join(HERE, "records", "input-pipeline-50k"))
    args = parser.parse_args()
    if not os.path.isdir(args.folder):
        started = time.time()
        make_folder(args.folder)
        print(f"made {args.folder} in {time.time() - started:.0f} s", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        bench = [SCRIPT, "bench", "--input-pipeline", "--data-dir", args.folder,
                 "--image-size", "224", "--batch-size", "64", "--output-dir", scratch,
                 "--name", "pass"]
        bench_seconds, bench_peak, _ = run(bench)
        with open(os.path.join(scratch, "pass.json")) as file:
            figures = json.load(file)
        train = [SCRIPT, "train", "--data-dir", args.folder, "--model", "tiny",
                 "--image-size", "224", "--epochs", "1", "--steps-per-epoch", "10",
                 "--output-dir", os.path.join(scratch, "run")]
        train_seconds, train_peak, _ = run(train)
        with open(os.path.join(scratch, "run", "summary.json")) as file:
            summary = json.load(file)
    # The same model's training steps alone, on one in-memory batch (no input pipeline):
    # what of the training process's memory is the model's, not the data's.
    _, step_peak, step_output = run([sys.executable, "-c", MODEL_STEP])
    step_peak = int(step_output.split()[-1])
    record = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores",
        "pass": figures,
        "bench_command": " ".join(["keras-lambda", *bench[1:9]]),
        "bench_process_peak_bytes": bench_peak,
        "train_command": " ".join(["keras-lambda", *train[1:12]]),
        "train_seconds": round(train_seconds, 1),
        "train_process_peak_bytes": train_peak,
        "model_steps_alone_peak_bytes": step_peak,
        "train_examples": summary["train_examples"],
    }
    with open(args.out + ".json", "w") as file:
        json.dump(record, file, indent=2)
    gib = 2**30
    lines = [
        "# Input pipeline at scale: 50,000 JPEGs",
        "",
        f"{record['date']}, {record['machine']}. Reproduce: `python benchmarks/input_pipeline.py`",
        "(generates the folder: 100 classes x 500 JPEGs of 256x256, then runs the two commands).",
        "",
        "| what | figure | target |",
        "|---|---|---|",
        f"| one pass, `{record['bench_command']}` | {figures['images']:,} images in "
        f"{figures['pass_seconds']} s | |",
        f"| first batch after the start (TensorFlow's import included) | "
        f"{figures['first_batch_seconds']} s | <= 10 s |",
        f"| images/s | {figures['images_per_second']:,.0f} "
        f"({figures['images_per_second_per_core']:,.0f} per core) | reported |",
        f"| peak memory of that process | {bench_peak / gib:.2f} GiB | <= 2.5 GiB |",
        f"| `{record['train_command']}` | {train_seconds:.0f} s (10 steps, then validation "
        f"and test passes) | |",
        f"| peak memory of the training process | {train_peak / gib:.2f} GiB | <= 2.5 GiB |",
        f"| the same model's 10 training steps alone, one in-memory batch of 64, no input "
        f"pipeline | {step_peak / gib:.2f} GiB | |",
        "",
        f"The input pipeline's own memory is the pass's peak; the training process adds "
        f"the model: its training steps alone take {step_peak / gib:.2f} GiB of the "
        f"{train_peak / gib:.2f} GiB, so the data's share is "
        f"{(train_peak - step_peak) / gib:.2f} GiB.",
    ]
    with open(args.out + ".md", "w") as file:
        file.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
