"""The benchmark harness behind `keras-lambda bench`.

Every case (a layer or a model at one size) runs in a fresh Python process, so
one case's memory, compiled graphs and thread pools never colour another's, and
an allocation failure ends that process only (reported as OOM). Per case:
train-step time (forward + backward, median of `repeats` after a warm-up
call), inference time (same), and peak memory (on CPU the growth of resident
memory over the steps, from `getrusage`; on GPU TensorFlow's peak allocation).
Separate processes on a shared machine differ by up to ~15% for the same
kernel, too much to tell near-ties apart; so where `auto`'s pick is not the
fastest by a clear margin, `auto` then races the implementations within reach
in one process (`Race`), and those races judge it; LambdaResNet-50 races
ResNet50 likewise.

Layer methods (images `[b, s, s, d]`, h = 4 heads, k = 16, u = 1):
`lambda/global/IMPL`, `lambda/r7/IMPL`, `lambda/r23/IMPL` (IMPL one of
`LambdaLayer`'s implementations or `auto`), `lambda/content` (no position
lambdas), `attention` (`keras.layers.MultiHeadAttention` over all positions)
and `paper` (the paper's pseudo-code, `baselines.PaperLambdaLayer`).
Model methods (images `[b, 128, 128, 3]`, 1000 classes, SGD step): `model/NAME`
for any preset of `keras_lambda.models.presets` (the default run: `model/lambda_resnet50`,
`model/tiny`) and `model/resnet50` (keras.applications).
"""

import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

from keras_lambda.files import check_output_dir, write_json
from keras_lambda.models import presets
from keras_lambda.ops.position import IMPLEMENTATIONS as KERNELS
from keras_lambda.options import UsageError

IMPLEMENTATIONS = KERNELS + ("auto",)
LAYER_METHODS = (
    tuple(f"lambda/global/{impl}" for impl in IMPLEMENTATIONS)
    + tuple(f"lambda/r{scope}/{impl}" for scope in (7, 23) for impl in IMPLEMENTATIONS)
    + ("lambda/content", "attention", "paper")
)
MODEL_METHODS = ("model/lambda_resnet50", "model/tiny", "model/resnet50")  # the default run's
# Any preset (keras_lambda.models.presets) can run as a model case, and ResNet50.
ALL_MODEL_METHODS = tuple(f"model/{name}" for name in presets.names()) + ("model/resnet50",)
BASELINE = "attention"  # layer ratios are against it
SLOWER_LIMIT = 5  # an implementation this much slower than the best is not run at larger sizes
RACE_WITHIN = 1.5  # implementations within this factor of the fastest race `auto`
MODEL_BASELINE = "model/resnet50"
SIZES = (16, 32, 64, 128)
DIMS = (128, 256)
QUICK = dict(
    sizes=(16, 32),
    dims=(128,),
    methods=("lambda/global/auto", "lambda/r7/auto", "lambda/content", "attention", "paper"),
)


@dataclasses.dataclass
class Case:
    method: str
    size: int  # image side s (n = s²)
    dim: int = 0  # d (layer cases)
    batch: int = 8
    repeats: int = 3
    jit_compile: bool = False


@dataclasses.dataclass
class Race:
    """Layer methods timed against each other in one process, round by round:
    each round times every method's train step (a few in a row when one is
    short), in an order that rotates, so a slow spell of a shared machine costs
    them all alike. It decides the near-ties that separate processes cannot
    (their medians move by ~15%)."""

    methods: tuple
    size: int
    dim: int
    batch: int = 8
    rounds: int = 7


def cases(methods, sizes, dims, batch=8, repeats=3, model_size=128, model_batch=16):
    """The cases of a run: every layer method at every size and d, then models."""
    layer_cases = [
        Case(method, size, dim, batch, repeats)
        for dim in dims
        for size in sizes
        for method in methods
        if not method.startswith("model/")
    ]
    model_cases = [
        Case(method, model_size, 0, model_batch, repeats)
        for method in methods
        if method.startswith("model/")
    ]
    return layer_cases + model_cases


