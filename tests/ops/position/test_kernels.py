"""Properties every position-lambda kernel has (agreement with the reference
embeddings, translation, locality, causality), through the registry."""

import numpy as np
import pytest

from keras_lambda.ops import position
from tests.helpers import numpy
from tests.ops.position.checks import random, reference_lambdas


KERNELS = sorted(position.KERNELS)


@pytest.mark.parametrize("kernel_name", KERNELS)
@pytest.mark.parametrize("scope", [3, 7])
def test_matches_reference_embeddings(kernel_name, scope):
    values = random((2, 6, 5, 3, 2))
    kernel = random((scope, scope, 4, 2), seed=1)
    lambdas = numpy(position.KERNELS[kernel_name](values, kernel))
    np.testing.assert_allclose(
        lambdas, reference_lambdas(values, kernel, scope), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("kernel_name", KERNELS)
@pytest.mark.parametrize("global_context", [False, True])
def test_translation_equivariance(kernel_name, global_context):
    """Shifting the values shifts the position lambdas: E depends on m − n only."""
    patch = random((1, 3, 4, 2, 1))
    canvas = np.zeros((1, 12, 12, 2, 1), "float32")
    shifted = canvas.copy()
    canvas[:, 2:5, 3:7] = patch
    shifted[:, 6:9, 5:9] = patch  # moved by (4, 2)
    size = 23 if global_context else 5  # 23 = 2·12 − 1 covers every offset
    kernel = random((size, size, 3, 1), seed=2)
    run = position.KERNELS[kernel_name]
    original = numpy(run(canvas, kernel))
    moved = numpy(run(shifted, kernel))
    # Compare where both windows lie inside the canvas.
    np.testing.assert_allclose(moved[:, 4:, 2:], original[:, :8, :10], rtol=1e-5, atol=1e-6)
    assert np.abs(original).max() > 0.1


@pytest.mark.parametrize("kernel_name", KERNELS)
@pytest.mark.parametrize("scope, dilation", [(3, 1), (5, 1), (3, 2)])
def test_position_term_is_local_to_the_scope(kernel_name, scope, dilation):
    values = random((1, 11, 11, 2, 1))
    kernel = random((scope, scope, 3, 1), seed=4)
    run = position.KERNELS[kernel_name]
    before = numpy(run(values, kernel, dilation_rate=dilation))
    values[0, 5, 5] += 10.0
    after = numpy(run(values, kernel, dilation_rate=dilation))
    changed = np.abs(after - before).max(axis=(0, 3, 4)) > 1e-4  # [H, W]
    radius = scope // 2 * dilation
    rows, cols = np.nonzero(changed)
    assert rows.min() == 5 - radius and rows.max() == 5 + radius
    assert cols.min() == 5 - radius and cols.max() == 5 + radius
    # With dilation only every dilation-th offset is in the scope.
    assert np.all((rows - 5) % dilation == 0) and np.all((cols - 5) % dilation == 0)


@pytest.mark.parametrize("kernel_name", KERNELS)
@pytest.mark.parametrize("size", [5, 19])
def test_causal_sequence_sees_only_the_past(kernel_name, size):
    values = random((1, 10, 2, 1))
    kernel = random((size, 3, 1), seed=5)
    run = position.KERNELS[kernel_name]
    before = numpy(run(values, kernel, causal=True))
    values[0, 6] += 10.0
    after = numpy(run(values, kernel, causal=True))
    changed = np.abs(after - before).max(axis=(0, 2, 3)) > 1e-4
    assert not changed[:6].any()
    assert changed[6]
    np.testing.assert_allclose(
        after, reference_lambdas(values, kernel, scope=size, causal=True), rtol=1e-5, atol=1e-5
    )
