"""The built wheel, installed the way a Python user installs it (issue 19.8, issue 17).

One wheel is built per session from the files git tracks plus ``node_modules`` (what a
release build sees), in a temporary copy of the checkout, and installed into a fresh
virtualenv (dependencies from the package index / pip cache). Then, with ``cwd`` outside
the checkout, no ``PYTHONPATH`` and a ``PATH`` holding only the venv's ``bin`` (no node,
no npm):

* ``cipherdesk serve`` starts and serves the widget, the console and both bundles with
  tweetnacl and i18next from the copy inside the wheel, byte for byte the files pinned
  in ``gateway/web_vendor.json``;
* a tampered or missing vendored file stops ``serve`` with one line on stderr, no
  traceback;
* building without ``node_modules`` fails and produces no wheel;
* the example plugin's own tests pass against the installed wheel: ``plugins.testing``
  imported from the venv's site-packages, not from the source tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

from gateway.web_vendor import load_manifest, sri384
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]
TICKETBOX = ROOT / "plugins" / "examples" / "ticketbox"
MANIFEST = load_manifest(ROOT / "gateway" / "web_vendor.json")
pytestmark = pytest.mark.timeout(900)


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600):
    """Run a build/install step; its output is in the failure message."""
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _source_copy(dest: Path, with_node_modules: bool) -> Path:
    """The files git tracks (plus untracked, not ignored ones), and ``node_modules`` when
    asked: a clean release checkout, so the build never writes into this worktree."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        rel = raw.decode()
        src = ROOT / rel
        if src.is_file():  # a tracked file deleted in the worktree is not part of it
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    if with_node_modules:
        shutil.copytree(ROOT / "node_modules", dest / "node_modules", symlinks=True)
    return dest


def _pip_wheel(src: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@dataclass(frozen=True)
class Install:
    """The session's wheel and the fresh venv it is installed in."""

    wheel: Path
    venv: Path
    site_packages: Path
    home: Path  # a working directory outside the checkout
    build_seconds: float
    install_seconds: float

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def vendor_dir(self) -> Path:
        return self.site_packages / "gateway" / "web" / "vendor"

    def env(self) -> dict[str, str]:
        """No node/npm, no PYTHONPATH, nothing of the checkout."""
        return {
            "PATH": str(self.venv / "bin"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
        }


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    base = tmp_path_factory.mktemp("wheel")
    started = time.monotonic()
    src = _source_copy(base / "src", with_node_modules=True)
    built = _pip_wheel(src, base / "dist")
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (base / "dist").glob("cipherdesk-*.whl")
    build_seconds = time.monotonic() - started

    started = time.monotonic()
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    pins = [f"{name}=={metadata.version(name)}" for name in ("pytest", "pytest-aiohttp")]
    pins.append(f"pytest-asyncio=={metadata.version('pytest-asyncio')}")
    _run([str(python), "-m", "pip", "install", "-q", str(wheel), *pins], cwd=base)
    tb_src = base / "ticketbox-src"
    shutil.copytree(TICKETBOX, tb_src, ignore=shutil.ignore_patterns("tests", "*.egg-info"))
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(tb_src)], cwd=base)
    site = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=base,
    ).stdout.strip()
    home = base / "home"
    home.mkdir()
    yield Install(
        wheel=wheel,
        venv=env_dir,
        site_packages=Path(site),
        home=home,
        build_seconds=build_seconds,
        install_seconds=time.monotonic() - started,
    )


