"""deploy/ is validated as far as this machine allows (no Docker engine here):

- nginx.conf passes ``nginx -t`` (gateway host names and certificate paths substituted)
  and has the properties we rely on: HTTP -> HTTPS, websocket upgrade on /ws/, proxy
  timeouts above the gateway heartbeat, X-Forwarded-For replaced in every location, an
  upstream naming every gateway service of compose.yaml;
- compose.yaml is structurally sound (PyYAML when installed, a structural reader
  otherwise): N gateway nodes + nginx + redis + postgres, healthchecks, secrets from
  files and never inline;
- the Dockerfile builds a non-root, slim image with no secret baked in, and every file
  it COPYs exists;
- the entrypoint turns ``*_FILE`` secrets into the environment / identity file;
- make-secrets.sh produces keys the gateway accepts;
- the systemd unit is hardened and passes ``systemd-analyze verify``.

``nginx`` and ``systemd-analyze`` missing: skipped locally, a failure when ``CI`` is set
(the Makefile's setup installs nginx-light).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from gateway.keyfiles import load_or_create_identity
from tests.services import unavailable

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
GATEWAYS = ("gateway1", "gateway2", "gateway3")


def need(binary: str) -> str:
    path = shutil.which(binary) or next(
        (str(p) for p in (Path("/usr/sbin") / binary, Path("/sbin") / binary) if p.exists()),
        None,
    )
    if path is None:
        unavailable(f"{binary} is not installed (the Makefile's test setup installs it)")
    return path


# --------------------------------------------------------------------------- nginx


def nginx_text() -> str:
    return (DEPLOY / "nginx.conf").read_text()


def location(conf: str, name: str) -> str:
    found = re.search(r"location\s+" + re.escape(name) + r"\s*\{(.*?)\n\s*\}", conf, re.S)
    assert found, f"no location {name}"
    return found.group(1)


def test_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    nginx = need("nginx")
    openssl = need("openssl")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=chat.example.test",
            "-keyout",
            str(tmp_path / "privkey.pem"),
            "-out",
            str(tmp_path / "fullchain.pem"),
        ],
        check=True,
        capture_output=True,
    )
    conf = nginx_text().replace("/etc/nginx/tls/", f"{tmp_path}/")
    # compose service names do not resolve here; nginx -t resolves upstream hosts.
    conf = re.sub(r"\bgateway(\d+):8080", r"127.0.0.1:1808\1", conf)
    (tmp_path / "nginx.conf").write_text(conf)
    result = subprocess.run(
        [nginx, "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path), "-e", "/dev/stderr"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_redirects_http_and_terminates_tls() -> None:
    conf = nginx_text()
    assert re.search(r"listen 80 default_server;", conf)
    assert "return 301 https://$host$request_uri;" in conf
    assert re.search(r"listen 443 ssl", conf)
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf
    assert "Strict-Transport-Security" in conf
    assert "server_tokens off;" in conf


def test_nginx_websocket_upgrade_and_timeouts_above_heartbeat() -> None:
    from gateway.config import WebSocketConfig

    ws = location(nginx_text(), "/ws/")
    assert "proxy_set_header Upgrade $http_upgrade;" in ws
    assert "proxy_set_header Connection $connection_upgrade;" in ws
    assert "proxy_http_version 1.1;" in nginx_text()
    heartbeat = WebSocketConfig().heartbeat
    compose_heartbeat = re.search(r'CIPHERDESK_WEBSOCKET_HEARTBEAT:\s*"(\d+)"', compose_text())
    if compose_heartbeat:
        heartbeat = max(heartbeat, float(compose_heartbeat.group(1)))
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        found = re.search(directive + r"\s+(\d+)s;", ws)
        assert found, directive
        assert float(found.group(1)) >= 2 * heartbeat, f"{directive} must exceed the heartbeat"


def test_nginx_sets_forwarded_headers_in_every_proxied_location() -> None:
    conf = nginx_text()
    blocks = re.findall(r"location\s+[^{]+\{(.*?)\n\s*\}", conf, re.S)
    proxied = [b for b in blocks if "proxy_pass" in b]
    assert len(proxied) >= 3
    for block in proxied:
        # nginx drops inherited proxy_set_header in a block that sets any of its own.
        assert "proxy_set_header X-Forwarded-For $remote_addr;" in block, block
        assert "proxy_set_header Host $host;" in block, block
    assert "$proxy_add_x_forwarded_for" not in conf  # replace, never append


def test_nginx_upstream_lists_every_gateway_service() -> None:
    upstream = re.search(r"upstream cipherdesk \{(.*?)\}", nginx_text(), re.S)
    assert upstream
    servers = set(re.findall(r"server\s+(\w+):8080", upstream.group(1)))
    assert servers == set(gateway_services())
    assert len(servers) >= 2


# --------------------------------------------------------------------------- compose


def compose_text() -> str:
    return (DEPLOY / "compose.yaml").read_text()


def compose_services() -> list[str]:
    """Service names: two-space-indented keys under ``services:`` (structural reader)."""
    text = compose_text()
    body = text.split("\nservices:\n", 1)[1]
    body = re.split(r"\n(?=\S)", body, maxsplit=1)[0]
    return re.findall(r"^  ([a-z0-9_-]+):\s*$", body, re.M)


def gateway_services() -> list[str]:
    return [s for s in compose_services() if s.startswith("gateway")]


def test_compose_services_and_structure() -> None:
    services = compose_services()
    assert set(services) >= {*GATEWAYS, "nginx", "redis", "postgres"}
    text = compose_text()
    assert "\t" not in text, "YAML must not contain tabs"
    for name in gateway_services():
        block = text.split(f"\n  {name}:\n", 1)[1].split("\n  gateway", 1)[0]
        assert "<<: *gateway" in block
        assert f"{name}-data:/var/lib/cipherdesk" in block
    anchor = text.split("x-gateway: &gateway\n", 1)[1].split("\nservices:", 1)[0]
    for needle in (
        "healthcheck:",
        "CIPHERDESK_BUS_URL: redis://",
        "read_only: true",
        "no-new-privileges:true",
        "cap_drop: [ALL]",
        "condition: service_healthy",
    ):
        assert needle in anchor, needle
    for service in ("postgres", "redis", "nginx"):
        block = text.split(f"\n  {service}:\n", 1)[1]
        block = re.split(r"\n  [a-z0-9_-]+:\n|\n\S", block, maxsplit=1)[0]
        assert "healthcheck:" in block, service


def test_compose_secrets_come_from_files_never_inline() -> None:
    text = compose_text()
    secrets = text.split("\nsecrets:\n", 1)[1].split("\nvolumes:", 1)[0]
    declared = dict(re.findall(r"^  (\w+):\n    file: (\S+)$", secrets, re.M))
    assert {"master_key", "gateway_identity", "store_url", "db_password"} <= set(declared)
    assert all(path.startswith("./secrets/") for path in declared.values())
    # No key material or password literally in the file.
    assert not re.search(r"CIPHERDESK_MASTER_KEY:\s*\S", text)
    assert not re.search(r"POSTGRES_PASSWORD:\s*\S", text)
    assert not re.search(r"postgresql://[^/\s]*:[^@\s]*@", text)
    assert "CIPHERDESK_MASTER_KEY_FILE: /run/secrets/master_key" in text
    assert "CIPHERDESK_IDENTITY_FILE: /run/secrets/gateway_identity" in text


def test_compose_parses_as_yaml_when_pyyaml_is_there() -> None:
    try:
        import yaml  # a dev dependency (pyproject.toml)
    except ImportError:
        unavailable("pyyaml is not installed (pip install -e '.[dev]')")
    data = yaml.safe_load(compose_text())
    services = data["services"]
    assert set(services) >= {*GATEWAYS, "nginx", "redis", "postgres"}
    for name in GATEWAYS:
        assert services[name]["healthcheck"]["test"]
        assert "master_key" in services[name]["secrets"]


# --------------------------------------------------------------------------- Dockerfile


def dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text()


def final_stage() -> str:
    return re.split(r"^FROM ", dockerfile(), flags=re.M)[-1]


def test_dockerfile_final_stage_is_slim_and_non_root() -> None:
    stage = final_stage()
    assert stage.startswith("python:3.11-slim")
    users = re.findall(r"^USER\s+(\S+)", stage, re.M)
    assert users, "the runtime stage must switch to a non-root USER"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert "useradd --system" in stage
    assert re.search(r'^CMD \[.*"serve".*"--host", "0.0.0.0"', stage, re.M)
    assert "HEALTHCHECK" in stage
    assert "/healthz" in stage


def test_dockerfile_builds_tweetnacl_with_npm_ci() -> None:
    """npm ci in a build stage; node_modules reaches the Python build (setup.py packs the
    checked tweetnacl and i18next into the package) before `pip install .` runs."""
    text = dockerfile()
    assert re.search(r"^FROM node:\S+ AS web$", text, re.M)
    assert "npm ci" in text and "package-lock.json" in text
    build = text.split("AS build", 1)[1].split("\nFROM ", 1)[0]
    copy_modules = build.index("COPY --from=web /src/node_modules ./node_modules")
    assert re.search(r"^COPY .*\bsetup\.py\b", build, re.M)
    assert copy_modules < build.index("pip install --no-compile .")
    assert "--from=web" not in final_stage()  # the package carries them


def test_dockerfile_bakes_in_no_secret() -> None:
    text = dockerfile()
    for line in re.findall(r"^(?:ENV|ARG)\s+(.*)$", text, re.M):
        assert not re.search(r"(MASTER_KEY|PASSWORD|SECRET|TOKEN)\w*=", line, re.I), line
    copied = re.findall(r"^COPY\s+(?!--from)(.*)$", text, re.M)
    for args in copied:
        *sources, _ = args.split()
        for source in sources:
            assert "secret" not in source and not source.endswith((".key", ".pem"))
            assert (ROOT / source).exists(), f"COPY {source}: no such file"


def test_dockerignore_keeps_state_and_secrets_out_of_the_context() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[ignore.index("**")] == "**"  # deny by default, then allow-list
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert not {"data", "deploy/secrets", ".venv", "node_modules"} & allowed


# --------------------------------------------------------------------------- scripts


def test_entrypoint_loads_file_secrets(tmp_path: Path) -> None:
    from crypto.envelope import Keyring, MasterKey

    keys = [MasterKey.generate().to_b64() for _ in range(2)]
    (tmp_path / "master_key").write_text(f"{keys[0]}\n{keys[1]}\n\n")
    (tmp_path / "store_url").write_text("postgresql://u:p@db/cd\n")
    seed = os.urandom(32)
    (tmp_path / "identity").write_bytes(seed)
    data = tmp_path / "data"
    data.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "CIPHERDESK_DATA_DIR": str(data),
        "CIPHERDESK_MASTER_KEY_FILE": str(tmp_path / "master_key"),
        "CIPHERDESK_STORE_URL_FILE": str(tmp_path / "store_url"),
        "CIPHERDESK_IDENTITY_FILE": str(tmp_path / "identity"),
    }
    out = subprocess.run(
        ["sh", str(DEPLOY / "docker-entrypoint.sh"), "env"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert values["CIPHERDESK_MASTER_KEY"] == ",".join(keys)
    assert Keyring.from_env_value(values["CIPHERDESK_MASTER_KEY"]).key_ids
    assert values["CIPHERDESK_STORE_URL"] == "postgresql://u:p@db/cd"
    assert not any(k.endswith("_FILE") for k in values)
    identity = data / "gateway_ed25519.key"
    assert identity.read_bytes() == seed
    assert stat.S_IMODE(identity.stat().st_mode) == 0o600

    env["CIPHERDESK_MASTER_KEY_FILE"] = str(tmp_path / "missing")
    failed = subprocess.run(
        ["sh", str(DEPLOY / "docker-entrypoint.sh"), "true"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 2 and "cannot read" in failed.stderr


def test_make_secrets_creates_keys_the_gateway_accepts(tmp_path: Path) -> None:
    from crypto.envelope import MasterKey

    shutil.copy(DEPLOY / "make-secrets.sh", tmp_path)
    subprocess.run(["sh", str(tmp_path / "make-secrets.sh")], check=True, capture_output=True)
    secrets = tmp_path / "secrets"
    MasterKey.from_b64((secrets / "master_key").read_text().strip())
    os.chmod(secrets / "gateway_ed25519.key", 0o600)
    assert load_or_create_identity(secrets / "gateway_ed25519.key").verify_key_b64
    password = (secrets / "db_password").read_text()
    assert len(password) >= 24 and (secrets / "store_url").read_text().startswith(
        f"postgresql://cipherdesk:{password}@postgres:5432/cipherdesk"
    )
    for path in secrets.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    before = (secrets / "master_key").read_bytes()
    os.chmod(secrets / "master_key", 0o600)
    subprocess.run(["sh", str(tmp_path / "make-secrets.sh")], check=True, capture_output=True)
    assert (secrets / "master_key").read_bytes() == before  # never regenerated


# --------------------------------------------------------------------------- systemd


def unit_text() -> str:
    return (DEPLOY / "cipherdesk.service").read_text()


def test_systemd_unit_is_hardened() -> None:
    unit = unit_text()
    for directive in (
        "User=cipherdesk",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/cipherdesk",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=",
        "SystemCallFilter=@system-service",
        "UMask=0077",
        "EnvironmentFile=",
    ):
        assert re.search(rf"^{re.escape(directive)}", unit, re.M), directive
    assert "CIPHERDESK_MASTER_KEY=" not in unit.split("[Service]", 1)[1].replace("#", "\n#")


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = need("systemd-analyze")
    executable = shutil.which("cipherdesk") or str(Path(sys.executable).parent / "cipherdesk")
    if not Path(executable).exists():
        unavailable("the cipherdesk console script is not installed (pip install -e .)")
    unit = unit_text().replace("/opt/cipherdesk/bin/cipherdesk", executable)
    (tmp_path / "cipherdesk.service").write_text(unit)
    result = subprocess.run(
        [analyze, "verify", str(tmp_path / "cipherdesk.service")], capture_output=True, text=True
    )
    problems = [line for line in result.stderr.splitlines() if "cipherdesk.service" in line]
    assert result.returncode == 0 and not problems, result.stderr
