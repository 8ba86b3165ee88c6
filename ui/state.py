"""Widget state that lives in the URL (``st.query_params``), so a link restores the exact view.

Pattern for a page control::

    sparsity = url_slider("sparsity", "Sparsity (%)", 0.0, 99.9, 50.0, cast=float)

``url_value`` seeds ``st.session_state[key]`` from the URL once (or from the default), and
``remember`` writes the current value back to the URL after the widget ran. Values that cannot be
parsed or are not allowed fall back to the default: a hand-edited link never crashes a page.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import streamlit as st


def url_value(key: str, default: Any, cast: Callable[[str], Any] = str,
              allowed: Sequence | None = None, check: Callable[[Any], bool] | None = None) -> Any:
    """Seed session state for widget ``key`` from the URL (first run) or ``default``; return it."""
    if key not in st.session_state:
        value = default
        raw = st.query_params.get(key)
        if raw is not None:
            try:
                parsed = cast(raw)
                if (allowed is None or parsed in allowed) and (check is None or check(parsed)):
                    value = parsed
            except (TypeError, ValueError):
                pass
        st.session_state[key] = value
    elif allowed is not None and st.session_state[key] not in allowed:
        st.session_state[key] = default
    return st.session_state[key]


def remember(*keys: str) -> None:
    """Write the current value of each widget ``key`` into the URL."""
    for key in keys:
        if key in st.session_state:
            value = st.session_state[key]
            st.query_params[key] = str(int(value) if isinstance(value, bool) else value)


def to_bool(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)
