"""Image folders as people keep them: which files belong to which class.

Two layouts, both as `keras.utils.image_dataset_from_directory` reads a folder:

- `DIR/<class>/**/<image>`: one folder per class; images in nested sub-folders
  of a class belong to it (`owl/2024/a.jpg` is an owl). A stratified 20% is
  held out as the test split.
- `DIR/train/<class>/**` beside `DIR/val/<class>/**` (or `validation/`, `test/`),
  as ImageNet is laid out: used as given, `val` as the test split.

Extensions are matched case-insensitively (`.JPG` is a JPEG). Files with other
extensions are counted and listed (the first few), never silently dropped; a
class folder without a single image is an error that names it. Files are
listed, not opened: an undecodable image is found by the input pipeline when it
meets it (see `data`).

Why not `image_dataset_from_directory` itself: it decodes and resizes in its
own pipeline (no random-resized crop before the resize, float32 images on the
host), its validation split is not stratified, and one undecodable file ends
the epoch with an error. Its traversal rules are what this module keeps.
Free of TensorFlow: listing a folder needs none.
"""

import dataclasses
import os

import numpy as np

from keras_lambda.errors import UsageError

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # as image_dataset_from_directory
TRAIN_NAMES = ("train",)
TEST_NAMES = ("val", "validation", "test")
TEST_FRACTION = 0.2  # held out of a one-level folder, per class
LISTED_IGNORED = 20  # files with other extensions named in the summary (all are counted)


class DataError(UsageError):
    """A data set that cannot be used; the message names what is wrong."""


@dataclasses.dataclass
class FolderSplits:
    """The files of an image folder, split for training and testing.

    `train` and `test` are lists of (path, label); labels index `class_names`.
    """

    train: list
    test: list
    class_names: list
    layout: str  # "classes" (held-out test split) or "train/val"
    ignored: list  # files with other extensions (at most LISTED_IGNORED)
    num_ignored: int


def _list_class(folder):
    """(image paths, ignored paths) under `folder`, nested sub-folders included, sorted."""
    images, ignored = [], []
    for root, directories, files in os.walk(folder):
        directories.sort()  # a stable order on every file system
        for name in sorted(files):
            path = os.path.join(root, name)
            (images if name.lower().endswith(IMAGE_EXTENSIONS) else ignored).append(path)
    return images, ignored


def _classes(path):
    if not os.path.isdir(path):
        raise DataError(f"`data_dir` {path!r} is not a folder")
    return sorted(entry for entry in os.listdir(path) if os.path.isdir(os.path.join(path, entry)))


def _list_classes(path, names):
    """{class: image paths} for the class folders `names` of `path`, and the ignored files."""
    files, ignored = {}, []
    for name in names:
        files[name], other = _list_class(os.path.join(path, name))
        ignored += other
    empty = [name for name in names if not files[name]]
    if empty and len(empty) < len(names):
        shown = ", ".join(repr(os.path.join(path, name)) for name in empty[:5])
        raise DataError(
            f"{len(empty)} class folder(s) of `data_dir` hold no image ({shown}); images "
            f"are files ending in {', '.join(IMAGE_EXTENSIONS)} (any case), in the class "
            "folder or below it: add images or remove the folder"
        )
    return files, ignored


def _test_folder(path, classes):
    train = [name for name in classes if name.lower() in TRAIN_NAMES]
    test = [name for name in classes if name.lower() in TEST_NAMES]
    if train and test:
        return train[0], test[0]
    return None


def list_folder(path, seed=0):
    """The `FolderSplits` of the image folder `path`; DataError names what is wrong."""
    classes = _classes(path)
    layout = _test_folder(path, classes)
    if layout:
        train_dir, test_dir = (os.path.join(path, name) for name in layout)
        class_names = _classes(train_dir)
        files, ignored = _list_classes(train_dir, class_names)
        test_classes = _classes(test_dir)
        unknown = sorted(set(test_classes) - set(class_names))
        if unknown:
            raise DataError(
                f"`data_dir` {test_dir!r} has classes that {train_dir!r} lacks: "
                + ", ".join(repr(name) for name in unknown[:5])
            )
        test_files, test_ignored = _list_classes(test_dir, test_classes)
        ignored += test_ignored
        label = {name: index for index, name in enumerate(class_names)}
        train = [(p, label[name]) for name in class_names for p in files[name]]
        test = [(p, label[name]) for name in test_classes for p in test_files[name]]
        _check_classes(train_dir, class_names, files)
        if not test:
            raise DataError(f"`data_dir` {test_dir!r} holds no image")
    else:
        class_names = classes
        files, ignored = _list_classes(path, class_names)
        _check_classes(path, class_names, files)
        rng = np.random.default_rng(seed)
        train, test = [], []
        for label, name in enumerate(class_names):
            paths = list(files[name])
            rng.shuffle(paths)
            held_out = max(1, int(len(paths) * TEST_FRACTION)) if len(paths) > 1 else 0
            test += [(p, label) for p in paths[:held_out]]
            train += [(p, label) for p in paths[held_out:]]
    # Mixed classes: a validation split takes the first examples of the training split.
    rng = np.random.default_rng(seed)
    train = [train[i] for i in rng.permutation(len(train))]
    test = [test[i] for i in rng.permutation(len(test))]
    return FolderSplits(
        train=train, test=test, class_names=class_names,
        layout="train/val" if layout else "classes",
        ignored=ignored[:LISTED_IGNORED], num_ignored=len(ignored),
    )


def _check_classes(path, class_names, files):
    if not class_names or not any(files.values()):
        raise DataError(f"`data_dir` {path!r} has no class folders with images in them")
    if len(class_names) < 2:
        raise DataError(
            f"`data_dir` {path!r} has a single class ({class_names[0]!r}); classification "
            "needs at least 2 class folders"
        )
