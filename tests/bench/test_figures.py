"""keras_lambda.bench.figures: the headline and implementations figures, drawn
from a small synthetic record."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors  # noqa: E402
import pytest  # noqa: E402

from keras_lambda.bench import figures  # noqa: E402
from tests.helpers import fake_result  # noqa: E402

SIZES = (16, 32, 64, 128)


def synthetic_record():
    """Attention and the paper run out of memory at 128x128; the global einsum
    runs out of time at 64x64 and is not run at 128x128."""
    results = []
    for size in SIZES:
        scale = (size / 16) ** 2
        failed = "OOM" if size == 128 else "ok"
        results += [
            fake_result("attention", size, 0.08 * scale**2, 0.1 * scale**2, status=failed),
            fake_result("paper", size, 0.06 * scale**2, 0.08 * scale**2, status=failed),
            fake_result("lambda/global/auto", size, 0.02 * scale**1.5, 0.025 * scale),
            fake_result("lambda/r23/auto", size, 0.015 * scale, 0.02 * scale),
            fake_result("lambda/r7/auto", size, 0.012 * scale, 0.015 * scale),
            fake_result("lambda/content", size, 0.004 * scale, 0.005 * scale),
            fake_result("lambda/global/fft", size, 0.021 * scale**1.5, 0.025 * scale),
            fake_result("lambda/r7/depthwise", size, 0.012 * scale, 0.015 * scale),
        ]
        if size <= 64:
            einsum = "timeout" if size == 64 else "ok"
            results.append(fake_result("lambda/global/einsum", size, 0.018 * scale**2,
                                       0.03 * scale**2, status=einsum))
    return {"machine": "CPU: test machine; TensorFlow 2.99", "date": "2026-11-26",
            "results": results, "races": []}


def labelled_lines(axis):
    return {line.get_label(): line for line in axis.get_lines()
            if not line.get_label().startswith("_")}


def failure_markers(axis):
    return sorted(line.get_gid() for line in axis.get_lines() if line.get_gid())


def test_the_headline_figure_draws_each_method_once_in_its_own_colour_and_marker():
    figure = figures.headline_figure(synthetic_record())
    time_axis, memory_axis, ratio_axis = figure.axes
    expected = {"attention", "paper's pseudo-code", "lambda, global", "lambda, r = 23",
                "lambda, r = 7", "lambda, content only"}
    for axis in (time_axis, memory_axis):
        lines = labelled_lines(axis)
        assert set(lines) == expected
        colours = {matplotlib.colors.to_hex(line.get_color()) for line in lines.values()}
        markers = {line.get_marker() for line in lines.values()}
        assert len(colours) == len(markers) == len(expected)
        # a label at every line's end, in the line's colour
        texts = {text.get_text(): text for text in axis.texts}
        for label, line in lines.items():
            assert texts[label].get_color() == line.get_color()
            assert texts[label].xy == (line.get_xdata()[-1], line.get_ydata()[-1])
        # log axes in both directions
        assert axis.get_xscale() == axis.get_yscale() == "log"
    assert "test machine" in figure._suptitle.get_text()
    assert "TensorFlow 2.99" in figure._suptitle.get_text()
    assert "2026-11-26" in figure._suptitle.get_text()


def test_out_of_memory_is_a_marker_at_the_top_edge_not_a_missing_point():
    figure = figures.headline_figure(synthetic_record())
    time_axis, memory_axis, _ = figure.axes
    for axis in (time_axis, memory_axis):
        assert failure_markers(axis) == ["OOM: attention", "OOM: paper's pseudo-code"]
        marker = next(line for line in axis.get_lines() if line.get_gid() == "OOM: attention")
        assert list(marker.get_xdata()) == [128**2]
        assert list(marker.get_ydata()) == [1.0]  # in axes coordinates: the top edge
        paper = next(line for line in axis.get_lines()
                     if line.get_gid() == "OOM: paper's pseudo-code")
        assert list(paper.get_xdata()) == [128**2] and paper.get_ydata()[0] < 1.0  # below it
        assert labelled_lines(axis)["attention"].get_xdata()[-1] == 64**2
        assert "OOM" in [text.get_text() for text in axis.texts]


def test_the_ratio_panel_shows_speed_and_memory_against_attention_with_a_1x_line():
    figure = figures.headline_figure(synthetic_record())
    ratio_axis = figure.axes[2]
    lines = labelled_lines(ratio_axis)
    assert "lambda, global: speed" in lines and "lambda, global: memory" in lines
    assert not any(label.startswith("attention") for label in lines)
    speed = lines["lambda, global: speed"]
    # attention 0.08·16² s against 0.02·16^1.5 s at 64x64 (scale 16): 0.08·16^0.5/0.02 = 16x
    assert list(speed.get_xdata()) == [16**2, 32**2, 64**2]  # attention OOM at 128x128
    assert speed.get_ydata()[-1] == pytest.approx(0.08 * 16**2 / (0.02 * 16**1.5))
    numbers = [text.get_text() for text in ratio_axis.texts]
    assert "16.00x" in numbers  # the quoted ratio, written beside its point
    memory = lines["lambda, global: memory"]
    assert memory.get_ydata()[-1] == pytest.approx(0.025 * 16 / (0.1 * 16**2))
    assert any(list(line.get_ydata()) == [1.0, 1.0] for line in ratio_axis.get_lines())


def test_the_global_speed_comes_from_its_headline_race_with_the_spread_of_its_rounds():
    record = synthetic_record()
    rounds = {"lambda/global/auto": [1.0, 1.0, 1.0], "attention": [1.5, 1.8, 2.4],
              "paper": [1.0, 1.0, 1.0]}
    record["races"] = [{"methods": list(rounds), "size": 32, "dim": 128, "batch": 8,
                        "rounds": 3, "status": "ok", "purpose": "headline", "rounds_s": rounds,
                        "train_s": {m: sorted(r)[1] for m, r in rounds.items()}}]
    ratio_axis = figures.headline_figure(record).axes[2]
    numbers = [text.get_text() for text in ratio_axis.texts]
    assert "1.80x race" in numbers  # the median round, not the cases' 0.08·4²/(0.02·4^1.5) = 8x
    assert "8.00x" not in numbers and "16.00x" in numbers  # 64x64 had no race: its cases
    [bars] = ratio_axis.containers  # one error bar: the race's slowest to fastest round
    assert list(bars.lines[0].get_ydata()) == [1.8]
    low, high = sorted(bars.lines[2][0].get_segments()[0][:, 1])
    assert (low, high) == (pytest.approx(1.5), pytest.approx(2.4))


def test_the_implementations_figure_has_a_panel_per_context_and_marks_the_timeout():
    figure = figures.implementations_figure(synthetic_record())
    titles = [axis.get_title() for axis in figure.axes]
    assert [title.split(":")[0] for title in titles] == ["global", "r7"]
    global_axis, r7_axis = figure.axes
    assert set(labelled_lines(global_axis)) == {"einsum", "fft", "auto"}
    assert set(labelled_lines(r7_axis)) == {"depthwise", "auto"}
    assert failure_markers(global_axis) == ["timeout: einsum"]
    colours = {matplotlib.colors.to_hex(line.get_color())
               for line in labelled_lines(global_axis).values()}
    assert len(colours) == 3


def test_draw_writes_both_figures_and_nothing_for_a_models_only_record(tmp_path):
    written = figures.draw(synthetic_record(), str(tmp_path / "run"))
    assert written == [str(tmp_path / "run.png"), str(tmp_path / "run-implementations.png")]
    assert all((tmp_path / name).stat().st_size > 10_000
               for name in ("run.png", "run-implementations.png"))
    models = {"machine": "test", "results": [
        fake_result("model/resnet50", 128, 2.0, 1, dim=0)], "races": []}
    assert figures.draw(models, str(tmp_path / "models")) == []
    assert not list(tmp_path.glob("models*"))