# ----------------------------------------------------------------- in the child


def _build(case):
    """The layer or model of a case, and its input batch."""
    import keras

    from keras_lambda import baselines, layers, models

    if case.method.startswith("model/"):
        shape = (case.size, case.size, 3)
        name = case.method.split("/", 1)[1]
        if name == "resnet50":
            model = keras.applications.ResNet50(weights=None, input_shape=shape, classes=1000)
        else:
            model = models.build_preset(name, input_shape=shape, classes=1000)
        return model, (case.batch,) + shape
    shape = (case.batch, case.size, case.size, case.dim)
    if case.method == "attention":
        return baselines.GlobalAttention(case.dim, num_heads=4), shape
    if case.method == "paper":
        return baselines.PaperLambdaLayer(case.dim, key_dim=16, num_heads=4), shape
    if case.method == "lambda/content":
        return layers.LambdaLayer(case.dim, key_dim=16, num_heads=4, position=None), shape
    _, context, implementation = case.method.split("/")
    scope = None if context == "global" else int(context[1:])
    layer = layers.LambdaLayer(
        case.dim, key_dim=16, num_heads=4, scope=scope, implementation=implementation
    )
    return layer, shape


def _resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _median_seconds(function, argument, repeats):
    function(argument).numpy()  # warm-up: tracing, allocation
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function(argument).numpy()  # .numpy() waits for the device
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def _steps(module, shape, is_model, batch, jit_compile):
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
        labels = tf.one_hot(tf.range(batch) % 1000, 1000)

    @tf.function(jit_compile=jit_compile)
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

    @tf.function(jit_compile=jit_compile)
    def infer_step(x):
        return tf.reduce_sum(tf.cast(module(x, training=False), "float32"))

    return train_step, infer_step, x


def measure(case):
    """Runs `case` in this process; returns the measured dict (see module doc)."""
    import tensorflow as tf

    module, shape = _build(case)
    is_model = case.method.startswith("model/")
    train_step, infer_step, x = _steps(module, shape, is_model, case.batch, case.jit_compile)
    gpu = bool(tf.config.list_logical_devices("GPU"))
    if gpu:
        tf.config.experimental.reset_memory_stats("GPU:0")
    before = _resident_bytes()
    train_seconds = _median_seconds(train_step, x, case.repeats)
    if gpu:
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
    else:  # ru_maxrss: the process's peak resident memory, KiB on Linux; meaningful
        # in a fresh process (run_case), where nothing before the steps peaked higher
        peak = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before)
    infer_seconds = _median_seconds(infer_step, x, case.repeats)
    result = {
        "status": "ok",
        "train_s": train_seconds,
        "infer_s": infer_seconds,
        "peak_bytes": int(peak),
        "process_peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "params": module.count_params(),
        "device": "GPU" if gpu else "CPU",
    }
    if is_model:
        result["images_per_s"] = case.batch / train_seconds
    elif hasattr(module, "position_implementation") and module.embedding is not None:
        result["implementation"] = module.position_implementation((case.size, case.size))
    return result


RACE_UNIT_SECONDS = 0.25  # a round times enough consecutive steps to fill this


def race(contest):
    """Runs a `Race` in this process: {"train_s": {method: median over rounds},
    "rounds_s": {method: [seconds a step, each round]}, "calls": {method: steps
    timed together in a round}, "implementation": {auto method: its kernel}}."""
    methods = list(contest.methods)
    steps, calls, picked = {}, {}, {}
    for method in methods:
        case = Case(method, contest.size, contest.dim, contest.batch)
        module, shape = _build(case)
        is_model = method.startswith("model/")
        train_step, _, x = _steps(module, shape, is_model, contest.batch, False)
        train_step(x).numpy()  # warm-up: tracing, allocation
        started = time.perf_counter()
        train_step(x).numpy()
        # Short steps are timed several in a row: one alone is mostly noise.
        calls[method] = max(1, round(RACE_UNIT_SECONDS / (time.perf_counter() - started)))
        steps[method] = (train_step, x)
        if method.endswith("/auto"):
            picked[method] = module.position_implementation((contest.size, contest.size))
    seconds = {method: [] for method in methods}
    for round_index in range(contest.rounds):
        shift = round_index % len(methods)
        for method in methods[shift:] + methods[:shift]:
            train_step, x = steps[method]
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


