"""Where a long run is: images per second and the time left, after every epoch.

Keras's progress bar times the steps of one epoch; a run of 90 epochs on
ImageNet also needs the rate of the whole pipeline (decoding included) and the
time to the end of the run. Both go into the epoch's logs, so TensorBoard
records them (`epoch_images_per_second`, `epoch_seconds_left`), and, with
`verbose`, into one line on stdout.
"""

import sys
import time

import keras


def duration(seconds):
    """`3725` → "1 h 02 min"; under an hour "12 min 05 s"."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {seconds:02d} s"


class Progress(keras.callbacks.Callback):
    """Adds `images_per_second` (training steps only) and `seconds_left` (the
    epochs still to run at the mean duration of this run's epochs, validation
    included) to each epoch's logs, and prints them with `verbose`."""

    def __init__(self, batch_size, steps_per_epoch, epochs, verbose=1):
        super().__init__()
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.epochs = epochs
        self.verbose = verbose
        self.epoch_seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()
        self.trained = None
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1

    def on_test_begin(self, logs=None):
        if getattr(self, "started", None) is not None and self.trained is None:
            self.trained = time.perf_counter() - self.started

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        elapsed = time.perf_counter() - self.started
        self.epoch_seconds.append(elapsed)
        steps = self.steps or self.steps_per_epoch
        rate = steps * self.batch_size / max(self.trained or elapsed, 1e-9)
        left = (self.epochs - epoch - 1) * sum(self.epoch_seconds) / len(self.epoch_seconds)
        logs["images_per_second"] = rate
        logs["seconds_left"] = left
        if self.verbose:
            # verbose 1: Keras's progress bar is still on its line; end it first
            start = "\n" if self.verbose == 1 else ""
            print(f"{start}epoch {epoch + 1}/{self.epochs}: {rate:,.0f} images/s, "
                  f"{duration(elapsed)} an epoch, {duration(left)} left", file=sys.stdout,
                  flush=True)
