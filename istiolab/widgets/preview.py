"""What the RuleDesigner shows of its rules and of a simulated run, from public API objects.

The designer's widgets decide nothing: these functions turn a :class:`~istiolab.config.ConfigSet`
into the YAML of the preview, and a simulated :class:`~istiolab.sim.results.Result` into the
traffic-share line and the two plots under it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from istiolab.config import ConfigSet
    from istiolab.sim.results import Result

ROUTING_KINDS = frozenset(
    {
        "VirtualService",
        "DestinationRule",
        "Gateway",
        "RouteRule",
        "EnvoyFilter",
        "DestinationPolicy",
        "Ingress",
    }
)
"""The kinds the preview shows (the routing config; services, deployments and the rest are not)."""


def rules_yaml(config: ConfigSet, edited: int, *, converted: bool, profile: str | None) -> str:
    """The routing resources of *config* as YAML.

    Args:
        config: The rules.
        edited: Index of the resource being edited; it comes first.
        converted: Show legacy input as :func:`~istiolab.config.convert.convert` rewrites it
            rather than as written.
        profile: Istio profile of the conversion.
    """
    from istiolab.config import dumps

    if converted:
        from istiolab.config.convert import convert

        return dumps([r for r in convert(config, profile).config if r.kind in ROUTING_KINDS])
    # the edited resource first, then the rest of the routing config
    first = config.resources[edited] if edited < len(config) else None
    rest = [r for r in config if r.kind in ROUTING_KINDS and r is not first]
    return dumps(([first] if first is not None else []) + rest)


def share_line(result: Result) -> str:
    """Traffic share per version, the outcomes (non-5xx ratio included) and p99 of a run."""
    from istiolab.lab.display import flags_text, outcome_text

    summary = result.summary()
    total = summary["requests"].sum()
    shares = summary.groupby("version")["requests"].sum() / (total or 1)
    t = result.totals()
    return (
        "share: "
        + ", ".join(
            f"{v if v not in ('', '-') else 'local reply'} {100 * s:.1f} %"
            for v, s in shares.items()
        )
        + f"; {outcome_text(result)}; p99 {t['p99_ms']:.1f} ms"
        + (f". {flags}" if (flags := flags_text(t.get("flags", {}))) else "")
    )


def traffic_figure(result: Result) -> Figure:
    """Share per version above responses by status over time (a column beside the controls)."""
    from matplotlib.figure import Figure

    from istiolab.lab import plots

    fig = Figure(figsize=(6.0, 5.2))
    axes = fig.subplots(2, 1, sharex=True)
    plots.share_over_time(result, ax=axes[0])
    plots.responses_over_time(result, ax=axes[1])
    # Fixed margins, not constrained layout: the figure is redrawn on every slider step, and
    # measuring every tick label for the layout took 40 % of its 0.17 s.
    fig.subplots_adjust(left=0.1, right=0.97, top=0.94, bottom=0.09, hspace=0.38)
    return fig


__all__ = ["ROUTING_KINDS", "rules_yaml", "share_line", "traffic_figure"]
