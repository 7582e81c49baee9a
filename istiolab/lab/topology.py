"""The topology of a scenario as a networkx graph, and a layered drawing of it.

:func:`graph` builds what :func:`~istiolab.sim.engine.simulate` wires for a
:class:`~istiolab.sim.scenario.Scenario`, one layer per stage of the seed's architecture::

    client ─► lb (one node per AZ) ─► ingress_node ─► gateway_pod ─► route ─► cluster ─► pod

Node keys are ``"<kind>:<name>"`` (``"lb:us-east-1a"``, ``"route:canary"``). Every node has
``kind``, ``layer`` (0–6), ``name`` and, where it has one, ``az``. Edges have ``kind``:
``dns`` (client → LB node of an AZ, with ``share``), ``target`` (LB node → ingress node, or →
gateway pod for ``ip`` targets; ``cross_zone`` marks another AZ), ``kube_proxy`` (ingress node
→ gateway pod; ``cross_node`` marks a pod on another node, which only ``Cluster`` traffic policy
allows), ``route`` (gateway pod → route), ``weighted`` (route → cluster, with ``weight`` and
``percent``) and ``endpoint`` (cluster → pod). Names are the engine's: ingress nodes
``ingress-<az>-<i>``, gateway pods ``istio-ingressgateway-<k>``, pods ``<service>-<version>-<i>``.

:func:`annotate` adds what a :class:`~istiolab.sim.results.Result` measured: ``rps`` and
``error_share`` (the share of responses with status ≥ 500) on every edge whose flow the result
states exactly (LB → ingress node when a node has one way in, ingress node → gateway pod when
the node has one pod, route → cluster, cluster → pod, and gateway pod → route with one gateway
pod), and on the nodes (clients, ingress nodes, routes, clusters, pods) otherwise. The client →
LB edges get the client's rate split by the DNS shares (``rps`` only: which AZ a failure came
through is not measured).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import networkx as nx

from istiolab.sim.engine import build_table

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from istiolab.sim.results import Result
    from istiolab.sim.scenario import Scenario

__all__ = [
    "ERROR_LEVELS",
    "KIND_COLOURS",
    "LABEL_PT",
    "LAYERS",
    "annotate",
    "draw",
    "graph",
    "layout",
]

LAYERS = ("client", "lb", "ingress_node", "gateway_pod", "route", "cluster", "pod")
"""Layer names, left to right."""

KIND_COLOURS = {
    "client": "#7f7f7f",
    "lb": "#ff9900",  # AWS orange
    "ingress_node": "#2f5f8f",
    "gateway_pod": "#466bb0",
    "route": "#8e44ad",
    "cluster": "#1b7f3b",
    "pod": "#16a085",
}
"""Fill colour of each kind of node in :func:`draw`."""


def _key(kind: str, name: str) -> str:
    return f"{kind}:{name}"


def _add(g: nx.DiGraph, kind: str, name: str, **attrs: Any) -> str:
    key = _key(kind, name)
    g.add_node(key, kind=kind, layer=LAYERS.index(kind), name=name, **attrs)
    return key


def graph(scenario: Scenario, result: Result | None = None) -> nx.DiGraph:
    """The scenario's pipeline as a layered directed graph.

    Args:
        scenario: The scenario (its rules are compiled to list routes and clusters).
        result: A run of the scenario; when given, :func:`annotate` adds the measured flows.

    Returns:
        A new ``DiGraph`` (see the module docstring for node and edge attributes).

    Raises:
        ConfigError: When the scenario's rules do not compile.
    """
    sc = scenario
    table, _ = build_table(sc)
    g = nx.DiGraph(scenario=sc.name, lb=sc.aws.lb, cross_zone=sc.aws.cross_zone_enabled)
    azs = list(sc.ingress.azs)

    for t in sc.traffic:
        c = _add(g, "client", t.name, host=t.host)
        split = t.az_split or {az: 1.0 / len(azs) for az in azs}
        for az, share in split.items():
            if share > 0:
                g.add_edge(c, _key("lb", az), kind="dns", share=share)
    for az in azs:
        _add(g, "lb", az, az=az, lb=sc.aws.lb)

    # Ingress nodes and gateway pods, placed as the engine places them.
    nodes = sc.ingress.nodes()
    for name, az in nodes:
        _add(g, "ingress_node", name, az=az)
    placement = [nodes[i] for i in sc.ingress.gateway_nodes()]
    gw_pods: list[tuple[str, str, str]] = []  # (pod, node, az)
    for k, (node, az) in enumerate(placement):
        pod = f"istio-ingressgateway-{k}"
        _add(g, "gateway_pod", pod, az=az, node=node)
        gw_pods.append((pod, node, az))

    cross_zone = sc.aws.cross_zone_enabled
    local = sc.aws.external_traffic_policy == "Local"
    if sc.aws.target_type == "ip":
        for az in azs:
            for pod, _, paz in gw_pods:
                if paz == az or cross_zone:
                    g.add_edge(
                        _key("lb", az),
                        _key("gateway_pod", pod),
                        kind="target",
                        cross_zone=paz != az,
                    )
        for pod, node, _ in gw_pods:
            g.add_edge(_key("ingress_node", node), _key("gateway_pod", pod), kind="hosts")
    else:
        for az in azs:
            for name, naz in nodes:
                if naz == az or cross_zone:
                    g.add_edge(
                        _key("lb", az),
                        _key("ingress_node", name),
                        kind="target",
                        cross_zone=naz != az,
                    )
        for name, _ in nodes:
            for pod, node, _ in gw_pods:
                if node == name or not local:
                    g.add_edge(
                        _key("ingress_node", name),
                        _key("gateway_pod", pod),
                        kind="kube_proxy",
                        cross_node=node != name,
                    )

    # Routes and clusters from the compiled table (the one the router executes).
    for vh in table.virtual_hosts:
        for r in vh.routes:
            rk = _key("route", r.name)
            if rk not in g:
                action = (
                    "redirect"
                    if r.redirect is not None
                    else "direct_response"
                    if r.direct_response is not None
                    else "route"
                )
                _add(g, "route", r.name, virtual_host=vh.name, action=action)
            for pod, _, _ in gw_pods:
                g.add_edge(_key("gateway_pod", pod), rk, kind="route")
            total = r.total_weight
            for wc in r.clusters:
                ck = _key("cluster", wc.name)
                if ck not in g:
                    _add(g, "cluster", wc.name, host=wc.host, subset=wc.subset or "")
                g.add_edge(
                    rk,
                    ck,
                    kind="weighted",
                    weight=wc.weight,
                    percent=100.0 * wc.weight / total if total else 0.0,
                )

    # Backend pods and the clusters whose host and subset labels select them.
    pods: list[tuple[str, str, dict[str, str]]] = []  # (pod, service FQDN, labels)
    for svc in sc.services:
        for ver in svc.versions:
            labels = {"app": svc.name, **ver.pod_labels}
            for i, az in enumerate(ver.pod_azs(list(azs))):
                name = f"{svc.name}-{ver.name}-{i}"
                _add(g, "pod", name, az=az, service=svc.name, version=ver.name)
                pods.append((name, svc.host, labels))
    for cname, policy in table.clusters.items():
        ck = _key("cluster", cname)
        if ck not in g:
            _add(g, "cluster", cname, host=policy.host, subset=policy.subset)
        for name, host, labels in pods:
            if host == policy.host and all(labels.get(k) == v for k, v in policy.labels):
                g.add_edge(ck, _key("pod", name), kind="endpoint")
    if result is not None:
        annotate(g, result)
    return g


def _err(success_ratio: float) -> float:
    return max(0.0, 1.0 - float(success_ratio))


def annotate(g: nx.DiGraph, result: Result) -> nx.DiGraph:
    """Add the flows a result measured (``rps``, ``error_share``) to *g*, in place.

    Args:
        g: A graph from :func:`graph` for the scenario that *result* ran.
        result: The run.

    Returns:
        *g*, for chaining.
    """
    cfg = result.meta.get("config", {})
    window = max(float(cfg.get("duration_s", 1.0)) - float(cfg.get("warmup_s", 0.0)), 1e-9)
    totals = result.totals()
    for n, data in g.nodes(data=True):
        if (
            data["kind"] == "client"
            and sum(1 for _, d in g.nodes(data=True) if d["kind"] == "client") == 1
        ):
            g.nodes[n].update(rps=totals["rps"], error_share=_err(totals["success_ratio"]))
            # DNS spreads the clients over the LB's AZs by the scenario's shares: the client's
            # measured rate split the same way (its errors are not known per AZ)
            for _, lb, d in g.out_edges(n, data=True):
                if d["kind"] == "dns" and "share" in d:
                    g.edges[n, lb]["rps"] = float(totals["rps"]) * float(d["share"])

    for row in result.ingress().to_dict("records"):
        key = _key("ingress_node", str(row["ingress_node"]))
        if key not in g:
            continue
        flow = {"rps": float(row["rps"]), "error_share": _err(float(row["success_ratio"]))}
        g.nodes[key].update(flow)
        ins = list(g.in_edges(key))
        if len(ins) == 1:
            g.edges[ins[0]].update(flow)
        outs = [e for e in g.out_edges(key) if g.edges[e]["kind"] == "kube_proxy"]
        if len(outs) == 1 and g.in_degree(outs[0][1]) == 1:
            g.edges[outs[0]].update(flow)

    summary = result.summary()
    summary = summary[summary["route"] != "-"]
    gw = [n for n, d in g.nodes(data=True) if d["kind"] == "gateway_pod"]
    for route, rows in summary.groupby("route", sort=False):
        rk = _key("route", str(route))
        if rk not in g:
            continue
        rps = float(rows["rps"].sum())
        ok = float((rows["success_ratio"] * rows["requests"]).sum())
        n_req = float(rows["requests"].sum())
        flow = {"rps": rps, "error_share": _err(ok / n_req) if n_req else 0.0}
        g.nodes[rk].update(flow)
        if len(gw) == 1 and g.has_edge(gw[0], rk):
            g.edges[gw[0], rk].update(flow)
        for row in rows.to_dict("records"):
            ck = _key("cluster", str(row["cluster"]))
            if g.has_edge(rk, ck):
                g.edges[rk, ck].update(
                    rps=float(row["rps"]), error_share=_err(float(row["success_ratio"]))
                )

    up = result.upstream()
    if not up.empty:
        up = up.assign(bad=up["attempts"].where((up["status"] >= 500) | (up["status"] == 0), 0))
        for (cluster, host), rows in up.groupby(["cluster", "host"], sort=False):
            ck, pk = _key("cluster", str(cluster)), _key("pod", str(host))
            attempts = float(rows["attempts"].sum())
            flow = {"rps": attempts / window, "error_share": float(rows["bad"].sum()) / attempts}
            if g.has_edge(ck, pk):
                g.edges[ck, pk].update(flow)
            if pk in g:
                prev = g.nodes[pk]
                prev_rps = float(prev.get("rps", 0.0))
                bad = (
                    float(prev.get("error_share", 0.0)) * prev_rps
                    + flow["error_share"] * flow["rps"]
                )
                total = prev_rps + flow["rps"]
                prev.update(rps=total, error_share=bad / total if total else 0.0)
        for cluster, rows in up.groupby("cluster", sort=False):
            ck = _key("cluster", str(cluster))
            if ck in g:
                attempts = float(rows["attempts"].sum())
                g.nodes[ck].update(
                    rps=attempts / window, error_share=float(rows["bad"].sum()) / attempts
                )
    return g


def layout(g: nx.DiGraph) -> dict[str, tuple[float, float]]:
    """Positions: one column per layer, nodes spread evenly top to bottom (grouped by AZ)."""
    columns: dict[int, list[str]] = {}
    for n, d in g.nodes(data=True):
        columns.setdefault(int(d["layer"]), []).append(n)
    pos: dict[str, tuple[float, float]] = {}
    for layer, members in columns.items():
        if layer <= LAYERS.index("gateway_pod"):
            # the AWS side is grouped by AZ; routes, clusters and pods by name (version)
            members.sort(
                key=lambda n: (str(g.nodes[n].get("az", "")), _natural(g.nodes[n]["name"]))
            )
        else:
            members.sort(key=lambda n: _natural(g.nodes[n]["name"]))
        k = len(members)
        for i, n in enumerate(members):
            y = 0.5 if k == 1 else 1.0 - i / (k - 1)
            pos[n] = (float(layer), y)
    return pos


def _natural(text: str) -> tuple[Any, ...]:
    import re

    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def _short(d: dict[str, Any]) -> str:
    kind, name = d["kind"], str(d["name"])
    if kind == "cluster":
        host = str(d.get("host", "")).split(".")[0]
        return f"{host}/{d['subset']}" if d.get("subset") else host
    if kind == "gateway_pod":
        return name.replace("istio-ingressgateway-", "gw-")
    if kind == "ingress_node":
        return name.replace("ingress-", "node ")
    if kind == "lb":
        return f"{str(d.get('lb', 'lb')).upper()} {name}"
    return name


def _flow_text(d: dict[str, Any]) -> str:
    text = f"{d['rps']:.0f}/s"
    if d.get("error_share", 0.0) >= 0.0005:
        text += f" {100 * d['error_share']:.1f}% failed"
    return text


ERROR_LEVELS: tuple[tuple[float, str, str], ...] = (
    (0.10, "#c0392b", "≥ 10 % failed"),
    (0.01, "#e67e22", "1–10 % failed"),
    (0.0, "#5d6d7e", "< 1 % failed"),
)
"""Edge colours by the share of failed responses (5xx and resets): threshold, colour, legend."""

LABEL_PT = 12.0
"""Font size of node names at the default figure size (legible when projected)."""


def _error_colour(share: float) -> str:
    for threshold, colour, _ in ERROR_LEVELS:
        if share >= threshold:
            return colour
    return ERROR_LEVELS[-1][1]


def draw(
    g: nx.DiGraph | Scenario,
    result: Result | None = None,
    *,
    ax: Axes | None = None,
    edge_labels: bool = True,
    fontsize: float = LABEL_PT,
) -> Axes:
    """Draw the topology in layers, left to right; with a result, label the flows.

    Made to be projected: node names at *fontsize* points (12 by default) on a white box above
    the edges; edges are arrows in the direction of the traffic, as wide as their request rate
    and coloured by their share of failed responses (5xx and resets, :data:`ERROR_LEVELS`); a
    legend names the node kinds, the error colours and the width scale.

    Args:
        g: A graph from :func:`graph`, or a scenario (its graph is built).
        result: A run to annotate the graph with (:func:`annotate`).
        ax: Axes to draw on; default a new Figure's, sized for the graph.
        edge_labels: Write the request rate and failed share on edges that have them.
        fontsize: Node label size in points (edge labels are one point smaller).

    Returns:
        The Axes. Nodes are one ``PathCollection`` per kind (labelled with the kind, for the
        legend), edges one ``FancyArrowPatch`` each (in ``ax.patches``, in graph edge order);
        node names and flows are ``Text`` artists.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch

    if not isinstance(g, nx.DiGraph):
        g = graph(g)
    if result is not None:
        g = annotate(g.copy(), result)
    if ax is None:
        from matplotlib.figure import Figure

        rows = max(_layer_sizes(g).values(), default=1)
        height = max(5.0, 0.62 * rows + 2.2)
        ax = Figure(figsize=(15.0, height), layout="constrained").add_subplot()
    pos = layout(g)
    node_size = 260.0  # points², so the marker radius is about 9 pt
    shrink = 11.0  # points: arrows stop at the marker's edge

    max_rps = max((float(d.get("rps", 0.0)) for _, _, d in g.edges(data=True)), default=0.0)
    for u, v, d in g.edges(data=True):
        faint = d.get("cross_zone") or d.get("cross_node") or d["kind"] == "hosts"
        err = float(d.get("error_share", 0.0))
        rps = float(d.get("rps", 0.0))
        width = 1.0 + (7.0 * rps / max_rps if max_rps > 0 else 0.0)
        arrow = FancyArrowPatch(
            pos[u],
            pos[v],
            arrowstyle=(
                f"-|>,head_length={0.5 + 0.08 * width:.2f},head_width={0.3 + 0.05 * width:.2f}"
            ),
            mutation_scale=12,
            linewidth=width,
            color=_error_colour(err),
            alpha=0.35 if faint and err < 0.01 else 0.85,
            linestyle="--" if faint else "-",
            shrinkA=shrink,
            shrinkB=shrink,
            zorder=1,
        )
        # Arrows run between node positions, inside the axes: leaving them out of the layout
        # saves constrained layout measuring each one (half the cost of drawing a topology).
        arrow.set_in_layout(False)
        ax.add_patch(arrow)

    label_box = {"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.9}
    for kind in LAYERS:
        members = [n for n, d in g.nodes(data=True) if d["kind"] == kind]
        if not members:
            continue
        xs = [pos[n][0] for n in members]
        ys = [pos[n][1] for n in members]
        rims = [
            ERROR_LEVELS[0][1] if float(g.nodes[n].get("error_share", 0.0)) >= 0.01 else "white"
            for n in members
        ]
        ax.scatter(
            xs,
            ys,
            s=node_size,
            c=KIND_COLOURS[kind],
            label=kind.replace("_", " "),
            zorder=3,
            edgecolors=rims,
            linewidths=2.0,
        )
        for n in members:
            d = g.nodes[n]
            text = _short(d)
            labelled_in = [e for e in g.in_edges(n, data=True) if "rps" in e[2]]
            if "rps" in d and not (kind == "pod" and len(labelled_in) == 1 and edge_labels):
                text += "\n" + _flow_text(d)
            last = kind == LAYERS[-1]  # the last column is labelled on its right, clear of arrows
            ax.annotate(
                text,
                xy=pos[n],
                xytext=(12, 0) if last else (0, -12),
                textcoords="offset points",
                fontsize=fontsize,
                ha="left" if last else "center",
                va="center" if last else "top",
                zorder=6,
                bbox=label_box,
            )

    if edge_labels:
        for u, v, d in g.edges(data=True):
            if "rps" not in d or d["kind"] in ("kube_proxy", "target", "route"):
                # these edges carry the same flow as the node they enter, which is labelled
                continue
            _edge_text(
                ax,
                pos[u],
                pos[v],
                _flow_text(d),
                fontsize - 1,
                _error_colour(float(d.get("error_share", 0.0))),
                # towards the pods, clear of the cluster's own label
                at=0.62 if d["kind"] == "endpoint" else 0.45,
            )
        for u, v, d in g.edges(data=True):
            if d["kind"] == "weighted" and "rps" not in d and len(list(g.successors(u))) > 1:
                _edge_text(ax, pos[u], pos[v], f"{d['percent']:.0f} %", fontsize - 1, "#333333")

    ax.set_xlim(-0.5, len(LAYERS) - 0.1)
    ax.set_ylim(-0.3, 1.08)
    ax.set_xticks(range(len(LAYERS)), [k.replace("_", " ") for k in LAYERS], fontsize=fontsize)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    title = f"{g.graph.get('scenario', 'scenario')}: {str(g.graph.get('lb', '')).upper()}"
    title += ", cross-zone on" if g.graph.get("cross_zone") else ", cross-zone off"
    flows = result is not None or _has_flows(g)
    ax.set_title(title + (" (flows measured)" if flows else ""), fontsize=fontsize + 2)

    handles = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markersize=10,
            color=KIND_COLOURS[k],
            label=k.replace("_", " "),
        )
        for k in LAYERS
        if any(d["kind"] == k for _, d in g.nodes(data=True))
    ]
    if flows:
        handles += [
            Line2D([], [], color=colour, linewidth=4, label=text)
            for _, colour, text in ERROR_LEVELS
        ]
        handles.append(
            Line2D(
                [], [], color="#5d6d7e", linewidth=8, label=f"width ∝ req/s (max {max_rps:.0f}/s)"
            )
        )
    handles.append(Line2D([], [], color="#5d6d7e", linestyle="--", label="cross-zone / cross-node"))
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.1),
        ncols=min(6, len(handles)),
        fontsize=fontsize - 1,
        frameon=False,
    )
    return ax


def _edge_text(
    ax: Axes,
    start: tuple[float, float],
    end: tuple[float, float],
    text: str,
    fontsize: float,
    colour: str,
    at: float = 0.5,
) -> None:
    (x0, y0), (x1, y1) = start, end
    ax.text(
        x0 + at * (x1 - x0),
        y0 + at * (y1 - y0),
        text,
        fontsize=fontsize,
        ha="center",
        va="center",
        color=colour,
        zorder=5,
        bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.85},
    )


def _layer_sizes(g: nx.DiGraph) -> dict[int, int]:
    sizes: dict[int, int] = {}
    for _, d in g.nodes(data=True):
        sizes[int(d["layer"])] = sizes.get(int(d["layer"]), 0) + 1
    return sizes


def _has_flows(g: nx.DiGraph) -> bool:
    return any("rps" in d for _, d in g.nodes(data=True))
