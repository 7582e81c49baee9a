"""The "On a real cluster" block of a notebook: the real commands, folded away until opened.

:func:`real_cluster` renders :func:`istiolab.kube.commands.real_commands` for a notebook's
config under both Istio profiles, as a collapsible HTML ``<details>`` block (Istio's task-page
shape: a command, the output to expect, cleanup last). ``istiolab apply FILES
--print-commands`` prints the same steps from the same function, so the notebook and the tool
never disagree.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Sequence

from istiolab.config import ConfigSet
from istiolab.kube.commands import TOPICS, RealCommands, Step, real_commands
from istiolab.lab.data import data_dir, example

__all__ = ["LEGACY_EXAMPLES", "RealCluster", "real_cluster"]

LEGACY_EXAMPLES: dict[str, tuple[str, ...]] = {
    "ingress": ("seed",),
    "fault": ("seed",),
    "apply": ("seed",),
    "install": ("seed",),
    "verify": ("legacy", "cookie-ab.yaml"),
    "canary": ("legacy", "canary-90-10.yaml"),
    "cookie-ab": ("legacy", "cookie-ab.yaml"),
    "retries": ("legacy", "retries.yaml"),
    "rate-limit": ("legacy", "ratelimit-100rps.yaml"),
}
"""The 0.2 form of a topic's rules, used for the 0.2 profile when a notebook's config is modern."""

_CSS = (
    "<style>"
    ".il-rc summary{cursor:pointer;font-weight:600;font-size:1.05em}"
    ".il-rc .il-rc-profile{margin:6px 0 6px 12px}"
    ".il-rc h5{font-size:1em;margin:12px 0 4px;border-bottom:1px solid #d0d7de}"
    ".il-rc p{margin:6px 0 2px;font-size:0.92em}"
    ".il-rc pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:4px;padding:6px 8px;"
    "margin:2px 0 6px;white-space:pre-wrap;font-size:0.85em}"
    ".il-rc pre.out{background:#fff;color:#444;border-style:dashed}"
    ".il-rc .src{color:#666;font-size:0.78em}"
    ".il-rc .note{background:#fff8c5;padding:4px 8px;border-radius:4px;margin:4px 0;"
    "font-size:0.9em}"
    "</style>"
)


_PROFILE_TITLES = {"0.2": "Istio 0.2 (the talk's cluster, 2017)", "current": "A current Istio"}


@dataclasses.dataclass(frozen=True)
class RealCluster:
    """The real commands of one topic under each profile; renders as a ``<details>`` block.

    Attributes:
        topic: The topic (a key of :data:`istiolab.kube.commands.TOPICS`).
        commands: One :class:`~istiolab.kube.commands.RealCommands` per profile, current first.
        open: Render the block unfolded.
    """

    topic: str
    commands: tuple[RealCommands, ...]
    open: bool = False

    def _repr_html_(self) -> str:
        return to_html(self)

    def __repr__(self) -> str:
        return "\n".join(c.to_text() for c in self.commands)

    def to_markdown(self) -> str:
        """Markdown of every profile (``### On a real cluster`` pages)."""
        return "\n".join(c.to_markdown(heading_level=3) for c in self.commands)


def _step_html(step: Step) -> str:
    out = [f"<p><b>{html.escape(step.title)}.</b> {html.escape(step.note)}</p>"]
    if step.commands:
        out.append(f"<pre>{html.escape(chr(10).join(step.commands))}</pre>")
    if step.expected:
        out.append(
            f"<div class='src'>Expected output:</div><pre class='out'>"
            f"{html.escape(step.expected)}</pre>"
        )
    if step.source:
        out.append(f"<div class='src'>Source: {html.escape(step.source)}</div>")
    return "".join(out)


def _profile_html(cmds: RealCommands) -> str:
    body = [f"<div class='note'>{html.escape(n)}</div>" for n in cmds.notes]
    for sec in cmds.sections:
        body.append(f"<h5>{html.escape(sec.title)}</h5>")
        body += [_step_html(s) for s in sec.steps]
    return "".join(body)


def to_html(block: RealCluster) -> str:
    """The block as HTML: a ``<details>`` with one part per profile."""
    title = TOPICS.get(block.topic, block.topic)
    parts = "".join(
        f"<details class='il-rc-profile'{' open' if block.open else ''}><summary>"
        f"{_PROFILE_TITLES[c.profile]}</summary>"
        f"{_profile_html(c)}</details>"
        for c in block.commands
    )
    return (
        f"{_CSS}<details class='il-rc'{' open' if block.open else ''}>"
        f"<summary>On a real cluster: {html.escape(title)}</summary>"
        "<p>The commands as Istio's task pages give them: the command, the output to expect, "
        "and cleanup at the end. <code>istiolab apply FILES --print-commands</code> prints the "
        "same.</p>"
        f"{parts}</details>"
    )


def _has_legacy(config: ConfigSet) -> bool:
    return any(str(getattr(r, "api_version", "")).startswith("config.istio.io/") for r in config)


def real_cluster(
    topic: str,
    config: ConfigSet,
    *,
    legacy: ConfigSet | None = None,
    profiles: Sequence[str] = ("current", "0.2"),
    open: bool = False,
) -> RealCluster:
    """The "On a real cluster" block of a notebook.

    Args:
        topic: The seed point (``"canary"``, ``"aws"``, ...; see
            :data:`istiolab.kube.commands.TOPICS`).
        config: The notebook's rules.
        legacy: Their Istio 0.2 form. Default: *config* when it is legacy, else the topic's
            example under ``examples/`` (:data:`LEGACY_EXAMPLES`), else *config*.
        profiles: The profiles to show, in order.
        open: Show the block unfolded.

    Returns:
        An object that renders as a collapsible HTML block in Jupyter.
    """
    import istiolab

    base = data_dir()
    out: list[RealCommands] = []
    for profile in profiles:
        cs = config
        if profile == "0.2" and not _has_legacy(config):
            if legacy is not None:
                cs = legacy
            elif topic in LEGACY_EXAMPLES:
                cs = istiolab.load(example(*LEGACY_EXAMPLES[topic]))
        out.append(real_commands(cs, profile, topic, relative_to=base))
    return RealCluster(topic, tuple(out), open)
