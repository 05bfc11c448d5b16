"""In the parent: every case and race in a fresh process, results saved as they
come, the report written at the end (`benchmark`, what `keras-lambda bench` runs).

A case's child is `python -m keras_lambda.bench CASE_JSON`, so one case's
memory, compiled graphs and thread pools never colour another's, and an
allocation failure ends that process only (reported as OOM).
"""

import dataclasses
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

from keras_lambda.bench import figures, policy, report
from keras_lambda.bench.defaults import (
    BATCH,
    DIMS,
    MODEL_METHODS,
    OUTPUT_DIR,
    RACE_ROUNDS,
    REPEATS,
    SIZES,
    TIMEOUT,
)
from keras_lambda.bench.methods import ALL_MODEL_METHODS, HEADS, LAYER_METHODS, cases
from keras_lambda.errors import UsageError
from keras_lambda.files import check_output_dir, write_json

OOM_SIGNS = ("ResourceExhausted", "RESOURCE_EXHAUSTED", "bad_alloc", "Out of memory", "OOM",
             "MemoryError", "failed to allocate", "Cannot allocate memory",
             "can't allocate memory")  # TensorFlow, JAX (XLA), PyTorch
MEMORY_SHARE = 0.8  # of RAM, the default per-case limit
BACKEND_NAMES = {"tensorflow": ("TensorFlow", "tensorflow"), "jax": ("JAX", "jax"),
                 "torch": ("PyTorch", "torch")}  # Keras backend → (name, module)


def run_case(case, timeout=TIMEOUT, memory_limit_bytes=None):
    """Measures `case` (a Case or a Race) in a fresh process. Status: ok, OOM (an
    allocation failed or the process was killed for memory), timeout, or error
    (with the reason).

    Example:
    ```python
    from keras_lambda.bench import Case, run_case

    result = run_case(Case("lambda/r7/auto", 8, 16, batch=2, repeats=1))
    print(result["status"], result["train_s"], result["peak_bytes"])
    ```
    """
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
    """One line naming the machine a run measured: devices, backend, versions."""
    import importlib

    import keras

    from keras_lambda.bench.measure import gpu_names

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    gpus = gpu_names()
    name, module = BACKEND_NAMES[keras.backend.backend()]
    version = f"{name} {importlib.import_module(module).__version__}"
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{'GPU: ' + ', '.join(gpus) + '; ' if gpus else ''}CPU: {cpu}, "
        f"{len(os.sched_getaffinity(0))} cores available, {memory:.0f} GiB RAM; "
        f"Keras {keras.__version__} on {version}, Python {platform.python_version()}"
    )


def default_name():
    """bench-cpu / bench-gpu on TensorFlow, bench-jax-gpu, bench-torch-cpu, ... else."""
    from keras_lambda.bench.measure import device

    backend, kind = device()
    prefix = "bench" if backend == "tensorflow" else f"bench-{backend}"
    return f"{prefix}-{kind.lower()}"


def run(case_list, timeout=TIMEOUT, memory_limit_bytes=None, progress=print, on_result=None):
    """Measures each case in turn (fresh process each); returns the records.
    Cases that cannot finish (`policy.skip_reason`) are recorded without running.
    `on_result(results)` is called after every case (to save them as they come).

    Example:
    ```python
    from keras_lambda.bench import cases, run

    results = run(cases(["lambda/content"], sizes=[8], dims=[16], batch=2, repeats=1))
    print(results[0]["status"], results[0]["train_s"])
    ```
    """
    results = []
    for index, case in enumerate(case_list, 1):
        skip = policy.skip_reason(case, results, timeout)
        if skip:
            result = {**dataclasses.asdict(case), "status": skip[0], "reason": skip[1]}
        else:
            result = run_case(case, timeout, memory_limit_bytes)
        results.append(result)
        if on_result:
            on_result(results)
        if progress:
            progress(f"[{index}/{len(case_list)}] {describe(result)}")
    return results


