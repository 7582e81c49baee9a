"""Cases: one request each and what should happen to it, read and written as case files.

Cases use Envoy's ``router_check_tool`` format (JSON or YAML)::

    {"tests": [{"test_name": "beta cookie",
                "input": {"authority": "example.com", "path": "/", "method": "GET",
                          "additional_request_headers": [{"key": "cookie", "value": "user=beta"}],
                          "random_value": 0},
                "validate": {"cluster_name": "outbound|8000|v2|httpbin.default.svc"}}]}

``validate`` may hold ``cluster_name`` (``""``: no cluster), ``virtual_host_name``,
``code_redirect``, ``path_redirect`` (the whole new URL, as router_check_tool compares it) and the
istiolab extension ``status`` (the status the client sees, e.g. 403 for a 100 % abort, 404 for no
route). ``input.ssl: true`` sends ``x-forwarded-proto: https`` (Envoy then sees ``:scheme``
``https``), as router_check_tool does. ``:path``/``:method``/``:authority`` and
``additional_headers`` (older spellings) are read too. A case without ``validate`` takes its
expectation from :func:`~istiolab.envoy.match.route`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from istiolab.envoy.match import Request
from istiolab.errors import IstiolabError

__all__ = ["Case", "CaseFileError", "dump_cases", "load_cases", "parse_cases"]


class CaseFileError(IstiolabError):
    """A cases file cannot be read or is not in router_check_tool format.

    Attributes:
        field: Path of the offending field from the data's root (``("tests", 0, "input",
            "path")``), when the error is about one field; :func:`load_cases` turns it into a
            line number.
    """

    def __init__(self, message: str, field: tuple[str | int, ...] | None = None) -> None:
        super().__init__(message)
        self.field = field


# What cannot go on the wire as written. A line break in a header value would split the
# request (header injection) and http.client refuses it; the request line cannot hold
# spaces or control characters at all. Refused when the file is read, with the file and line,
# rather than when the request is sent.
_BAD_IN_VALUE = re.compile(r"[\r\n\x00]")
_BAD_IN_TOKEN = re.compile(r"[\x00-\x20\x7f]")


def _describe(ch: str) -> str:
    names = {"\r": "a carriage return (CR)", "\n": "a line feed (LF)", " ": "a space"}
    return names.get(ch, f"the control character {ch!r}")


def _check_text(
    value: str, bad: re.Pattern[str], where: str, name: str, field: tuple[str | int, ...]
) -> None:
    m = bad.search(value)
    if m is not None:
        fix = "percent-encode it (%20, %0D, %0A)" if name == "input.path" else "remove it"
        raise CaseFileError(
            f"{where}: {name} contains {_describe(m.group())}, which cannot be sent in an "
            f"HTTP request; {fix}",
            field,
        )


@dataclasses.dataclass(frozen=True)
class Case:
    """One request and what should happen to it.

    Attributes:
        name: ``test_name``.
        request: The request.
        random_value: Envoy's weighted-cluster random value, or None to let Envoy draw.
        cluster: Expected cluster (router level: the route's pick even if a fault aborts it);
            ``""`` means none (no route, redirect, direct response); None: not checked.
        status: Expected status at the client (istiolab extension); None: not checked.
        code_redirect: Expected redirect status.
        path_redirect: Expected redirect URL (``scheme://host/path``, router_check_tool style).
        virtual_host: Expected virtual host name.
        note: Why the case exists (generated cases say which route they aim at).
    """

    name: str
    request: Request
    random_value: int | None = None
    cluster: str | None = None
    status: int | None = None
    code_redirect: int | None = None
    path_redirect: str | None = None
    virtual_host: str | None = None
    note: str = ""

    @property
    def has_expectation(self) -> bool:
        """Whether the case states any expectation of its own."""
        return any(
            v is not None
            for v in (
                self.cluster,
                self.status,
                self.code_redirect,
                self.path_redirect,
                self.virtual_host,
            )
        )


def _case_from_item(item: Any, where: str, at: tuple[str | int, ...] = ()) -> Case:
    if not isinstance(item, dict):
        raise CaseFileError(f"{where}: a test must be a mapping, got {type(item).__name__}")
    name = item.get("test_name")
    if not isinstance(name, str) or not name:
        raise CaseFileError(f"{where}: test_name is missing or empty")
    where = f"{where} ({name!r})"
    inp = item.get("input")
    if not isinstance(inp, dict):
        raise CaseFileError(f"{where}: input is missing")

    def text(*keys: str, default: str | None = None) -> str:
        for k in keys:
            v = inp.get(k)
            if v is not None:
                if not isinstance(v, str) or not v:
                    raise CaseFileError(f"{where}: input.{k} must be a non-empty string")
                return v
        if default is None:
            raise CaseFileError(f"{where}: input.{keys[0]} is required")
        return default

    def checked(bad: re.Pattern[str], *keys: str, default: str | None = None) -> str:
        value = text(*keys, default=default)
        key = next((k for k in keys if inp.get(k) is not None), keys[0])
        _check_text(value, bad, where, f"input.{key}", (*at, "input", key))
        return value

    authority = checked(_BAD_IN_VALUE, "authority", ":authority")
    path = checked(_BAD_IN_TOKEN, "path", ":path")
    method = checked(_BAD_IN_TOKEN, "method", ":method", default="GET")
    headers: dict[str, str] = {}
    for key in ("additional_request_headers", "additional_headers"):
        hs = inp.get(key) or []
        if not isinstance(hs, list):
            raise CaseFileError(f"{where}: input.{key} must be a list of {{key, value}}")
        for j, h in enumerate(hs):
            if not isinstance(h, dict) or not isinstance(h.get("key", h.get("field")), str):
                raise CaseFileError(f"{where}: input.{key} entries need a string key")
            name_key = "key" if "key" in h else "field"
            header = str(h[name_key])
            value = str(h.get("value", ""))
            entry = f"input.{key}[{j}]"
            _check_text(header, _BAD_IN_TOKEN, where, f"{entry}.{name_key}", (*at, "input", key, j))
            _check_text(value, _BAD_IN_VALUE, where, f"{entry}.value", (*at, "input", key, j))
            headers[header.lower()] = value
    host = headers.pop("host", None) or headers.pop(":authority", None) or authority
    rv = inp.get("random_value")
    if rv is not None and (isinstance(rv, bool) or not isinstance(rv, int) or rv < 0):
        raise CaseFileError(f"{where}: input.random_value must be a non-negative integer")
    ssl = inp.get("ssl", False)
    if not isinstance(ssl, bool):
        raise CaseFileError(f"{where}: input.ssl must be true or false")
    scheme = "https" if ssl else "http"
    headers.pop("x-forwarded-proto", None)
    request = Request(path=path, method=method, host=host, headers=headers, scheme=scheme)

    val = item.get("validate") or {}
    if not isinstance(val, dict):
        raise CaseFileError(f"{where}: validate must be a mapping")
    known = {"cluster_name", "virtual_host_name", "code_redirect", "path_redirect", "status"}
    unknown = sorted(set(val) - known)
    if unknown:
        raise CaseFileError(
            f"{where}: validate.{unknown[0]} is not supported (use {', '.join(sorted(known))})"
        )

    def opt_int(key: str) -> int | None:
        v = val.get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or not 100 <= v <= 599:
            raise CaseFileError(f"{where}: validate.{key} must be an HTTP status, got {v!r}")
        return v

    def opt_str(key: str) -> str | None:
        v = val.get(key)
        if v is None:
            return None
        if not isinstance(v, str):
            raise CaseFileError(f"{where}: validate.{key} must be a string")
        return v

    return Case(
        name=name,
        request=request,
        random_value=rv,
        cluster=opt_str("cluster_name"),
        status=opt_int("status"),
        code_redirect=opt_int("code_redirect"),
        path_redirect=opt_str("path_redirect"),
        virtual_host=opt_str("virtual_host_name"),
    )


def parse_cases(data: Any, source: str = "<cases>") -> list[Case]:
    """Cases from already-parsed router_check_tool data (``{"tests": [...]}`` or a bare list)."""
    tests = data.get("tests") if isinstance(data, dict) else data
    if not isinstance(tests, list):
        raise CaseFileError(f"{source}: expected {{'tests': [...]}} (router_check_tool format)")
    root: tuple[str | int, ...] = ("tests",) if isinstance(data, dict) else ()
    return [_case_from_item(t, f"{source}: tests[{i}]", (*root, i)) for i, t in enumerate(tests)]


def _with_line(err: CaseFileError, path: Path, text: str) -> CaseFileError:
    """*err* with ``file:line`` in front, when it is about one field whose line can be found."""
    if err.field is None:
        return err
    from istiolab.config.codecs import loads  # JSON is YAML too, so one parser finds both

    docs = loads(text, str(path))
    if not docs or docs[0].error is not None:
        return err
    line = docs[0].line_of(err.field)
    message = str(err)
    prefix = f"{path}: "
    if line and message.startswith(prefix):
        message = f"{path}:{line}: " + message[len(prefix) :]
    return CaseFileError(message, err.field)


def load_cases(path: str | Path) -> list[Case]:
    """Read a router_check_tool cases file (JSON, or YAML for any other suffix).

    Raises:
        CaseFileError: The file cannot be read or parsed, or a test is malformed (a line
            break or control character where HTTP allows none, among others); the message
            names the file, the test and the field, and the line when the field has one.
    """
    from istiolab.config.codecs import InputRefused, load_data, read_text

    p = Path(path)
    try:
        # The config loader's reader: a FIFO or /dev/zero is refused from stat, a file is read
        # up to the input limit only, and bytes that are not UTF-8 are named with their line.
        text = read_text(p)
        data = json.loads(text) if p.suffix.lower() == ".json" else load_data(text)
    except InputRefused as err:  # a limit or loading rule of istiolab.limits (IL005 .. IL014)
        if str(p) in err.message:  # about the whole file: the message names it (and the line)
            message = err.message
        else:
            message = f"{p}:{err.line}: {err.message}" if err.line else f"{p}: {err.message}"
        fix = "give the path of a regular file" if err.code == "IL007" else err.fix
        raise CaseFileError(f"{message} ({err.code}); {fix}") from None
    except Exception as err:  # JSON or YAML syntax (json.JSONDecodeError, yaml.YAMLError)
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CaseFileError(f"{p}: not valid {p.suffix.lstrip('.') or 'YAML'}: {first}") from None
    try:
        return parse_cases(data, str(p))
    except CaseFileError as err:
        raise _with_line(err, p, text) from None


def dump_cases(cases: Iterable[Case]) -> dict[str, Any]:
    """Cases as router_check_tool data (``json.dumps`` it); expectations go to ``validate``."""
    tests = []
    for c in cases:
        inp: dict[str, Any] = {
            "authority": c.request.host,
            "path": c.request.path,
            "method": c.request.method,
        }
        headers = [{"key": k, "value": v} for k, v in c.request.headers.items()]
        if headers:
            inp["additional_request_headers"] = headers
        if c.random_value is not None:
            inp["random_value"] = c.random_value
        if c.request.scheme == "https":
            inp["ssl"] = True
        val: dict[str, Any] = {}
        if c.cluster is not None:
            val["cluster_name"] = c.cluster
        if c.virtual_host is not None:
            val["virtual_host_name"] = c.virtual_host
        if c.code_redirect is not None:
            val["code_redirect"] = c.code_redirect
        if c.path_redirect is not None:
            val["path_redirect"] = c.path_redirect
        if c.status is not None:
            val["status"] = c.status
        test: dict[str, Any] = {"test_name": c.name, "input": inp}
        if val:
            test["validate"] = val
        tests.append(test)
    return {"tests": tests}
