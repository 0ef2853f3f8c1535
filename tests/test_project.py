"""Project-level checks: pinned dependencies in sync, table of contents, notebook parameters,
the profile check the Makefile runs first, and the post-processing of executed notebooks."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def load_book_script() -> ModuleType:
    """scripts/book.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("book_script", ROOT / "scripts" / "book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pins(requirements: list[str]) -> dict[str, str]:
    """``{normalized name: version}`` from ``name==version`` lines; anything else is an error."""
    found = {}
    for line in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        assert match, f"not pinned with ==: {line!r}"
        found[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return found


def toc_files() -> list[str]:
    """Every ``file`` entry of _toc.yml, root included."""
    def walk(entry: dict[str, Any]) -> list[str]:
        own = [entry["file"]] if "file" in entry else []
        children = entry.get("parts", []) + entry.get("chapters", []) + entry.get("sections", [])
        return own + [name for child in children for name in walk(child)]

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"], *walk(toc)]


def test_environment_yml_pins_the_same_packages_as_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [
        req for extra in ("book", "dev") for req in project["optional-dependencies"][extra]
    ]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    pip_section = next(item["pip"] for item in env if isinstance(item, dict))
    assert "python=3.11" in env and "pip" in env
    assert "-e ." in pip_section
    assert pins([req for req in pip_section if req != "-e ."]) == pins(wanted)


def test_toc_lists_existing_files_and_every_notebook() -> None:
    listed = toc_files()
    missing = [name for name in listed if not any((ROOT / f"{name}{s}").exists() for s in (".md", ".ipynb"))]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"
    unlisted = [nb.name for nb in NOTEBOOKS if f"notebooks/{nb.stem}" not in listed]
    assert not unlisted, f"notebooks missing from _toc.yml (they would not be built or executed): {unlisted}"


each_notebook = pytest.mark.parametrize(
    "notebook", NOTEBOOKS or [pytest.param(None, marks=pytest.mark.skip("no notebooks yet"))],
    ids=lambda nb: getattr(nb, "name", "none"))


@each_notebook
def test_notebook_has_one_parameters_cell(notebook: Path) -> None:
    cells = json.loads(notebook.read_text())["cells"]
    tagged = [cell for cell in cells if "parameters" in cell["metadata"].get("tags", [])]
    assert len(tagged) == 1, f"{notebook.name}: {len(tagged)} cells tagged 'parameters', want exactly 1"
    source = "".join(tagged[0]["source"])
    assigned = {target.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Assign)
                for target in node.targets if isinstance(target, ast.Name)}
    assert {"profile", "device", "seed"} <= assigned, f"{notebook.name}: parameters cell assigns {assigned}"


def _unshown_tables(source: str) -> list[int]:
    """Lines of ``report.table(...)`` calls whose Markdown a cell would drop: only a cell's last
    expression is displayed, so any other table must be passed to ``display``."""
    body = ast.parse(source).body
    lines = []
    for i, stmt in enumerate(body):
        for node in ast.walk(stmt):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "table"):
                continue
            last = i == len(body) - 1 and isinstance(stmt, ast.Expr) and stmt.value is node
            shown = (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
                     and getattr(stmt.value.func, "id", "") == "display" and node in stmt.value.args)
            if not (last or shown):
                lines.append(node.lineno)
    return lines


def test_unshown_tables_are_found() -> None:
    assert _unshown_tables("report.table(h, r)\nx = 1") == [1]
    assert _unshown_tables("t = report.table(h, r)") == [1]
    assert _unshown_tables("display(report.table(h, r))\nx = 1\nreport.table(h, r)") == []


@each_notebook
def test_every_table_a_chapter_builds_is_shown(notebook: Path) -> None:
    cells = [cell for cell in json.loads(notebook.read_text())["cells"] if cell["cell_type"] == "code"]
    lost = [(i, _unshown_tables("".join(cell["source"]))) for i, cell in enumerate(cells)]
    assert not [x for x in lost if x[1]], (
        f"{notebook.name}: code cells (index, lines) build a report.table that is neither the cell's last "
        f"expression nor passed to display(), so the reader never sees it: {[x for x in lost if x[1]]}")


@each_notebook
def test_committed_outputs_show_no_warnings(notebook: Path) -> None:
    """A warning in a committed output (a deprecation, tqdm's missing widgets, a numpy overflow) is
    printed in the book beside the chapter's results: fix its cause instead."""
    warned = [i for i, cell in enumerate(json.loads(notebook.read_text())["cells"])
              for out in cell.get("outputs", []) if out.get("output_type") == "stream"
              and out.get("name") == "stderr" and "Warning" in "".join(out["text"])]
    assert not warned, f"{notebook.name}: cells {warned} print a warning in their committed output"


@each_notebook
def test_executed_notebook_was_refreshed_by_make_notebooks(notebook: Path) -> None:
    nb = json.loads(notebook.read_text())
    if not any(cell.get("outputs") for cell in nb["cells"]):
        pytest.skip(f"{notebook.name} has no outputs yet")
    problems = ["papermill metadata"] if "papermill" in nb["metadata"] else []
    for cell in nb["cells"]:
        tags = set(cell["metadata"].get("tags", []))
        if "papermill-error-cell-tag" in tags:
            problems.append("papermill's 'An Exception was encountered' cell")
        if tags & {"parameters", "injected-parameters"} and "remove-cell" not in tags:
            problems.append(f"a {sorted(tags)} cell not tagged remove-cell")
    assert not problems, f"{notebook.name}: {problems}; commit outputs made by `make notebooks`"


