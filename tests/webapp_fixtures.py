"""The example web app served in-process, and a real headless Chromium (Selenium) to drive it.

Browser tests need Debian's ``chromium`` and ``chromium-driver`` (paths
overridable with LABELSYNC_CHROMIUM and LABELSYNC_CHROMEDRIVER). Without them
every browser test is skipped with the install command; with
LABELSYNC_BROWSER_REQUIRED=1 (CI) it fails instead. A failing browser test
leaves a screenshot in ``.browser-failures/``; with LABELSYNC_WEBAPP_SCREENSHOTS
set to a folder (``nox -s webapp-screenshots`` sets docs/img), the tests write
the documentation's screenshots there.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import attrs
import pytest
from werkzeug.serving import make_server

from labelsync import Defaults, PushJob, Tenant
from labelsync_webapp import Config, Webapp

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("LABELSYNC_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LABELSYNC_CHROMEDRIVER", "/usr/bin/chromedriver")
REQUIRED_VARIABLE = "LABELSYNC_BROWSER_REQUIRED"
SCREENSHOTS_VARIABLE = "LABELSYNC_WEBAPP_SCREENSHOTS"
INSTALL = "apt-get install chromium chromium-driver"
FAILURES = ROOT / ".browser-failures"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WINDOW = (1100, 860)
MIN_SHOT_HEIGHT = 420

USERS = 300
SEED = 1
BATCH = 50
WAIT = 90.0  # seconds before giving up on something the page should show; never a speed claim

T = TypeVar("T")


def browser_problem() -> str | None:
    """Why no browser test can run here; None when Chromium, its driver and Selenium are there."""
    for what, path in (("Chromium", CHROMIUM), ("ChromeDriver", CHROMEDRIVER)):
        if shutil.which(path) is None:
            return f"{what} not found at {path}: {INSTALL}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "Selenium is not installed: pip install --group test (or nox -s tests)"
    return None


def require_browser() -> None:
    """Skip the calling test when there is no browser, naming the install; fail when required."""
    problem = browser_problem()
    if problem is not None:
        if os.environ.get(REQUIRED_VARIABLE):
            pytest.fail(f"{problem} ({REQUIRED_VARIABLE} is set)")
        pytest.skip(problem)


def wait_until(condition: Callable[[], T | None], what: str, timeout: float = WAIT) -> T:
    """Poll `condition` until it returns something truthy and return it; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


class Gate:
    """Holds the push worker once, after a job's first committed batch, until the test releases it.

    It turns "start a second push while the first runs" into a sequence of
    steps instead of a race against the clock.
    """

    def __init__(self) -> None:
        self._armed = False
        self._held: PushJob | None = None
        self._holding = threading.Event()
        self._released = threading.Event()
        self._lock = threading.Lock()

    def arm(self) -> None:
        """Hold the worker after the next batch it commits."""
        with self._lock:
            self._armed, self._held = True, None
            self._holding.clear()
            self._released.clear()

    def __call__(self, job: PushJob) -> None:
        with self._lock:
            if not self._armed:
                return
            self._armed, self._held = False, job
        self._holding.set()
        self._released.wait(WAIT)

    def wait_held(self) -> PushJob:
        """The job the worker is held in, once it is."""
        if not self._holding.wait(WAIT):
            pytest.fail("the push worker never committed a batch")
        assert self._held is not None
        return self._held

    def release(self) -> None:
        """Let the worker go on."""
        self._released.set()


@attrs.frozen
class LiveApp:
    """The example app serving a synthetic tenant on a loopback port, with its worker running."""

    url: str
    webapp: Webapp
    gate: Gate
    tenant: Tenant
    """The tenant as it was before any test step."""

    def push(self, defaults: Defaults) -> PushJob:
        """Start a push as the admin would and wait for the app's worker to finish it."""
        service = self.webapp.service
        job = service.start_push(self.tenant.id, actor_id="admin", defaults=defaults)
        self.webapp.worker.wake()

        def finished() -> PushJob | None:
            now = service.job(job.id)
            return now if now.finished else None

        return wait_until(finished, "the push to end")


