"""Widget state that lives in the URL (``st.query_params``), so a link restores the exact view.

Pattern for a page control: one call, the key written once::

    bits = url_widget(c1.select_slider, "q_bits", 8, "Bit width", BITS, cast=int, allowed=BITS)

``url_widget`` seeds ``st.session_state[key]`` from the URL once (or from the default), draws the widget
with that key, and writes the value back to the URL. Underneath, ``url_value`` does the seeding and
``remember`` the write-back (the sidebar, whose widgets exist on every page, uses them directly). Values
that cannot be parsed or are not allowed fall back to the default: a hand-edited link never crashes a page.

Bounds (``LINK_LIMITS``): only the keys a page asks for are read, however many a link carries, and a value is
checked before it is parsed: its length, and for a list (``link_list``) its JSON's depth and length. A forged
value is refused in under a millisecond with a few KB allocated (``parse_link_value``), and the page shows the
default.

Why not Streamlit's own binding (``bind="query-params"``, which ``view_tabs`` uses for its tabs)? In the pinned
Streamlit (1.67) most inputs take it: the key becomes the parameter, a value equal to the default is left out of
the link, and a value that does not parse, is outside the widget's range or is not one of its options is dropped
from the link without a word. It does not keep this link's behaviour, so the controls stay on ``url_widget``:

- the browser, not the server, writes a moved control into the address bar, and the server's ``st.query_params``
  (AppTest's too) is not refreshed on a same-page rerun: the page tests that check a control's value in the link
  after a move would fail;
- defaults are left out of the link, while this one writes every control (the tests read ``q_bits=8`` from a
  default view, and the link-fuzzing test finds each page's keys by opening it once);
- a choice with ``format_func`` is written as its label (``pr_granularity`` would hold "neurons / channels
  (structured)", not ``neuron``): every link shared so far, and the Lesson's links into the Pruning page, would
  open on the defaults;
- only the widget's own options and range are checked: no ``cast``/``allowed``/``check`` (``lesson_step`` in
  1..N, a layer that this model has, a flat JSON list) and no length limit before parsing;
- a bound parameter cannot be written through ``st.query_params``, which ``remember`` does for the sidebar.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import streamlit as st

from compress_core.config import read_json

# What a link's values may hold (the Compare page's variants, compressed, have their own limits in ui.topics.compare)
LINK_LIMITS = {
    "chars": 256,  # one value ('mlp:1024-1024-1024-1024', '[50, 70, 80, 90, 95, 98]')
    "list_items": 64,  # items of a list value (a multiselect's choices)
    "depth": 1,  # a list value is a flat list
}


def link_list(raw: str) -> list:
    """A list value of a link (a multiselect's choices, as JSON): a flat list of at most
    ``LINK_LIMITS["list_items"]`` numbers or strings; ValueError in plain words for anything else."""
    value = read_json(raw, "The link's value", max_chars=LINK_LIMITS["chars"], max_depth=LINK_LIMITS["depth"])
    if not isinstance(value, list) or len(value) > LINK_LIMITS["list_items"] \
            or not all(isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in value):
        raise ValueError(f"The link's value is not a list of at most {LINK_LIMITS['list_items']} numbers or "
                         "words.")
    return value


def parse_link_value(raw: Any, cast: Callable[[str], Any] = str, allowed: Sequence | None = None,
                     check: Callable[[Any], bool] | None = None) -> Any:
    """A link's value parsed by ``cast`` and validated by ``allowed`` / ``check``; ValueError in plain words for a
    value that is not text, is longer than ``LINK_LIMITS["chars"]`` (checked before ``cast`` sees it), cannot be
    parsed or is not allowed."""
    if not isinstance(raw, str):
        raise ValueError("The link's value is not text.")
    if len(raw) > LINK_LIMITS["chars"]:
        raise ValueError(f"The link's value is {len(raw):,} characters long; the limit is {LINK_LIMITS['chars']}.")
    try:
        parsed = cast(raw)
    except (TypeError, ValueError, OverflowError) as e:
        msg = str(e)
        raise ValueError(msg if msg.startswith("The link's") else  # link_list's own words
                         f"The link's value cannot be read ({msg[:80] or type(e).__name__}).") from None
    try:
        ok = (allowed is None or parsed in allowed) and (check is None or check(parsed))
    except (TypeError, ValueError, OverflowError):  # e.g. set() of a list that holds a list
        ok = False
    if not ok:
        raise ValueError("The link's value is not one of the choices here.")
    return parsed


def url_value(key: str, default: Any, cast: Callable[[str], Any] = str,
              allowed: Sequence | None = None, check: Callable[[Any], bool] | None = None) -> Any:
    """Seed session state for widget ``key`` from the URL (first run) or ``default``; return it."""
    if key not in st.session_state:
        value = default
        raw = st.query_params.get(key)
        if raw is not None:
            try:
                value = parse_link_value(raw, cast, allowed, check)
            except ValueError:
                pass  # a damaged or forged link shows the default
        st.session_state[key] = value
    elif allowed is not None and st.session_state[key] not in allowed:
        st.session_state[key] = default
    return st.session_state[key]


def url_widget(widget: Callable[..., Any], key: str, default: Any, *args: Any, cast: Callable[[str], Any] = str,
               allowed: Sequence | None = None, check: Callable[[Any], bool] | None = None, **kwargs: Any) -> Any:
    """Seed ``key`` from the URL, draw ``widget(*args, key=key, **kwargs)``, write its value back; return it.

    ``widget`` is any Streamlit input (``st.slider``, ``col.radio``…); ``allowed`` / ``check`` validate
    a value read from the URL (a bad one falls back to ``default``).
    """
    url_value(key, default, cast=cast, allowed=allowed, check=check)
    value = widget(*args, key=key, **kwargs)
    remember(key)
    return value


def remember(*keys: str) -> None:
    """Write the current value of each widget ``key`` into the URL, where it differs from the link's.

    Every write to ``st.query_params`` sends the browser a message that rewrites the address bar, changed or
    not: a dozen unchanged controls cost a slider move a dozen of them."""
    for key in keys:
        if key in st.session_state:
            value = st.session_state[key]
            text = str(int(value) if isinstance(value, bool) else value)
            if st.query_params.get(key) != text:
                st.query_params[key] = text


def to_bool(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def keep(*keys: str, prefix: str | None = None) -> None:
    """Keep widget values across a run that does not draw their widgets (a page stopped by a refused setting).

    Streamlit forgets the state of a widget that a run did not draw, so the page would come back with its
    defaults (and write them into the link). Re-assigning the value at the top of the run keeps it.
    """
    for key in list(st.session_state):
        if key in keys or (prefix is not None and key.startswith(prefix)):
            st.session_state[key] = st.session_state[key]


def view_tabs(key: str, views: Mapping[str, Callable[[], Any]]) -> None:
    """Views as tabs of which only the open one runs: ``views`` maps each tab's label to the function that draws
    it, and only the open tab's function is called.

    A slider move then rebuilds and redraws the open tab's charts only (a browser draws a Plotly chart in
    20–40 ms, so five charts below the fold made a move 3× slower than a bare one-chart page). The open tab
    is in the link (``?key=label``) and in ``st.session_state[key]``.
    """
    for tab, draw in zip(st.tabs(list(views), key=key, bind="query-params"), views.values()):
        if tab.open:
            with tab:
                draw()
