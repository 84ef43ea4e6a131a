"""Build hooks (everything else is in pyproject.toml).

The web bundles embed tweetnacl and i18next from npm. A wheel must serve without Node,
so ``build_py`` copies those files, checked against the hashes in
``gateway/web_vendor.json``, into the wheel as ``gateway/web/vendor/`` (see
:mod:`gateway.web_vendor`). They come from ``node_modules`` (after ``npm ci``) or, when
building from an sdist, from the sdist's own ``gateway/web/vendor/``; with neither, or
with a file that differs, the build fails. The copies are written into the build tree
only, never into the source tree. Editable installs (``pip install -e .``, ``make run``)
skip this: a source checkout serves straight from ``node_modules``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent


def _web_vendor() -> ModuleType:
    """``gateway/web_vendor.py`` by file path: the build environment has none of the
    project's dependencies, and that module needs none."""
    spec = importlib.util.spec_from_file_location(
        "_cipherdesk_web_vendor", ROOT / "gateway" / "web_vendor.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _vendor(dest_root: Path) -> list[str]:
    """Copy the checked files to ``dest_root/gateway/web/vendor``; a clear build error
    (not a wheel that cannot serve) when they are missing or differ."""
    wv = _web_vendor()
    source = ROOT / "node_modules"
    if not source.is_dir() and (ROOT.joinpath(*wv.VENDOR_SUBPATH)).is_dir():
        source = ROOT.joinpath(*wv.VENDOR_SUBPATH)  # building from an sdist
    try:
        written = wv.vendor_into(wv.load_manifest(), source, dest_root.joinpath(*wv.VENDOR_SUBPATH))
    except wv.VendorError as exc:
        raise SystemExit(f"error: cannot embed the browser libraries: {exc}") from None
    return [str(path) for path in written]


class BuildPyWithVendor(build_py):
    """``build_py`` plus the checked browser libraries in the build tree."""

    def run(self) -> None:
        super().run()
        if not getattr(self, "editable_mode", False):
            self._vendored = _vendor(Path(self.build_lib))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), *getattr(self, "_vendored", [])]


class SdistWithVendor(sdist):
    """The sdist carries the checked files too, so a wheel builds from it without npm."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        _vendor(Path(base_dir))


setup(cmdclass={"build_py": BuildPyWithVendor, "sdist": SdistWithVendor})
