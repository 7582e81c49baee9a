"""Column indices and codes shared by the lowering and the compiled kernel.

The kernel takes flat numpy arrays; each constant here names one column of one of them (numba
reads module-level ints as compile-time constants, so naming them costs nothing at run time).
"""

from __future__ import annotations

from typing import Final

# -- distributions: dists[d, :] = kind, a, b, offset ----------------------------------------
D_ZERO: Final = 0
D_DET: Final = 1
D_EXP: Final = 2
D_LOGNORMAL: Final = 3  # a = mu, b = sigma
D_GAMMA: Final = 4  # a = shape, b = scale
D_UNIFORM: Final = 5  # a = low, b = high
D_EMPIRICAL: Final = 6  # a = start in emp, b = length

# -- cfg_i: global integer settings -----------------------------------------------------------
CI_INTERVALS: Final = 0
CI_TRAFFIC: Final = 1
CI_LB_ALB: Final = 2  # 1 = ALB (per request), 0 = NLB (per connection)
CI_ALB_RR: Final = 3  # ALB round robin (else least outstanding requests)
CI_CROSS_ZONE: Final = 4
CI_LOCAL: Final = 5
CI_TARGET_IP: Final = 6
CI_NODES: Final = 7
CI_GW: Final = 8
CI_WORKERS: Final = 9
CI_TARGETS: Final = 10
CI_D_LB: Final = 11
CI_D_KP: Final = 12
CI_D_NODE: Final = 13
CI_D_AZ: Final = 14
CI_D_CPU: Final = 15
CI_D_LAT: Final = 16
CI_D_NET: Final = 17
CI_ROUTES: Final = 18
CI_CLUSTERS: Final = 19
CI_VERSIONS: Final = 20
CI_BUCKET_TIMER: Final = 21
CI_BACKOFF_DOCS: Final = 22
CI_EJECT_ONE: Final = 23
CI_COUNTS_LEN: Final = 24
CI_HDR_HIGHEST: Final = 25
CI_HDR_UNIT: Final = 26
CI_HDR_HALFMAG: Final = 27
CI_HDR_HALFCOUNT: Final = 28
CI_HDR_MASK: Final = 29
CI_STATUSES: Final = 30
CI_D_SC_CPU: Final = 31
CI_D_SC_LAT: Final = 32
CI_EVENTS: Final = 33
CI_MAX_PODS: Final = 34
CI_AZS: Final = 35
CI_BUCKET_SPECS: Final = 36
CI_GW_BUCKET: Final = 37  # spec index of the listener-wide bucket, -1 for none
CI_HC_UNHEALTHY: Final = 38
CI_SIZE: Final = 40

# -- cfg_f: global float settings -------------------------------------------------------------
CF_DURATION: Final = 0
CF_WARMUP: Final = 1
CF_INTERVAL: Final = 2
CF_HC_INTERVAL: Final = 3
CF_MAX_IN_FLIGHT: Final = 4  # budget.SIM_MAX_IN_FLIGHT: arrivals beyond it are refused
CF_TRACE_SAMPLE: Final = 5  # run.trace_sample: the share of finished requests traced
CF_SIZE: Final = 6

# -- traffic: tr_i[p, :], tr_f[p, :] ----------------------------------------------------------
A_POISSON: Final = 0
A_CONSTANT: Final = 1
A_SCHEDULE: Final = 2
A_DIURNAL: Final = 3
A_REPLAY: Final = 4

TI_KIND: Final = 0
TI_RAMP: Final = 1
TI_KEEPALIVE: Final = 2
TI_POOL: Final = 3
TI_POOL_AT: Final = 4  # first connection of this population in the connection tables
TI_CAP: Final = 5  # requests per connection, -1 none
TI_TPL: Final = 6  # templates
TI_TPL_AT: Final = 7  # first template weight in cum
TI_USERS: Final = 8
TI_AZ_N: Final = 9
TI_AZ_AT: Final = 10  # first AZ choice in tr_az
TI_STEPS_N: Final = 11
TI_STEPS_AT: Final = 12
TI_REPLAY_N: Final = 13
TI_REPLAY_AT: Final = 14
TI_CLASS_AT: Final = 15  # first request class in cls_route
TI_AZCUM_AT: Final = 16  # first AZ weight in tr_cum
TI_SIZE: Final = 17

