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
