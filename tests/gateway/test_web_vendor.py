"""The manifest of pinned browser library files (gateway/web_vendor.json) and its checks,
in the source checkout: the build-time copy, the start-up check, the maintainer update."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import web_vendor
from gateway.http import web as http_web
from gateway.web_vendor import (
    Manifest,
    VendorError,
    load_manifest,
    lock_versions,
    read_checked,
    sri384,
    vendor_into,
)
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "node_modules"


def test_manifest_pins_the_versions_package_lock_installs():
    manifest = load_manifest()
    locked = lock_versions(ROOT / "package-lock.json")
    declared = json.loads((ROOT / "package.json").read_text())["dependencies"]
    assert manifest.versions() == {name: locked[name] for name in declared}
    assert set(manifest.versions()) == set(declared)  # every runtime library is pinned


def test_node_modules_matches_the_manifest():
    """`npm ci` (make setup-dev) installed exactly the pinned files."""
    for entry in load_manifest().files:
        body = read_checked(entry, NODE_MODULES / entry.rel)
        assert sri384(body) == entry.sha384


def _copy_modules(dest: Path, manifest: Manifest) -> Path:
    for entry in manifest.files:
        (dest / entry.rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(NODE_MODULES / entry.rel, dest / entry.rel)
    return dest


def test_vendor_into_copies_checked_files(tmp_path):
    manifest = load_manifest()
    written = vendor_into(manifest, _copy_modules(tmp_path / "nm", manifest), tmp_path / "out")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in written] == [
        e.rel for e in manifest.files
    ]
    for entry in manifest.files:
        assert (tmp_path / "out" / entry.rel).read_bytes() == (
            NODE_MODULES / entry.rel
        ).read_bytes()


def test_vendor_into_refuses_a_changed_file_and_writes_nothing(tmp_path):
    manifest = load_manifest()
    source = _copy_modules(tmp_path / "nm", manifest)
    lib = source / "i18next" / "i18next.min.js"
    lib.write_bytes(lib.read_bytes() + b"\n;alert(1)")
    with pytest.raises(VendorError, match=r"is not i18next 27\.2\.10 i18next\.min\.js") as err:
        vendor_into(manifest, source, tmp_path / "out")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_vendor_into_without_node_modules_says_npm_ci(tmp_path):
    with pytest.raises(VendorError, match="npm ci"):
        vendor_into(load_manifest(), tmp_path / "node_modules", tmp_path / "out")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sha384", "sha256-abc"),
        ("path", "../../etc/passwd"),
        ("path", "dist/../../x.js"),
        ("path", "a/b/c.js"),
        ("path", ".hidden/x.js"),
        ("package", "Tweet Nacl"),
        ("version", "latest"),
    ],
)
def test_manifest_entries_are_validated(tmp_path, field, value):
    raw = json.loads(web_vendor.MANIFEST_FILE.read_text())
    raw["files"][0][field] = value
    (tmp_path / "m.json").write_text(json.dumps(raw))
    with pytest.raises(VendorError, match=f"bad or missing '{field}'"):
        load_manifest(tmp_path / "m.json")


def test_update_rewrites_hashes_and_versions_from_node_modules(tmp_path):
    manifest = load_manifest()
    source = _copy_modules(tmp_path / "nm", manifest)
    for package in manifest.versions():
        shutil.copy2(NODE_MODULES / package / "package.json", source / package / "package.json")
    bumped = json.loads((source / "tweetnacl" / "package.json").read_text())
    bumped["version"] = "1.0.4"
    (source / "tweetnacl" / "package.json").write_text(json.dumps(bumped))
    (source / "tweetnacl" / "nacl-fast.min.js").write_bytes(b"/* 1.0.4 */")
    path = tmp_path / "web_vendor.json"
    shutil.copy2(web_vendor.MANIFEST_FILE, path)
    new = web_vendor.update(path, source)
    assert load_manifest(path) == new
    entry = new.get("tweetnacl", "nacl-fast.min.js")
    assert (entry.version, entry.sha384) == ("1.0.4", sri384(b"/* 1.0.4 */"))
    assert new.get("i18next", "i18next.min.js") == manifest.get("i18next", "i18next.min.js")


def test_start_up_refuses_a_library_that_is_not_the_pinned_one(tmp_path, monkeypatch):
    vendor = tmp_path / "vendor"
    _copy_modules(vendor, load_manifest())
    (vendor / "tweetnacl" / "nacl-fast.min.js").write_text("window.nacl = {};")
    monkeypatch.setenv(http_web.VENDOR_ENV, str(vendor))
    with pytest.raises(http_web.WebAssetsError, match=r"tweetnacl 1\.0\.3 nacl-fast\.min\.js"):
        http_web.WebAssets.build()


def test_serve_reports_a_tampered_library_in_one_line(tmp_path):
    """Before: WebAssetsError escaped the CLI as a traceback."""
    vendor = tmp_path / "vendor"
    _copy_modules(vendor, load_manifest())
    (vendor / "i18next" / "i18next.min.js").write_text("/* not i18next */")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIPHERDESK_")}
    env |= {http_web.VENDOR_ENV: str(vendor), "PYTHONPATH": str(ROOT)}
    data = ["--data-dir", str(tmp_path / "data")]
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(free_port()), *data],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("cipherdesk: ") and "i18next.min.js" in last and "sha384" in last
