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
KI_POOLED: Final = 9  # HTTP/1.1 pools per worker and host (upstream.POOLED_BELOW):
# the cluster's ordinal among the pooled ones + 1 (its block of pl_i), 0 = not pooled
KI_MAX_CONN: Final = 10  # maxConnections (counted across the workers' pools)
KI_MAX_PENDING: Final = 11  # http1MaxPendingRequests (the pools' pending requests)
KI_SIZE: Final = 12
KF_CONNECT_TIMEOUT: Final = 0
KF_OD_INTERVAL: Final = 1
KF_OD_BASE: Final = 2
KF_OD_MERGE: Final = 3  # update_merge_window: ejections reach the workers (upstream's)
KF_SIZE: Final = 4

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

# -- state columns (the arrays run.py allocates) ----------------------------------------------
# st_i: scalars
SI_STARTED: Final = 0
SI_SEQ: Final = 1
SI_HEAP: Final = 2
SI_REQ_FREE: Final = 3  # free slots on the request free stack
SI_JOB_FREE: Final = 4
SI_PODS: Final = 5
SI_GEN: Final = 6  # pod registry generation (clusters cache their host lists on it)
SI_RECORDS: Final = 7
SI_LATE: Final = 8
SI_CLAMPED: Final = 9
SI_MAX_K: Final = 10
SI_LB_RR: Final = 11
SI_CODES: Final = 12
SI_HPA_N: Final = 13
SI_ATTEMPT: Final = 14  # global try counter: stale deadline and completion events name an old try
SI_DONE: Final = 15  # every interval histogram reduced (the run reached its end)
SI_NEXT: Final = 16  # the continuation to run next (see then() in run_until)
SI_NEXT_X: Final = 17
SI_NEXT_STATUS: Final = 18
SI_NEXT_FLAG: Final = 19
SI_REJECTED: Final = 20  # arrivals after the warm-up refused at the in-flight limit
SI_DHEAP: Final = 21  # entries in the deadline heap
SI_RING_HEAD: Final = 22  # the deadline ring's first live entry
SI_RING_END: Final = 23  # one past its last
SI_BUF: Final = 24  # 1 while the event buffer holds an event (see push() in run_until)
SI_BUF_SEQ: Final = 25
SI_BUF_KEY: Final = 26
SI_BUF_AUX: Final = 27
SI_SHADOWS: Final = 28  # mirrored tries in flight (their request slots are no client's request)
SI_IDS: Final = 29  # requests started: the next request's id (the SimPy engine's request counter)
SI_TRACED: Final = 30  # rows of trc written
SI_TRACE_DROPPED: Final = 31  # traced requests beyond trc's rows (their spans are counted dropped)
SI_RING_STALE: Final = (
    32  # 1 once the pod set changed: consistent-hash rings are rebuilt (NEED_RING)
)
SI_SIZE: Final = 33
# st_f
SF_NOW: Final = 0
SF_BUF_T: Final = 1  # the buffered event's time
SF_SIZE: Final = 2

# request slots: rq_f, rq_i
Q_T0: Final = 0
Q_PENDING: Final = 1
Q_TAIL: Final = 2
Q_LB_S: Final = 3
Q_INGRESS_S: Final = 4
Q_ING_T0: Final = 5
Q_CPU: Final = 6
Q_DEADLINE: Final = 7
Q_LIMIT: Final = 8
Q_SENT: Final = 9  # when its try was sent (after a first try's fault delay): its access log's time
Q_SIZE: Final = 10
R_TRAFFIC: Final = 0
R_CLASS: Final = 1
R_AZ: Final = 2
R_TARGET: Final = 3
R_GW: Final = 4
R_WORKER: Final = 5
R_ROUTE: Final = 6
R_CLUSTER: Final = 7
R_LABEL: Final = 8
R_STATUS: Final = 9
R_FLAGS: Final = 10
R_RETRIES: Final = 11
R_UPSTREAM: Final = 12
R_ATTEMPT: Final = 13
R_POD: Final = 14
R_TRY_STATUS: Final = 15
R_TRY_FLAG: Final = 16
R_NEXT: Final = 17
R_NTRIED: Final = 18
R_NODE: Final = 19
R_JOB: Final = 20
R_MIRROR: Final = 21  # 1: the slot holds a mirrored try (no client waits for it), not a request
R_ID: Final = 22  # the request's id (a traced request's trace id)
R_POOL: Final = 23  # the HTTP/1.1 pool (a row of pl_i) its try holds or waits in, -1 none
R_POOL_WAIT: Final = 24  # 1 while it waits in that pool's pending queue (linked by R_NEXT); 2 once
# it holds a connection, for try_start to send the try (POOL_GRANTED)
POOL_GRANTED: Final = 2
R_SIZE: Final = 25

