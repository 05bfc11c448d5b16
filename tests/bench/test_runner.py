"""keras_lambda.bench.runner: cases run isolated, OOM and timeouts are results, races
round by round, the command writes its files."""

import json

import pytest

from keras_lambda.bench import Case, Race, runner
from keras_lambda.ops import IMPLEMENTATIONS
from tests.helpers import run_cli


def test_a_case_runs_in_its_own_process():
    result = runner.run_case(Case("lambda/r7/auto", 8, 16, batch=2, repeats=1))
    assert result["status"] == "ok", result
    assert result["method"] == "lambda/r7/auto" and result["train_s"] > 0


def test_running_out_of_memory_is_a_result_not_a_crash():
    # The paper's pseudo-code at 64x64 materialises its [n, m, k] embeddings (1 GiB) and
    # their gradient on every backend; the case gets 2 GiB. (Not attention: Keras on
    # PyTorch runs it through a memory-efficient kernel, 115 MiB at 64x64.)
    result = runner.run_case(Case("paper", 64, 128, repeats=1), memory_limit_bytes=2 * 2**30)
    assert result["status"] == "OOM", result
    assert any(sign in result["reason"] for sign in ("ResourceExhausted", "RESOURCE_EXHAUSTED",
                                                     "alloc")), result["reason"]


def test_a_case_past_its_time_is_a_timeout():
    result = runner.run_case(Case("lambda/r7/auto", 8, 16, repeats=1), timeout=1)
    assert result["status"] == "timeout" and result["reason"] == "> 1 s"


def test_a_race_times_every_method_round_by_round_in_its_own_process():
    race = Race(("lambda/r7/auto", "lambda/r7/fft", "lambda/r7/depthwise"), 8, 16,
                      batch=2, rounds=3)
    result = runner.run_case(race)
    assert result["status"] == "ok", result
    assert set(result["train_s"]) == set(race.methods)
    for method, seconds in result["rounds_s"].items():
        assert len(seconds) == 3 and result["train_s"][method] == sorted(seconds)[1]
        assert result["calls"][method] >= 1
    assert result["implementation"]["lambda/r7/auto"] in IMPLEMENTATIONS


def test_the_bench_command_writes_a_table_markdown_json_and_figures(tmp_path):
    result = run_cli("bench", "--sizes", "8", "--dims", "16", "--batch", "2", "--repeats", "1",
                     "--methods", "lambda/global/auto", "attention", "paper",
                     "--output-dir", str(tmp_path), "--name", "small")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| 16 | 8 | attention |" in result.stdout and "1.00x" in result.stdout
    report = (tmp_path / "small.md").read_text()
    assert "Machine: CPU" in report and "keras-lambda bench --sizes 8" in report
    assert (tmp_path / "small.png").stat().st_size > 10_000  # the headline figure
    assert not (tmp_path / "small-implementations.png").exists()  # no kernel named: auto alone
    written = json.loads((tmp_path / "small.json").read_text())
    # No explicit implementation for auto to race; the headline race, with the spread of its rounds.
    [race] = written["races"]
    assert race["purpose"] == "headline" and race["status"] == "ok"
    assert race["methods"] == ["lambda/global/auto", "attention", "paper"]
    assert all(len(race["rounds_s"][method]) == 7 for method in race["methods"])
    assert "## Headline ratios (races)" in report and "| 8x8 | 16 |" in report
    records = written["results"]
    assert [r["method"] for r in records] == ["lambda/global/auto", "attention", "paper"]
    assert all(r["status"] == "ok" for r in records)


def test_the_bench_command_writes_under_runs_by_default(tmp_path):
    """Run from a checkout's root, it leaves the shipped records (benchmarks/) alone."""
    (tmp_path / "benchmarks").mkdir()
    record = tmp_path / "benchmarks" / "quick.json"
    record.write_text("{}")
    result = run_cli("bench", "--methods", "lambda/content", "--sizes", "8", "--dims", "16",
                     "--batch", "2", "--repeats", "1", "--race-rounds", "0", "--name", "quick",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    written = json.loads((tmp_path / "runs" / "bench" / "quick.json").read_text())
    assert [r["method"] for r in written["results"]] == ["lambda/content"]
    assert record.read_text() == "{}"


@pytest.mark.parametrize("mode", [[], ["--export-latency"], ["--input-pipeline"]],
                         ids=["layers", "export-latency", "input-pipeline"])
def test_a_record_that_exists_is_replaced_only_with_overwrite(tmp_path, mode):
    name = {"--export-latency": "export-latency",
            "--input-pipeline": "input-pipeline"}.get(mode[0] if mode else None, "mine")
    (tmp_path / f"{name}.md").write_text("the shipped record")
    args = ["bench", *mode, "--output-dir", str(tmp_path)] + ([] if mode else ["--name", "mine"])
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"keras-lambda: error: --output-dir: {tmp_path / name}.md exists; pass --overwrite to "
        "replace it, or choose another --output-dir or --name")
    assert (tmp_path / f"{name}.md").read_text() == "the shipped record"
    assert len(list(tmp_path.iterdir())) == 1


def test_overwrite_replaces_a_record(tmp_path):
    (tmp_path / "mine.json").write_text("{}")
    result = run_cli("bench", "--methods", "lambda/content", "--sizes", "8", "--dims", "16",
                     "--batch", "2", "--repeats", "1", "--race-rounds", "0", "--name", "mine",
                     "--output-dir", str(tmp_path), "--overwrite")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "mine.json").read_text())["results"][0]["status"] == "ok"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--methods", "transformer"], "unknown --methods transformer; choose from"),
        (["--dims", "30"], "--dims must be multiples of the 4 heads, got [30]"),
        (["--sizes", "0"], "--sizes must be positive integers, got [0]"),
        (["--repeats", "0"], "--repeats must be >= 1, got 0"),
        (["--race-rounds", "-1"], "--race-rounds must be >= 0 (0: no races), got -1"),
        (["--sizes", "big"], "argument --sizes: invalid int value: 'big'"),
    ],
)
def test_bad_bench_input_is_one_line_exit_2(tmp_path, args, message):
    result = run_cli("bench", *args, "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_every_finished_case_is_on_disk_before_the_report(tmp_path, monkeypatch):
    """A crash while writing the report (or a kill) loses no measurement."""
    from keras_lambda.bench import report

    def broken(*args, **kwargs):
        raise RuntimeError("the report failed")

    monkeypatch.setattr(report, "markdown", broken)
    with pytest.raises(RuntimeError, match="the report failed"):
        runner.benchmark(methods=["lambda/content", "attention"], sizes=[8], dims=[16], batch=2,
                         repeats=1, race_rounds=0, output_dir=str(tmp_path), name="run",
                         progress=None)
    written = json.loads((tmp_path / "run.json").read_text())
    assert [r["method"] for r in written["results"]] == ["lambda/content", "attention"]
    assert all(r["status"] == "ok" for r in written["results"])
