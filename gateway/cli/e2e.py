"""``cipherdesk e2e``: the tenant admin's end-to-end tools, run on the admin's own machine.

The tenant signing key certifies agents' device keys; the gateway must never hold it, so
these commands never send it anywhere:

* ``cipherdesk e2e keygen --tenant acme --out acme-signing.json`` makes the key, stores
  it encrypted under a passphrase (Argon2id; ``CIPHERDESK_E2E_PASSPHRASE`` or a prompt)
  and prints the verify key for the admin page (``PUT /api/e2e``) and the embed snippet
  (``data-tenant-key``).
* ``cipherdesk e2e certify --key acme-signing.json --url https://chat.acme.cn --token
  cdt_…`` lists the devices waiting for a certificate (agent, role, name, key
  fingerprint: compare it with the one the agent's console shows), asks for each, signs
  locally and uploads the certificate. ``--device`` picks one; ``--yes`` skips the
  questions (scripts); ``--days`` sets the validity (default 90).
* ``cipherdesk e2e sign-policy --key acme-signing.json --url https://chat.acme.cn --token
  cdt_…`` fetches the end policy the tenant's policy compiles to (what widgets and consoles
  run before sealing, gateway/policy/end.py), prints what it does -- the action per kind
  and direction, the keyword terms per category, the phone regions -- asks, signs it
  locally and uploads it. Review the summary: the gateway compiled the document, the
  signature is what makes widgets trust it.

Standard library HTTP (urllib) so it runs wherever the package is installed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from crypto.e2e import (
    MAX_POLICY_CHARS,
    DeviceCertificate,
    E2EError,
    TenantSigningKey,
    open_signing_key,
    seal_signing_key,
)
from gateway.cli.common import CliError

PASSPHRASE_ENV = "CIPHERDESK_E2E_PASSPHRASE"  # noqa: S105 (a variable name)
MIN_PASSPHRASE = 12


def _passphrase(confirm: bool) -> str:
    value = os.environ.get(PASSPHRASE_ENV)
    if value is None:
        value = getpass.getpass("passphrase for the tenant signing key: ")
        if confirm and getpass.getpass("again: ") != value:
            raise CliError("the passphrases differ")
    if confirm and len(value) < MIN_PASSPHRASE:
        raise CliError(f"use a passphrase of at least {MIN_PASSPHRASE} characters")
    return value


def cmd_keygen(args: argparse.Namespace) -> None:
    out = Path(args.out)
    if out.exists():
        raise CliError(f"{out} exists; refusing to overwrite a signing key")
    key = TenantSigningKey.generate()
    record = seal_signing_key(key, args.tenant, _passphrase(confirm=True), strength=args.strength)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=2)
        fh.write("\n")
    print(f"tenant signing key written to {out} (keep it offline; back it up)")
    print(f"verify key: {key.verify_key}")
    print("next: set it in the admin page (End-to-end) and in the embed snippet as")
    print(f'      data-tenant-key="{key.verify_key}"')


def _load_key(path: str) -> tuple[TenantSigningKey, str]:
    try:
        record = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the key file: {exc}") from None
    try:
        return open_signing_key(record, _passphrase(confirm=False)), str(record["tenant"])
    except E2EError as exc:
        raise CliError(str(exc)) from None


def _call(url: str, token: str, method: str = "GET", body: Any = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 (scheme checked by the caller)
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as resp:  # noqa: S310
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read() or b"{}").get("error", {})
            detail = f"{error.get('code')}: {error.get('message')}"
        except ValueError:
            detail = "no details"
        raise CliError(f"{method} {url}: HTTP {exc.code} ({detail})") from None
    except OSError as exc:
        raise CliError(f"{method} {url}: {type(exc).__name__}") from None


def _tenant_key_on(args: argparse.Namespace) -> tuple[str, TenantSigningKey, str]:
    """(base URL, key, tenant) once the gateway confirms the key is the tenant's current one."""
    base = args.url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise CliError("--url must start with http:// or https://")
    key, tenant = _load_key(args.key)
    settings = _call(f"{base}/api/public/e2e/{urllib.parse.quote(tenant, safe='')}", args.token)
    if settings.get("verify_key") != key.verify_key:
        raise CliError(
            "this key is not the tenant's current verify key on that gateway"
            " (set it first: admin page, End-to-end)"
        )
    return base, key, tenant


