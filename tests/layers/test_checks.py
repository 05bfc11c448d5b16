"""keras_lambda.layers.checks: each check names the argument, the value and what is allowed."""

import pytest

from keras_lambda.layers import checks


def test_each_check_returns_a_good_value_and_names_a_bad_one():
    assert checks.positive_int("k", 3) == 3
    assert checks.optional_scope(None) is None and checks.optional_scope(7) == 7
    assert checks.one_of("mode", "a", ("a", "b")) == "a"
    assert checks.number_in("momentum", 0.9, 0, 1) == 0.9
    for call, message in (
        (lambda: checks.positive_int("k", True), "`k` must be a positive integer"),
        (lambda: checks.optional_scope(4), "`scope` must be None .* Received: scope=4"),
        (lambda: checks.one_of("mode", "c", ("a", "b")), "`mode` must be one of 'a', 'b'"),
        (lambda: checks.number_in("eps", 0, 0, 1, low_inclusive=False), r"`eps` must be a number in \(0, 1\]"),
        (lambda: checks.number_in("eps", float("inf"), 0, float("inf")), "Received: eps=inf"),
    ):
        with pytest.raises(ValueError, match=message):
            call()
