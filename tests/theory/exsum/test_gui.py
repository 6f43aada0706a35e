"""The browser GUI: JSON endpoints over HTTP, and end to end in a real headless Chromium."""

import io
import json
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from sciprob.theory.exsum import ExplanationSummary, FEUData, Parameter, Rule, RuleUnion, autotune, rulesets
from sciprob.theory.exsum.server import make_server

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")


def make_summary() -> ExplanationSummary:
    rng = np.random.default_rng(0)
    n = 400
    v = rng.uniform(-2, 2, n)
    e = np.clip(0.25 * v + rng.normal(0, 0.05, n), -1, 1)
    data = FEUData(
        e, np.repeat(np.arange(n // 4), 4), {"value": v}, units=[f"f{j}" for j in range(4)] * (n // 4)
    )
    r1 = Rule(
        "R1", rulesets.feature_above, rulesets.constant_range, [Parameter("threshold", -2, 2, 0.5)],
        [Parameter("lo", -1, 1, 0.0), Parameter("hi", -1, 1, 1.0)], "large values: positive attribution",
    )  # fmt: skip
    r2 = Rule("R2", rulesets.abs_value_below, rulesets.symmetric_range, [Parameter("tau", 0, 2, 0.4)],
              [Parameter("h", 0, 1, 0.2)], "small values: small attribution")  # fmt: skip
    return ExplanationSummary(RuleUnion([r1, r2]), data)


@pytest.fixture
def rule_file(tmp_path):
    return make_summary().save(tmp_path / "rules.json", data_file=tmp_path / "feus.npz")


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_endpoints_match_the_library(rule_file):
    ref = ExplanationSummary.load(rule_file)
    with make_server(rule_file) as srv:
        assert srv.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(srv.url, timeout=10) as r:
            assert b"ExSum Inspection" in r.read()
        with urllib.request.urlopen(srv.url + "api/state?rule=R2", timeout=10) as r:
            state = json.loads(r.read())
        assert state["formula"] == "R1 > R2" and [x["name"] for x in state["rules"]] == ["R1", "R2"]
        assert state["metrics"]["selected"]["coverage"] == ref.rule_metrics("R2").coverage
        res = post(srv.url + "api/param", {"rule": "R2", "param": "tau", "value": 1.3, "selected": "R2"})
        ref.set_parameter("R2", "tau", 1.3)
        rep = ref.metrics("R2")
        assert res["metrics"]["union"] == rep.union._asdict()
        assert res["metrics"]["selected"] == rep.selected._asdict()
        assert res["metrics"]["counterfactual"] == rep.counterfactual._asdict()
        tune = {
            "rule": "R1",
            "param": "threshold",
            "start": -2,
            "stop": 2,
            "precision": 0.05,
            "minimum": 0.95,
        }
        res = post(srv.url + "api/autotune", {**tune, "selected": "R1"})
        assert (
            res["found"] and res["params"]["R1"]["threshold"] == srv.summary.parameters()["R1"]["threshold"]
        )
        with urllib.request.urlopen(srv.url + "api/examples?rule=R1&count=3", timeout=10) as r:
            ex = json.loads(r.read())
        assert len(ex["instances"]) == 3 and all(
            any(u["applicable"] for u in i["units"]) for i in ex["instances"]
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            post(srv.url + "api/param", {"rule": "R1", "param": "threshold", "value": 9})
        assert err.value.code == 400 and "outside its range" in json.loads(err.value.read())["error"]


def test_make_server_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        make_server(tmp_path / "missing.json")
    with pytest.raises(TypeError, match="`rules`"):
        make_server(42)
    with pytest.raises(ValueError, match="`port`"):
        make_server(make_summary(), port=-1)


@pytest.fixture
def browser():
    if not CHROMEDRIVER.exists():
        pytest.skip(
            f"{CHROMEDRIVER} is missing: install Debian's chromium and chromium-driver for the GUI test"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="exsum-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--window-size=1400,1000"):  # fmt: skip
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_slider_updates_metrics_in_headless_chromium(rule_file, browser):
    from PIL import Image
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    ref = ExplanationSummary.load(rule_file)
    wait = WebDriverWait(browser, 20)
    with make_server(rule_file) as srv:
        browser.get(srv.url)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
        assert browser.find_element(By.ID, "formula").text == "R1 > R2"
        browser.find_element(By.ID, "rule-R1").click()
        slider = wait.until(lambda d: d.find_element(By.ID, "p-R1-threshold"))
        cell = lambda: browser.find_element(By.ID, "m-selected-coverage")  # noqa: E731
        wait.until(lambda d: float(cell().get_attribute("data-value")) == ref.rule_metrics("R1").coverage)
        before = float(cell().get_attribute("data-value"))
        # drag the slider's thumb from the middle towards the right end
        ActionChains(browser).click_and_hold(slider).move_by_offset(100, 0).release().perform()
        value = float(slider.get_attribute("value"))
        assert value > 0.6
        ref.set_parameter("R1", "threshold", value)
        expected = ref.metrics("R1")
        wait.until(lambda d: float(cell().get_attribute("data-value")) == expected.selected.coverage)
        assert expected.selected.coverage < before
        for row, m in (("union", expected.union), ("selected", expected.selected),
                       ("counterfactual", expected.counterfactual)):  # fmt: skip
            for name in ("coverage", "validity", "sharpness"):
                shown = browser.find_element(By.ID, f"m-{row}-{name}")
                assert float(shown.get_attribute("data-value")) == pytest.approx(getattr(m, name), abs=1e-12)
                assert shown.text == f"{getattr(m, name):.4f}"
        assert srv.summary.parameters()["R1"]["threshold"] == value
        # AutoTune with the form's defaults: threshold from -2 to 2 in steps of 0.04, selected validity >= 0.9
        browser.find_element(By.ID, "autotune").click()
        wait.until(lambda d: "AutoTune" in d.find_element(By.ID, "message").text)
        tuned = autotune(ref, "R1", "threshold", -2.0, 2.0, 0.04, minimum=0.9)
        assert tuned.found and float(slider.get_attribute("value")) == pytest.approx(tuned.value, abs=1e-12)
        shown = float(browser.find_element(By.ID, "m-selected-validity").get_attribute("data-value"))
        assert shown == ref.rule_metrics("R1").validity >= 0.9
        feus = browser.find_elements(By.CSS_SELECTOR, "#examples .feu.applicable")
        assert feus, "examples show the FEUs the rule applies to"
        png = browser.get_screenshot_as_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)
    assert img.shape[0] >= 500 and img.shape[1] >= 800
    assert img.std() > 20  # not blank: header, tables and coloured FEUs
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50
