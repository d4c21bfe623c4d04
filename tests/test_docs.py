"""The documentation: every public name has a docstring, the API reference covers every public
name, the guides' complete examples run, and links point inside the repository. (`.ci/run`
builds the site itself with `mkdocs build --strict`.)"""

from __future__ import annotations

import dataclasses
import inspect
import pathlib
import re
import subprocess
import sys
from typing import Iterator, List, Tuple

import pytest

import quorate

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# Public members allowed to lack a docstring: none.
KNOWN_MISSING: set = set()

# dataclass field defaults are plain values, documented in their class's Attributes section.
PLAIN_VALUES = (str, int, float, bool, type(None), dict, list, tuple)


def public_names() -> Iterator[Tuple[str, object]]:
    """Every name in quorate.__all__ and every public member of those classes and modules."""
    for name in quorate.__all__:
        if name == "__version__":
            continue
        obj = getattr(quorate, name)
        yield name, obj
        if inspect.isclass(obj):
            for member, value in vars(obj).items():
                if not member.startswith("_") and not isinstance(value, PLAIN_VALUES):
                    yield f"{name}.{member}", value
        elif inspect.ismodule(obj):
            for member in getattr(obj, "__all__", []):
                yield f"{name}.{member}", getattr(obj, member)


def has_docstring(name: str, obj: object) -> bool:
    doc = getattr(obj, "__doc__", None)
    if isinstance(obj, property) and obj.fget is not None:
        # A property takes its getter's docstring when it has none of its own; a getter that is
        # not a function (operator.attrgetter, a C-level getter) brings only its class's general
        # docstring, which documents nothing of ours.
        if doc is None or doc == type(obj.fget).__doc__:
            return False
    if not doc or not doc.strip():
        return False
    if dataclasses.is_dataclass(obj) and doc.startswith(f"{obj.__name__}("):  # type: ignore[union-attr]
        return False  # the signature dataclasses write when a class has no docstring
    return True


def test_every_public_name_has_a_docstring():
    missing = sorted(name for name, obj in public_names() if not has_docstring(name, obj))
    unexpected = [name for name in missing if name not in KNOWN_MISSING]
    assert not unexpected, f"public names without a docstring: {unexpected}"


def test_the_module_and_extra_modules_have_docstrings():
    import quorate.metrics
    import quorate.pytest_plugin

    for module in (quorate, quorate.sim, quorate.metrics, quorate.pytest_plugin):
        assert module.__doc__ and module.__doc__.strip(), module.__name__
    for module in (quorate.metrics, quorate.pytest_plugin):
        for name in module.__all__:
            obj = getattr(module, name)
            if not isinstance(obj, PLAIN_VALUES):
                assert has_docstring(name, obj), f"{module.__name__}.{name}"


@pytest.mark.parametrize("cls", [quorate.Status, quorate.PeerStatus])
def test_every_field_of_the_status_classes_is_described_in_its_docstring(cls):
    # cleandoc: Python 3.13 strips docstrings' common indentation at compile time, 3.11 does not.
    doc = inspect.cleandoc(cls.__doc__ or "")
    described = set(re.findall(r"^\s{4}(\w+):", doc, re.M))
    fields = {f.name for f in dataclasses.fields(cls)}
    assert fields <= described, f"{cls.__name__} fields missing from its Attributes section: {fields - described}"


def reference_targets() -> List[str]:
    return re.findall(r"^::: ([\w.]+)", "\n".join(p.read_text() for p in (DOCS / "reference").glob("*.md")), re.M)


def test_the_api_reference_renders_every_public_name():
    targets = set(reference_targets())
    for name in quorate.__all__:
        if name == "__version__":
            continue
        assert f"quorate.{name}" in targets, f"docs/reference/ has no '::: quorate.{name}'"
    assert {"quorate.metrics", "quorate.pytest_plugin"} <= targets


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in DOCS.rglob("*.md"):
        assert str(page.relative_to(DOCS)) in nav, page


def test_links_in_the_readme_and_the_guides_stay_inside_the_repository():
    for path in [ROOT / "README.md", *DOCS.rglob("*.md")]:
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if re.match(r"[a-z]+://", target) or target.startswith("#"):
                continue
            file = (path.parent / target.split("#")[0]).resolve()
            assert ROOT in file.parents and file.exists(), f"{path.name}: a link to {target}"
    assert "shared/API.md" not in (ROOT / "README.md").read_text()


def test_the_leader_work_guides_complete_example_runs(tmp_path):
    text = (DOCS / "leader-work.md").read_text()
    programs = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "asyncio.run(main())" in b]
    assert len(programs) == 1
    script = tmp_path / "leader_work.py"
    script.write_text(programs[0])
    out = subprocess.run([sys.executable, "-W", "ignore", str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "fencing tokens written:" in out.stdout


def test_the_cli_page_shows_the_live_help_of_each_command():
    text = (DOCS / "cli.md").read_text()
    assert set(re.findall(r"<!-- cli-help: (\w+) -->", text)) == {"node", "demo"}
    assert "hooks.py" in (ROOT / "mkdocs.yml").read_text()


def test_the_core_example_in_the_reference_runs(tmp_path):
    text = (DOCS / "reference" / "simulation.md").read_text()
    (block,) = re.findall(r"```python\n(.*?)```", text, re.S)
    script = tmp_path / "core_example.py"
    script.write_text(block)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
