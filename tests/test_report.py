"""The Snakemake report of a tiny run, opened in headless Chromium (Debian's chromium and
chromium-driver, installed by .ci/run): it renders, every figure is in it and none is broken."""

import os
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, snakemake

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# CI sets this so that a missing browser fails the test instead of skipping it.
REQUIRED = os.environ.get("DEEPSKY_REQUIRE_BROWSER") == "1"
ARTIFACTS = Path(os.environ.get("DEEPSKY_TEST_ARTIFACTS", ROOT / "test-artifacts"))


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        if REQUIRED:
            pytest.fail("chromium and chromium-driver are required (apt-get install chromium chromium-driver)")
        pytest.skip("headless Chromium is not installed")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1600,1000"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def report(tiny_run):
    result = snakemake(tiny_run, "--configfile", tiny_run / "tiny.yaml", "--report", tiny_run / "report.html")
    assert result.returncode == 0, result.stderr[-3000:]
    return tiny_run / "report.html"


def produced_figures(workdir: Path) -> set[str]:
    return {str(p.relative_to(workdir)) for p in (workdir / "results").rglob("*.png")
            if ("figures" in p.parts or "inside" in p.parts) and "mlartifacts" not in p.parts}


def test_report_renders_every_figure(report, browser, tiny_run):
    from selenium.webdriver.common.by import By

    browser.get(report.as_uri())
    time.sleep(1)
    assert browser.title == "Snakemake Report"
    menu = browser.find_element(By.TAG_NAME, "body").text
    for category in ["lens_finding", "galaxy_morphology", "Datasets", "vanishing_gradients", "Inside the networks"]:
        assert category in menu

    embedded = browser.execute_script(
        "return Object.entries(window.results).filter(([k, v]) => v.mime_type === 'image/png').map(([k]) => k)"
    )
    assert set(embedded) == produced_figures(tiny_run)

    decoded = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const pngs = Object.entries(window.results).filter(([k, v]) => v.mime_type === 'image/png');
        Promise.all(pngs.map(([k, v]) => new Promise(resolve => {
            const image = new Image();
            image.onload = () => resolve([k, image.naturalWidth, image.naturalHeight]);
            image.onerror = () => resolve([k, 0, 0]);
            image.src = v.data_uri;
        }))).then(done);
        """
    )
    broken = [name for name, width, height in decoded if width < 100 or height < 100]
    assert not broken, f"broken images in the report: {broken}"

    browser.find_element(By.XPATH, "//span[text()='lens_finding']").click()
    time.sleep(0.3)
    browser.find_element(By.XPATH, "//span[text()='Results']").click()
    time.sleep(0.3)
    assert "results/lens_finding/figures/004-roc-curves.png" in browser.find_element(By.TAG_NAME, "body").text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "report.png"))
    shutil.copy(report, ARTIFACTS / "report.html")
    assert (ARTIFACTS / "report.png").stat().st_size > 20_000