def cmd_certify(args: argparse.Namespace) -> None:
    base, key, tenant = _tenant_key_on(args)
    devices = _call(f"{base}/api/e2e/devices", args.token)["devices"]
    chosen = [
        d
        for d in devices
        if (d["id"] == args.device if args.device else d["state"] in ("pending", "expired"))
    ]
    if not chosen:
        print("no device waits for a certificate")
        return
    now = int(time.time())
    for d in chosen:
        print(f"{d['id']}  agent {d['agent_name']} <{d['agent']}>  role {d['agent_role']}")
        print(f"    device name {d['name']!r}  key fingerprint {d['fingerprint']}")
        if not args.yes and input("    certify? [y/N] ").strip().lower() != "y":
            continue
        cert = DeviceCertificate(
            tenant=tenant,
            agent=d["agent"],
            name=d["agent_name"] or d["agent"],
            role=d["agent_role"] or "agent",
            device=d["id"],
            public_key=d["public_key"],
            issued_at=now,
            expires_at=now + args.days * 86_400,
        )
        signed = key.certify(cert)
        _call(f"{base}/api/e2e/devices/{d['id']}/certificate", args.token, "PUT", signed.as_json())
        print(f"    certified until {time.strftime('%Y-%m-%d', time.gmtime(cert.expires_at))}")


def policy_summary(document: dict[str, Any]) -> list[str]:
    """What an end policy document does, in lines an admin reads before signing it."""
    lines = ["action per kind (customer -> agent / agent -> customer):"]
    for kind, (customer, agent) in sorted(document["actions"].items()):
        lines.append(f"    {kind:<20} {customer:<6} / {agent:<6}  mask: {document['masks'][kind]}")
    counts: dict[str, int] = {}
    for _term, _left, _right, rules in document["keywords"]:
        for category, _action in rules:
            counts[category] = counts.get(category, 0) + 1
    lines.append("keyword terms: " + ", ".join(f"{c} {n}" for c, n in sorted(counts.items())))
    lines.append("phone regions: " + ", ".join(sorted(document["phone"]["regions"])))
    return lines


def cmd_sign_policy(args: argparse.Namespace) -> None:
    base, key, tenant = _tenant_key_on(args)
    answer = _call(f"{base}/api/e2e/policy", args.token)
    text = answer["document"]
    if len(text) > MAX_POLICY_CHARS:
        raise CliError(
            f"the compiled end policy has {len(text):,} characters, more than the "
            f"{MAX_POLICY_CHARS:,} a widget downloads: upload fewer keyword terms"
        )
    document = json.loads(text)
    if document.get("v") != 1 or document.get("tenant") != tenant:
        raise CliError("the gateway sent a document for another tenant or version")
    if answer.get("current") and not args.force:
        print("the signed end policy is current (use --force to sign again)")
        return
    for line in policy_summary(document):
        print(line)
    if not args.yes and input("sign this end policy? [y/N] ").strip().lower() != "y":
        return
    _call(f"{base}/api/e2e/policy", args.token, "PUT", {"body": text, "sig": key.sign_policy(text)})
    print("signed; widgets pinning the tenant key run it from their next chat")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    e2e = sub.add_parser("e2e", help="end-to-end mode: tenant signing key, device certificates")
    e2e_sub = e2e.add_subparsers(dest="e2e_command", metavar="ACTION", required=True)
    keygen = e2e_sub.add_parser("keygen", help="make a tenant signing key (on your own machine)")
    keygen.add_argument("--tenant", required=True, help="the tenant id")
    keygen.add_argument("--out", required=True, help="where to write the encrypted key file")
    keygen.add_argument(
        "--strength",
        choices=("moderate", "interactive"),
        default="moderate",
        help="Argon2id cost for the passphrase (moderate: 256 MiB)",
    )
    keygen.set_defaults(func=cmd_keygen)
    certify = e2e_sub.add_parser("certify", help="certify agents' device keys")
    certify.add_argument("--key", required=True, help="the key file from keygen")
    certify.add_argument("--url", required=True, help="the gateway's base URL")
    certify.add_argument(
        "--token", required=True, help="an API token with tenant_manage (or an admin session)"
    )
    certify.add_argument("--device", help="only this device id")
    certify.add_argument("--days", type=int, default=90, help="validity in days (90)")
    certify.add_argument("--yes", action="store_true", help="do not ask for each device")
    certify.set_defaults(func=cmd_certify)
    sign = e2e_sub.add_parser("sign-policy", help="sign the end policy widgets run")
    sign.add_argument("--key", required=True, help="the key file from keygen")
    sign.add_argument("--url", required=True, help="the gateway's base URL")
    sign.add_argument("--token", required=True, help="an API token with tenant_manage")
    sign.add_argument("--yes", action="store_true", help="do not ask")
    sign.add_argument("--force", action="store_true", help="sign even if nothing changed")
    sign.set_defaults(func=cmd_sign_policy)
