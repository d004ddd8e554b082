"""The server `luskit review` runs: Streamlit's ASGI app (st.App) on app.py behind the Host/Origin door.

`streamlit run` finds `app` below and serves it with uvicorn; doors.HostGate answers every HTTP request
and websocket handshake before Streamlit sees it.
"""

from pathlib import Path

from starlette.middleware import Middleware
from streamlit.starlette import App

from labeling.app.doors import HostGate

app = App(Path(__file__).with_name("app.py"), middleware=[Middleware(HostGate)])
