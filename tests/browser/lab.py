"""A real JupyterLab + headless Chromium for the tutorial test (no mocks of either).

Why these choices:

* JupyterLab runs from this interpreter (``python -m jupyterlab``) on 127.0.0.1, a random free
  port and a random token, in a temporary directory holding *copies* of the tutorials, so a run
  never writes outputs into the repository. Its settings and workspaces live in that directory
  too: the notebook's windowing is off (JupyterLab 4 otherwise keeps cells outside the viewport
  out of the DOM, and a test could not see their outputs) and news/update checks are off
  (there is no network).
* ``--LabApp.expose_app_in_browser`` gives the page a ``window.jupyterapp``: the test runs cells
  with the same command the "Run All" menu item calls and changes the theme with the same
  command as the Settings menu, and reads outputs from the notebook model the UI renders.
* Chromium and its driver are Debian's (``/usr/bin/chromium``, ``/usr/bin/chromedriver``):
  selenium's own driver download would need a network.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
DRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")

LIGHT, DARK = "JupyterLab Light", "JupyterLab Dark"


def missing() -> str | None:
    """Why the browser test cannot run here (one line), or None when it can."""
    if not any(os.path.exists(p) for p in CHROMIUM_CANDIDATES) and not shutil.which("chromium"):
        return "no Chromium (Debian: apt-get install chromium chromium-driver; `make test-browser` does it as root)"
    if not any(os.path.exists(p) for p in DRIVER_CANDIDATES) and not shutil.which("chromedriver"):
        return "no chromedriver (Debian: apt-get install chromium-driver)"
    for mod in ("selenium", "jupyterlab"):
        try:
            __import__(mod)
        except ImportError:
            return f"{mod} is not installed (pip install 'flownb[browser]')"
    return None


def _first(paths: tuple[str, ...], name: str) -> str:
    for p in paths:
        if os.path.exists(p):
            return p
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(name)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _settings(root: Path) -> Path:
    """User settings for the test's JupyterLab (see the module docstring)."""
    settings = root / ".lab-settings"
    files = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/themes.jupyterlab-settings": {"theme": LIGHT},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "checkForUpdates": False, "fetchNews": "false"},
    }
    for rel, data in files.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
    return settings


class Lab:
    """One JupyterLab server (a subprocess of this test) and its URL/token."""

    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = root / ".lab.log"
        full_env = dict(os.environ)
        full_env.update(env or {})
        full_env.update({
            "JUPYTERLAB_SETTINGS_DIR": str(_settings(root)),
            "JUPYTERLAB_WORKSPACES_DIR": str(root / ".lab-workspaces"),
            "JUPYTER_RUNTIME_DIR": str(root / ".jupyter-runtime"),
            "JUPYTER_CONFIG_DIR": str(root / ".jupyter-config"),
        })
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
               "--LabApp.expose_app_in_browser=True", "--ServerApp.open_browser=False",
               "--LabApp.news_url=", "--ServerApp.disable_check_xsrf=True"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=root, env=full_env, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        self._wait_ready(90)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited ({self.proc.returncode}):\n{self.log()}")
            try:
                self.api("GET", "/api/status")
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not answer within {timeout}s:\n{self.log()}")

    def log(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def api(self, method: str, path: str) -> Any:
        req = urllib.request.Request(f"{self.base}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def url(self, notebook: str) -> str:
        return f"{self.base}/lab/tree/{notebook}?token={self.token}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def chrome(width: int = 1280, height: int = 1800) -> Any:
    """A headless Chromium driven by Debian's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = _first(CHROMIUM_CANDIDATES, "chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--hide-scrollbars", "--no-first-run",
                "--disable-extensions", "--force-device-scale-factor=1"):
        opts.add_argument(arg)
    service = Service(_first(DRIVER_CANDIDATES, "chromedriver"))
    driver = webdriver.Chrome(options=opts, service=service)
    driver.set_script_timeout(60)
    return driver
