"""Training recipes: named sets of settings, each of which a flag can still override.

`--recipe paper` is the recipe LambdaNetworks (Bello, ICLR 2021, appendix) trains
its ImageNet LambdaResNets with: ResNet-RS's (Bello et al. 2021, "Revisiting
ResNets", arXiv 2103.07579, appendix): momentum SGD with a learning rate scaled
with the batch, cosine decay after a linear warm-up, label smoothing, dropout
before the classifier, weight decay, RandAugment, an exponential moving average
of the weights and long schedules.

The values below are those commonly quoted for ResNet-RS-50 at ImageNet scale.
**None of them was checked against the papers' own tables here** (marked
"unverified"): treat them as a starting point and read the appendices before
you report a number as the paper's. Free of TensorFlow.
"""

# The settings a recipe may set, with the values used when neither a recipe nor
# a flag gives one (what `keras-lambda train` does by default).
DEFAULTS = {
    "epochs": 15,
    "optimizer": "adamw",
    "momentum": 0.9,  # SGD's
    "learning_rate": 3e-3,
    "lr_scaling_batch": 0,  # 0: the learning rate is used as given
    "warmup_epochs": 1.0,
    "weight_decay": 1e-4,
    "label_smoothing": 0.0,
    "dropout": 0.0,
    "stochastic_depth": None,  # None: the model's own rate
    "randaugment": 0.0,  # magnitude, 0: off
    "mixup": 0.0,
    "cutmix": 0.0,
    "ema_momentum": 0.0,  # 0: no moving average
}

RECIPES = {
    "paper": {
        "epochs": 350,  # unverified
        "optimizer": "sgd",
        "momentum": 0.9,  # unverified
        "learning_rate": 0.1,  # per 256 images: 1.6 at the papers' batch of 4096 (unverified)
        "lr_scaling_batch": 256,
        "warmup_epochs": 5.0,  # unverified
        "weight_decay": 4e-5,  # unverified; decoupled here, as Keras's optimizers apply it
        "label_smoothing": 0.1,  # unverified
        "dropout": 0.25,  # unverified
        "stochastic_depth": 0.0,  # unverified; ResNet-RS raises it for deeper models
        "randaugment": 10.0,  # unverified; ResNet-RS raises it to 15 for larger models
        "ema_momentum": 0.9999,  # unverified
    },
}


def names():
    return tuple(RECIPES)


def resolve(recipe, given):
    """The value of every recipe setting: `given`'s where not None, else the
    recipe's, else `DEFAULTS`'. `recipe`: a name of `RECIPES` or None."""
    chosen = RECIPES.get(recipe, {}) if recipe else {}
    return {
        key: given[key] if given.get(key) is not None else chosen.get(key, default)
        for key, default in DEFAULTS.items()
    }
