"""keras_lambda.bench.report: ratios against attention and the tables."""

import pytest

from keras_lambda.bench import report
from tests.helpers import fake_result


def test_ratios_are_against_attention_of_the_same_size_and_d():
    results = [fake_result("attention", 32, 2.0, 1.0), fake_result("lambda/global/auto", 32, 0.5, 0.2),
               fake_result("attention", 32, 8.0, 4.0, dim=256)]
    rows = report.with_ratios(results)
    assert rows[1]["speedup"] == pytest.approx(4.0)
    assert rows[1]["memory_ratio"] == pytest.approx(0.2)
    table = report.layer_table(rows)
    assert "| 128 | 32 | lambda/global/auto | 500 | 4.00x |" in table


def test_summary_table_puts_sizes_down_and_methods_across():
    results = [fake_result("attention", 16, 0.05, 0.1), fake_result("lambda/global/auto", 16, 0.04, 0.05),
               fake_result("attention", 32, 1, 1, status="OOM")]
    table = report.summary_table(results).splitlines()
    assert table[0] == "| s (n = s²), d = 128 | lambda/global/auto | attention |"
    assert table[2] == "| 16x16 | 40 ms · 51 MiB | 50 ms · 102 MiB |"
    assert table[3] == "| 32x32 |  | OOM |"


def test_a_models_only_run_reports_the_model_race():
    results = [fake_result("model/resnet50", 128, 2.0, 1, dim=0, images_per_s=8.0),
               fake_result("model/lambda_resnet50", 128, 2.6, 1, dim=0, images_per_s=6.15)]
    race = {"methods": ["model/lambda_resnet50", "model/resnet50"], "size": 128, "dim": 0,
            "batch": 16, "rounds": 3, "status": "ok",
            "train_s": {"model/lambda_resnet50": 2.0, "model/resnet50": 1.9},
            "rounds_s": {"model/lambda_resnet50": [2.0, 2.1, 1.9], "model/resnet50": [1.9, 1.8, 2.1]}}
    text = report.markdown(results, "test machine", "keras-lambda bench", [race])
    assert "model/lambda_resnet50 2,000 ms a step (8.0 images/s)" in text
    # rounds: 1.9/2.0, 1.8/2.1, 2.1/1.9 → 0.95, 0.857, 1.105
    assert "LambdaResNet-50 at 0.95x ResNet50's images/s (rounds 0.86-1.11x)" in text
    assert "## auto against" not in text and "## Layers" not in text  # no layer cases


def test_the_race_table_pools_auto_with_the_kernel_it_runs():
    results = [fake_result("lambda/r7/auto", 32, 0.7, 0.2, implementation="fft"),
               fake_result("lambda/r7/fft", 32, 0.62, 0.2),
               fake_result("lambda/r7/conv", 32, 0.52, 0.2)]
    rounds = {"lambda/r7/auto": [0.66, 0.61, 0.64], "lambda/r7/conv": [0.81, 0.80, 0.83],
              "lambda/r7/fft": [0.59, 0.60, 0.58]}
    race = {"methods": ["lambda/r7/auto", "lambda/r7/conv", "lambda/r7/fft"], "size": 32,
            "dim": 128, "batch": 8, "rounds": 3, "status": "ok", "rounds_s": rounds,
            "train_s": {m: sorted(s)[1] for m, s in rounds.items()},
            "implementation": {"lambda/r7/auto": "fft"}}
    # auto's and fft's rounds pooled: median 0.605 against conv's 0.81
    assert report.race_verdict(race) == (pytest.approx(0.605 / 0.81 - 1), "lambda/r7/conv")
    text = report.markdown(results, "test machine", "keras-lambda bench", [race])
    assert "| lambda/r7 | 32 | 128 | fft | auto 640, conv 810, fft 590 | -25% vs conv |" in text


def test_headline_ratios_come_from_the_races_round_by_round():
    results = [fake_result("lambda/global/auto", 32, 1.0, 0.2, implementation="fft"),
               fake_result("attention", 32, 2.0, 1.0), fake_result("paper", 32, 1.5, 0.5)]
    rounds = {"lambda/global/auto": [1.0, 1.1, 0.9], "attention": [2.0, 2.0, 2.7],
              "paper": [1.5, 1.65, 1.8]}
    race = {"methods": ["lambda/global/auto", "attention", "paper"], "size": 32, "dim": 128,
            "batch": 8, "rounds": 3, "status": "ok", "purpose": "headline", "rounds_s": rounds,
            "train_s": {m: sorted(s)[1] for m, s in rounds.items()},
            "implementation": {"lambda/global/auto": "fft"}}
    # attention / lambda per round: 2.0, 1.82, 3.0; paper / lambda: 1.5, 1.5, 2.0
    text = report.markdown(results, "test machine", "keras-lambda bench", [race])
    assert ("| 32x32 | 128 | 1,000 ms (fft) | 2,000 ms | **2.00x** (1.82-3.00) | 1,650 ms "
            "| **1.50x** (1.50-2.00) |") in text
    assert "## auto against" not in text  # a headline race does not judge auto
    assert report.race_of(results[0], [race]) is None
