"""The review app (`luskit review`): a Streamlit app where senior clinicians work through the review queue.

Layout: settings (params and project paths), auth (reviewer accounts for exposed use), launch (the
`streamlit run` command and its safety checks), cli (`luskit review ...`), pure table logic
(queue_logic, clip_logic, model_metrics, agreement_tables, data_tables), charts (Vega-Lite specs),
decisions (the write path into labeling/reviews.py), loaders and ui (Streamlit caching and shared
widgets), app.py (the entry script) and views/ (one module per page).

Importing this package is cheap: nothing here imports Streamlit or pandas at module level.
"""
