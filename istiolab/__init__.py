"""istiolab: design, simulate, verify and apply Istio ingress routing on Kubernetes on AWS.

The core needs only simpy, numpy, pandas, networkx, pyyaml, pydantic, google-re2, hdrhistogram
and matplotlib; the Envoy sandbox, cluster adapters, widgets and Dask sweeps are optional extras.
"""

from istiolab.config import ConfigSet, load, loads
from istiolab.errors import (
    ClusterError,
    CompileError,
    ConfigError,
    IstiolabError,
    SandboxError,
    SimulationError,
)
from istiolab.findings import Finding, Severity
from istiolab.profiles import IstioProfile, get_profile

__version__ = "0.1.0"

__all__ = [
    "ClusterError",
    "CompileError",
    "ConfigError",
    "ConfigSet",
    "Finding",
    "IstioProfile",
    "IstiolabError",
    "SandboxError",
    "Severity",
    "SimulationError",
    "__version__",
    "get_profile",
    "load",
    "loads",
]
