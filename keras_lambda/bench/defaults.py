"""What `keras-lambda bench` runs unless told otherwise. Plain data, no Keras: the
command line reads it to answer `--help` at once."""

SIZES = (16, 32, 64, 128)  # image sides s (n = s²)
DIMS = (128, 256)  # channels d
BATCH = 8  # of the layer cases
REPEATS = 3  # timed steps a case, after one warm-up step
RACE_ROUNDS = 7
TIMEOUT = 600  # seconds a case
# Under runs/ like `train`: the records a checkout ships with (benchmarks/) are written
# only when asked for by path.
OUTPUT_DIR = "runs/bench"
MODEL_METHODS = ("model/lambda_resnet50", "model/tiny", "model/resnet50")
QUICK = dict(
    sizes=(16, 32),
    dims=(128,),
    methods=("lambda/global/auto", "lambda/r7/auto", "lambda/content", "attention", "paper"),
)
METHOD_GRAMMAR = (
    "lambda/CONTEXT/IMPL (CONTEXT: global, r7, r23; IMPL: einsum, conv, depthwise, fft, "
    "dft or auto), lambda/content, attention, paper, model/PRESET (any of keras_lambda.models."
    "presets) and model/resnet50"
)
