"""`make demo`: fill an empty data/ with the synthetic study, run the DVC pipeline, point at results."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from luskit import paths


def data_is_empty(data: Path = paths.DATA) -> bool:
    """True when data/ is missing or holds no files at all (a fresh clone without a DVC remote)."""
    return not data.exists() or not any(p.is_file() for p in data.rglob("*"))


def run_demo(params: Path) -> int:
    root = paths.project_root()
    os.chdir(root)
    luskit = [sys.executable, "-m", "luskit.cli"]
    if data_is_empty():
        print("data/ is empty: generating the synthetic demo study (luskit synth)...", flush=True)
        subprocess.run([*luskit, "synth", "--params", str(params)], check=True)
    else:
        print("data/ already holds files: using them as they are.", flush=True)
    result = subprocess.run([str(venv_bin() / "dvc"), "repro"], env=pipeline_env())
    if result.returncode != 0:
        print("dvc repro failed: see the messages above.", file=sys.stderr)
        return result.returncode
    print(summary_text())
    return 0


def venv_bin() -> Path:
    """The folder holding this interpreter's console scripts (luskit, dvc)."""
    return Path(sys.executable).parent


def pipeline_env() -> dict[str, str]:
    """Environment for `dvc repro`: stage commands call `luskit`, so the venv's bin/ goes first on PATH."""
    return {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}"}


def summary_text() -> str:
    lines = ["", "Demo finished. Where things are:",
             f"  inputs (DVC-tracked):   {paths.DATA}/  raw/ (PHI), annotations/, reference/, reviews/"]
    if paths.ARTIFACTS.exists():
        for child in sorted(p for p in paths.ARTIFACTS.iterdir() if p.is_dir()):
            lines.append(f"  {child.name + ':':<23} {child}/")
    lines.append("  pipeline status:        .venv/bin/dvc status   (metrics: .venv/bin/dvc metrics show)")
    comparison = paths.EVAL / "comparison.md"
    if comparison.exists():
        lines += ["", f"Model comparison ({comparison}; plots: {paths.EVAL / 'figures'}/, offline HTML:",
                  f"  .venv/bin/dvc plots show {paths.EVAL / 'figures'}):", "", headline(comparison.read_text())]
    lines += ["", "Review app: .venv/bin/luskit review   then open http://127.0.0.1:8501"]
    return "\n".join(lines)


def headline(markdown: str) -> str:
    """The first section of comparison.md (up to its second `## ` heading): the headline table."""
    out: list[str] = []
    for line in markdown.splitlines():
        if line.startswith("## ") and any(o.startswith("## ") for o in out):
            break
        out.append(line)
    return "\n".join(out).strip()
