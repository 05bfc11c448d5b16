"""In the child process: build a case's layer or model, time its train and
inference steps, measure its peak memory; or run a race.

Peak memory on CPU is the growth of resident memory over the train steps
(`getrusage`, meaningful in the fresh process each case gets); on GPU
TensorFlow's peak allocation.
"""

import os
import resource
import statistics
import time

from keras_lambda.bench.methods import HEADS, KEY_DIM, MODEL_CLASSES, Case, Method

RACE_UNIT_SECONDS = 0.25  # a race round times enough consecutive steps to fill this


def build(case):
    """The layer or model of `case`, and the shape of its input batch."""
    import keras

    from keras_lambda import baselines, layers, models

    method = Method.parse(case.method)
    if method.kind == "model":
        shape = (case.size, case.size, 3)
        if method.model == "resnet50":
            model = keras.applications.ResNet50(weights=None, input_shape=shape,
                                                classes=MODEL_CLASSES)
        else:
            model = models.build_preset(method.model, input_shape=shape, classes=MODEL_CLASSES)
        return model, (case.batch,) + shape
    shape = (case.batch, case.size, case.size, case.dim)
    if method.kind == "attention":
        return baselines.GlobalAttention(case.dim, num_heads=HEADS), shape
    if method.kind == "paper":
        return baselines.PaperLambdaLayer(case.dim, key_dim=KEY_DIM, num_heads=HEADS), shape
    if method.context == "content":
        layer = layers.LambdaLayer(case.dim, key_dim=KEY_DIM, num_heads=HEADS, position=None)
        return layer, shape
    layer = layers.LambdaLayer(case.dim, key_dim=KEY_DIM, num_heads=HEADS, scope=method.scope,
                               implementation=method.implementation)
    return layer, shape


def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def median_seconds(function, argument, repeats):
    function(argument).numpy()  # warm-up: tracing, allocation
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function(argument).numpy()  # .numpy() waits for the device
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def steps(module, shape, is_model, batch):
    """Builds `module`; returns (train_step, infer_step, input): tf.functions of
    one training step (gradients of every weight and the input; models: + SGD
    update) and one inference call."""
    import keras
    import tensorflow as tf

    x = keras.random.normal(shape, seed=0)
    module(x)  # build
    variables = module.trainable_variables
    optimizer = keras.optimizers.SGD(0.01) if is_model else None
    if optimizer is not None:
        optimizer.build(variables)
        labels = tf.one_hot(tf.range(batch) % MODEL_CLASSES, MODEL_CLASSES)

    @tf.function
    def train_step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = module(x, training=True)
            if is_model:
                loss = keras.losses.categorical_crossentropy(labels, y)
            else:
                loss = tf.square(tf.cast(y, "float32"))
            loss = tf.reduce_mean(loss)
        gradients = tape.gradient(loss, variables + [x])
        if optimizer is not None:
            optimizer.apply(gradients[:-1], variables)
        return loss + tf.add_n([tf.reduce_sum(g) for g in gradients]) * 0.0

    @tf.function
    def infer_step(x):
        return tf.reduce_sum(tf.cast(module(x, training=False), "float32"))

    return train_step, infer_step, x


def measure(case):
    """Runs `case` in this process; returns the measured dict (module doc)."""
    import tensorflow as tf

    module, shape = build(case)
    method = Method.parse(case.method)
    train_step, infer_step, x = steps(module, shape, method.kind == "model", case.batch)
    gpu = bool(tf.config.list_logical_devices("GPU"))
    if gpu:
        tf.config.experimental.reset_memory_stats("GPU:0")
    before = resident_bytes()
    train_seconds = median_seconds(train_step, x, case.repeats)
    if gpu:
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
    else:  # ru_maxrss: the process's peak resident memory, KiB on Linux; meaningful
        # in a fresh process (run_case), where nothing before the steps peaked higher
        peak = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before)
    infer_seconds = median_seconds(infer_step, x, case.repeats)
    result = {
        "status": "ok",
        "train_s": train_seconds,
        "infer_s": infer_seconds,
        "peak_bytes": int(peak),
        "process_peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "params": module.count_params(),
        "device": "GPU" if gpu else "CPU",
    }
    if method.kind == "model":
        result["images_per_s"] = case.batch / train_seconds
    elif method.implementation is not None:
        result["implementation"] = module.position_implementation((case.size, case.size))
    return result


def race(contest):
    """Runs a `Race` in this process: {"train_s": {method: median over rounds},
    "rounds_s": {method: [seconds a step, each round]}, "calls": {method: steps
    timed together in a round}, "implementation": {auto method: its kernel}}."""
    methods = list(contest.methods)
    timed, calls, picked = {}, {}, {}
    for method_id in methods:
        method = Method.parse(method_id)
        module, shape = build(Case(method_id, contest.size, contest.dim, contest.batch))
        train_step, _, x = steps(module, shape, method.kind == "model", contest.batch)
        train_step(x).numpy()  # warm-up: tracing, allocation
        started = time.perf_counter()
        train_step(x).numpy()
        # Short steps are timed several in a row: one alone is mostly noise.
        calls[method_id] = max(1, round(RACE_UNIT_SECONDS / (time.perf_counter() - started)))
        timed[method_id] = (train_step, x)
        if method.is_auto:
            picked[method_id] = module.position_implementation((contest.size, contest.size))
    seconds = {method: [] for method in methods}
    for round_index in range(contest.rounds):
        shift = round_index % len(methods)
        for method in methods[shift:] + methods[:shift]:
            train_step, x = timed[method]
            started = time.perf_counter()
            for _ in range(calls[method]):
                result = train_step(x)
            result.numpy()
            seconds[method].append((time.perf_counter() - started) / calls[method])
    return {
        "status": "ok",
        "train_s": {method: statistics.median(s) for method, s in seconds.items()},
        "rounds_s": seconds,
        "calls": calls,
        "implementation": picked,
    }
