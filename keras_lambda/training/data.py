"""Input pipelines that stream: image folders, tensorflow-datasets, the bundled digits.

A loader returns `Data`: its `train` and `test` are `Split`s, which read their
examples as the pipeline needs them (file paths, encoded images or, for the
digits, the arrays themselves) and decode them in parallel. `batched` turns a
split into batches of `(uint8 images [b, s, s, c], int32 labels [b])`.

What keeps memory flat whatever the data set's size (the tf.data guide's
"Better performance" advice and tfds's performance tips):
- images stay uint8 on the host; the model casts them (`include_rescaling`);
- decoded images are cached only when the whole split fits `CACHE_BUDGET_BYTES`
  (the digits, CIFAR-sized tfds sets); folders and large tfds sets stream;
- training shuffles file names (folders) or files and a bounded buffer of
  encoded examples (tfds: `shuffle_files`, interleaved reads), never a buffer
  of decoded images;
- decoding and augmentation are parallel, deterministic under a seed (the
  random crops and flips take stateless seeds from `tf.data.Dataset.random`),
  and the batches are prefetched.

An image file that does not decode is skipped when the pipeline meets it and
recorded (`Data.undecodable()` lists them), never decoded up front.
"""

import dataclasses
import socket
import urllib.parse

import numpy as np

from keras_lambda import _startup
from keras_lambda.training import augment as augment_lib
from keras_lambda.training import folders
from keras_lambda.training.folders import DataError  # noqa: F401  (raised from here too)

tf = _startup.tensorflow_for("keras_lambda.training.data (input pipelines)")

CACHE_BUDGET_BYTES = 1 << 30  # decoded images of a split cached in RAM only below this
SHUFFLE_BUFFER = 10_000  # in-memory examples (cached splits, arrays): shuffled whole below this
TFDS_SHUFFLE_BUFFER = 1_024  # encoded tfds examples after shuffling the files (tfds's advice)
AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass
class Split:
    """One split's examples, read in order `[start, stop)` of the source.

    `read(start, stop, shuffle, seed)` gives a dataset of records (cheap to hold:
    paths, encoded images, small arrays), shuffled when `shuffle` (with a bounded
    buffer where the source is large); `decode(record)` gives `(uint8 image
    [H, W, c], int32 label)`. `cache`: the decoded split fits the memory budget.
    """

    read: callable
    decode: callable
    start: int
    stop: int
    cache: bool = False

    @property
    def size(self):
        return self.stop - self.start

    def take(self, count):
        return dataclasses.replace(self, stop=min(self.stop, self.start + count))

    def skip(self, count):
        return dataclasses.replace(self, start=min(self.stop, self.start + count))

    def images(self, shuffle=False, seed=0):
        """Decoded `(uint8 image, label)` pairs; shuffled (anew each pass) when `shuffle`."""
        if self.cache:  # decode once, then shuffle the decoded images in memory
            dataset = self.read(self.start, self.stop, False, seed)
            dataset = dataset.map(self.decode, num_parallel_calls=AUTOTUNE).cache()
            if shuffle:
                dataset = dataset.shuffle(min(self.size, SHUFFLE_BUFFER), seed=seed)
            return dataset
        dataset = self.read(self.start, self.stop, shuffle, seed)
        return dataset.map(self.decode, num_parallel_calls=AUTOTUNE, deterministic=True)


@dataclasses.dataclass
class Data:
    train: Split
    test: Split  # used once, at the end; `split_validation` makes a validation split
    num_classes: int
    channels: int
    name: str
    flip: bool  # whether horizontal flips keep the label
    small_images: bool = False  # too small for area crops (the 8x8 digits): pad-and-crop
    class_names: list = None
    notes: dict = dataclasses.field(default_factory=dict)  # recorded in summary.json
    undecodable: callable = list  # () -> paths met by the pipeline that did not decode

    @property
    def num_train(self):
        return self.train.size


def _arrays(images, labels):
    """A `Split` over in-memory arrays (uint8 images [N, H, W, c], labels [N])."""

    def read(start, stop, shuffle, seed):
        dataset = tf.data.Dataset.from_tensor_slices((images[start:stop], labels[start:stop]))
        return dataset.shuffle(min(stop - start, SHUFFLE_BUFFER), seed=seed) if shuffle else dataset

    return Split(read, lambda image, label: (image, label), 0, len(labels), cache=True)


