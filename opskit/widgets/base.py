"""What every view shares: the message area, the busy state, a timer, and figure updates.

A view is a plain class that holds its ``box`` (an ``ipywidgets.VBox``) and a
:class:`Messages` area (an ``ipywidgets.Output``); it is never a widget subclass. Callbacks go
through :meth:`View.guard`, so an error becomes a red message in the view (its message and
hint), never a traceback. Everything here works without a kernel, so views are tested by
calling ``button.click()``.
"""

from __future__ import annotations

import contextlib
import html
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

import ipywidgets as widgets

from ..base.errors import OpsKitError

if TYPE_CHECKING:
    import plotly.graph_objects as go

log = logging.getLogger("opskit")

__all__ = ["ERROR_COLOUR", "OK_COLOUR", "Callback", "Displayable", "Messages", "Ticker", "View",
           "error_parts", "replace_figure"]

ERROR_COLOUR = "#c62828"
OK_COLOUR = "#2e7d32"
_STYLES = {"error": f"color:{ERROR_COLOUR}", "ok": f"color:{OK_COLOUR}", "info": "color:#424242"}


class Callback(Protocol):
    """A guarded widget callback: ``on_click`` passes the button, ``observe`` the change, a
    timer or a direct call nothing; the arguments are ignored."""

    def __call__(self, *args: object) -> None: ...


def error_parts(exc: BaseException) -> tuple[str, str]:
    """The message and hint of an error (an opskit error's own; the type and text otherwise)."""
    if isinstance(exc, OpsKitError):
        return exc.message, exc.hint
    return f"{type(exc).__name__}: {exc}", ""


class Messages:
    """A view's message area: lines of text, coloured by kind, in an ``ipywidgets.Output``.

    The ``outputs`` of the Output are set directly (as ``append_display_data`` does), so
    messages show without a kernel capturing anything and tests can read them back.
    """

    def __init__(self) -> None:
        self.output = widgets.Output()
        self._lines: list[tuple[str, str]] = []

    @property
    def text(self) -> str:
        """Every line shown now, as plain text (one per line)."""
        return "\n".join(text for _, text in self._lines)

    @property
    def kinds(self) -> list[str]:
        """The kind (``error``, ``ok``, ``info``) of each line shown now."""
        return [kind for kind, _ in self._lines]

    def clear(self) -> None:
        """Remove every message."""
        self._lines = []
        self._render()

    def show(self, lines: Sequence[tuple[str, str]], *, append: bool = False) -> None:
        """Show ``(kind, text)`` lines, replacing what is shown unless ``append``."""
        self._lines = [*self._lines, *lines] if append else list(lines)
        self._render()

    def info(self, text: str, *, append: bool = False) -> None:
        """Show a plain line."""
        self.show([("info", text)], append=append)

    def ok(self, text: str, *, append: bool = False) -> None:
        """Show a green line."""
        self.show([("ok", text)], append=append)

    def error(self, exc: BaseException | str, *, append: bool = False) -> None:
        """Show an error in red: its message, then its hint."""
        if isinstance(exc, str):
            self.show([("error", exc)], append=append)
            return
        message, hint = error_parts(exc)
        lines = [("error", message)] + ([("error", f"Hint: {hint}")] if hint else [])
        self.show(lines, append=append)

    def _render(self) -> None:
        body = "".join(f'<div style="{_STYLES.get(kind, "")}">{html.escape(text)}</div>'
                       for kind, text in self._lines)
        self.output.outputs = tuple(
            [{"output_type": "display_data", "metadata": {},
              "data": {"text/html": f'<div class="opskit-messages">{body}</div>',
                       "text/plain": self.text}}] if self._lines else [])


class Displayable:
    """Something that holds a ``box`` and shows as that box in a notebook."""

    box: widgets.Box

    def _repr_mimebundle_(self, **kwargs: object) -> dict[str, object] | None:
        """The box's mime bundle (the widget view), so Jupyter shows the box."""
        bundle: dict[str, object] | None = self.box._repr_mimebundle_(**kwargs)
        return bundle

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)  # type: ignore[no-untyped-call]


class View(Displayable):
    """Base of the views: holds ``box``, ``messages``, a progress bar and the busy state.

    Subclasses build their widgets, register the buttons to disable while busy in
    ``self.buttons``, and set ``self.box``; those with a timer stop it in :meth:`close`.
    """

    def __init__(self) -> None:
        self.messages = Messages()
        self.progress = widgets.IntProgress(value=0, min=0, max=1,
                                            layout=widgets.Layout(display="none"))
        self.status = widgets.HTML("")
        self.buttons: list[widgets.Button] = []
        self.box: widgets.Box = widgets.VBox()

    @property
    def output(self) -> widgets.Output:
        """The ``ipywidgets.Output`` messages are shown in."""
        return self.messages.output

    def close(self) -> None:
        """Stop what the view runs in the background (timers); nothing by default."""

    def guard(self, action: Callable[[], object]) -> Callback:
        """Wrap a callback: any error becomes a message in the view, never a traceback."""

        def run(*_: object) -> None:
            try:
                action()
            except Exception as exc:
                if not isinstance(exc, OpsKitError):
                    log.debug("widget callback failed", exc_info=True)
                self.messages.error(exc)

        return run

    @contextlib.contextmanager
    def busy(self, label: str, total: int = 0) -> Iterator[widgets.IntProgress]:
        """Disable the buttons and show progress (a bar of ``total`` steps, or a label).

        Yields:
            The ``IntProgress`` (advance ``value``) while the work runs.
        """
        disabled = [b.disabled for b in self.buttons]
        for button in self.buttons:
            button.disabled = True
        self.status.value = f"<i>&#8987; {html.escape(label)}</i>"
        self.progress.max = max(1, total)
        self.progress.value = 0
        self.progress.layout.display = "" if total else "none"
        try:
            yield self.progress
        finally:
            for button, was in zip(self.buttons, disabled, strict=True):
                button.disabled = was
            self.progress.layout.display = "none"
            self.status.value = ""


class Ticker:
    """Call ``tick`` every ``interval`` seconds on a daemon thread until :meth:`stop`."""

    def __init__(self, interval: float, tick: Callable[[], None]) -> None:
        self.interval = interval
        self.tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start ticking (no-op when already running)."""
        if self.running:
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="opskit-widget-timer",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking and wait for the thread (at most one tick)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.interval + 5)
        self._thread = None

    def _run(self) -> None:
        stop = self._stop
        while not stop.wait(self.interval):
            try:
                self.tick()
            except Exception:
                log.debug("widget timer tick failed", exc_info=True)


def replace_figure(target: go.FigureWidget, figure: go.Figure) -> None:
    """Show ``figure`` in the ``go.FigureWidget`` ``target``, in place.

    The front end merges a new layout into the one it has (``Plotly.relayout``), so every
    top-level key of the old layout is reset first: an axis hidden by a ``no data`` figure, or
    a third subplot, does not outlive the figure that had it.
    """
    stale = {key: None for key in target.layout.to_plotly_json() if key != "template"}
    if stale:
        target.plotly_relayout(stale)
    target.data = []
    target.add_traces(list(figure.data))
    target.layout = figure.layout
