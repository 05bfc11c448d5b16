"""The streaming input pipeline: uint8 images, no whole-set cache of large sources,
determinism under a seed, augmentation in training only, evaluation's centre crop,
undecodable files skipped and recorded as the pipeline meets them."""

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_lambda.training import augment
from keras_lambda.training import data as data_lib
from tests.helpers import run_cli, sample_image, write_image_folder


def pixels(dataset):
    return np.concatenate([images.numpy() for images, _ in dataset])


def test_batches_hold_uint8_images_at_the_image_size():
    digits = data_lib.load_digits()
    for training in (True, False):
        images, labels = next(iter(data_lib.batched(digits, 32, 16, training)))
        assert images.dtype == tf.uint8 and tuple(images.shape) == (16, 32, 32, 1)
        assert labels.dtype == tf.int32
    assert int(pixels(data_lib.batched(digits, 32, 64, False)).max()) == 255


def test_only_small_sources_are_cached_whole(tmp_path):
    write_image_folder(tmp_path, per_class=4)
    assert data_lib.load_digits().train.cache  # 1,437 8x8 images
    assert not data_lib.load_folder(str(tmp_path)).train.cache  # folders stream, any size


def test_training_batches_are_deterministic_under_a_seed_and_reshuffled_each_pass():
    digits = data_lib.load_digits()
    first = data_lib.batched(digits, 32, 64, True, seed=3)
    again = data_lib.batched(digits, 32, 64, True, seed=3)
    other = data_lib.batched(digits, 32, 64, True, seed=4)
    pass_one, pass_two = pixels(first), pixels(first)
    np.testing.assert_array_equal(pass_one, pixels(again))
    assert not np.array_equal(pass_one, pixels(other))
    assert not np.array_equal(pass_one, pass_two)  # a new order and new crops each epoch


def test_augmentation_acts_only_in_training():
    digits = data_lib.load_digits()
    strong = augment.Augmentation(crop="pad", crop_pct=1.0, randaugment=9, mixup=0.4, cutmix=1.0)
    plain = augment.Augmentation(crop="pad", crop_pct=1.0)
    evaluation = pixels(data_lib.batched(digits, 32, 64, False, augmentation=strong))
    np.testing.assert_array_equal(
        evaluation, pixels(data_lib.batched(digits, 32, 64, False, augmentation=plain)))
    # Evaluation is the resize alone: the test images in order, as tf.image resizes them.
    source = np.stack([image.numpy() for image, _ in digits.test.images()])
    resized = tf.image.resize(source.astype("float32"), (32, 32), antialias=True)
    np.testing.assert_array_equal(evaluation, np.clip(np.round(resized), 0, 255).astype("uint8"))
    training = pixels(data_lib.batched(digits, 32, 64, True, augmentation=strong))
    assert training.shape == evaluation.shape[:0] + (digits.num_train, 32, 32, 1)


def test_the_centre_crop_takes_the_middle_of_the_shorter_side_resized():
    image = sample_image()[:256, :384]  # [256, 384, 3]
    crop = augment.center_crop(tf.constant(image, tf.float32), 256, crop_pct=1.0)
    np.testing.assert_allclose(crop.numpy(), image[:, 64:320], atol=1e-3)  # no resize needed
    crop = augment.center_crop(tf.constant(image, tf.float32), 224, crop_pct=0.875)
    assert tuple(crop.shape) == (224, 224, 3)  # 256 / 0.875 = 292: resized, then cropped


def test_random_resized_crops_cover_the_stated_areas_and_aspect_ratios():
    """Channel 0 holds the row, channel 1 the column: a crop's values span its box."""
    rows, columns = np.mgrid[0:256, 0:256].astype("float32")
    image = tf.constant(np.stack([rows, columns, rows * 0], -1))
    areas, ratios = [], []
    for index in range(200):
        crop = augment.random_resized_crop(image, 64, 0.08, tf.constant([index, 7])).numpy()
        height = crop[..., 0].max() - crop[..., 0].min() + 1
        width = crop[..., 1].max() - crop[..., 1].min() + 1
        areas.append(height * width / 256**2)
        ratios.append(width / height)
    assert 0.07 <= min(areas) and max(areas) <= 1.0 and max(areas) > 0.6 and min(areas) < 0.2
    assert 3 / 4 - 0.05 <= min(ratios) and max(ratios) <= 4 / 3 + 0.05


