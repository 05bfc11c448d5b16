"""Shared by the tests: the installed `keras-lambda` command run as a user would, and data they make."""

import os
import shutil
import subprocess
import sys

import numpy as np

SCRIPT = shutil.which("keras-lambda", path=os.path.dirname(sys.executable))
QUIET = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run_cli(*args, **kwargs):
    """Runs `keras-lambda ARGS` in a fresh process; returns the CompletedProcess (text)."""
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, env=QUIET, **kwargs)


def start_cli(*args, **kwargs):
    """Starts `keras-lambda ARGS` without waiting; returns the Popen."""
    return subprocess.Popen([SCRIPT, *args], env=QUIET, **kwargs)


def write_image_folder(root, classes=("circle", "square"), per_class=12, size=12):
    """PNGs in one sub-folder per class, each class a bright square in its own channel."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            image = (rng.uniform(size=(size, size, 3)) * 60).astype("uint8")
            image[2:10, 2:10, label] = 255
            (root / name / f"{index}.png").write_bytes(tf.io.encode_png(image).numpy())


def random_array(shape, seed=0):
    """float32 samples of N(0, 1)."""
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def fake_result(method, size, train_s, peak_gib, dim=128, status="ok", **extra):
    """A bench record as `keras-lambda bench` writes it, with the given figures."""
    return dict(method=method, size=size, dim=dim, batch=8, repeats=3, status=status,
                train_s=train_s, infer_s=train_s / 3, peak_bytes=int(peak_gib * 2**30),
                process_peak_bytes=int((peak_gib + 0.5) * 2**30), params=1, **extra)


def sample_image():
    """A 300x400 RGB image (uint8) with gradients, a sharp-edged block and noise."""
    rng = np.random.default_rng(0)
    rows, columns = np.mgrid[0:300, 0:400]
    image = np.stack([columns * 255 / 400, rows * 255 / 300, (rows + columns) % 97 * 2.6], -1)
    image[100:180, 150:260] = (250, 20, 40)
    return np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype("uint8")
