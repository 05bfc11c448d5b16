"""Where Keras computes. Some fast paths were raced on CPUs only (no accelerator was
lent to measure them there), so they run on CPUs and leave accelerators as they were."""

import functools

import keras


@functools.cache
def _default_devices_are_cpus():
    """Whether Keras computes on CPUs (TensorFlow and JAX: their default devices)."""
    return all(device.startswith("cpu") for device in keras.distribution.list_devices())


def computes_on_cpu(inputs):
    """Whether `inputs` are computed on a CPU (PyTorch: their device; Keras has no
    device list there). False on other backends: not raced there."""
    backend = keras.backend.backend()
    if backend == "torch":
        return getattr(getattr(inputs, "device", None), "type", None) == "cpu"
    return backend in ("tensorflow", "jax") and _default_devices_are_cpus()
