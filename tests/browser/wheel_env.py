"""The tutorials' kernel as a user has it: a built wheel installed with ``pip install
'<wheel>[all]'`` in a fresh virtualenv — not this checkout, not the dev extra (which hid two
failures: a notebook reading ``../tests/flowcraft`` and one importing pandas that ``[all]`` lacked).

Why a cache: creating the venv and installing ``[all]`` takes ~1.5 min, so the venv is kept under
``build/browser-venv`` and made again when the dependency lists in pyproject.toml change (or with
``FLOWNB_BROWSER_FRESH=1``); flownb itself is rebuilt and reinstalled (``--no-deps``) every time,
from a copy of the source (an in-tree build could ship a stale module from an earlier build).
``FLOWNB_BROWSER_KERNEL=dev`` uses this interpreter instead (quicker, for working on the test).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / "build" / "browser-venv"
KERNEL_NAME = "flownb-wheel"
_IGNORE = shutil.ignore_patterns(".venv", "build", ".git", "site", "*.egg-info", "__pycache__",
                                 ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache",
                                 "node_modules", "dist")


#: what the tutorials' kernel has beside ``<wheel>[all]`` (binder/requirements.txt too): the
#: Jupyter kernel, and the OpenTelemetry SDK notebook 08 prints its trace tree with (flownb
#: itself depends on the OpenTelemetry API only)
TUTORIAL_EXTRAS = ("ipykernel", "opentelemetry-sdk>=1.25")


def _deps_key() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    data = json.dumps([project.get("dependencies"), project.get("optional-dependencies"),
                       TUTORIAL_EXTRAS], sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def _pip(python: Path, *args: str) -> None:
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q",
                           "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(args)} failed:\n{proc.stderr[-3000:]}")


def build_wheel(work: Path) -> Path:
    """A wheel of the current source (uncommitted changes included), built from a copy."""
    src = work / "src"
    shutil.copytree(ROOT, src, ignore=_IGNORE, symlinks=True)
    out = work / "dist"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "--disable-pip-version-check", "-w", str(out), str(src)],
                          capture_output=True, text=True, timeout=600)
    wheels = sorted(out.glob("flownb-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise RuntimeError(f"building the wheel failed:\n{proc.stderr[-3000:]}")
    return wheels[0]


def wheel_python(work: Path) -> Path:
    """The python of a venv holding ``<wheel>[all]`` (plus ipykernel, what Jupyter runs)."""
    wheel = build_wheel(work)
    python = VENV / "bin" / "python"
    stamp = VENV / ".deps-key"
    key = _deps_key()
    fresh = os.environ.get("FLOWNB_BROWSER_FRESH", "") not in ("", "0")
    if fresh or not python.exists() or not stamp.exists() or stamp.read_text() != key:
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
        _pip(python, f"{wheel}[all]", *TUTORIAL_EXTRAS)
        stamp.write_text(key)
    else:  # same dependencies: only flownb itself is new
        _pip(python, "--no-deps", "--force-reinstall", str(wheel))
    return python


def kernelspec(data_dir: Path, python: Path) -> str:
    """Register ``python`` as a Jupyter kernel under ``data_dir`` (put on JUPYTER_PATH)."""
    spec = data_dir / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "flownb[all] (wheel)", "language": "python"}))
    return KERNEL_NAME


def use_kernel(notebook: Path, name: str) -> None:
    """Point a notebook (a copy) at the kernel ``name``."""
    nb = json.loads(notebook.read_text())
    nb.setdefault("metadata", {})["kernelspec"] = {"name": name, "display_name": name,
                                                   "language": "python"}
    notebook.write_text(json.dumps(nb, indent=1))
