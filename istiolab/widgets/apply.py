"""ApplyPanel: dry-run, diff, a confirmed apply and rollback, against a cluster or a model of one.

The panel wraps :mod:`istiolab.kube`: *Dry run* calls :func:`~istiolab.kube.plan` (validation,
then a server-side dry run of every object and a diff against the live object); *Apply…* asks
for an explicit confirmation naming the context, namespace and number of changes, then calls
:func:`~istiolab.kube.apply` with the plan it showed (never a newer config: edit the rules and
the plan goes stale, so Apply is disabled until the next dry run). The cluster is read again
when *Yes, apply* is pressed: an object changed on the cluster since the dry run (an on-call
edit while the diff was being read) stops the apply before any write, and the panel shows the
new dry run instead. *Rollback* calls :func:`~istiolab.kube.rollback` on the backup set of the
last apply.

Clusters: the kubeconfig's current context when there is a kubeconfig and the ``kubernetes``
package (``pip install 'istiolab[kube]'``), and always an :class:`~istiolab.kube.InMemoryCluster`
(``in-memory``), which is what a workshop on Binder uses.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from istiolab.widgets._util import message, pre, require_ipywidgets

if TYPE_CHECKING:
    from istiolab.config import ConfigSet
    from istiolab.kube import ApplyReport, BackupStore, ClusterAdapter, Plan, RollbackReport
    from istiolab.widgets.designer import RuleDesigner

IN_MEMORY = "in-memory"


def available_clusters() -> dict[str, ClusterAdapter]:
    """The kubeconfig's current context (when reachable through a kubeconfig), then in-memory."""
    from istiolab.errors import ClusterError
    from istiolab.kube import InMemoryCluster

    out: dict[str, ClusterAdapter] = {}
    try:
        from istiolab.kube import connect

        live = connect()
        out[live.context] = live
    except (ImportError, ClusterError):
        pass  # no kubernetes package, or no kubeconfig: the in-memory cluster only
    out.setdefault(IN_MEMORY, InMemoryCluster(context=IN_MEMORY))
    return out


def diff_html(diff: str) -> str:
    """A unified diff with added lines green and removed lines red."""
    if not diff:
        return message("no differences")
    rows = []
    for line in diff.splitlines():
        colour = (
            "#1b7f3b"
            if line.startswith("+") and not line.startswith("+++")
            else "#b00020"
            if line.startswith("-") and not line.startswith("---")
            else "#555555"
            if line.startswith("@@")
            else None
        )
        text = html.escape(line)
        rows.append(f'<span style="color:{colour}">{text}</span>' if colour else text)
    return (
        '<pre style="max-height:30em;overflow:auto;margin:0;font-size:12px;line-height:1.3">'
        + "\n".join(rows)
        + "</pre>"
    )


_READY = "press Dry run: nothing is changed until you confirm Apply"


