"""Image transforms of the input pipeline: training augmentation and evaluation crops.

Training, per image: an Inception-style random-resized crop (a random area of
`crop_scale`..100% of the image, aspect ratio 3/4..4/3, resized to s x s) or,
for images too small for area crops (the 8x8 digits), a random 12.5% translation
(pad-and-crop); a random horizontal flip where flips keep the label;
RandAugment (`keras.layers.RandAugment`). Per batch: MixUp and CutMix
(`keras.layers.MixUp`, `keras.layers.CutMix`, one of them a batch when both are on).

Evaluation: the shorter side resized to floor(s / crop_pct), the centre s x s
cropped (timm's and keras-hub's evaluation transform); nothing random.

Images enter and leave as uint8 (values 0..255). The crops and flips take
stateless seeds, so a pipeline is deterministic under its seed however many
threads decode; Keras's RandAugment, MixUp and CutMix draw from their own seed
generators, which parallel calls share (reproducible in distribution, not bit
for bit). Keras has no random-resized crop layer: `tf.image`'s
`stateless_sample_distorted_bounding_box` is the Inception crop it was made for.
"""

import dataclasses
import math

import keras

from keras_lambda import _startup

tf = _startup.tensorflow_for("keras_lambda.training.augment (input pipelines)")

CROPS = ("inception", "pad")
ASPECT_RATIOS = (3 / 4, 4 / 3)  # of the random-resized crop (Inception, timm)
RANDAUGMENT_OPS = 2  # operations per image (RandAugment's N, as ResNet-RS uses it)
RANDAUGMENT_MAX_MAGNITUDE = 10  # the magnitude scale of TensorFlow's reference RandAugment


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """What the training pipeline does to images, and how evaluation crops them.

    Args:
        crop: "inception" (random-resized crop) or "pad" (random translation by
            up to 1/8 of the side, for tiny images).
        crop_scale: the smallest area of the random-resized crop, a fraction.
        crop_pct: evaluation's centre crop, a fraction of the resized image.
        randaugment: RandAugment's magnitude on a 0..10 scale (None: off);
            Keras's `factor` is magnitude / 10.
        mixup: MixUp's alpha (0: off). cutmix: CutMix's alpha (0: off).
    """

    crop: str = "inception"
    crop_scale: float = 0.08
    crop_pct: float = 0.875
    randaugment: float = None
    mixup: float = 0.0
    cutmix: float = 0.0

    @classmethod
    def for_data(cls, data, **settings):
        """The defaults for `data`: pad-and-crop without a centre crop for tiny
        images, else an Inception crop and crop_pct 0.875; `settings` (None
        values ignored) override them."""
        defaults = dict(crop="pad", crop_pct=1.0) if data.small_images else {}
        chosen = {key: value for key, value in settings.items() if value is not None}
        return cls(**{**defaults, **chosen})

    @property
    def mixes(self):
        return bool(self.mixup or self.cutmix)


def to_uint8(image):
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def _resize(image, size):
    return tf.image.resize(image, size, method="bilinear", antialias=True)


def random_resized_crop(image, size, crop_scale, seed):
    """A random area `crop_scale`..1 of `image` [H, W, c], aspect 3/4..4/3, resized
    to [size, size, c] (float32); the whole image when no such box is found."""
    begin, extent, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=ASPECT_RATIOS,
        area_range=(crop_scale, 1.0),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    return _resize(tf.slice(image, begin, extent), (size, size))


def center_crop(image, size, crop_pct):
    """`image` [H, W, c] with its shorter side resized to floor(size / crop_pct)
    and the centre [size, size, c] cropped (float32), as timm evaluates."""
    short = math.floor(size / crop_pct)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = short / tf.reduce_min(shape)
    resized = tf.maximum(tf.cast(shape * scale, tf.int32), short)  # int(): as timm's Resize
    image = _resize(image, resized)
    top = tf.cast(tf.round(tf.cast(resized[0] - size, tf.float32) / 2), tf.int32)
    left = tf.cast(tf.round(tf.cast(resized[1] - size, tf.float32) / 2), tf.int32)
    return tf.slice(image, tf.stack([top, left, 0]), tf.stack([size, size, -1]))


def pad_and_crop(image, size, seed):
    """`image` resized to [size, size, c], then moved by up to size / 8 pixels
    (zero padding, a random crop)."""
    image = _resize(image, (size, size))
    pad = max(1, size // 8)
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
    channels = tf.shape(image)[-1]
    return tf.image.stateless_random_crop(padded, tf.stack([size, size, channels]), seed)


def train_transform(augmentation, size, channels, flip):
    """(uint8 image [H, W, c], label, seed pair) → (uint8 image [s, s, c], label)."""
    if augmentation.crop not in CROPS:
        raise ValueError(f"unknown crop {augmentation.crop!r}; choose from {', '.join(CROPS)}")
    randaugment = None
    if augmentation.randaugment:
        randaugment = keras.layers.RandAugment(
            value_range=(0, 255), num_ops=RANDAUGMENT_OPS,
            factor=min(1.0, augmentation.randaugment / RANDAUGMENT_MAX_MAGNITUDE),
        )

    def transform(image, label, seed):
        crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        image = tf.cast(image, tf.float32)
        if augmentation.crop == "inception":
            image = random_resized_crop(image, size, augmentation.crop_scale, crop_seed)
        else:
            image = pad_and_crop(image, size, crop_seed)
        image = tf.ensure_shape(image, (size, size, channels))
        if flip:
            image = tf.image.stateless_random_flip_left_right(image, flip_seed)
        if randaugment is not None:
            image = randaugment(image, training=True)
        return to_uint8(image), label

    return transform


def eval_transform(augmentation, size, channels):
    """(uint8 image [H, W, c], label) → (uint8 centre crop [s, s, c], label)."""

    def transform(image, label):
        image = center_crop(tf.cast(image, tf.float32), size, augmentation.crop_pct)
        return to_uint8(tf.ensure_shape(image, (size, size, channels))), label

    return transform


def mix_batches(dataset, augmentation, seed=0):
    """MixUp and/or CutMix on batches of (uint8 images, one-hot labels); with both,
    each batch takes one of them at random (as timm switches between them)."""
    if not augmentation.mixes:
        return dataset
    mixers = []
    if augmentation.mixup:
        mixers.append(keras.layers.MixUp(alpha=augmentation.mixup))
    if augmentation.cutmix:
        mixers.append(keras.layers.CutMix(factor=augmentation.cutmix))

    def mix(images, labels, seed):
        def apply(mixer):
            mixed = mixer({"images": tf.cast(images, tf.float32), "labels": labels}, training=True)
            return to_uint8(mixed["images"]), tf.cast(mixed["labels"], labels.dtype)

        if len(mixers) == 1:
            return apply(mixers[0])
        choice = tf.random.stateless_uniform([], seed, maxval=len(mixers), dtype=tf.int32)
        return tf.switch_case(choice, [lambda mixer=mixer: apply(mixer) for mixer in mixers])

    seeds = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip(dataset, seeds).map(
        lambda batch, seed_pair: mix(*batch, seed_pair), num_parallel_calls=tf.data.AUTOTUNE
    )
