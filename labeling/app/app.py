"""The review app's entry script (`luskit review` runs `streamlit run` on this file).

Until a reviewer is identified, every URL path (/clip?clip=... included) runs the sign-in page: with
accounts a login form, on loopback without accounts a choice from review.reviewers. Streamlit keys a
page by its URL path alone, so the sign-in script is registered under each page's path; after sign-in
the same URL (query included) opens the real page. Pages live in views/, one module each.

No icons: Streamlit fetches an icon page's favicon from fonts.gstatic.com, and the app talks to
nobody but its own server.
"""

import time

import streamlit as st

from labeling.app import ui

st.set_page_config(page_title="luskit review", layout="wide")

PAGES = (("views/queue.py", "Queue", "queue"), ("views/clip.py", "Clip", "clip"),
         ("views/agreement.py", "Agreement", "agreement"), ("views/models.py", "Models", "models"),
         ("views/data.py", "Data", "data"))

project = ui.project()
who = ui.reviewer(project)
if not who:
    sign_in = [st.Page("views/login.py", title="Sign in", default=True)]
    sign_in += [st.Page("views/login.py", title="Sign in", url_path=path) for _, _, path in PAGES]
    st.navigation(sign_in, position="hidden").run()
else:
    pages = [st.Page(script, title=title, url_path=path, default=path == "queue") for script, title, path in PAGES]
    page = st.navigation(pages)
    ui.sidebar(project, who)
    seen = ui.activity()
    try:
        page.run()
    finally:
        seen[0] = time.time()  # idle time (review.idle_timeout_s) counts from the end of the last run