class ApplyPanel:
    """Dry run, diff, confirmed apply and rollback of the current rules.

    Args:
        source: The rules: a config set, or a RuleDesigner (its current config is applied).
        cluster: The cluster to start with; default the kubeconfig's current context if there
            is one, else the in-memory cluster.
        clusters: The clusters offered in the *context* list (name → adapter); default the
            given cluster, the kubeconfig's current context, and an in-memory cluster.
        backups: Where apply keeps its backup sets (default ``~/.istiolab/backups`` or
            ``$ISTIOLAB_HOME``).
        namespace: Namespace for resources without one (default the cluster's).
    """

    def __init__(
        self,
        source: ConfigSet | RuleDesigner,
        *,
        cluster: ClusterAdapter | None = None,
        clusters: Mapping[str, ClusterAdapter] | None = None,
        backups: BackupStore | None = None,
        namespace: str | None = None,
    ) -> None:
        w = require_ipywidgets()
        self.source = source
        self.backups = backups
        if clusters is None:
            found = {cluster.context: cluster} if cluster is not None else {}
            for name, c in available_clusters().items():
                found.setdefault(name, c)
            clusters = found
        self.clusters: dict[str, ClusterAdapter] = dict(clusters)
        if not self.clusters:
            raise ValueError("no cluster to apply to")
        first = cluster.context if cluster is not None else next(iter(self.clusters))
        self.plan: Plan | None = None
        self.report: ApplyReport | None = None
        self.rollback_report: RollbackReport | None = None
        self._planned_config: ConfigSet | None = None

        style = {"description_width": "8em"}
        self.context = w.Dropdown(
            options=list(self.clusters), value=first, description="context", style=style
        )
        self.namespace = w.Text(
            value=namespace or self.cluster.namespace, description="namespace", style=style
        )
        self.force = w.Checkbox(
            value=False, description="take over the conflicting fields listed (force conflicts)"
        )
        self.allow_managed = w.Checkbox(
            value=False, description="also change objects Argo CD, Flux or Helm manage"
        )
        self.dry_run_button = w.Button(description="Dry run", icon="search", button_style="info")
        self.apply_button = w.Button(
            description="Apply…", icon="upload", button_style="warning", disabled=True
        )
        self.confirm_button = w.Button(description="Yes, apply", button_style="danger")
        self.cancel_button = w.Button(description="Cancel")
        self.confirm_text = w.HTML()
        self.confirm_box = w.HBox([self.confirm_text, self.confirm_button, self.cancel_button])
        self.confirm_box.layout.display = "none"
        self.rollback_button = w.Button(description="Rollback", icon="undo", disabled=True)
        self.reset_button = w.Button(
            description="Reset", icon="eraser", tooltip="forget the dry run (the cluster is kept)"
        )
        self.status = w.HTML(message(_READY))
        self.summary = w.HTML()
        self.diff = w.HTML()
        self.dry_run_button.on_click(lambda _: self.dry_run())
        self.apply_button.on_click(lambda _: self.ask())
        self.confirm_button.on_click(lambda _: self.apply(confirm=True))
        self.cancel_button.on_click(lambda _: self._hide_confirmation("apply cancelled"))
        self.rollback_button.on_click(lambda _: self.rollback())
        self.reset_button.on_click(lambda _: self.reset())
        for x in (self.context, self.namespace, self.force, self.allow_managed):
            x.observe(lambda _: self._stale("the target changed"), names="value")
        if hasattr(source, "on_change"):
            # a RuleDesigner: a dry run of other rules must not stay on screen as "dry run OK"
            source.on_change(lambda _: self._stale("the rules changed"))
        self.widget = w.VBox(
            [
                w.HBox([self.context, self.namespace]),
                w.HBox([self.force, self.allow_managed]),
                w.HBox(
                    [
                        self.dry_run_button,
                        self.apply_button,
                        self.rollback_button,
                        self.reset_button,
                    ]
                ),
                self.confirm_box,
                self.status,
                self.summary,
                self.diff,
            ]
        )
        self.widget.add_class("istiolab-apply-panel")

    # -- state ---------------------------------------------------------------------------------

    @property
    def cluster(self) -> ClusterAdapter:
        """The selected cluster."""
        return self.clusters[str(self.context.value)]

    def config(self) -> ConfigSet:
        """The rules to apply now."""
        from istiolab.config import ConfigSet

        return self.source if isinstance(self.source, ConfigSet) else self.source.config

    @property
    def stale(self) -> bool:
        """Whether the rules changed since the dry run (then Apply needs a new one)."""
        return self.plan is None or self._planned_config is not self.config()

    def _stale(self, why: str) -> None:
        if self.plan is not None:
            self.plan = None
            self.apply_button.disabled = True
            self.summary.value = ""
            self.diff.value = ""
            self._hide_confirmation(f"{why}: dry-run again before applying")

    def reset(self) -> None:
        """Forget the dry run and its diff (the Reset button); the cluster is not touched."""
        self.plan = None
        self._planned_config = None
        self.apply_button.disabled = True
        self.force.value = False
        self.allow_managed.value = False
        self.summary.value = ""
        self.diff.value = ""
        self._hide_confirmation(_READY)

    def _hide_confirmation(self, text: str) -> None:
        self.confirm_box.layout.display = "none"
        self.status.value = message(text)

    # -- operations ----------------------------------------------------------------------------

    def dry_run(self) -> Plan | None:
        """Validate and dry-run the rules against the selected cluster; show the plan and diff."""
        from istiolab.errors import IstiolabError
        from istiolab.kube import plan
        from istiolab.lab import findings_html

        self._hide_confirmation("planning…")
        config = self.config()
        try:
            p = plan(
                config,
                self.cluster,
                namespace=self.namespace.value or None,
                force=bool(self.force.value),
            )
        except IstiolabError as err:
            self.plan = None
            self.apply_button.disabled = True
            findings = getattr(err, "findings", None)
            self.status.value = message(f"refused before any change: {err}", error=True)
            self.summary.value = findings_html(findings) if findings else ""
            self.diff.value = ""
            return None
        self.plan, self._planned_config = p, config
        self.summary.value = pre(p.format(diffs=False))
        self.diff.value = diff_html(p.diff())
        if not p.ok:
            self.status.value = message(
                "the dry run found conflicts or rejected objects: nothing can be applied "
                "(fix them, or tick force to take conflicting fields over)",
                error=True,
            )
        elif not p.changes:
            self.status.value = message("the cluster already has these rules: nothing to apply")
        else:
            self.status.value = message(
                f"dry run OK: {len(p.changes)} change(s); review the diff, then Apply…"
            )
        self.apply_button.disabled = not (p.ok and p.changes)
        return p

    def ask(self) -> None:
        """Show the confirmation (the Apply… button); nothing is changed yet."""
        if self.plan is None or self.stale:
            self._stale("the rules changed")
            self.status.value = message("the rules changed since the dry run: dry-run again")
            return
        n = len(self.plan.changes)
        self.confirm_text.value = (
            f"<b>Apply {n} change(s)</b> to context <code>{html.escape(self.plan.context)}</code>, "
            f"namespace <code>{html.escape(self.plan.namespace)}</code>?"
        )
        self.confirm_box.layout.display = "flex"

    def apply(self, *, confirm: bool = False) -> ApplyReport | None:
        """Apply the plan that was shown, only with ``confirm=True`` (the *Yes, apply* button).

        Returns:
            The report, or None when nothing was applied (not confirmed, no current plan, or
            istiolab refused).
        """
        from istiolab.errors import IstiolabError
        from istiolab.kube import apply
        from istiolab.kube.errors import StalePlanError

        self.confirm_box.layout.display = "none"
        if not confirm:
            self.status.value = message("not applied: confirm explicitly (Apply…, then Yes)")
            return None
        if self.plan is None or self.stale:
            self.status.value = message(
                "not applied: the rules changed since the dry run; dry-run again", error=True
            )
            self.apply_button.disabled = True
            return None
        try:
            report = apply(
                self.plan,
                self.cluster,
                backups=self.backups,
                allow_managed=bool(self.allow_managed.value),
                change_cause="istiolab ApplyPanel",
            )
        except StalePlanError as err:
            # what was confirmed is not what would be applied: show what would be, ask again
            changed = "; ".join(f"{ref}: {what}" for ref, what in err.changed)
            self.dry_run()
            self.status.value = message(
                f"not applied: the cluster changed since the dry run ({changed}); the new dry "
                "run is shown: review it, then Apply… again",
                error=True,
            )
            return None
        except IstiolabError as err:
            self.status.value = message(f"refused: {err}", error=True)
            return None
        self.report = report
        self.summary.value = pre(report.format())
        self.rollback_button.disabled = report.backup_id is None
        self.apply_button.disabled = True  # the plan is used up: dry-run again for more
        self.plan = None
        if report.ok:
            self.status.value = message(
                f"applied; backup {report.backup_id}" if report.backup_id else "nothing changed"
            )
        else:
            self.status.value = message(
                "apply stopped midway; Rollback undoes what was applied", error=True
            )
        return report

    def rollback(self, backup_id: str | None = None) -> RollbackReport | None:
        """Undo an apply (default: the last one made from this panel)."""
        from istiolab.errors import IstiolabError
        from istiolab.kube import rollback

        target = backup_id or (self.report.backup_id if self.report is not None else None)
        if target is None:
            self.status.value = message("nothing to roll back from this panel", error=True)
            return None
        try:
            result = rollback(target, self.cluster, backups=self.backups)
        except IstiolabError as err:
            self.status.value = message(f"rollback refused: {err}", error=True)
            return None
        self.rollback_report = result
        self.summary.value = pre(result.format())
        self.diff.value = ""
        self.rollback_button.disabled = True
        self.plan = None
        self.apply_button.disabled = True
        self.status.value = message(
            "rolled back" if result.ok else "rollback incomplete", error=not result.ok
        )
        return result

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
