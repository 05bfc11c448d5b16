"""A custom training loop for strategies under which Keras 3's `model.fit` fails.

`model.fit` breaks under `MultiWorkerMirroredStrategy` (keras-team/keras#20585:
`_maybe_symbolic_build` reduces a PerReplica batch). This loop trains the same
compiled model, optimizer and loss, epoch by epoch, and calls the same epoch-end
callbacks, so checkpoints and resume behave as with `fit`.
"""

import sys
import time


from keras_lambda import _startup
from keras_lambda.errors import UsageError
from keras_lambda.training import ema

tf = _startup.tensorflow_for("keras_lambda.training.custom_loop")


def fit(
    model,
    strategy,
    train_ds,
    validation_ds,
    global_batch_size,
    loss,
    epochs,
    initial_epoch=0,
    callbacks=(),
    verbose=1,
    steps_per_epoch=None,
):
    """Trains `model` (built and compiled in `strategy.scope()`) for epochs
    [initial_epoch, epochs); `train_ds` yields global batches with drop_remainder,
    so every worker runs the same number of steps (`steps_per_epoch` of them an
    epoch when given, from a repeated `train_ds`); `validation_ds` gives the
    callbacks their `val_accuracy`, on the moving average of the weights when
    the optimizer keeps one. Returns the last epoch's logs."""
    per_example_loss = loss.__class__.from_config({**loss.get_config(), "reduction": None})
    with strategy.scope():  # its slots exist before the first distributed step
        model.optimizer.build(model.trainable_variables)
    distributed = strategy.experimental_distribute_dataset(train_ds)
    steps_per_epoch = steps_per_epoch or int(train_ds.cardinality())
    if steps_per_epoch < 1:
        raise UsageError("the training set has fewer examples than one global batch")

    def replica_step(images, labels):
        with tf.GradientTape() as tape:
            predictions = model(images, training=True)
            losses = per_example_loss(labels, predictions)
            value = tf.nn.compute_average_loss(losses, global_batch_size=global_batch_size)
        gradients = tape.gradient(value, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        correct = tf.reduce_sum(
            tf.cast(tf.equal(tf.argmax(predictions, -1), tf.argmax(labels, -1)), tf.float32)
        )
        return value, correct

    def make_train_step():
        """A step traced with the trainable variables of now (fine-tuning freezes
        and unfreezes the backbone between epochs: a change traces a new step).
        As Keras's own trainer: no AutoGraph, which would turn Python branches in
        layers and the optimizer into tf.cond across replica contexts."""

        @tf.function(autograph=False)
        def train_step(iterator):
            value, correct = strategy.run(replica_step, args=next(iterator))
            return (
                strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None),
                strategy.reduce(tf.distribute.ReduceOp.SUM, correct, axis=None),
            )

        return train_step

    traced_for, train_step = None, None
    statistics = list(model.non_trainable_variables)

    @tf.function(autograph=False)
    def synchronise_statistics():
        """Batch-norm moving statistics are updated from each replica's own batches;
        average them so that every worker ends each epoch with identical weights."""
        def replica_means():
            context = tf.distribute.get_replica_context()
            return context.all_reduce(
                tf.distribute.ReduceOp.MEAN, [tf.identity(v.value) for v in statistics]
            )

        means = strategy.experimental_local_results(strategy.run(replica_means))[0]
        for index, variable in enumerate(statistics):
            variable.assign(means[index])

    for callback in callbacks:
        callback.set_model(model)
    logs = {}
    endless = iter(distributed) if train_ds.cardinality() == tf.data.INFINITE_CARDINALITY else None
    for epoch in range(initial_epoch, epochs):
        for callback in callbacks:
            callback.on_epoch_begin(epoch)
        trainable = [id(variable) for variable in model.trainable_variables]
        if trainable != traced_for:
            traced_for, train_step = trainable, make_train_step()
        started, total_loss, total_correct, steps = time.time(), 0.0, 0.0, 0
        iterator = endless or iter(distributed)
        for _ in range(steps_per_epoch):
            value, correct = train_step(iterator)
            total_loss += float(value)
            total_correct += float(correct)
            steps += 1
            for callback in callbacks:
                callback.on_train_batch_end(steps - 1)
        if statistics:
            synchronise_statistics()
        for callback in callbacks:
            callback.on_test_begin()
        with ema.averaged_weights(model):
            val_accuracy = accuracy(model, validation_ds)
        logs = {
            "loss": total_loss / max(steps, 1),
            "accuracy": total_correct / max(steps * global_batch_size, 1),
            "val_accuracy": val_accuracy,
        }
        if verbose:
            print(
                f"Epoch {epoch + 1}/{epochs} - {steps} steps - {time.time() - started:.0f}s - "
                + " - ".join(f"{key}: {value:.4f}" for key, value in logs.items()),
                file=sys.stdout,
                flush=True,
            )
        for callback in callbacks:
            callback.on_epoch_end(epoch, logs)
    for callback in callbacks:
        callback.on_train_end(logs)
    if ema.optimizer_with_ema(model):  # as model.fit ends: the average becomes the weights
        model.optimizer.finalize_variable_values(model.trainable_variables)
    return logs


def accuracy(model, dataset):
    """Top-1 accuracy of `model` on (images, one-hot labels), computed locally on
    each worker (they hold the same weights), outside the distributed step."""
    predict = tf.function(lambda images: model(images, training=False), autograph=False)
    correct = total = 0
    for images, labels in dataset:
        predictions = predict(images)
        correct += int(tf.reduce_sum(tf.cast(
            tf.equal(tf.argmax(predictions, -1), tf.argmax(labels, -1)), tf.int32)))
        total += int(labels.shape[0])
    return correct / max(total, 1)
