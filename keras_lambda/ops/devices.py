"""Where Keras computes. Some fast paths were raced on CPUs only (no accelerator was
lent to measure them there), so they run on CPUs and leave accelerators as they were;
`implementation="auto"` and the key chunks have a rule per device kind ("cpu", "gpu")."""

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


def kind(inputs=None):
    """"cpu" where Keras computes on CPUs, else "gpu" (any accelerator: the GPU rules,
    fitted on GPUs, are the nearest measured). On PyTorch the device of `inputs` (a
    tensor) decides, or without them CUDA's presence (where Keras places tensors); on
    TensorFlow and JAX their default devices; other backends compute on CPUs."""
    backend = keras.backend.backend()
    if backend == "torch":
        if inputs is not None:
            return "cpu" if computes_on_cpu(inputs) else "gpu"
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    if backend in ("tensorflow", "jax"):
        return "cpu" if _default_devices_are_cpus() else "gpu"
    return "cpu"
