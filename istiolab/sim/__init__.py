"""The ingress pipeline simulator (SimPy).

AWS load balancer → ingress node pool → Envoy routing (the compiled
:class:`~istiolab.envoy.model.RouteTable`) → upstream clusters → backend pods.

``simulate(scenario, seed)`` is pure: same scenario and seed, same result.
"""
