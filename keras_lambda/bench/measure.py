"""In the child process: build a case's layer or model, time its train and
inference steps, measure its peak memory; or run a race. On whatever backend
Keras runs (`KERAS_BACKEND`): a tf.function step on TensorFlow, a jitted
`stateless_call` step on JAX (with XLA's compiled memory analysis), eager
`torch.autograd` on PyTorch; peak memory as `PeakMemory` says.
"""

import functools
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


def reset_peak_resident():
    """Starts the kernel's count of this process's peak resident memory (ru_maxrss)
    afresh: True on Linux (/proc/self/clear_refs), False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def wait(result):
    """Blocks until `result` (a tensor of any backend, or a nest of them) is computed."""
    import keras

    return keras.tree.map_structure(keras.ops.convert_to_numpy, result)


def median_seconds(function, argument, repeats):
    wait(function(argument))  # warm-up: tracing, compiling, allocation
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        wait(function(argument))
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def _loss(keras, outputs, labels):
    """The models' cross-entropy, or the layers' mean square (float32)."""
    if labels is not None:
        return keras.ops.mean(keras.losses.categorical_crossentropy(labels, outputs))
    return keras.ops.mean(keras.ops.square(keras.ops.cast(outputs, "float32")))


def _tensorflow_steps(module, x, labels, optimizer):
    import keras
    import tensorflow as tf

    variables = module.trainable_variables

    @tf.function
    def train_step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = _loss(keras, module(x, training=True), labels)
        gradients = tape.gradient(loss, variables + [x])
        if optimizer is not None:
            optimizer.apply(gradients[:-1], variables)
        return loss + tf.add_n([tf.reduce_sum(g) for g in gradients]) * 0.0

    @tf.function
    def infer_step(x):
        return tf.reduce_sum(tf.cast(module(x, training=False), "float32"))

    return train_step, infer_step, None


def _jax_steps(module, x, labels, optimizer):
    """`stateless_call` + `jax.value_and_grad` + `jax.jit`, as a JAX training loop
    runs Keras; also returns XLA's compiled memory analysis of the train step."""
    import jax
    import keras

    if not isinstance(module, keras.Model):
        # stateless_call runs `call` itself, skipping __call__'s casts of the
        # inputs and variables to a mixed policy's compute dtype; a model runs
        # its layers through __call__.
        inputs = keras.Input(batch_shape=tuple(x.shape))
        module = keras.Model(inputs, module(inputs))
    trainable = [v.value for v in module.trainable_variables]
    non_trainable = [v.value for v in module.non_trainable_variables]
    optimizer_state = [v.value for v in optimizer.variables] if optimizer is not None else []

    def loss_of(trainable, x):
        outputs, _ = module.stateless_call(trainable, non_trainable, x, training=True)
        return _loss(keras, outputs, labels)

    gradient = jax.value_and_grad(loss_of, argnums=(0, 1))

    @jax.jit
    def train(trainable, optimizer_state, x):
        loss, (gradients, input_gradient) = gradient(trainable, x)
        if optimizer is not None:
            trainable, optimizer_state = optimizer.stateless_apply(
                optimizer_state, gradients, trainable)
        # Every gradient feeds the result, so that XLA cannot drop any as unused.
        total = sum(jax.numpy.sum(g) for g in gradients) + jax.numpy.sum(input_gradient)
        return loss + 0.0 * total, trainable, optimizer_state

    @jax.jit
    def infer(x):
        outputs, _ = module.stateless_call(trainable, non_trainable, x, training=False)
        return jax.numpy.sum(outputs.astype("float32"))

    compiled = train.lower(trainable, optimizer_state, x).compile()
    analysis = compiled.memory_analysis()
    compiled_bytes = None
    if analysis is not None:
        compiled_bytes = int(analysis.temp_size_in_bytes + analysis.argument_size_in_bytes
                             + analysis.output_size_in_bytes - analysis.alias_size_in_bytes)
    return (lambda x: compiled(trainable, optimizer_state, x)[0]), infer, compiled_bytes


def _torch_steps(module, x, labels, optimizer):
    """Eager PyTorch with `torch.autograd`, as Keras's torch backend trains."""
    import keras
    import torch

    variables = module.trainable_variables

    def train_step(x):
        x = x.detach().requires_grad_(True)
        loss = _loss(keras, module(x, training=True), labels)
        gradients = torch.autograd.grad(loss, [v.value for v in variables] + [x])
        if optimizer is not None:
            with torch.no_grad():
                optimizer.apply(list(gradients[:-1]), variables)
        return loss.detach()

    def infer_step(x):
        with torch.no_grad():
            return module(x, training=False).float().sum()

    return train_step, infer_step, None


STEPS = {"tensorflow": _tensorflow_steps, "jax": _jax_steps, "torch": _torch_steps}


