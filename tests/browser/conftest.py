"""One JupyterLab + one headless Chromium for every browser test, whose kernel is what a user
installs: a built wheel with ``[all]`` in a fresh venv (tests/browser/wheel_env.py), running
copies of the tutorials in a temporary folder that is not the checkout."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import lab as L
from . import wheel_env

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SHOTS = ROOT / "build" / "screenshots"


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[L.Lab, Any]]:
    if L.missing() is not None:
        pytest.skip(f"browser test: {L.missing()}")
    root = tmp_path_factory.mktemp("lab")
    shutil.rmtree(SHOTS, ignore_errors=True)  # no screenshot of an earlier run left to mislead
    env = {"FLOWNB_LLM": "fake", "FLOWNB_LLM_CACHE": "0"}
    kernel = None
    if os.environ.get("FLOWNB_BROWSER_KERNEL", "wheel") != "dev":
        python = wheel_env.wheel_python(tmp_path_factory.mktemp("wheel"))
        kernel = wheel_env.kernelspec(root / ".jupyter-data", python)
        env["JUPYTER_PATH"] = str(root / ".jupyter-data")
    # copies of the tutorials alone (outputs never go into the repository; nothing of the
    # checkout beside them: a tutorial must not read the repository's files)
    (root / "notebooks").mkdir()
    for nb in NOTEBOOKS:
        shutil.copy(nb, root / "notebooks" / nb.name)
        if kernel is not None:
            wheel_env.use_kernel(root / "notebooks" / nb.name, kernel)
    lab = L.Lab(root, env=env)
    lab.kernel_name = kernel  # type: ignore[attr-defined]
    driver = None
    try:
        driver = L.chrome()
        yield lab, driver
    finally:
        if driver is not None:
            driver.quit()
        lab.stop()
