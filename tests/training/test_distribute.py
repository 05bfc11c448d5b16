"""keras_lambda.training.distribute: strategies by name and which worker writes where."""

import pytest
import tensorflow as tf

from keras_lambda.training import distribute
from keras_lambda.errors import UsageError


def test_the_default_strategy_on_one_machine_is_the_chief_writing_into_the_output_dir():
    strategy = distribute.make_strategy("default")
    assert strategy is tf.distribute.get_strategy()
    assert distribute.is_chief(strategy)
    assert distribute.worker_dir("runs/x", strategy) == "runs/x"
    assert not distribute.needs_static_shapes(strategy)
    assert not distribute.uses_custom_loop(strategy)
    assert distribute.make_strategy("auto").num_replicas_in_sync == 1  # no GPUs here


def test_a_tpu_strategy_without_a_tpu_is_a_usage_error(monkeypatch):
    def no_tpu(*args, **kwargs):
        raise ValueError("Please provide a TPU Name to connect to.")

    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", no_tpu)
    with pytest.raises(UsageError, match="`strategy` 'tpu': no TPU found"):
        distribute.make_strategy("tpu")