# ---------------------------------------------------------------- in the parent

OOM_SIGNS = ("ResourceExhausted", "bad_alloc", "Out of memory", "OOM", "MemoryError",
             "failed to allocate", "Cannot allocate memory")


def run_case(case, timeout=600, memory_limit_bytes=None):
    """Measures `case` (a Case or a Race) in a fresh process. Status: ok, OOM (an
    allocation failed or the process was killed for memory), timeout, or error
    (with the reason)."""
    record = dataclasses.asdict(case)

    def limit_memory():
        if memory_limit_bytes:  # private writable memory, which is where tensors live
            resource.setrlimit(resource.RLIMIT_DATA, (memory_limit_bytes, memory_limit_bytes))

    command = [sys.executable, "-m", "keras_lambda.bench", json.dumps(record)]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.time()
    try:
        process = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout,
            preexec_fn=limit_memory, env=environment,
        )
    except subprocess.TimeoutExpired:
        return {**record, "status": "timeout", "reason": f"> {timeout} s", "wall_s": timeout}
    record["wall_s"] = round(time.time() - started, 1)
    lines = process.stdout.strip().splitlines()
    if process.returncode == 0 and lines:
        return {**record, **json.loads(lines[-1])}
    lines = process.stderr.strip().splitlines()
    memory_lines = [line for line in lines if any(sign in line for sign in OOM_SIGNS)]
    if memory_lines or process.returncode in (-9, 137):  # 137/-9: the kernel's OOM killer
        reason = memory_lines[0] if memory_lines else f"killed (exit {process.returncode})"
        return {**record, "status": "OOM", "reason": reason.strip()[:300]}
    return {**record, "status": "error", "reason": " | ".join(lines[-3:])[-300:]}


def machine():
    """One line naming the machine a run measured."""
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    gpus = [
        tf.config.experimental.get_device_details(device).get("device_name", "GPU")
        for device in tf.config.list_physical_devices("GPU")
    ]
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{'GPU: ' + ', '.join(gpus) + '; ' if gpus else ''}CPU: {cpu}, "
        f"{len(os.sched_getaffinity(0))} cores available, {memory:.0f} GiB RAM; "
        f"TensorFlow {tf.__version__}, Python {platform.python_version()}"
    )


def explicit_implementations(results, context, size, dim, batch):
    """The results that ran of `context`'s (e.g. "lambda/r7") implementations
    other than auto, at one size, d and batch."""
    return [
        r for r in results
        if r["status"] == "ok" and r["method"].startswith(context + "/")
        and not r["method"].endswith("/auto")
        and (r["size"], r["dim"], r["batch"]) == (size, dim, batch)
    ]


def _fastest_rival(case, earlier, size):
    """The fastest other explicit implementation of `case`'s lambda context (same d
    and batch) measured at `size`, or None (also for methods without rivals)."""
    parts = case.method.split("/")
    if len(parts) != 3 or parts[2] == "auto":
        return None
    others = [r for r in earlier if r["method"] != case.method]
    rivals = explicit_implementations(others, f"lambda/{parts[1]}", size, case.dim, case.batch)
    return min(rivals, key=lambda r: r["train_s"], default=None)


