"""The three layout rules of docs/README.md, checked on the repository itself.

1. The core packages stay independent: nothing under ``imagery/`` imports
   ``satdelta.annotations`` or ``satdelta.plugins``, nothing under ``annotations/`` imports
   ``satdelta.imagery`` or ``satdelta.plugins`` (checked in the source and at import time).
2. No tracked Python module is over 700 lines.
3. README.md is a front page of at most 15,000 characters, and every relative link in README.md
   and docs/*.md points to a file that exists.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 700
MAX_README_CHARS = 15_000

# Each core folder, its import name, and the satdelta packages it must never import.
FORBIDDEN_IMPORTS = {
    "imagery": ("satdelta.imagery", ("satdelta.annotations", "satdelta.plugins")),
    "annotations": ("satdelta.annotations", ("satdelta.imagery", "satdelta.plugins")),
}
# Folders of Python code walked when git is not available.
CODE_FOLDERS = (
    "imagery",
    "annotations",
    "plugins",
    "sample_data",
    "tests",
    "benchmarks",
    "scripts",
)


def _module_package(path: Path, folder: str, import_name: str) -> str:
    """Return the package that relative imports in ``path`` (inside ``folder``) start from."""
    parts = path.relative_to(ROOT / folder).with_suffix("").parts
    package_parts = parts if parts[-1] == "__init__" else parts[:-1]
    return ".".join([import_name, *(p for p in package_parts if p != "__init__")])


def _resolve(node: ast.ImportFrom, package: str) -> str:
    """Return the absolute module name of a ``from ... import`` statement."""
    if node.level == 0:
        return node.module or ""
    base = package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imported_modules(path: Path, package: str) -> list[tuple[int, str]]:
    """Return ``(line, module)`` for every import in ``path``, at any depth.

    ``from satdelta import imagery`` (or ``from .. import imagery``) yields
    ``satdelta.imagery``; ``importlib.import_module("satdelta.x")`` with a literal name counts too.
    """
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(node, package)
            found.append((node.lineno, module))
            if "." not in module:  # from satdelta import imagery: the names are modules
                found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def _is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize("folder", sorted(FORBIDDEN_IMPORTS))
def test_core_package_source_does_not_import_the_others(folder):
    import_name, forbidden = FORBIDDEN_IMPORTS[folder]
    offenders = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        package = _module_package(path, folder, import_name)
        for line, module in imported_modules(path, package):
            if any(_is_within(module, bad) for bad in forbidden):
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not offenders, (
        f"{folder}/ must not import {' or '.join(forbidden)}; found:\n  "
        + "\n  ".join(sorted(set(offenders)))
        + "\nMove the shared piece into the package that owns it (see docs/README.md)."
    )


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("satdelta.annotations", ("satdelta.imagery", "satdelta.plugins")),
        ("satdelta.imagery", ("satdelta.annotations", "satdelta.plugins")),
    ],
)
def test_importing_a_core_package_loads_none_of_the_others(package, forbidden):
    code = (
        "import sys, importlib, pkgutil\n"
        f"pkg = importlib.import_module({package!r})\n"
        "for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "    importlib.import_module(info.name)\n"
        f"bad = sorted(m for m in sys.modules if m.startswith({forbidden!r}))\n"
        "print(' '.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.split()
    assert not loaded, f"importing {package} and its modules loaded {', '.join(loaded)}"


def tracked_python_files() -> list[Path]:
    """Return the tracked ``.py`` files (without git: every one in the code folders)."""
    git = shutil.which("git")
    if git and (ROOT / ".git").exists():
        result = subprocess.run(
            [git, "ls-files", "-z", "--", "*.py"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        if result.returncode == 0:
            return [ROOT / name for name in result.stdout.split("\0") if name]
    return sorted(p for folder in CODE_FOLDERS for p in (ROOT / folder).rglob("*.py"))


def test_no_module_over_700_lines():
    sizes = {}
    for path in tracked_python_files():
        if path.exists():
            sizes[path.relative_to(ROOT).as_posix()] = len(
                path.read_text(encoding="utf-8").splitlines()
            )
    assert sizes, "no Python module found: the walk over the repository is broken"
    offenders = {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not offenders, (
        f"modules over {MAX_MODULE_LINES} lines (split them by responsibility): "
        + ", ".join(f"{name} ({n})" for name, n in sorted(offenders.items(), key=lambda i: -i[1]))
    )


def test_readme_is_a_front_page():
    size = len((ROOT / "README.md").read_text(encoding="utf-8"))
    assert size <= MAX_README_CHARS, (
        f"README.md has {size} characters, at most {MAX_README_CHARS} expected: "
        "move guide material to docs/*.md and link it"
    )


# [text](target) and ![alt](target), and <img src="target">; the target ends at a space or ")".
_MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HTML_SRC = re.compile(r"""(?:src|href)=["']([^"']+)["']""")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)
_CODE_SPAN = re.compile(r"`[^`\n]*`")


def relative_links(markdown: str) -> list[str]:
    """Return the relative link targets of ``markdown``, ``#heading`` ones included.

    Links with a scheme (``https:``, ``mailto:``) or an absolute path are left out, and so is
    anything inside code blocks and code spans.
    """
    text = _CODE_SPAN.sub("", _FENCE.sub("", markdown))
    targets = _MARKDOWN_LINK.findall(text) + _HTML_SRC.findall(text)
    return [t for t in targets if not re.match(r"^([a-z][a-z0-9+.-]*:|/)", t, re.IGNORECASE)]


def heading_anchors(markdown: str) -> set[str]:
    """Return the anchors GitHub gives the headings of ``markdown`` (``#fragment`` targets)."""
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", _FENCE.sub("", markdown), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def test_relative_links_in_readme_and_docs_exist():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in relative_links(page.read_text(encoding="utf-8")):
            path, _, fragment = target.partition("#")
            linked = (page.parent / path.split("?", 1)[0]) if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target} (no such file)")
            elif fragment and linked.suffix == ".md":
                if fragment not in heading_anchors(linked.read_text(encoding="utf-8")):
                    broken.append(f"{page.relative_to(ROOT)} -> {target} (no such heading)")
    assert not broken, "broken links:\n  " + "\n  ".join(broken)


def test_link_finder_sees_links_and_skips_code():
    text = (
        'See [the guide](docs/batch.md#pairs), ![shot](docs/a.png "title") and '
        "[web](https://example.org) [top](#set-up).\n"
        "`[not](a link)`\n```\n[nor](this.md)\n```\n"
    )
    assert relative_links(text) == ["docs/batch.md#pairs", "docs/a.png", "#set-up"]


def test_heading_anchors_follow_github():
    text = "# Set up\n## `satdelta detect`: one pair\n## Set up\n```\n# not a heading\n```\n"
    assert heading_anchors(text) == {"set-up", "satdelta-detect-one-pair", "set-up-1"}


def test_import_walk_sees_every_form(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text(
        "import satdelta.plugins.cli\n"
        "from satdelta import imagery\n"
        "from .. import plugins\n"
        "def f():\n"
        "    from ..imagery.errors import SatdeltaError\n"
        "    importlib.import_module('satdelta.imagery.detect')\n"
    )
    modules = {m for _, m in imported_modules(source, "satdelta.annotations")}
    assert {
        "satdelta.plugins.cli",
        "satdelta.imagery",
        "satdelta.plugins",
        "satdelta.imagery.errors",
        "satdelta.imagery.detect",
    } <= modules
