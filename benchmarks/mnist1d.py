"""MNIST-1D (Greydanus 2020): a small sequence LambdaNetwork against a CNN, a GRU and
a MultiHeadAttention model of about the same size, on the data set and on its
spatially shuffled variant.

    pip install -e ".[benchmarks]"      # mnist1d: generates the data offline
    python benchmarks/mnist1d.py        # writes benchmarks/records/mnist1d.{json,md}

The data: `mnist1d.data.make_dataset` with its default arguments (4,000 training and
1,000 test sequences of length 40; `shuffle_seq=True` for the shuffled variant, the
same permutation for every sequence). Every model: a Conv1D stem of 64 channels,
three pre-activation residual blocks whose mixer is the model's (a global lambda
layer, a lambda convolution r = 9, a Conv1D k = 5, multi-head attention with 4 heads
of 16), global average pooling and a linear classifier; the GRU reads the sequence
with 100 units. The lambda networks have about 35-38k parameters, the CNN and
attention twice that, so each also comes at the lambda networks' size: attention
with 4 heads of 8 (40k) and the Conv1D k = 3 in two groups (34k).
AdamW, cosine decay from 3e-3, weight decay 1e-4, batch 64, EPOCHS epochs, no
augmentation; test accuracy after the last epoch, SEEDS seeds each. Results are
written after every run, so an interrupted run keeps what finished, and a run again
skips what its record already holds (same epochs).

Published (the mnist1d README): logistic regression 32%, MLP 68%, CNN 94%, GRU 91%,
human 96%; shuffled: logistic 32%, MLP 68%, CNN 56%, GRU 57%.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
# Run as a script, this file's folder comes first on the path, where this file's own
# name would hide the `mnist1d` package it reads the data with.
sys.path = [path for path in sys.path if os.path.abspath(path or ".") != HERE]
EPOCHS = 40
SEEDS = (0, 1, 2)
WIDTH = 64
MODELS = ["lambda-global", "lambda-r9", "attention", "attention-small", "cnn", "cnn-small",
          "gru"]
PUBLISHED = {"regular": {"logistic regression": 32, "MLP": 68, "CNN": 94, "GRU": 91,
                         "human": 96},
             "shuffled": {"logistic regression": 32, "MLP": 68, "CNN": 56, "GRU": 57}}


def data(shuffled):
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.shuffle_seq = shuffled
    d = make_dataset(args)
    return (d["x"][..., None].astype("float32"), d["y"],
            d["x_test"][..., None].astype("float32"), d["y_test"])


def mixer(kind):
    import keras

    from keras_lambda.layers import LambdaLayer

    if kind == "lambda-global":
        return lambda x: LambdaLayer(output_dim=WIDTH, key_dim=16, num_heads=4)(x)
    if kind == "lambda-r9":
        return lambda x: LambdaLayer(output_dim=WIDTH, key_dim=16, num_heads=4, scope=9)(x)
    if kind == "cnn":
        return lambda x: keras.layers.Conv1D(WIDTH, 5, padding="same")(x)
    if kind == "cnn-small":
        return lambda x: keras.layers.Conv1D(WIDTH, 3, padding="same", groups=2)(x)
    if kind == "attention":
        return lambda x: keras.layers.MultiHeadAttention(4, WIDTH // 4)(x, x)
    if kind == "attention-small":
        return lambda x: keras.layers.MultiHeadAttention(4, WIDTH // 8)(x, x)
    raise ValueError(kind)


def build(kind, seed):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((40, 1))
    if kind == "gru":
        outputs = keras.layers.Dense(10)(keras.layers.GRU(100)(inputs))
        return keras.Model(inputs, outputs, name=kind)
    x = keras.layers.Conv1D(WIDTH, 3, padding="same")(inputs)
    for _ in range(3):
        y = keras.layers.Activation("relu")(keras.layers.BatchNormalization()(x))
        y = mixer(kind)(y)
        y = keras.layers.Activation("relu")(keras.layers.BatchNormalization()(y))
        x = keras.layers.Add()([x, keras.layers.Conv1D(WIDTH, 1)(y)])
    x = keras.layers.Activation("relu")(keras.layers.BatchNormalization()(x))
    outputs = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling1D()(x))
    return keras.Model(inputs, outputs, name=kind)


def run(kind, seed, split, epochs):
    import keras

    x, y, x_test, y_test = split
    model = build(kind, seed)
    steps = len(x) // 64 * epochs
    model.compile(
        keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(3e-3, steps),
                               weight_decay=1e-4),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    started = time.time()
    history = model.fit(x, y, batch_size=64, epochs=epochs, verbose=0,
                        validation_data=(x_test, y_test))
    return {"model": kind, "seed": seed, "params": model.count_params(),
            "test_accuracy": float(model.evaluate(x_test, y_test, verbose=0)[1]),
            "curve": [round(v, 4) for v in history.history["val_accuracy"]],
            "seconds": round(time.time() - started, 1)}


def table(record):
    lines = [
        "# MNIST-1D: a lambda network against a CNN, a GRU and attention",
        "",
        f"{record['date']}, {record['machine']}. Reproduce: `{record['command']}`. "
        f"{record['epochs']} epochs, seeds {', '.join(map(str, record['seeds']))}; test accuracy "
        "(%), mean and min-max over seeds. The learning curves (test accuracy after each "
        "epoch) are in mnist1d.json.",
        "",
        "| model | params | MNIST-1D | shuffled |",
        "|---|---:|---:|---:|",
    ]
    for kind in record["models"]:
        cells = []
        for variant in ("regular", "shuffled"):
            runs = [r for r in record["runs"] if r["model"] == kind and r["variant"] == variant]
            if not runs:
                cells.append("not run")
                continue
            accuracy = np.array([r["test_accuracy"] for r in runs]) * 100
            cells.append(f"{accuracy.mean():.1f} ({accuracy.min():.1f}-{accuracy.max():.1f}, "
                         f"{len(runs)} seeds)")
        params = next((f"{r['params']:,}" for r in record["runs"] if r["model"] == kind), "–")
        lines.append(f"| {kind} | {params} | {cells[0]} | {cells[1]} |")
    lines += ["", "The -small models are the CNN and attention at about the lambda networks' "
              "parameter count (attention with 4 heads of 8, the Conv1D k = 3 in two groups)."]
    lines += ["", "Published (mnist1d README): " + "; ".join(
        f"{variant}: " + ", ".join(f"{name} {value}%" for name, value in entries.items())
        for variant, entries in PUBLISHED.items())]
    return lines


def finished_runs(path, epochs):
    """The runs an earlier record at `path` holds, if it trained as many epochs."""
    if not os.path.exists(path):
        return []
    with open(path) as file:
        earlier = json.load(file)
    return earlier["runs"] if earlier.get("epochs") == epochs else []


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--models", nargs="+",
                        default=MODELS, choices=MODELS)
    parser.add_argument("--variants", nargs="+", default=["regular", "shuffled"],
                        choices=["regular", "shuffled"])
    parser.add_argument("--out", default=os.path.join(HERE, "records", "mnist1d"))
    args = parser.parse_args()
    from keras_lambda.bench.runner import machine

    record = {"date": time.strftime("%Y-%m-%d"), "machine": machine(),
              "command": "python benchmarks/mnist1d.py"
              + ("" if args.epochs == EPOCHS else f" --epochs {args.epochs}")
              + ("" if tuple(args.seeds) == SEEDS else " --seeds " + " ".join(map(str, args.seeds))),
              "epochs": args.epochs, "seeds": args.seeds,
              "runs": finished_runs(args.out + ".json", args.epochs)}
    record["models"] = [kind for kind in MODELS if kind in args.models
                        or any(r["model"] == kind for r in record["runs"])]
    for variant in args.variants:
        split = data(variant == "shuffled")
        for seed in args.seeds:
            for kind in args.models:
                if any((r["variant"], r["model"], r["seed"]) == (variant, kind, seed)
                       for r in record["runs"]):
                    continue
                result = {"variant": variant, **run(kind, seed, split, args.epochs)}
                record["runs"].append(result)
                print(f"{variant} {kind} seed {seed}: {result['test_accuracy']:.4f} "
                      f"({result['seconds']} s)", flush=True)
                with open(args.out + ".json", "w") as file:
                    json.dump(record, file, indent=1)
                with open(args.out + ".md", "w") as file:
                    file.write("\n".join(table(record)) + "\n")
    print("\n".join(table(record)))


if __name__ == "__main__":
    main()
