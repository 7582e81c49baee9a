"""The session's real etcd and kube-apiserver, for the tests of the peers themselves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .apiserver import Peers, PeersUnavailableError, acquire, release, skip_or_fail


@pytest.fixture(scope="session")
def peers() -> Iterator[Peers]:
    """Started on first use and shared with ``tests/kube``: one API server per session.

    Skips (one line: how to enable) where the peers are not built and Go is not installed;
    builds them with ``make -C peers`` where Go is.
    """
    try:
        started = acquire()
    except PeersUnavailableError as err:
        skip_or_fail(err)
    yield started
    release()
