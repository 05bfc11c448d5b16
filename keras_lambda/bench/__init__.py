"""The benchmark harness behind `keras-lambda bench`.

Every case (a layer or a model at one size) runs in a fresh Python process
(`runner`), which measures the train step (forward + backward, median of the
repeats after a warm-up call), the inference step and peak memory (`measure`).
Separate processes on a shared machine differ by several per cent for the same
kernel, too much to tell near-ties apart; so where `auto`'s pick is not the
fastest by a clear margin, `auto` then races the implementations within reach in
one process, and LambdaResNet-50 races ResNet50 (`policy`). `report` turns the
records into tables and a markdown report, `figures` into figures.

    methods   what is measured: method ids parsed once (`Method`), `Case`, `Race`
    measure   in the child process: build, time, peak memory; races
    policy    which cases are skipped, which near-ties race
    runner    in the parent: processes, OOM and timeouts, saving, `benchmark`
    report    ratios, tables, markdown
    figures   the headline figure and the implementations figure
    defaults  what a run does unless told otherwise (no Keras: the CLI reads it)
"""

import importlib

_SOURCES = {
    **dict.fromkeys(("ALL_MODEL_METHODS", "BASELINE", "LAYER_METHODS", "MODEL_BASELINE",
                     "Case", "Method", "Race", "cases"), "methods"),
    **dict.fromkeys(("DIMS", "MODEL_METHODS", "QUICK", "SIZES"), "defaults"),
    **dict.fromkeys(("benchmark", "run", "run_case"), "runner"),
}

__all__ = sorted(_SOURCES)


def __getattr__(name):
    # Names are imported on first use: the command line reads `defaults` without Keras.
    if name not in _SOURCES:
        try:  # a submodule: keras_lambda.bench.report, .policy, ...
            return importlib.import_module(f"keras_lambda.bench.{name}")
        except ModuleNotFoundError:
            raise AttributeError(f"module 'keras_lambda.bench' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"keras_lambda.bench.{_SOURCES[name]}"), name)
    globals()[name] = value
    return value
