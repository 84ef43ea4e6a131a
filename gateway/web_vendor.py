"""The browser libraries the web bundles embed (tweetnacl, i18next, Chart.js), pinned by hash.

The widget's end-to-end encryption is only as good as the tweetnacl bytes served with
it, so those bytes are pinned twice over: ``package-lock.json`` pins the npm versions
(and the tarballs' sha512, which ``npm ci`` checks), and ``gateway/web_vendor.json``,
checked into git, lists every file the server embeds with the sha384 of *that file*
for those versions. A changed library is therefore always a reviewed diff of the
manifest, never a silent change of ``node_modules``.

The manifest is checked at both ends:

* building a wheel or sdist (``setup.py``) copies the files into the package as
  ``gateway/web/vendor/<package>/<file>`` with :func:`vendor_into`, which refuses a
  missing ``node_modules`` or a file whose hash differs: no wheel that cannot serve,
  and ``pip install cipherdesk`` + ``cipherdesk serve`` needs no Node;
* at start-up :mod:`gateway.http.web` reads each library with :func:`read_checked`,
  whatever the source (the vendored copy, ``$CIPHERDESK_WEB_VENDOR`` or ``node_modules``
  in a source checkout), and a mismatch stops the server with a one-line error.

This module uses the standard library only and imports nothing from the project:
``setup.py`` loads it by file path inside the isolated build environment.

After bumping a library in ``package.json``: ``npm ci``, then
``python -m gateway.web_vendor update`` rewrites the manifest from ``node_modules``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

MANIFEST_FILE = Path(__file__).resolve().with_name("web_vendor.json")
#: Where the wheel carries the copies (``<package>/<file>`` below it).
VENDOR_DIR = Path(__file__).resolve().parent / "web" / "vendor"
#: The same directory relative to the project root, for the build.
VENDOR_SUBPATH = ("gateway", "web", "vendor")
#: No browser library we embed comes near this; a bigger file is not ours.
MAX_FILE_BYTES = 4 * 1024 * 1024

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# A file at the package root or one directory down (``dist/chart.umd.min.js``); no
# part starts with a dot, so ``..`` cannot climb out of the package directory.
_FILE = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,63}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_SRI = re.compile(r"^sha384-[A-Za-z0-9+/]{64}$")


class VendorError(Exception):
    """A pinned browser library is missing or differs from the manifest; the message is
    one line saying which file, where, and what to do."""


@dataclass(frozen=True, slots=True)
class PinnedFile:
    """One file of a pinned npm package: ``path`` inside the package, and its sha384 in
    Subresource Integrity form (``sha384-<base64>``)."""

    package: str
    version: str
    path: str
    sha384: str

    @property
    def rel(self) -> str:
        """``<package>/<path>``: the file's place below ``node_modules`` and the vendor dir."""
        return f"{self.package}/{self.path}"


@dataclass(frozen=True, slots=True)
class Manifest:
    """The pinned files, in manifest order."""

    files: tuple[PinnedFile, ...]

    def get(self, package: str, path: str) -> PinnedFile:
        """The entry for ``package``'s ``path``; a missing one is a programming error."""
        for entry in self.files:
            if entry.package == package and entry.path == path:
                return entry
        raise KeyError(f"{package}/{path} is not in {MANIFEST_FILE.name}")

    def versions(self) -> dict[str, str]:
        """Package name to pinned version."""
        return {entry.package: entry.version for entry in self.files}


def sri384(body: bytes) -> str:
    """Subresource Integrity form of the sha384 of ``body``."""
    return "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode("ascii")


