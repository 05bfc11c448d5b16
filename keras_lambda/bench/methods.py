"""What a bench measures: methods (parsed once from their ids), cases and races.

Layer methods (images `[b, s, s, d]`, h = `HEADS`, k = `KEY_DIM`, u = 1):
`lambda/global/IMPL`, `lambda/r7/IMPL`, `lambda/r23/IMPL` (IMPL one of
`LambdaLayer`'s implementations or `auto`), `lambda/content` (no position
lambdas), `attention` (`keras.layers.MultiHeadAttention` over all positions)
and `paper` (the paper's pseudo-code, `baselines.PaperLambdaLayer`).
Model methods (images `[b, 128, 128, 3]`, `MODEL_CLASSES` classes, SGD step):
`model/NAME` for any preset of `keras_lambda.models.presets` and
`model/resnet50` (keras.applications).
"""

import dataclasses

from keras_lambda.models import presets
from keras_lambda.ops.position import IMPLEMENTATIONS as KERNELS

HEADS = 4
KEY_DIM = 16
MODEL_CLASSES = 1000
MODEL_SIZE = 128  # px
MODEL_BATCH = 16
IMPLEMENTATIONS = KERNELS + ("auto",)
CONTEXTS = {"global": None, "r7": 7, "r23": 23}  # name → scope
BASELINE = "attention"  # layer ratios are against it
HEADLINE = "lambda/global/auto"  # the layer the headline ratios are of ...
HEADLINE_RIVALS = (BASELINE, "paper")  # ... against these, decided by races
MODEL_BASELINE = "model/resnet50"
LAYER_METHODS = (
    tuple(f"lambda/{context}/{impl}" for context in CONTEXTS for impl in IMPLEMENTATIONS)
    + ("lambda/content", BASELINE, "paper")
)
ALL_MODEL_METHODS = tuple(f"model/{name}" for name in presets.names()) + (MODEL_BASELINE,)


@dataclasses.dataclass(frozen=True)
class Method:
    """A method id taken apart: `kind` "lambda", "attention", "paper" or "model";
    a lambda method's `context` ("global", "r7", "r23", "content") and
    `implementation` (a kernel or "auto"); a model method's `model`.

    Example:
    ```python
    from keras_lambda.bench import Method

    method = Method.parse("lambda/r7/auto")
    print(method.kind, method.context, method.implementation)   # lambda r7 auto
    ```
    """

    id: str
    kind: str
    context: str = None
    implementation: str = None
    model: str = None

    @classmethod
    def parse(cls, method_id):
        """ValueError for an id that is not one of LAYER_METHODS or ALL_MODEL_METHODS."""
        if method_id not in LAYER_METHODS + ALL_MODEL_METHODS:
            raise ValueError(f"unknown bench method {method_id!r}")
        kind, _, rest = method_id.partition("/")
        if kind == "model":
            return cls(method_id, kind, model=rest)
        if kind != "lambda":
            return cls(method_id, kind)
        context, _, implementation = rest.partition("/")
        return cls(method_id, kind, context, implementation or None)

    @property
    def scope(self):
        return CONTEXTS.get(self.context)

    @property
    def family(self):
        """The id without its implementation (`lambda/r7`): what implementations race in."""
        return f"lambda/{self.context}" if self.implementation else self.id

    @property
    def is_auto(self):
        return self.implementation == "auto"

    @property
    def is_explicit(self):
        """A lambda method that names its kernel (not auto, not content-only)."""
        return self.implementation not in (None, "auto")


@dataclasses.dataclass
class Case:
    """One method at one size, measured in a fresh process.

    Example:
    ```python
    from keras_lambda.bench import Case

    case = Case("lambda/global/auto", size=32, dim=128)    # a layer at 32 x 32, d = 128
    model = Case("model/lambda_resnet50", size=128, batch=16)
    ```
    """

    method: str
    size: int  # image side s (n = s²)
    dim: int = 0  # d (layer cases)
    batch: int = 8
    repeats: int = 3


@dataclasses.dataclass
class Race:
    """Layer or model methods timed against each other in one process, round by
    round: each round times every method's train step (a few in a row when one
    is short), in an order that rotates, so a slow spell of a shared machine costs
    them all alike. It decides what separate processes cannot (their medians move
    between runs, more across an hour). `purpose`: "auto" (auto against the
    implementations within reach), "headline" (`HEADLINE` against
    `HEADLINE_RIVALS`) or "models" (LambdaResNet-50 against ResNet50).

    Example:
    ```python
    from keras_lambda.bench import Race, run_case

    race = Race(("lambda/global/auto", "attention"), size=8, dim=16, batch=2, rounds=3,
                purpose="headline")
    print(run_case(race)["rounds_s"])     # each method's seconds, round by round
    ```
    """

    methods: tuple
    size: int
    dim: int
    batch: int = 8
    rounds: int = 7
    purpose: str = "auto"


def cases(methods, sizes, dims, batch=8, repeats=3, model_size=MODEL_SIZE,
          model_batch=MODEL_BATCH):
    """The cases of a run: every layer method at every size and d, then models.

    Example:
    ```python
    from keras_lambda.bench import cases

    for case in cases(["lambda/r7/auto", "attention"], sizes=[16, 32], dims=[128]):
        print(case)
    ```
    """
    parsed = [Method.parse(method) for method in methods]
    layer_cases = [
        Case(method.id, size, dim, batch, repeats)
        for dim in dims
        for size in sizes
        for method in parsed
        if method.kind != "model"
    ]
    model_cases = [
        Case(method.id, model_size, 0, model_batch, repeats)
        for method in parsed
        if method.kind == "model"
    ]
    return layer_cases + model_cases
