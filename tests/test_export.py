"""`keras-lambda export` and `keras_lambda.export.export`: SavedModel, ONNX and TFLite
files that compute what the Keras model computes, in their own runtimes."""

import os

import keras
import numpy as np
import pytest

import keras_lambda  # noqa: F401  (registers the classes the .keras files name)
from keras_lambda.export import FORMATS, check_inputs, export
from keras_lambda.layers import LambdaLayer
from keras_lambda.models import build_preset
from tests.helpers import run_cli

TOLERANCE = 1e-5  # of the largest output, the bar; not read from the code


def run_exported(path, format, inputs):
    """The exported model on `inputs`, in its own runtime, written here from each
    runtime's documented API (not keras_lambda.export's)."""
    import tensorflow as tf

    if format == "saved_model":
        loaded = tf.saved_model.load(path)
        return loaded.signatures["serving_default"](tf.constant(inputs)).popitem()[1].numpy()
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: inputs})[0]
    interpreter = tf.lite.Interpreter(model_path=path)
    source = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(source["index"], inputs.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], inputs)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def assert_exported_agrees(model, path, format):
    for batch in (1, 3):  # batch 3: the batch is dynamic
        inputs = check_inputs(model, batch, seed=10 + batch)
        expected = model.predict(inputs, verbose=0)
        got = run_exported(path, format, inputs)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= TOLERANCE * np.abs(expected).max(), format


def layer_model(scope, implementation, size):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 16))
    outputs = LambdaLayer(key_dim=8, num_heads=4, scope=scope, implementation=implementation,
                          name="lambda")(inputs)
    return keras.Model(inputs, outputs)


def test_the_tiny_model_a_global_layer_at_32_a_r7_convolution_and_26t_in_every_format(tmp_path):
    cases = {
        "tiny": build_preset("tiny", input_shape=(64, 64, 3), classes=5, include_rescaling=True),
        "global32": layer_model(None, "auto", 32),
        "r7": layer_model(7, "auto", 32),
        "lambda_resnet26t": build_preset("lambda_resnet26t", input_shape=(64, 64, 3)),
    }
    for name, model in cases.items():
        for format in FORMATS:
            path = str(tmp_path / f"{name}.{format}")
            report = export(model, path, format)
            assert report.max_difference <= TOLERANCE
            assert_exported_agrees(model, path, format)


KERNELS = [(None, "einsum"), (None, "fft"), (None, "dft"),
           (5, "conv"), (5, "depthwise"), (5, "einsum"), (5, "fft"), (5, "dft")]


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("scope, implementation", KERNELS)
def test_every_kernel_exports_swapping_what_a_format_lacks(tmp_path, format, scope, implementation):
    model = layer_model(scope, implementation, 16)
    path = str(tmp_path / f"layer.{format}")
    report = export(model, path, format)
    lacking = {"saved_model": (), "onnx": ("fft",), "tflite": ("fft", "dft")}[format]
    if implementation in lacking:
        assert report.swaps == [("lambda", implementation, "einsum" if scope is None else "conv")]
    else:
        assert report.swaps == []
    assert model.get_layer("lambda").implementation == implementation  # the model is not changed
    assert_exported_agrees(model, path, format)


def test_onnx_gets_pointwise_convolutions_as_conv_ops(tmp_path):
    """A `PointwiseConv2D` traces a matmul on a CPU; in ONNX it is a Conv node (which ONNX
    Runtime fuses with the batch norm after it), computing what the Keras model does."""
    import onnx

    from keras_lambda.layers import FusedBatchNormalization, PointwiseConv2D

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 16))
    x = PointwiseConv2D(32, use_bias=False, name="pointwise")(inputs)
    outputs = FusedBatchNormalization(name="norm")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("norm").set_weights(
        [np.random.default_rng(n).uniform(0.5, 1.5, 32).astype("float32") for n in range(4)])
    path = str(tmp_path / "pointwise.onnx")
    report = export(model, path, "onnx")
    ops = [node.op_type for node in onnx.load(path).graph.node]
    assert "Conv" in ops and "MatMul" not in ops, ops
    assert report.swaps == [] and report.max_difference <= TOLERANCE
    assert_exported_agrees(model, path, "onnx")
    assert isinstance(model.get_layer("pointwise"), PointwiseConv2D)  # the model unchanged


def test_no_flex_ops_in_a_tflite_file(tmp_path):
    model = build_preset("lambda_resnet26t", input_shape=(64, 64, 3))
    path = tmp_path / "model.tflite"
    export(model, str(path), "tflite", check=False)
    assert b"Flex" not in path.read_bytes()


