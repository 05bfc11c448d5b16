"""What the `keras-lambda` command does differently from a library import.

The command imports nothing heavy until a command needs it (`--help` and bad
arguments answer at once), and it imports TensorFlow without TensorFlow's native
start-up notes (no CUDA driver found, CPU features, "failed call to cuInit" when
it first looks for GPUs), which are written to stderr before any Python logging
setting can stop them: the command promises one clear line on stderr for bad
input and a clean run. Library users (any other program) get both unchanged.
"""

import json
import os
import sys


# TensorFlow is an extra of the package (setup.cfg): what every "TensorFlow is missing" says.
INSTALL_TENSORFLOW = ("install the package's `cpu` extra (`pip install -e \".[cpu]\"`) "
                      "or `gpu` (CUDA)")


def running_the_command():
    """True in the `keras-lambda` console script's process."""
    return bool(sys.argv) and os.path.basename(sys.argv[0]) == "keras-lambda"


def import_tensorflow():
    """Imports TensorFlow with stderr pointed at /dev/null (in the command only;
    elsewhere plainly). ModuleNotFoundError when it is not installed."""
    if "tensorflow" in sys.modules:
        return
    if not running_the_command():
        import tensorflow  # noqa: F401

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


def keras_backend():
    """The backend Keras will load, read as Keras reads it (KERAS_BACKEND, else
    keras.json in KERAS_HOME or ~/.keras), without importing Keras."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    try:
        with open(os.path.join(home, "keras.json")) as file:
            return json.load(file).get("backend", "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


def import_keras():
    """Imports Keras for the command (on TensorFlow, through a quiet TensorFlow)."""
    if keras_backend() == "tensorflow":
        import_tensorflow()
    import keras  # noqa: F401


def tensorflow_for(purpose):
    """TensorFlow, or an ImportError that says what needs it and how to get it."""
    try:
        import tensorflow
    except ModuleNotFoundError:
        raise ImportError(
            f"{purpose} needs TensorFlow (tf.data, tf.distribute), which this environment "
            f"lacks: {INSTALL_TENSORFLOW}. Layers, ops, models and "
            "`keras-lambda bench` run on any Keras backend without it."
        ) from None
    return tensorflow
