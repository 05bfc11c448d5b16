"""Imports TensorFlow for the `keras-lambda` command without its C++ start-up notes.

TensorFlow's native start-up messages (no CUDA driver found, CPU features, and
"failed call to cuInit" when it first looks for GPUs) are written to stderr
before any Python logging setting can stop them. The command
promises one clear line on stderr for bad input, so while it imports TensorFlow
the process's stderr points at /dev/null; Python exceptions still surface after.
Library users (any other program) get TensorFlow's messages unchanged.
"""

import os
import sys


def import_tensorflow():
    if "tensorflow" in sys.modules or not sys.argv:
        return
    if os.path.basename(sys.argv[0]) != "keras-lambda":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow

        tensorflow.config.list_physical_devices("GPU")  # the CUDA probe, answered once
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
