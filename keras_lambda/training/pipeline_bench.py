"""`keras-lambda bench --input-pipeline`: one pass of the training input pipeline.

Measures what a long run's data feeding costs, without a model: the time from
the start (listing a folder or opening a tfds set included) to the first batch,
images per second over one full pass of the training split (decoding, the
augmentations, batching), per CPU core, and the peak resident memory of the
process. `tfds.benchmark` times a dataset's iteration too, but neither the
listing before it nor the memory, which are what decide whether ImageNet fits.
"""

import dataclasses
import os
import resource
import time

from keras_lambda import _startup
from keras_lambda.training import augment
from keras_lambda.training import data as data_lib

tf = _startup.tensorflow_for("keras_lambda.training.pipeline_bench (input pipeline)")


def peak_rss_bytes():
    """The process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(dataset="digits", data_dir=None, image_size=224, batch_size=64, seed=0,
            started=None, **augmentation):
    """One pass over the training split as `keras-lambda train` feeds it; returns a
    dict of the figures. `augmentation`: `augment.Augmentation` settings."""
    started = time.perf_counter() if started is None else started
    data = data_lib.load(dataset, data_dir, seed)
    settings = augment.Augmentation.for_data(data, **augmentation)
    batches = data_lib.batched(data, image_size, batch_size, True, seed=seed,
                               augmentation=settings).map(data_lib.one_hot(data.num_classes))
    batches = augment.mix_batches(batches, settings, seed).prefetch(tf.data.AUTOTUNE)
    images = 0
    first = None
    for pixels, _ in batches:
        if first is None:
            first = time.perf_counter()
        images += int(pixels.shape[0])
    ended = time.perf_counter()
    seconds = ended - first if first is not None else 0.0
    cores = len(os.sched_getaffinity(0))
    rate = (images - batch_size) / seconds if seconds > 0 else float("nan")  # after the first
    return {
        "dataset": data.name,
        "train_examples": data.num_train,
        "image_size": image_size,
        "batch_size": batch_size,
        "augmentation": dataclasses.asdict(settings),
        "images": images,
        "undecodable_files": len(data.undecodable()),
        "first_batch_seconds": round(first - started, 2) if first is not None else None,
        "pass_seconds": round(ended - started, 1),
        "images_per_second": round(rate, 1),
        "cpu_cores": cores,
        "images_per_second_per_core": round(rate / cores, 1),
        "peak_rss_bytes": peak_rss_bytes(),
    }


def report(figures):
    """The figures as the lines the command prints."""
    return [
        f"{figures['dataset']}: {figures['images']:,} images at {figures['image_size']} px, "
        f"batch {figures['batch_size']}",
        f"first batch after {figures['first_batch_seconds']} s; one pass in "
        f"{figures['pass_seconds']} s",
        f"{figures['images_per_second']:,.0f} images/s ({figures['images_per_second_per_core']:,.0f}"
        f" per core, {figures['cpu_cores']} cores)",
        f"peak resident memory {figures['peak_rss_bytes'] / 2**30:.2f} GiB",
    ]
