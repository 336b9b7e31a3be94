"""trackplug ui in a real browser: Debian's headless chromium driven by Playwright, against
the real server on a SQLite store that another tracker keeps writing to.

Each view is saved as a screenshot under the pytest temporary folder (``ui-screenshots``,
printed at the end), or under ``$TRACKPLUG_UI_SCREENSHOTS`` when set:
``TRACKPLUG_UI_SCREENSHOTS=docs/guide/img pytest tests/test_ui_browser.py`` regenerates the
guide's pictures (docs/guide/ui.md). Skips, saying why, without chromium or Playwright;
never runs ``playwright install``: the browser is the system's.
"""

from __future__ import annotations

import math
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="trackplug ui needs the ui extra (starlette)")
playwright = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright")

import trackplug  # noqa: E402
from trackplug.ui import Dashboard  # noqa: E402

CHROMIUM = os.environ.get("TRACKPLUG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS_ENV = "TRACKPLUG_UI_SCREENSHOTS"
#: How long the page may take to show what a test waits for (live refresh polls every 2 s).
WAIT_MS = 15_000

if not Path(CHROMIUM).exists():
    pytest.skip(
        f"no chromium at {CHROMIUM} (apt-get install chromium; or set TRACKPLUG_CHROMIUM)",
        allow_module_level=True,
    )


def fill(tracker: trackplug.Tracker) -> dict[str, str]:
    """Three runs (two finished, one still running) and a prediction job; {label: run id}."""
    ids = {}
    for label, lr, finish in [
        ("sgd", 0.1, True),
        ("adam", 0.01, True),
        ("adam-slow", 0.001, False),
    ]:
        run = tracker.start_run(label.partition("-")[0], params={"lr": lr, "epochs": 200})
        for step in range(200):
            loss = 2.0 * math.exp(-step * lr * 2) + 0.05 * math.sin(step / 3) + 0.1
            run.log_metric("train_loss", loss, step=step)
        tracker.log_metrics(run.id, {"valid": {"f1": 0.5 + lr * 3}}, perf_metric="f1")
        if finish:
            run.end()
        ids[label] = run.id
    tracker.log_prediction_metrics("predict/2026-12-01", ["cat", "dog", "cat", "bird"])
    tracker.log_prediction_metrics("predict/2026-12-02", [0.2, 0.4, 0.9, 1.5])
    tracker.flush()
    return ids


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('ui') / 'runs.db'}"
    with trackplug.connect(url) as writer:
        yield url, fill(writer)


