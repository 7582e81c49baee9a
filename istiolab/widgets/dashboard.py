"""SimulationDashboard: scenario knobs, a Run button with progress and cancel, and plots.

The dashboard holds a :class:`~istiolab.sim.scenario.Scenario`; its knobs are declared as
:class:`~istiolab.widgets.params.ParamSpec` data (:data:`~istiolab.widgets.params.DASHBOARD_PARAMS`
by default) and become ``Scenario.with_overrides`` paths. *Run* sends the overridden scenario to
:func:`~istiolab.sim.engine.simulate` in a worker process (:mod:`istiolab.widgets.runner`); when
it finishes, the plot in view is redrawn (each other one when its tab is opened) from the
:class:`~istiolab.sim.results.Result` with the functions of :mod:`istiolab.lab.plots` and
:mod:`istiolab.lab.topology`.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from istiolab.lab.engine import session_engine
from istiolab.widgets._util import message, png, require_ipywidgets
from istiolab.widgets.params import (
    DASHBOARD_PARAMS,
    ParamSpec,
    has_event,
    make_widget,
    overrides,
)
from istiolab.widgets.runner import Job, Runner

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from istiolab.sim.results import Result
    from istiolab.sim.scenario import Scenario

PlotFn = Callable[["Result", "Scenario", "Axes"], Any]


def _plot(name: str) -> PlotFn:
    def fn(result: Result, scenario: Scenario, ax: Axes) -> Any:
        from istiolab.lab import plots

        return getattr(plots, name)(result, ax=ax)

    return fn


def _topology(result: Result, scenario: Scenario, ax: Axes) -> Any:
    from istiolab.lab import topology

    return topology.draw(scenario, result, ax=ax, fontsize=8)


DEFAULT_PLOTS: tuple[tuple[str, PlotFn], ...] = (
    ("latency", _plot("latency_over_time")),
    ("responses", _plot("responses_over_time")),
    ("share", _plot("share_over_time")),
    ("ingress load", _plot("utilisation_heatmap")),
    ("retries", _plot("retry_amplification")),
    ("topology", _topology),
)
"""Tabs of the dashboard: a title and ``f(result, scenario, ax)``."""


class SimulationDashboard:
    """Knobs, Run/Cancel, progress and plots for one scenario.

    Args:
        scenario: The base scenario (knobs start at its values).
        params: The knobs (default :data:`~istiolab.widgets.params.DASHBOARD_PARAMS`).
        plots: Tabs of plots (default :data:`DEFAULT_PLOTS`).
        seed: Seed of every run (same knobs and seed, same result).
        engine: Simulation engine of every run (see :func:`~istiolab.sim.engine.simulate`).
            Default: ``"auto"``, the compiled engine, which answers in hundredths of a second;
            ``"simpy"`` where the host declares a memory limit (``MEM_LIMIT``, as on Binder),
            as loading numba costs about 120 MiB and a second in the process that runs it (the
            worker, and the kernel for :meth:`run`); ``ISTIOLAB_ENGINE`` overrides it
            (:func:`~istiolab.lab.engine.session_engine`).

    Raises:
        ValueError: When *engine* is not one :func:`~istiolab.sim.engine.simulate` runs.

    Example:
        >>> from istiolab.lab import scenario
        >>> dash = SimulationDashboard(scenario("az-loss"))   # doctest: +SKIP
        >>> dash                                             # doctest: +SKIP
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        params: Sequence[ParamSpec] = DASHBOARD_PARAMS,
        plots: Sequence[tuple[str, PlotFn]] = DEFAULT_PLOTS,
        seed: int | None = 1,
        engine: str | None = None,
    ) -> None:
        self.engine = session_engine(engine)
        w = require_ipywidgets()
        self.base = scenario
        self.param_specs = tuple(params)
        self.plot_fns = tuple(plots)
        self.seed = seed
        self.result: Result | None = None
        self.last_scenario: Scenario | None = None
        self.runs = 0
        self._finished = threading.Event()
        self.knobs: dict[str, Any] = {p.path: make_widget(p, scenario) for p in self.param_specs}
        self._initial = {path: knob.value for path, knob in self.knobs.items()}
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.cancel_button = w.Button(description="Cancel", icon="stop", disabled=True)
        self.reset_button = w.Button(
            description="Reset", icon="undo", tooltip="knobs back to the scenario's values"
        )
        self.progress = w.FloatProgress(value=0.0, min=0.0, max=1.0, description="")
        self.status = w.HTML(message(f"{scenario.name}: set the knobs and press Run"))
        self.summary = w.HTML("")
        self.images = [w.Image(format="png") for _ in self.plot_fns]
        self.tabs = w.Tab(
            children=self.images,
            titles=[t for t, _ in self.plot_fns],
            layout=w.Layout(flex="1 1 30em", min_width="26em"),
        )
        # Only the tab in view is drawn when a run ends; another is drawn when it is opened
        # (each PNG costs about 0.2 s of CPU: drawing all six made every run a second slower).
        self._drawn: set[int] = set()
        self._shown: tuple[Scenario, Result] | None = None
        self.tabs.observe(lambda _: self._draw_tab(), names="selected_index")
        self.run_button.on_click(lambda _: self.start())
        self.cancel_button.on_click(lambda _: self.cancel())
        self.reset_button.on_click(lambda _: self.reset())
        for knob in self.knobs.values():
            knob.observe(self._on_knob, names="value")
        self.runner = Runner(on_progress=self._on_progress, on_finish=self._on_finish)
        controls = w.HBox([self.run_button, self.cancel_button, self.reset_button])
        panel = w.VBox(
            [*self.knobs.values(), controls, self.progress, self.status],
            layout=w.Layout(flex="0 0 31em"),
        )
        # the plots sit beside the knobs (they wrap below them only on a narrow screen)
        self.widget = w.VBox(
            [
                w.HTML(f"<b>{scenario.name}</b>: {scenario.description}"),
                w.HBox([panel, self.tabs], layout=w.Layout(flex_flow="row wrap")),
                self.summary,
            ]
        )
        self.widget.add_class("istiolab-dashboard")

    # -- model side ---------------------------------------------------------------------

    def overrides(self) -> dict[str, Any]:
        """The knobs' values as ``Scenario.with_overrides`` paths (only what changed)."""
        return overrides(self.param_specs, self.knobs, self.base)

    def params(self) -> dict[str, Any]:
        """What the knobs changed, as a result's swept parameters (toggles as booleans)."""
        out: dict[str, Any] = {
            k: v
            for k, v in self.overrides().items()
            if k != "events" and (v is None or isinstance(v, (bool, int, float, str)))
        }
        for p in self.param_specs:
            # only toggles that change the base's events are parameters of the run
            if p.kind == "event" and self.knobs[p.path].value != has_event(p, self.base):
                out[p.path] = bool(self.knobs[p.path].value)
        return out

    def scenario(self) -> Scenario:
        """The base scenario with the knobs applied."""
        ov = self.overrides()
        return self.base.with_overrides(ov) if ov else self.base

    def set(self, **values: Any) -> None:
        """Set knobs by path (``dash.set(**{"aws.lb": "alb"})``) or by event name."""
        for path, value in values.items():
            if path not in self.knobs:
                raise KeyError(f"no knob {path!r}; knobs: {sorted(self.knobs)}")
            self.knobs[path].value = value

    def reset(self) -> None:
        """Put every knob back to the scenario's value (the Reset button); plots stay."""
        for path, value in self._initial.items():
            self.knobs[path].value = value
        if self.result is not None:
            self.status.value = message("knobs reset: press Run to see the scenario as it was")

    def _on_knob(self, _: dict[str, Any]) -> None:
        # the plots are of the previous knobs: say so instead of keeping the old run's line
        if self.runner.busy:
            return
        if self.result is not None:
            self.status.value = message(
                f"knobs changed: press Run (the plots show run {self.runs})"
            )
            self.progress.value = 0.0
            self.progress.bar_style = ""

    def run(self) -> Result:
        """Run in this process and wait (what notebooks and tests call); redraws the plots.

        Raises:
            ConfigError: When the knobs make the scenario invalid.
        """
        from istiolab.sim.engine import simulate
        from istiolab.sim.fast.cache import warm_for

        sc = self.scenario()
        # a cold numba cache: the line says why the first run takes minutes
        warm_for(self.engine, sc, lambda line: setattr(self.status, "value", message(line)))
        self.status.value = message("updating… (simulating)")
        self.progress.value = 0.0
        self.progress.bar_style = "info"

        def advance(fraction: float) -> None:
            # widget state is sent at once, so the bar moves while the kernel is busy
            self.progress.value = max(float(self.progress.value), min(1.0, fraction))

        result = simulate(sc, self.seed, params=self.params(), progress=advance, engine=self.engine)
        self.progress.value = 1.0
        self.progress.bar_style = "success"
        self._show(sc, result)
        return result

    # -- background runs ----------------------------------------------------------------

    def start(self) -> Job | None:
        """Start a run in the worker process (the Run button); returns the job."""
        try:
            sc = self.scenario()
        except Exception as err:  # a bad knob combination is shown, not raised
            self.status.value = message(f"invalid knobs: {err}", error=True)
            return None
        self.last_scenario = sc
        self._finished.clear()
        self.run_button.disabled = True
        self.cancel_button.disabled = False
        self.progress.value = 0.0
        self.progress.bar_style = "info"
        self.status.value = message("updating… (simulating in the background)")
        return self.runner.submit(sc, self.seed, self.params(), engine=self.engine)

    def cancel(self) -> None:
        """Cancel the running job (the Cancel button)."""
        self.runner.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the background run ended and the plots were redrawn."""
        return self._finished.wait(timeout)

    def _on_progress(self, job: Job) -> None:
        self.progress.value = job.fraction

    def _on_finish(self, job: Job) -> None:
        try:
            self.run_button.disabled = False
            self.cancel_button.disabled = True
            if job.state == "done" and job.result is not None and self.last_scenario is not None:
                self.progress.value = 1.0
                self.progress.bar_style = "success"
                self._show(self.last_scenario, job.result, wall_s=job.wall_s)
            elif job.state == "cancelled":
                self.progress.bar_style = "warning"
                self.status.value = message("cancelled; the plots show the previous run")
            else:
                self.progress.bar_style = "danger"
                self.status.value = message(job.error or "the run failed", error=True)
        finally:
            self._finished.set()

    def _show(self, sc: Scenario, result: Result, wall_s: float | None = None) -> None:
        from istiolab.lab.display import flags_text, outcome_text

        self.result = result
        self.runs += 1
        self._shown = (sc, result)
        self._drawn = set()
        self._draw_tab()
        t = result.totals()
        took = f" in {wall_s:.1f} s" if wall_s is not None else ""
        self.status.value = message(
            f"run {self.runs}{took}: {t['requests']} requests, {t['rps']:.0f} req/s, "
            f"p99 {t['p99_ms']:.1f} ms; {outcome_text(result)}"
        )
        flags = flags_text(t.get("flags", {}))
        head = f"<p>{html.escape(flags)}</p>" if flags else ""
        self.summary.value = head + (result._repr_html_() or "")

    def _draw_tab(self) -> None:
        """Draw the plot of the tab in view for the last run, unless it is drawn already."""
        from matplotlib.figure import Figure

        index = self.tabs.selected_index
        if self._shown is None or index is None or index in self._drawn:
            return
        sc, result = self._shown
        title, fn = self.plot_fns[index]
        fig = Figure(figsize=(7.0, 3.8), layout="constrained")
        try:
            fn(result, sc, fig.add_subplot())
        except Exception as err:  # a broken plot says why in its tab
            fig.clear()
            fig.text(0.02, 0.5, f"{title}: {type(err).__name__}: {err}", color="#b00020")
        self.images[index].value = png(fig)
        self._drawn.add(index)

    def close(self) -> None:
        """Stop the worker process and close the widgets."""
        self.runner.close()
        self.widget.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
