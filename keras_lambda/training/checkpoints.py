"""Epoch checkpoints of a training run, and resuming from the newest one that loads.

`checkpoints/` holds the last `KEEP` epochs, each as `epoch-NNNN.keras` (the model
with its optimizer state) and `epoch-NNNN.json` (the epoch, the best validation
accuracy so far and the run's configuration), both written atomically, the JSON
after the model, so a checkpoint whose JSON exists is complete. `state.json`
names the newest one, for people; resuming never depends on it. A checkpoint
that does not load (a truncated file, a disk error) is skipped with one line,
and the one before it is used.
"""

import os
import re

import keras

from keras_lambda.errors import UsageError
from keras_lambda.files import atomic_write, read_json, write_json
from keras_lambda.training import ema

KEEP = 2  # checkpoints kept: one that fails to load still leaves one to resume from
_NAME = re.compile(r"^epoch-(\d{4,})\.json$")


def _paths(directory, epoch):
    stem = os.path.join(directory, f"epoch-{epoch:04d}")
    return stem + ".keras", stem + ".json"


def saved(directory):
    """The complete checkpoints in `directory`, newest first: their JSON records
    (with "epoch" and "path" of the model file)."""
    if not os.path.isdir(directory):
        return []
    records = []
    for name in os.listdir(directory):
        match = _NAME.match(name)
        if not match:
            continue
        model_path, record_path = _paths(directory, int(match.group(1)))
        record = read_json(record_path)
        if record is None or record.get("epoch") != int(match.group(1)):
            continue
        if os.path.exists(model_path):
            records.append({**record, "path": model_path})
    return sorted(records, key=lambda record: record["epoch"], reverse=True)


def restore(model, directory, report=print):
    """Loads the newest checkpoint of `directory` that loads into `model` (built and
    compiled, its optimizer built): weights and optimizer state. Returns its record,
    or None when there is none. Raises UsageError when checkpoints exist and none loads."""
    records = saved(directory)
    for record in records:
        try:
            model.load_weights(record["path"])
        except Exception as error:  # any failure to read the file: try the one before
            reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
            report(f"checkpoint {record['path']} does not load "
                   f"({type(error).__name__}: {reason}); trying an older one")
            continue
        return record
    if records:
        raise UsageError(
            f"no checkpoint in {directory} loads; move the folder away to start over"
        )
    return None


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch: the model (with optimizer) and its record to `checkpoints/`,
    `state.json`, the best model by validation accuracy to `best.keras` (with the
    moving average of the weights when the optimizer keeps one: what was
    validated); checkpoints older than the last `KEEP` are removed.

    Args:
        output_dir: the run's folder.
        run: what every record carries besides the epoch (the configuration,
            the history of resumes).
        best: the record of the checkpoint resumed from, or None.
    """

    def __init__(self, output_dir, run, best=None):
        super().__init__()
        self.directory = os.path.join(output_dir, "checkpoints")
        self.best_path = os.path.join(output_dir, "best.keras")
        self.run = run
        best = best or {}
        self.best_val_accuracy = best.get("best_val_accuracy", -1.0)
        self.best_epoch = best.get("best_epoch")
        os.makedirs(self.directory, exist_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        epoch += 1  # epochs done
        val_accuracy = float((logs or {}).get("val_accuracy", -1.0))
        if val_accuracy > self.best_val_accuracy:
            self.best_val_accuracy, self.best_epoch = val_accuracy, epoch
            with ema.averaged_weights(self.model):
                atomic_write(self.best_path, self.model.save)
        model_path, record_path = _paths(self.directory, epoch)
        atomic_write(model_path, self.model.save)
        record = {
            "epoch": epoch,
            "val_accuracy": val_accuracy,
            "best_val_accuracy": self.best_val_accuracy,
            "best_epoch": self.best_epoch,
            **self.run,
        }
        write_json(record_path, record)
        kept = [r["epoch"] for r in saved(self.directory)][:KEEP]
        write_json(
            os.path.join(self.directory, "state.json"),
            {"epoch": epoch, "checkpoint": os.path.basename(model_path),
             "best_val_accuracy": self.best_val_accuracy, "best_epoch": self.best_epoch,
             "kept": [os.path.basename(_paths(self.directory, e)[0]) for e in kept]},
        )
        for name in os.listdir(self.directory):
            match = re.match(r"^epoch-(\d{4,})\.", name)  # with leftover temporaries
            if match and int(match.group(1)) not in kept:
                os.remove(os.path.join(self.directory, name))
