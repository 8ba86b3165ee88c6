"""Streamlit glue shared by the pages: the sidebar, URL state, cached loaders, explainer boxes."""