def steps(module, shape, is_model, batch):
    """Builds `module`; returns (train_step, infer_step, input, compiled_bytes): one
    training step (gradients of every weight and the input; models: + SGD
    update) and one inference call, compiled as the backend compiles (tf.function,
    jax.jit; eager on PyTorch); `compiled_bytes` is XLA's memory analysis of the
    train step on JAX (deterministic), else None."""
    import keras

    x = keras.random.normal(shape, seed=0)
    module(x)  # build
    labels = optimizer = None
    if is_model:
        optimizer = keras.optimizers.SGD(0.01)
        optimizer.build(module.trainable_variables)
        labels = keras.ops.one_hot(keras.ops.arange(batch) % MODEL_CLASSES, MODEL_CLASSES)
    train_step, infer_step, compiled_bytes = STEPS[keras.backend.backend()](
        module, x, labels, optimizer)
    return train_step, infer_step, x, compiled_bytes


def gpu_names():
    """The GPUs this process's Keras backend computes on, by name (none on a CPU)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return [tf.config.experimental.get_device_details(d).get("device_name", "GPU")
                for d in tf.config.list_physical_devices("GPU")]
    if backend == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    import torch

    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def device():
    """(backend, "GPU" or "CPU") of this process's Keras."""
    import keras

    return keras.backend.backend(), "GPU" if gpu_names() else "CPU"


class PeakMemory:
    """The peak memory of what runs between `start()` and `stop()`: the device's peak
    allocation on a GPU (TensorFlow's memory info, JAX's memory stats, PyTorch's
    max_memory_allocated), the growth of resident memory on a CPU (ru_maxrss, its
    count started afresh at `start()` where Linux allows, `reset_peak_resident`: the
    build before it runs the layer eagerly once and may peak higher than a step)."""

    def __init__(self, backend, device_kind):
        self.backend, self.gpu = backend, device_kind == "GPU"

    def start(self):
        if self.gpu and self.backend == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.reset_memory_stats("GPU:0")
        elif self.gpu and self.backend == "torch":
            import torch

            torch.cuda.reset_peak_memory_stats()
        reset_peak_resident()
        self.before = resident_bytes()

    def stop(self):
        if self.gpu and self.backend == "tensorflow":
            import tensorflow as tf

            return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
        if self.gpu and self.backend == "torch":
            import torch

            return int(torch.cuda.max_memory_allocated())
        if self.gpu and self.backend == "jax":
            import jax

            return int(jax.devices()[0].memory_stats()["peak_bytes_in_use"])
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return max(0, peak - self.before)


def measure(case):
    """Runs `case` in this process; returns the measured dict (module doc)."""
    import keras

    module, shape = build(case)
    method = Method.parse(case.method)
    backend, device_kind = device()
    train_step, infer_step, x, compiled_bytes = steps(
        module, shape, method.kind == "model", case.batch)
    memory = PeakMemory(backend, device_kind)
    memory.start()
    train_seconds = median_seconds(train_step, x, case.repeats)
    peak = memory.stop()
    infer_seconds = median_seconds(infer_step, x, case.repeats)
    result = {
        "status": "ok",
        "train_s": train_seconds,
        "infer_s": infer_seconds,
        "peak_bytes": int(peak),
        "process_peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "params": module.count_params(),
        "device": device_kind,
        "backend": backend,
    }
    if compiled_bytes is not None:
        result["compiled_bytes"] = compiled_bytes
    if method.kind == "attention":
        result["flash_attention"] = keras.config.is_flash_attention_enabled()
    if method.kind == "model":
        result["images_per_s"] = case.batch / train_seconds
    elif method.implementation is not None:
        result["implementation"] = module.position_implementation((case.size, case.size))
    return result


def race_rounds(steps, rounds):
    """Races `steps` {name: a call that starts one train step and returns its
    result} for `rounds` rounds, each timing every step to its end (several in a
    row when one is short) in an order that rotates round by round; returns
    ({name: [seconds a step, each round]}, {name: steps timed together in a round})."""
    calls = {}
    for name, step in steps.items():
        wait(step())  # warm-up: tracing, compiling, allocation
        started = time.perf_counter()
        wait(step())
        # Short steps are timed several in a row: one alone is mostly noise.
        calls[name] = max(1, round(RACE_UNIT_SECONDS / (time.perf_counter() - started)))
    names = list(steps)
    seconds = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            for _ in range(calls[name]):
                result = steps[name]()
            wait(result)
            seconds[name].append((time.perf_counter() - started) / calls[name])
    return seconds, calls


def race(contest):
    """Runs a `Race` in this process: {"train_s": {method: median over rounds},
    "rounds_s": {method: [seconds a step, each round]}, "calls": {method: steps
    timed together in a round}, "implementation": {auto method: its kernel}}."""
    timed, picked = {}, {}
    for method_id in contest.methods:
        method = Method.parse(method_id)
        module, shape = build(Case(method_id, contest.size, contest.dim, contest.batch))
        train_step, _, x, _ = steps(module, shape, method.kind == "model", contest.batch)
        timed[method_id] = functools.partial(train_step, x)
        if method.is_auto:
            picked[method_id] = module.position_implementation((contest.size, contest.size))
    seconds, calls = race_rounds(timed, contest.rounds)
    return {
        "status": "ok",
        "train_s": {method: statistics.median(s) for method, s in seconds.items()},
        "rounds_s": seconds,
        "calls": calls,
        "implementation": picked,
    }
