"""The README's commands run verbatim from a fresh shell in the clone (no venv activated, no
MLFLOW_* variables): the cheap ones as written; a single run composed with ``--cfg job`` appended
(Hydra composes every group and override and stops before any work); a sweep whole, checked and
launched, with one update a job, into the test's folder."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
COMMANDS = [line.split("  #")[0].strip() for block in re.findall(r"```bash\n(.*?)```", README, re.S)
            for line in block.splitlines() if line.startswith(".venv/bin/")]
CHEAP = ("--help", "--cfg", "--version")
VENV = Path(sys.executable).parent  # the suite runs in .venv: the README's .venv/bin is this folder


def fresh_shell() -> dict[str, str]:
    """PATH without the venv, nothing of MLflow's: as a new terminal has it."""
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != VENV)
    return {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "VIRTUAL_ENV"))} | {"PATH": path}


def test_the_readme_has_commands_and_is_short():
    assert len(COMMANDS) >= 8 and len(README.splitlines()) <= 250


@pytest.mark.parametrize("command", [pytest.param(c, marks=pytest.mark.slow) if " -m " in c else c for c in COMMANDS])
def test_a_readme_command_runs_from_a_fresh_shell(command, tmp_path):
    if (ROOT / ".venv" / "bin").resolve() != VENV.resolve():
        pytest.skip("the suite does not run in the clone's .venv")
    args = shlex.split(command)
    if any(flag in args for flag in CHEAP):
        extra = []
    elif "-m" in args:  # a sweep, run whole but one update a job, into tmp_path (Hydra's --cfg excludes -m)
        extra = ["trainer.max_steps=1", f"hydra.sweep.dir={tmp_path}/sweep", "tracking.report=never",
                 f"tracking.uri=sqlite:///{tmp_path}/mlflow.db" if "resume=true" in args else "tracking=none"]
    else:
        extra = ["--cfg", "job"]
    done = subprocess.run(args + extra, cwd=ROOT, env=fresh_shell(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()


def test_the_library_page_s_code_runs_as_written(tmp_path):
    """docs/library.md's blocks, one after the other as in a notebook, NumPy only (no runner import)."""
    code = "\n".join(re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "library.md").read_text(), re.S))
    assert "fit(" in code and "BlockNetwork(" in code
    code += "\nimport sys\nassert not any(m.startswith(('runner', 'hydra', 'mlflow')) for m in sys.modules)\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=fresh_shell() | {"OPENBLAS_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[0].startswith("0 loss ")


def test_make_report_without_an_experiment_says_how_to_name_one():
    """``make report`` alone (the README names ``make report EXP=…``): one line of how, status 2, no traceback."""
    if (ROOT / ".venv" / "bin").resolve() != VENV.resolve():
        pytest.skip("the suite does not run in the clone's .venv")
    done = subprocess.run(["make", "--no-print-directory", "-s", "-o", ".venv/.installed", "report"], cwd=ROOT,
                          env=fresh_shell(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines()[0].startswith("make report: give an experiment: make report EXP=<name>")
    assert "Traceback" not in done.stderr


def test_every_local_link_and_image_of_the_readme_and_docs_resolves():
    """A page's relative links and images point at files that exist, relative to the page (docs/ pages moved
    out of the README kept README-relative ``docs/figures/…`` images: none of them showed)."""
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text()
        targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r"<img src=\"([^\"]+)\"", text)
        for target in targets:
            path = target.split("#")[0]
            if path and not re.match(r"[a-z]+:", path) and not (page.parent / path).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken
