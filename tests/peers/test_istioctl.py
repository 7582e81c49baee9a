"""``istioctl analyze`` side by side with ``istiolab lint`` (:mod:`.compare_istioctl`).

Wherever istioctl reports a problem that is in istiolab's scope (its code is *covered* in
:data:`istiolab.findings.ANCHORS`, or istioctl cannot read the document at all), istiolab must
report it too, on the same resource; the exceptions are listed, with reasons, in
:data:`compare_istioctl.EXCEPTIONS` only.
"""

from __future__ import annotations

import pytest

from . import apiserver, compare_istioctl

pytestmark = pytest.mark.peers


@pytest.fixture(scope="module")
def rows() -> list[compare_istioctl.Row]:
    if not compare_istioctl.available():
        reason = "peers/bin/istioctl is not built: run `make peers` (it says why when it fails)"
        apiserver.skip_or_fail(apiserver.PeersUnavailableError(reason))
    return compare_istioctl.compare()


def test_istiolab_reports_what_istioctl_reports_in_scope(
    rows: list[compare_istioctl.Row], capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        print("\n" + compare_istioctl.table(rows))
    missed = compare_istioctl.unexplained(rows)
    assert not missed, "\n".join(missed)


def test_the_comparison_is_not_vacuous(rows: list[compare_istioctl.Row]) -> None:
    """istioctl reports in-scope problems on the corpus, and istiolab matches most of them."""
    in_scope = [
        m
        for r in rows
        for m in r.messages
        if m.code == compare_istioctl.PARSE or m.code in compare_istioctl.COVERED
    ]
    missed = [m for r in rows for m in r.missed()]
    assert len(in_scope) > 30
    assert len({m.code for m in in_scope}) > 5
    assert len(in_scope) - len(missed) > len(missed)


def test_every_exception_is_still_needed(rows: list[compare_istioctl.Row]) -> None:
    missed = {(r.source, m.code, m.resource) for r in rows for m in r.missed()}
    stale = sorted(set(compare_istioctl.EXCEPTIONS) - missed)
    assert not stale, f"EXCEPTIONS entries istiolab now reports (remove them): {stale}"


def test_an_unreported_message_in_scope_is_missed() -> None:
    """A covered istioctl code with no istiolab finding on that resource counts as missed."""
    msg = compare_istioctl.Message("IST0101", "Error", "VirtualService/default/vs", "not found")
    row = compare_istioctl.Row("x", [msg], [])
    assert row.missed() == [msg]
    out_of_scope = compare_istioctl.Message("IST0102", "Info", "Namespace/default/default", "")
    assert compare_istioctl.Row("x", [out_of_scope], []).missed() == []
