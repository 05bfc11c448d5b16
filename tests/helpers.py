"""Shared by the tests: the installed `keras-lambda` command run as a user would, and data they make."""

import os
import shutil
import subprocess
import sys

import numpy as np

SCRIPT = shutil.which("keras-lambda", path=os.path.dirname(sys.executable))
QUIET = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run_cli(*args, env=None, **kwargs):
    """Runs `keras-lambda ARGS` in a fresh process (environment `env`, else QUIET);
    returns the CompletedProcess (text)."""
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, env=env or QUIET,
                          **kwargs)


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


def numpy(x):
    """A tensor or variable of any backend as numpy (torch's need detaching)."""
    import keras

    return keras.ops.convert_to_numpy(x)


def layer_gradients(layer, inputs, probe, variables, mask=None):
    """Value and gradients of sum(layer(inputs, training=True, mask=mask) · probe)
    with respect to `inputs` and `variables` (some of the layer's trainable ones), as
    numpy, on the backend Keras runs: a GradientTape on TensorFlow, `torch.autograd`
    on PyTorch, `jax.grad` of the layer's `stateless_call` on JAX."""
    import keras

    masked = {} if mask is None else {"mask": mask}

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(inputs)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = tf.reduce_sum(layer(x, training=True, **masked) * probe)
        gradients = tape.gradient(value, [x] + [v.value for v in variables])
    elif backend == "torch":
        import torch

        x = torch.tensor(inputs, requires_grad=True)
        value = (layer(x, training=True, **masked) * torch.tensor(probe)).sum()
        gradients = torch.autograd.grad(value, [x] + [v.value for v in variables])
    else:
        import jax

        trainable = [v.value for v in layer.trainable_variables]
        non_trainable = [v.value for v in layer.non_trainable_variables]

        def objective(x, trainable):
            outputs, _ = layer.stateless_call(trainable, non_trainable, x, training=True,
                                              **masked)
            return (outputs * probe).sum()

        value, (input_gradient, weight_gradients) = jax.value_and_grad(
            objective, argnums=(0, 1))(jax.numpy.asarray(inputs), trainable)
        positions = [next(i for i, w in enumerate(layer.trainable_variables) if w is v)
                     for v in variables]
        gradients = [input_gradient] + [weight_gradients[i] for i in positions]
    return float(numpy(value)), [numpy(g) for g in gradients]


def float64_enabled():
    """A context in which the backend computes float64: JAX's x64 for its duration (JAX
    runs float32 otherwise), nothing on TensorFlow and PyTorch."""
    import contextlib

    import keras

    if keras.backend.backend() != "jax":
        return contextlib.nullcontext()
    import jax

    return jax.enable_x64(True)


def op_gradients(function, arguments, probe):
    """Gradients of sum(function(*arguments) · probe) with respect to every argument
    (numpy arrays), as numpy, on the backend Keras runs."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(a) for a in arguments]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            value = tf.reduce_sum(function(*tensors) * probe)
        gradients = tape.gradient(value, tensors)
    elif backend == "torch":
        import torch

        tensors = [torch.tensor(a, requires_grad=True) for a in arguments]
        value = (function(*tensors) * torch.tensor(probe)).sum()
        gradients = torch.autograd.grad(value, tensors)
    else:
        import jax

        def objective(*tensors):
            return (function(*tensors) * probe).sum()

        gradients = jax.grad(objective, argnums=tuple(range(len(arguments))))(
            *[jax.numpy.asarray(a) for a in arguments])
    return [numpy(g) for g in gradients]


def layer_objective(layer, inputs, probe):
    """sum(layer(inputs, training=True) · probe) as a float, on any backend. The
    inputs keep their dtype (Keras's PyTorch backend would pass numpy float64
    through float32, which a finite difference cannot survive)."""
    import keras

    tensor = keras.ops.convert_to_tensor(inputs, dtype=str(inputs.dtype))
    return float((numpy(layer(tensor, training=True)) * probe).sum())
