"""Shared Playwright helpers for the browser suites (``tests/e2e/test_browser*.py``).

Debian's Chromium drives the tests (``/usr/bin/chromium``; never ``playwright install``).
A suite imports the fixtures it needs by assignment (``browser = bx.browser``); the
browser is shared per module, every test gets a fresh gateway and fresh contexts.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyotp
import pytest_asyncio

from gateway.services import Services
from tests.gateway.helpers import make_agent, start_gateway
from tests.services import unavailable

CHROMIUM = os.environ.get("CIPHERDESK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
PHONE = {"width": 375, "height": 667}
PHONE_390 = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
TIMEOUT_MS = 10_000

try:
    from playwright.async_api import Browser, BrowserContext, Page, async_playwright
    from playwright.async_api import expect as _expect

    HAVE_PLAYWRIGHT = True
except ImportError:  # pragma: no cover - dev extra missing
    HAVE_PLAYWRIGHT = False


def expect(target: Any) -> Any:
    return _expect(target)


def skip_reason() -> str | None:
    if not HAVE_PLAYWRIGHT:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} not found (make browser installs Debian's chromium)"
    return None


# The screenshots README.md shows; `make screenshots` (CIPHERDESK_SCREENSHOTS=docs/screenshots)
# rewrites these, every other one goes to artifacts/screenshots/ (ignored by git).
DOC_SHOTS = frozenset(
    {
        "widget-desktop",
        "widget-phone",
        "console",
        "admin",
        "widget-zh-CN",
        "widget-zh-CN-phone",
        "console-zh-CN",
        "console-transfer-zh-CN",
        "console-long-zh-CN-phone",
        "admin-agents-zh-CN",
        "widget-paused-zh-CN",
        "widget-zh-TW",
        "widget-e2e",
        "console-e2e",
        "widget-e2e-refused-zh",
        "admin-e2e-zh-cn",
        "admin-custom-roles",
        "admin-customer-requests",
        "widget-attachments-zh-CN",
        "console-attachments-en",
    }
)


def screenshot_dir(name: str = "") -> Path:
    docs = os.environ.get("CIPHERDESK_SCREENSHOTS")
    path = Path(docs) if docs and name in DOC_SHOTS else REPO / "artifacts" / "screenshots"
    if not path.is_absolute():
        path = REPO / path
    path.mkdir(parents=True, exist_ok=True)
    return path


async def screenshot(page: Page, name: str) -> Path:
    path = screenshot_dir(name) / f"{name}.png"
    await page.screenshot(path=str(path))
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    reason = skip_reason()
    if reason:
        unavailable(reason)
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


class Gateway:
    """A running gateway plus what tests need to drive it."""

    def __init__(self, runner: Any, base_url: str, svc: Services) -> None:
        self.runner = runner
        self.base_url = base_url
        self.svc = svc
        self.secrets: dict[str, str] = {}
        self.passwords: dict[str, str] = {}
        self.ids: dict[str, str] = {}

    async def agent(self, email: str, role: str = "agent", name: str | None = None) -> str:
        agent, secret, password = await make_agent(self.svc, email, role=role)
        if name:
            agent.display_name = name
            await self.svc.store.update_agent(agent)
        self.secrets[email] = secret
        self.passwords[email] = password
        self.ids[email] = agent.id
        return agent.id

    def otp(self, email: str) -> str:
        return pyotp.TOTP(self.secrets[email]).now()


@pytest_asyncio.fixture(loop_scope="module")
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    runner, base_url, svc = await start_gateway(tmp_path)
    try:
        yield Gateway(runner, base_url, svc)
    finally:
        await runner.cleanup()


async def new_page(
    browser: Browser, viewport: dict[str, int] = DESKTOP, locale: str | None = None
) -> tuple[BrowserContext, Page]:
    """A fresh context; ``locale`` sets both ``navigator.languages`` and Accept-Language."""
    context = await browser.new_context(viewport=viewport, locale=locale)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def on_console(msg: Any) -> None:
        # A 401 from GET /api/me is how a page learns it must show the login form.
        if msg.type == "error" and "401 (Unauthorized)" not in msg.text:
            errors.append(msg.text)

    page.on("console", on_console)
    page.js_errors = errors  # type: ignore[attr-defined]
    return context, page


def key_frames(page: Page) -> list[dict[str, Any]]:
    """The handshake ``key`` frames ``page`` sends from now on (the one frame sent in the
    clear), as they arrive: what a client asks of the gateway (echo, resume)."""
    keys: list[dict[str, Any]] = []

    def on_sent(sent: Any) -> None:
        if '"t":"key"' in str(sent):
            keys.append(json.loads(sent))

    page.on("websocket", lambda ws: ws.on("framesent", on_sent))
    return keys


async def login_console(page: Page, gw: Gateway, email: str, path: str = "/console") -> None:
    """Log in through the real form with a real TOTP code (pyotp, current time)."""
    await page.goto(gw.base_url + path)
    await page.fill("#login-email", email)
    await page.fill("#login-password", gw.passwords[email])
    await page.fill("#login-otp", gw.otp(email))
    await page.click("form.login button[type=submit]")
    await expect(page.locator(".topbar")).to_be_visible()


async def open_widget_form(
    page: Page, gw: Gateway, name: str = "Ada", topic: str | None = "Billing"
) -> None:
    """Open /demo, open the widget, submit the pre-chat form (topic None: the default)."""
    await page.goto(gw.base_url + "/demo")
    await page.click("#cipherdesk-widget >> .launcher")
    await page.fill("#cdw-name", name)
    if topic is not None:
        await page.select_option("#cdw-topic", topic)
    await page.click(".prechat button[type=submit]")


async def open_widget(page: Page, gw: Gateway, name: str = "Ada", topic: str = "Billing") -> None:
    """Start a chat from /demo and wait until it is queued."""
    await open_widget_form(page, gw, name, topic)
    await expect(page.locator(".status")).to_have_text("Waiting for an agent…")


async def customer_says(page: Page, text: str) -> None:
    await page.fill("#cdw-input", text)
    await page.press("#cdw-input", "Enter")


async def agent_says(page: Page, text: str) -> None:
    pane = page.locator(".chat-pane:not([hidden])")
    await pane.locator("textarea.chat-input").fill(text)
    await pane.locator("textarea.chat-input").press("Enter")


# Visible text of the page and the widget's shadow root (text nodes of rendered elements
# plus placeholder/aria-label/title/alt), minus what users typed and code-like values.
_VISIBLE_TEXT_JS = """
() => {
  const out = [];
  const skip = (el) => el.closest('.text, .who, .mono, pre, code, .json, .snippet, .tab-name, '
    + 'option, .qi-main strong, .chat-title, .lang-menu, [data-source=plugin]');
  const visit = (root) => {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_ELEMENT);
    for (let el = walker.currentNode; el; el = walker.nextNode()) {
      if (el.nodeType !== 1) continue;
      if (el.shadowRoot) visit(el.shadowRoot);
      if (skip(el)) continue;
      const style = getComputedStyle(el);
      if (style.display === 'none' || style.visibility === 'hidden') continue;
      if (el.closest('[hidden]')) continue;
      for (const node of el.childNodes) {
        if (node.nodeType === 3 && node.textContent.trim()) out.push(node.textContent.trim());
      }
      for (const a of ['placeholder', 'aria-label', 'title', 'alt']) {
        if (el.getAttribute(a)) out.push(el.getAttribute(a));
      }
    }
  };
  visit(document.body);
  return out;
}
"""
# Two Latin words in a row, or an untranslated catalogue key ("widget.status.waiting").
_ENGLISH = re.compile(r"[A-Za-z]{3,}[ ,]+[A-Za-z]{2,}|^[a-z_]+(\.[a-z_]+)+$")


async def english_left(page: Page, allowed: tuple[str, ...] = ()) -> list[str]:
    """Visible strings that still read as English (two Latin words in a row)."""
    texts = await page.evaluate(_VISIBLE_TEXT_JS)
    # e-mail addresses and URLs are data, not language
    texts = [re.sub(r"\S+@\S+|https?://[^\s）)]+", "", t).strip() for t in texts]
    return [t for t in texts if _ENGLISH.search(t) and not any(a in t for a in allowed)]
