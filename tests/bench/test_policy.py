"""keras_lambda.bench.policy: which cases are skipped and which near-ties race."""

from keras_lambda.bench import Case, Race, policy
from tests.helpers import fake_result


def test_cases_that_cannot_finish_are_not_started():
    case = Case("lambda/global/conv", 64, 128, repeats=3)
    ran = {"method": "lambda/global/conv", "dim": 128, "status": "ok", "size": 32,
           "train_s": 10.0, "infer_s": 2.0}
    status, reason = policy.skip_reason(case, [ran], timeout=100)
    assert status == "timeout" and "predicted >= 192 s" in reason  # 12 s · 4 · (3 + 1)
    assert policy.skip_reason(case, [ran], timeout=1000) is None
    out_of_memory = dict(ran, status="OOM")
    assert policy.skip_reason(case, [out_of_memory], timeout=1000)[0] == "OOM"
    assert policy.skip_reason(case, [dict(ran, dim=256)], timeout=100) is None  # another d


def test_implementations_far_behind_another_are_not_run_at_larger_sizes():
    conv = fake_result("lambda/global/conv", 16, 1.1, 0.1)
    fft = fake_result("lambda/global/fft", 16, 0.12, 0.1)
    case = Case("lambda/global/conv", 32, 128)
    assert policy.skip_reason(case, [conv, fft], timeout=1000) == (
        "skipped", "9x slower than fft at s=16")
    assert policy.skip_reason(case, [dict(conv, train_s=0.5), fft], timeout=1000) is None  # 4x
    skipped = dict(conv, size=32, status="skipped")
    assert policy.skip_reason(Case("lambda/global/conv", 64, 128), [conv, fft, skipped],
                           timeout=1000)[0] == "skipped"
    # auto always runs; rivals are of the same context, d and size only
    assert policy.skip_reason(Case("lambda/global/auto", 32, 128),
                           [dict(conv, method="lambda/global/auto"), fft], timeout=1000) is None
    assert policy.skip_reason(case, [conv, dict(fft, method="lambda/r7/fft")], timeout=1000) is None
    assert policy.skip_reason(case, [conv, dict(fft, dim=256)], timeout=1000) is None


def test_auto_races_the_implementations_within_reach():
    results = [
        fake_result("lambda/r7/auto", 32, 0.6, 0.2, implementation="fft"),
        fake_result("lambda/r7/fft", 32, 0.62, 0.2), fake_result("lambda/r7/conv", 32, 0.52, 0.2),
        fake_result("lambda/r7/einsum", 32, 0.9, 0.4),  # 1.73x the fastest: out of reach
        fake_result("lambda/global/auto", 32, 0.5, 0.2, implementation="fft"),
        fake_result("lambda/global/fft", 32, 0.5, 0.2), fake_result("lambda/global/einsum", 32, 0.9, 0.2),
        fake_result("lambda/r23/auto", 32, 0.5, 0.2, implementation="fft"),
        fake_result("lambda/r23/fft", 32, 0.5, 0.2), fake_result("lambda/r23/einsum", 32, 0.6, 0.2, dim=256),
    ]
    found = policy.races(results, rounds=5)
    # global and r23: fft is alone within 1.5x of the fastest (einsum 1.8x; another d)
    assert found == [Race(("lambda/r7/auto", "lambda/r7/conv", "lambda/r7/fft"), 32, 128,
                                8, 5)]
    models = [fake_result("model/resnet50", 128, 2.0, 1, dim=0, images_per_s=8.0),
              fake_result("model/lambda_resnet50", 128, 2.5, 1, dim=0, images_per_s=6.4)]
    assert policy.races(models, rounds=5) == [
        Race(("model/lambda_resnet50", "model/resnet50"), 128, 0, 8, 5, "models")]
    assert policy.races(models[:1]) == []


def test_the_global_layer_races_attention_and_the_paper_where_they_ran():
    results = [fake_result(method, 16, 0.05, 0.1) for method in ("lambda/global/auto", "attention", "paper")]
    results += [fake_result("lambda/global/auto", 32, 0.5, 0.2), fake_result("paper", 32, 0.7, 0.5),
                fake_result("attention", 32, 9.0, 9.0, status="OOM"),
                fake_result("lambda/global/auto", 64, 2.0, 1.0)]
    assert policy.headline_races(results, rounds=5) == [
        Race(("lambda/global/auto", "attention", "paper"), 16, 128, 8, 5, "headline"),
        Race(("lambda/global/auto", "paper"), 32, 128, 8, 5, "headline"),
    ]  # none at 64: nothing to race against