def _hopeless(case, earlier, timeout):
    """Why `case` need not run: the same method and d at a smaller size ran out
    of memory or time, was SLOWER_LIMIT times slower than another implementation
    of the same context, or took so long that, growing at least linearly in n,
    its warm-up and repeats cannot fit in `timeout`. None when it should run."""
    smaller = [
        r for r in earlier
        if r["method"] == case.method and r["dim"] == case.dim and r["size"] < case.size
    ]
    if not smaller:
        return None
    largest = max(smaller, key=lambda r: r["size"])
    if largest["status"] in ("OOM", "timeout", "skipped"):
        return largest["status"], f"{largest['status']} at s={largest['size']} already"
    if largest["status"] != "ok":
        return None
    rival = _fastest_rival(case, earlier, largest["size"])
    if rival is not None and largest["train_s"] > SLOWER_LIMIT * rival["train_s"]:
        return "skipped", (
            f"{largest['train_s'] / rival['train_s']:.0f}x slower than "
            f"{rival['method'].rsplit('/', 1)[1]} at s={largest['size']}"
        )
    growth = (case.size / largest["size"]) ** 2
    at_least = (largest["train_s"] + largest["infer_s"]) * growth * (case.repeats + 1)
    if at_least > timeout:
        return "timeout", (
            f"predicted >= {at_least:.0f} s (linear in n from s={largest['size']}) > {timeout} s"
        )
    return None


def races(results, rounds=7, within=RACE_WITHIN):
    """The `Race`s that decide near-ties: for each lambda context, size and d
    where `auto` ran, auto against every explicit implementation within `within`
    of the fastest (no race where auto's pick is the only such one: it is the
    fastest by a margin no noise explains); and LambdaResNet-50 against ResNet50
    when both ran."""
    found = []
    for auto in results:
        if not (auto["method"].endswith("/auto") and auto["status"] == "ok"):
            continue
        context = auto["method"].rsplit("/", 1)[0]
        explicit = explicit_implementations(results, context, auto["size"], auto["dim"],
                                            auto["batch"])
        if not explicit:
            continue
        fastest = min(r["train_s"] for r in explicit)
        contenders = [r["method"] for r in sorted(explicit, key=lambda r: r["train_s"])
                      if r["train_s"] <= within * fastest]
        if contenders == [f"{context}/{auto.get('implementation')}"]:
            continue
        found.append(Race((auto["method"], *contenders), auto["size"], auto["dim"],
                          auto["batch"], rounds))
    ran = {r["method"]: r for r in results if r["status"] == "ok"}
    if "model/lambda_resnet50" in ran and MODEL_BASELINE in ran:  # target 6, likewise
        model = ran["model/lambda_resnet50"]
        found.append(Race(("model/lambda_resnet50", MODEL_BASELINE), model["size"], 0,
                          model["batch"], rounds))
    return found


def run(case_list, timeout=600, memory_limit_bytes=None, progress=print, on_result=None):
    """Measures each case in turn (fresh process each); returns the records.
    Cases that cannot finish (see `_hopeless`) are recorded without running.
    `on_result(results)` is called after every case (to save them as they come)."""
    results = []
    for index, case in enumerate(case_list, 1):
        skip = _hopeless(case, results, timeout)
        if skip:
            result = {**dataclasses.asdict(case), "status": skip[0], "reason": skip[1]}
        else:
            result = run_case(case, timeout, memory_limit_bytes)
        results.append(result)
        if on_result:
            on_result(results)
        if progress:
            progress(f"[{index}/{len(case_list)}] {_describe(result)}")
    return results


def _describe(result):
    if "methods" in result:  # a race
        where = f"race s={result['size']}" + (f" d={result['dim']}" if result["dim"] else "")
        if result["status"] != "ok":
            return f"{where}: {result['status']} {result.get('reason', '')}"
        return f"{where}: " + ", ".join(
            f"{method} {seconds * 1e3:.1f} ms" for method, seconds in result["train_s"].items()
        )
    where = f"{result['method']} s={result['size']}" + (
        f" d={result['dim']}" if result["dim"] else ""
    )
    if result["status"] != "ok":
        return f"{where}: {result['status']} {result.get('reason', '')}"
    return (
        f"{where}: train {result['train_s'] * 1e3:.1f} ms, infer {result['infer_s'] * 1e3:.1f} ms, "
        f"peak {result['peak_bytes'] / 2**20:.0f} MiB"
    )