def test_the_command_writes_reports_swaps_and_checks(tmp_path):
    model = layer_model(None, "fft", 16)
    model.save(tmp_path / "model.keras")
    result = run_cli("export", str(tmp_path / "model.keras"), "--format", "onnx",
                     "--output", str(tmp_path / "out" / "model.onnx"))
    assert result.returncode == 0, result.stderr
    assert "lambda: the fft kernel has no onnx ops; exported with the einsum kernel" in result.stdout
    assert "agrees with Keras within" in result.stdout
    assert_exported_agrees(model, str(tmp_path / "out" / "model.onnx"), "onnx")
    assert [name for name in os.listdir(tmp_path / "out")] == ["model.onnx"]  # no scratch left


@pytest.mark.parametrize("args, message", [
    (["MODEL", "--format", "coreml", "--output", "x"], "unknown --format 'coreml'; choose from "
                                                       "saved_model, onnx, tflite"),
    (["no/such.keras", "--format", "onnx", "--output", "x"], "MODEL 'no/such.keras' is not a file"),
    (["MODEL", "--format", "onnx", "--output", "FILE/x.onnx"], "--output"),
])
def test_bad_arguments_are_one_line(tmp_path, args, message):
    (tmp_path / "model.keras").write_text("")
    (tmp_path / "FILE").write_text("")
    args = [str(tmp_path / "model.keras") if arg == "MODEL" else
            arg.replace("FILE", str(tmp_path / "FILE")) for arg in args]
    result = run_cli("export", *args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"keras-lambda: error: {message}"), result.stderr


def test_the_command_writes_a_saved_model_folder_tf_serving_loads(tmp_path):
    model = build_preset("tiny", input_shape=(32, 32, 3), classes=3, include_rescaling=True)
    model.save(tmp_path / "best.keras")
    result = run_cli("export", str(tmp_path / "best.keras"), "--format", "saved_model",
                     "--output", str(tmp_path / "serving" / "1"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "serving" / "1" / "saved_model.pb").exists()
    assert_exported_agrees(model, str(tmp_path / "serving" / "1"), "saved_model")


def test_the_latency_race_reports_per_round_ratios_with_their_spread():
    from keras_lambda.bench.export_latency import report, summarise

    times = {(model, runtime): list(values) for runtime in ("keras", "onnx", "tflite")
             for model, values in (("resnet50", (0.010, 0.012, 0.011)),
                                   ("lambda_resnet50", (0.008, 0.012, 0.022)),
                                   ("conv_twin50", (0.016, 0.006, 0.033)),
                                   ("lambda_resnet26t", (0.005, 0.006, 0.011)))}
    rows = {(row["runtime"], row["model"]): row for row in summarise(times)}
    row = rows[("onnx", "lambda_resnet50")]
    # per round 10/8, 12/12, 11/22: median 1.0, spread 0.5-1.25
    assert (row["speed_vs_resnet50"], row["speed_min"], row["speed_max"]) == (1.0, 0.5, 1.25)
    assert (row["ms"], row["ms_min"], row["ms_max"]) == (12.0, 8.0, 22.0)
    # against the twin, per round 16/8, 6/12, 33/22: median 1.5, spread 0.5-2.0
    assert (row["speed_vs_twin"], row["twin_min"], row["twin_max"]) == (1.5, 0.5, 2.0)
    assert "speed_vs_twin" not in rows[("onnx", "lambda_resnet26t")]
    assert rows[("keras", "lambda_resnet26t")]["speed_vs_resnet50"] == 2.0
    gmacs = {"resnet50": 3.9, "lambda_resnet50": 4.2, "conv_twin50": 4.4, "lambda_resnet26t": 2.6}
    record = {"image_size": 224, "rounds": 3, "calls_per_round": 10, "cores": 2,
              "rows": summarise(times, gmacs=gmacs)}
    lines = report(record)
    # the multiply-adds predict 3.9 / 4.2 = 0.93x, 3.9 / 2.6 = 1.5x
    assert ("| onnx | lambda_resnet50 | 12.0 (8.0-22.0) | 1.00x (0.50-1.25) "
            "| 1.50x (0.50-2.00) | 4.20 (0.93x) |") in lines
    # per round 10/5, 12/6, 11/11; no twin column
    assert ("| onnx | lambda_resnet26t | 6.0 (5.0-11.0) | 2.00x (1.00-2.00) |  "
            "| 2.60 (1.50x) |") in lines
    # a record from before the multiply-adds were counted still reads
    assert ("| onnx | lambda_resnet26t | 6.0 (5.0-11.0) | 2.00x (1.00-2.00) |  |  |"
            in report({**record, "rows": summarise(times)}))


def test_bench_export_latency_checks_its_arguments_first(tmp_path):
    result = run_cli("bench", "--export-latency", "--race-rounds", "0",
                     "--output-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == "keras-lambda: error: --race-rounds must be >= 1, got 0\n"
