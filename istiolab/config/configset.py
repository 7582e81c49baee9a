"""ConfigSet: the resources of one configuration, with where each came from."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TextIO, TypeVar

from istiolab.config import codecs
from istiolab.config.base import Resource
from istiolab.config.codecs import RawDocument
from istiolab.config.registry import Salvaged, parse_document, path_str, salvage
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
        partial: Resources with schema errors, as far as they are valid (the fields in error
            taken out), with their documents. Only the analyzer reads them, so that one pass
            reports every problem; nothing else sees them.
    """

    resources: tuple[Resource, ...] = ()
    origins: tuple[RawDocument | None, ...] = ()
    findings: tuple[Finding, ...] = ()
    partial: tuple[tuple[Salvaged, RawDocument], ...] = ()

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
            self.partial + other.partial,
        )

    def kind(self, cls: type[R] | tuple[type[R], ...]) -> list[R]:
        """Resources of a model class (or classes), in input order."""
        return [r for r in self.resources if isinstance(r, cls)]

    def origin(self, resource: Resource) -> RawDocument | None:
        """The raw document a resource (or a partial one) came from (by identity)."""
        return self._origins.get(id(resource))

    def salvaged(self, resource: Resource) -> Salvaged | None:
        """How a partial resource was salvaged, or None for a resource without schema errors."""
        return self._salvaged.get(id(resource))

    @functools.cached_property
    def _origins(self) -> dict[int, RawDocument | None]:
        # by identity: models compare by value, and two equal resources can come from two files
        out: dict[int, RawDocument | None] = {
            id(r): o for r, o in zip(self.resources, self.origins, strict=True)
        }
        out.update((id(s.resource), doc) for s, doc in self.partial)
        return out

    @functools.cached_property
    def _salvaged(self) -> dict[int, Salvaged]:
        return {id(s.resource): s for s, _ in self.partial}

    def finding(
        self,
        code: str,
        resource: Resource,
        path: Sequence[str | int],
        message: str,
        fix: str,
    ) -> Finding:
        """A finding about a field of a resource, located at its file and line.

        For a partial resource the path is turned back into the document's path, and a finding
        inside (or around) a field that was taken out names that field's finding as its cause.
        """
        origin = self.origin(resource)
        saved = self.salvaged(resource)
        caused_by = None
        if saved is not None:
            path = saved.document_path(path)
            cause = saved.cause(path)
            if cause is not None:
                caused_by = f"{cause.code} {cause.resource} {cause.path}".rstrip()
        out = finding(
            code,
            resource.key,
            path_str(path),
            message,
            fix,
            file=origin.file if origin else None,
            line=origin.line_of(path) if origin else None,
        )
        return dataclasses.replace(out, caused_by=caused_by) if caused_by else out


def from_documents(docs: Iterable[RawDocument], *, strict: bool = False) -> ConfigSet:
    """Build a config set from raw documents; problems become findings, nothing raises."""
    resources: list[Resource] = []
    origins: list[RawDocument | None] = []
    findings: list[Finding] = []
    partial: list[tuple[Salvaged, RawDocument]] = []
    for doc in docs:
        res, found = parse_document(doc, strict=strict)
        findings.extend(found)
        if res is not None:
            resources.append(res)
            origins.append(doc)
        elif found and all(f.code.startswith("IL1") for f in found):
            saved = salvage(doc, found)
            if saved is not None:
                partial.append((saved, doc))
    return ConfigSet(tuple(resources), tuple(origins), tuple(findings), tuple(partial))


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
