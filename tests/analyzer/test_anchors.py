"""The anchor table (istioctl analyze and Kiali codes against ours) stays true to the code."""

from __future__ import annotations

from pathlib import Path

from analyzer.common import covered_codes
from istiolab.findings import ANCHORS, CODES, SEE, render_docs

ROOT = Path(__file__).resolve().parents[2]


def test_every_anchor_is_listed_once_with_a_status_and_a_reason() -> None:
    codes = [a.code for a in ANCHORS]
    assert len(codes) == len(set(codes))
    for a in ANCHORS:
        assert a.status in ("covered", "not applicable", "not covered"), a
        if a.status == "covered":
            assert a.ours, a
            assert set(a.ours) <= set(CODES), a
        else:
            assert not a.ours, a
            assert a.note, a  # why it is not covered, or does not apply


def test_istioctl_codes_in_scope_are_all_in_the_table() -> None:
    # every IST01xx message type of istio/istio pkg/config/analysis/msg/messages.yaml that is
    # not retired (IST0104, IST0105, IST0113-0115, IST0117, IST0119-0122, IST0124 are)
    retired = {104, 105, 113, 114, 115, 117, 119, 120, 121, 122, 124}
    expected = {f"IST0{n}" for n in range(101, 178) if n not in retired}
    assert expected <= {a.code for a in ANCHORS}


def test_see_of_a_code_lists_the_anchors_that_name_it() -> None:
    assert SEE["IL208"] == ("IST0131",)
    assert SEE["IL226"] == ("IST0133", "KIA1104")
    assert set(SEE["IL203"]) == {"IST0101", "KIA1107"}
    for code, anchors in SEE.items():
        for a in anchors:
            assert code in next(x for x in ANCHORS if x.code == a).ours


def test_covered_anchors_point_at_codes_with_tests() -> None:
    # each code an anchor counts as covered has a broken/correct pair here or a case in
    # tests/test_findings.py (the IL1xx schema codes, IL2xx before issue #13, IL6xx)
    new = {a for anchor in ANCHORS for a in anchor.ours if "IL214" <= a <= "IL241"}
    assert new <= covered_codes()


def test_findings_doc_has_the_table() -> None:
    text = (ROOT / "docs" / "findings.md").read_text()
    assert text == render_docs()
    assert "## istioctl analyze and Kiali" in text
    assert "| IST0131 | `VirtualServiceIneffectiveMatch` | covered | IL208 |" in text
