"""Small helpers for the teaching text next to the charts."""
from __future__ import annotations

import streamlit as st


def explainer(title: str, body_md: str, expanded: bool = False) -> None:
    """A collapsible box of plain-words explanation."""
    with st.expander(title, expanded=expanded):
        st.markdown(body_md)


def published(citation: str, text_md: str) -> None:
    """A published figure shown beside ours, clearly labelled as such."""
    st.info(f"**Published** — {citation}\n\n{text_md}", icon="📚")


def gap_words(points: float, digits: int = 2) -> str:
    """A signed accuracy gap in points as words, in bold: '**1.90 points below**', '**0.30 points above**', or
    '**level with**' when it rounds to zero ("−1.9 points from it" read as a sign, not a comparison)."""
    shown = round(abs(points), digits)
    if shown == 0:
        return "**level with**"
    return f"**{shown:.{digits}f} points {'below' if points < 0 else 'above'}**"
