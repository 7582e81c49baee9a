"""Files over live on the clusters of ``tests/kube`` (KMock, the in-memory cluster, and a real
kube-apiserver where it can be built): the same ``make_env``/``env`` fixtures, imported here.
"""

from __future__ import annotations

from kube.conftest import _isolated_home, env, make_env, peers

__all__ = ["_isolated_home", "env", "make_env", "peers"]
