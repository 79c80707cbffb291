"""Every Python example in README.md and docs/ runs here, so an example that rots fails CI.

Each ```python block is one test, named ``file:line``. The blocks of one file
run in order in one namespace (a later block may use an earlier block's names)
inside a fresh temporary directory holding a copy of the repository's
``examples/``, as a reader's clone would. A block is left out only when the
line before its fence is ``<!-- skip: reason -->``. A block followed by a
fenced block introduced by ``<!-- output -->`` must print exactly that text.
A block with a file name for a title (```` ```python title="mystore.py" ````)
is a file of the example: it is written to the working directory, not run, so
that later blocks can import it or run pytest on it.

The site's navigation and reference pages are checked here too, so a page
that moves or a public name left out of the reference fails the tests, not
only ``mkdocs build --strict``.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import io
import re
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

import labelsync

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
_SKIP = re.compile(r"^\s*<!--\s*skip:\s*(?P<reason>\S.*?)\s*-->\s*$")
_OUTPUT = re.compile(r"^\s*<!--\s*output\s*-->\s*$")
_PYTHON = {"python", "py", "python3"}
_TITLE = re.compile(r'title="(?P<title>[^"]+)"')


@attrs.frozen
class Block:
    """One fenced block of a Markdown file: where it starts, its language and its code."""

    path: Path
    line: int
    language: str
    code: str
    skip: str | None
    is_output: bool
    title: str | None = None

    @property
    def id(self) -> str:
        shown = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{shown.as_posix()}:{self.line}"


@attrs.frozen
class Example:
    """A Python block with the output it must print, if the page shows one."""

    block: Block
    expected_output: str | None


def fenced_blocks(path: Path) -> list[Block]:
    """The fenced blocks of `path` in order, with the HTML comment just before each, if any."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        info = opening["info"].strip()
        language = info.split()[0].lstrip("{.").rstrip("}") if info else ""
        previous = lines[index - 1] if index else ""
        body: list[str] = []
        end = index + 1
        while end < len(lines):
            closing = _FENCE.match(lines[end])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            body.append(lines[end][len(indent) :] if lines[end].startswith(indent) else lines[end])
            end += 1
        else:
            raise AssertionError(f"{path}:{index + 1}: code fence is never closed")
        skip = _SKIP.match(previous)
        title = _TITLE.search(info)
        blocks.append(
            Block(
                path=path,
                line=index + 1,
                language=language.lower(),
                code=textwrap.dedent("\n".join(body)) + "\n",
                skip=skip["reason"] if skip else None,
                is_output=_OUTPUT.match(previous) is not None,
                title=title["title"] if title else None,
            )
        )
        index = end + 1
    return blocks


def examples(path: Path) -> list[Example]:
    """The Python blocks of `path`, each with the output block that follows it, if any."""
    blocks = fenced_blocks(path)
    found: list[Example] = []
    for position, block in enumerate(blocks):
        if block.is_output and (position == 0 or blocks[position - 1].language not in _PYTHON):
            raise AssertionError(f"{block.id}: an <!-- output --> block must follow a python block")
        if block.language not in _PYTHON:
            continue
        follower = blocks[position + 1] if position + 1 < len(blocks) else None
        expected = follower.code if follower is not None and follower.is_output else None
        found.append(Example(block=block, expected_output=expected))
    return found


def markdown_files() -> list[Path]:
    """README.md and every Markdown page of the site, in a stable order."""
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


ALL_EXAMPLES = [example for path in markdown_files() for example in examples(path)]


def _params() -> list[object]:
    params: list[object] = []
    for example in ALL_EXAMPLES:
        marks = [pytest.mark.skip(reason=example.block.skip)] if example.block.skip else []
        params.append(pytest.param(example, id=example.block.id, marks=marks))
    return params


# The namespace each file's examples share, after the example at that position ran.
# A test that finds its predecessor's namespace continues from it; one selected
# alone (pytest -k) replays the file's earlier examples first.
_namespaces: dict[tuple[Path, int], tuple[dict[str, object], Path]] = {}


