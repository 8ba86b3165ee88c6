"""AppTest helpers: run the real entry point (app.py) and switch to a page, as a browser would."""
import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT = 180


def open_app(page: str | None = None, query: dict | None = None) -> AppTest:
    """Run app.py (optionally with URL query parameters), then switch to ``page`` (e.g. 'app_pages/pruning.py')."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    if page:
        at.switch_page(page).run()
    return at


def open_tab(at: AppTest, key: str, label: str) -> AppTest:
    """Open the tab ``label`` of the lazy tabs ``key`` (``ui.state.view_tabs``; only the open one runs) and rerun,
    as a click on it would (the click also changes the link, so a tab opened through the URL gives way too)."""
    at.session_state[key] = label
    at.query_params[key] = label
    return at.run()


def chart_text(chart) -> str:
    """A Plotly chart element's spec as decoded text. Plotly writes it with orjson when that is installed (raw
    UTF-8) and with json otherwise (``\\u00d7`` for ×): decode, then search, so a test reads the same either way."""
    return json.dumps(json.loads(chart.proto.spec), ensure_ascii=False)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.fixture
def app():
    return open_app


def table_with(at: AppTest, column: str):
    """The page's dataframe that has ``column`` (its data, through a pandas Styler if there is one)."""
    for df in at.dataframe:
        data = df.value.data if hasattr(df.value, "data") else df.value
        if column in data.columns:
            return data
    raise AssertionError(f"no table with a {column!r} column on the page")


def gap_points(text: str) -> float | None:
    """The signed gap a "Fair comparison" box states in words (``ui.explain.gap_words``): '**1.90 points
    below** it' is −1.9; '**level with** it' is 0; None when the text states none."""
    if "**level with** it" in text:
        return 0.0
    m = re.search(r"\*\*([\d.]+) points (below|above)\*\* it", text)
    return None if m is None else float(m[1]) * (-1 if m[2] == "below" else 1)
