"""A real headless Chromium for page tests (Debian's `chromium` and `chromium-driver`).

`open_browser()` starts one with console and network logging on; `page_problems(driver)`
returns what went wrong on the page loaded last: console errors, requests that left
`file://`, and images that did not decode. Tests fail (they do not skip) when Chromium
is missing: `.ci/run` installs it.
"""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# Force lazy images to load, then list those that failed to decode.
_BROKEN_IMAGES_JS = """
const imgs = Array.from(document.images);
imgs.forEach(img => { img.loading = 'eager'; img.scrollIntoView(); });
return imgs.map(img => [img.currentSrc || img.src, img.complete, img.naturalWidth]);
"""


@contextmanager
def open_browser(width: int = 1280, height: int = 900):
    """A headless Chromium with its browser console and network events logged."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    assert not missing, f"missing {missing}: apt-get install -y chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--allow-file-access-from-files",
                f"--window-size={width},{height}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for_images(driver, timeout: float = 20.0) -> list[tuple[str, bool, int]]:
    """Every image of the page as (src, complete, naturalWidth), once all are complete."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        images = driver.execute_script(_BROKEN_IMAGES_JS)
        if all(complete for _, complete, _ in images) or time.monotonic() > deadline:
            return [tuple(i) for i in images]
        time.sleep(0.1)


def page_problems(driver) -> list[str]:
    """Console errors, requests that left file://, and images that did not decode, since the last call."""
    problems = [f"image did not decode: {src}" for src, complete, width in wait_for_images(driver) if width == 0]
    for entry in driver.get_log("browser"):
        if entry["level"] == "SEVERE":
            problems.append(f"console: {entry['message']}")
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if not url.startswith(("file://", "data:", "about:")):
                problems.append(f"request left file://: {url}")
    return problems


def file_url(path: Path) -> str:
    return Path(path).resolve().as_uri()
