"""Compression Lab: see what pruning and quantization do to a neural network.

Entry point only: page config, the shared sidebar, navigation, and the background warm-up. It imports no PyTorch:
the start page shows a cached baseline without it. Each topic is a page in app_pages/
(not pages/: that name makes Streamlit register the files twice).
Run with ``streamlit run app.py``.
"""
import plotly.io as pio
import streamlit as st

from ui import warmup
from ui.sidebar import render_sidebar

# The whole run holds warmup.running(): the background warm-up never imports while a run is under way.
with warmup.running():
    # Streamlit's chart theme styles every figure in the browser, so a Plotly template in a figure is dead weight:
    # Plotly copies its JSON into each figure (deep copies, most of a rerun's figure-building time) and Streamlit
    # sends it along (most of a small chart's bytes). Inside the app, figures carry none (compress_core.viz uses
    # the white template only where nobody chose one: notebooks and exports).
    pio.templates.default = "none"

    # a 240-pixel sidebar: on a projector (1280×720 at 150 % zoom) the default took a third of the width
    st.set_page_config(page_title="Compression Lab", page_icon="🗜️", layout="wide", initial_sidebar_state=240)

    PAGES = {
        "": [st.Page("app_pages/home.py", title="Start here", icon="🏠", default=True),
             st.Page("app_pages/lesson.py", title="Lesson", icon="🎓", url_path="lesson")],
        "Pruning": [
            st.Page("app_pages/pruning.py", title="Pruning", icon="✂️", url_path="pruning"),
            st.Page("app_pages/lottery.py", title="Lottery tickets", icon="🎟️", url_path="lottery"),
        ],
        "Quantization": [
            st.Page("app_pages/quantization.py", title="Quantization", icon="🔢", url_path="quantization"),
            st.Page("app_pages/integer.py", title="Integer inference", icon="🧮", url_path="integer"),
        ],
        "Together": [st.Page("app_pages/deep_compression.py", title="Deep compression", icon="🧩",
                             url_path="deep-compression"),
                     st.Page("app_pages/compare.py", title="Compare recipes", icon="⚖️", url_path="compare")],
        "Transformers": [st.Page("app_pages/language_models.py", title="Language models", icon="🤖",
                                 url_path="language-models")],
    }

    render_sidebar()
    st.navigation(PAGES).run()
    warmup.start()  # once per process: PyTorch and the library, imported in the background once this run has ended
