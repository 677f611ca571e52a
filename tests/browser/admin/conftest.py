"""Playwright (async) driving Debian's Chromium against the whole real platform.

The gateway is served on http://127.0.0.1:<port>: Chromium treats loopback as a secure
context, so the admin's `Secure; SameSite=None; Partitioned` cookies work there as they do
over https inside the control panel's iframe.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import platform, platform_stack  # noqa: F401 - the real stack
from tests.plugins.sandbox import sandbox_factory  # noqa: F401
from tests.plugins.services import unavailable

CHROMIUM = os.environ.get("BACKORDER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# docs/screenshots is refreshed on purpose (BACKORDER_SCREENSHOT_DIR=docs/screenshots); a plain
# test run must not rewrite tracked files.
SCREENSHOTS = Path(os.environ.get("BACKORDER_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="bo-admin-shots-"))
SCREENSHOTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Any]:
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 - once per session, before any I/O runs
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def page(chromium: Any) -> AsyncIterator[Any]:
    context = await chromium.new_context(viewport={"width": 1360, "height": 900}, device_scale_factor=1)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    await context.close()
    assert not errors, f"JavaScript errors on the admin pages: {errors}"


async def screenshot(page: Any, name: str, *, full_page: bool = True) -> None:
    await page.screenshot(path=str(SCREENSHOTS / f"admin-{name}.png"), full_page=full_page)