def _run(example: Example, namespace: dict[str, object]) -> None:
    block = example.block
    if block.title is not None and block.title.endswith(".py"):
        compile(block.code, str(block.path), "exec")  # a syntax error fails here, not later
        target = Path(block.title)
        assert not target.is_absolute(), block.id
        assert ".." not in target.parts, block.id
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.code, encoding="utf-8")
        return
    # Padding with blank lines makes tracebacks point at the line in the Markdown file.
    code = compile("\n" * block.line + block.code, str(block.path), "exec")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code, namespace)
    if example.expected_output is not None:
        assert _normalise(example.expected_output) == _normalise(printed.getvalue()), block.id
    else:
        print(printed.getvalue(), end="")


def _normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def _file_examples(path: Path) -> list[Example]:
    return [e for e in ALL_EXAMPLES if e.block.path == path and e.block.skip is None]


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    with contextlib.chdir(path):
        yield


def _close_everything(namespace: dict[str, object]) -> None:
    """Drop a finished page's namespace so stores it left open are collected now."""
    namespace.clear()
    gc.collect()


@pytest.mark.parametrize("example", _params())
def test_docs_example_runs(example: Example, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The example runs (after the earlier examples of its page) and prints what the page shows."""
    page = _file_examples(example.block.path)
    position = page.index(example)
    state = _namespaces.pop((example.block.path, position - 1), None)
    if state is None:
        namespace: dict[str, object] = {"__name__": "__docs__"}
        workdir = tmp_path_factory.mktemp("docs")
        if (ROOT / "examples").is_dir():
            shutil.copytree(ROOT / "examples", workdir / "examples")
        with _working_directory(workdir):
            for earlier in page[:position]:
                try:
                    _run(earlier, namespace)
                except Exception as error:
                    raise AssertionError(
                        f"an earlier example of this page failed: {earlier.block.id}"
                    ) from error
    else:
        namespace, workdir = state
    with _working_directory(workdir):
        try:
            _run(example, namespace)
        except BaseException:
            _close_everything(namespace)
            raise
    if position + 1 < len(page):
        _namespaces[(example.block.path, position)] = (namespace, workdir)
    else:
        _close_everything(namespace)


def test_docs_examples_exist_on_every_guide() -> None:
    """The pages that teach by example have at least one runnable example."""
    pages = ["index.md", "concepts.md", "howto/web-app.md", "howto/job-queue.md"]
    pages += ["howto/store-adapter.md", "howto/notebook.md", "tutorial.md"]
    runnable = {
        e.block.path.relative_to(DOCS).as_posix()
        for e in ALL_EXAMPLES
        if not e.block.skip and e.block.path.is_relative_to(DOCS)
    }
    assert [] == [page for page in pages if page not in runnable]


def test_docs_skips_are_rare() -> None:
    """Opting an example out is the exception (a broker, a server): at most one in six."""
    skipped = [e.block.id for e in ALL_EXAMPLES if e.block.skip]
    assert len(skipped) * 6 <= len(ALL_EXAMPLES), skipped


# -- the site ----------------------------------------------------------------------------------


def nav_files() -> list[str]:
    """The Markdown (and other) files the ``nav:`` of mkdocs.yml names, in order.

    Read with a regular expression so the test needs no YAML library: every
    nav entry is ``- Title: path`` or ``- path`` on its own line.
    """
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = re.search(r"^nav:\n(?P<body>(?:[ \t]+.*\n|\n)+)", text, re.MULTILINE)
    assert nav is not None, "mkdocs.yml has no nav"
    entry = re.compile(r"^\s*-\s*(?:[^:\n]+:\s*)?(?P<target>[^\s:]+\.(?:md|ipynb))\s*$")
    return [m["target"] for line in nav["body"].splitlines() if (m := entry.match(line))]


def test_mkdocs_nav_names_only_files_that_exist() -> None:
    """Every page of the navigation exists under docs/ (a missing one fails --strict)."""
    files = nav_files()
    assert len(files) >= 10
    assert [] == [f for f in files if not (DOCS / f).is_file()]


def test_mkdocs_nav_lists_every_page() -> None:
    """No page under docs/ is left out of the navigation, where no reader would find it."""
    listed = set(nav_files())
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert [] == sorted(pages - listed)


def reference_directives() -> set[str]:
    """The objects the reference pages render with ``::: dotted.path``."""
    found: set[str] = set()
    for page in (DOCS / "reference").glob("*.md"):
        found |= set(re.findall(r"^:::\s*([\w.]+)\s*$", page.read_text("utf-8"), re.MULTILINE))
    return found


def test_reference_documents_every_public_name_at_its_public_path() -> None:
    """Each name in ``labelsync.__all__`` is rendered as ``labelsync.<name>``, its import path."""
    rendered = reference_directives()
    public = [name for name in labelsync.__all__ if not name.startswith("__")]
    assert [] == [name for name in public if f"labelsync.{name}" not in rendered]


def test_reference_documents_every_public_module() -> None:
    """Every public module outside the top-level package has its own section."""
    modules = [
        "labelsync.adapters.memory",
        "labelsync.adapters.sqlite",
        "labelsync.adapters.clock",
        "labelsync.adapters.imap",
        "labelsync.providers",
        "labelsync.io",
        "labelsync.whatif",
        "labelsync.testing",
        "labelsync.testing.conformance",
    ]
    assert [] == [module for module in modules if module not in reference_directives()]


def test_reference_renders_only_objects_that_exist() -> None:
    """Every ``::: path`` of the reference imports, so no API section can point at nothing."""
    missing = []
    for path in sorted(reference_directives()):
        try:
            importlib.import_module(path)
        except ModuleNotFoundError:
            module, _, name = path.rpartition(".")
            if not hasattr(importlib.import_module(module), name):
                missing.append(path)
    assert [] == missing


def test_concepts_cite_only_tests_that_exist() -> None:
    """Every ``tests/test_x.py`` (and ``::test_name``) the docs cite as proof exists."""
    cited = set()
    for path in markdown_files():
        text = path.read_text("utf-8")
        cited |= set(re.findall(r"tests/(test_\w+\.py)(?:::(test_\w+))?", text))
    assert cited, "the docs cite no tests"
    missing = []
    for module, test in sorted(cited):
        source = ROOT / "tests" / module
        if not source.is_file():
            missing.append(module)
        elif test and not re.search(rf"def {test}\b", source.read_text("utf-8")):
            missing.append(f"{module}::{test}")
    assert [] == missing


README_EXAMPLES = [e for e in examples(ROOT / "README.md") if e.block.skip is None]


@pytest.mark.parametrize("example", README_EXAMPLES, ids=lambda example: example.block.id)
def test_a_readme_example_runs_alone_and_twice(example: Example, tmp_path: Path) -> None:
    """A reader pastes one README block into a fresh interpreter, perhaps twice: both run."""
    with _working_directory(tmp_path):
        for _ in range(2):
            namespace: dict[str, object] = {"__name__": "__readme__"}
            _run(example, namespace)
            _close_everything(namespace)
    assert [] == sorted(p.name for p in tmp_path.iterdir())  # nothing left behind


# Written by `nox -s bench` (benchmarks/report.py), whose wording the benchmarks own.
_GENERATED = {DOCS / "performance.md"}


def test_the_docs_speak_to_users() -> None:
    """No words only the project's own team knows, in the pages a user reads."""
    team_words = re.compile(r"\bissue \d+|\(issue|design contract|DESIGN\.md", re.IGNORECASE)
    pages = [ROOT / "README.md", *sorted(set(DOCS.rglob("*.md")) - _GENERATED)]
    found = [
        f"{page.relative_to(ROOT)}:{number}: {line.strip()}"
        for page in pages
        for number, line in enumerate(page.read_text("utf-8").splitlines(), start=1)
        if team_words.search(line)
    ]
    assert [] == found