def _text(item: dict[str, object], key: str, pattern: re.Pattern[str], where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not pattern.match(value):
        raise VendorError(f"{where}: bad or missing {key!r}")
    return value


def load_manifest(path: Path = MANIFEST_FILE) -> Manifest:
    """Read and validate the manifest (names, versions and hashes in their exact forms)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise VendorError(f"cannot read the browser library manifest {path}: {exc}") from None
    items = raw.get("files") if isinstance(raw, dict) else None
    if not isinstance(items, list) or not items:
        raise VendorError(f"{path}: no 'files' list")
    files: list[PinnedFile] = []
    for index, item in enumerate(items):
        where = f"{path} files[{index}]"
        if not isinstance(item, dict):
            raise VendorError(f"{where}: not an object")
        files.append(
            PinnedFile(
                package=_text(item, "package", _NAME, where),
                version=_text(item, "version", _VERSION, where),
                path=_text(item, "path", _FILE, where),
                sha384=_text(item, "sha384", _SRI, where),
            )
        )
    if len({f.rel for f in files}) != len(files):
        raise VendorError(f"{path}: a file is listed twice")
    return Manifest(files=tuple(files))


def _read(path: Path) -> bytes:
    with path.open("rb") as handle:
        body = handle.read(MAX_FILE_BYTES + 1)
    if len(body) > MAX_FILE_BYTES:
        raise VendorError(f"{path} is larger than {MAX_FILE_BYTES} bytes")
    return body


def read_checked(entry: PinnedFile, path: Path) -> bytes:
    """The bytes of ``path``, which must be ``entry``'s file exactly (its sha384)."""
    try:
        body = _read(path)
    except OSError as exc:
        raise VendorError(f"cannot read {entry.rel} at {path}: {exc.strerror or exc}") from None
    got = sri384(body)
    if got != entry.sha384:
        raise VendorError(
            f"{path} is not {entry.package} {entry.version} {entry.path} as pinned in "
            f"{MANIFEST_FILE.name} (sha384 {got}, expected {entry.sha384}); "
            "reinstall cipherdesk, or run `npm ci` in a source checkout"
        )
    return body


def vendor_into(manifest: Manifest, source: Path, dest: Path) -> list[Path]:
    """Copy every pinned file from ``source`` (``node_modules`` or an sdist's vendor dir,
    laid out ``<package>/<file>``) to ``dest``, checking each hash first; returns the
    written paths. The build calls this, so a wheel never carries other bytes."""
    if not source.is_dir():
        raise VendorError(
            f"{source} is missing: the wheel embeds tweetnacl, i18next and Chart.js from it; "
            "run `npm ci` (or `make web-deps`) in the project root first"
        )
    bodies = [(entry, read_checked(entry, source / entry.rel)) for entry in manifest.files]
    written: list[Path] = []
    for entry, body in bodies:
        target = dest / entry.rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        written.append(target)
    return written


def lock_versions(lock_path: Path) -> dict[str, str]:
    """Top-level package versions installed by ``package-lock.json`` (lockfile v2/v3)."""
    raw = json.loads(lock_path.read_text(encoding="utf-8"))
    packages = raw.get("packages", {}) if isinstance(raw, dict) else {}
    found: dict[str, str] = {}
    for key, info in packages.items():
        if key.startswith("node_modules/") and key.count("node_modules/") == 1:
            if isinstance(info, dict) and isinstance(info.get("version"), str):
                found[key.removeprefix("node_modules/")] = info["version"]
    return found


def update(manifest_path: Path, node_modules: Path) -> Manifest:
    """Rewrite the manifest's hashes and versions from ``node_modules`` (after ``npm ci``
    installed the versions ``package-lock.json`` pins); the file list stays as it is."""
    old = load_manifest(manifest_path)
    files: list[PinnedFile] = []
    for entry in old.files:
        package_json = json.loads((node_modules / entry.package / "package.json").read_text())
        body = _read(node_modules / entry.rel)
        version = str(package_json["version"])
        files.append(PinnedFile(entry.package, version, entry.path, sri384(body)))
    raw = json.loads(manifest_path.read_text(encoding="utf-8"))
    raw["files"] = [
        {"package": f.package, "version": f.version, "path": f.path, "sha384": f.sha384}
        for f in files
    ]
    manifest_path.write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
    return Manifest(files=tuple(files))


def main(argv: list[str]) -> int:
    """``python -m gateway.web_vendor update|check``: maintain or verify the manifest
    against ``./node_modules``."""
    if argv not in (["update"], ["check"]):
        print("usage: python -m gateway.web_vendor update|check", file=sys.stderr)
        return 2
    node_modules = Path("node_modules")
    try:
        if argv == ["update"]:
            update(MANIFEST_FILE, node_modules)
        else:
            manifest = load_manifest()
            for entry in manifest.files:
                read_checked(entry, node_modules / entry.rel)
    except (VendorError, OSError, ValueError, KeyError) as exc:
        print(f"web_vendor: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
