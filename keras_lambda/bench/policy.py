"""Which cases need not run, and what is raced.

A case is not started when the same method and d at a smaller size ran out of
memory or time, was `SLOWER_LIMIT` times slower than another implementation of
its context, or took so long that it cannot finish within the timeout. Where an
implementation other than `auto`'s pick is within `RACE_WITHIN` of the fastest,
`auto` races them in one process; the global layer races attention and the
paper's pseudo-code wherever it ran beside them (the headline ratios); LambdaResNet-50
races ResNet50.
"""

from keras_lambda.bench.methods import (
    HEADLINE,
    HEADLINE_RIVALS,
    MODEL_BASELINE,
    Method,
    Race,
)

SLOWER_LIMIT = 5  # an implementation this much slower than the best is not run at larger sizes
RACE_WITHIN = 1.5  # implementations within this factor of the fastest race `auto`
MODEL_RACER = "model/lambda_resnet50"


def explicit_implementations(results, family, size, dim, batch):
    """The results that ran of `family`'s (e.g. "lambda/r7") implementations other
    than auto, at one size, d and batch."""
    found = []
    for result in results:
        method = Method.parse(result["method"])
        if (result["status"] == "ok" and method.is_explicit and method.family == family
                and (result["size"], result["dim"], result["batch"]) == (size, dim, batch)):
            found.append(result)
    return found


def fastest_rival(case, earlier, size):
    """The fastest other explicit implementation of `case`'s family (same d and
    batch) measured at `size`, or None (also for methods without rivals)."""
    method = Method.parse(case.method)
    if not method.is_explicit:
        return None
    others = [r for r in earlier if r["method"] != case.method]
    rivals = explicit_implementations(others, method.family, size, case.dim, case.batch)
    return min(rivals, key=lambda r: r["train_s"], default=None)


def skip_reason(case, earlier, timeout):
    """(status, reason) when `case` need not run (module doc), else None."""
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
    rival = fastest_rival(case, earlier, largest["size"])
    if rival is not None and largest["train_s"] > SLOWER_LIMIT * rival["train_s"]:
        return "skipped", (
            f"{largest['train_s'] / rival['train_s']:.0f}x slower than "
            f"{Method.parse(rival['method']).implementation} at s={largest['size']}"
        )
    growth = (case.size / largest["size"]) ** 2  # at least linear in n
    at_least = (largest["train_s"] + largest["infer_s"]) * growth * (case.repeats + 1)
    if at_least > timeout:
        return "timeout", (
            f"predicted >= {at_least:.0f} s (linear in n from s={largest['size']}) > {timeout} s"
        )
    return None


def races(results, rounds=7, within=RACE_WITHIN):
    """The `Race`s that decide near-ties: for each lambda family, size and d where
    `auto` ran, auto against every explicit implementation within `within` of the
    fastest (none where auto's pick is the only such one: it is the fastest by a
    margin no noise explains); and LambdaResNet-50 against ResNet50 when both ran."""
    found = []
    for auto in results:
        method = Method.parse(auto["method"])
        if not (method.is_auto and auto["status"] == "ok"):
            continue
        explicit = explicit_implementations(results, method.family, auto["size"], auto["dim"],
                                            auto["batch"])
        if not explicit:
            continue
        fastest = min(r["train_s"] for r in explicit)
        contenders = [r["method"] for r in sorted(explicit, key=lambda r: r["train_s"])
                      if r["train_s"] <= within * fastest]
        if contenders == [f"{method.family}/{auto.get('implementation')}"]:
            continue
        found.append(Race((auto["method"], *contenders), auto["size"], auto["dim"],
                          auto["batch"], rounds))
    found += headline_races(results, rounds)
    ran = {r["method"]: r for r in results if r["status"] == "ok"}
    if MODEL_RACER in ran and MODEL_BASELINE in ran:
        model = ran[MODEL_RACER]
        found.append(Race((MODEL_RACER, MODEL_BASELINE), model["size"], 0, model["batch"],
                          rounds, "models"))
    return found


def headline_races(results, rounds=7):
    """The races behind the headline ratios: at every size and d where `HEADLINE`
    ran, it against each of `HEADLINE_RIVALS` that ran there too."""
    ran = {(r["method"], r["size"], r["dim"], r["batch"]) for r in results if r["status"] == "ok"}
    found = []
    for method, size, dim, batch in sorted(ran, key=lambda key: (key[2], key[1])):
        if method != HEADLINE:
            continue
        rivals = [rival for rival in HEADLINE_RIVALS if (rival, size, dim, batch) in ran]
        if rivals:
            found.append(Race((HEADLINE, *rivals), size, dim, batch, rounds, "headline"))
    return found
