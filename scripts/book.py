#!/usr/bin/env python3
"""Execute the book's chapter notebooks and build the HTML book; the Makefile's workhorse.

Command-line paths are relative to the current directory, everything else to the repository root.

  check-profile NAME   exit 1 with the known profiles unless NAME is one of them. Standard
                       library only (it reads nodekit/book/profiles.py without importing torch), so
                       `make book PROFILE=typo` fails before any install or execution.
  execute              run every notebook listed in _toc.yml with papermill (parameters profile,
                       device, seed) into _build/executed/<profile>/, hide the parameter cells,
                       strip volatile metadata; --in-place then copies the results over the sources.
                       A chapter that fails leaves its failing cell and traceback in
                       _build/<profile>/reports/<chapter>.log; the others still run.
  build                stage _config.yml, _toc.yml, book/ and a notebooks folder in <out>/src, write
                       the execution-status page from the notebooks' provenance, build the HTML
                       into <out>/html, and fail if a page loads remote assets.
  pdf                  stage as build does and write <out>/book.pdf (Sphinx's LaTeX builder, XeLaTeX).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROFILES_FILE = ROOT / "nodekit" / "book" / "profiles.py"
HIDDEN_TAGS = {"parameters", "injected-parameters"}
PROVENANCE_KEY = "nodekit_provenance"  # the output metadata key nodekit.book.provenance writes
STATUS_PAGE = Path("book") / "status.md"
STATUS_MARKER = "<!-- the status table: written by scripts/book.py build -->"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
VOLATILE_CELL_KEYS = ("papermill", "execution", "ExecuteTime")
REMOTE = r"""["']?(?:https?:)?//[^"'\s)>]*"""
REMOTE_ASSET = re.compile(
    rf"<script\b[^>]*\bsrc={REMOTE}|<link\b[^>]*\bhref={REMOTE}|url\(\s*{REMOTE}|@import\s+{REMOTE}",
    re.IGNORECASE,
)


def known_profiles() -> dict[str, str]:
    """The ``PROFILES`` dict literal of nodekit/book/profiles.py, read with ``ast`` (no torch import)."""
    for node in ast.parse(PROFILES_FILE.read_text()).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "PROFILES" for t in targets):
                return ast.literal_eval(node.value)
    raise SystemExit(f"no PROFILES dict literal found in {PROFILES_FILE}")


def check_profile(name: str) -> None:
    """Exit with status 1 and the list of known profiles unless ``name`` is one of them."""
    profiles = known_profiles()
    if name not in profiles:
        known = "\n".join(f"  {key:6s} {what}" for key, what in profiles.items())
        sys.exit(f"error: unknown profile {name!r}; choose one of:\n{known}\n"
                 f"e.g. `make book PROFILE=quick`")


def chapters() -> list[Path]:
    """The notebooks listed in _toc.yml, in book order, relative to the repository root."""
    import yaml

    def files(entry: dict[str, Any]) -> list[str]:
        own = [entry["file"]] if "file" in entry else []
        children = entry.get("parts", []) + entry.get("chapters", []) + entry.get("sections", [])
        return own + [name for child in children for name in files(child)]

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [Path(name).with_suffix(".ipynb") for name in files(toc) if name.startswith("notebooks/")]


def postprocess(nb: dict[str, Any]) -> dict[str, Any]:
    """Tag papermill's parameter cells ``remove-cell`` and drop timestamps and durations."""
    nb["metadata"].pop("papermill", None)
    for cell in nb["cells"]:
        for key in VOLATILE_CELL_KEYS:
            cell["metadata"].pop(key, None)
        tags = cell["metadata"].pop("tags", [])  # papermill adds an empty list to every cell
        if HIDDEN_TAGS & set(tags) and "remove-cell" not in tags:
            tags = [*tags, "remove-cell"]
        if tags:
            cell["metadata"]["tags"] = tags
        if "injected-parameters" in tags and "id" in cell:
            cell["id"] = "injected-parameters"  # papermill draws a random id on every run
    return nb


def execute(profile: str, device: str, seed: int, out: Path, in_place: bool, only: list[str], jobs: int = 1) -> None:
    """Execute the chapters into ``out`` (those whose file name contains one of ``only``, if given);
    with ``in_place``, copy each result over its source. ``jobs`` > 1 runs that many chapters at
    once, each in its own process (the chapters use one CPU thread each)."""
    check_profile(profile)
    selected = [c for c in chapters() if not only or any(key in c.name for key in only)]
    if not selected:
        sys.exit(f"error: no chapter in _toc.yml matches {only}; chapters: {[c.name for c in chapters()]}")
    if jobs > 1 and len(selected) > 1:
        execute_in_parallel(selected, profile, device, seed, out, in_place, jobs)
        return
    for chapter in selected:
        execute_one(chapter, profile, device, seed, out, in_place)


