"""The rendered paper in a real headless Chromium: no console errors, no broken images,
no table wider than the page; a screenshot is kept for a person to look at."""

import shutil

import pytest

from test_paper import fixture_results, render  # noqa: F401  (fixture reused)

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def open_page(path):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("headless Chromium is not installed: run `make test` as root (tests/system_deps.sh installs it)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,2000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.get(path.resolve().as_uri())
    return driver


def check_page(path, screenshot):
    driver = open_page(path)
    try:
        driver.save_screenshot(str(screenshot))
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        broken = driver.execute_script(
            "return [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src'))"
        )
        overflowing = driver.execute_script(
            """return [...document.querySelectorAll('table')].filter(t => {
                 const box = t.parentElement.classList.contains('table-wrap') ? t.parentElement : t;
                 return box.getBoundingClientRect().right > document.body.getBoundingClientRect().right + 1;
               }).length"""
        )
        page_wider = driver.execute_script("return document.documentElement.scrollWidth > window.innerWidth")
    finally:
        driver.quit()
    return errors, broken, overflowing, page_wider


def test_fixture_paper_renders_cleanly(fixture_results, tmp_path):  # noqa: F811
    base, config = fixture_results
    render(base, config)
    errors, broken, overflowing, page_wider = check_page(base / "results/paper/paper.html", tmp_path / "paper.png")
    assert errors == [], errors
    assert broken == [], broken
    assert overflowing == 0 and not page_wider
    assert (tmp_path / "paper.png").stat().st_size > 10_000


def test_a_broken_image_is_detected(fixture_results, tmp_path):  # noqa: F811
    base, config = fixture_results
    render(base, config)
    (base / "results/paper/figures/data_counts.png").unlink()
    _, broken, _, _ = check_page(base / "results/paper/paper.html", tmp_path / "broken.png")
    assert broken == ["figures/data_counts.png"]
