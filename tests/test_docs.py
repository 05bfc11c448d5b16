"""The API reference: every public name is in it, each class and function there has an
example in its docstring, and the examples run (in a scratch folder, offline).

The site itself is built by `mkdocs build --strict` (the docs extra), which fails on a
broken link or a reference that does not resolve."""

import importlib
import inspect
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).parents[1]
DIRECTIVE = re.compile(r"^::: ([\w.]+)$", re.MULTILINE)
CODE = re.compile(r"```python\n(.*?)```", re.DOTALL)
# Examples that read a file only a download gives: compiled, not run (the download is what
# they show); each says so in a "# needs:" line.
NEEDS = "# needs:"
SLOW = {"train", "search", "benchmark", "run", "Race", "LambdaResNetHyperModel"}  # train a model or start processes


def documented():
    """Every `::: path` of docs/api/*.md, as (path, object)."""
    found = []
    for page in sorted((ROOT / "docs" / "api").glob("*.md")):
        for path in DIRECTIVE.findall(page.read_text()):
            module, _, name = path.rpartition(".")
            try:
                found.append((path, getattr(importlib.import_module(module), name)))
            except ModuleNotFoundError:  # a module documented whole
                found.append((path, importlib.import_module(path)))
    return found


def with_examples():
    return [(path, obj) for path, obj in documented()
            if inspect.isclass(obj) or inspect.isfunction(obj)]


def examples(obj):
    return CODE.findall(inspect.getdoc(obj) or "")


def test_every_public_name_is_in_the_api_reference():
    names = {path.rpartition(".")[2] for path, _ in documented()}
    constants = {"FAST_PATHS", "IMPLEMENTATIONS", "KERNELS", "QUERY_FIRST",  # listed as text
                 "ALL_MODEL_METHODS", "BASELINE", "LAYER_METHODS", "MODEL_BASELINE",
                 "MODEL_METHODS", "QUICK", "SIZES", "DIMS"}
    ops_page = (ROOT / "docs" / "api" / "ops.md").read_text()
    for package in ("layers", "models", "ops", "bench"):
        module = importlib.import_module(f"keras_lambda.{package}")
        missing = [name for name in module.__all__
                   if name not in names and name not in constants
                   and name not in ("PaddedMaxPooling2D", "StochasticDepth")]  # layers' own page
        assert not missing, f"keras_lambda.{package}: {missing} not in docs/api"
    assert all(f"`keras_lambda.ops.{name}`" in ops_page
               for name in ("KERNELS", "IMPLEMENTATIONS", "QUERY_FIRST", "FAST_PATHS"))


@pytest.mark.parametrize("path, obj", with_examples(), ids=[p for p, _ in with_examples()])
def test_each_class_and_function_has_an_example(path, obj):
    assert examples(obj), f"{path}: no ```python example in its docstring"


RUNNABLE = [(path, obj) for path, obj in with_examples()
            if examples(obj) and not any(NEEDS in code for code in examples(obj))]


@pytest.mark.parametrize(
    "path, obj",
    [pytest.param(path, obj, marks=[pytest.mark.slow] if path.rpartition(".")[2] in SLOW else [])
     for path, obj in RUNNABLE],
    ids=[path for path, _ in RUNNABLE])
def test_the_example_runs(path, obj, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # what an example writes stays in the scratch folder
    for code in examples(obj):
        exec(compile(code, f"<example of {path}>", "exec"), {"__name__": "__example__"})
    printed = capsys.readouterr().out
    # A value a comment states after a print (a shape, a tuple, a class name) is what ran.
    for comment in re.findall(r"print\(.*\)\s+# (.+)", "\n".join(examples(obj))):
        stated = re.match(r"\(.*?\)|\[\[.*\]\]|'(\w+)'", comment)
        if stated:
            assert (stated.group(1) or stated.group(0)) in printed, (path, comment, printed[-500:])


def test_examples_that_need_a_download_compile():
    needing = [(path, code) for path, obj in with_examples() for code in examples(obj)
               if NEEDS in code]
    assert [path for path, _ in needing] == ["keras_lambda.models.timm_convert.convert_timm"]
    for path, code in needing:
        compile(code, f"<example of {path}>", "exec")


def user_pages():
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")),
            ROOT / "benchmarks" / "README.md"]


def test_the_readme_and_docs_links_resolve():
    """Relative links of the README, the docs and the benchmarks index point at files that
    exist (mkdocs build --strict checks the site's own; this covers the README too)."""
    for page in user_pages():
        if "notebooks" in page.parts:  # docs/notebooks is the notebooks folder itself
            continue
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)}: {target}"


def test_the_readme_is_short_and_speaks_to_users():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    for page in user_pages():
        text = page.read_text()
        assert "../shared" not in text and "CI-class" not in text, page
        # an issue of this project ("#12", "issue 17"); another project's (owner/repo#N) and
        # KerasTuner's trial numbers ("Trial #1") are fine
        assert not re.search(r"(?<![\w/-])(?<!Trial )#\d+\b|\bissue \d+", text), page


def test_code_comments_name_records_instead_of_quoting_measurements():
    """A measured ratio ("1.3x", "1.5-2.9x") belongs in a record under benchmarks/, where it
    can be re-measured; the code says why and names the record. Settings stay ("within
    1.5x of the fastest" is the bench's threshold)."""
    ratio = re.compile(r"\b\d+(\.\d+)?(-\d+(\.\d+)?)?x\b(?!\d)")
    found = []
    for path in sorted((ROOT / "keras_lambda").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = ratio.search(line)
            if match and match.group(0) not in ("1x", "4x") and "within 1.5x" not in line:
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
