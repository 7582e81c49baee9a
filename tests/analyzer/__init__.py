"""The analyzer's checks (issue #13): one file per resource family, a broken and a correct config
per check (:mod:`analyzer.common`)."""
