"""Test settings: quiet TensorFlow, the TensorFlow backend unless one is chosen
(`KERAS_BACKEND=jax|torch`), and what each backend cannot run."""

import importlib.util
import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from tests.timm_fixture import timm_reference  # noqa: E402,F401  (a fixture for every folder)


def pytest_collection_modifyitems(config, items):
    """Tests of TensorFlow's own fast paths run on TensorFlow only; the proofs
    against timm need timm (the timm extra). KERAS_LAMBDA_REQUIRE_TIMM=1 (CI) makes
    a missing timm an error instead of a skip: the proof is never skipped there."""
    backend = os.environ["KERAS_BACKEND"]
    has_timm = importlib.util.find_spec("timm") is not None
    for item in items:
        if "tensorflow_only" in item.keywords and backend != "tensorflow":
            item.add_marker(pytest.mark.skip(reason=f"a TensorFlow fast path; backend: {backend}"))
        if "needs_timm" in item.keywords and not has_timm:
            if os.environ.get("KERAS_LAMBDA_REQUIRE_TIMM") == "1":
                raise pytest.UsageError("KERAS_LAMBDA_REQUIRE_TIMM=1 but timm is not installed: "
                                        "pip install -e '.[test,timm]'")
            item.add_marker(pytest.mark.skip(reason="timm is not installed (pip install -e '.[timm]')"))
