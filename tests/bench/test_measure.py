"""keras_lambda.bench.measure: every method builds and is measured in process."""

import keras
import pytest

from keras_lambda.bench import LAYER_METHODS, Case, measure
from keras_lambda.ops import IMPLEMENTATIONS
from tests.helpers import random_array


@pytest.mark.parametrize(
    "method", ["lambda/global/auto", "lambda/r7/depthwise", "lambda/content", "attention", "paper"]
)
def test_measure_in_process(method):
    result = measure.measure(Case(method, 8, 16, batch=2, repeats=1))
    assert result["status"] == "ok"
    assert result["train_s"] > 0 and result["infer_s"] > 0 and result["params"] > 0
    assert result["peak_bytes"] >= 0 and result["process_peak_bytes"] > 0
    if method == "lambda/global/auto":
        assert result["implementation"] in IMPLEMENTATIONS


def test_every_method_builds():
    for method in LAYER_METHODS:
        layer, shape = measure.build(Case(method, 8, 16, batch=2))
        assert keras.ops.shape(layer(random_array(shape))) == shape


def touched_pages(size):
    """`size` bytes of fresh anonymous memory, every page written: an mmap of its own,
    so the pages are new to the process (a malloc of the same size may reuse pages an
    earlier test freed and the allocator kept, and resident memory would not grow)."""
    import mmap

    import numpy as np

    pages = mmap.mmap(-1, size)
    np.frombuffer(pages, dtype=np.uint8)[:] = 1
    return pages


def test_peak_memory_counts_only_what_runs_after_start():
    """The CPU figure is the growth of resident memory from `start()`: a larger
    peak before it (the bench's build runs the layer eagerly once) is not counted."""
    if not measure.reset_peak_resident():
        pytest.skip("this system cannot restart the peak count (no /proc/self/clear_refs)")
    touched_pages(512 * 2**20).close()  # a peak before start(), given back to the system
    memory = measure.PeakMemory(keras.backend.backend(), "CPU")
    memory.start()
    during = touched_pages(64 * 2**20)
    peak = memory.stop()
    during.close()
    assert 32 * 2**20 <= peak < 256 * 2**20
