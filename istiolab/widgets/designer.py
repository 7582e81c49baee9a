"""RuleDesigner: edit one HTTP route and see its YAML, findings, routing and traffic live.

The designer holds a :class:`~istiolab.config.ConfigSet` (legacy RouteRules or modern
VirtualServices) and edits one route of it through a
:class:`~istiolab.widgets.routeform.RouteForm`: destination weights, one match condition (header,
cookie or URI), fault abort and delay, retries and timeout. After every change it writes the form
back into the resource's YAML document (:mod:`istiolab.widgets.routeform`) and calls the public
API: :func:`~istiolab.config.loads` → :func:`~istiolab.config.validate.validate` (findings) →
:func:`~istiolab.envoy.compile.compile` → :func:`~istiolab.envoy.match.explain` for the request
typed in, and, given a scenario, :func:`~istiolab.sim.engine.simulate` with the edited rules
(a short run) whose traffic share is plotted. The preview shows the rules as written (legacy or
modern) or, for legacy input, as :func:`~istiolab.config.convert.convert` rewrites them
(:mod:`istiolab.widgets.preview` draws the preview and the plots).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from istiolab.lab.engine import session_engine
from istiolab.widgets._util import message, png, pre, require_ipywidgets
from istiolab.widgets.preview import rules_yaml, share_line, traffic_figure
from istiolab.widgets.routeform import (
    COOKIE_REGEX,
    LEGACY_API,
    RouteForm,
    RouteRef,
    editable_routes,
    parse_headers,
    read_legacy,
    read_modern,
    write_legacy,
    write_modern,
)

if TYPE_CHECKING:
    from istiolab.config import ConfigSet
    from istiolab.envoy.match import Explanation
    from istiolab.envoy.model import RouteTable
    from istiolab.findings import Finding
    from istiolab.sim.results import Result
    from istiolab.sim.scenario import Scenario


class RuleDesigner:
    """Edit one HTTP route of a config set with live YAML, findings, explain and simulation.

    Args:
        config: A config set, or a path to load it from.
        route: Label (or a unique part of it) of the route to edit first; default the first.
        scenario: A scenario to simulate with the edited rules after every change (keep it
            short: a few simulated seconds); None for no simulation.
        profile: Istio profile for validation and compilation (default: 0.2 for legacy input,
            else the newest).
        seed: Seed of the simulations.
        host: Host of the request to explain (default: the scenario's traffic host, else the
            first domain the rules serve).
        path: Path of the request to explain.
        headers: Headers of the request to explain, ``"name: value"`` per line.
        engine: Simulation engine of the runs after each change (see
            :func:`~istiolab.sim.engine.simulate`). Default: ``"auto"``, which answers a slider
            move in a few hundredths of a second once the compiled engine is loaded (about a
            second, and about 120 MiB more in the kernel), or ``"simpy"`` where the host
            declares a memory limit (``MEM_LIMIT``, as on Binder); ``ISTIOLAB_ENGINE``
            overrides it (:func:`~istiolab.lab.engine.session_engine`).

    Raises:
        ValueError: When *engine* is not one :func:`~istiolab.sim.engine.simulate` runs.
    """

    def __init__(
        self,
        config: ConfigSet | str | Path,
        *,
        route: str | None = None,
        scenario: Scenario | None = None,
        profile: str | None = None,
        seed: int = 1,
        host: str | None = None,
        path: str = "/",
        headers: str = "",
        engine: str | None = None,
    ) -> None:
        from istiolab.config import ConfigSet, load

        self.engine = session_engine(engine)

        w = require_ipywidgets()
        cs = config if isinstance(config, ConfigSet) else load(config)
        self._docs: list[dict[str, Any]] = [r.to_dict() for r in cs]
        self.routes = editable_routes(self._docs)
        if not self.routes:
            raise ValueError("the config has no route with destinations to edit")
        self.legacy = any(d.get("apiVersion") == LEGACY_API for d in self._docs)
        self.scenario = scenario
        self.profile = profile
        self.seed = seed
        self.config: ConfigSet = cs
        self.findings: list[Finding] = []
        self.table: RouteTable | None = None
        self.explanation: Explanation | None = None
        self.result: Result | None = None
        self.updates = 0
        self._busy = False
        self._initial_docs = copy.deepcopy(self._docs)
        self._listeners: list[Callable[[RuleDesigner], Any]] = []

        style = {"description_width": "9em"}
        wide = w.Layout(width="28em")
        self.route_picker = w.Dropdown(
            options=[(r.label, k) for k, r in enumerate(self.routes)],
            description="route",
            style=style,
            layout=w.Layout(width="24em"),
        )
        flavours = ["legacy", "modern (converted)"] if self.legacy else ["modern"]
        self.flavour = w.ToggleButtons(options=flavours, description="YAML", style=style)
        self.balance = w.Checkbox(value=True, description="keep the total at 100", style=style)
        self.weight_box = w.VBox([])
        self.sliders: list[Any] = []
        self.match_kind = w.Dropdown(
            options=["any", "header", "cookie", "uri"],
            description="match",
            style=style,
            layout=wide,
        )
        self.match_name = w.Text(description="header name", style=style, layout=wide)
        self.match_type = w.Dropdown(
            options=["exact", "prefix", "regex"], description="match type", style=style, layout=wide
        )
        self.match_value = w.Text(
            description="value",
            placeholder="cookie: user=beta",
            style=style,
            layout=wide,
            continuous_update=False,
        )
        self.abort_percent = w.FloatSlider(
            min=0,
            max=100,
            step=0.5,
            description="abort %",
            continuous_update=False,
            style=style,
            layout=wide,
        )
        self.abort_status = w.BoundedIntText(
            value=503, min=200, max=599, description="abort status", style=style, layout=wide
        )
        self.delay_percent = w.FloatSlider(
            min=0,
            max=100,
            step=0.5,
            description="delay %",
            continuous_update=False,
            style=style,
            layout=wide,
        )
        self.delay_s = w.BoundedFloatText(
            value=0.0, min=0, max=60, step=0.05, description="delay (s)", style=style, layout=wide
        )
        self.retries = w.Checkbox(description="set retries", style=style)
        self.attempts = w.IntSlider(
            min=0, max=10, description="attempts", continuous_update=False, style=style, layout=wide
        )
        self.per_try = w.BoundedFloatText(
            min=0, max=60, step=0.05, description="per try (s)", style=style, layout=wide
        )
        self.retry_on = w.Text(
            description="retryOn",
            placeholder="5xx,connect-failure",
            style=style,
            layout=wide,
            continuous_update=False,
            disabled=self.legacy,
        )
        self.timeout = w.BoundedFloatText(
            min=0, max=600, step=0.05, description="timeout (s)", style=style, layout=wide
        )
        self.req_host = w.Text(
            description="host", style=style, layout=wide, continuous_update=False
        )
        self.req_path = w.Text(
            value=path, description="path", style=style, layout=wide, continuous_update=False
        )
        self.req_headers = w.Textarea(
            value=headers,
            description="headers",
            placeholder="cookie: user=beta",
            style=style,
            layout=w.Layout(width="28em", height="4em"),
            continuous_update=False,
        )
        self.preview = w.HTML()
        self.findings_view = w.HTML()
        self.explain_view = w.HTML()
        self.status = w.HTML()
        self.plot = w.Image(format="png", layout=w.Layout(width="100%", max_width="560px"))
        self.share_view = w.HTML()
        self.reset_button = w.Button(
            description="Reset", icon="undo", tooltip="the rules as they were given"
        )
        self.reset_button.on_click(lambda _: self.reset())

        form_widgets = [
            self.match_kind, self.match_name, self.match_type, self.match_value,
            self.abort_percent, self.abort_status, self.delay_percent, self.delay_s,
            self.retries, self.attempts, self.per_try, self.retry_on, self.timeout,
        ]  # fmt: skip
        for x in form_widgets:
            x.observe(self._on_form, names="value")
        for x in (self.req_host, self.req_path, self.req_headers):
            x.observe(self._on_request, names="value")
        self.flavour.observe(lambda _: self._render_preview(), names="value")
        self.route_picker.observe(self._on_pick, names="value")

        tabs = w.Tab(
            children=[
                w.VBox([self.balance, self.weight_box]),
                w.VBox([self.match_kind, self.match_name, self.match_type, self.match_value]),
                w.VBox([self.abort_percent, self.abort_status, self.delay_percent, self.delay_s]),
                w.VBox([self.retries, self.attempts, self.per_try, self.retry_on, self.timeout]),
            ],
            titles=["destinations", "match", "fault", "retries & timeout"],
        )
        request_box = w.VBox(
            [
                w.HTML("<b>explain a request</b>"),
                self.req_host,
                self.req_path,
                self.req_headers,
                self.explain_view,
            ]
        )
        right = w.VBox(
            [w.HTML("<b>findings</b>"), self.findings_view, request_box],
            layout=w.Layout(width="50%"),
        )
        left = w.VBox([self.flavour, self.preview], layout=w.Layout(width="50%"))
        controls = w.VBox(
            [w.HBox([self.route_picker, self.reset_button]), tabs, self.status],
            layout=w.Layout(flex="0 0 31em"),
        )
        top: list[Any] = [controls]
        if scenario is not None:
            # the simulated traffic sits beside the sliders that move it
            top.append(
                w.VBox(
                    [
                        w.HTML(f"<b>simulated</b>: {scenario.name}, {scenario.run.duration_s:g} s"),
                        self.share_view,
                        self.plot,
                    ],
                    layout=w.Layout(flex="1 1 24em", min_width="20em"),
                )
            )
        self.widget = w.VBox(
            [w.HBox(top, layout=w.Layout(flex_flow="row wrap")), w.HBox([left, right])]
        )
        # stable selectors for the browser test and for custom CSS
        self.widget.add_class("istiolab-rule-designer")
        self.preview.add_class("istiolab-yaml")
        self.plot.add_class("istiolab-plot")
        self.findings_view.add_class("istiolab-findings")
        self.explain_view.add_class("istiolab-explain")

        self._initial_route = self._find(route)
        self._initial_config = cs
        self._select(self._initial_route)
        self.req_host.value = host or self._default_host()
        self.refresh()

    # -- documents and form ------------------------------------------------------------------

    def _find(self, route: str | None) -> int:
        if route is None:
            return 0
        hits = [k for k, r in enumerate(self.routes) if route == r.label or route in r.label]
        if len(hits) != 1:
            raise ValueError(
                f"route {route!r} matches {len(hits)} of {[r.label for r in self.routes]}"
            )
        return hits[0]

    @property
    def ref(self) -> RouteRef:
        """The route being edited."""
        return self.routes[int(self.route_picker.value)]

    def form(self) -> RouteForm:
        """The form as the widgets show it."""
        return RouteForm(
            destinations=[s.description for s in self.sliders],
            weights=[int(s.value) for s in self.sliders],
            match_kind=self.match_kind.value,
            match_name=self.match_name.value,
            match_type=self.match_type.value,
            match_value=self.match_value.value,
            abort_percent=float(self.abort_percent.value),
            abort_status=int(self.abort_status.value),
            delay_percent=float(self.delay_percent.value),
            delay_s=float(self.delay_s.value),
            retries=bool(self.retries.value),
            attempts=int(self.attempts.value),
            per_try_timeout_s=float(self.per_try.value),
            retry_on=self.retry_on.value,
            timeout_s=float(self.timeout.value),
        )

    def _read(self, ref: RouteRef) -> RouteForm:
        doc = self._docs[ref.doc]
        if ref.http is None:
            return read_legacy(doc)
        return read_modern(doc["spec"]["http"][ref.http])

    def documents(self) -> list[dict[str, Any]]:
        """The config's documents with the form applied to the edited route."""
        docs = copy.deepcopy(self._docs)
        ref, form = self.ref, self.form()
        if ref.http is None:
            docs[ref.doc] = write_legacy(docs[ref.doc], form)
        else:
            docs[ref.doc]["spec"]["http"][ref.http] = write_modern(
                docs[ref.doc]["spec"]["http"][ref.http], form
            )
        return docs

    def _select(self, index: int) -> None:
        w = require_ipywidgets()
        self._busy = True
        try:
            self.route_picker.value = index
            form = self._read(self.routes[index])
            self.sliders = []
            for name, weight in zip(form.destinations, form.weights, strict=True):
                s = w.IntSlider(
                    value=weight,
                    min=0,
                    max=100,
                    description=name,
                    continuous_update=False,
                    style={"description_width": "9em"},
                    layout=w.Layout(width="28em"),
                )
                s.observe(self._on_weight, names="value")
                self.sliders.append(s)
            self.weight_box.children = self.sliders
            self.balance.disabled = len(self.sliders) != 2
            self.match_kind.value = form.match_kind
            self.match_name.value = form.match_name
            self.match_type.value = form.match_type
            self.match_value.value = form.match_value
            self.abort_percent.value = form.abort_percent
            self.abort_status.value = form.abort_status
            self.delay_percent.value = form.delay_percent
            self.delay_s.value = form.delay_s
            self.retries.value = form.retries
            self.attempts.value = form.attempts
            self.per_try.value = form.per_try_timeout_s
            self.retry_on.value = form.retry_on
            self.timeout.value = form.timeout_s
        finally:
            self._busy = False

    # -- events ------------------------------------------------------------------------------

    def _on_pick(self, change: dict[str, Any]) -> None:
        if self._busy:
            return
        # keep the edits of the route being left: the last refreshed config has them
        self._docs = [r.to_dict() for r in self.config]
        self._select(int(change["new"]))
        self.refresh()

    def _on_weight(self, change: dict[str, Any]) -> None:
        if self._busy:
            return
        if self.balance.value and len(self.sliders) == 2:
            other = self.sliders[1] if change["owner"] is self.sliders[0] else self.sliders[0]
            self._busy = True
            try:
                other.value = 100 - int(change["new"])
            finally:
                self._busy = False
        self.refresh()

    def _on_form(self, _: dict[str, Any]) -> None:
        if not self._busy:
            self.refresh()

    def _on_request(self, _: dict[str, Any]) -> None:
        if not self._busy:
            self._explain()

    # -- public operations -------------------------------------------------------------------

    def set_weights(self, *weights: int) -> None:
        """Set the destination weights (in order) as if the sliders were moved; one refresh."""
        if len(weights) != len(self.sliders):
            raise ValueError(f"expected {len(self.sliders)} weights, got {len(weights)}")
        self._busy = True
        try:
            for s, v in zip(self.sliders, weights, strict=True):
                s.value = int(v)
        finally:
            self._busy = False
        self.refresh()

    def set(self, **fields: Any) -> None:
        """Set form fields by :class:`RouteForm` name (``set(abort_percent=50)``); one refresh."""
        names = {
            "match_kind": self.match_kind, "match_name": self.match_name,
            "match_type": self.match_type, "match_value": self.match_value,
            "abort_percent": self.abort_percent, "abort_status": self.abort_status,
            "delay_percent": self.delay_percent, "delay_s": self.delay_s,
            "retries": self.retries, "attempts": self.attempts,
            "per_try_timeout_s": self.per_try, "retry_on": self.retry_on,
            "timeout_s": self.timeout,
        }  # fmt: skip
        unknown = sorted(set(fields) - set(names))
        if unknown:
            raise KeyError(f"unknown field(s) {unknown}; fields: {sorted(names)}")
        self._busy = True
        try:
            for k, v in fields.items():
                names[k].value = v
        finally:
            self._busy = False
        self.refresh()

    def explain(
        self, path: str = "/", headers: str = "", host: str | None = None
    ) -> Explanation | None:
        """Explain a request (as if typed into the request fields)."""
        self._busy = True
        try:
            self.req_path.value = path
            self.req_headers.value = headers
            if host is not None:
                self.req_host.value = host
        finally:
            self._busy = False
        self._explain()
        return self.explanation

    def yaml(self) -> str:
        """The YAML the preview shows."""
        converted = self.flavour.value.startswith("modern") and self.legacy
        return rules_yaml(self.config, self.ref.doc, converted=converted, profile=self.profile)

    def on_change(self, callback: Callable[[RuleDesigner], Any]) -> None:
        """Call *callback* with the designer after every refresh (the rules may have changed).

        The ApplyPanel and the VerifyPanel use it to clear a status that no longer holds.
        """
        self._listeners.append(callback)

    def reset(self) -> None:
        """Put the rules back as they were given (the Reset button); one refresh."""
        self._docs = copy.deepcopy(self._initial_docs)
        self.config = self._initial_config
        self._select(self._initial_route)
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the config from the form and update every view."""
        from istiolab.config import codecs, loads
        from istiolab.config.validate import validate
        from istiolab.envoy.compile import compile as compile_table
        from istiolab.errors import IstiolabError
        from istiolab.lab import findings_html

        self.updates += 1
        # shown at once (widget state is sent as it is set), replaced when the work is done
        self.status.value = message("updating…")
        if self.scenario is not None:
            self.share_view.value = message("updating… (simulating)")
        docs = self.documents()
        self.config = loads(codecs.dumps(docs), file="<designer>")
        self.findings = validate(self.config, self.profile)
        self.findings_view.value = findings_html(self.findings)
        self._render_preview()
        try:
            self.table = compile_table(self.config, self.profile)
        except IstiolabError as err:
            self.table = None
            self.status.value = message(f"does not compile: {err}", error=True)
        else:
            self.status.value = message(f"compiled: {len(self.table.routes())} Envoy route(s)")
        self._explain()
        if self.scenario is not None:
            self._simulate(docs)
        for callback in self._listeners:
            callback(self)

    def _render_preview(self) -> None:
        try:
            self.preview.value = pre(self.yaml())
        except Exception as err:  # a conversion problem is shown, not raised
            self.preview.value = message(f"cannot render: {err}", error=True)

    def _default_host(self) -> str:
        if self.scenario is not None:
            return self.scenario.traffic[0].host
        if self.table is None:
            try:
                from istiolab.envoy.compile import compile as compile_table

                self.table = compile_table(self.config, self.profile)
            except Exception:  # no table, no default
                return "example.com"
        for vh in self.table.virtual_hosts:
            for d in vh.domains:
                if "*" not in d:
                    return d
        return "example.com"

    def _explain(self) -> None:
        from istiolab.envoy.match import Request, explain
        from istiolab.lab import explanation_html

        if self.table is None:
            self.explanation = None
            self.explain_view.value = message("fix the errors to explain requests", error=True)
            return
        req = Request(
            path=self.req_path.value or "/",
            host=self.req_host.value or "example.com",
            headers=parse_headers(self.req_headers.value),
        )
        self.explanation = explain(self.table, req)
        self.explain_view.value = explanation_html(self.explanation)

    def _simulate(self, docs: list[dict[str, Any]]) -> None:
        from istiolab.sim.engine import simulate
        from istiolab.sim.fast.cache import warm_for

        assert self.scenario is not None
        if self.table is None:
            self.share_view.value = message("not simulated: the rules do not compile", error=True)
            return
        try:
            sc = self.scenario.with_overrides({"rules.inline": docs, "rules.paths": []})
            # a cold numba cache: the line says why the first run takes minutes
            warm_for(self.engine, sc, lambda line: setattr(self.share_view, "value", message(line)))
            self.result = simulate(sc, self.seed, engine=self.engine)
        except Exception as err:  # show why, keep the designer usable
            self.share_view.value = message(f"not simulated: {err}", error=True)
            return
        self.share_view.value = message(share_line(self.result))
        self.plot.value = png(traffic_figure(self.result))

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


__all__ = [
    "COOKIE_REGEX",
    "RouteForm",
    "RuleDesigner",
    "editable_routes",
    "parse_headers",
    "read_legacy",
    "read_modern",
    "write_legacy",
    "write_modern",
]