@pytest.mark.parametrize("command", [
    [sys.executable, "scripts/book.py", "check-profile", "nonsense"],
    ["make", "--no-print-directory", "check-profile", "PROFILE=nonsense"],
], ids=["script", "make"])
def test_unknown_profile_is_rejected_with_the_known_ones(command: list[str]) -> None:
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} not installed")
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "nonsense" in result.stderr and "quick" in result.stderr and "full" in result.stderr


def test_known_profiles_match_nodekit() -> None:
    from nodekit.book.profiles import PROFILES

    assert load_book_script().known_profiles() == PROFILES


def test_postprocess_hides_parameter_cells_and_drops_volatile_metadata() -> None:
    def cell(tags: list[str]) -> dict[str, Any]:
        return {"id": "x", "cell_type": "code", "source": "", "outputs": [], "execution_count": 1,
                "metadata": {"tags": tags, "papermill": {"duration": 1.0}, "execution": {"iopub.status.idle": "t"}}}

    nb = {"metadata": {"papermill": {"start_time": "t"}, "kernelspec": {}},
          "cells": [cell(["parameters"]), cell(["injected-parameters"]), cell([])]}
    out = load_book_script().postprocess(nb)
    assert out["metadata"] == {"kernelspec": {}}
    assert [c["metadata"] for c in out["cells"]] == [
        {"tags": ["parameters", "remove-cell"]}, {"tags": ["injected-parameters", "remove-cell"]}, {}]
    assert out["cells"][1]["id"] == "injected-parameters"


def test_a_failing_chapter_leaves_its_cell_and_traceback_in_a_report(tmp_path) -> None:
    import nbformat

    book = load_book_script()
    chapter = tmp_path / "99_failing_test_chapter.ipynb"
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('profile = "quick"\ndevice = "cpu"\nseed = 0', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("raise RuntimeError('the chapter broke here')"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, chapter)
    log = book.report_path("quick", chapter)
    try:
        with pytest.raises(SystemExit, match=r"(?s)failed in cell \d+: RuntimeError: the chapter broke here\nthe failing cell and traceback: "):
            book.execute_one(chapter, "quick", "cpu", 0, tmp_path / "out", in_place=False)
        text = log.read_text()
        assert "raise RuntimeError('the chapter broke here')" in text and "Traceback" in text and "\x1b[" not in text
    finally:
        log.unlink(missing_ok=True)


def test_status_table_reads_each_chapters_provenance(tmp_path) -> None:
    book = load_book_script()
    first, second, *_ = book.chapters()
    rows = {"chapter": "1 · Test", "profile": "quick", "device": "cpu (1 CPU threads)", "seed": "0", "wall time": "12 s",
            "models": "2 trained, 0 resumed from a checkpoint, 1 loaded from the cache", "claims": "3 holds",
            "git commit": "abc1234", "started": "2026-12-04 04:00 UTC"}
    cell = {"cell_type": "code", "outputs": [{"output_type": "display_data", "data": {"text/plain": "..."},
                                              "metadata": {book.PROVENANCE_KEY: rows}}]}
    (tmp_path / first.name).write_text(json.dumps({"cells": [cell]}))
    (tmp_path / second.name).write_text(json.dumps({"cells": []}))
    reports = tmp_path / "reports"
    reports.mkdir()
    table = book.status_table(tmp_path, reports).splitlines()
    assert table[2] == (f"| [1 · Test](../notebooks/{first.stem}.ipynb) | quick | cpu (1 CPU threads) | 0 | 12 s | "
                        "2 trained, 0 resumed from a checkpoint, 1 loaded from the cache | 3 holds | abc1234 | "
                        "2026-12-04 04:00 UTC |")
    assert "not recorded" in table[3]
    (reports / f"{second.stem}.log").write_text("boom")
    assert "**failed**" in book.status_table(tmp_path, reports).splitlines()[3]


def test_api_reference_documents_every_module() -> None:
    """book/api.md has an automodule for each nodekit module, so a new module cannot go undocumented."""
    documented = set(re.findall(r"^\.\. automodule:: (\S+)$", (ROOT / "book" / "api.md").read_text(), re.M))
    package = ROOT / "nodekit"
    modules = set()
    for path in package.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__" or (parts[-1] == "__init__" and len(parts) > 2):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if len(parts) > 2 and parts[1] == "solvers":
            continue  # the solver engine's modules are documented through nodekit.solvers
        modules.add(".".join(parts))
    assert sorted(modules - documented) == [], "add them to book/api.md"


def test_lock_file_pins_every_direct_dependency_as_pyproject_does() -> None:
    """requirements.lock (what make installs) holds every pin of pyproject.toml, at the same version."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    direct = pins(project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra])
    lines = [line for line in (ROOT / "requirements.lock").read_text().splitlines() if line and not line.startswith("#")]
    locked = pins(lines)
    for name, version in direct.items():
        assert name in locked, f"{name} is pinned in pyproject.toml but missing from requirements.lock: run make lock"
        assert locked[name].split("+")[0] == version, f"{name}: lock has {locked[name]}, pyproject {version}: run make lock"
    assert "neural-ode-book-nodekit" not in locked, "nodekit itself is installed editable, not from the lock"
