"""ConfigSet: the resources of one configuration, with where each came from."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TextIO, TypeVar

from istiolab.config import codecs
from istiolab.config.base import Resource
from istiolab.config.codecs import RawDocument
from istiolab.config.registry import parse_document, path_str
from istiolab.findings import Finding, finding
from istiolab.reprs import HTMLRepr

R = TypeVar("R", bound=Resource)


@dataclasses.dataclass(frozen=True)
class ConfigSet(HTMLRepr):
    """An ordered set of resources plus the findings from loading them.

    Attributes:
        resources: The resources, in input order.
        origins: For each resource, the raw document it came from (None when built in code).
        findings: Problems found while loading (syntax, schema, unknown kinds).
    """

    resources: tuple[Resource, ...] = ()
    origins: tuple[RawDocument | None, ...] = ()
    findings: tuple[Finding, ...] = ()

    def __post_init__(self) -> None:
        if len(self.origins) != len(self.resources):
            object.__setattr__(
                self,
                "origins",
                tuple(self.origins) + (None,) * (len(self.resources) - len(self.origins)),
            )

    @classmethod
    def of(cls, resources: Iterable[Resource]) -> ConfigSet:
        """A config set of resources built in code."""
        res = tuple(resources)
        return cls(res, (None,) * len(res), ())

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)

    def __len__(self) -> int:
        return len(self.resources)

    def __add__(self, other: ConfigSet) -> ConfigSet:
        return ConfigSet(
            self.resources + other.resources,
            self.origins + other.origins,
            self.findings + other.findings,
        )

    def kind(self, cls: type[R] | tuple[type[R], ...]) -> list[R]:
        """Resources of a model class (or classes), in input order."""
        return [r for r in self.resources if isinstance(r, cls)]

    def origin(self, resource: Resource) -> RawDocument | None:
        """The raw document a resource came from (by identity)."""
        for r, o in zip(self.resources, self.origins, strict=True):
            if r is resource:
                return o
        return None

    def finding(
        self,
        code: str,
        resource: Resource,
        path: Sequence[str | int],
        message: str,
        fix: str,
    ) -> Finding:
        """A finding about a field of a resource, located at its file and line."""
        origin = self.origin(resource)
        return finding(
            code,
            resource.key,
            path_str(path),
            message,
            fix,
            file=origin.file if origin else None,
            line=origin.line_of(path) if origin else None,
        )


def from_documents(docs: Iterable[RawDocument], *, strict: bool = False) -> ConfigSet:
    """Build a config set from raw documents; problems become findings, nothing raises."""
    resources: list[Resource] = []
    origins: list[RawDocument | None] = []
    findings: list[Finding] = []
    for doc in docs:
        res, found = parse_document(doc, strict=strict)
        findings.extend(found)
        if res is not None:
            resources.append(res)
            origins.append(doc)
    return ConfigSet(tuple(resources), tuple(origins), tuple(findings))


def load(
    paths: str | Path | Iterable[str | Path], *, strict: bool = False, stdin: TextIO | None = None
) -> ConfigSet:
    """Load files, directories (recursively) and ``-`` (stdin) into a config set.

    Args:
        paths: One path or several.
        strict: Make unknown kinds errors.
        stdin: Stream read for ``-`` (default: ``sys.stdin``).

    Returns:
        The config set; problems are in its ``findings``.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = list(paths)
    missing = [p for p in paths if str(p) != "-" and _missing(p)]
    docs = codecs.load_paths([p for p in paths if p not in missing], stdin=stdin)
    cs = from_documents(docs, strict=strict)
    extra = tuple(
        finding("IL005", str(p), "", f"{p}: no such file or directory", "check the path")
        for p in missing
    )
    return dataclasses.replace(cs, findings=extra + cs.findings)


def _missing(path: str | Path) -> bool:
    """Whether *path* does not exist (other errors, such as EACCES, are reported on reading)."""
    try:
        os.stat(path)
    except (FileNotFoundError, ValueError):  # ValueError: a NUL byte in the path
        return True
    except OSError:
        return False
    return False


def loads(text: str, *, file: str | None = None, strict: bool = False) -> ConfigSet:
    """Load a YAML text (one or many documents) into a config set."""
    return from_documents(codecs.loads(text, file), strict=strict)


def dumps(config: ConfigSet | Iterable[Resource]) -> str:
    """Deterministic multi-document YAML of the resources."""
    return codecs.dumps(list(config))