def describe(result):
    """One line for the progress output."""
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
    """`MEMORY_SHARE` of physical memory: a case that needs more is reported OOM,
    and the machine stays usable."""
    return int(MEMORY_SHARE * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_settings(methods, sizes, dims, batch, repeats, race_rounds, timeout):
    """Raises UsageError naming the first bad setting."""
    unknown = [m for m in methods if m not in LAYER_METHODS + ALL_MODEL_METHODS]
    if unknown:
        raise UsageError(
            f"unknown `methods` {', '.join(unknown)}; choose from "
            f"{', '.join(LAYER_METHODS + ALL_MODEL_METHODS)}"
        )
    for label, values in (("sizes", sizes), ("dims", dims)):
        if not values or any(value < 1 for value in values):
            raise UsageError(f"`{label}` must be positive integers, got {list(values)}")
    for label, value in (("batch", batch), ("repeats", repeats), ("timeout", timeout)):
        if value < 1:
            raise UsageError(f"`{label}` must be >= 1, got {value}")
    if race_rounds < 0:
        raise UsageError(f"`race_rounds` must be >= 0 (0: no races), got {race_rounds}")
    if any(dim % HEADS for dim in dims):
        raise UsageError(f"`dims` must be multiples of the {HEADS} heads, got {list(dims)}")


def benchmark(
    methods=LAYER_METHODS + MODEL_METHODS,
    sizes=SIZES,
    dims=DIMS,
    batch=BATCH,
    repeats=REPEATS,
    race_rounds=RACE_ROUNDS,
    timeout=TIMEOUT,
    memory_limit_bytes=None,
    output_dir=OUTPUT_DIR,
    name="bench",
    command="keras-lambda bench",
    progress=print,
):
    """Runs the cases, then the races that decide near-ties (none if race_rounds
    is 0), prints the table, writes NAME.json (after every case and race),
    NAME.md and the figures (NAME.png, NAME-implementations.png) into output_dir;
    returns (results, race results).

    Example:
    ```python
    from keras_lambda.bench import benchmark

    results, races = benchmark(methods=["lambda/global/auto", "attention"], sizes=[8], dims=[16],
                               batch=2, repeats=1, race_rounds=0, output_dir="runs/bench",
                               name="example")
    ```
    """
    check_settings(methods, sizes, dims, batch, repeats, race_rounds, timeout)
    progress = progress or (lambda message: None)
    check_output_dir(output_dir)  # before any case: a bad folder loses no measurement
    memory_limit_bytes = memory_limit_bytes or default_memory_limit()
    description = machine()
    progress(f"machine: {description}")
    os.makedirs(output_dir, exist_ok=True)
    paths = {kind: os.path.join(output_dir, f"{name}.{kind}") for kind in ("md", "json")}
    record = {"machine": description, "date": datetime.date.today().isoformat(),
              "command": command, "results": [], "races": []}

    def save(results=None):  # the record so far, after every case and race
        if results is not None:
            record["results"] = results
        write_json(paths["json"], record)

    results = run(cases(methods, sizes, dims, batch, repeats), timeout, memory_limit_bytes,
                  progress, on_result=save)
    race_list = policy.races(results, race_rounds) if race_rounds else []
    race_results = record["races"]
    for index, contest in enumerate(race_list, 1):
        # A race times each method for about as many steps as its own case did.
        race_results.append(run_case(contest, timeout * len(contest.methods), memory_limit_bytes))
        save()
        progress(f"[race {index}/{len(race_list)}] {describe(race_results[-1])}")
    save(results)
    text = report.markdown(results, description, command, race_results)
    with open(paths["md"], "w") as file:
        file.write(text)
    try:
        figure_paths = figures.draw(record, os.path.join(output_dir, name))
    except ImportError:
        figure_paths = []
        progress("matplotlib is not installed: no figures (pip install matplotlib)")
    progress("\n" + text)
    progress("written: " + ", ".join([*paths.values(), *figure_paths]))
    return results, race_results
