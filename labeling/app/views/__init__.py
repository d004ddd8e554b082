"""The review app's pages, one module each; Streamlit runs them as scripts (see app.py)."""
