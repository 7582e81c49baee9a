"""One pass shows every problem: a resource with a schema error is kept, with the fields in error
taken out, for the other checks; findings that may follow from a schema error name it."""

from __future__ import annotations

from analyzer.common import dedent, lint
from istiolab.config import loads
from istiolab.config.model import VirtualService

DR = """
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  subsets:
  - {name: v1, labels: {version: v1}}
"""


def test_schema_error_and_undefined_subset_in_one_pass() -> None:
    # issue #13: an httpStatus of 700 used to drop the VirtualService before subsets were checked
    text = (
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: vs}
        spec:
          hosts: [httpbin]
          http:
          - fault:
              abort:
                httpStatus: 700
                percentage: {value: 10}
            route:
            - destination: {host: httpbin, subset: v9}
        """
        + DR
    )
    found = {(f.code, f.path) for f in lint(text)}
    assert ("IL106", "spec.http[0].fault.abort.httpStatus") in found
    assert ("IL203", "spec.http[0].route[0].destination.subset") in found


def test_paths_in_a_partial_resource_are_the_documents_paths() -> None:
    # route[0] has no host, so it is taken out; the finding about the next destination must
    # still say route[1], the line it is on
    text = dedent(
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: vs}
        spec:
          hosts: [httpbin]
          http:
          - route:
            - destination: {subset: v1}
              weight: 50
            - destination: {host: httpbin, subset: v9}
              weight: 50
        """
        + DR
    )
    findings = lint(text)
    (undefined,) = [f for f in findings if f.code == "IL203"]
    assert undefined.path == "spec.http[0].route[1].destination.subset"
    assert undefined.line == 10
    assert undefined.caused_by is None  # not a consequence: v9 is undefined either way
    assert [f.code for f in findings if f.path.startswith("spec.http[0].route[0]")] == ["IL102"]


def test_a_finding_inside_a_taken_out_field_names_its_cause() -> None:
    # the subset's name is a list, so the subset is taken out of the DestinationRule; the route
    # to it is then reported as undefined, as a consequence of the schema error
    text = """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: vs}
        spec:
          hosts: [httpbin]
          http:
          - route:
            - destination: {host: httpbin, subset: v2}
        """ + DR.replace(
        "  - {name: v1, labels: {version: v1}}", "  - {name: [v2], labels: {version: v2}}"
    )
    findings = lint(text)
    (schema,) = [f for f in findings if f.code == "IL103"]
    (subset,) = [f for f in findings if f.code == "IL203"]
    assert schema.path == "spec.subsets[0].name"
    assert subset.caused_by == "IL103 DestinationRule/default/httpbin spec.subsets[0].name"
    assert subset.to_dict()["caused_by"] == subset.caused_by
    assert subset.to_dict()["see"] == ["IST0101", "KIA1107"]


def test_partial_resources_are_for_the_analyzer_only() -> None:
    cs = loads(
        dedent(
            """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: vs}
            spec:
              hosts: [httpbin]
              http:
              - timeout: 5
                route:
                - destination: {host: httpbin}
            """
        )
    )
    assert len(cs) == 0  # nothing compiles or simulates a resource with errors
    assert len(cs.partial) == 1
    vs = cs.partial[0][0].resource
    assert isinstance(vs, VirtualService)
    assert vs.spec.http is not None


def test_a_document_without_a_usable_spec_is_not_salvaged() -> None:
    cs = loads(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs}\nspec: 3\n"
    )
    assert cs.partial == ()
    assert [f.code for f in cs.findings] == ["IL103"]


def test_host_not_served_by_a_gateway_with_a_broken_server_names_the_cause() -> None:
    gateway = """
    ---
    apiVersion: networking.istio.io/v1
    kind: Gateway
    metadata: {name: public}
    spec:
      servers:
      - port: {number: 80, name: http, protocol: HTTP}
        hosts: [a.example.com]
      - port: {number: 0, name: web, protocol: HTTP}
        hosts: [web.example.com]
    """
    vs = """
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: web}
    spec:
      hosts: [web.example.com]
      gateways: [public]
      http:
      - route:
        - destination: {host: web}
    """
    findings = lint(vs + gateway)
    (port,) = [f for f in findings if f.resource == "Gateway/default/public"]
    (host,) = [f for f in findings if f.code == "IL206"]
    assert port.path == "spec.servers[1].port.number"
    assert host.caused_by == f"{port.code} Gateway/default/public spec.servers[1].port.number"
    # with the server fixed, the host is served
    assert not lint(vs + gateway.replace("number: 0", "number: 8080"))


def test_destination_port_of_a_service_with_a_broken_port_names_the_cause() -> None:
    svc = """
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: httpbin}
    spec:
      ports:
      - {name: http, port: 8000}
      - {name: http-admin, port: 90000}
    """
    vs = """
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: vs}
    spec:
      hosts: [httpbin]
      http:
      - route:
        - destination: {host: httpbin, port: {number: 90}}
    """
    (port,) = [f for f in lint(vs + svc) if f.code == "IL214"]
    assert port.caused_by is not None
    assert port.caused_by.endswith("Service/default/httpbin spec.ports[1].port")
