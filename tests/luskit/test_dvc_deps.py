"""dvc.yaml's code deps are exactly what each stage runs: the import closure of its entry module (luskit.stages)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from luskit.stages import ENTRIES, entry, entry_module
from tests.luskit.import_closure import PACKAGES, closure

REPO = Path(__file__).resolve().parents[2]
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def code_deps(stage: str) -> list[str]:
    return [d for d in DVC[stage]["deps"] if d.split("/")[0] in PACKAGES]


def covered(path: str, deps: list[str]) -> bool:
    """A file dep covers itself; a folder dep covers every file under it."""
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def test_every_stage_has_an_entry_and_its_cmd_names_it():
    assert set(ENTRIES) == set(DVC), "luskit/stages.py ENTRIES and dvc.yaml stages differ"
    for stage, spec in DVC.items():
        assert spec["cmd"].split()[:2] == ["luskit", stage], f"{stage}: cmd must be `luskit {stage} ...`"
        assert callable(entry(stage))


@pytest.mark.parametrize("stage", sorted(ENTRIES))
def test_deps_cover_the_import_closure(stage):
    files = sorted(str(p.relative_to(REPO)) for p in closure(REPO, entry_module(stage)).values())
    missing = [f for f in files if not covered(f, code_deps(stage))]
    assert not missing, f"dvc.yaml stage {stage} runs these files but does not list them in deps: {missing}"


@pytest.mark.parametrize("stage", sorted(ENTRIES))
def test_code_deps_are_in_the_closure(stage):
    """No stage lists code it never imports (an edit there would rerun it for nothing)."""
    files = {str(p.relative_to(REPO)) for p in closure(REPO, entry_module(stage)).values()}
    for dep in code_deps(stage):
        inside = {f for f in files if covered(f, [dep])}
        assert inside, f"dvc.yaml stage {stage} lists {dep}, which the stage never imports"


def test_closure_follows_lazy_relative_and_by_name_imports(tmp_path):
    pkg = tmp_path / "training" / "sub"
    pkg.mkdir(parents=True)
    for name, text in {"__init__.py": "", "sub/__init__.py": "", "sub/a.py": "def f():\n    from . import b\n",
                       "sub/b.py": "from ..sub.c import x\n", "sub/c.py": "NAME = 'training.sub.d'\nx = 1\n",
                       "sub/d.py": "import numpy\n", "sub/e.py": ""}.items():
        (tmp_path / "training" / name).write_text(text)
    assert sorted(closure(tmp_path, "training.sub.a")) == ["training", "training.sub", "training.sub.a",
                                                          "training.sub.b", "training.sub.c", "training.sub.d"]