def default_memory_limit():
    """80% of physical memory: a case that needs more is reported OOM, and the
    machine stays usable."""
    return int(0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def benchmark(
    methods=LAYER_METHODS + MODEL_METHODS,
    sizes=SIZES,
    dims=DIMS,
    batch=8,
    repeats=3,
    race_rounds=7,
    timeout=600,
    memory_limit_bytes=None,
    output_dir="benchmarks",
    name="bench",
    command="keras-lambda bench",
    progress=print,
):
    """Runs the cases, then the races that judge `auto` (none if race_rounds is
    0), prints the table, writes NAME.md, NAME.json and NAME.png into
    output_dir; returns (results, race results)."""
    from keras_lambda import bench_report

    unknown = [m for m in methods if m not in LAYER_METHODS + ALL_MODEL_METHODS]
    if unknown:
        raise UsageError(
            f"unknown --methods {', '.join(unknown)}; choose from "
            f"{', '.join(LAYER_METHODS + ALL_MODEL_METHODS)}"
        )
    for label, values in (("sizes", sizes), ("dims", dims)):
        if not values or any(value < 1 for value in values):
            raise UsageError(f"--{label} must be positive integers, got {list(values)}")
    for label, value in (("batch", batch), ("repeats", repeats), ("timeout", timeout)):
        if value < 1:
            raise UsageError(f"--{label} must be >= 1, got {value}")
    if race_rounds < 0:
        raise UsageError(f"--race-rounds must be >= 0 (0: no races), got {race_rounds}")
    if any(dim % 4 for dim in dims):
        raise UsageError(f"--dims must be multiples of the 4 heads, got {list(dims)}")
    check_output_dir(output_dir)  # before any case: a bad folder loses no measurement
    memory_limit_bytes = memory_limit_bytes or default_memory_limit()
    description = machine()
    progress(f"machine: {description}")
    os.makedirs(output_dir, exist_ok=True)
    paths = {kind: os.path.join(output_dir, f"{name}.{kind}") for kind in ("md", "json", "png")}
    record = {"machine": description, "command": command, "results": [], "races": []}

    def save(results=None):  # the record so far, after every case and race
        if results is not None:
            record["results"] = results
        write_json(paths["json"], record)

    results = run(cases(methods, sizes, dims, batch, repeats), timeout, memory_limit_bytes,
                  progress, on_result=save)
    race_list = races(results, race_rounds) if race_rounds else []
    race_results = record["races"]
    for index, contest in enumerate(race_list, 1):
        # A race times each method for about as many steps as its own case did.
        race_results.append(run_case(contest, timeout * len(contest.methods), memory_limit_bytes))
        save()
        progress(f"[race {index}/{len(race_list)}] {_describe(race_results[-1])}")
    save()
    report = bench_report.markdown(results, description, command, memory_limit_bytes,
                                   race_results)
    with open(paths["md"], "w") as file:
        file.write(report)
    try:
        if not bench_report.plot(results, paths["png"], description):
            paths.pop("png")  # no layer case to plot
    except ImportError:
        paths.pop("png")
        progress("matplotlib is not installed: no plot (pip install matplotlib)")
    progress("\n" + report)
    progress("written: " + ", ".join(paths.values()))
    return results, race_results


if __name__ == "__main__":  # the child process of `run_case`
    fields = json.loads(sys.argv[1])
    try:
        if "methods" in fields:
            print(json.dumps(race(Race(**fields))))
        else:
            print(json.dumps(measure(Case(**fields))))
    except MemoryError:
        print("MemoryError", file=sys.stderr)
        sys.exit(3)
