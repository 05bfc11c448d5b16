"""The `einsum` kernel's position term in either order, and how the order is chosen."""

import pytest

from keras_lambda.ops.position import einsum
from tests.ops.position.checks import GEOMETRIES, check_position_output


@pytest.mark.parametrize("values_shape, kernel_shape, dilation, causal", GEOMETRIES)
@pytest.mark.parametrize("queries_first", [False, True], ids=["lambdas-first", "queries-first"])
def test_einsum_position_output_in_either_order(values_shape, kernel_shape, dilation, causal,
                                                queries_first):
    def run(q, v, t):
        return einsum.einsum_position_output(q, v, t, dilation, causal,
                                             queries_first=queries_first)

    check_position_output(run, values_shape, kernel_shape, dilation, causal)


def test_einsum_order_follows_flops_and_the_weights_size():
    """Queries first where h·(k + v) < k·v and the weights [b, n, h, m] are within the
    backend's bound times the lambdas [b, n, k, v]; never for an unknown n, nor on a
    backend without a bound."""
    bounds = einsum.QUERIES_FIRST_WEIGHTS_PER_LAMBDA
    for backend, bound in bounds.items():
        most = int(bound * 16 * 32) // 4  # the largest n with h·n <= bound·k·v
        assert einsum.einsum_queries_first(4, 16, 32, most, backend)
        assert not einsum.einsum_queries_first(4, 16, 32, most + 1, backend)
        assert not einsum.einsum_queries_first(4, 16, 4, 8, backend)  # 80 > 64 flops
        assert not einsum.einsum_queries_first(4, 16, 32, None, backend)
    assert not einsum.einsum_queries_first(4, 16, 32, 16, "numpy")  # no bound