def load_digits(seed=0):
    """scikit-learn's 1,797 8x8 handwritten digits (shipped with it), 20% held out."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    images = np.round(digits.images * (255 / 16)).astype("uint8")[..., None]  # [N, 8, 8, 1]
    labels = digits.target.astype("int32")
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.2, random_state=seed, stratify=labels
    )
    return Data(
        train=_arrays(x_train, y_train), test=_arrays(x_test, y_test), num_classes=10,
        channels=1, name="digits", flip=False, small_images=True,
        class_names=[str(digit) for digit in range(10)],
    )


class DecodeRecord:
    """Which files of a folder the pipeline met, and which of them decoded.

    Two boolean variables over the file list, set by the pipeline as it goes
    (a failed decode leaves its file met but not decoded). A file met and not
    decoded is either undecodable or still in flight at the end of a pass, so
    `undecodable()` tries those few again here and lists the ones that fail.
    """

    def __init__(self, paths, channels):
        self.paths = paths
        self.channels = channels
        self.met = tf.Variable(tf.zeros([len(paths)], tf.bool), trainable=False)
        self.decoded = tf.Variable(tf.zeros([len(paths)], tf.bool), trainable=False)

    @staticmethod
    def _mark(variable, index):
        variable.scatter_nd_update(tf.reshape(index, [1, 1]), [True])

    def decode(self, index, path, label):
        self._mark(self.met, index)
        return index, _decode_file(path, self.channels), label

    def mark_decoded(self, index, image, label):
        self._mark(self.decoded, index)
        return image, label

    def undecodable(self):
        pending = np.flatnonzero(self.met.numpy() & ~self.decoded.numpy())
        failed = []
        for index in pending:
            try:
                _decode_file(self.paths[index], self.channels)
            except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
                failed.append(self.paths[index])
        return failed


def _decode_file(path, channels):
    image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
    return tf.ensure_shape(image, (None, None, channels))


def load_folder(path, seed=0, channels=3):
    """An image folder (see `folders`: nested class folders, or `train/` + `val/`)."""
    listed = folders.list_folder(path, seed)
    pairs = listed.train + listed.test
    paths = [p for p, _ in pairs]
    labels = np.array([label for _, label in pairs], "int32")
    record = DecodeRecord(paths, channels)

    def read(start, stop, shuffle, seed):
        indices = np.arange(start, stop)
        dataset = tf.data.Dataset.from_tensor_slices(
            (indices, np.array(paths[start:stop], dtype=object), labels[start:stop])
        )
        if shuffle:  # the file names, not decoded images: the whole list, anew each pass
            dataset = dataset.shuffle(stop - start, seed=seed, reshuffle_each_iteration=True)
        return dataset

    num_train = len(listed.train)

    def split(start, stop):
        return _FolderSplit(read, record.decode, start, stop, record=record)

    return Data(
        train=split(0, num_train), test=split(num_train, len(pairs)),
        num_classes=len(listed.class_names), channels=channels, name=f"folder:{path}",
        flip=True, class_names=listed.class_names,
        notes={"layout": listed.layout, "ignored_files": listed.num_ignored,
               "ignored_examples": listed.ignored},
        undecodable=record.undecodable,
    )


@dataclasses.dataclass
class _FolderSplit(Split):
    """A folder's split: errors skipped after the decode, the decoded files marked."""

    record: DecodeRecord = None

    def images(self, shuffle=False, seed=0):
        dataset = self.read(self.start, self.stop, shuffle, seed)
        dataset = dataset.map(self.decode, num_parallel_calls=AUTOTUNE, deterministic=True)
        return dataset.ignore_errors().map(self.record.mark_decoded)


