"""Pipeline stages: load balancer, ingress node pool, router, upstream clusters, backend pods.

Every stage holds ``env`` and its own resources and exposes a SimPy generator; requests flow
through them with ``yield from`` (no extra ``Process`` per stage, which would double the event
count per request in the hot path).
"""