# jobs (a try's work at a pod, which goes on when the client stops waiting): jb_i, and jb_f
# (when the job joined a queue, for the tiers' wait counts)
J_POD: Final = 0
J_REQ: Final = 1  # -1 once detached
J_ATTEMPT: Final = 2
J_NEXT: Final = 3
J_STAGE: Final = 4  # JS_*: where the job is at its pod
J_SIZE: Final = 5
JS_WAY: Final = 0  # on the network or in the sidecar
JS_QUEUED: Final = 1  # waiting for a server (jb_f: since when)
JS_SERVING: Final = 2  # holding a server (jb_f: when its service ends)
JS_CANCELLED: Final = (
    3  # its service was dropped at a reset (on_cancel stop): its completion is void
)

# pods: pd_i, pd_f
P_VERSION: Final = 0
P_AZ: Final = 1
P_ALIVE: Final = 2
P_NODE_ALIVE: Final = 3
P_IN_EP: Final = 4
P_ACTIVE: Final = 5
P_SERVED: Final = 6
P_SRV_N: Final = 7
P_SRV_HEAD: Final = 8
P_SRV_TAIL: Final = 9
P_SC_N: Final = 10
P_SC_HEAD: Final = 11
P_SC_TAIL: Final = 12
P_ORDINAL: Final = 13
P_NBURST: Final = 14
P_SIZE: Final = 15
PF_READY_AT: Final = 0

# gateway workers: wk_i
W_BUSY: Final = 0
W_HEAD: Final = 1
W_TAIL: Final = 2
# targets: tg_s
T_HEALTHY: Final = 0
T_OUTSTANDING: Final = 1
# connections: cn_i, cn_f
C_VALID: Final = 0
C_TARGET: Final = 1
C_GW: Final = 2
C_WORKER: Final = 3
C_REQUESTS: Final = 4
# clusters: cs_i
CS_ACTIVE: Final = 0
CS_RETRIES: Final = 1
CS_RR: Final = 2
CS_GEN: Final = 3
CS_N: Final = 4
CS_CONNS: Final = 5  # open connections of its HTTP/1.1 pools, across the workers (cx_active)
CS_PENDING: Final = 6  # requests waiting in its pools (rq_pending_active)
# HTTP/1.1 pools (per pooled cluster, gateway worker and pod): pl_i
PL_CONNS: Final = 0  # open connections, busy or idle
PL_IDLE: Final = 1  # connections ready for a request
PL_HEAD: Final = 2  # the pending queue, FIFO (requests linked by R_NEXT), -1 empty
PL_TAIL: Final = 3
PL_ROW: Final = 4
# outlier state per (cluster, pod): od_i
O_5XX: Final = 0
O_GW: Final = 1
O_EJECTIONS: Final = 2  # ejectTimeBackoff(): the ejection-time multiplier
O_EJECTED: Final = 3  # 1 while ejected (re-admission applied lazily, see outcome)
O_UNEJ_TICK: Final = 4  # interval tick of the last re-admission (decay counted to it), -1 = none
O_VIEW: Final = 5  # 1 while the workers' load balancers see it ejected (the last delivery)
O_READMIT: Final = 6  # 1 while its re-admission at od_f is still to reach the cluster manager
O_N: Final = 7
# per cluster, after its pods' columns in od_f (od_f[c, -OD_LAST]): the workers' last update
# from the cluster manager, and the time a held update is delivered (inf: none held)
OD_LAST: Final = 2
OD_MERGE: Final = 1
# key stats: key_st
KS_REQUESTS: Final = 0
KS_OK: Final = 1
KS_RETRIES: Final = 2
KS_UPSTREAM: Final = 3
KS_FLAGS: Final = 4

# fixed random streams (lower.Plan.streams, in order)
S_LB: Final = 0
S_LB_LAT: Final = 1
S_KP: Final = 2
S_NODE: Final = 3
S_AZ: Final = 4
S_CPU: Final = 5
S_ILAT: Final = 6
S_ROUTER: Final = 7
S_WEIGHTS: Final = 8
S_NET: Final = 9
S_SIDECAR: Final = 10
S_BACKOFF: Final = 11
S_TRACE: Final = 12
N_FIXED_STREAMS: Final = 13  # the traffic streams follow (run.py's tr_stream_at)

# -- events ---------------------------------------------------------------------------------
K_ARRIVAL: Final = 0
K_INGRESS: Final = 1
K_CPU_DONE: Final = 2
K_JOB_ARRIVE: Final = 3
K_SIDECAR_DONE: Final = 4
K_SERVICE_DONE: Final = 5
K_TRY_END: Final = 6
K_DEADLINE: Final = 7
K_BACKOFF: Final = 8
K_FINISH: Final = 9
K_SAMPLE: Final = 10
K_HEALTH: Final = 11
K_EVENT: Final = 12
K_POD_LEAVE: Final = 13
K_POD_REVIVE: Final = 14
K_HPA: Final = 15
K_MIRROR: Final = 16  # a mirrored try starts (Router.dispatch's env.process(self._mirror(...)))
K_POOL_ASK: Final = 17  # a request asks its HTTP/1.1 pool, after a fault delay
K_POOL_READY: Final = 18  # a pending request is handed a connection (its pool's waiter succeeds)
K_BITS: Final = 5

# continuations (then() in run_until)
W_NONE: Final = 0
W_FINALIZE: Final = 1
W_TRY_END: Final = 2
W_TRY_START: Final = 3
W_JOB_ARRIVE: Final = 4
W_SERVER_ACQUIRE: Final = 5
W_SERVICE_DONE: Final = 6
W_AFTER_CPU: Final = 7
W_POOL_ASK: Final = 8

# return codes of run_until
DONE: Final = 0
GROW_REQUESTS: Final = 1
GROW_JOBS: Final = 2
GROW_HEAP: Final = 3
GROW_CODES: Final = 4
GROW_HPA: Final = 5
NEED_RING: Final = (
    6  # a consistent-hash cluster's ring is older than the pod set: run.py rebuilds it
)

RING: Final = 4
# ac_f, the tiers' accounts over [warm-up, end] (FifoServer's, istiolab/sim/stages/_server.py):
# rows are the gateway pods, then n_gw + pod; a block of columns for the server (the gateway's
# workers, a pod's server), then one for a pod's sidecar
AC_BUSY: Final = 0  # busy server-seconds
AC_CAP: Final = 1  # available server-seconds
AC_ARRIVALS: Final = 2  # requests that asked for a server
AC_WAITED: Final = 3  # ... and had to queue
AC_WAIT_S: Final = 4  # seconds they queued (counted when the server is handed over)
AC_SIDECAR: Final = 5  # the sidecar's block
AC_ROW: Final = 10
KEY_ST_W: Final = KS_FLAGS + N_FLAGS  # key_st's row length (a name: _borrow_rows takes a constant)
# the row lengths of the other tables the lowering and run._State allocate with fixed rows
D_ROW: Final = 4  # dists: kind, a, b, offset
TG_ROW: Final = 3  # tg_i: AZ, node, gateway
RS_ROW: Final = 4  # rs: xoshiro256+ state
PF_ROW: Final = 1  # pd_f
WK_ROW: Final = 3  # wk_i
TS_ROW: Final = 2  # tg_s
CN_ROW: Final = 5  # cn_i
CS_ROW: Final = 7  # cs_i
CK_ROW: Final = 3  # code_key
IG_ROW: Final = 2  # ig
# trc: one row per traced request (the SimPy engine's Engine._trace takes the same values)
TRC_ID: Final = 0
TRC_T0: Final = 1
TRC_END: Final = 2
TRC_LB_S: Final = 3
TRC_INGRESS_S: Final = 4
TRC_CLASS: Final = 5
TRC_STATUS: Final = 6
TRC_FLAGS: Final = 7
TRC_ROUTE: Final = 8
TRC_CLUSTER: Final = 9
TRC_LABEL: Final = 10
TRC_NODE: Final = 11
TRC_ROW: Final = 12
GRACE: Final = 2  # Metrics.GRACE_INTERVALS
