"""Hardening: hypothesis drives every page's controls (random valid and boundary settings) and hand-edited links
(random query strings) through AppTest. No exception box may ever appear; bad values get plain messages.

Kept to the small 2-D data sets (moons, spirals) and a few examples per page with a fixed seed
(``derandomize``), so the suite stays fast and every CI run tries the same cases.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import open_app

PAGES = ["app_pages/home.py", "app_pages/pruning.py", "app_pages/lottery.py", "app_pages/quantization.py",
         "app_pages/integer.py", "app_pages/deep_compression.py", "app_pages/compare.py", "app_pages/lesson.py"]
BASE = {"dataset": "moons", "model": "tiny"}
FUZZ = settings(max_examples=5, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
# widget types whose values can be chosen from what AppTest shows (buttons and file uploaders are driven elsewhere)
KINDS = ("slider", "select_slider", "selectbox", "number_input", "toggle", "checkbox", "radio", "multiselect",
         "text_input")
TEXTS = ["", "0", "-1", "1e309", "nan", "inf", "-0.0", "99999999999", "[]", "[50, 90]", "{}", "true", "x" * 60,
         "mlp:64-32", "cnn:4k3", "upload-x", "digits", "imagenet", "0.0042", "3.1e-4", "'; DROP TABLE", "é€😀"]
VALUES = st.one_of(st.sampled_from(TEXTS), st.integers(-10 ** 12, 10 ** 12).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text(max_size=12))

_KEYS: dict[str, list[str]] = {}


def page_keys(page: str) -> list[str]:
    """The query keys a page writes (its controls' state in the link), found by opening it once."""
    if page not in _KEYS:
        at = open_app(page, BASE)
        _KEYS[page] = sorted(k for k in at.query_params if k not in ("cmp",)) + ["cmp", "dataset", "model", "seed"]
    return _KEYS[page]


def no_exception(at, what) -> None:
    assert not at.exception, (what, [e.message for e in at.exception])


@pytest.mark.parametrize("page", PAGES)
@FUZZ
@given(data=st.data())
def test_hand_edited_links_never_show_an_exception(page, data):
    keys = page_keys(page)
    query = data.draw(st.dictionaries(st.sampled_from(keys), VALUES, min_size=1, max_size=4), label="query")
    query = {**BASE, **{k: v for k, v in query.items() if k != "dataset" or v in ("moons", "spirals", "x")}}
    at = open_app(page, query)
    no_exception(at, query)


def _options(w) -> list | None:
    """The values a choice widget can take, as its value's type (None when they cannot be read back)."""
    opts = list(getattr(w.proto, "options", []))
    ff = getattr(w, "format_func", None)
    table = getattr(ff, "__self__", None)
    if isinstance(table, dict):  # format_func=LABELS.get: the values are the table's keys
        return [k for k, label in table.items() if label in opts] or None
    if ff not in (None, str):
        return None
    value = w.value[0] if isinstance(w.value, (list, tuple)) and w.value else w.value
    kind = type(value) if value is not None else str
    try:
        return [kind(o) for o in opts] if kind in (int, float, str) and opts else None
    except ValueError:
        return None


# the sidebar's data set (a new one trains a new baseline), baseline training and upload controls: driven elsewhere
SIDEBAR_SKIP = {"dataset", "epochs", "lr", "up_shape", "up_label"}

# One move: which widget (a fraction of the list), where in its range (a fraction), a flag, and a text. Drawn up
# front, whatever the page shows, so that hypothesis replays the same moves whatever the caches hold.
MOVES = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.floats(0, 1), st.booleans(),
                           st.sampled_from(TEXTS)), min_size=1, max_size=3)


def _pick(seq, u: float):
    return seq[min(int(u * len(seq)), len(seq) - 1)]


def _act(at, move) -> str | None:
    which, u, flag, text = move
    widgets = [(k, w) for k in KINDS for w in [*getattr(at.main, k), *getattr(at.sidebar, k)]
               if not w.disabled and w.key not in SIDEBAR_SKIP
               and (k not in ("radio", "select_slider", "multiselect", "selectbox") or _options(w))]
    if not widgets:
        return None
    kind, w = _pick(widgets, which)
    if kind in ("toggle", "checkbox"):
        w.set_value(flag)
    elif kind == "number_input":
        lo = w.proto.min if w.proto.has_min else -1e6
        hi = w.proto.max if w.proto.has_max else 1e6
        v = lo if u < 0.3 else hi if u > 0.7 else lo + (hi - lo) * u
        w.set_value(int(round(v)) if isinstance(w.value, int) else float(v))
    elif kind == "slider":
        lo, hi = w.proto.min, w.proto.max
        step = w.proto.step or 1
        v = min(hi, lo + round((hi - lo) * u / step) * step)
        if isinstance(w.value, (list, tuple)):
            w.set_range(lo, v)
        else:
            w.set_value(int(v) if isinstance(w.value, int) else float(v))
    elif kind == "text_input":
        w.set_value(text)
    else:  # radio, select_slider, multiselect, selectbox
        opts = _options(w)
        if kind == "multiselect":
            w.set_value([o for i, o in enumerate(opts) if (i + 1) * u % 1 < 0.5 or flag and i == 0])
        else:
            w.set_value(_pick(opts, u))
    return f"{kind} {w.key}"


@pytest.mark.parametrize("page", PAGES)
@FUZZ
@given(moves=MOVES)
def test_random_control_settings_never_show_an_exception(page, moves):
    at = open_app(page, BASE)
    no_exception(at, "opened")
    done = []
    for move in moves:
        what = _act(at, move)
        if what is None:
            break
        done.append(what)
        at.run()
        no_exception(at, done)
    assert done, "no control to drive on the page"
