"""keras_lambda.ops.auto: `implementation="auto"` picks what the measurements say.

The decisions and the timings behind them are data: benchmarks/records/auto_decisions.json
(and the story of the bounds, benchmarks/records/auto.md).
"""

import json
import pathlib

import keras
import pytest

from keras_lambda.layers import LambdaLayer
from keras_lambda.ops import IMPLEMENTATIONS, choose_implementation, devices, fft_key_chunk
from keras_lambda.ops.auto import RULES, kernel_taps

DECISIONS = json.loads(
    (pathlib.Path(__file__).parents[2] / "benchmarks" / "records" / "auto_decisions.json").read_text()
)["decisions"]


def arguments(layer):
    """choose_implementation's keywords for LambdaLayer arguments (h = 4 default)."""
    heads = layer.get("num_heads", 4)
    return dict(
        scope=layer.get("scope"),
        value_dim=layer["output_dim"] // heads if "output_dim" in layer else None,
        dilation_rate=layer.get("dilation_rate", 1),
        intra_depth=layer.get("intra_depth", 1),
        causal=layer.get("causal", False),
    )


@pytest.mark.parametrize(
    "decision", DECISIONS,
    ids=[f"{d.get('device', 'cpu')}-{d.get('backend', 'tensorflow')}-{d['layer']}-"
         f"{tuple(d['spatial_shape'])}" for d in DECISIONS],
)
def test_auto_follows_the_measured_decisions(decision):
    backend = decision.get("backend", "tensorflow")
    device = decision.get("device", "cpu")
    spatial = tuple(decision["spatial_shape"])
    chosen = choose_implementation(spatial, **arguments(decision["layer"]), backend=backend,
                                   device=device)
    assert chosen == decision["expected"] in IMPLEMENTATIONS
    if backend == keras.backend.backend() and device == devices.kind():  # the layer asks it too
        assert LambdaLayer(**decision["layer"]).position_implementation(spatial) == chosen


def test_a_gpu_takes_the_gpu_rule_on_every_backend():
    """Fitted to the H100 races (benchmarks/records/gpu.md): the FFT where the CPU rules
    run the `dft` (never timed on a GPU), convolutions only for unknown sizes."""
    for backend in ("tensorflow", "jax", "torch", None):
        picks = {size: choose_implementation((size, size), scope=None, value_dim=32,
                                             backend=backend, device="gpu")
                 for size in (16, 32, 64, 128)}
        assert picks == {16: "einsum", 32: "fft", 64: "fft", 128: "fft"}, backend
        assert choose_implementation((64, 64), scope=7, value_dim=32, backend=backend,
                                     device="gpu") == "fft"
        assert choose_implementation((None, None), scope=7, backend=backend,
                                     device="gpu") == "conv"
    assert "dft" not in {choose_implementation((size, size), scope=scope, value_dim=32,
                                               device="gpu")
                         for size in range(4, 200, 4) for scope in (None, 7, 23)}
    with pytest.raises(ValueError, match="`device` must be None, 'cpu' or 'gpu'"):
        choose_implementation((16, 16), scope=None, value_dim=32, device="tpu")


def test_a_gpu_transforms_every_key_channel_at_once_where_a_cpu_chunks():
    """The H100 races ran the FFT unchunked 1.3-1.4x faster at 64x64 and 128x128 (gpu.md)."""
    for lengths in ((128, 128), (256, 256)):  # global 64x64 and 128x128
        assert fft_key_chunk(32, 16, lengths, device="gpu") == 16
    assert fft_key_chunk(32, 16, (256, 256)) == 1 and fft_key_chunk(32, 16, (128, 128)) == 4
    assert fft_key_chunk(32, 16, (1024, 1024), device="gpu") < 16  # a budget still holds


def test_the_device_kind_is_where_keras_computes():
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        expected = "gpu" if torch.cuda.is_available() else "cpu"
    else:
        expected = ("cpu" if all(device.startswith("cpu")
                                 for device in keras.distribution.list_devices()) else "gpu")
    assert devices.kind() == expected
    assert devices.kind(keras.ops.zeros((2,))) == expected


def test_every_backend_has_its_rule_and_the_others_take_tensorflows():
    assert set(RULES) == {"tensorflow", "jax", "torch"}
    for spatial, scope in (((32, 32), 3), ((64, 64), 7), ((32, 32), None), ((None, None), 7)):
        tensorflow = choose_implementation(spatial, scope=scope, value_dim=32, backend="tensorflow")
        for other in (None, "numpy", "openvino"):
            assert choose_implementation(spatial, scope=scope, value_dim=32,
                                         backend=other) == tensorflow
    # Where the races put different kernels ahead (benchmarks/records/auto_backends.md, auto.md):
    picks = {backend: choose_implementation((32, 32), scope=7, value_dim=32, backend=backend)
             for backend in RULES}
    assert picks == {"tensorflow": "dft", "jax": "dft", "torch": "conv"}
    for size, expected in ((16, {"tensorflow": "einsum", "jax": "dft", "torch": "dft"}),
                           (32, {"tensorflow": "dft", "jax": "dft", "torch": "dft"}),
                           (128, {"tensorflow": "fft", "jax": "dft", "torch": "fft"}),
                           (256, {"tensorflow": "fft", "jax": "fft", "torch": "fft"})):
        picks = {backend: choose_implementation((size, size), scope=None, value_dim=32,
                                                backend=backend)
                 for backend in RULES}
        assert picks == expected, size


def test_kernel_taps_count_what_meets_the_input():
    assert kernel_taps((8, 8), scope=None) == ([15, 15], 225)
    assert kernel_taps((8, 8), scope=23) == ([23, 23], 225)  # clipped to the input
    assert kernel_taps((64,), scope=7, causal=True) == ([7], 4)
    assert kernel_taps((64, 64), scope=7, dilation_rate=2) == ([7, 7], 49)


def test_value_dim_is_needed_past_the_convolution_rule():
    assert choose_implementation((32, 32), scope=3, backend="tensorflow") == "depthwise"
    with pytest.raises(ValueError, match="needs value_dim"):
        choose_implementation((32, 32), scope=23)
