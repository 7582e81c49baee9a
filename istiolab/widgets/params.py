"""Widget parameters declared as data (after Mesa's ``model_params``).

A :class:`ParamSpec` names a dotted path into a :class:`~istiolab.sim.scenario.Scenario` (the
same paths as ``Scenario.with_overrides`` and ``istiolab simulate --set``), how to show it and
its range. :func:`make_widget` builds the ipywidget, reading the initial value from the scenario;
:func:`overrides` turns widget values back into the overrides dict. Failure toggles are
``kind="event"`` parameters whose ``event`` builds the scheduled event to add.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from istiolab.widgets._util import require_ipywidgets

if TYPE_CHECKING:
    from istiolab.sim.scenario import Scenario

Kind = Literal["int", "float", "choice", "bool", "event"]
_MISSING = object()


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """One scenario knob.

    Attributes:
        path: Dotted scenario path (``"aws.lb"``, ``"traffic.0.arrival.rate_rps"``); for
            ``event`` parameters a name only.
        label: What the widget says.
        kind: ``int``/``float`` (slider), ``choice`` (dropdown), ``bool`` (checkbox) or
            ``event`` (checkbox that adds a scheduled event).
        min: Slider minimum.
        max: Slider maximum.
        step: Slider step.
        options: Dropdown options: values, or ``(label, value)`` pairs.
        event: For ``event`` parameters: builds the event (a mapping as in the scenario YAML)
            from the scenario.
        help: A tooltip.
    """

    path: str
    label: str
    kind: Kind = "int"
    min: float = 0
    max: float = 100
    step: float = 1
    options: Sequence[Any] = ()
    event: Callable[[Scenario], dict[str, Any]] | None = None
    help: str = ""


def get_dotted(scenario: Scenario, path: str) -> Any:
    """Value at a dotted path of the scenario, or :data:`MISSING` when it does not exist.

    List items are addressed by index or by ``name``, as in ``Scenario.with_overrides``.
    """
    cur: Any = scenario.model_dump(mode="python")
    for part in path.split("."):
        if isinstance(cur, list):
            if part.lstrip("-").isdigit() and -len(cur) <= int(part) < len(cur):
                cur = cur[int(part)]
                continue
            named = [x for x in cur if isinstance(x, dict) and x.get("name") == part]
            if not named:
                return _MISSING
            cur = named[0]
        elif isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return _MISSING
    return cur


MISSING = _MISSING
"""What :func:`get_dotted` returns for a path that is not in the scenario."""


def _options(spec: ParamSpec) -> list[tuple[str, Any]]:
    out = []
    for o in spec.options:
        if isinstance(o, tuple) and len(o) == 2:
            out.append((str(o[0]), o[1]))
        else:
            out.append((str(o), o))
    return out


def make_widget(spec: ParamSpec, scenario: Scenario) -> Any:
    """The ipywidget for *spec*, set to the scenario's value.

    A knob whose path is missing or holds a value the widget cannot show (e.g. a per-AZ mapping
    for an int slider) is disabled and says why in its tooltip.
    """
    w = require_ipywidgets()
    style = {"description_width": "11em"}
    layout = w.Layout(width="30em")
    if spec.kind == "event":
        # the box shows whether the run will have the event: a scenario that already loses
        # the AZ starts checked, and unchecking it removes the scenario's own event
        return w.Checkbox(
            value=has_event(spec, scenario),
            description=spec.label,
            tooltip=spec.help,
            style=style,
            layout=layout,
        )
    value = get_dotted(scenario, spec.path)
    usable = value is not _MISSING
    if spec.kind in ("int", "float"):
        usable = usable and isinstance(value, (int, float)) and not isinstance(value, bool)
        cls = w.IntSlider if spec.kind == "int" else w.FloatSlider
        num = value if usable else spec.min
        widget = cls(
            value=min(max(num, spec.min), spec.max),
            min=spec.min,
            max=spec.max,
            step=spec.step,
            description=spec.label,
            continuous_update=False,
            style=style,
            layout=layout,
        )
    elif spec.kind == "choice":
        opts = _options(spec)
        values = [v for _, v in opts]
        usable = usable and value in values
        widget = w.Dropdown(
            options=opts,
            value=value if usable else values[0],
            description=spec.label,
            style=style,
            layout=layout,
        )
    else:
        usable = usable and isinstance(value, bool)
        widget = w.Checkbox(
            value=bool(value) if usable else False,
            description=spec.label,
            style=style,
            layout=layout,
        )
    widget.tooltip = spec.help if usable else f"{spec.path} is not a single value in this scenario"
    widget.disabled = not usable
    return widget


def event_kind(spec: ParamSpec, scenario: Scenario) -> str:
    """The ``kind`` of the event an ``event`` knob adds (``az_loss``, ``pod_crash``, …)."""
    if spec.event is None:
        return ""
    return str(spec.event(scenario).get("kind", ""))


def has_event(spec: ParamSpec, scenario: Scenario) -> bool:
    """Whether *scenario* already has an event of the kind the ``event`` knob *spec* adds."""
    kind = event_kind(spec, scenario)
    return bool(kind) and any(e.kind == kind for e in scenario.events)


def overrides(
    specs: Sequence[ParamSpec], widgets: Mapping[str, Any], scenario: Scenario
) -> dict[str, Any]:
    """The ``with_overrides`` dict for the widgets' values that differ from the scenario's.

    Event toggles add or remove events: a checked toggle whose kind the scenario lacks adds its
    event after the scenario's own; an unchecked toggle removes the scenario's events of its
    kind. ``events`` is only in the dict when the events change.
    """
    out: dict[str, Any] = {}
    for spec in specs:
        widget = widgets[spec.path]
        if widget.disabled or spec.kind == "event":
            continue
        if widget.value != get_dotted(scenario, spec.path):
            out[spec.path] = widget.value
    toggles = [s for s in specs if s.kind == "event" and s.event is not None]
    if not toggles:
        return out
    # events are placed in the run as the other knobs shape it (e.g. its new duration)
    shaped = scenario.with_overrides(out) if out else scenario
    removed = {event_kind(s, shaped) for s in toggles if not widgets[s.path].value}
    added = [
        s.event(shaped)
        for s in toggles
        if s.event is not None and widgets[s.path].value and not has_event(s, scenario)
    ]
    own = [e for e in scenario.events if e.kind not in removed]
    if added or len(own) != len(scenario.events):
        out["events"] = [e.model_dump(mode="json", exclude_defaults=True) for e in own] + added
    return out


def _first(scenario: Scenario) -> tuple[str, str]:
    svc = scenario.services[0]
    return svc.name, svc.versions[0].name


def _at(scenario: Scenario) -> float:
    """A third of the way into the measured part of the run."""
    run = scenario.run
    return round(run.warmup_s + (run.duration_s - run.warmup_s) / 3, 3)


DASHBOARD_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "traffic.0.arrival.rate_rps",
        "offered load (req/s)",
        "int",
        10,
        4000,
        10,
        help="Poisson arrival rate of the first client population",
    ),
    ParamSpec("ingress.nodes_per_az", "ingress nodes per AZ", "int", 1, 8, 1),
    ParamSpec("ingress.concurrency", "Envoy workers per pod", "int", 1, 8, 1),
    ParamSpec(
        "services.0.versions.0.replicas_per_az",
        "backend pods per AZ",
        "int",
        0,
        12,
        1,
        help="pods per AZ of the first version of the first service",
    ),
    ParamSpec("aws.lb", "AWS load balancer", "choice", options=("nlb", "alb", "clb")),
    ParamSpec(
        "aws.cross_zone",
        "cross-zone",
        "choice",
        options=(("AWS default", None), ("on", True), ("off", False)),
        help="default: NLB and CLB off, ALB on",
    ),
    ParamSpec("run.duration_s", "simulated seconds", "float", 2, 120, 1),
    ParamSpec(
        "az_loss",
        "lose the first AZ",
        "event",
        event=lambda sc: {"at_s": _at(sc), "kind": "az_loss", "az": sc.ingress.azs[0]},
        help="every ingress node and pod of the first AZ dies a third into the run",
    ),
    ParamSpec(
        "pod_crash",
        "crash a backend pod",
        "event",
        event=lambda sc: {
            "at_s": _at(sc),
            "kind": "pod_crash",
            "service": _first(sc)[0],
            "version": _first(sc)[1],
            "count": 1,
        },
    ),
    ParamSpec(
        "error_burst",
        "backend error burst (50 % 503)",
        "event",
        event=lambda sc: {
            "at_s": _at(sc),
            "kind": "error_burst",
            "service": _first(sc)[0],
            "version": _first(sc)[1],
            "probability": 0.5,
            "status": 503,
            "duration_s": round((sc.run.duration_s - sc.run.warmup_s) / 3, 3),
        },
    ),
)
"""The knobs of :class:`~istiolab.widgets.SimulationDashboard`: load, ingress nodes and
workers, backend pods, LB type, cross-zone, run length, and three failure toggles."""
