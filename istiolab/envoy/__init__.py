"""Routing semantics and the real-Envoy side.

``compile`` and ``match`` are the one implementation of routing (config → route table → where a
request goes); ``render``, ``sandbox`` and ``verify`` run that table on a real Envoy.
"""
