"""Compression Lab: see what pruning and quantization do to a neural network.

Entry point only: page config, the shared sidebar, and navigation. Each topic is a page in app_pages/ (not pages/: that name makes Streamlit register the files twice).
Run with ``streamlit run app.py``.
"""
import streamlit as st

from ui.sidebar import render_sidebar

st.set_page_config(page_title="Compression Lab", page_icon="🗜️", layout="wide")

PAGES = {
    "": [st.Page("app_pages/home.py", title="Start here", icon="🏠", default=True)],
    "Pruning": [
        st.Page("app_pages/pruning.py", title="Pruning", icon="✂️", url_path="pruning"),
        st.Page("app_pages/lottery.py", title="Lottery tickets", icon="🎟️", url_path="lottery"),
    ],
    "Quantization": [
        st.Page("app_pages/quantization.py", title="Quantization", icon="🔢", url_path="quantization"),
        st.Page("app_pages/integer.py", title="Integer inference", icon="🧮", url_path="integer"),
    ],
}

render_sidebar()
page = st.navigation(PAGES)
page.run()
