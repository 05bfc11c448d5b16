"""A trained model to where it will run: TF Serving (SavedModel), ONNX Runtime, LiteRT.

```python
from keras_lambda.export import export
report = export("runs/photos/best.keras", "photos.tflite", format="tflite")
report.swaps            # [("c4_block1_lambda", "fft", "einsum")]: kernels the format lacks
report.max_difference   # of the exported model's outputs from Keras's, batch 1 and 2
```

Keras's own exporters do the work: `model.export(format="tf_saved_model")` (a
`serve` signature with a dynamic batch, as TF Serving loads it),
`model.export(format="onnx")` (tf2onnx on TensorFlow), and TensorFlow's
`TFLiteConverter` on that SavedModel, builtin ops only (no Flex / Select-TF).

Where a format has no op for a layer's position kernel (the FFT: `RFFT2D` is
no ONNX op; LiteRT has no complex `Conj`/`Unpack`, and the real-DFT kernel's
shapes overflow its allocator with a dynamic batch), that layer's kernel is
swapped in a copy of the model for one the format runs: `einsum` for global
layers, `conv` for lambda convolutions. Every kernel computes the same function
from the same weights (the layer tests prove each against the paper's formula),
so nothing else changes. For ONNX, 1x1 convolutions also export as `Conv2D`s
(`POINTWISE_AS_CONVOLUTION`). Each export is then run in its runtime at batch 1
and 2 and compared with the original Keras model: it must agree within
`TOLERANCE` of the largest output.
"""

import dataclasses
import os
import shutil
import tempfile

import numpy as np

from keras_lambda.errors import FaultError, UsageError

FORMATS = ("saved_model", "onnx", "tflite")
UNSUPPORTED_KERNELS = {"saved_model": (), "onnx": ("fft",), "tflite": ("fft", "dft")}
PORTABLE_KERNEL = {"global": "einsum", "local": "conv"}
TOLERANCE = 1e-5  # of the largest |output|
CHECK_SIZE = 64  # the spatial size of check inputs where the model takes any


@dataclasses.dataclass
class ExportReport:
    """What `export` wrote: `swaps` as (layer, kernel, kernel exported);
    `max_difference` of the exported outputs from Keras's (relative to the
    largest output), None when not checked.

    Example:
    ```python
    import keras
    from keras_lambda.export import export
    from keras_lambda.layers import LambdaLayer

    inputs = keras.Input((16, 16, 8))
    model = keras.Model(inputs, LambdaLayer(implementation="fft")(inputs))
    report = export(model, "model.tflite", "tflite")
    print(report.swaps)       # the FFT layer exported with a kernel TFLite has ops for
    ```
    """

    path: str
    format: str
    swaps: list
    max_difference: float = None


def _lambda_layers(model):
    from keras_lambda.layers import LambdaLayer

    return [layer for layer in model.layers if isinstance(layer, LambdaLayer)]


def kernel_swaps(model, format):
    """[(layer name, kernel it runs, kernel `format` runs instead)] for `model`."""
    swaps = []
    for layer in _lambda_layers(model):
        if layer.position is None:
            continue
        kernel = layer.position_implementation(tuple(layer.input.shape[1:-1]))
        if kernel in UNSUPPORTED_KERNELS[format]:
            portable = PORTABLE_KERNEL["global" if layer.scope is None else "local"]
            swaps.append((layer.name, kernel, portable))
    return swaps


# Formats whose 1x1 convolutions export as convolutions: `PointwiseConv2D` traces a
# matmul on a CPU (a faster training step), which keeps ONNX Runtime from folding the
# batch norm after it into the convolution; as a `Conv2D` (the same weights) LambdaResNet-50
# runs faster there (benchmarks/records/export-latency.md against
# benchmarks/history/export-latency-pointwise-matmuls.md).
POINTWISE_AS_CONVOLUTION = ("onnx",)


def _pointwise_layers(config):
    return [layer for layer in config.get("layers", [])
            if layer["class_name"] == "PointwiseConv2D"]


def portable_copy(model, swaps, format=None):
    """`model` rebuilt with the swapped kernels (and, for `POINTWISE_AS_CONVOLUTION`,
    its `PointwiseConv2D`s as `keras.layers.Conv2D`) and the same weights (the model
    itself is not changed)."""
    if not swaps and format not in POINTWISE_AS_CONVOLUTION:
        return model  # nothing to change: no configuration needed
    config = model.get_config()
    pointwise = (_pointwise_layers(config) if format in POINTWISE_AS_CONVOLUTION else [])
    if not swaps and not pointwise:
        return model
    new_kernel = {name: portable for name, _, portable in swaps}
    for layer in config["layers"]:
        if layer["config"].get("name") in new_kernel:
            layer["config"]["implementation"] = new_kernel[layer["config"]["name"]]
    for layer in pointwise:  # the same configuration and weights: a Conv2D's
        layer.update(module="keras.layers", class_name="Conv2D", registered_name=None)
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def check_inputs(model, batch, seed=0):
    """Random inputs for `model` at `batch`: pixel values 0..255 when the model
    scales them itself (its `rescaling` layer), else N(0, 1)."""
    shape = (batch,) + tuple(size or CHECK_SIZE for size in model.input_shape[1:])
    rng = np.random.default_rng(seed)
    if any(layer.name == "rescaling" for layer in model.layers):
        return rng.uniform(0, 255, shape).astype("float32")
    return rng.normal(size=shape).astype("float32")