def load_tfds(spec, data_dir=None, seed=0):
    """`NAME[:SPLIT]` from tensorflow-datasets: SPLIT (default "train") to train on,
    the "test" split (else "validation", else the last 10% of SPLIT) to test on.

    Examples are read encoded (`tfds.decode.SkipDecoding`) and decoded by the
    pipeline after shuffling, so the shuffle buffer holds compressed images."""
    import tensorflow_datasets as tfds

    name, _, split = spec.partition(":")
    split = split or "train"
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises its own DatasetNotFoundError
        raise DataError(f"unknown tensorflow-datasets data set {name!r}: {error}") from None
    if not builder.is_prepared():
        _download(builder, name, data_dir)
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise DataError(f"{name!r} is not an image classification data set (image, label)")
    splits = builder.info.splits
    if splits and split not in splits:
        raise DataError(f"tfds:{name} has no split {split!r}; it has {', '.join(splits)}")
    # A mocked builder (tfds.testing.mock_data) lists no splits: assume "test" and count.
    candidates = [s for s in ("test", "validation") if s in splits] if splits else ["test"]
    test_split = next((s for s in candidates if s != split), None)

    def num_examples_of(split_name):
        if splits:
            return splits[split_name].num_examples
        return _count(builder.as_dataset(split=split_name))

    num_examples = num_examples_of(split)
    train_range, test_range = (split, 0, num_examples), None
    if test_split is None:
        cut = int(num_examples * 0.9)
        train_range, test_range = (split, 0, cut), (split, cut, num_examples)
    else:
        test_range = (test_split, 0, num_examples_of(test_split))
    shape = features["image"].shape
    channels = shape[-1] or 3
    encoded = isinstance(features["image"], tfds.features.Image)

    def reader(split_name):
        def read(start, stop, shuffle, seed):
            dataset = builder.as_dataset(
                split=f"{split_name}[{start}:{stop}]" if splits else split_name,
                as_supervised=True, shuffle_files=shuffle,
                decoders={"image": tfds.decode.SkipDecoding()} if encoded else None,
                read_config=tfds.ReadConfig(shuffle_seed=seed, try_autocache=False),
            )
            if not splits:
                dataset = dataset.skip(start).take(stop - start)
            return dataset.shuffle(TFDS_SHUFFLE_BUFFER, seed=seed) if shuffle else dataset

        return read

    def decode(image, label):
        if encoded:
            image = tf.io.decode_image(image, channels=channels, expand_animations=False)
        image = tf.ensure_shape(tf.cast(image, tf.uint8), (None, None, channels))
        return image, tf.cast(label, tf.int32)

    def split_of(split_name, start, stop):
        fits = None not in shape and (stop - start) * int(np.prod(shape)) <= CACHE_BUDGET_BYTES
        return Split(reader(split_name), decode, start, stop, cache=fits)

    return Data(
        train=split_of(*train_range), test=split_of(*test_range),
        num_classes=features["label"].num_classes, channels=channels, name=f"tfds:{name}",
        flip=True, small_images=None not in shape[:2] and max(shape[:2]) < 16,
        class_names=list(features["label"].names),
    )


def _count(dataset):
    """Examples in a dataset: its cardinality, or a pass over it when unknown."""
    cardinality = int(dataset.cardinality())
    if cardinality >= 0:
        return cardinality
    return int(dataset.reduce(0, lambda count, _: count + 1))


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


def load(dataset="digits", data_dir=None, seed=0):
    """Dispatches `dataset` / `data_dir` to a loader."""
    if data_dir is not None and dataset == "digits":
        return load_folder(data_dir, seed)
    if dataset == "digits":
        return load_digits(seed)
    if dataset.startswith("tfds:") and len(dataset) > 5:
        return load_tfds(dataset[5:], data_dir, seed)
    raise DataError(
        f"unknown `dataset` {dataset!r}: use 'digits', 'tfds:NAME[:SPLIT]', or `data_dir` PATH"
    )


def one_hot(num_classes):
    """(images, labels) → (images, one-hot labels), for categorical cross-entropy."""
    return lambda image, label: (image, tf.one_hot(label, num_classes))


def split_validation(data, fraction):
    """Holds out `fraction` of the training split (at least one example) for
    validation: returns a `Data` that trains on the rest and whose `test` is the
    held-out part, so the real test split stays unseen while models are chosen."""
    num_validation = max(1, int(data.num_train * fraction))
    return dataclasses.replace(
        data, train=data.train.skip(num_validation), test=data.train.take(num_validation)
    )


def batched(data, image_size, batch_size, training, drop_remainder=False, seed=0,
            augmentation=None):
    """Batches of `(uint8 images [b, s, s, c], int32 labels [b])`, s = `image_size`.

    Training (`data.train`): shuffled anew each pass, augmented as `augmentation`
    says (default `augment.Augmentation.for_data(data)`: a random-resized crop
    and a flip, or pad-and-crop for images too small to crop). Evaluation
    (`data.test`): the shorter side resized to s / crop_pct and the centre s x s
    cropped, nothing random. `drop_remainder`: static batch shapes (TPUs)."""
    augmentation = augmentation or augment_lib.Augmentation.for_data(data)
    split = data.train if training else data.test
    images = split.images(shuffle=training, seed=seed)
    if training:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        transform = augment_lib.train_transform(augmentation, image_size, data.channels, data.flip)
        dataset = tf.data.Dataset.zip(images, seeds).map(
            lambda pair, seed_pair: transform(*pair, seed_pair),
            num_parallel_calls=AUTOTUNE, deterministic=True,
        )
    else:
        transform = augment_lib.eval_transform(augmentation, image_size, data.channels)
        dataset = images.map(transform, num_parallel_calls=AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(AUTOTUNE)
