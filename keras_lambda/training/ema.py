"""The optimizer's exponential moving average of the weights, in and out of the model.

With `use_ema`, Keras's optimizers keep a moving average of every trainable
variable; `model.fit` puts it into the model at the end (and
`keras.callbacks.SwapEMAWeights` swaps it in for validation). A checkpoint
during training must keep the trained weights and the average apart (a
resumed run continues both), while `best.keras` must hold the average: this
puts the average in for the length of a `with` block.
"""

import contextlib


def optimizer_with_ema(model):
    """The model's optimizer that keeps the average (inside a loss-scale
    optimizer under mixed_float16), or None when it keeps none."""
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    return optimizer if getattr(optimizer, "use_ema", False) else None


@contextlib.contextmanager
def averaged_weights(model):
    """Within the block the model's trainable weights are the moving averages;
    after it, the trained weights again. Nothing happens without an average."""
    optimizer = optimizer_with_ema(model)
    if optimizer is None:
        yield
        return
    # Keras keeps the averages in the order of its variables, as SwapEMAWeights reads them.
    averages = optimizer._model_variables_moving_average
    pairs = [(v, averages[optimizer._get_variable_index(v)]) for v in model.trainable_variables]
    trained = [variable.numpy() for variable, _ in pairs]
    for variable, average in pairs:
        variable.assign(average)
    try:
        yield
    finally:
        for (variable, _), value in zip(pairs, trained):
            variable.assign(value)