@pytest.fixture
def live_app(tmp_path: Path) -> Iterator[LiveApp]:
    """The app on a fresh SQLite file with a synthetic tenant of USERS Users, BATCH per batch."""
    config = Config(database=str(tmp_path / "app.db"), batch_size=BATCH, poll_interval=0.05)
    gate = Gate()
    webapp = Webapp(config, after_batch=gate)
    webapp.ensure_tenant(users=USERS, seed=SEED)
    tenant = webapp.service.tenant(config.tenant_id)
    webapp.start()
    server = make_server("127.0.0.1", 0, webapp.flask, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="webapp-server", daemon=True)
    thread.start()
    try:
        yield LiveApp(
            url=f"http://127.0.0.1:{server.server_port}",
            webapp=webapp,
            gate=gate,
            tenant=tenant,
        )
    finally:
        gate.release()
        server.shutdown()
        server.server_close()
        webapp.close()


class Browser:
    """A headless Chromium on the live app, with the few steps the tests take."""

    def __init__(self, driver: WebDriver, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def find(self, css: str) -> WebElement:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def has(self, css: str) -> bool:
        from selenium.webdriver.common.by import By

        return bool(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self, css: str) -> str:
        return self.find(css).text

    def click(self, css: str) -> None:
        self.find(css).click()

    def wait_for_text(self, css: str, expected: str) -> None:
        """Wait until the element `css` exists and shows exactly `expected`."""

        def shown() -> bool:
            from selenium.common.exceptions import (
                NoSuchElementException,
                StaleElementReferenceException,
            )

            try:
                return self.has(css) and self.text(css) == expected
            except (NoSuchElementException, StaleElementReferenceException):
                return False  # the page reloaded between the two looks

        wait_until(shown, f"{css} to show {expected!r}")

    def wait_for_finished_job(self, status: str) -> None:
        """Wait until the job page, reloaded by its script once the job ended, shows `status`."""
        self.wait_for_text('#job[data-finished="true"] #status', status)

    def set_checkbox(self, css: str, checked: bool) -> None:
        box = self.find(css)
        if box.is_selected() != checked:
            box.click()

    def sign_in(self, user_id: str) -> None:
        """Pick `user_id` on the sign-in page, as a person would."""
        self.open("/signin")
        self.find("#user-id").send_keys(user_id)
        self.click("#sign-in")
        self.wait_for_text("#signed-in-as", user_id)

    def screenshot(self, name: str) -> None:
        """Write docs' screenshot `name`.png when LABELSYNC_WEBAPP_SCREENSHOTS names a folder."""
        folder = os.environ.get(SCREENSHOTS_VARIABLE)
        if not folder:
            return
        Path(folder).mkdir(parents=True, exist_ok=True)
        # The whole page, not the first screenful: fit the window to the content, then back.
        width, height = WINDOW
        chrome = self.driver.execute_script("return window.outerHeight - window.innerHeight")
        content = self.driver.execute_script("return document.documentElement.scrollHeight")
        if isinstance(chrome, int) and isinstance(content, int):
            self.driver.set_window_size(width, max(MIN_SHOT_HEIGHT, content) + chrome)
        try:
            self.driver.save_screenshot(str(Path(folder) / f"{name}.png"))
        finally:
            self.driver.set_window_size(width, height)


@pytest.fixture
def browser(request: pytest.FixtureRequest, live_app: LiveApp, tmp_path: Path) -> Iterator[Browser]:
    """Headless Chromium with a fresh profile; a failing test leaves a screenshot behind."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    failed_before = request.session.testsfailed
    try:
        yield Browser(driver, live_app.url)
    finally:
        # The call's report is logged before teardown, so a failure has been counted by now.
        if request.session.testsfailed > failed_before:
            FAILURES.mkdir(exist_ok=True)
            shot = FAILURES / f"{request.node.name}.png"
            driver.save_screenshot(str(shot))
            print(f"screenshot of the failing page: {shot}")
        driver.quit()