@pytest.fixture(scope="module")
def server(store: tuple[str, dict[str, str]]) -> Iterator[str]:
    """The dashboard on a free port, in a thread; its address."""
    with trackplug.connect(store[0]) as tracker:
        dashboard = Dashboard(tracker)
        thread = threading.Thread(target=dashboard.run, daemon=True)
        thread.start()
        try:
            yield dashboard.address
        finally:
            dashboard.stop()
            thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as driver:
        # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get(SCREENSHOTS_ENV)
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("ui-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"the page raised: {errors}"


def open_page(page: Any, server: str, fragment: str = "") -> None:
    page.goto(server + fragment)
    page.wait_for_selector("#runs tbody tr[data-run]", state="attached")


def rows(page: Any, table: str = "#runs") -> list[str]:
    """The ``data-run`` of each row of ``table``, top down."""
    return page.eval_on_selector_all(f"{table} tbody tr", "trs => trs.map(tr => tr.dataset.run)")


def chart_series(page: Any) -> int:
    return page.evaluate("window.trackplug.chart ? window.trackplug.chart.series.length - 1 : 0")


def wait_for_series(page: Any, count: int) -> None:
    page.wait_for_function(
        f"window.trackplug.chart && window.trackplug.chart.series.length === {count + 1}",
        timeout=WAIT_MS,
    )


def test_the_table_lists_the_runs(
    page: Any, server: str, store: tuple[str, dict[str, str]], screenshots: Path
) -> None:
    open_page(page, server)
    ids = store[1]
    shown = rows(page)
    assert set(ids.values()) <= set(shown)
    assert {"predict/2026-12-01", "predict/2026-12-02"} <= set(shown)
    row = page.locator(f'tr[data-run="{ids["adam-slow"]}"]')
    assert "running" in row.inner_text()
    assert "lr=0.001" in row.inner_text()
    assert "sqlite:///" in page.inner_text("#store")
    page.fill("#filter", "adam")
    assert sorted(rows(page)) == sorted([ids["adam"], ids["adam-slow"]])
    page.fill("#filter", "")
    page.screenshot(path=str(screenshots / "ui-runs.png"), full_page=True)


def test_clicking_a_run_draws_its_chart(
    page: Any, server: str, store: tuple[str, dict[str, str]], screenshots: Path
) -> None:
    open_page(page, server)
    sgd = store[1]["sgd"]
    page.click(f'tr[data-run="{sgd}"] td:nth-child(2)')
    wait_for_series(page, 1)
    assert page.locator("#chart canvas").count() == 1
    assert page.input_value("#metric") == "valid_f1", "the run's perf metric first"
    page.select_option("#metric", "train_loss")
    page.wait_for_function(f"window.trackplug.chart.data[1].length === {200}")
    drawn = page.evaluate("window.trackplug.chart.data[1].filter(v => v !== null).length")
    assert drawn == 200
    assert sgd in page.evaluate("location.hash"), "the chart is in the URL"
    page.screenshot(path=str(screenshots / "ui-chart.png"), full_page=True)


def test_overlaying_two_runs_draws_two_series(
    page: Any, server: str, store: tuple[str, dict[str, str]], screenshots: Path
) -> None:
    ids = store[1]
    open_page(page, server, f"#view=runs&runs={ids['sgd']}&key=train_loss")
    wait_for_series(page, 1)
    page.check(f'tr[data-run="{ids["adam"]}"] input[type=checkbox]')
    wait_for_series(page, 2)
    labels = page.evaluate("window.trackplug.chart.series.slice(1).map(s => s.label)")
    assert labels == [ids["sgd"], ids["adam"]]
    for index in (1, 2):
        values = page.evaluate(f"window.trackplug.chart.data[{index}].filter(v => v !== null)")
        assert len(values) == 200
    page.screenshot(path=str(screenshots / "ui-overlay.png"), full_page=True)


def test_x_by_time_and_log_scale(page: Any, server: str, store: tuple[str, dict[str, str]]) -> None:
    ids = store[1]
    open_page(page, server, f"#view=runs&runs={ids['sgd']}&key=train_loss")
    wait_for_series(page, 1)
    assert page.evaluate("window.trackplug.chart.scales.x.time") is False
    page.select_option("#xaxis", "time")
    page.wait_for_function("window.trackplug.chart && window.trackplug.chart.scales.x.time")
    page.check("#logscale")
    page.wait_for_function("window.trackplug.chart && window.trackplug.chart.scales.y.distr === 3")


def test_sorting_by_a_metric_reorders_the_table(
    page: Any, server: str, store: tuple[str, dict[str, str]]
) -> None:
    ids = store[1]
    open_page(page, server)
    header = page.locator('th[data-column="metric:valid_f1"]')
    header.click()  # a metric sorts greatest first; resources without it go last
    by_f1 = [ids["sgd"], ids["adam"], ids["adam-slow"]]
    assert rows(page)[:3] == by_f1
    header.click()
    assert rows(page)[:3] == by_f1[::-1]
    assert "predict/" in rows(page)[-1], "without the metric: last, either way"


def test_live_refresh_shows_a_new_point(
    page: Any, server: str, store: tuple[str, dict[str, str]]
) -> None:
    url, ids = store
    running = ids["adam-slow"]
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    finished = ids["sgd"]
    open_page(page, server, f"#view=runs&runs={running},{finished}&key=train_loss")
    wait_for_series(page, 2)
    last_x = "window.trackplug.chart.data[0][window.trackplug.chart.data[0].length - 1]"
    assert page.evaluate(last_x) == 199
    with trackplug.connect(url) as writer:
        writer.log_metric(running, "train_loss", 0.123, step=200)
    page.wait_for_function(f"{last_x} === 200", timeout=WAIT_MS)
    assert page.evaluate("window.trackplug.chart.data[1].at(-1)") == 0.123
    polls = [u for u in fetched if "after_step=" in u]
    assert any("after_step=199" in u for u in polls), "asked for what is after its last point"
    assert all(f"resource={running}" in u for u in polls), "a finished run is not polled"


def test_the_leaderboard(
    page: Any, server: str, store: tuple[str, dict[str, str]], screenshots: Path
) -> None:
    ids = store[1]
    open_page(page, server, "#view=best")
    assert page.input_value("#best-metric") == "valid_f1", "the runs' perf metric first"
    page.select_option("#best-order", "min")
    page.wait_for_function(
        f"document.querySelector('#leaderboard tbody tr')?.dataset.run === '{ids['adam-slow']}'"
    )
    page.select_option("#best-order", "max")
    page.wait_for_function(
        f"document.querySelector('#leaderboard tbody tr')?.dataset.run === '{ids['sgd']}'"
    )
    assert rows(page, "#leaderboard") == [ids["sgd"], ids["adam"], ids["adam-slow"]]
    page.screenshot(path=str(screenshots / "ui-leaderboard.png"), full_page=True)


def test_the_prediction_metrics(page: Any, server: str, screenshots: Path) -> None:
    page.goto(server + "#view=predictions")
    page.wait_for_selector("#predictions tbody tr")
    jobs = page.eval_on_selector_all("#predictions tbody tr", "trs => trs.map(t => t.dataset.run)")
    assert jobs == ["predict/2026-12-01", "predict/2026-12-02"]
    headers = page.eval_on_selector_all(
        "#predictions thead th", "ths => ths.map(t => t.textContent)"
    )
    assert {"num_predictions", "class_distribution.cat", "prediction_mean"} <= set(headers)
    page.screenshot(path=str(screenshots / "ui-predictions.png"), full_page=True)


def test_where_the_screenshots_are(screenshots: Path) -> None:
    """Last: every view was saved (the path is in the output with -rA)."""
    saved = sorted(path.name for path in screenshots.glob("ui-*.png"))
    for name in ("ui-runs.png", "ui-chart.png", "ui-overlay.png", "ui-leaderboard.png"):
        assert name in saved, f"{name} missing from {screenshots}"
    print(f"screenshots: {screenshots}")
