"""DeployForm: fill in a service spec (fields or YAML), see what is wrong, deploy it.

The spec is built on every change (:meth:`ServiceSpec.from_dict` or ``from_yaml``), before any
engine call; an :class:`~opskit.base.errors.InvalidSpec` is shown in red next to the field it names.
Deploy calls ``ops.deploy(spec, progress=...)`` and streams its lines into the progress area,
then shows :meth:`Deployment.summary`.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from ..act.deploy import Deployment
from ..base.errors import InvalidSpec
from ..ops import Ops
from ..spec.service import ServiceSpec
from .base import ERROR_COLOUR, Messages, View
from .formtext import FORM_FIELDS, form_field, form_mapping

__all__ = ["RESTARTS", "DeployForm"]

RESTARTS = ("no", "always", "unless-stopped", "on-failure")
_EXAMPLE = "name: web\nimage: opskit/demo-web:latest\nports:\n  8080: 18080\n"


class DeployForm(View):
    """A form for :meth:`Ops.deploy`.

    Args:
        ops: the connection.
        wait: what each replica must reach (``"healthy"``, ``"running"``, None).
        timeout: seconds each replica may take.

    Attributes:
        fields: the input widgets by field name (``"ports"``, ``"env"``, ...).
        errors: the ``HTML`` next to each field (and ``"yaml"``) where its problem shows.
        mode: the ``ToggleButtons`` choosing ``form`` or ``yaml``; yaml: the ``Textarea``.
        deploy_button: the deploy button; log: the progress lines (:class:`Messages`).
        spec: the last spec that validated, else None; result: the last Deployment.
    """

    def __init__(self, ops: Ops, *, wait: str | None = "healthy", timeout: float = 60.0
                 ) -> None:
        super().__init__()
        self.ops = ops
        self.wait = wait
        self.timeout = timeout
        self.spec: ServiceSpec | None = None
        self.result: Deployment | None = None
        text = {"layout": widgets.Layout(width="420px")}
        self.fields: dict[str, widgets.ValueWidget] = {
            "name": widgets.Text(description="name", placeholder="web", **text),
            "image": widgets.Text(description="image", value="opskit/demo-web:latest", **text),
            "ports": widgets.Text(description="ports", placeholder="8080:18080 (container:host)",
                                  **text),
            "env": widgets.Textarea(description="env", placeholder="KEY=VALUE per line", **text),
            "replicas": widgets.BoundedIntText(description="replicas", value=1, min=1,
                                               max=100),
            "memory": widgets.Text(description="memory", placeholder="64m (empty: no limit)",
                                   **text),
            "cpus": widgets.Text(description="cpus", placeholder="0.5 (empty: no limit)",
                                 **text),
            "restart": widgets.Dropdown(description="restart", options=RESTARTS, value="no"),
            "healthcheck": widgets.Text(description="health cmd",
                                        placeholder="wget -q -O- http://127.0.0.1:8080/health "
                                        "(empty: the image's own)", **text),
            "health_interval": widgets.Text(description="interval", value="2s", **text),
        }
        self.errors = {name: widgets.HTML() for name in (*FORM_FIELDS, "yaml")}
        self.mode = widgets.ToggleButtons(options=[("form", "form"), ("YAML", "yaml")],
                                          value="form")
        self.yaml = widgets.Textarea(value=_EXAMPLE, layout=widgets.Layout(width="520px",
                                                                          height="180px"))
        self.deploy_button = widgets.Button(description="deploy", button_style="primary",
                                            icon="rocket")
        self.log = Messages()
        self.buttons = [self.deploy_button]
        self.form_box = widgets.VBox([widgets.HBox([self.fields[n], self.errors[n]])
                                      for n in FORM_FIELDS])
        self.yaml_box = widgets.VBox([self.yaml, self.errors["yaml"]],
                                     layout=widgets.Layout(display="none"))
        for control in (*self.fields.values(), self.yaml):
            control.observe(lambda _: self.guard(self.validate)(), names="value")
        self.mode.observe(lambda _: self._mode_changed(), names="value")
        self.deploy_button.on_click(self.guard(self.deploy))
        self.box = widgets.VBox([self.mode, self.form_box, self.yaml_box, self.deploy_button,
                                 self.status, self.log.output, self.output])

    def values(self) -> dict[str, object]:
        """The form's values by field name."""
        return {name: widget.value for name, widget in self.fields.items()}

    def build(self) -> ServiceSpec:
        """The spec the form (or the YAML) says.

        Raises:
            InvalidSpec: a field is wrong; nothing was sent to the engine.
        """
        if self.mode.value == "yaml":
            return ServiceSpec.from_yaml(self.yaml.value + "\n")  # text, never a path
        return ServiceSpec.from_dict(form_mapping(self.values()))

    def validate(self) -> ServiceSpec | None:
        """Build the spec and mark the field that is wrong; the spec, or None."""
        for label in self.errors.values():
            label.value = ""
        try:
            self.spec = self.build()
        except InvalidSpec as exc:
            self.spec = None
            where = "yaml" if self.mode.value == "yaml" else form_field(exc.field)
            hint = f" Hint: {exc.hint}" if exc.hint else ""
            text = html.escape(f"{exc.message}{hint}")
            if where:
                self.errors[where].value = f'<span style="color:{ERROR_COLOUR}">{text}</span>'
            else:
                self.messages.error(exc)
            return None
        self.messages.clear()
        return self.spec

    def deploy(self) -> None:
        """Validate, then ``ops.deploy(spec)`` with progress; show the summary."""
        spec = self.validate()
        if spec is None:
            if not self.messages.text:
                self.messages.error("The spec is not valid: fix the field marked in red.")
            return
        self.log.clear()
        self.messages.clear()
        with self.busy(f"deploying {spec.name}..."):
            result = self.ops.deploy(spec, wait=self.wait, timeout=self.timeout,
                                     progress=lambda line: self.log.info(line, append=True))
        self.result = result
        self.messages.ok(result.summary())

    def _mode_changed(self) -> None:
        yaml_mode = self.mode.value == "yaml"
        self.form_box.layout.display = "none" if yaml_mode else ""
        self.yaml_box.layout.display = "" if yaml_mode else "none"
        self.guard(self.validate)()
