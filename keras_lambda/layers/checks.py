"""Argument checks shared by the layers: each raises ValueError naming the argument."""

import math


def positive_int(name, value):
    """Returns value if it is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"`{name}` must be a positive integer (>= 1). Received: {name}={value!r}"
        )
    return value


def optional_scope(value):
    """Returns the scope r: None (global context) or an odd int >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value % 2 == 0:
        raise ValueError(
            "`scope` must be None (global context) or an odd integer >= 1 "
            f"(the side of the local context, e.g. 3, 7, 23). Received: scope={value!r}"
        )
    return value


def one_of(name, value, allowed):
    """Returns value if it is one of `allowed`."""
    if value not in allowed:
        choices = ", ".join(repr(choice) for choice in allowed)
        raise ValueError(
            f"`{name}` must be one of {choices}. Received: {name}={value!r}"
        )
    return value


def number_in(name, value, low, high, low_inclusive=True, high_inclusive=True):
    """Returns value if it is a finite real number inside the interval."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (
        number
        and math.isfinite(value)
        and (value >= low if low_inclusive else value > low)
        and (value <= high if high_inclusive else value < high)
    ):
        interval = (
            ("[" if low_inclusive else "(") + f"{low:g}, {high:g}" + ("]" if high_inclusive else ")")
        )
        raise ValueError(
            f"`{name}` must be a number in {interval}. Received: {name}={value!r}"
        )
    return value
