"""Input pipelines: bundled digits, tensorflow-datasets, folders of images.

Every loader returns a `Data` with unbatched `tf.data` datasets of
(image float32 [H, W, c] in [0, 1], label int32) and what the model needs to know;
`batched` turns them into training and evaluation pipelines.
"""

import dataclasses
import os
import socket
import urllib.parse

import numpy as np

from keras_lambda import _startup
from keras_lambda.errors import UsageError

tf = _startup.tensorflow_for("keras_lambda.training.data (input pipelines)")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
SHUFFLE_BUFFER = 10_000  # examples; smaller data sets are shuffled whole


class DataError(UsageError):
    """A data set that cannot be used; the message names what is wrong."""


@dataclasses.dataclass
class Data:
    train: tf.data.Dataset
    test: tf.data.Dataset
    num_classes: int
    num_train: int
    channels: int
    name: str
    flip: bool  # whether horizontal flips keep the label


def load_digits(seed=0):
    """scikit-learn's 1,797 8x8 handwritten digits (shipped with it), 20% held out."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    images = (digits.images / 16.0).astype("float32")[..., None]  # [N, 8, 8, 1]
    labels = digits.target.astype("int32")
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.2, random_state=seed, stratify=labels
    )
    return Data(
        train=tf.data.Dataset.from_tensor_slices((x_train, y_train)),
        test=tf.data.Dataset.from_tensor_slices((x_test, y_test)),
        num_classes=10,
        num_train=len(x_train),
        channels=1,
        name="digits",
        flip=False,
    )


def load_tfds(spec, data_dir=None):
    """`NAME[:SPLIT]` from tensorflow-datasets: SPLIT (default "train") to train on,
    the "test" split (else "validation", else the last 10% of SPLIT) to evaluate."""
    import tensorflow_datasets as tfds

    name, _, split = spec.partition(":")
    split = split or "train"
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises its own DatasetNotFoundError
        raise DataError(f"unknown tensorflow-datasets data set {name!r}: {error}") from None
    if not builder.is_prepared():
        _download(builder, name, data_dir)
    splits = set(builder.info.splits.keys())
    # An unprepared or mocked builder lists no splits: assume the usual "test".
    candidates = [s for s in ("test", "validation") if s in splits] or ([] if splits else ["test"])
    test_split = next((s for s in candidates if s != split), None)
    if test_split is None:
        split, test_split = f"{split}[:90%]", f"{split}[90%:]"
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise DataError(f"{name!r} is not an image classification data set (image, label)")

    def convert(image, label):
        return tf.image.convert_image_dtype(image, tf.float32), tf.cast(label, tf.int32)

    train, test = builder.as_dataset(split=[split, test_split], as_supervised=True)
    return Data(
        train=train.map(convert, num_parallel_calls=tf.data.AUTOTUNE),
        test=test.map(convert, num_parallel_calls=tf.data.AUTOTUNE),
        num_classes=features["label"].num_classes,
        num_train=_count(train),
        channels=features["image"].shape[-1] or 3,
        name=f"tfds:{name}",
        flip=True,
    )


DOWNLOAD_PROBE_SECONDS = 5


def _download(builder, name, data_dir):
    """Downloads and prepares a tfds data set; no network (tfds itself retries for
    minutes) or a failed download is a DataError that says how to prepare it."""
    build = f"tfds build {name}" + (f" --data_dir {data_dir}" if data_dir else "")
    advice = (
        f"prepare it on a machine with network access ({build}) and copy the folder "
        "here, then pass it as `data_dir`"
    )
    hosts = sorted({urllib.parse.urlparse(url).hostname for url in (builder.url_infos or {})}
                   - {None})
    for host in hosts:
        try:
            socket.create_connection((host, 443), timeout=DOWNLOAD_PROBE_SECONDS).close()
        except OSError as error:
            raise DataError(
                f"tfds:{name} is not prepared and {host} cannot be reached "
                f"({error.strerror or error}); {advice}"
            ) from None
    try:
        builder.download_and_prepare()
    except Exception as error:  # requests, tfds and file-system errors alike
        reason = (str(error).strip().splitlines() or [""])[0][:200]
        raise DataError(
            f"tfds:{name} could not be downloaded ({type(error).__name__}: {reason}); {advice}"
        ) from None


def _count(dataset):
    """Examples in a dataset: its cardinality, or a pass over it when unknown."""
    cardinality = int(dataset.cardinality())
    if cardinality >= 0:
        return cardinality
    return int(dataset.reduce(0, lambda count, _: count + 1))


def _check_images(paths):
    """Raises DataError naming the first file that does not decode as an image."""
    for path in paths:
        try:
            tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
            raise DataError(f"unreadable image file: {path}") from None


def load_folder(path, seed=0, channels=3):
    """One sub-folder of images per class; a stratified 20% is held out for testing."""
    if not os.path.isdir(path):
        raise DataError(f"`data_dir` {path!r} is not a folder")
    classes = sorted(
        entry for entry in os.listdir(path) if os.path.isdir(os.path.join(path, entry))
    )
    files = {
        name: sorted(
            os.path.join(path, name, file)
            for file in os.listdir(os.path.join(path, name))
            if file.lower().endswith(IMAGE_EXTENSIONS)
        )
        for name in classes
    }
    classes = [name for name in classes if files[name]]
    if not classes:
        raise DataError(f"`data_dir` {path!r} has no class folders with images in them")
    if len(classes) < 2:
        raise DataError(
            f"`data_dir` {path!r} has a single class ({classes[0]!r}); classification "
            "needs at least 2 class folders"
        )
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label, name in enumerate(classes):
        paths = list(files[name])
        _check_images(paths)
        rng.shuffle(paths)
        held_out = max(1, len(paths) // 5) if len(paths) > 1 else 0
        test += [(p, label) for p in paths[:held_out]]
        train += [(p, label) for p in paths[held_out:]]
    # Mixed classes: a validation split takes the first examples of the training split.
    rng.shuffle(train)
    rng.shuffle(test)

    def dataset(pairs):
        paths = [p for p, _ in pairs]
        labels = np.array([label for _, label in pairs], "int32")

        def read(file, label):
            image = tf.io.decode_image(
                tf.io.read_file(file), channels=channels, expand_animations=False
            )
            return tf.image.convert_image_dtype(image, tf.float32), label

        return tf.data.Dataset.from_tensor_slices((paths, labels)).map(
            read, num_parallel_calls=tf.data.AUTOTUNE
        )

    return Data(
        train=dataset(train),
        test=dataset(test or train[:1]),
        num_classes=len(classes),
        num_train=len(train),
        channels=channels,
        name=f"folder:{path}",
        flip=True,
    )


def load(dataset="digits", data_dir=None, seed=0):
    """Dispatches `dataset` / `data_dir` to a loader."""
    if data_dir is not None and dataset == "digits":
        return load_folder(data_dir, seed)
    if dataset == "digits":
        return load_digits(seed)
    if dataset.startswith("tfds:") and len(dataset) > 5:
        return load_tfds(dataset[5:], data_dir)
    raise DataError(
        f"unknown `dataset` {dataset!r}: use 'digits', 'tfds:NAME[:SPLIT]', or `data_dir` PATH"
    )


def one_hot(num_classes):
    """(image, label) → (image, one-hot label), for categorical cross-entropy."""
    return lambda image, label: (image, tf.one_hot(label, num_classes))


def split_validation(data, fraction):
    """Holds out `fraction` of the training split (at least one example) for
    validation: returns a `Data` that trains on the rest and whose `test` is the
    held-out part, so the real test split stays unseen while models are chosen."""
    num_validation = max(1, int(data.num_train * fraction))
    return dataclasses.replace(
        data,
        train=data.train.skip(num_validation),
        test=data.train.take(num_validation),
        num_train=data.num_train - num_validation,
    )


def batched(data, image_size, batch_size, training, drop_remainder=False, seed=0):
    """Resize, augment (training: random 12.5% translation crop, flips where they
    keep the label), batch with static shapes when `drop_remainder`, cache, prefetch."""
    source = data.train if training else data.test

    def resize(image, label):
        image = tf.image.resize(image, (image_size, image_size))
        return tf.ensure_shape(image, (image_size, image_size, data.channels)), label

    dataset = source.map(resize, num_parallel_calls=tf.data.AUTOTUNE).cache()
    if training:
        pad = max(1, image_size // 8)

        def augment(image, label):
            padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
            image = tf.image.random_crop(padded, (image_size, image_size, data.channels))
            if data.flip:
                image = tf.image.random_flip_left_right(image)
            return image, label

        dataset = dataset.shuffle(min(data.num_train, SHUFFLE_BUFFER), seed=seed)
        dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(
        tf.data.AUTOTUNE
    )
