"""A Streamlit websocket client for tests: what a browser tab does, without the browser.

It opens /_stcore/stream on a real server (Host, Origin and extra headers as given, e.g. proxy headers),
asks for a script run like the frontend does (BackMsg.rerun_script), and collects the elements the run
sends until it finishes: titles, markdown, alerts, text inputs and buttons with their widget ids. A
form is submitted the frontend's way: every widget of the form with its value, plus the submit button's
trigger.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

TEXT_KINDS = ("markdown", "heading", "alert", "text", "code")


@dataclass
class Run:
    """What one script run showed: (kind, text) of each text element, and widgets by label."""

    texts: list[tuple[str, str]] = field(default_factory=list)
    widgets: dict[str, tuple[str, object]] = field(default_factory=dict)  # label -> (kind, proto)

    def text(self) -> str:
        return "\n".join(t for _, t in self.texts)

    def alerts(self) -> str:
        return "\n".join(t for kind, t in self.texts if kind == "alert")


class Tab:
    """One browser tab's session on the app at ws://127.0.0.1:port (Host/Origin as a browser would send)."""

    def __init__(self, port: int, host: str | None = None, origin: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.port, self.host = port, host or f"127.0.0.1:{port}"
        self.origin = origin if origin is not None else f"http://{self.host}"
        self.headers = headers or {}
        self.ws = None

    async def __aenter__(self) -> Tab:
        self.ws = await websockets.connect(
            f"ws://{self.host}/_stcore/stream", host="127.0.0.1", port=self.port, origin=self.origin or None,
            subprotocols=["streamlit"], additional_headers=self.headers, open_timeout=60, max_size=2**26)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.ws.close()

    async def run(self, widgets: list | None = None, timeout: float = 120.0) -> Run:
        """Ask for a script run (with these WidgetState protos) and collect what its last run shows."""
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_script_hash = ""
        for state in widgets or []:
            msg.rerun_script.widget_states.widgets.append(state)
        await self.ws.send(msg.SerializeToString())
        run = Run()
        async with asyncio.timeout(timeout):
            while True:
                fwd = ForwardMsg()
                fwd.ParseFromString(await self.ws.recv())
                kind = fwd.WhichOneof("type")
                if kind == "new_session":  # a run starts (again, after st.rerun): keep only the last one
                    run = Run()
                elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                    element = fwd.delta.new_element
                    what = element.WhichOneof("type")
                    if what == "exception":  # the app crashed: fail loudly, with its message
                        raise AssertionError(f"the app raised {element.exception.type}: "
                                             f"{element.exception.message}")
                    if what in TEXT_KINDS:
                        run.texts.append((what, getattr(element, what).body if what != "code"
                                          else element.code.code_text))
                    elif what in ("text_input", "button", "selectbox"):
                        proto = getattr(element, what)
                        run.widgets[proto.label] = (what, proto)
                elif kind == "script_finished" and fwd.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    return run

    async def submit(self, form: Run, values: dict[str, str], button: str) -> Run:
        """Fill the form's text inputs (by label) and press its submit button."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        states = []
        for label, value in values.items():
            state = WidgetState(id=form.widgets[label][1].id)
            state.string_value = value
            states.append(state)
        states.append(WidgetState(id=form.widgets[button][1].id, trigger_value=True))
        return await self.run(states)
