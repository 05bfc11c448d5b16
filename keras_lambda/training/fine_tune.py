"""Fine-tuning: the pretrained backbone frozen for the first epochs, then all of it.

The schedule of Keras's transfer-learning guide: train only the new head while
the backbone is frozen (its batch norms then run in inference mode, keeping the
pretrained statistics), then unfreeze and train everything at the run's
learning-rate schedule. `keras-lambda train --weights W --freeze-backbone-epochs N`.
"""

import keras

HEAD_LAYERS = ("predictions",)  # what trains while the backbone is frozen


def set_backbone_trainable(model, trainable):
    """Every layer but the classifier head trainable or frozen."""
    for layer in model.layers:
        if layer.name not in HEAD_LAYERS and layer.weights:
            layer.trainable = trainable


class FreezeBackbone(keras.callbacks.Callback):
    """Freezes the backbone for epochs [0, `epochs`), unfreezes it after (a
    resumed run takes the state of the epoch it resumes at).

    Keras traces its train step with the trainable variables of the moment, so a
    change makes a new train function; the optimizer keeps its state for every
    variable, built before the first freeze (`run` builds it on all of them).
    Each epoch ends unfrozen, before the checkpoint callbacks save: a saved
    model is trainable throughout and its optimizer matches the checkpoint's."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs
        self.traced_frozen = None  # what the train function was last made for

    def on_epoch_begin(self, epoch, logs=None):
        frozen = epoch < self.epochs
        set_backbone_trainable(self.model, not frozen)
        if frozen != self.traced_frozen and hasattr(self.model, "make_train_function"):
            self.model.make_train_function(force=True)  # the custom loop re-traces itself
        self.traced_frozen = frozen

    def on_epoch_end(self, epoch, logs=None):
        set_backbone_trainable(self.model, True)

    def on_train_end(self, logs=None):
        set_backbone_trainable(self.model, True)
