"""The benchmark harness behind `keras-lambda bench`.

Every case (a layer or a model at one size) runs in a fresh Python process
(`runner`), which measures the train step (forward + backward, median of the
repeats after a warm-up call), the inference step and peak memory (`measure`).
Separate processes on a shared machine differ by up to ~15% for the same
kernel, too much to tell near-ties apart; so where `auto`'s pick is not the
fastest by a clear margin, `auto` then races the implementations within reach in
one process, and LambdaResNet-50 races ResNet50 (`policy`). `report` turns the
records into tables, a markdown report and a plot.

    methods   what is measured: method ids parsed once (`Method`), `Case`, `Race`
    measure   in the child process: build, time, peak memory; races
    policy    which cases are skipped, which near-ties race
    runner    in the parent: processes, OOM and timeouts, saving, `benchmark`
    report    ratios, tables, markdown, plot
"""

from keras_lambda.bench.methods import (
    ALL_MODEL_METHODS,
    BASELINE,
    DIMS,
    LAYER_METHODS,
    MODEL_BASELINE,
    MODEL_METHODS,
    QUICK,
    SIZES,
    Case,
    Method,
    Race,
    cases,
)
from keras_lambda.bench.runner import benchmark, run, run_case

__all__ = [
    "ALL_MODEL_METHODS",
    "BASELINE",
    "DIMS",
    "LAYER_METHODS",
    "MODEL_BASELINE",
    "MODEL_METHODS",
    "QUICK",
    "SIZES",
    "Case",
    "Method",
    "Race",
    "benchmark",
    "cases",
    "run",
    "run_case",
]