def test_the_wheel_carries_the_libraries_the_test_kit_and_the_type_marker(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for entry in MANIFEST.files:
        assert f"gateway/web/vendor/{entry.rel}" in names
    assert {"gateway/web_vendor.json", "plugins/testing.py", "plugins/py.typed"} <= names
    assert not any(n.startswith(("node_modules/", "tests/")) for n in names)
    for entry in MANIFEST.files:  # the installed copies are the pinned bytes
        assert sri384((installed.vendor_dir / entry.rel).read_bytes()) == entry.sha384
    print(
        f"wheel {installed.wheel.stat().st_size} bytes; build {installed.build_seconds:.1f}s,"
        f" venv + install {installed.install_seconds:.1f}s"
    )


@dataclass
class Served:
    proc: subprocess.Popen[str]
    base: str
    log: Path


def _serve(installed: Install, data_dir: Path, port: int, log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            str(installed.venv / "bin" / "cipherdesk"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        cwd=installed.home,
        env=installed.env(),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=1) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


@pytest.fixture
def served(installed: Install, tmp_path: Path) -> Iterator[Served]:
    assert shutil.which("node", path=installed.env()["PATH"]) is None
    assert shutil.which("npm", path=installed.env()["PATH"]) is None
    log = tmp_path / "serve.log"
    proc: subprocess.Popen[str] | None = None
    for _attempt in range(3):  # a probed-free port can be taken before serve binds it
        port = free_port()
        proc = _serve(installed, tmp_path / "data", port, log)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and not _healthy(base):
            time.sleep(0.1)
        if proc.poll() is None:
            break
        if "already in use" not in log.read_text():
            break
    assert proc is not None and proc.poll() is None, f"serve exited:\n{log.read_text()}"
    assert _healthy(base), f"serve not healthy in 60s:\n{log.read_text()}"
    yield Served(proc=proc, base=base, log=log)
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.read()


def test_serve_from_the_wheel_without_node(installed, served):
    where = _run(
        [str(installed.python), "-c", "import gateway.http.web as m; print(m.__file__)"],
        cwd=installed.home,
        env=installed.env(),
    ).stdout.strip()
    assert Path(where).is_relative_to(installed.site_packages)
    assert not (installed.site_packages / "node_modules").exists()

    nacl = (installed.vendor_dir / "tweetnacl" / "nacl-fast.min.js").read_bytes()
    i18next = (installed.vendor_dir / "i18next" / "i18next.min.js").read_bytes()
    assert sri384(nacl) == MANIFEST.get("tweetnacl", "nacl-fast.min.js").sha384
    assert sri384(i18next) == MANIFEST.get("i18next", "i18next.min.js").sha384

    status, widget = _get(f"{served.base}/widget.js")
    assert status == 200 and nacl in widget and i18next in widget
    status, core = _get(f"{served.base}/static/core.js")
    assert status == 200 and nacl in core and i18next in core
    status, info = _get(f"{served.base}/embed.json?tenant=demo")
    assert status == 200 and json.loads(info)["integrity"] == sri384(widget)
    status, demo = _get(f"{served.base}/demo")
    assert status == 200 and b"/widget.js" in demo
    status, page = _get(f"{served.base}/console")
    assert status == 200 and b"/static/core.js" in page


def _serve_once(installed: Install, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(installed.venv / "bin" / "cipherdesk"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port()),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        cwd=installed.home,
        env=installed.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "creating a new installation" not in line]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("cipherdesk: "), proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def test_a_tampered_vendored_library_stops_serve_in_one_line(installed, tmp_path):
    target = installed.vendor_dir / "tweetnacl" / "nacl-fast.min.js"
    original = target.read_bytes()
    target.write_bytes(original.replace(b"nacl", b"NACL", 1))
    try:
        proc = _serve_once(installed, tmp_path)
    finally:
        target.write_bytes(original)
    _one_line_error(proc, str(target), "sha384", "tweetnacl 1.0.3")


def test_a_missing_vendored_library_stops_serve_with_a_hint(installed, tmp_path):
    target = installed.vendor_dir / "i18next" / "i18next.min.js"
    moved = tmp_path / "i18next.min.js"
    shutil.move(target, moved)
    try:
        proc = _serve_once(installed, tmp_path)
    finally:
        shutil.move(moved, target)
    _one_line_error(proc, "i18next.min.js", "not found", "reinstall cipherdesk")


def test_no_wheel_is_built_without_node_modules(tmp_path):
    src = _source_copy(tmp_path / "src", with_node_modules=False)
    built = _pip_wheel(src, tmp_path / "dist")
    assert built.returncode != 0
    assert "cannot embed the browser libraries" in built.stderr
    assert "npm ci" in built.stderr
    assert not list(tmp_path.glob("dist/*.whl"))


def test_an_sdist_carries_the_checked_libraries(tmp_path):
    """``python -m build`` makes the sdist first and the wheel from it: the sdist must
    hold the libraries (checked) so that wheel builds without npm."""
    src = _source_copy(tmp_path / "src", with_node_modules=True)
    _run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path / "sdist")], cwd=src)
    (sdist,) = (tmp_path / "sdist").glob("cipherdesk-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
        tar.extractall(tmp_path / "unpacked", filter="data")
    for entry in MANIFEST.files:
        assert f"gateway/web/vendor/{entry.rel}" in names
    (unpacked,) = (tmp_path / "unpacked").iterdir()
    assert not (unpacked / "node_modules").exists()
    built = _pip_wheel(unpacked, tmp_path / "dist")
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for entry in MANIFEST.files:
        assert f"gateway/web/vendor/{entry.rel}" in names


_PROBE = """
import json, os, sys
import cipherdesk_ticketbox, plugins.testing


def pytest_configure(config):
    with open(os.environ["IMPORT_PROBE"], "w") as out:
        json.dump({"plugins.testing": plugins.testing.__file__,
                   "cipherdesk_ticketbox": cipherdesk_ticketbox.__file__,
                   "sys.path": sys.path}, out)
"""


def test_example_plugin_tests_pass_against_the_installed_wheel(installed, tmp_path):
    tests = tmp_path / "ticketbox-tests"
    shutil.copytree(TICKETBOX / "tests", tests, ignore=shutil.ignore_patterns("__pycache__"))
    (tests / "conftest.py").write_text(_PROBE)
    probe = tmp_path / "probe.json"
    env = {**installed.env(), "IMPORT_PROBE": str(probe)}
    proc = subprocess.run(
        [
            str(installed.python),
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            "--rootdir",
            str(tmp_path),
            str(tests),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    expected = (TICKETBOX / "tests" / "test_ticketbox_plugin.py").read_text().count("def test_")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert f"{expected} passed" in proc.stdout, proc.stdout[-2000:]
    seen = json.loads(probe.read_text())
    assert Path(seen["plugins.testing"]).is_relative_to(installed.site_packages)
    assert Path(seen["cipherdesk_ticketbox"]).is_relative_to(installed.site_packages)
    assert not any(Path(p).resolve() == ROOT for p in seen["sys.path"] if p)
    assert not any(str(ROOT) in p for p in seen["sys.path"])
    assert os.sep + "site-packages" in seen["plugins.testing"]
