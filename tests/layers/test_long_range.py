"""Proof that a lambda layer carries global information and a local conv does not.

The task: a black 32x32 image holds two 2x2 marks at least 16 pixels apart; is
their colour the same? Both models share a 2x2 stride-2 stem, global average
pooling and a linear head; between them sits either one global LambdaLayer or a
3x3 convolution with at least as many parameters.

Why the convolution cannot learn it: its pooled features are a sum of one term
per mark (the marks' receptive fields never overlap, nor touch the border), so
its logit is Z(c1) + Z(c2) + const; "same" pairs (c, c) score 2·Z(c), and a
different pair (a, b) scores the mean of 2·Z(a) and 2·Z(b), so no threshold
separates them beyond what the colour marginals give. The lambda layer
multiplies each query with lambdas built from every position, which lets
q(c1)·v(c2) compare the colours.
"""

import keras
import numpy as np
import pytest

from keras_lambda.layers import LambdaLayer

PALETTE = np.array(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], "float32"
)
SIZE = 32


def make_pairs(samples, seed, min_distance=16, margin=4):
    """Images [samples, 32, 32, 3] with two marks, labels 1 if same colour."""
    rng = np.random.default_rng(seed)
    images = np.zeros((samples, SIZE, SIZE, 3), "float32")
    labels = rng.integers(0, 2, samples)
    for image, same in zip(images, labels):
        while True:
            first, second = rng.integers(margin, SIZE - margin - 1, (2, 2))
            if np.abs(first - second).max() >= min_distance:
                break
        colour = rng.integers(len(PALETTE))
        other = colour if same else (colour + rng.integers(1, len(PALETTE))) % len(PALETTE)
        image[first[0] : first[0] + 2, first[1] : first[1] + 2] = PALETTE[colour]
        image[second[0] : second[0] + 2, second[1] : second[1] + 2] = PALETTE[other]
    return images, labels


def model_with(middle):
    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Conv2D(16, 2, strides=2, activation="relu"),  # → 16x16
            middle,
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ]
    )


def train_and_evaluate(model, train, test, epochs):
    model.compile(
        keras.optimizers.Adam(3e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(*train, batch_size=32, epochs=epochs, verbose=0)
    return model.evaluate(*test, verbose=0)[1]


@pytest.mark.slow
def test_global_lambda_layer_learns_a_long_range_task_a_conv_cannot():
    keras.utils.set_random_seed(0)
    train, test = make_pairs(3000, seed=0), make_pairs(1000, seed=1)
    lambda_model = model_with(LambdaLayer(key_dim=8, num_heads=2, norm_momentum=0.9))
    conv_model = model_with(keras.layers.Conv2D(64, 3, padding="same", activation="relu"))
    assert conv_model.count_params() >= lambda_model.count_params()

    lambda_accuracy = train_and_evaluate(lambda_model, train, test, epochs=10)
    conv_accuracy = train_and_evaluate(conv_model, train, test, epochs=10)
    assert lambda_accuracy >= 0.9, lambda_accuracy
    assert conv_accuracy <= 0.65, conv_accuracy
