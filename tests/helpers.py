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