def test_mixup_and_cutmix_give_label_mixtures_that_sum_to_one():
    digits = data_lib.load_digits()
    mixing = augment.Augmentation(crop="pad", crop_pct=1.0, mixup=0.4, cutmix=1.0)
    batches = data_lib.batched(digits, 32, 64, True).map(data_lib.one_hot(10))
    labels = np.concatenate([y.numpy() for _, y in augment.mix_batches(batches, mixing)])
    np.testing.assert_allclose(labels.sum(-1), 1.0, atol=1e-5)
    assert (labels.max(-1) < 0.999).mean() > 0.3  # most examples are mixtures


def test_nested_class_folders_and_any_case_extension_belong_to_their_class(tmp_path):
    write_image_folder(tmp_path, classes=("cat", "dog"), per_class=5)
    owl = tmp_path / "owl" / "2024" / "march"
    owl.mkdir(parents=True)
    for index in range(5):
        (owl / f"{index}.PNG").write_bytes((tmp_path / "cat" / f"{index}.png").read_bytes())
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    data = data_lib.load_folder(str(tmp_path))
    assert data.class_names == ["cat", "dog", "owl"] and data.num_classes == 3
    labels = [int(label) for split in (data.train, data.test) for _, label in split.images()]
    assert sorted(labels) == [0] * 5 + [1] * 5 + [2] * 5
    assert data.notes["ignored_files"] == 1
    assert data.notes["ignored_examples"] == [str(tmp_path / "dog" / "notes.txt")]


def test_an_empty_class_folder_is_an_error_that_names_it(tmp_path):
    write_image_folder(tmp_path, classes=("cat", "dog"), per_class=3)
    (tmp_path / "owl" / "2024").mkdir(parents=True)
    with pytest.raises(data_lib.DataError, match="1 class folder.*hold no image .*owl"):
        data_lib.load_folder(str(tmp_path))


def test_a_train_and_val_layout_is_used_as_given(tmp_path):
    write_image_folder(tmp_path / "train", classes=("cat", "dog"), per_class=6)
    write_image_folder(tmp_path / "val", classes=("cat", "dog"), per_class=2)
    data = data_lib.load_folder(str(tmp_path))
    assert data.class_names == ["cat", "dog"] and data.notes["layout"] == "train/val"
    assert data.num_train == 12 and data.test.size == 4
    write_image_folder(tmp_path / "val", classes=("cow",), per_class=1)
    with pytest.raises(data_lib.DataError, match="has classes that .* lacks: 'cow'"):
        data_lib.load_folder(str(tmp_path))


def test_undecodable_files_are_skipped_when_met_and_recorded(tmp_path):
    write_image_folder(tmp_path, classes=("cat", "dog"), per_class=10)
    broken = [tmp_path / "cat" / "broken.jpg", tmp_path / "dog" / "empty.png"]
    broken[0].write_bytes(b"not an image")
    broken[1].write_bytes(b"")
    data = data_lib.load_folder(str(tmp_path))  # lists files, opens none
    assert data.undecodable() == []
    seen = sum(int(images.shape[0]) for split in ("train", "test")
               for images, _ in data_lib.batched(data, 32, 4, split == "train"))
    assert seen == 20  # every good image, once
    assert sorted(data.undecodable()) == sorted(str(path) for path in broken)


def test_bench_input_pipeline_times_one_pass_and_records_it(tmp_path):
    write_image_folder(tmp_path / "images", classes=("cat", "dog"), per_class=20, size=40)
    for index in range(5):
        (tmp_path / "images" / "dog" / f"broken-{index}.jpg").write_bytes(b"not an image")
    result = run_cli("bench", "--input-pipeline", "--data-dir", str(tmp_path / "images"),
                     "--image-size", "32", "--batch-size", "8", "--randaugment", "5",
                     "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads((tmp_path / "out" / "input-pipeline.json").read_text())
    # 45 files, 9 held out for testing: the pass meets the other 36, some of them broken
    assert figures["train_examples"] == 36 and figures["undecodable_files"] >= 1
    assert figures["images"] + figures["undecodable_files"] == 36
    assert 0 < figures["first_batch_seconds"] <= figures["pass_seconds"]
    assert figures["images_per_second"] > 0 and figures["peak_rss_bytes"] > 2**20
    assert "images/s" in result.stdout and "peak resident memory" in result.stdout
    bad = run_cli("bench", "--input-pipeline", "--image-size", "8",
                  "--output-dir", str(tmp_path / "bad"))
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert "--image-size must be >= 32" in bad.stderr and not (tmp_path / "bad").exists()