TF_RATE: Final = 0
TF_AMPLITUDE: Final = 1
TF_PERIOD: Final = 2
TF_LIFETIME: Final = 3  # inf for none
TF_LAMBDA_MAX: Final = 4
TF_START: Final = 5
TF_END: Final = 6
TF_SIZE: Final = 7

# -- routes: rt_i[r, :], rt_f[r, :] -----------------------------------------------------------
RI_DELAY_PM: Final = 0
RI_ABORT_STATUS: Final = 1
RI_ABORT_PM: Final = 2
RI_BUCKET: Final = 3  # the bucket spec the route meets (its own, or the listener's), -1 none
RI_REDIRECT: Final = 4  # redirect code, 0 none
RI_DIRECT: Final = 5  # direct response status, 0 none
RI_WC_AT: Final = 6
RI_WC_N: Final = 7
RI_TOTAL_WEIGHT: Final = 8
RI_RETRY: Final = 9
RI_NUM_RETRIES: Final = 10
RI_PREVIOUS_HOSTS: Final = 11
RI_HOST_ATTEMPTS: Final = 12
RI_ON_UT: Final = 13
RI_ON_UF: Final = 14
RI_ON_UC: Final = 15
RI_HAS_FAULT: Final = 16
RI_NOT_FOUND: Final = 17  # the local reply's status when a pick names a missing cluster
RI_MIRROR_AT: Final = 18  # the route's first row of the mirror table (mr_i)
RI_MIRROR_N: Final = 19  # its mirrors (request copies whose answer nobody waits for)
RI_SIZE: Final = 20

# mirror table mr_i: one row per (route, mirror) whose cluster the gateway has
MR_CLUSTER: Final = 0
MR_PER_MILLION: Final = 1  # share of requests copied, per million
MR_SIZE: Final = 2
WC_NOT_FOUND: Final = -2  # wc_cluster of a backend that does not resolve (no such cluster)

RF_DELAY_S: Final = 0
RF_TIMEOUT_S: Final = 1  # inf for none
RF_PER_TRY_S: Final = 2  # inf for none
RF_BACKOFF_BASE: Final = 3
RF_BACKOFF_MAX: Final = 4
RF_SIZE: Final = 5

# -- rate-limit bucket specs: bk_i, bk_f ----------------------------------------------------------
BI_STATUS: Final = 0
BI_ENABLED_PM: Final = 1
BI_ENFORCED_PM: Final = 2
BI_SIZE: Final = 3
BF_MAX_TOKENS: Final = 0
BF_PER_FILL: Final = 1
BF_INTERVAL: Final = 2
BF_SIZE: Final = 3

# -- clusters: cl_i, cl_f -------------------------------------------------------------------
LB_ROUND_ROBIN: Final = 0
LB_LEAST_REQUEST: Final = 1
LB_RANDOM: Final = 2
LB_RING: Final = 3  # RING_HASH and MAGLEV (the SimPy engine models both as Envoy's ring)

KI_LB: Final = 0
KI_MAX_REQUESTS: Final = 1
KI_MAX_CONN_PENDING: Final = 2
KI_MAX_RETRIES: Final = 3
KI_OUTLIER: Final = 4
KI_OD_5XX: Final = 5  # -1 none
KI_OD_GW: Final = 6  # -1 none
KI_OD_MAX_PCT: Final = 7
KI_OD_MIN_HEALTH: Final = 8
KI_POOLED: Final = 9  # HTTP/1.1 pools per worker and host (maxConnections < POOL_LIMIT):
# the cluster's ordinal among the pooled ones + 1 (its block of pl_i), 0 = not pooled
KI_MAX_CONN: Final = 10  # maxConnections (counted across the workers' pools)
KI_MAX_PENDING: Final = 11  # http1MaxPendingRequests (the pools' pending requests)
KI_SIZE: Final = 12
POOL_LIMIT: Final = 1024
"""A connection limit below this runs the pool model (sim/stages/upstream.py, _Pool); at it and
above, the in-flight bound max_connections + max_pending_requests stands in for the pools: they
differ only beyond that many requests in flight to one cluster (Envoy's own default is 1024)."""
KF_CONNECT_TIMEOUT: Final = 0
KF_OD_INTERVAL: Final = 1
KF_OD_BASE: Final = 2
KF_SIZE: Final = 3

