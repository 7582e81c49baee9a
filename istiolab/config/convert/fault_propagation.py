"""Pilot 0.2's per-cluster fault filters, carried over to the other routes they also hit."""

from __future__ import annotations

import copy
from typing import Any

from istiolab.config.convert.state import _VS, _ConverterState, _Placed


def _merge_match(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any] | None:
    """AND of two HTTPMatchRequest dicts, or None when one field would need two conditions."""
    out = copy.deepcopy(a)
    for key, value in b.items():
        if key == "headers":
            headers = out.setdefault("headers", {})
            for name, cond in value.items():
                if name in headers and headers[name] != cond:
                    return None
                headers[name] = cond
        elif key in out and out[key] != value:
            return None
        else:
            out[key] = value
    return out


class _FaultPropagation(_ConverterState):
    def propagate_faults(self) -> None:
        """Apply Pilot 0.2's per-cluster fault filters to the other routes they also hit.

        Pilot 0.2 did not put a fault on its route: it added an Envoy fault filter per upstream
        cluster of the rule, matching only the rule's header conditions. The filter then fired
        for every request to that cluster on the listener, whichever route chose it.
        """
        for group in (
            [r for vs in self.ingress_vss if not vs.tls for r in vs.routes],
            [r for vs in self.ingress_vss if vs.tls for r in vs.routes],
        ):
            self.propagate(group, self.ingress_vss)
        for vs in self.mesh_vss:
            self.propagate(vs.routes, [vs])

    def propagate(self, group: list[_Placed], vss: list[_VS]) -> None:
        filters = [
            (key, p.fault_headers, p.data["fault"], p)
            for p in group
            if "fault" in p.data
            for key in p.dests
        ]
        if not filters:
            return
        inserts: dict[int, _Placed] = {}
        reported: set[tuple[str, str]] = set()
        for q in group:
            foreign = [f for f in filters if f[3] is not q and f[0] in q.dests]
            if not foreign:
                continue
            src = foreign[0][3].origin
            rule = src.rule
            assert rule is not None
            key = (src.name, q.data["name"])
            simple = (
                len(foreign) == 1
                and len(q.dests) == 1
                and "fault" not in q.data
                and "redirect" not in q.data
            )
            merged = (
                _merge_match((q.data.get("match") or [{}])[0], foreign[0][1]) if simple else None
            )
            if simple and not foreign[0][1]:
                q.data["fault"] = copy.deepcopy(foreign[0][2])
                msg = f"route {q.data['name']!r} also gets the fault of rule {src.name!r}"
            elif merged is not None:
                extra = copy.deepcopy(q.data)
                extra["match"] = [merged]
                extra["fault"] = copy.deepcopy(foreign[0][2])
                inserts[id(q)] = _Placed(extra, q.origin, q.dests, q.fault_headers)
                msg = (
                    f"a copy of route {q.data['name']!r} that also requires the fault's header "
                    f"conditions gets the fault of rule {src.name!r}"
                )
            else:
                msg = (
                    f"route {q.data['name']!r} cannot carry it (several fault filters, weighted "
                    "destinations or a fault of its own), so those requests get no such fault "
                    "after conversion"
                )
            if key in reported:
                continue
            reported.add(key)
            self.note(
                "IL306",
                rule,
                ("spec", "httpFault"),
                f"Pilot 0.2 attached this fault to the upstream cluster, so it also hit requests "
                f"that route {q.data['name']!r} sends to the same cluster; {msg}",
                "give the fault its own destination (a subset), or accept the difference",
            )
        if not inserts:
            return
        for vs in vss:
            out: list[_Placed] = []
            for p in vs.routes:
                if id(p) in inserts:
                    out.append(inserts[id(p)])
                out.append(p)
            vs.routes = out