def execute_one(chapter: Path, profile: str, device: str, seed: int, out: Path, in_place: bool) -> None:
    """Execute one chapter with papermill into ``out``, post-process it, optionally copy it back."""
    import nbformat
    import papermill

    target = out / "notebooks" / chapter.name
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"executing {chapter} (profile={profile}, device={device}, seed={seed})", flush=True)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            ROOT / chapter, target, cwd=(ROOT / chapter).parent, progress_bar=False,
            parameters={"profile": profile, "device": device, "seed": seed},
        )
    except papermill.PapermillExecutionError as error:
        log = report_path(profile, chapter)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"{chapter} (profile={profile}, device={device}, seed={seed}) failed in cell "
                       f"{error.exec_count}:\n\n{error.source}\n\n" + ANSI.sub("", "\n".join(error.traceback)) + "\n")
        sys.exit(f"error: {chapter} failed in cell {error.exec_count}: {error.ename}: {error.evalue}\n"
                 f"the failing cell and traceback: {log}\nthe executed copy: {target}")
    report_path(profile, chapter).unlink(missing_ok=True)
    nbformat.write(postprocess(nbformat.read(target, as_version=4)), target)
    print(f"  done in {time.perf_counter() - start:.0f} s -> {target}", flush=True)
    if in_place:
        shutil.copyfile(target, ROOT / chapter)


def report_path(profile: str, chapter: Path) -> Path:
    """Where a failed execution of ``chapter`` leaves its failing cell and traceback."""
    return ROOT / "_build" / profile / "reports" / f"{chapter.stem}.log"


def execute_in_parallel(selected: list[Path], profile: str, device: str, seed: int, out: Path,
                        in_place: bool, jobs: int) -> None:
    """Run :func:`execute_one` for each chapter in a child process, ``jobs`` at a time."""
    from concurrent.futures import ThreadPoolExecutor

    def child(chapter: Path) -> tuple[Path, int, str]:
        command = [sys.executable, __file__, "execute", "--profile", profile, "--device", device,
                   "--seed", str(seed), "--out", str(out), "--only", chapter.name, "--jobs", "1"]
        done = subprocess.run(command + (["--in-place"] if in_place else []), capture_output=True, text=True)
        return chapter, done.returncode, done.stdout + done.stderr

    print(f"executing {len(selected)} chapters, {jobs} at a time", flush=True)
    failed = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for chapter, code, log in pool.map(child, selected):
            print("\n".join(line for line in log.splitlines() if "Kernel is running over TCP" not in line), flush=True)
            if code != 0:
                failed.append(str(chapter))
    if failed:
        sys.exit(f"error: {len(failed)} chapter(s) failed: {', '.join(failed)} (messages above)")


def remote_assets(html_dir: Path) -> list[str]:
    """``file: snippet`` for every HTML or CSS file that loads a script, style or font remotely."""
    found = []
    for path in sorted([*html_dir.rglob("*.html"), *html_dir.rglob("*.css")]):
        for match in REMOTE_ASSET.finditer(path.read_text(errors="replace")):
            found.append(f"{path.relative_to(html_dir)}: {match.group(0)}")
    return found


def provenance(notebook: Path) -> dict[str, str] | None:
    """The provenance rows a chapter recorded when it was executed (None if it recorded none)."""
    for cell in json.loads(notebook.read_text())["cells"]:
        for output in cell.get("outputs", []):
            if PROVENANCE_KEY in output.get("metadata", {}):
                return output["metadata"][PROVENANCE_KEY]
    return None