# -- versions: ve_i, ve_f -------------------------------------------------------------------
VI_SERVICE: Final = 0
VI_CONCURRENCY: Final = 1
VI_DIST: Final = 2
VI_ERR_AT: Final = 3
VI_ERR_N: Final = 4
VI_AUTOSCALE: Final = 5
VI_MIN: Final = 6
VI_MAX: Final = 7
VI_SIDECAR: Final = 8
VI_SIDECAR_CONC: Final = 9
VI_NODE_CAP: Final = 10  # autoscale: pods of the version the current nodes hold, -1 no limit
VI_PODS_PER_NODE: Final = 11  # autoscale: pods a new node holds, 0 = as many as are pending
VI_FAST_ERRORS: Final = 12  # error models that cost no service time (errors[].cost: none)
VI_STOP: Final = 13  # 1: on_cancel stop (a cancelled try's work is dropped at the reset)
VI_SIZE: Final = 14
VF_STARTUP: Final = 0
VF_TARGET: Final = 1
VF_TOLERANCE: Final = 2
VF_SYNC: Final = 3
VF_ENDPOINT_DELAY: Final = 4
VF_NODE_PROVISIONING: Final = 5  # autoscale: seconds until new nodes take pods
VF_SIZE: Final = 6

# error models: er_f[e, :] = probability, start, end, first_n; er_i[e] = status
EF_P: Final = 0
EF_START: Final = 1
EF_END: Final = 2
EF_FIRST_N: Final = 3
EF_COST_NONE: Final = 4  # 1.0: the error answers before the server (cost: none), 0.0: after it
EF_SIZE: Final = 5

# -- events: ev_i, ev_f ---------------------------------------------------------------------
E_POD_CRASH: Final = 0
E_NODE_LOSS: Final = 1
E_AZ_LOSS: Final = 2
E_ERROR_BURST: Final = 3
E_DEPLOY: Final = 4
E_SCALE: Final = 5

EI_KIND: Final = 0
EI_SERVICE: Final = 1
EI_VERSION: Final = 2  # -1: every version of the service
EI_AZ: Final = 3
EI_NODE: Final = 4
EI_COUNT: Final = 5
EI_STATUS: Final = 6
EI_REPLICAS: Final = 7  # -1 none
EI_SIZE: Final = 8
EF_AT: Final = 0
EF_RESTART: Final = 1  # inf: no restart
EF_DURATION: Final = 2  # inf: to the end
EF_PROB: Final = 3
EVF_SIZE: Final = 4

# -- response flags, in the order Envoy's stages add them (so the joined string matches) ----
FLAG_NAMES: Final = ("DI", "FI", "RL", "NC", "NR", "LBF", "URX", "UO", "UH", "UF", "UC", "UT")
F_DI: Final = 1 << 0
F_FI: Final = 1 << 1
F_RL: Final = 1 << 2
F_NC: Final = 1 << 3
F_NR: Final = 1 << 4
F_LBF: Final = 1 << 5
F_URX: Final = 1 << 6
F_UO: Final = 1 << 7
F_UH: Final = 1 << 8
F_UF: Final = 1 << 9
F_UC: Final = 1 << 10
F_UT: Final = 1 << 11
N_FLAGS: Final = 12
TRY_FLAGS: Final = ("", "UF", "UC", "UT")
"""The flag of one upstream attempt (the ``upstream`` frame), by index."""

# -- the number of request histograms per key: end to end, then the stages ------------------
STAGE_ROWS: Final = ("total", "lb", "ingress", "route")
