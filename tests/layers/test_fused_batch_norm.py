"""keras_lambda.layers.FusedBatchNormalization: Keras's batch norm, its training step one
kernel on TensorFlow and PyTorch on a CPU, against the batch norm written out in numpy."""

import keras
import numpy as np
import pytest

from keras_lambda.layers import FusedBatchNormalization
from keras_lambda.ops.devices import computes_on_cpu
from keras_lambda.ops.normalization import FUSED, fuses_batch_norm
from tests.helpers import layer_gradients, numpy, random_array

EPSILON = 1e-3
FUSED_BY_BACKEND = dict(FUSED)


def reference_training(x, gamma, beta, probe):
    """y = γ·x̂ + β with x̂ = (x − μ) / √(σ² + ε) over every axis but the last, and the
    gradients of Σ y·probe with respect to x, γ and β (the batch norm's textbook ones)."""
    axes = tuple(range(x.ndim - 1))
    mean, variance = x.mean(axes), x.var(axes)
    normalized = (x - mean) / np.sqrt(variance + EPSILON)
    outputs = gamma * normalized + beta
    d_normalized = probe * gamma
    d_x = (d_normalized - d_normalized.mean(axes)
           - normalized * (d_normalized * normalized).mean(axes)) / np.sqrt(variance + EPSILON)
    return outputs, d_x, (probe * normalized).sum(axes), probe.sum(axes), mean, variance


def built_layer(shape, seed, **kwargs):
    layer = FusedBatchNormalization(epsilon=EPSILON, **kwargs)
    layer.build(shape)
    for i, weight in enumerate(layer.weights):
        weight.assign(random_array(weight.shape, seed=seed + i) ** 2 + 0.5)
    return layer


@pytest.mark.parametrize("shape, kwargs", [
    ((3, 4, 5, 6), {}),
    ((3, 4, 5, 6), {"center": False}),
    ((3, 4, 5, 6), {"scale": False}),
    ((4, 7, 6), {}),  # not [b, H, W, c]: Keras's own batch norm
])
def test_training_matches_numpy(shape, kwargs):
    x = random_array(shape, seed=1) * 3 + 1
    probe = random_array(shape, seed=2)
    layer = built_layer(shape, seed=3, **kwargs)
    gamma = numpy(layer.gamma) if layer.scale else np.ones(shape[-1], "float32")
    beta = numpy(layer.beta) if layer.center else np.zeros(shape[-1], "float32")

    value, gradients = layer_gradients(layer, x, probe, layer.trainable_variables)
    outputs, d_x, d_gamma, d_beta, _, _ = reference_training(x, gamma, beta, probe)
    np.testing.assert_allclose(value, (outputs * probe).sum(), rtol=1e-4)
    expected = [d_x] + [d_gamma] * layer.scale + [d_beta] * layer.center
    for got, want in zip(gradients, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_training_moves_the_moving_statistics_with_the_biased_variance():
    x = random_array((4, 3, 5, 6), seed=4) * 2 - 1
    layer = built_layer(x.shape, seed=5, momentum=0.75)
    moving_mean, moving_variance = numpy(layer.moving_mean), numpy(layer.moving_variance)
    layer(x, training=True)
    mean, variance = x.mean((0, 1, 2)), x.var((0, 1, 2))
    np.testing.assert_allclose(numpy(layer.moving_mean), 0.75 * moving_mean + 0.25 * mean,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(numpy(layer.moving_variance),
                               0.75 * moving_variance + 0.25 * variance, rtol=1e-5, atol=1e-6)


def test_inference_uses_the_moving_statistics():
    x = random_array((2, 3, 3, 4), seed=6)
    layer = built_layer(x.shape, seed=7)
    gamma, beta, mean, variance = (numpy(w) for w in layer.weights)
    expected = gamma * (x - mean) / np.sqrt(variance + EPSILON) + beta
    np.testing.assert_allclose(numpy(layer(x, training=False)), expected, rtol=1e-5, atol=1e-5)


def test_training_on_a_cpu_runs_the_backends_kernel(monkeypatch):
    x = keras.ops.convert_to_tensor(random_array((2, 3, 3, 4), seed=8))
    backend = keras.backend.backend()
    if backend not in FUSED:
        # JAX: XLA fuses Keras's batch norm itself, which the tests above check.
        assert not fuses_batch_norm(x)
        return
    if not computes_on_cpu(x):
        pytest.skip("Keras computes on an accelerator here: its own batch norm runs")
    calls = []

    def spy(*arguments):
        calls.append(arguments[0].shape)
        return FUSED_BY_BACKEND[backend](*arguments)

    monkeypatch.setitem(FUSED, backend, spy)
    layer = built_layer(x.shape, seed=9)
    layer(x, training=True)
    layer(x, training=False)
    layer(keras.ops.cast(x, "float16"), training=True)  # computed in float32
    FusedBatchNormalization()(keras.ops.reshape(x, (2, 9, 4)), training=True)  # not 4-D
    assert calls == [(2, 3, 3, 4)] * 2
    assert not fuses_batch_norm(keras.ops.cast(x, "float64"))


def test_mixed_precision_returns_the_policy_dtype():
    x = random_array((2, 4, 4, 8), seed=10) * 4
    layer = FusedBatchNormalization(epsilon=EPSILON, dtype="mixed_float16")
    outputs = layer(keras.ops.cast(x, "float16"), training=True)
    assert keras.backend.standardize_dtype(outputs.dtype) == "float16"
    expected = (x - x.mean((0, 1, 2))) / np.sqrt(x.var((0, 1, 2)) + EPSILON)
    np.testing.assert_allclose(numpy(keras.ops.cast(outputs, "float32")), expected,
                               rtol=0.01, atol=0.01)


def test_a_saved_model_loads_with_its_fused_batch_norm(tmp_path):
    inputs = keras.Input((3, 3, 4))
    model = keras.Model(inputs, FusedBatchNormalization(momentum=0.8, name="norm")(inputs))
    model.get_layer("norm").moving_mean.assign(random_array((4,), seed=11))
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    norm = restored.get_layer("norm")
    assert type(norm) is FusedBatchNormalization and norm.momentum == 0.8
    x = random_array((2, 3, 3, 4), seed=12)
    np.testing.assert_allclose(numpy(restored(x)), numpy(model(x)), rtol=1e-6, atol=1e-6)
