"""The Dash app in headless Chromium against the real, seeded PostgreSQL of the test stack.

Each test saves a screenshot under var/test-screenshots/. Waits are explicit
WebDriverWait conditions on what the page shows.
"""

import logging
import os
import shutil
import threading

import psycopg
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from dash_app.app import create_app
from dash_support import seeded  # noqa: F401  (fixture)
from fraud.registry import Registry
from fraud_devstack.process import free_port, wait_until
from pipeline_support import ROOT

pytestmark = pytest.mark.integration

SCREENSHOTS = ROOT / "var" / "test-screenshots"
WAIT_S = 30


class LiveServer:
    """The app on a free loopback port, in a thread of the test process."""

    def __init__(self, environ: dict[str, str]):
        self.app = create_app(ROOT / "conf" / "local.yaml", environ)
        self.port = free_port()
        self._server = make_server("127.0.0.1", self.port, self.app.server, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        context = self.app.server.extensions["fraud_dash"]
        context.load_tests.stop_all()
        context.source.close()


@pytest.fixture(scope="module")
def server(seeded):  # noqa: F811
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    live = LiveServer(seeded.environ)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        message = "chromium and chromium-driver are not installed (scripts/setup.sh installs them as root)"
        if os.geteuid() == 0:
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(arg)
    options.binary_location = chromium
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


def shot(driver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000, f"empty screenshot {path}"


def wait_for(driver, condition, message: str, timeout_s: float = WAIT_S):
    """Wait for a truthy condition; pages re-render on every refresh tick, so stale elements mean "look again"."""
    return WebDriverWait(driver, timeout_s, ignored_exceptions=(StaleElementReferenceException,)).until(
        condition, message)


def css(driver, selector: str):
    return driver.find_elements(By.CSS_SELECTOR, selector)


def text_of(selector: str, needle: str):
    """Condition: the first element matching ``selector`` contains ``needle``."""
    return lambda d: any(needle in e.text for e in css(d, selector)[:1])


def feed_ids(driver) -> set[str]:
    return {row.get_attribute("data-alert-id") for row in css(driver, "#feed-table tr.feed-row")}


def test_live_page_and_filter_changes_feed(server, browser, seeded):  # noqa: F811
    browser.get(server.url("/"))
    wait_for(browser, lambda d: {seeded.gaming, seeded.fintech, seeded.ecommerce} <= feed_ids(d),
             "seeded alerts in the feed")
    wait_for(browser, text_of("#kpi-events-gaming .kpi-value", "240"), "gaming events/min KPI")
    wait_for(browser, lambda d: css(d, "#live-alerts-chart .scatterlayer .trace"), "alerts-per-minute chart")
    # Two days old: outside the default 1 h range.
    wait_for(browser, lambda d: feed_ids(d) and seeded.gaming_old not in feed_ids(d), "old alert not in feed")
    wait_for(browser, lambda d: css(d, f'tr[data-alert-id="{seeded.gaming}"] .badge.sev-critical'), "badge")
    shot(browser, "live")

    browser.find_element(By.CSS_SELECTOR, '#f-domain input[value="gaming"]').click()
    wait_for(browser, lambda d: seeded.gaming not in feed_ids(d) and seeded.fintech in feed_ids(d),
             "gaming alerts filtered out")
    wait_for(browser, lambda d: css(d, "tr.feed-row") and not css(d, 'tr.feed-row[data-domain="gaming"]'),
             "no gaming rows at all")
    shot(browser, "live-filtered")


def test_alert_detail_shows_related_transactions(server, browser, seeded):  # noqa: F811
    browser.get(server.url(f"/alerts/{seeded.gaming}"))
    wait_for(browser, lambda d: len(css(d, "#related-transactions tr.txn-row")) == 3, "three related transactions")
    with psycopg.connect(seeded.dsn) as conn:
        expected = {r[0] for r in conn.execute("SELECT transaction_id FROM alert_transactions WHERE alert_id = %s",
                                               (seeded.gaming,))}
    wait_for(browser, lambda d: {r.find_element(By.TAG_NAME, "td").text
                                 for r in css(d, "#related-transactions tr.txn-row")} == expected,
             "the alert's transaction ids")
    wait_for(browser, text_of("#alert-fields", "fraud_gold_farming"), "alert fields")
    wait_for(browser, lambda d: len(css(d, "#detail-timeline .scatterlayer .trace")) == 2, "actor timeline")
    wait_for(browser, lambda d: css(d, "#detail-probabilities .barlayer .trace"), "class probabilities")
    wait_for(browser, lambda d: [li.text for li in css(d, "#why-it-fired li")] == [
        "12 transactions by this actor in 5 min (+0.41)", "4 different devices in 5 min (+0.17)",
        "a gaming transaction (+0.02)"], "why it fired, in words")
    shot(browser, "alert-detail")


def test_analyst_action_persists(server, browser, seeded):  # noqa: F811
    browser.get(server.url(f"/alerts/{seeded.fintech}"))
    wait_for(browser, lambda d: css(d, "#related-transactions tr.txn-row"), "alert detail loaded")
    analyst = browser.find_element(By.ID, "analyst")
    analyst.clear()
    analyst.send_keys("browser-analyst")
    browser.find_element(By.ID, "note").send_keys("structuring below 10K, confirmed with the bank")
    browser.find_element(By.ID, "act-confirm_fraud").click()
    wait_for(browser, text_of("#action-result", "saved: confirm_fraud by browser-analyst"), "action saved")
    wait_for(browser, text_of("#action-history", "browser-analyst"), "action in the history table")
    with psycopg.connect(seeded.dsn) as conn:
        alert = conn.execute("SELECT status, status_by, analyst_note, status_at IS NOT NULL FROM alerts"
                             " WHERE alert_id = %s", (seeded.fintech,)).fetchone()
        actions = conn.execute("SELECT action, actor, note FROM alert_actions WHERE alert_id = %s",
                               (seeded.fintech,)).fetchall()
    assert alert == ("confirmed_fraud", "browser-analyst", "structuring below 10K, confirmed with the bank", True)
    assert actions == [("confirm_fraud", "browser-analyst", "structuring below 10K, confirmed with the bank")]
    shot(browser, "alert-action")


def test_load_test_starts(server, browser, seeded):  # noqa: F811
    browser.get(server.url("/load-tests"))
    wait_for(browser, lambda d: css(d, "#lt-runs tr.run-row"), "run history")
    browser.find_element(By.CSS_SELECTOR, '#lt-domain input[value="gaming"]').click()
    # normal = 10,000 events/min: 15 s is 2,500 events, long enough to see progress, light for the machine.
    browser.find_element(By.CSS_SELECTOR, '#lt-level input[value="normal"]').click()
    browser.find_element(By.ID, "lt-fraud").send_keys("0.2")
    duration = browser.find_element(By.ID, "lt-duration")
    duration.clear()
    duration.send_keys("15")
    browser.find_element(By.ID, "lt-start").click()
    wait_for(browser, text_of("#lt-message", "started load test dash-"), "load test started")
    test_id = browser.find_element(By.ID, "lt-message").text.removeprefix("started load test ").strip()

    def run_row():
        with psycopg.connect(seeded.dsn) as conn:
            return conn.execute("SELECT domains, load_level, fraud_rate FROM simulation_runs WHERE test_id = %s",
                                (test_id,)).fetchone()

    assert wait_until(lambda: run_row() is not None, WAIT_S, interval_s=0.5), "no simulation_runs row"
    assert run_row() == (["gaming"], "normal", 0.2)
    # The page follows the run to completion: events sent, rate, alerts, recall, precision, latency.
    wait_for(browser, text_of("#lt-run", test_id), "the started run is shown")
    wait_for(browser, lambda d: css(d, "#lt-progress"), "progress while the run goes on")
    shot(browser, "load-test-running")
    wait_for(browser, text_of("#lt-result", "events sent 2,500"), "run finished and evaluated", timeout_s=90)
    wait_for(browser, text_of("#lt-runs", test_id), "run in the history")
    shot(browser, "load-test")


def test_model_page_and_rollback(server, browser, seeded):  # noqa: F811
    browser.get(server.url("/model"))
    wait_for(browser, text_of("#model-metrics", "v0002 (current)"), "current version summary")
    wait_for(browser, lambda d: css(d, "#model-confusion .heatmaplayer, #model-confusion .heatmap"),
             "confusion matrix")
    wait_for(browser, lambda d: css(d, "#model-f1 .barlayer .trace"), "per-class F1 bars")
    wait_for(browser, lambda d: css(d, "#model-importances .barlayer .trace"), "feature importances")
    wait_for(browser, lambda d: len(css(d, "#model-versions tr.version-row")) == 2, "both versions listed")
    shot(browser, "model")
    browser.find_element(By.ID, "model-rollback").click()
    wait_for(browser, text_of("#model-message", "current version is now v0001"), "rolled back")
    assert Registry(str(seeded.lake / "models")).current_version() == "v0001"


def test_pipeline_page(server, browser):
    browser.get(server.url("/pipeline"))
    wait_for(browser, text_of("#kpi-cost .kpi-value", "USD"), "cost per 1M events")
    for graph in ("p-durations", "p-layers", "p-throughput", "p-latency", "p-quarantine"):
        wait_for(browser, lambda d, g=graph: css(d, f"#{g} .trace"), f"{graph} drawn")
    wait_for(browser, text_of("#kpi-batches", "2 / 2,100"), "batches and events in range")
    shot(browser, "pipeline")


def test_postgres_down_is_said_not_hidden(browser, seeded):  # noqa: F811
    down = LiveServer({**seeded.environ, "FRAUD_POSTGRES_DSN": f"postgresql://127.0.0.1:{free_port()}/fraud"})
    try:
        browser.get(down.url("/"))
        wait_for(browser, text_of(".source-down", "PostgreSQL unavailable"), "source-down banner")
        wait_for(browser, lambda d: not css(d, "#feed-table") and not css(d, ".kpi"), "no feed, no KPIs")
        shot(browser, "live-postgres-down")
    finally:
        down.stop()
