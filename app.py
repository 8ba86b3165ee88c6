"""Compression Lab: see what pruning and quantization do to a neural network.

Entry point only: page config, the shared sidebar, and navigation. Each topic is a page in app_pages/
(not pages/: that name makes Streamlit register the files twice).
Run with ``streamlit run app.py``.
"""
import plotly.io as pio
import streamlit as st
import torch

from ui.sidebar import render_sidebar

# One server process serves every session (a class of 30-100 students) and the models are tiny: one
# intra-op thread per op avoids thread-pool contention between sessions; a slider move measured several
# times faster on a busy machine (bench/bench_pruning.py), training time is unchanged.
torch.set_num_threads(1)

# Streamlit's chart theme styles every figure in the browser, so a Plotly template in a figure is dead weight:
# Plotly copies its JSON into each figure (deep copies, most of a rerun's figure-building time) and Streamlit
# sends it along (most of a small chart's bytes). Inside the app, figures carry none (set after the imports,
# which set the white template for figures used outside the app).
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
}

render_sidebar()
page = st.navigation(PAGES)
page.run()