def status_table(notebooks: Path, reports: Path) -> str:
    """The execution-status page's table: one row per chapter, from its provenance and any failure report."""
    columns = ("profile", "device", "seed", "wall time", "models", "claims", "git commit", "started")
    lines = ["| chapter | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 1)]
    for chapter in chapters():
        notebook = notebooks / chapter.name
        rows = provenance(notebook) if notebook.exists() else None
        link = f"[{(rows or {}).get('chapter', chapter.stem)}](../notebooks/{chapter.stem}.ipynb)"
        failed = reports / f"{chapter.stem}.log"
        if failed.exists():
            cells = [f"**failed**: see `{os.path.relpath(failed, ROOT)}`"] + [""] * (len(columns) - 1)
        elif rows is None:
            cells = ["not recorded (executed before provenance was machine-readable)"] + [""] * (len(columns) - 1)
        else:
            cells = [rows.get(c, "–").replace("|", "/") for c in columns]
        lines.append(f"| {link} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def stage(notebooks: Path, out: Path) -> Path:
    """Copy _config.yml, _toc.yml, book/ and ``notebooks`` (as notebooks/) into ``out``/src, write the
    execution-status page from the notebooks' provenance, and generate Sphinx's conf.py there."""
    src = out / "src"
    for stale in (src, out / "doctrees"):  # a fresh build re-reports every warning, drops old pages
        shutil.rmtree(stale, ignore_errors=True)
    src.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "book", src / "book")
    if notebooks.is_dir():  # git keeps no empty folder: a clone may have no notebooks/ yet
        shutil.copytree(notebooks, src / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    status = src / STATUS_PAGE
    status.write_text(status.read_text().replace(STATUS_MARKER, status_table(src / "notebooks", out / "reports")))
    subprocess.run([Path(sys.executable).parent / "jupyter-book", "config", "sphinx", src], check=True)
    return src


def sphinx(src: Path, out: Path, builder: str, strict: bool) -> Path:
    """Run sphinx-build with ``builder`` on the staged ``src`` into ``out``/``builder``; return that folder."""
    target = out / builder
    shutil.rmtree(target, ignore_errors=True)
    flags = ["-W", "-n", "--keep-going"] if strict else []
    command = [Path(sys.executable).parent / "sphinx-build", "-q", "-b", builder, "-d", out / "doctrees", *flags,
               src, target]
    # `jupyter-book config sphinx` lists _config.yml's local_extensions but does not put their folder on the path.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(src / "book" / "_ext"), os.environ.get("PYTHONPATH")]))}
    if subprocess.run(command, env=env).returncode != 0:
        sys.exit(f"error: the {builder} build of the book failed (warnings are errors: {strict}); see above")
    return target


def build(notebooks: Path, out: Path, strict: bool) -> None:
    """Build the book with ``notebooks`` as its notebooks/ folder into ``out``/html."""
    html = sphinx(stage(notebooks, out), out, "html", strict)
    if found := remote_assets(html):
        sys.exit("error: the book loads remote assets, it must work offline:\n  " + "\n  ".join(found))
    print(f"book: {(html / 'index.html').resolve()}")
    if failed := sorted((out / "reports").glob("*.log")):
        sys.exit("error: chapters failed to execute (the book shows their last executed copies):\n  "
                 + "\n  ".join(f"{log.stem}: {log}" for log in failed))


def pdf(notebooks: Path, out: Path) -> None:
    """Build the book as one PDF, ``out``/book.pdf, with Sphinx's LaTeX builder and XeLaTeX (latexmk)."""
    missing = [tool for tool in ("latexmk", "xelatex") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"error: {' and '.join(missing)} not found; the PDF needs TeX Live, e.g. on Debian: apt-get install "
                 "--no-install-recommends latexmk texlive-xetex texlive-latex-extra texlive-fonts-recommended "
                 "fonts-freefont-otf xindy")
    latex = sphinx(stage(notebooks, out), out, "latex", strict=False)
    done = subprocess.run(["make", "-C", latex, "LATEXMKOPTS=-xelatex -interaction=nonstopmode -halt-on-error"],
                          capture_output=True, text=True)
    pdfs = sorted(latex.glob("*.pdf"))
    if done.returncode != 0 or not pdfs:
        log = out / "latex.log"
        log.write_text(done.stdout + done.stderr)
        sys.exit(f"error: LaTeX failed; the log: {log}")
    shutil.copyfile(pdfs[0], out / "book.pdf")
    print(f"book: {(out / 'book.pdf').resolve()}")


def main() -> None:
    """Parse the command line and run one subcommand."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check-profile").add_argument("name")
    run = commands.add_parser("execute")
    run.add_argument("--profile", default="quick")
    run.add_argument("--device", default="cpu")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--out", type=Path, help="default: _build/executed/<profile>")
    run.add_argument("--in-place", action="store_true", help="also overwrite the source notebooks")
    run.add_argument("--only", nargs="*", default=[], help="execute only chapters whose file name contains one of these")
    run.add_argument("--jobs", type=int, default=1, help="chapters executed at once, each in its own process")
    make = commands.add_parser("build")
    make.add_argument("--notebooks", type=Path, required=True, help="folder staged as notebooks/")
    make.add_argument("--out", type=Path, required=True, help="gets src/, doctrees/ and html/")
    make.add_argument("--strict", action="store_true", help="Sphinx warnings are errors")
    paper = commands.add_parser("pdf")
    paper.add_argument("--notebooks", type=Path, required=True, help="folder staged as notebooks/")
    paper.add_argument("--out", type=Path, required=True, help="gets src/, doctrees/, latex/ and book.pdf")
    args = parser.parse_args()

    if args.command == "check-profile":
        check_profile(args.name)
    elif args.command == "execute":
        out = args.out or ROOT / "_build" / "executed" / args.profile
        execute(args.profile, args.device, args.seed, out.resolve(), args.in_place, args.only, args.jobs)
    elif args.command == "pdf":
        pdf(args.notebooks.resolve(), args.out.resolve())
    else:
        build(args.notebooks.resolve(), args.out.resolve(), args.strict)


if __name__ == "__main__":
    main()
