"""The Results page's naturalness chart fits its column at 1440x900 (real Chromium, the seeded demo).

Four default-width facets and the legend used to overrun the column: the
Safety panel and the legend were cut off. A faceted Vega-Lite chart cannot
stretch to its container, so the page wraps it to two facets a row.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rmgap_annot.accounts import set_password
from tests.e2e.conftest import WAIT_MS, settle, start_server

pytestmark = pytest.mark.e2e
PASSWORD = "researcher-pass-1"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    def prepare(engine):  # noqa: ANN001
        from rmgap_annot.accounts import list_users
        from rmgap_annot.demo import seed_demo

        seed_demo(engine=engine)
        rid = next(u.id for u in list_users(engine=engine) if u.name == "researcher")
        set_password(engine=engine, user_id=rid, password=PASSWORD)

    srv = start_server(tmp_path_factory, prepare)
    yield srv
    srv.stop()


def test_naturalness_chart_fits_its_column_at_1440(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(server.url)
    page.get_by_role("textbox", name="Username").fill("researcher")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Results").click(timeout=WAIT_MS)
    page.get_by_role("tab", name="Naturalness").click(timeout=60_000)
    panel = page.get_by_role("tabpanel", name="Naturalness")
    chart = panel.locator("[data-testid='stVegaLiteChart']").first
    chart.wait_for(timeout=WAIT_MS)
    settle(page)
    drawn = chart.locator("canvas, svg.marks").first
    drawn.wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(500)
    column, box = panel.bounding_box(), drawn.bounding_box()
    shot = Path(os.environ.get("RMGAP_SCREENSHOTS", tmp_path)) / "results-naturalness-1440.png"
    page.screenshot(path=str(shot), full_page=False)
    assert box["x"] >= column["x"] - 1 and box["x"] + box["width"] <= column["x"] + column["width"] + 1, (box, column)
    # nothing of the chart is clipped by its own element either
    outer = chart.bounding_box()
    assert box["x"] + box["width"] <= outer["x"] + outer["width"] + 1, (box, outer)
    page.close()