def _run_saved_model(path):
    from keras_lambda import _startup

    tf = _startup.tensorflow_for("keras_lambda.export")
    loaded = tf.saved_model.load(path)  # kept: its variables live as long as it does
    return lambda x: np.asarray(loaded.serve(tf.constant(x)))


def _run_onnx(path, spinning=True):
    """A batch callable of the ONNX file; `spinning=False`: the session's threads sleep
    between calls instead of spin-waiting (for races beside other runtimes)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def _run_tflite(path, threads=None):
    from keras_lambda import _startup

    tf = _startup.tensorflow_for("keras_lambda.export")
    interpreter = tf.lite.Interpreter(model_path=path, num_threads=threads)
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    allocated = []  # the input shape the tensors are allocated for

    def run(x):
        if allocated != [x.shape]:  # resizing re-plans the whole graph: only on a new shape
            interpreter.resize_tensor_input(source["index"], x.shape)
            interpreter.allocate_tensors()
            allocated[:] = [x.shape]
        interpreter.set_tensor(source["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(target["index"])

    return run


RUNTIMES = {"saved_model": _run_saved_model, "onnx": _run_onnx, "tflite": _run_tflite}


def max_difference(model, path, format):
    """max |exported − Keras| / max |Keras| over batches of 1 and 2 (a dynamic batch)."""
    run = RUNTIMES[format](path)
    worst = 0.0
    for batch in (1, 2):
        inputs = check_inputs(model, batch, seed=batch)
        expected = np.asarray(model.predict(inputs, verbose=0), np.float64)
        got = np.asarray(run(inputs), np.float64)
        if got.shape != expected.shape:
            raise FaultError(f"the exported {format} model returned shape {got.shape} for "
                             f"batch {batch}, Keras {expected.shape}")
        worst = max(worst, float(np.abs(got - expected).max() / np.abs(expected).max()))
    return worst


def _write(model, path, format, scratch):
    """Writes the format into `scratch`; returns the written file or folder there."""
    if format == "saved_model":
        target = os.path.join(scratch, "saved_model")
        model.export(target, format="tf_saved_model", verbose=False)
        return target
    if format == "onnx":
        target = os.path.join(scratch, "model.onnx")
        model.export(target, format="onnx", verbose=False)
        return target
    from keras_lambda import _startup

    tf = _startup.tensorflow_for("keras_lambda.export")
    saved = os.path.join(scratch, "saved_model")
    model.export(saved, format="tf_saved_model", verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(saved)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex ops
    target = os.path.join(scratch, "model.tflite")
    with open(target, "wb") as file:
        file.write(converter.convert())
    return target


def export(model, path, format="saved_model", check=True):
    """Exports `model` (a `keras.Model` or a `.keras` path) to `path`.

    Args:
        format: "saved_model" (a folder), "onnx" or "tflite" (a file).
        check: run the export in its runtime and compare it with Keras (see
            the module's docstring); a disagreement raises FaultError.
    Returns:
        `ExportReport`. The file or folder appears at `path` only when complete.

    Example:
    ```python
    import keras
    from keras_lambda.export import export
    from keras_lambda.layers import LambdaLayer

    inputs = keras.Input((16, 16, 8))
    model = keras.Model(inputs, LambdaLayer(scope=3)(inputs))
    report = export(model, "exported/1", "saved_model")   # checked against Keras at batch 1 and 2
    print(report)
    ```
    """
    if format not in FORMATS:
        raise UsageError(f"unknown `format` {format!r}; choose from {', '.join(FORMATS)}")
    from keras_lambda.prediction import load

    model, _ = load(model)
    swaps = kernel_swaps(model, format)
    portable = portable_copy(model, swaps, format)
    portable(check_inputs(portable, 1))  # Keras's ONNX export takes models that have been called
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix=".export-") as scratch:
        written = _write(portable, path, format, scratch)
        difference = max_difference(model, written, format) if check else None
        if difference is not None and difference > TOLERANCE:
            raise FaultError(
                f"the exported {format} model differs from Keras by {difference:.2e} of the "
                f"largest output (allowed {TOLERANCE:g}); nothing was written to {path}")
        if os.path.isdir(path) and format == "saved_model":
            shutil.rmtree(path)
        os.replace(written, path)
    return ExportReport(path, format, swaps, difference)
