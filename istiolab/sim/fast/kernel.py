"""The fast engine's event loop, compiled with numba.

One function, :func:`run_until`, runs the whole pipeline (arrivals, keep-alive connections, the
AWS load balancer, ingress workers, the router, upstream clusters, backend pods, events, the
autoscaler, the utilisation sampler) over flat arrays, and tallies the metrics in the same
structures :class:`~istiolab.sim.metrics.Metrics` keeps (HDR count arrays per key and stage,
per-interval counters, per-interval latency histograms reduced to percentiles as they finish).

Why one function with inner functions: numba compiles inner functions inline into their caller
and lets them read the caller's arrays without passing them, which keeps ~80 arrays out of
every signature. Inner functions cannot recurse, so a retry always goes through the event heap
(as a back-off event), never by calling the try function from itself.

Why every piece of state lives in an array passed in: the loop can stop at any event boundary
(``until``, or when a growable table is nearly full) and resume where it stopped, so progress
reports and table growth cost nothing and change no result.

Semantics follow the SimPy stages line by line (``istiolab/sim/stages/*.py``); comments say where
this engine differs (only in the order of events at exactly equal times, and in random streams).
The module is excluded from mypy's strict mode (``pyproject.toml``): numba ships no types and
the body is typed by numba itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from istiolab.sim.fast.layout import (
    A_CONSTANT,
    A_DIURNAL,
    A_POISSON,
    A_REPLAY,
    AC_ARRIVALS,
    AC_BUSY,
    AC_CAP,
    AC_ROW,
    AC_SIDECAR,
    AC_WAIT_S,
    AC_WAITED,
    BF_INTERVAL,
    BF_MAX_TOKENS,
    BF_PER_FILL,
    BI_ENABLED_PM,
    BI_ENFORCED_PM,
    BI_STATUS,
    C_GW,
    C_REQUESTS,
    C_TARGET,
    C_VALID,
    C_WORKER,
    CF_DURATION,
    CF_HC_INTERVAL,
    CF_INTERVAL,
    CF_MAX_IN_FLIGHT,
    CF_SIZE,
    CF_TRACE_SAMPLE,
    CF_WARMUP,
    CI_ALB_RR,
    CI_AZS,
    CI_BACKOFF_DOCS,
    CI_BUCKET_SPECS,
    CI_BUCKET_TIMER,
    CI_CLUSTERS,
    CI_CROSS_ZONE,
    CI_D_AZ,
    CI_D_CPU,
    CI_D_KP,
    CI_D_LAT,
    CI_D_LB,
    CI_D_NET,
    CI_D_NODE,
    CI_D_SC_CPU,
    CI_D_SC_LAT,
    CI_EJECT_ONE,
    CI_EVENTS,
    CI_GW,
    CI_HC_UNHEALTHY,
    CI_HDR_HALFCOUNT,
    CI_HDR_HALFMAG,
    CI_HDR_HIGHEST,
    CI_HDR_MASK,
    CI_HDR_UNIT,
    CI_INTERVALS,
    CI_LB_ALB,
    CI_LOCAL,
    CI_NODES,
    CI_ROUTES,
    CI_SIZE,
    CI_STATUSES,
    CI_TARGET_IP,
    CI_TARGETS,
    CI_TRAFFIC,
    CI_VERSIONS,
    CI_WORKERS,
    CK_ROW,
    CN_ROW,
    CS_ACTIVE,
    CS_CONNS,
    CS_GEN,
    CS_N,
    CS_PENDING,
    CS_RETRIES,
    CS_ROW,
    D_DET,
    D_EMPIRICAL,
    D_EXP,
    D_GAMMA,
    D_LOGNORMAL,
    D_ROW,
    D_UNIFORM,
    DONE,
    E_AZ_LOSS,
    E_DEPLOY,
    E_ERROR_BURST,
    E_NODE_LOSS,
    E_POD_CRASH,
    E_SCALE,
    EF_AT,
    EF_COST_NONE,
    EF_DURATION,
    EF_END,
    EF_FIRST_N,
    EF_P,
    EF_PROB,
    EF_RESTART,
    EF_SIZE,
    EF_START,
    EI_AZ,
    EI_COUNT,
    EI_KIND,
    EI_NODE,
    EI_REPLICAS,
    EI_SERVICE,
    EI_STATUS,
    EI_VERSION,
    F_DI,
    F_FI,
    F_LBF,
    F_NC,
    F_NR,
    F_RL,
    F_UC,
    F_UF,
    F_UH,
    F_UO,
    F_URX,
    F_UT,
    GRACE,
    GROW_CODES,
    GROW_HEAP,
    GROW_HPA,
    GROW_JOBS,
    GROW_REQUESTS,
    IG_ROW,
    J_ATTEMPT,
    J_NEXT,
    J_POD,
    J_REQ,
    J_SIZE,
    J_STAGE,
    JS_CANCELLED,
    JS_QUEUED,
    JS_SERVING,
    JS_WAY,
    K_ARRIVAL,
    K_BACKOFF,
    K_BITS,
    K_CPU_DONE,
    K_DEADLINE,
    K_EVENT,
    K_FINISH,
    K_HEALTH,
    K_HPA,
    K_INGRESS,
    K_JOB_ARRIVE,
    K_MIRROR,
    K_POD_LEAVE,
    K_POD_REVIVE,
    K_POOL_ASK,
    K_POOL_READY,
    K_SAMPLE,
    K_SERVICE_DONE,
    K_SIDECAR_DONE,
    K_TRY_END,
    KEY_ST_W,
    KF_CONNECT_TIMEOUT,
    KF_OD_BASE,
    KF_OD_INTERVAL,
    KF_OD_MERGE,
    KF_SIZE,
    KI_LB,
    KI_MAX_CONN,
    KI_MAX_CONN_PENDING,
    KI_MAX_PENDING,
    KI_MAX_REQUESTS,
    KI_MAX_RETRIES,
    KI_OD_5XX,
    KI_OD_GW,
    KI_OD_MAX_PCT,
    KI_OD_MIN_HEALTH,
    KI_OUTLIER,
    KI_POOLED,
    KI_SIZE,
    KS_FLAGS,
    KS_OK,
    KS_REQUESTS,
    KS_RETRIES,
    KS_UPSTREAM,
    LB_LEAST_REQUEST,
    LB_RING,
    LB_ROUND_ROBIN,
    MR_CLUSTER,
    MR_PER_MILLION,
    MR_SIZE,
    N_FLAGS,
    NEED_RING,
    O_5XX,
    O_EJECTED,
    O_EJECTIONS,
    O_GW,
    O_READMIT,
    O_UNEJ_TICK,
    O_VIEW,
    OD_LAST,
    OD_MERGE,
    P_ACTIVE,
    P_ALIVE,
    P_AZ,
    P_IN_EP,
    P_NBURST,
    P_NODE_ALIVE,
    P_ORDINAL,
    P_SC_HEAD,
    P_SC_N,
    P_SC_TAIL,
    P_SERVED,
    P_SIZE,
    P_SRV_HEAD,
    P_SRV_N,
    P_SRV_TAIL,
    P_VERSION,
    PF_READY_AT,
    PF_ROW,
    PL_CONNS,
    PL_HEAD,
    PL_IDLE,
    PL_ROW,
    PL_TAIL,
    POOL_GRANTED,
    Q_CPU,
    Q_DEADLINE,
    Q_ING_T0,
    Q_INGRESS_S,
    Q_LB_S,
    Q_PENDING,
    Q_SENT,
    Q_SIZE,
    Q_T0,
    Q_TAIL,
    R_ATTEMPT,
    R_AZ,
    R_CLASS,
    R_CLUSTER,
    R_FLAGS,
    R_GW,
    R_ID,
    R_JOB,
    R_LABEL,
    R_MIRROR,
    R_NEXT,
    R_NODE,
    R_NTRIED,
    R_POD,
    R_POOL,
    R_POOL_WAIT,
    R_RETRIES,
    R_ROUTE,
    R_SIZE,
    R_STATUS,
    R_TARGET,
    R_TRAFFIC,
    R_TRY_FLAG,
    R_TRY_STATUS,
    R_UPSTREAM,
    R_WORKER,
    RF_BACKOFF_BASE,
    RF_BACKOFF_MAX,
    RF_DELAY_S,
    RF_PER_TRY_S,
    RF_SIZE,
    RF_TIMEOUT_S,
    RI_ABORT_PM,
    RI_ABORT_STATUS,
    RI_BUCKET,
    RI_DELAY_PM,
    RI_DIRECT,
    RI_HAS_FAULT,
    RI_HOST_ATTEMPTS,
    RI_MIRROR_AT,
    RI_MIRROR_N,
    RI_NOT_FOUND,
    RI_NUM_RETRIES,
    RI_ON_UC,
    RI_ON_UF,
    RI_ON_UT,
    RI_PREVIOUS_HOSTS,
    RI_REDIRECT,
    RI_RETRY,
    RI_SIZE,
    RI_TOTAL_WEIGHT,
    RI_WC_AT,
    RI_WC_N,
    RING,
    RS_ROW,
    S_AZ,
    S_BACKOFF,
    S_CPU,
    S_ILAT,
    S_KP,
    S_LB,
    S_LB_LAT,
    S_NET,
    S_NODE,
    S_ROUTER,
    S_SIDECAR,
    S_TRACE,
    S_WEIGHTS,
    SF_BUF_T,
    SF_NOW,
    SI_ATTEMPT,
    SI_BUF,
    SI_BUF_AUX,
    SI_BUF_KEY,
    SI_BUF_SEQ,
    SI_CLAMPED,
    SI_CODES,
    SI_DHEAP,
    SI_DONE,
    SI_GEN,
    SI_HEAP,
    SI_HPA_N,
    SI_IDS,
    SI_JOB_FREE,
    SI_LATE,
    SI_LB_RR,
    SI_MAX_K,
    SI_NEXT,
    SI_NEXT_FLAG,
    SI_NEXT_STATUS,
    SI_NEXT_X,
    SI_PODS,
    SI_RECORDS,
    SI_REJECTED,
    SI_REQ_FREE,
    SI_RING_END,
    SI_RING_HEAD,
    SI_RING_STALE,
    SI_SEQ,
    SI_SHADOWS,
    SI_STARTED,
    SI_TRACE_DROPPED,
    SI_TRACED,
    T_HEALTHY,
    T_OUTSTANDING,
    TF_AMPLITUDE,
    TF_END,
    TF_LAMBDA_MAX,
    TF_LIFETIME,
    TF_PERIOD,
    TF_RATE,
    TF_SIZE,
    TF_START,
    TG_ROW,
    TI_AZ_AT,
    TI_AZ_N,
    TI_AZCUM_AT,
    TI_CAP,
    TI_CLASS_AT,
    TI_KEEPALIVE,
    TI_KIND,
    TI_POOL,
    TI_POOL_AT,
    TI_RAMP,
    TI_REPLAY_AT,
    TI_REPLAY_N,
    TI_SIZE,
    TI_STEPS_AT,
    TI_STEPS_N,
    TI_TPL,
    TI_TPL_AT,
    TI_USERS,
    TRC_CLASS,
    TRC_CLUSTER,
    TRC_END,
    TRC_FLAGS,
    TRC_ID,
    TRC_INGRESS_S,
    TRC_LABEL,
    TRC_LB_S,
    TRC_NODE,
    TRC_ROUTE,
    TRC_ROW,
    TRC_STATUS,
    TRC_T0,
    TS_ROW,
    VF_ENDPOINT_DELAY,
    VF_NODE_PROVISIONING,
    VF_SIZE,
    VF_STARTUP,
    VF_SYNC,
    VF_TARGET,
    VF_TOLERANCE,
    VI_AUTOSCALE,
    VI_CONCURRENCY,
    VI_DIST,
    VI_ERR_AT,
    VI_ERR_N,
    VI_FAST_ERRORS,
    VI_MAX,
    VI_MIN,
    VI_NODE_CAP,
    VI_PODS_PER_NODE,
    VI_SERVICE,
    VI_SIDECAR,
    VI_SIDECAR_CONC,
    VI_SIZE,
    VI_STOP,
    W_AFTER_CPU,
    W_BUSY,
    W_FINALIZE,
    W_HEAD,
    W_JOB_ARRIVE,
    W_NONE,
    W_POOL_ASK,
    W_SERVER_ACQUIRE,
    W_SERVICE_DONE,
    W_TAIL,
    W_TRY_END,
    W_TRY_START,
    WC_NOT_FOUND,
    WK_ROW,
)

LOW_PRIORITY = np.int64(1) << np.int64(60)
"""Added to a deadline's sequence number: at an exactly equal time, completions win.

The SimPy stages decide ``now + t > deadline`` before waiting, so a try that ends exactly at
its deadline succeeds there; running deadlines after every other event of the same instant
gives the same answer."""

_U11 = np.uint64(11)
_U17 = np.uint64(17)
_U45 = np.uint64(45)
_U19 = np.uint64(19)
_U2 = np.uint64(2)
_INV53 = 1.0 / 9007199254740992.0
_U3 = np.uint64(3)
_U55 = np.uint64(55)
_U56 = np.uint64(56)
_U1 = np.uint64(1)
_MASK52 = np.uint64((1 << 52) - 1)


def _ziggurat(
    f: Callable[[float], float], f_inv: Callable[[float], float], tail: Callable[[float], float]
) -> tuple[float, npt.NDArray[np.float64], npt.NDArray[np.uint64], npt.NDArray[np.float64]]:
    """The 256 layers of a ziggurat under a decreasing density *f* on [0, ∞) (unnormalised).

    Marsaglia and Tsang, "The Ziggurat Method for Generating Random Variables" (J. Stat.
    Softw. 5(8), 2000): layer 0 is the base strip (its rectangle under f(r) and the tail beyond
    r, *tail(r)* its area), layers 1..255 rectangles of the same area v whose right edges x_i
    step up the curve, x_256 = 0. r is found by bisection so that the layers end exactly at
    f(0) = 1. Returns r and per layer: x_i / 2**52 (a 52-bit integer times it is a point in
    the layer), the integer below which the point is under the next layer's edge (accepted at
    once), and f(x_i) (for the wedge test).
    """

    def walk(r: float) -> tuple[float | None, float, list[float]]:
        v = r * f(r) + tail(r)
        x = [v / f(r), r]
        for _ in range(254):
            y = f(x[-1]) + v / x[-1]
            if y >= 1.0:
                return None, v, x
            x.append(f_inv(y))
        return f(x[-1]) + v / x[-1] - 1.0, v, x

    lo, hi = 1.0, 16.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        gap = walk(mid)[0]
        if gap is None or gap > 0:
            lo = mid
        else:
            hi = mid
    _, _, edges = walk(hi)
    xs = np.array([*edges, 0.0])
    scale = float(1 << 52)
    width = xs[:256] / scale
    inner = np.array([int(xs[i + 1] / xs[i] * scale) for i in range(256)], dtype=np.uint64)
    height = np.array([f(float(x)) for x in xs])
    return hi, width, inner, height


# standard normal: f(x) = exp(-x²/2), r ≈ 3.6541528853610088 (the published 256-layer value)
_ZN_R, _ZN_W, _ZN_K, _ZN_F = _ziggurat(
    lambda x: math.exp(-0.5 * x * x),
    lambda y: math.sqrt(-2.0 * math.log(y)),
    lambda r: math.sqrt(math.pi / 2) * math.erfc(r / math.sqrt(2.0)),
)
# standard exponential: f(x) = exp(-x), r ≈ 7.697117470131050
_ZE_R, _ZE_W, _ZE_K, _ZE_F = _ziggurat(
    lambda x: math.exp(-x), lambda y: -math.log(y), lambda r: math.exp(-r)
)
_FLAG_BITS = 1 << N_FLAGS
_PERCENTILES = (50.0, 90.0, 99.0, 99.9)  # as istiolab.sim.tallies.PERCENTILES


@intrinsic
def _borrow(typingctx, arr):
    """A view of *arr* that is not reference-counted (its meminfo is NULL).

    numba inlines every inner function of :func:`run_until` and re-binds the arrays it uses at
    each inlined call, with an atomic increment and decrement of the array's reference count
    each time: several hundred per request, about half the loop's time. On a view without a
    meminfo ``NRT_incref``/``NRT_decref`` return at once. The caller's arrays outlive the call,
    so nothing is freed early; a view never leaves :func:`run_until`.
    """
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        src = context.make_array(sig.args[0])(context, builder, value=args[0])
        out = context.make_array(sig.return_type)(context, builder)
        out.meminfo = cgutils.get_null_value(out.meminfo.type)
        out.parent = cgutils.get_null_value(out.parent.type)
        out.nitems = src.nitems
        out.itemsize = src.itemsize
        out.data = src.data
        out.shape = src.shape
        out.strides = src.strides
        return out._getvalue()

    return arr(arr), codegen


@intrinsic
def _borrow_rows(typingctx, arr, width):
    """:func:`_borrow` for a 2-d table whose rows are *width* long, a compile-time constant.

    numba computes ``a[i, j]`` of a C-contiguous array as ``i * a.shape[1] + j`` with the
    shape read from the array at run time (reloaded from the stack, in a loop this size);
    with the row length a constant the offset is a multiply by a literal. ``run_until``
    checks each table's row length against the layout before it borrows it.
    """
    if not (isinstance(arr, types.Array) and arr.ndim == 2 and arr.layout == "C"):
        return None
    if not isinstance(width, types.IntegerLiteral):
        return None  # numba retries with the literal type of a constant
    w = width.literal_value

    def codegen(context, builder, sig, args):
        src = context.make_array(sig.args[0])(context, builder, value=args[0])
        out = context.make_array(sig.return_type)(context, builder)
        out.meminfo = cgutils.get_null_value(out.meminfo.type)
        out.parent = cgutils.get_null_value(out.parent.type)
        out.nitems = src.nitems
        out.itemsize = src.itemsize
        out.data = src.data
        intp = context.get_value_type(types.intp)
        size = context.get_abi_sizeof(context.get_data_type(sig.args[0].dtype))
        rows = builder.extract_value(src.shape, 0)
        out.shape = cgutils.pack_array(builder, [rows, intp(w)])
        out.strides = cgutils.pack_array(builder, [intp(w * size), intp(size)])
        return out._getvalue()

    return arr(arr, width), codegen


@intrinsic
def _bit_length(typingctx, x):
    """``int.bit_length`` of a non-negative int64: one ``lzcnt`` (frexp is a libm call)."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        v = context.cast(builder, args[0], sig.args[0], types.int64)
        zeros = builder.ctlz(v, ir.Constant(ir.IntType(1), 0))
        return builder.sub(ir.Constant(ir.IntType(64), 64), zeros)

    return types.int64(x), codegen


@intrinsic
def _nonneg(typingctx, x):
    """*x*, an index the caller knows is >= 0, with that fact told to LLVM (``llvm.assume``).

    numba wraps a negative signed index around (``a[-1]``): a test, an add and a select on
    every array access, with the array's shape reloaded for it. Knowing the index is not
    negative, LLVM drops them from every access the assumption dominates. A negative value
    here would be undefined behaviour, so only indices that are valid by construction (a slot
    from a free list, a pod or cluster a live try holds) go through it.
    """
    if not isinstance(x, types.Integer) or not x.signed:
        return None

    def codegen(context, builder, sig, args):
        builder.assume(builder.icmp_signed(">=", args[0], ir.Constant(args[0].type, 0)))
        return args[0]

    return x(x), codegen


@njit(cache=True, inline="always")
def _fmin(a, b):
    """min(a, b) (the same value), inlined: numba calls its builtin min as a function."""
    return b if b < a else a


@njit(cache=True, inline="always")
def _fmax(a, b):
    """max(a, b) (the same value), inlined as _fmin."""
    return b if b > a else a


@njit(cache=True, inline="always")
def _next64(rs, s):
    """xoshiro256+: the next 64-bit output of stream *s* (its low bits are weak: use the top)."""
    s0 = rs[s, 0]
    s1 = rs[s, 1]
    s2 = rs[s, 2]
    s3 = rs[s, 3]
    result = s0 + s3
    t = s1 << _U17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = (s3 << _U45) | (s3 >> _U19)
    rs[s, 0] = s0
    rs[s, 1] = s1
    rs[s, 2] = s2
    rs[s, 3] = s3
    return result


@njit(cache=True, inline="always")
def _uniform(rs, s):
    """xoshiro256+ : U[0, 1) from stream *s* (53 random bits).

    Inlined where it is called (``inline="always"``, numba's IR inlining): a call passes the
    stream table as seven arguments, which cost more than the generator (perf: 7 % of the
    seed pipeline's loop was _uniform and its calls).
    """
    return float(_next64(rs, s) >> _U11) * _INV53


@njit(cache=True)
def _int62(rs, s):
    """A uniform integer in [0, 2**62) (Envoy's per-request random value for weights)."""
    u = _uniform(rs, s)
    v = _uniform(rs, s)
    return np.int64(u * 1073741824.0) * np.int64(4294967296) + np.int64(v * 4294967296.0)


@njit(cache=True, inline="always")
def _normal(rs, s):
    """A standard normal draw from stream *s*, by the ziggurat (see _ziggurat).

    Nearly every draw (98.8 %) costs one 64-bit output and a comparison: the layer from its top
    8 bits, the sign from the next, the point in the layer from 52 bits below them. Box–Muller,
    before, cost a log, a sqrt and a cos a draw (perf: 9 % of the seed pipeline's loop).
    """
    while True:
        u = _next64(rs, s)
        i = u >> _U56
        m = (u >> _U3) & _MASK52
        x = float(m) * _ZN_W[i]
        negative = (u >> _U55) & _U1 == _U1
        if m < _ZN_K[i]:
            return -x if negative else x
        if i == 0:
            # the tail beyond r (Marsaglia, 1964)
            while True:
                a = -math.log(1.0 - _uniform(rs, s)) / _ZN_R
                b = -math.log(1.0 - _uniform(rs, s))
                if b + b >= a * a:
                    break
            x = _ZN_R + a
            return -x if negative else x
        if _ZN_F[i] + _uniform(rs, s) * (_ZN_F[i + 1] - _ZN_F[i]) < math.exp(-0.5 * x * x):
            return -x if negative else x


@njit(cache=True, inline="always")
def _exponential(rs, s):
    """A standard exponential draw from stream *s*, by the ziggurat (as _normal, one-sided)."""
    shift = 0.0
    while True:
        u = _next64(rs, s)
        i = u >> _U56
        m = (u >> _U3) & _MASK52
        x = float(m) * _ZE_W[i]
        if m < _ZE_K[i]:
            return shift + x
        if i == 0:
            shift += _ZE_R  # the tail beyond r is r plus an exponential (memoryless)
            continue
        if _ZE_F[i] + _uniform(rs, s) * (_ZE_F[i + 1] - _ZE_F[i]) < math.exp(-x):
            return shift + x


@njit(cache=True)
def _gamma(rs, s, shape, scale):
    """Marsaglia–Tsang; shape < 1 by boosting (X·U^(1/k))."""
    boost = 1.0
    k = shape
    if k < 1.0:
        boost = (1.0 - _uniform(rs, s)) ** (1.0 / k)
        k += 1.0
    d = k - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = _normal(rs, s)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = 1.0 - _uniform(rs, s)
        if u < 1.0 - 0.0331 * x * x * x * x:
            return d * v * scale * boost
        if math.log(u) < 0.5 * x * x + d * (1.0 - v + math.log(v)):
            return d * v * scale * boost


@njit(cache=True)
def _draw(dists, emp, rs, s, d):
    """One draw in seconds from distribution row *d* on stream *s*."""
    kind = int(dists[d, 0])
    a = dists[d, 1]
    b = dists[d, 2]
    x = 0.0
    if kind == D_DET:
        x = a
    elif kind == D_EXP:
        x = a * _exponential(rs, s)
    elif kind == D_LOGNORMAL:
        x = math.exp(a + b * _normal(rs, s))
    elif kind == D_GAMMA:
        x = _gamma(rs, s, a, b)
    elif kind == D_UNIFORM:
        x = a + (b - a) * _uniform(rs, s)
    elif kind == D_EMPIRICAL:
        x = emp[int(a) + int(_uniform(rs, s) * b)]
    return x + dists[d, 3]


@njit(cache=True, inline="always")
def _hdr_index(seconds, highest, unit, half_mag, half_count, mask):
    """HdrHistogram's counts index of a value in seconds (``HdrLayout.index`` for one value).

    Inlined where it is called (four times a request), as _uniform.
    """
    us = np.int64(np.rint(seconds * 1e6))
    if us < 0:
        us = np.int64(0)
    if us > highest:
        us = highest
    # the bit length of us | mask, as HdrLayout takes it from frexp (exact: us < 2**53)
    bucket = _bit_length(us | mask) - unit - (half_mag + 1)
    sub_bucket = us >> (bucket + unit)
    return ((bucket + 1) << half_mag) + sub_bucket - half_count


# A heap entry is a time in h_t[i] and three ints in h_i[3 i : 3 i + 3]: its sequence number,
# its key (kind and payload) and its aux. Two arrays rather than four keep the sift loops in
# registers; the indices are cast to unsigned, which tells numba they are never negative (a
# signed index costs a wrap-around test on every access). (time, sequence) is unique, so the
# pops come in the same order whatever the heap's layout.
H_SEQ = 0
H_KEY = 1
H_AUX = 2


@njit(cache=True)
def _push(h_t, h_i, st_i, count, t, key, aux, low):
    """Insert an event into the binary heap ordered by (time, sequence); st_i[count] is its size."""
    n = st_i[count]
    seq = st_i[SI_SEQ]
    st_i[SI_SEQ] = seq + 1
    if low:
        seq += LOW_PRIORITY
    i = n
    while i > 0:
        parent = (i - 1) >> 1
        pt = h_t[np.uint64(parent)]
        if pt < t or (pt == t and h_i[np.uint64(3 * parent)] < seq):
            break
        h_t[np.uint64(i)] = pt
        h_i[np.uint64(3 * i)] = h_i[np.uint64(3 * parent)]
        h_i[np.uint64(3 * i + 1)] = h_i[np.uint64(3 * parent + 1)]
        h_i[np.uint64(3 * i + 2)] = h_i[np.uint64(3 * parent + 2)]
        i = parent
    h_t[np.uint64(i)] = t
    h_i[np.uint64(3 * i)] = seq
    h_i[np.uint64(3 * i + 1)] = key
    h_i[np.uint64(3 * i + 2)] = aux
    st_i[count] = n + 1


@njit(cache=True, inline="always")
def _pop(h_t, h_i, st_i, count):
    """Remove the heap's root (the caller has read it); st_i[count] is its size.

    Inlined where it is called (once an event), as _uniform: the call with its two arrays
    was 11 % of the seed pipeline's loop.
    """
    n = st_i[count] - 1
    st_i[count] = n
    t = h_t[np.uint64(n)]
    s = h_i[np.uint64(3 * n)]
    k = h_i[np.uint64(3 * n + 1)]
    a = h_i[np.uint64(3 * n + 2)]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        ct = h_t[np.uint64(child)]
        cs = h_i[np.uint64(3 * child)]
        if child + 1 < n:
            rt = h_t[np.uint64(child + 1)]
            rs = h_i[np.uint64(3 * child + 3)]
            if rt < ct or (rt == ct and rs < cs):
                child += 1
                ct = rt
                cs = rs
        if ct > t or (ct == t and cs > s):
            break
        h_t[np.uint64(i)] = ct
        h_i[np.uint64(3 * i)] = cs
        h_i[np.uint64(3 * i + 1)] = h_i[np.uint64(3 * child + 1)]
        h_i[np.uint64(3 * i + 2)] = h_i[np.uint64(3 * child + 2)]
        i = child
    h_t[np.uint64(i)] = t
    h_i[np.uint64(3 * i)] = s
    h_i[np.uint64(3 * i + 1)] = k
    h_i[np.uint64(3 * i + 2)] = a


@njit(cache=True)
def _close_slot(live, live_k, live_rng, done_idx, r, slot):
    """Reduce one finished interval histogram to the counts indices of p50, p90 and p99."""
    k = live_k[r, slot]
    lo = live_rng[r, slot, 0]
    hi = live_rng[r, slot, 1]
    total = 0
    for i in range(lo, hi + 1):
        total += live[r, slot, i]
    # one pass for the four percentiles (their targets ascend) that also clears the counts
    p = 0
    target = max(np.int64(_PERCENTILES[0] * total / 100 + 0.5), 1)
    acc = 0
    for i in range(lo, hi + 1):
        acc += live[r, slot, i]
        live[r, slot, i] = 0
        while p < 4 and acc >= target:
            done_idx[r, p, k] = i
            p += 1
            if p < 4:
                target = max(np.int64(_PERCENTILES[p] * total / 100 + 0.5), 1)
    live_k[r, slot] = -1


@njit(cache=True)
def run_until(
    until,
    # static
    cfg_i, cfg_f, dists, emp, tr_i, tr_f, tr_cum, tr_az, steps, replay, cls_route, cls_key,
    cls_keyed, tg_i,
    node_az, node_gw_at, node_gw, gw_node, gw_scale, rt_i, rt_f, rt_retry_status, wc_cluster,
    wc_weight, mr_i, bk_i, bk_f, cl_i, cl_f, ver_in_cl, ve_i, ve_f, ve_label, er_i, er_f, ev_i,
    ev_f, status_of, key_of, key_stage,
    # state
    st_i, st_f, rs, pod_stream_at, up_stream_at, tr_stream_at,
    h_t, h_i, d_t, d_i, dr_t, dr_i,
    rq_f, rq_i, rq_tried, req_free, jb_i, jb_f, job_free,
    pd_i, pd_f, pd_burst, bu_f, ve_count, wk_i, nd_alive, tg_s, tg_f, cn_i, cn_f, tr_next,
    cs_i, cs_f, cl_avail, tmp, od_i, od_f, bk_s, hpa_f, hpa_log, rr_w, rg_h, rg_o, rg_n, rg_gen,
    pl_i,
    # metrics
    hist, row_sum, row_max, key_st, se_i, se_busy, vs, code_of, codes, code_key,
    live, live_k, live_rng, done_idx, ut_f, ut_n, up, ig, ok_hist, tries, ok_tries, att, ac_f,
    trc,
):  # fmt: skip
    """Run the simulation until simulated time *until* (events at or after it wait).

    Returns a code: :data:`DONE` when *until* is reached (or nothing is left to happen), or a
    ``GROW_*`` code when a table must grow before the loop can go on (the caller grows it and
    calls again; nothing was lost).
    """
    # every array as a view without reference counting (see _borrow); the fixed-width tables
    # with their row length a constant (see _borrow_rows), once it is checked
    if (
        cfg_i.shape[0] != CI_SIZE
        or cfg_f.shape[0] != CF_SIZE
        or dists.shape[1] != D_ROW
        or tr_i.shape[1] != TI_SIZE
        or tr_f.shape[1] != TF_SIZE
        or tg_i.shape[1] != TG_ROW
        or rt_i.shape[1] != RI_SIZE
        or rt_f.shape[1] != RF_SIZE
        or cl_i.shape[1] != KI_SIZE
        or cl_f.shape[1] != KF_SIZE
        or ve_i.shape[1] != VI_SIZE
        or ve_f.shape[1] != VF_SIZE
        or er_f.shape[1] != EF_SIZE
        or rs.shape[1] != RS_ROW
        or rq_f.shape[1] != Q_SIZE
        or rq_i.shape[1] != R_SIZE
        or jb_i.shape[1] != J_SIZE
        or pd_i.shape[1] != P_SIZE
        or pd_f.shape[1] != PF_ROW
        or wk_i.shape[1] != WK_ROW
        or tg_s.shape[1] != TS_ROW
        or cn_i.shape[1] != CN_ROW
        or cs_i.shape[1] != CS_ROW
        or key_st.shape[1] != KEY_ST_W
        or code_key.shape[1] != CK_ROW
        or ig.shape[1] != IG_ROW
        or ac_f.shape[1] != AC_ROW
        or mr_i.shape[1] != MR_SIZE
        or pl_i.shape[1] != PL_ROW
        or trc.shape[1] != TRC_ROW
    ):
        raise RuntimeError("a table's row length differs from the kernel's layout")
    cfg_i = _borrow(cfg_i)
    cfg_f = _borrow(cfg_f)
    dists = _borrow_rows(dists, D_ROW)
    emp = _borrow(emp)
    tr_i = _borrow_rows(tr_i, TI_SIZE)
    tr_f = _borrow_rows(tr_f, TF_SIZE)
    tr_cum = _borrow(tr_cum)
    tr_az = _borrow(tr_az)
    steps = _borrow(steps)
    replay = _borrow(replay)
    cls_route = _borrow(cls_route)
    cls_key = _borrow(cls_key)
    cls_keyed = _borrow(cls_keyed)
    tg_i = _borrow_rows(tg_i, TG_ROW)
    node_az = _borrow(node_az)
    node_gw_at = _borrow(node_gw_at)
    node_gw = _borrow(node_gw)
    gw_node = _borrow(gw_node)
    gw_scale = _borrow(gw_scale)
    rt_i = _borrow_rows(rt_i, RI_SIZE)
    rt_f = _borrow_rows(rt_f, RF_SIZE)
    rt_retry_status = _borrow(rt_retry_status)
    wc_cluster = _borrow(wc_cluster)
    wc_weight = _borrow(wc_weight)
    mr_i = _borrow_rows(mr_i, MR_SIZE)
    bk_i = _borrow(bk_i)
    bk_f = _borrow(bk_f)
    cl_i = _borrow_rows(cl_i, KI_SIZE)
    cl_f = _borrow_rows(cl_f, KF_SIZE)
    ver_in_cl = _borrow(ver_in_cl)
    ve_i = _borrow_rows(ve_i, VI_SIZE)
    ve_f = _borrow_rows(ve_f, VF_SIZE)
    ve_label = _borrow(ve_label)
    er_i = _borrow(er_i)
    er_f = _borrow_rows(er_f, EF_SIZE)
    ev_i = _borrow(ev_i)
    ev_f = _borrow(ev_f)
    status_of = _borrow(status_of)
    key_of = _borrow(key_of)
    key_stage = _borrow(key_stage)
    st_i = _borrow(st_i)
    st_f = _borrow(st_f)
    rs = _borrow_rows(rs, RS_ROW)
    h_t = _borrow(h_t)
    h_i = _borrow(h_i)
    d_t = _borrow(d_t)
    d_i = _borrow(d_i)
    dr_t = _borrow(dr_t)
    dr_i = _borrow(dr_i)
    rq_f = _borrow_rows(rq_f, Q_SIZE)
    rq_i = _borrow_rows(rq_i, R_SIZE)
    rq_tried = _borrow(rq_tried)
    req_free = _borrow(req_free)
    jb_i = _borrow_rows(jb_i, J_SIZE)
    jb_f = _borrow(jb_f)
    job_free = _borrow(job_free)
    pd_i = _borrow_rows(pd_i, P_SIZE)
    pd_f = _borrow_rows(pd_f, PF_ROW)
    pd_burst = _borrow(pd_burst)
    bu_f = _borrow(bu_f)
    ve_count = _borrow(ve_count)
    wk_i = _borrow_rows(wk_i, WK_ROW)
    nd_alive = _borrow(nd_alive)
    tg_s = _borrow_rows(tg_s, TS_ROW)
    tg_f = _borrow(tg_f)
    cn_i = _borrow_rows(cn_i, CN_ROW)
    cn_f = _borrow(cn_f)
    tr_next = _borrow(tr_next)
    cs_i = _borrow_rows(cs_i, CS_ROW)
    cs_f = _borrow(cs_f)
    cl_avail = _borrow(cl_avail)
    tmp = _borrow(tmp)
    od_i = _borrow(od_i)
    od_f = _borrow(od_f)
    bk_s = _borrow(bk_s)
    hpa_f = _borrow(hpa_f)
    hpa_log = _borrow(hpa_log)
    rr_w = _borrow(rr_w)
    rg_h = _borrow(rg_h)
    rg_o = _borrow(rg_o)
    rg_n = _borrow(rg_n)
    rg_gen = _borrow(rg_gen)
    pl_i = _borrow_rows(pl_i, PL_ROW)
    hist = _borrow(hist)
    row_sum = _borrow(row_sum)
    row_max = _borrow(row_max)
    key_st = _borrow_rows(key_st, KEY_ST_W)
    se_i = _borrow(se_i)
    se_busy = _borrow(se_busy)
    vs = _borrow(vs)
    code_of = _borrow(code_of)
    codes = _borrow(codes)
    code_key = _borrow_rows(code_key, CK_ROW)
    live = _borrow(live)
    live_k = _borrow(live_k)
    live_rng = _borrow(live_rng)
    done_idx = _borrow(done_idx)
    ut_f = _borrow(ut_f)
    ut_n = _borrow(ut_n)
    up = _borrow(up)
    ig = _borrow_rows(ig, IG_ROW)
    ok_hist = _borrow(ok_hist)
    tries = _borrow(tries)
    ok_tries = _borrow(ok_tries)
    att = _borrow(att)
    ac_f = _borrow_rows(ac_f, AC_ROW)
    trc = _borrow_rows(trc, TRC_ROW)
    duration = cfg_f[CF_DURATION]
    warmup = cfg_f[CF_WARMUP]
    interval = cfg_f[CF_INTERVAL]
    # A power-of-two interval (1 s, the default) divides exactly by multiplying by its inverse,
    # which is cheaper than a division (three a request, in record()): the same value.
    inv_interval = 1.0 / interval
    exact_inv = math.frexp(interval)[0] == 0.5
    n_int = cfg_i[CI_INTERVALS]
    n_routes = cfg_i[CI_ROUTES]
    n_clusters = cfg_i[CI_CLUSTERS]
    n_versions = cfg_i[CI_VERSIONS]
    n_labels = ve_label.max() + 1 if n_versions > 0 else 0
    n_status = cfg_i[CI_STATUSES]
    n_nodes = cfg_i[CI_NODES]
    n_gw = cfg_i[CI_GW]
    n_workers = cfg_i[CI_WORKERS]
    n_targets = cfg_i[CI_TARGETS]
    n_azs = cfg_i[CI_AZS]
    n_specs = cfg_i[CI_BUCKET_SPECS]
    d_lb = cfg_i[CI_D_LB]
    d_kp = cfg_i[CI_D_KP]
    d_node = cfg_i[CI_D_NODE]
    d_az = cfg_i[CI_D_AZ]
    d_net = cfg_i[CI_D_NET]
    d_cpu = cfg_i[CI_D_CPU]
    d_lat = cfg_i[CI_D_LAT]
    d_sc_cpu = cfg_i[CI_D_SC_CPU]
    d_sc_lat = cfg_i[CI_D_SC_LAT]
    alb = cfg_i[CI_LB_ALB] == 1
    alb_rr = cfg_i[CI_ALB_RR] == 1
    cross_zone = cfg_i[CI_CROSS_ZONE] == 1
    local = cfg_i[CI_LOCAL] == 1
    target_ip = cfg_i[CI_TARGET_IP] == 1
    bucket_timer = cfg_i[CI_BUCKET_TIMER] == 1
    backoff_docs = cfg_i[CI_BACKOFF_DOCS] == 1
    eject_one = cfg_i[CI_EJECT_ONE] == 1
    highest = cfg_i[CI_HDR_HIGHEST]
    unit = cfg_i[CI_HDR_UNIT]
    half_mag = cfg_i[CI_HDR_HALFMAG]
    half_count = cfg_i[CI_HDR_HALFCOUNT]
    mask = cfg_i[CI_HDR_MASK]
    hc_interval = cfg_f[CF_HC_INTERVAL]
    max_in_flight = cfg_f[CF_MAX_IN_FLIGHT]
    trace_sample = cfg_f[CF_TRACE_SAMPLE]
    # consistent-hash clusters: their rings are built by run.py (upstream.ring_layout, the
    # SimPy engine's), whenever the pod set changed since (NEED_RING at the loop's top)
    has_ring = False
    for ring_c in range(n_clusters):
        if cl_i[ring_c, KI_LB] == LB_RING:
            has_ring = True
    # request slots one event can take: an arrival, or a request's mirrored tries
    mirror_room = 1
    for r in range(rt_i.shape[0]):
        mirror_room = max(mirror_room, rt_i[r, RI_MIRROR_N])
    hc_unhealthy = cfg_i[CI_HC_UNHEALTHY]
    max_pods = pd_i.shape[0]
    r_none = n_routes
    c_none = n_clusters
    l_none = n_labels
    node_none = n_nodes

    # -- event heap: (time, sequence) order, as SimPy's (time, priority, id) -----------------
    def push(t, kind, payload, aux, low):
        """Schedule an event: into the one-event buffer in front of the heap, or the heap.

        The buffer keeps the earlier of the event it holds and the new one; the later goes to
        the heap. A stage's next step is often the earliest event of all (a network hop or a
        gateway's CPU time is shorter than any gap to another request's event), and then it
        is taken from the buffer without a sift into the heap and a sift out of it. The loop
        merges the buffer with the heap by (time, sequence), so the events run in the same
        order as from the heap alone.

        The heap's sift is written out: inlined at each call site, it passes nothing. A call
        to a compiled function passes every array as a dozen arguments and counts references
        on them; with about six pushes a request that was a sixth of the loop's time.
        """
        seq = st_i[SI_SEQ]
        st_i[SI_SEQ] = seq + 1
        if low:
            seq += LOW_PRIORITY
        key = kind + (payload << K_BITS)
        if st_i[SI_BUF] == 0:
            st_i[SI_BUF] = 1
            st_f[SF_BUF_T] = t
            st_i[SI_BUF_SEQ] = seq
            st_i[SI_BUF_KEY] = key
            st_i[SI_BUF_AUX] = aux
            return
        bt = st_f[SF_BUF_T]
        bs = st_i[SI_BUF_SEQ]
        if t < bt or (t == bt and seq < bs):
            # the new event is the earlier: it takes the buffer, the buffered one the heap
            bk = st_i[SI_BUF_KEY]
            ba = st_i[SI_BUF_AUX]
            st_f[SF_BUF_T] = t
            st_i[SI_BUF_SEQ] = seq
            st_i[SI_BUF_KEY] = key
            st_i[SI_BUF_AUX] = aux
            t = bt
            seq = bs
            key = bk
            aux = ba
        n = st_i[SI_HEAP]
        i = n
        while i > 0:
            parent = (i - 1) >> 1
            pt = h_t[np.uint64(parent)]
            if pt < t or (pt == t and h_i[np.uint64(3 * parent)] < seq):
                break
            h_t[np.uint64(i)] = pt
            h_i[np.uint64(3 * i)] = h_i[np.uint64(3 * parent)]
            h_i[np.uint64(3 * i + 1)] = h_i[np.uint64(3 * parent + 1)]
            h_i[np.uint64(3 * i + 2)] = h_i[np.uint64(3 * parent + 2)]
            i = parent
        h_t[np.uint64(i)] = t
        h_i[np.uint64(3 * i)] = seq
        h_i[np.uint64(3 * i + 1)] = key
        h_i[np.uint64(3 * i + 2)] = aux
        st_i[SI_HEAP] = n + 1

    def push_rare(t, kind, payload, aux):
        """push() through a call, for events that come once an interval or once a run.

        The periodic processes, scheduled events and pod changes: one copy of the sift for
        them all rather than one at each call site keeps the compile time down.
        """
        _push(h_t, h_i, st_i, SI_HEAP, t, kind + (payload << K_BITS), aux, False)

    def push_deadline(t, q, a):
        """Schedule a try's deadline (see the merge in the loop below).

        It goes to the ring when it is no earlier than the ring's last entry (the common case:
        tries start in time order and a route has one timeout), else to the deadline heap.
        """
        head = st_i[SI_RING_HEAD]
        end = _nonneg(st_i[SI_RING_END])
        if head == end or t >= dr_t[end - 1]:
            seq = st_i[SI_SEQ]
            st_i[SI_SEQ] = seq + 1
            dr_t[end] = t
            dr_i[3 * end + H_SEQ] = seq + LOW_PRIORITY
            dr_i[3 * end + H_KEY] = K_DEADLINE + (q << K_BITS)
            dr_i[3 * end + H_AUX] = a
            st_i[SI_RING_END] = end + 1
        else:
            _push(d_t, d_i, st_i, SI_DHEAP, t, K_DEADLINE + (q << K_BITS), a, True)

    def ring_stale(i):
        """Whether the deadline ring's entry *i* names a try that has ended (a new attempt)."""
        return rq_i[_nonneg(dr_i[3 * i + H_KEY] >> K_BITS), R_ATTEMPT] != dr_i[3 * i + H_AUX]

    def then(work, x, status, flag):
        """Continue with *work* on *x* once the current step returns (a tail call).

        Inner functions are inlined at every call site, so a chain of direct calls would copy
        the whole pipeline into each caller; every stage is instead called from one place, the
        dispatch loop below, which runs these continuations in order.
        """
        st_i[SI_NEXT] = work
        st_i[SI_NEXT_X] = x
        st_i[SI_NEXT_STATUS] = status
        st_i[SI_NEXT_FLAG] = flag

    def draw(stream, d):
        if d < 0:
            return 0.0  # a zero cost: no draw at all, as the SimPy engine skips the stage
        if dists[d, 0] == D_DET:
            # most costs are fixed: skip the call into _draw (the same value, no random draw)
            return dists[d, 1] + dists[d, 3]
        return _draw(dists, emp, rs, stream, d)

    def uni(stream):
        return _uniform(rs, _nonneg(stream))

    def draw_service(stream, d):
        """draw() for a pod's service time, with the lognormal (the usual model) written out.

        The same arithmetic as _draw (the same value); without the call, which passes three
        arrays as thirty-odd arguments. Only the two service-time draws get it, to keep the
        compiled loop small.
        """
        if d >= 0 and dists[d, 0] == D_LOGNORMAL:
            z = _normal(rs, _nonneg(stream))
            return math.exp(dists[d, 1] + dists[d, 2] * z) + dists[d, 3]
        return draw(stream, d)

    # -- metrics (Metrics._flush_requests, one request at a time) ---------------------------
    def close_before(b):
        for r in range(n_routes + 1):
            for slot in range(RING):
                if live_k[r, slot] >= 0 and live_k[r, slot] < b:
                    _close_slot(live, live_k, live_rng, done_idx, r, slot)

    def interval_latency(r, k, idx):
        """Count a latency (its counts index *idx*) in interval *k*'s histogram of route *r*."""
        if k > st_i[SI_MAX_K]:
            st_i[SI_MAX_K] = k
            close_before(k - GRACE)
        if k < st_i[SI_MAX_K] - GRACE:
            st_i[SI_LATE] += 1  # its percentiles are already reduced (Metrics counts it late)
            return
        slot = k % RING
        if live_k[r, slot] != k:
            if live_k[r, slot] >= 0:
                _close_slot(live, live_k, live_rng, done_idx, r, slot)
            live_k[r, slot] = k
            live_rng[r, slot, 0] = idx
            live_rng[r, slot, 1] = idx
        live[r, slot, idx] += 1
        if idx < live_rng[r, slot, 0]:
            live_rng[r, slot, 0] = idx
        if idx > live_rng[r, slot, 1]:
            live_rng[r, slot, 1] = idx

    def hdr(seconds):
        return _nonneg(_hdr_index(seconds, highest, unit, half_mag, half_count, mask))

    def add_hist(row, seconds, idx):
        """Count *seconds* (its counts index *idx*) in histogram row *row*.

        Inlined here rather than a compiled function of its own: a call passes every array
        as a dozen arguments and increments and decrements their reference counts.
        """
        if seconds * 1e6 > highest:
            st_i[SI_CLAMPED] += 1
        hist[row, idx] += 1
        row_sum[row] += seconds
        if seconds > row_max[row]:
            row_max[row] = seconds

    def interval_of(x):
        """The interval index of time *x*: np.int64(x / interval), the same value."""
        return np.int64(x * inv_interval) if exact_inv else np.int64(x / interval)

    def record(q):
        now = st_f[SF_NOW]
        t0 = rq_f[q, Q_T0]
        t_end = now + rq_f[q, Q_PENDING] + rq_f[q, Q_TAIL]
        lb_s = rq_f[q, Q_LB_S]
        ingress_s = rq_f[q, Q_INGRESS_S]
        route_s = _fmax(0.0, t_end - t0 - lb_s - ingress_s)
        latency = t_end - t0
        r = rq_i[q, R_ROUTE]
        if r < 0:
            r = r_none
        c = rq_i[q, R_CLUSTER]
        if c < 0:
            c = c_none
        lab = rq_i[q, R_LABEL]
        if lab < 0:
            lab = l_none
        status = rq_i[q, R_STATUS]
        flags = rq_i[q, R_FLAGS]
        retries = rq_i[q, R_RETRIES]
        node = rq_i[q, R_NODE]
        if node < 0:
            node = node_none
        st_i[SI_RECORDS] += 1
        k = interval_of(t_end)
        if k < 0:
            k = 0
        if k > n_int - 1:
            k = n_int - 1
        r = _nonneg(r)
        c = _nonneg(c)
        lab = _nonneg(lab)
        node = _nonneg(node)
        k = _nonneg(k)
        if trace_sample > 0.0 and (trace_sample >= 1.0 or uni(S_TRACE) < trace_sample):
            # a sampled request (Metrics.should_trace, after the warm-up too); run.py makes
            # its spans as Engine._trace does, from these values
            n = st_i[SI_TRACED]
            if n < trc.shape[0]:
                n = _nonneg(n)
                trc[n, TRC_ID] = rq_i[q, R_ID]
                trc[n, TRC_T0] = t0
                trc[n, TRC_END] = t_end
                trc[n, TRC_LB_S] = lb_s
                trc[n, TRC_INGRESS_S] = ingress_s
                trc[n, TRC_CLASS] = rq_i[q, R_CLASS]
                trc[n, TRC_STATUS] = status
                trc[n, TRC_FLAGS] = flags
                trc[n, TRC_ROUTE] = r
                trc[n, TRC_CLUSTER] = c
                trc[n, TRC_LABEL] = lab
                trc[n, TRC_NODE] = node
                st_i[SI_TRACED] = n + 1
            else:
                st_i[SI_TRACE_DROPPED] += 1
        se_i[r, 0, k] += 1
        if status >= 500:
            se_i[r, 2, k] += 1
        elif status >= 400:
            se_i[r, 1, k] += 1
        if retries > 0:
            se_i[r, 3, k] += retries
        vs[r, lab, k] += 1
        sidx = status_of[_nonneg(status)]
        ci = (r * n_status + sidx) * _FLAG_BITS + flags
        code = code_of[_nonneg(ci)]
        if code < 0:
            code = st_i[SI_CODES]
            st_i[SI_CODES] = code + 1
            code_of[ci] = code
            code_key[code, 0] = r
            code_key[code, 1] = status
            code_key[code, 2] = flags
        codes[_nonneg(code), k] += 1
        # time in system, spread over the intervals the request spans (Metrics._spread)
        if interval_of(t0) == k and t_end <= duration:
            se_busy[r, k] += latency
        else:
            first = max(interval_of(t0), 0)
            last = min(interval_of(t_end), n_int - 1)
            for j in range(first, last + 1):
                lo = max(t0, j * interval)
                hi = min(t_end, (j + 1) * interval, duration)
                if hi > lo:
                    se_busy[r, j] += hi - lo
        idx = hdr(latency)  # one index for the latency's three histograms
        interval_latency(r, k, idx)
        if t0 < warmup:
            return
        key = key_of[_nonneg((r * (n_clusters + 1) + c) * (n_labels + 1) + lab)]
        if key < 0:
            raise RuntimeError("a request ended with a route/cluster/version not lowered")
        key = _nonneg(key)
        ok = 1 if status < 500 else 0
        key_st[key, KS_REQUESTS] += 1
        key_st[key, KS_OK] += ok
        key_st[key, KS_RETRIES] += retries
        key_st[key, KS_UPSTREAM] += rq_i[q, R_UPSTREAM]
        if flags:
            for b in range(N_FLAGS):
                if flags & (1 << b):
                    key_st[key, KS_FLAGS + b] += 1
        base = _nonneg(key_stage[key * 4])
        add_hist(base, latency, idx)
        n_tries = _nonneg(rq_i[q, R_UPSTREAM])
        tries[n_tries] += 1
        if ok == 1:
            ok_hist[idx] += 1
            ok_tries[n_tries, idx] += 1
        add_hist(base + 1, lb_s, hdr(lb_s))
        add_hist(base + 2, ingress_s, hdr(ingress_s))
        add_hist(base + 3, route_s, hdr(route_s))
        ig[node, 0] += 1
        ig[node, 1] += ok

    def finalize(q):
        tg = rq_i[q, R_TARGET]
        if tg >= 0:
            tg_s[tg, T_OUTSTANDING] -= 1
        record(q)
        n = _nonneg(st_i[SI_REQ_FREE])
        req_free[n] = q
        st_i[SI_REQ_FREE] = n + 1

    # -- pods -----------------------------------------------------------------------------------
    def endpoints_changed():
        st_i[SI_GEN] += 1
        st_i[SI_RING_STALE] = 1

    # -- utilisation: busy and available server-seconds inside [warm-up, end], exactly --------
    # (the SimPy engine integrates its queues' busy servers over time, engine.py tiers();
    # sampling once per interval, as the utilisation frame does, is too coarse for rho)
    # (see AC_BUSY for ac_f's rows and columns)
    def busy_for(row, blk, t):
        """A server of *row* (block *blk*: 0, or AC_SIDECAR) is busy from now for *t* s."""
        now = st_f[SF_NOW]
        span = _fmin(now + t, duration) - _fmax(now, warmup)
        if span > 0.0:
            ac_f[row, blk + AC_BUSY] += span

    def capacity_from(row, blk, servers):
        """*servers* more (fewer, when negative) in *row* (block *blk*) from now to the end."""
        span = duration - _fmax(st_f[SF_NOW], warmup)
        if span > 0.0:
            ac_f[row, blk + AC_CAP] += servers * span

    def asked(row, blk, queues):
        """A request asks for a server of *row* (block *blk*); *queues*: none is free."""
        if st_f[SF_NOW] >= warmup:
            ac_f[row, blk + AC_ARRIVALS] += 1.0
            if queues:
                ac_f[row, blk + AC_WAITED] += 1.0

    def handed(row, blk, since):
        """A server of *row* passes to a request that queued since *since* (FifoServer.release).

        One handed a server in the instant it queued did not wait (FifoServer.release).
        """
        if st_f[SF_NOW] >= warmup:
            wait = st_f[SF_NOW] - since
            ac_f[row, blk + AC_WAIT_S] += wait
            if wait == 0.0:
                ac_f[row, blk + AC_WAITED] -= 1.0

    def pod_capacity_from(p, sign):
        v = pd_i[p, P_VERSION]
        capacity_from(n_gw + p, 0, sign * ve_i[v, VI_CONCURRENCY])
        if ve_i[v, VI_SIDECAR] == 1:
            capacity_from(n_gw + p, AC_SIDECAR, sign * ve_i[v, VI_SIDECAR_CONC])

    def kill_pod(p, node_gone):
        pod_capacity_from(p, -1)
        pd_i[p, P_ALIVE] = 0
        pd_i[p, P_NODE_ALIVE] = 0 if node_gone else 1
        endpoints_changed()
        v = pd_i[p, P_VERSION]
        push_rare(st_f[SF_NOW] + ve_f[v, VF_ENDPOINT_DELAY], K_POD_LEAVE, p, 0)

    def add_pod(v, az, ready_at):
        p = st_i[SI_PODS]
        if p >= max_pods:
            raise RuntimeError("more backend pods than lowered for")
        st_i[SI_PODS] = p + 1
        pd_i[p, P_VERSION] = v
        pd_i[p, P_AZ] = az
        pd_i[p, P_ALIVE] = 1
        pod_capacity_from(p, 1)
        pd_i[p, P_NODE_ALIVE] = 1
        pd_i[p, P_IN_EP] = 1
        pd_i[p, P_ACTIVE] = 0
        pd_i[p, P_SERVED] = 0
        pd_i[p, P_SRV_N] = 0
        pd_i[p, P_SRV_HEAD] = -1
        pd_i[p, P_SRV_TAIL] = -1
        pd_i[p, P_SC_N] = 0
        pd_i[p, P_SC_HEAD] = -1
        pd_i[p, P_SC_TAIL] = -1
        pd_i[p, P_ORDINAL] = ve_count[v]
        pd_i[p, P_NBURST] = 0
        ve_count[v] += 1
        pd_f[p, PF_READY_AT] = ready_at
        endpoints_changed()

    def error_status(p, fast):
        """The status a version's error models give pod *p*'s request (200: none fails it).

        Pod.serve's two checks (istiolab/sim/stages/backend.py, _error_status): *fast* the
        models that answer before the server (``cost: none``; the request would be the pod's
        next, no error bursts), else those charged the service time, then the bursts. One
        stream for both, drawn in that order, as the SimPy pod draws them.
        """
        now = st_f[SF_NOW]
        v = _nonneg(pd_i[p, P_VERSION])
        s = pod_stream_at + 2 * p + 1
        at = ve_i[v, VI_ERR_AT]
        ordinal = pd_i[p, P_SERVED] + (1 if fast else 0)
        for e in range(at, at + ve_i[v, VI_ERR_N]):
            if (er_f[e, EF_COST_NONE] == 1.0) != fast:
                continue
            if now < er_f[e, EF_START] or now >= er_f[e, EF_END]:
                continue
            if er_f[e, EF_FIRST_N] > 0 and ordinal <= er_f[e, EF_FIRST_N]:
                return er_i[e]
            if er_f[e, EF_P] > 0 and uni(s) < er_f[e, EF_P]:
                return er_i[e]
        if fast:
            return 200
        for j in range(pd_i[p, P_NBURST]):
            b = pd_burst[p, j]
            if bu_f[b, 0] <= now < bu_f[b, 1] and uni(s) < ev_f[b, EF_PROB]:
                return ev_i[b, EI_STATUS]
        return 200

    # -- upstream clusters (UpstreamCluster) ----------------------------------------------------
    # Outlier detection as the workers see it: UpstreamCluster._deliver / _changed / _advance
    # (ClusterManagerImpl::scheduleUpdate's update_merge_window); keep the two in step.
    od_w = od_f.shape[1]  # a cluster's last update and held update follow its pods' columns

    def od_deliver(c, t):
        """The workers' load balancers get the detector's state at *t*."""
        for p in range(st_i[SI_PODS]):
            # every ejection recorded so far started at or before t (see od_advance)
            od_i[c, p, O_VIEW] = 1 if t < od_f[c, p] else 0
        od_f[c, od_w - OD_LAST] = t
        od_f[c, od_w - OD_MERGE] = np.inf
        cs_f[c] = -1.0

    def od_changed(c, t):
        """A host's health changed on the main thread at *t*: deliver now, or hold it."""
        if t - od_f[c, od_w - OD_LAST] > cl_f[c, KF_OD_MERGE]:
            od_deliver(c, t)
        elif od_f[c, od_w - OD_MERGE] == np.inf:
            held = t + cl_f[c, KF_OD_MERGE]
            od_f[c, od_w - OD_MERGE] = held
            if held < cs_f[c]:
                cs_f[c] = held

    def od_advance(c, now):
        """Run the re-admissions and held deliveries due by *now*, in time order.

        Returns the earliest re-admission still to come (inf: none).
        """
        while True:
            t_back = np.inf
            back = -1
            for p in range(st_i[SI_PODS]):
                if od_i[c, p, O_READMIT] == 1 and od_f[c, p] < t_back:
                    t_back = od_f[c, p]
                    back = p
            t_merge = od_f[c, od_w - OD_MERGE]
            if min(t_back, t_merge) > now:
                return t_back
            if t_merge <= t_back:
                od_deliver(c, t_merge)
            else:
                od_i[c, back, O_READMIT] = 0
                od_changed(c, t_back)

    def available(c):
        now = st_f[SF_NOW]
        if cs_i[c, CS_GEN] == st_i[SI_GEN] and now < cs_f[c]:
            return cs_i[c, CS_N]
        until = np.inf
        n_hosts = 0
        n_ready = 0
        for p in range(st_i[SI_PODS]):
            if ver_in_cl[c, pd_i[p, P_VERSION]] == 0:
                continue
            n_hosts += 1
            # membership follows the endpoints (a crashed pod stays until EDS drops it)
            if pd_i[p, P_IN_EP] == 1:
                if now >= pd_f[p, PF_READY_AT]:
                    cl_avail[c, n_ready] = p
                    n_ready += 1
                elif pd_f[p, PF_READY_AT] < until:
                    until = pd_f[p, PF_READY_AT]
        n = n_ready
        if cl_i[c, KI_OUTLIER] == 1:
            # the workers' view: the ejections delivered so far, until the next delivery
            t_back = od_advance(c, now)
            n_ok = 0
            for j in range(n_ready):
                p = cl_avail[c, j]
                if od_i[c, p, O_VIEW] == 0:
                    tmp[n_ok] = p
                    n_ok += 1
            until = min(until, t_back, od_f[c, od_w - OD_MERGE])
            panic = cl_i[c, KI_OD_MIN_HEALTH]
            if not (n_hosts > 0 and panic > 0 and 100.0 * n_ok / n_hosts < panic):
                for j in range(n_ok):
                    cl_avail[c, j] = tmp[j]
                n = n_ok
        cs_i[c, CS_N] = n
        cs_i[c, CS_GEN] = st_i[SI_GEN]
        cs_f[c] = until
        return n

    def worker_slot(q):
        """Request *q*'s gateway worker, as a row of wk_i."""
        wk = rq_i[q, R_WORKER]
        if wk < 0 or wk >= n_workers:
            # never taken (a worker is drawn below n_workers): the modulo, an integer
            # division, only where it could change the value
            wk %= n_workers
        return _nonneg(rq_i[q, R_GW] * n_workers + wk)

    def ring_pick(c, n, h):
        """The first ring point at or after hash *h* whose host is available (Ring::chooseHost).

        UpstreamCluster._ring_pick: the ring holds every pod of the cluster, the walk skips
        those not among the *n* available ones; the first available pod if none is on it.
        """
        m = rg_n[c]
        if m == 0:
            return cl_avail[c, 0]
        lo = 0  # the first point at or after h (bisect_left); m wraps to the first
        hi = m
        while lo < hi:
            mid = (lo + hi) >> 1
            if rg_h[c, mid] < h:
                lo = mid + 1
            else:
                hi = mid
        i = lo
        for j in range(m):
            p = rg_o[c, (i + j) % m]
            for a in range(n):
                if cl_avail[c, a] == p:
                    return p
        return cl_avail[c, 0]

    def pick_once(c, n, q):
        if n == 1:
            return cl_avail[c, 0]
        lb = cl_i[c, KI_LB]
        s = up_stream_at + c
        if lb == LB_ROUND_ROBIN:
            # one round robin per gateway worker, from a random offset (Envoy's LB state is
            # per worker thread; EdfLoadBalancerBase seeds the index at random)
            k = rq_i[q, R_GW] * n_workers + rq_i[q, R_WORKER]
            if k < 0:
                k = 0
            rr = rr_w[c, k]
            if rr < 0:
                rr = np.int64(uni(s) * n)
            rr_w[c, k] = rr + 1
            if n & (n - 1) == 0:
                return cl_avail[c, _nonneg(rr & (n - 1))]  # rr % n, without a division
            return cl_avail[c, _nonneg(rr % n)]
        if lb == LB_LEAST_REQUEST:
            a = cl_avail[c, _nonneg(np.int64(uni(s) * n))]
            b = cl_avail[c, _nonneg(np.int64(uni(s) * n))]
            if pd_i[b, P_ACTIVE] < pd_i[a, P_ACTIVE]:
                return b
            return a
        if lb == LB_RING:
            k = rq_i[q, R_CLASS]
            if k >= 0 and cls_keyed[k] == 1:
                return ring_pick(c, n, cls_key[k])
        return cl_avail[c, _nonneg(np.int64(uni(s) * n))]

    def tried_before(q, p):
        for j in range(rq_i[q, R_NTRIED]):  # noqa: SIM110 - a loop compiles to less than any()
            if rq_tried[q, j] == p:
                return True
        return False

    def pick(c, q, attempts):
        n = available(c)
        if n == 0:
            return -1
        exclude = attempts > 0 and rq_i[q, R_NTRIED] > 0
        rounds = attempts + 1 if exclude else 1
        chosen = -1
        for _ in range(max(1, rounds)):
            chosen = pick_once(c, n, q)
            if not exclude or not tried_before(q, chosen):
                break
        return chosen

    def ejected(c, p):
        return st_f[SF_NOW] < od_f[c, p]

    def outcome(c, p, status, flag):
        # UpstreamCluster._outcome / _settle / _eject (Envoy's outlier_detection_impl.cc),
        # step for step; keep the two in step.
        now = st_f[SF_NOW]
        od_interval = cl_f[c, KF_OD_INTERVAL]
        if od_i[c, p, O_EJECTED] == 1 and now >= od_f[c, p]:
            od_i[c, p, O_EJECTED] = 0  # unejectHost at the tick od_f
            od_i[c, p, O_5XX] = 0
            od_i[c, p, O_GW] = 0
            od_i[c, p, O_UNEJ_TICK] = np.int64(np.floor(od_f[c, p] / od_interval + 0.5))
        if (
            od_i[c, p, O_EJECTED] == 0
            and od_i[c, p, O_UNEJ_TICK] >= 0
            and od_i[c, p, O_EJECTIONS] > 0
        ):
            k0 = od_i[c, p, O_UNEJ_TICK]
            ticks = np.int64(now / od_interval + 1e-9) - k0
            if ticks > 0:
                od_i[c, p, O_EJECTIONS] = max(0, od_i[c, p, O_EJECTIONS] - ticks)
                od_i[c, p, O_UNEJ_TICK] = k0 + ticks
        err5 = status >= 500 or flag in (F_UF, F_UC)
        if not err5:
            od_i[c, p, O_5XX] = 0
            od_i[c, p, O_GW] = 0
            return
        lim5 = cl_i[c, KI_OD_5XX]
        limgw = cl_i[c, KI_OD_GW]
        fired_gw = False
        if status in (502, 503, 504) or flag in (F_UF, F_UC):
            od_i[c, p, O_GW] += 1
            fired_gw = limgw >= 0 and od_i[c, p, O_GW] == limgw
        else:
            od_i[c, p, O_GW] = 0
        od_i[c, p, O_5XX] += 1
        fired_5xx = lim5 >= 0 and od_i[c, p, O_5XX] == lim5
        if not (fired_gw or fired_5xx) or od_i[c, p, O_EJECTED] == 1:
            return
        # earlier deliveries read the host states as they were, so run them first
        od_advance(c, now)
        n_hosts = 0
        n_ejected = 0
        for h in range(st_i[SI_PODS]):
            if ver_in_cl[c, pd_i[h, P_VERSION]] == 1:
                n_hosts += 1
                if ejected(c, h):
                    n_ejected += 1
        pct = cl_i[c, KI_OD_MAX_PCT]
        refused = False
        if eject_one:
            # Envoy < 1.27 checks the share before ejecting (see UpstreamCluster._eject)
            refused = n_hosts > 0 and 100.0 * n_ejected / n_hosts >= pct
        else:
            refused = n_hosts == 0 or 100.0 * (n_ejected + 1) / n_hosts > pct
        if not refused:
            base = cl_f[c, KF_OD_BASE]
            max_s = max(300.0, base)
            if od_i[c, p, O_EJECTIONS] * base < max_s + base:
                od_i[c, p, O_EJECTIONS] += 1
            duration = min(base * od_i[c, p, O_EJECTIONS], max_s)
            od_f[c, p] = -(-(now + duration - 1e-9) // od_interval) * od_interval
            od_i[c, p, O_EJECTED] = 1
            od_i[c, p, O_READMIT] = 1
            od_changed(c, now)
        # onConsecutiveErrorWorker resets the counter that fired, ejected or not. (When both
        # fire and the first ejects, UpstreamCluster._outcome leaves the 5xx counter at its
        # threshold; nothing reads it before unejectHost resets it: the same answers.)
        if fired_gw:
            od_i[c, p, O_GW] = 0
        if fired_5xx:
            od_i[c, p, O_5XX] = 0

    def fifo_append(links, link, table, row, head, tail, x):
        """Row *x* of *links* joins the end of a FIFO linked through ``links[., link]``.

        The FIFO's first and last rows are ``table[row, head]`` and ``table[row, tail]`` (-1:
        empty): a pool's or a gateway worker's pending requests, a pod's queued jobs.
        """
        links[x, link] = -1
        last = table[row, tail]
        if last >= 0:
            links[last, link] = x
        else:
            table[row, head] = x
        table[row, tail] = x

    def new_attempt(q):
        a = st_i[SI_ATTEMPT] + 1
        st_i[SI_ATTEMPT] = a
        rq_i[q, R_ATTEMPT] = a

    def upstream_done(q, status, flag):
        rq_i[q, R_STATUS] = status
        rq_i[q, R_FLAGS] |= flag
        then(W_FINALIZE, q, 0, 0)

    def pool_release(c, k, closed):
        """The try on one of pool *k*'s connections ended; *closed*: the connection too.

        A connection freed (or one opened in place of a closed one, when the cluster's limit
        or an empty pool allows it) goes to the pool's first pending request, whose try starts
        at this instant (as its waiter event succeeds), else waits idle.
        """
        if closed:
            pl_i[k, PL_CONNS] -= 1
            cs_i[c, CS_CONNS] -= 1
            if pl_i[k, PL_HEAD] < 0 or not (
                cs_i[c, CS_CONNS] < cl_i[c, KI_MAX_CONN] or pl_i[k, PL_CONNS] == 0
            ):
                return
            pl_i[k, PL_CONNS] += 1
            cs_i[c, CS_CONNS] += 1
        w = pl_i[k, PL_HEAD]
        if w >= 0:
            nxt = rq_i[w, R_NEXT]
            pl_i[k, PL_HEAD] = nxt
            if nxt < 0:
                pl_i[k, PL_TAIL] = -1
            cs_i[c, CS_PENDING] -= 1
            rq_i[w, R_POOL_WAIT] = POOL_GRANTED
            new_attempt(w)  # its pending deadline is void: its try schedules its own
            push(st_f[SF_NOW], K_POOL_READY, w, 0, False)
        else:
            pl_i[k, PL_IDLE] += 1

    def mirror_done(m):
        """A mirrored try's slot goes back to the free stack."""
        rq_i[m, R_MIRROR] = 0
        st_i[SI_SHADOWS] -= 1
        n = _nonneg(st_i[SI_REQ_FREE])
        req_free[n] = m
        st_i[SI_REQ_FREE] = n + 1

    def try_end(q, status, flag):
        """The try of request *q* ended with (status, flag): retry or answer."""
        now = st_f[SF_NOW]
        c = _nonneg(rq_i[q, R_CLUSTER])
        p = _nonneg(rq_i[q, R_POD])
        cs_i[c, CS_ACTIVE] -= 1
        pd_i[p, P_ACTIVE] -= 1
        k = rq_i[q, R_POOL]
        if k >= 0:
            rq_i[q, R_POOL] = -1
            closed = flag in (F_UF, F_UC, F_UT)  # a reset or a timeout closes it
            pool_release(c, k, closed)
        new_attempt(q)
        rq_i[q, R_JOB] = -1
        if cl_i[c, KI_OUTLIER] == 1:
            outcome(c, p, status, flag)
        # an attempt is counted when it was sent, as the SimPy engine and a pod's access log
        # stamp it (UpstreamCluster.handle's record): under overload the tries ending after
        # the warm-up were mostly sent before it
        sent = rq_f[q, Q_SENT]
        if att.shape[1] == max_pods:  # attempts per host and interval (meta attempt_series)
            k = np.int64(sent / interval)
            k = 0 if k < 0 else (n_int - 1 if k > n_int - 1 else k)
            att[c, p, _nonneg(k)] += 1
        if sent >= warmup:
            fi = 0
            if flag == F_UF:
                fi = 1
            elif flag == F_UC:
                fi = 2
            elif flag == F_UT:
                fi = 3
            up[c, p, status_of[_nonneg(status)], fi] += 1
        if rq_i[q, R_MIRROR] == 1:
            mirror_done(q)  # the copy's answer is dropped
            return
        deadline = rq_f[q, Q_DEADLINE]
        if flag == F_UT:
            if deadline < np.inf and now >= deadline - 1e-12:
                upstream_done(q, status, flag)  # the route timeout is global, never retried
                return
        elif ve_i[_nonneg(pd_i[p, P_VERSION]), VI_SIDECAR] == 1:
            rq_f[q, Q_TAIL] += draw(S_SIDECAR, d_sc_lat)
        r = _nonneg(rq_i[q, R_ROUTE])
        if rt_i[r, RI_RETRY] == 0:
            upstream_done(q, status, flag)
            return
        if flag == F_UT:
            ok = rt_i[r, RI_ON_UT] == 1
        elif flag == F_UF:
            ok = rt_i[r, RI_ON_UF] == 1
        elif flag == F_UC:
            ok = rt_i[r, RI_ON_UC] == 1
        else:
            ok = rt_retry_status[r, status] == 1
        if not ok:
            upstream_done(q, status, flag)
            return
        retries = rq_i[q, R_RETRIES]
        if retries >= rt_i[r, RI_NUM_RETRIES]:
            rq_i[q, R_FLAGS] |= F_URX
            upstream_done(q, status, flag)
            return
        if cs_i[c, CS_RETRIES] >= cl_i[c, KI_MAX_RETRIES]:
            upstream_done(q, status, flag)  # retry overflow: the failed response is returned
            return
        retries += 1
        rq_i[q, R_RETRIES] = retries
        mult = (2.0**retries - 1.0) if backoff_docs else 2.0 ** (retries - 1)
        bound = min(mult * rt_f[r, RF_BACKOFF_BASE], rt_f[r, RF_BACKOFF_MAX])
        wait = uni(S_BACKOFF) * bound
        if deadline < np.inf and now + wait >= deadline:
            push(deadline, K_FINISH, q, 0, False)
            return
        cs_i[c, CS_RETRIES] += 1
        # always through the heap, even for a zero wait: inner functions cannot recurse
        push(now + wait, K_BACKOFF, q, 0, False)

    def attached(j):
        """Whether job *j*'s try still waits for it (not cancelled, not retried)."""
        q = jb_i[j, J_REQ]
        return q >= 0 and rq_i[q, R_ATTEMPT] == jb_i[j, J_ATTEMPT]

    def service_time(j, p, v):
        """Job *j*'s service time at pod *p* of version *v* (a draw).

        Nothing, and no draw, for a cancelled try's work at an application that stops it
        (on_cancel stop; Pod._rest in istiolab/sim/stages/backend.py).
        """
        if ve_i[v, VI_STOP] == 1 and not attached(j):
            return 0.0
        return draw_service(pod_stream_at + 2 * p, ve_i[v, VI_DIST])

    def release_server(p):
        p = _nonneg(p)
        head = pd_i[p, P_SRV_HEAD]
        if head >= 0:
            nxt = jb_i[head, J_NEXT]
            pd_i[p, P_SRV_HEAD] = nxt
            if nxt < 0:
                pd_i[p, P_SRV_TAIL] = -1
            v = _nonneg(pd_i[p, P_VERSION])
            handed(n_gw + p, 0, jb_f[head])
            t = service_time(head, p, v)
            jb_i[head, J_STAGE] = JS_SERVING
            jb_f[head] = st_f[SF_NOW] + t
            busy_for(n_gw + p, 0, t)
            push(st_f[SF_NOW] + t, K_SERVICE_DONE, head, 0, False)
        else:
            pd_i[p, P_SRV_N] -= 1

    def cancel_service(j):
        """on_cancel stop: the reset frees job *j*'s server now (Pod._finish_service(0))."""
        p = _nonneg(jb_i[j, J_POD])
        # the busy time counted from now to the service's end is not spent
        span = _fmin(jb_f[j], duration) - _fmax(st_f[SF_NOW], warmup)
        if span > 0.0:
            ac_f[n_gw + p, AC_BUSY] -= span
        jb_i[j, J_STAGE] = JS_CANCELLED
        release_server(p)
        pd_i[p, P_SERVED] += 1

    def service_done(j):
        p = _nonneg(jb_i[j, J_POD])
        cancelled = jb_i[j, J_STAGE] == JS_CANCELLED  # its server was freed at the reset
        if not cancelled:
            release_server(p)
            pd_i[p, P_SERVED] += 1
        q = jb_i[j, J_REQ]
        waited = attached(j)
        n = _nonneg(st_i[SI_JOB_FREE])
        job_free[n] = j
        st_i[SI_JOB_FREE] = n + 1
        if cancelled or not waited:
            return  # the client stopped waiting; the pod did the work anyway (or dropped it)
        if pd_i[p, P_ALIVE] == 0:
            then(W_TRY_END, q, 503, F_UC)  # crashed while serving: the connection is reset
            return
        status = error_status(p, False)
        if status == 0:
            then(W_TRY_END, q, 503, F_UC)
        else:
            then(W_TRY_END, q, status, 0)

    def server_acquire(j):
        p = _nonneg(jb_i[j, J_POD])
        v = _nonneg(pd_i[p, P_VERSION])
        if ve_i[v, VI_FAST_ERRORS] > 0:
            # errors that cost no service time answer before the server (Pod.serve); a try
            # the gateway stopped waiting for goes on to the server (Pod._rest checks none)
            q = jb_i[j, J_REQ]
            if attached(j):
                status = error_status(p, True)
                if status != 200:
                    pd_i[p, P_SERVED] += 1
                    n = _nonneg(st_i[SI_JOB_FREE])
                    job_free[n] = j
                    st_i[SI_JOB_FREE] = n + 1
                    if status == 0:
                        then(W_TRY_END, q, 503, F_UC)
                    else:
                        then(W_TRY_END, q, status, 0)
                    return
        free = pd_i[p, P_SRV_N] < ve_i[v, VI_CONCURRENCY]
        asked(n_gw + p, 0, not free)
        if free:
            pd_i[p, P_SRV_N] += 1
            t = service_time(j, p, v)
            jb_i[j, J_STAGE] = JS_SERVING
            if t > 0:
                jb_f[j] = st_f[SF_NOW] + t
                busy_for(n_gw + p, 0, t)
                push(st_f[SF_NOW] + t, K_SERVICE_DONE, j, 0, False)
            else:
                jb_f[j] = st_f[SF_NOW]
                then(W_SERVICE_DONE, j, 0, 0)
            return
        jb_i[j, J_STAGE] = JS_QUEUED
        jb_f[j] = st_f[SF_NOW]
        fifo_append(jb_i, J_NEXT, pd_i, p, P_SRV_HEAD, P_SRV_TAIL, j)

    def sidecar_done(j):
        p = _nonneg(jb_i[j, J_POD])
        head = pd_i[p, P_SC_HEAD]
        if head >= 0:
            nxt = jb_i[head, J_NEXT]
            pd_i[p, P_SC_HEAD] = nxt
            if nxt < 0:
                pd_i[p, P_SC_TAIL] = -1
            handed(n_gw + p, AC_SIDECAR, jb_f[head])
            cpu = draw(S_SIDECAR, d_sc_cpu)
            busy_for(n_gw + p, AC_SIDECAR, cpu)
            push(st_f[SF_NOW] + cpu, K_SIDECAR_DONE, head, 0, False)
        else:
            pd_i[p, P_SC_N] -= 1
        then(W_SERVER_ACQUIRE, j, 0, 0)

    def job_arrive(j):
        p = _nonneg(jb_i[j, J_POD])
        v = _nonneg(pd_i[p, P_VERSION])
        if ve_i[v, VI_SIDECAR] == 1 and d_sc_cpu >= 0:
            cpu = draw(S_SIDECAR, d_sc_cpu)
            if cpu > 0:
                free = pd_i[p, P_SC_N] < ve_i[v, VI_SIDECAR_CONC]
                asked(n_gw + p, AC_SIDECAR, not free)
                if free:
                    pd_i[p, P_SC_N] += 1
                    busy_for(n_gw + p, AC_SIDECAR, cpu)
                    push(st_f[SF_NOW] + cpu, K_SIDECAR_DONE, j, 0, False)
                    return
                jb_f[j] = st_f[SF_NOW]
                fifo_append(jb_i, J_NEXT, pd_i, p, P_SC_HEAD, P_SC_TAIL, j)
                return
        then(W_SERVER_ACQUIRE, j, 0, 0)

    def serve_start(q, p, lat, limit):
        """Pod.serve: the try's network hop, then the pod's sidecar and server."""
        now = st_f[SF_NOW]
        a = rq_i[q, R_ATTEMPT]
        if pd_i[p, P_ALIVE] == 0:
            wait = lat
            if pd_i[p, P_NODE_ALIVE] == 0:
                wait += cl_f[rq_i[q, R_CLUSTER], KF_CONNECT_TIMEOUT]
            if now + wait > limit:
                rq_i[q, R_TRY_STATUS] = 504
                rq_i[q, R_TRY_FLAG] = F_UT
                push(limit, K_TRY_END, q, a, False)
            elif wait > 0:
                rq_i[q, R_TRY_STATUS] = 503
                rq_i[q, R_TRY_FLAG] = F_UF
                push(now + wait, K_TRY_END, q, a, False)
            else:
                then(W_TRY_END, q, 503, F_UF)
            return
        if lat > 0 and now + lat > limit:
            rq_i[q, R_TRY_STATUS] = 504  # timed out on the way: the pod never sees it
            rq_i[q, R_TRY_FLAG] = F_UT
            push(limit, K_TRY_END, q, a, False)
            return
        n = _nonneg(st_i[SI_JOB_FREE] - 1)
        st_i[SI_JOB_FREE] = n
        j = _nonneg(job_free[n])
        jb_i[j, J_POD] = p
        jb_i[j, J_REQ] = q
        jb_i[j, J_ATTEMPT] = a
        jb_i[j, J_NEXT] = -1
        jb_i[j, J_STAGE] = JS_WAY
        rq_i[q, R_JOB] = j
        if limit < np.inf:
            push_deadline(limit, q, a)
        if lat > 0:
            push(now + lat, K_JOB_ARRIVE, j, 0, False)
        else:
            then(W_JOB_ARRIVE, j, 0, 0)

    def try_send(q):
        """The try itself, on its picked host (and, in a pooled cluster, its connection)."""
        now = st_f[SF_NOW]
        c = _nonneg(rq_i[q, R_CLUSTER])
        r = _nonneg(rq_i[q, R_ROUTE])
        p = _nonneg(rq_i[q, R_POD])
        retry = rt_i[r, RI_RETRY] == 1 and rq_i[q, R_MIRROR] == 0  # a copy has no timeout
        rq_i[q, R_LABEL] = ve_label[_nonneg(pd_i[p, P_VERSION])]
        rq_i[q, R_UPSTREAM] += 1
        pre = rq_f[q, Q_PENDING]
        rq_f[q, Q_PENDING] = 0.0
        start = now + pre if rq_i[q, R_RETRIES] == 0 else now
        rq_f[q, Q_SENT] = start
        limit = start + rt_f[r, RF_PER_TRY_S] if retry else np.inf
        limit = _fmin(limit, rq_f[q, Q_DEADLINE])
        cs_i[c, CS_ACTIVE] += 1
        pd_i[p, P_ACTIVE] += 1
        lat = pre
        if node_az[gw_node[_nonneg(rq_i[q, R_GW])]] != pd_i[p, P_AZ]:
            lat += draw(S_NET, d_net)
        serve_start(q, p, lat, limit)

    # -- HTTP/1.1 pools (UpstreamCluster._acquire and _release, ConnPoolImplBase) ----------
    def pool_ask(q):
        """True: a ready connection of the request's pool, or a new one; else pending, or 503 UO.

        ConnPoolImplBase::newStreamImpl: a pending request waits for a connection of its own
        worker's pool to the host, FIFO, under the route timeout (the per-try timeout starts
        when it gets one, UpstreamRequest::onPoolReady).
        """
        c = _nonneg(rq_i[q, R_CLUSTER])
        p = _nonneg(rq_i[q, R_POD])
        k = _nonneg(((cl_i[c, KI_POOLED] - 1) * n_gw * n_workers + worker_slot(q)) * max_pods + p)
        rq_i[q, R_POOL] = k
        if pl_i[k, PL_IDLE] > 0:
            pl_i[k, PL_IDLE] -= 1
            return True
        if cs_i[c, CS_PENDING] >= cl_i[c, KI_MAX_PENDING]:
            rq_i[q, R_POOL] = -1
            upstream_done(q, 503, F_UO)
            return False
        if cs_i[c, CS_CONNS] < cl_i[c, KI_MAX_CONN] or pl_i[k, PL_CONNS] == 0:
            pl_i[k, PL_CONNS] += 1
            cs_i[c, CS_CONNS] += 1
            return True
        fifo_append(rq_i, R_NEXT, pl_i, k, PL_HEAD, PL_TAIL, q)
        cs_i[c, CS_PENDING] += 1
        rq_i[q, R_POOL_WAIT] = 1
        deadline = rq_f[q, Q_DEADLINE]
        if deadline < np.inf:
            push_deadline(deadline, q, rq_i[q, R_ATTEMPT])
        return False

    def try_start(q):
        """One pass of UpstreamCluster.handle's loop: circuit breaker, host pick, try.

        A mirrored copy takes the same path without the circuit breaker, retries or a pooled
        connection (UpstreamCluster.attempt); it is one copy of the pick and the try in the
        compiled loop, not two (each call site of an inner function is a copy of its code).
        """
        if rq_i[q, R_POOL_WAIT] == POOL_GRANTED:
            rq_i[q, R_POOL_WAIT] = 0  # picked and pooled before: the try goes now
        else:
            c = _nonneg(rq_i[q, R_CLUSTER])
            r = _nonneg(rq_i[q, R_ROUTE])
            copy = rq_i[q, R_MIRROR] == 1
            active = cs_i[c, CS_ACTIVE]
            pooled = cl_i[c, KI_POOLED] > 0 and not copy
            if not copy and (
                active >= cl_i[c, KI_MAX_REQUESTS]
                or (not pooled and active >= cl_i[c, KI_MAX_CONN_PENDING])
            ):
                upstream_done(q, 503, F_UO)
                return
            retry = rt_i[r, RI_RETRY] == 1 and not copy
            attempts = rt_i[r, RI_HOST_ATTEMPTS] if retry and rt_i[r, RI_PREVIOUS_HOSTS] == 1 else 0
            p = pick(c, q, attempts)
            if p < 0:
                if copy:
                    mirror_done(q)  # no host: nothing is sent
                else:
                    upstream_done(q, 503, F_UH)
                return
            nt = rq_i[q, R_NTRIED]
            if nt < rq_tried.shape[1] and not tried_before(q, p):
                rq_tried[q, _nonneg(nt)] = p
                rq_i[q, R_NTRIED] = nt + 1
            rq_i[q, R_POD] = p
            if pooled:
                pre = rq_f[q, Q_PENDING]
                if pre > 0:
                    # a fault delay comes before the router asks the pool
                    rq_f[q, Q_PENDING] = 0.0
                    push(st_f[SF_NOW] + pre, K_POOL_ASK, q, 0, False)
                    return
                # asked here, not as a next step: most asks find a connection (one idle, or
                # one the limit allows), and the try goes on within the same call
                if not pool_ask(q):
                    return
        try_send(q)  # its one call site: the pool's later grants come back through try_start

    def pool_leave(q):
        """A pending request's route timeout: it leaves its pool's queue with 504 UT."""
        k = _nonneg(rq_i[q, R_POOL])
        prev = -1
        cur = pl_i[k, PL_HEAD]
        while cur >= 0 and cur != q:
            prev = cur
            cur = rq_i[cur, R_NEXT]
        nxt = rq_i[q, R_NEXT]
        if prev < 0:
            pl_i[k, PL_HEAD] = nxt
        else:
            rq_i[prev, R_NEXT] = nxt
        if pl_i[k, PL_TAIL] == q:
            pl_i[k, PL_TAIL] = prev
        cs_i[_nonneg(rq_i[q, R_CLUSTER]), CS_PENDING] -= 1
        rq_i[q, R_POOL_WAIT] = 0
        rq_i[q, R_POOL] = -1
        upstream_done(q, 504, F_UT)

    # -- mirrors (Router._mirror: a try whose answer nobody waits for) -----------------------
    def mirror(q, c):
        """Copy request *q* to cluster *c*: a slot of its own, its try started as an event.

        The SimPy router starts the copy as a process of its own, which runs after the request's
        own try has picked its host (in the same instant); an event at now does the same.
        """
        n = _nonneg(st_i[SI_REQ_FREE] - 1)
        st_i[SI_REQ_FREE] = n
        m = _nonneg(req_free[n])
        for j in range(Q_SIZE):
            rq_f[m, j] = 0.0
        rq_f[m, Q_T0] = st_f[SF_NOW]
        rq_f[m, Q_DEADLINE] = np.inf
        for j in range(R_SIZE):
            rq_i[m, j] = 0
        rq_i[m, R_MIRROR] = 1
        rq_i[m, R_ID] = -1
        rq_i[m, R_TRAFFIC] = rq_i[q, R_TRAFFIC]
        rq_i[m, R_CLASS] = -1  # a copy has no hash key (Router._mirror picks with None)
        rq_i[m, R_AZ] = rq_i[q, R_AZ]
        rq_i[m, R_GW] = rq_i[q, R_GW]
        rq_i[m, R_WORKER] = rq_i[q, R_WORKER]
        rq_i[m, R_NODE] = rq_i[q, R_NODE]
        rq_i[m, R_ROUTE] = rq_i[q, R_ROUTE]
        rq_i[m, R_CLUSTER] = c
        rq_i[m, R_TARGET] = -1
        rq_i[m, R_LABEL] = -1
        rq_i[m, R_JOB] = -1
        rq_i[m, R_POD] = -1
        rq_i[m, R_POOL] = -1  # a copy takes no pooled connection (UpstreamCluster.attempt)
        new_attempt(m)
        st_i[SI_SHADOWS] += 1
        push(st_f[SF_NOW], K_MIRROR, m, 0, False)

    # -- router (Router.dispatch) -----------------------------------------------------------
    def take_token(b):
        now = st_f[SF_NOW]
        s = bk_i.shape[0]
        spec = b % s
        if bucket_timer:
            fills = np.floor(now / bk_f[spec, BF_INTERVAL])
            if fills > bk_s[b, 1]:
                added = (fills - bk_s[b, 1]) * bk_f[spec, BF_PER_FILL]
                bk_s[b, 0] = min(bk_f[spec, BF_MAX_TOKENS], bk_s[b, 0] + added)
                bk_s[b, 1] = fills
        elif now > bk_s[b, 1]:
            rate = bk_f[spec, BF_PER_FILL] / bk_f[spec, BF_INTERVAL]
            bk_s[b, 0] = min(bk_f[spec, BF_MAX_TOKENS], bk_s[b, 0] + (now - bk_s[b, 1]) * rate)
            bk_s[b, 1] = now
        if bk_s[b, 0] >= 1.0 - 1e-9:
            bk_s[b, 0] -= 1.0
            return True
        return False

    def router(q):
        r = cls_route[_nonneg(rq_i[q, R_CLASS])]
        if r < 0:
            rq_i[q, R_STATUS] = 404
            rq_i[q, R_FLAGS] |= F_NR
            then(W_FINALIZE, q, 0, 0)
            return
        rq_i[q, R_ROUTE] = r
        if rt_i[r, RI_HAS_FAULT] == 1:
            dpm = rt_i[r, RI_DELAY_PM]
            if dpm > 0 and uni(S_ROUTER) * 1e6 < dpm:
                rq_i[q, R_FLAGS] |= F_DI
                rq_f[q, Q_PENDING] += rt_f[r, RF_DELAY_S]
            apm = rt_i[r, RI_ABORT_PM]
            if apm > 0 and uni(S_ROUTER) * 1e6 < apm:
                rq_i[q, R_STATUS] = rt_i[r, RI_ABORT_STATUS]
                rq_i[q, R_FLAGS] |= F_FI
                then(W_FINALIZE, q, 0, 0)
                return
        spec = rt_i[r, RI_BUCKET]
        if spec >= 0:
            # Router._limited: not enabled for this request, a token, or not enforced
            enabled = bk_i[spec, BI_ENABLED_PM]
            passed = (enabled < 1000000 and uni(S_ROUTER) * 1e6 >= enabled) or (
                take_token(rq_i[q, R_GW] * n_specs + spec)
                or uni(S_ROUTER) * 1e6 >= bk_i[spec, BI_ENFORCED_PM]
            )
            if not passed:
                rq_i[q, R_STATUS] = bk_i[spec, BI_STATUS]
                rq_i[q, R_FLAGS] |= F_RL
                then(W_FINALIZE, q, 0, 0)
                return
        if rt_i[r, RI_REDIRECT] > 0:
            rq_i[q, R_STATUS] = rt_i[r, RI_REDIRECT]
            then(W_FINALIZE, q, 0, 0)
            return
        if rt_i[r, RI_DIRECT] > 0:
            rq_i[q, R_STATUS] = rt_i[r, RI_DIRECT]
            then(W_FINALIZE, q, 0, 0)
            return
        n = rt_i[r, RI_WC_N]
        at = rt_i[r, RI_WC_AT]
        c = -1
        if n == 1:
            c = wc_cluster[_nonneg(at)]
        elif n > 1 and rt_i[r, RI_TOTAL_WEIGHT] > 0:
            selected = _int62(rs, S_WEIGHTS) % rt_i[r, RI_TOTAL_WEIGHT]
            acc = 0
            c = wc_cluster[at + n - 1]
            for w in range(at, at + n):
                acc += wc_weight[w]
                if selected < acc:
                    c = wc_cluster[w]
                    break
        if c < 0:
            # no pick (503), or a pick of a backend that does not resolve: the route's
            # cluster_not_found status (Router.dispatch)
            rq_i[q, R_STATUS] = rt_i[r, RI_NOT_FOUND] if c == WC_NOT_FOUND else 503
            rq_i[q, R_FLAGS] |= F_NC
            then(W_FINALIZE, q, 0, 0)
            return
        rq_i[q, R_CLUSTER] = c
        # timeouts start when the router sends the request, i.e. after a fault delay
        rq_f[q, Q_DEADLINE] = st_f[SF_NOW] + rq_f[q, Q_PENDING] + rt_f[r, RF_TIMEOUT_S]
        at = rt_i[r, RI_MIRROR_AT]
        for m in range(at, at + rt_i[r, RI_MIRROR_N]):
            pm = mr_i[m, MR_PER_MILLION]
            if pm >= 1000000 or uni(S_ROUTER) * 1e6 < pm:
                mirror(q, mr_i[m, MR_CLUSTER])
        then(W_TRY_START, q, 0, 0)

    # -- ingress (GatewayPod.handle) ----------------------------------------------------------
    def after_cpu(q):
        spent = rq_f[q, Q_INGRESS_S]
        if d_lat >= 0:
            lat = draw(S_ILAT, d_lat)
            rq_f[q, Q_TAIL] += lat  # charged on the response path (Outcome.tail)
            spent += lat
        rq_f[q, Q_INGRESS_S] = spent
        router(q)

    def acquire_worker(q):
        w = worker_slot(q)
        g = _nonneg(rq_i[q, R_GW])
        rq_f[q, Q_ING_T0] = st_f[SF_NOW]
        asked(g, 0, wk_i[w, W_BUSY] != 0)
        if wk_i[w, W_BUSY] == 0:
            wk_i[w, W_BUSY] = 1
            busy_for(g, 0, rq_f[q, Q_CPU])
            push(st_f[SF_NOW] + rq_f[q, Q_CPU], K_CPU_DONE, q, 0, False)
            return
        fifo_append(rq_i, R_NEXT, wk_i, w, W_HEAD, W_TAIL, q)

    def cpu_done(q):
        w = worker_slot(q)
        head = wk_i[w, W_HEAD]
        if head >= 0:
            nxt = rq_i[head, R_NEXT]
            wk_i[w, W_HEAD] = nxt
            if nxt < 0:
                wk_i[w, W_TAIL] = -1
            g = _nonneg(rq_i[head, R_GW])
            handed(g, 0, rq_f[head, Q_ING_T0])
            busy_for(g, 0, rq_f[head, Q_CPU])
            push(st_f[SF_NOW] + rq_f[head, Q_CPU], K_CPU_DONE, head, 0, False)
        else:
            wk_i[w, W_BUSY] = 0
        rq_f[q, Q_INGRESS_S] = st_f[SF_NOW] - rq_f[q, Q_ING_T0]
        then(W_AFTER_CPU, q, 0, 0)

    def ingress(q):
        gw = _nonneg(rq_i[q, R_GW])
        rq_i[q, R_NODE] = gw_node[gw]
        if d_cpu >= 0:
            t = draw(S_CPU, d_cpu) * gw_scale[gw]
            if t > 0:
                rq_f[q, Q_CPU] = t
                pending = rq_f[q, Q_PENDING]
                if pending > 0:
                    rq_f[q, Q_PENDING] = 0.0
                    push(st_f[SF_NOW] + pending, K_INGRESS, q, 0, False)
                    return
                acquire_worker(q)
                return
        rq_f[q, Q_INGRESS_S] = 0.0
        then(W_AFTER_CPU, q, 0, 0)

    # -- AWS load balancer (LoadBalancer) -------------------------------------------------------
    def choose(az):
        n = 0
        if not cross_zone:
            for t in range(n_targets):
                if tg_s[t, T_HEALTHY] == 1 and tg_i[t, 0] == az:
                    tmp[n] = t
                    n += 1
        if n == 0:
            for t in range(n_targets):
                if tg_s[t, T_HEALTHY] == 1:
                    tmp[n] = t
                    n += 1
        if n == 0:
            for t in range(n_targets):  # no healthy target anywhere: fail open
                tmp[n] = t
                n += 1
        if alb and alb_rr:
            rr = (st_i[SI_LB_RR] + 1) % n
            st_i[SI_LB_RR] = rr
            return tmp[rr]
        if alb:
            best = tg_s[tmp[0], T_OUTSTANDING]
            for j in range(n):
                if tg_s[tmp[j], T_OUTSTANDING] < best:
                    best = tg_s[tmp[j], T_OUTSTANDING]
            ties = 0
            for j in range(n):
                if tg_s[tmp[j], T_OUTSTANDING] == best:
                    tmp[ties] = tmp[j]
                    ties += 1
            return tmp[np.int64(uni(S_LB) * ties)]
        return tmp[np.int64(uni(S_LB) * n)]

    def gateway_for(t):
        """(gateway pod or -1, extra latency) kube-proxy forwards target *t* to."""
        if target_ip:
            g = tg_i[t, 2]
            return (g if nd_alive[gw_node[g]] == 1 else -1), 0.0
        node = tg_i[t, 1]
        extra = draw(S_KP, d_kp)
        if local:
            cnt = node_gw_at[node + 1] - node_gw_at[node]
            if nd_alive[node] == 1 and cnt > 0:
                return node_gw[node_gw_at[node] + np.int64(uni(S_LB) * cnt)], extra
            return -1, extra
        n = 0
        for g in range(n_gw):
            if nd_alive[gw_node[g]] == 1:
                tmp[n] = g
                n += 1
        if n == 0:
            return -1, extra
        g = tmp[np.int64(uni(S_LB) * n)]
        if gw_node[g] != node:
            extra += draw(S_NODE, d_node)
            if node_az[gw_node[g]] != node_az[node]:
                extra += draw(S_AZ, d_az)
        return g, extra

    def load_balancer(q, conn):
        if alb or conn < 0:
            t = choose(rq_i[q, R_AZ])
            g, extra = gateway_for(t)
            worker = np.int64(uni(S_LB) * n_workers)
        else:
            t = _nonneg(cn_i[conn, C_TARGET])
            g = cn_i[conn, C_GW]
            worker = cn_i[conn, C_WORKER]
            extra = 0.0 if target_ip else draw(S_KP, d_kp)
        lat = draw(S_LB_LAT, d_lb) + extra
        if tg_i[t, 0] != rq_i[q, R_AZ]:
            lat += draw(S_AZ, d_az)
        rq_f[q, Q_PENDING] += lat
        rq_f[q, Q_LB_S] = rq_f[q, Q_PENDING]
        if g < 0 or nd_alive[_nonneg(tg_i[t, 1])] == 0 or nd_alive[_nonneg(gw_node[g])] == 0:
            # the target is gone before the health check noticed: the client sees a failure
            rq_i[q, R_STATUS] = 502
            rq_i[q, R_FLAGS] |= F_LBF
            then(W_FINALIZE, q, 0, 0)
            return
        tg_s[t, T_OUTSTANDING] += 1
        rq_i[q, R_TARGET] = t
        rq_i[q, R_GW] = g
        rq_i[q, R_WORKER] = worker
        ingress(q)

    # -- clients (the engine's client process) ------------------------------------------------
    def rate_at(p, t):
        kind = tr_i[p, TI_KIND]
        if kind == A_DIURNAL:
            return tr_f[p, TF_RATE] * (
                1.0 + tr_f[p, TF_AMPLITUDE] * math.sin(2.0 * math.pi * t / tr_f[p, TF_PERIOD])
            )
        at = tr_i[p, TI_STEPS_AT]
        n = tr_i[p, TI_STEPS_N]
        i = -1
        for j in range(n):
            if steps[at + j, 0] <= t:
                i = j
            else:
                break
        if i < 0:
            return 0.0
        if tr_i[p, TI_RAMP] == 0 or i == n - 1:
            return steps[at + i, 1]
        a0 = steps[at + i, 0]
        r0 = steps[at + i, 1]
        slope = (steps[at + i + 1, 1] - r0) / (steps[at + i + 1, 0] - a0)
        return r0 + slope * (t - a0)

    def next_gap(p, now):
        """Arrivals.next_gap: the next inter-arrival time, or -1 for no more arrivals."""
        kind = tr_i[p, TI_KIND]
        s = tr_stream_at + 3 * p
        if kind == A_POISSON:
            return _exponential(rs, _nonneg(s)) / tr_f[p, TF_RATE]
        if kind == A_CONSTANT:
            return 1.0 / tr_f[p, TF_RATE]
        if kind == A_REPLAY:
            i = tr_next[p]
            if i >= tr_i[p, TI_REPLAY_N]:
                return -1.0
            tr_next[p] = i + 1
            gap = replay[tr_i[p, TI_REPLAY_AT] + i] - now
            return gap if gap > 0.0 else 0.0
        lam = tr_f[p, TF_LAMBDA_MAX]
        if lam <= 0:
            return -1.0
        t = max(now, tr_f[p, TF_START])
        while True:  # thinning (Lewis & Shedler)
            t += _exponential(rs, _nonneg(s)) / lam
            if t >= tr_f[p, TF_END]:
                return -1.0
            if uni(s) * lam < rate_at(p, t):
                return t - now

    def pick_cum(at, n, u):
        for k in range(n):
            if u < tr_cum[_nonneg(at + k)]:
                return k
        return n - 1

    def new_connection(conn, az):
        t = choose(az)
        g, _ = gateway_for(t)
        cn_i[conn, C_VALID] = 1
        cn_i[conn, C_TARGET] = t
        cn_i[conn, C_GW] = g if g >= 0 else 0
        cn_i[conn, C_WORKER] = np.int64(uni(S_LB) * n_workers)
        cn_i[conn, C_REQUESTS] = 0
        cn_f[conn] = st_f[SF_NOW]
        if g < 0:
            cn_i[conn, C_GW] = -1

    def arrival(p):
        now = st_f[SF_NOW]
        n = _nonneg(st_i[SI_REQ_FREE] - 1)
        st_i[SI_REQ_FREE] = n
        q = _nonneg(req_free[n])
        for j in range(Q_SIZE):
            rq_f[q, j] = 0.0
        rq_f[q, Q_T0] = now
        rq_f[q, Q_DEADLINE] = np.inf
        rq_i[q, R_TRAFFIC] = p
        rq_i[q, R_TARGET] = -1
        rq_i[q, R_GW] = -1
        rq_i[q, R_ROUTE] = -1
        rq_i[q, R_CLUSTER] = -1
        rq_i[q, R_LABEL] = -1
        rq_i[q, R_STATUS] = 0
        rq_i[q, R_FLAGS] = 0
        rq_i[q, R_RETRIES] = 0
        rq_i[q, R_UPSTREAM] = 0
        rq_i[q, R_NTRIED] = 0
        rq_i[q, R_NODE] = -1
        rq_i[q, R_JOB] = -1
        rq_i[q, R_POD] = -1
        rq_i[q, R_MIRROR] = 0
        rq_i[q, R_POOL] = -1
        rq_i[q, R_POOL_WAIT] = 0
        rq_i[q, R_ID] = st_i[SI_IDS]
        st_i[SI_IDS] += 1
        new_attempt(q)
        s = tr_stream_at + 3 * p + 1
        tpl = 0
        if tr_i[p, TI_TPL] > 1:
            tpl = pick_cum(tr_i[p, TI_TPL_AT], tr_i[p, TI_TPL], uni(s))
        users = tr_i[p, TI_USERS]
        cls = tr_i[p, TI_CLASS_AT] + tpl * (users if users > 1 else 1)
        if users > 0:
            cls += np.int64(uni(s) * users)
        rq_i[q, R_CLASS] = cls
        n_az = tr_i[p, TI_AZ_N]
        k = 0
        if n_az > 1:
            k = pick_cum(tr_i[p, TI_AZCUM_AT], n_az, uni(s))
        rq_i[q, R_AZ] = tr_az[_nonneg(tr_i[p, TI_AZ_AT] + k)]
        conn = -1
        if tr_i[p, TI_KEEPALIVE] == 1:
            pool = tr_i[p, TI_POOL]
            conn = _nonneg(tr_i[p, TI_POOL_AT] + np.int64(uni(tr_stream_at + 3 * p + 2) * pool))
            cap = tr_i[p, TI_CAP]
            t = _nonneg(cn_i[conn, C_TARGET])
            if (
                cn_i[conn, C_VALID] == 0
                or now - cn_f[conn] >= tr_f[p, TF_LIFETIME]
                or (cap >= 0 and cn_i[conn, C_REQUESTS] >= cap)
                or tg_s[t, T_HEALTHY] == 0
                or nd_alive[_nonneg(tg_i[t, 1])] == 0
            ):
                new_connection(conn, rq_i[q, R_AZ])
            cn_i[conn, C_REQUESTS] += 1
        load_balancer(q, conn)

    # -- periodic processes -------------------------------------------------------------------
    def sample():
        now = st_f[SF_NOW]
        t = now - interval / 2
        k = min(max(np.int64(t / interval), 0), n_int - 1)
        for nd in range(n_nodes):
            cap = 0.0
            busy = 0.0
            for j in range(node_gw_at[nd], node_gw_at[nd + 1]):
                g = node_gw[j]
                cap += n_workers
                for w in range(n_workers):
                    busy += wk_i[g * n_workers + w, W_BUSY]
            if cap == 0.0:
                cap = 1.0
            if nd_alive[nd] == 0:
                # a lost node has no capacity (as the SimPy engine's sampler)
                busy = 0.0
                cap = 0.0
            ut_f[nd, 0, k] += busy
            ut_f[nd, 1, k] += cap
            ut_n[nd, k] += 1
        for p in range(st_i[SI_PODS]):
            if pd_i[p, P_ALIVE] == 1 and pd_i[p, P_NODE_ALIVE] == 1:
                ut_f[n_nodes + p, 0, k] += pd_i[p, P_SRV_N]
                ut_f[n_nodes + p, 1, k] += ve_i[pd_i[p, P_VERSION], VI_CONCURRENCY]
            ut_n[n_nodes + p, k] += 1
        push_rare(now + interval, K_SAMPLE, 0, 0)

    def health():
        now = st_f[SF_NOW]
        for t in range(n_targets):
            node = tg_i[t, 1]
            ok = nd_alive[node] == 1 and (
                target_ip or not local or node_gw_at[node + 1] > node_gw_at[node]
            )
            if ok:
                tg_f[t] = np.nan
                tg_s[t, T_HEALTHY] = 1
            elif np.isnan(tg_f[t]):
                tg_f[t] = now
            if (
                tg_s[t, T_HEALTHY] == 1
                and not np.isnan(tg_f[t])
                and now - tg_f[t] >= (hc_unhealthy - 1) * hc_interval
            ):
                tg_s[t, T_HEALTHY] = 0
        push_rare(now + hc_interval, K_HEALTH, 0, 0)

    def version_matches(e, v):
        want = ev_i[e, EI_VERSION]
        if want == -2:
            return False
        return ve_i[v, VI_SERVICE] == ev_i[e, EI_SERVICE] and (want == -1 or want == v)

    def node_lost(nd):
        if nd_alive[nd] == 1:
            for j in range(node_gw_at[nd], node_gw_at[nd + 1]):
                capacity_from(node_gw[j], 0, -n_workers)
        nd_alive[nd] = 0

    def apply_event(e):
        now = st_f[SF_NOW]
        kind = ev_i[e, EI_KIND]
        if kind == E_POD_CRASH:
            left = ev_i[e, EI_COUNT]
            for v in range(n_versions):
                if not version_matches(e, v):
                    continue
                for p in range(st_i[SI_PODS]):
                    if left == 0:
                        break
                    if pd_i[p, P_VERSION] == v and pd_i[p, P_ALIVE] == 1:
                        kill_pod(p, False)
                        left -= 1
                        if ev_f[e, EF_RESTART] < np.inf:
                            push_rare(now + ev_f[e, EF_RESTART], K_POD_REVIVE, p, 0)
        elif kind == E_ERROR_BURST:
            bu_f[e, 0] = now
            bu_f[e, 1] = now + (ev_f[e, EF_DURATION] if ev_f[e, EF_DURATION] < np.inf else duration)
            for p in range(st_i[SI_PODS]):
                if version_matches(e, pd_i[p, P_VERSION]):
                    pd_burst[p, pd_i[p, P_NBURST]] = e
                    pd_i[p, P_NBURST] += 1
        elif kind in (E_DEPLOY, E_SCALE):
            v = ev_i[e, EI_VERSION]
            if v < 0:
                return
            target = ev_i[e, EI_REPLICAS] if ev_i[e, EI_REPLICAS] >= 0 else 1
            live = 0
            for p in range(st_i[SI_PODS]):
                if pd_i[p, P_VERSION] == v and pd_i[p, P_ALIVE] == 1:
                    live += 1
            add = target if kind == E_DEPLOY else target - live
            for i in range(max(0, add)):
                add_pod(v, (live + i) % n_azs, now + ve_f[v, VF_STARTUP])
            if add < 0:
                seen = 0
                for p in range(st_i[SI_PODS]):
                    if pd_i[p, P_VERSION] == v and pd_i[p, P_ALIVE] == 1:
                        if seen >= target:
                            kill_pod(p, False)
                        seen += 1
        elif kind == E_NODE_LOSS:
            nd = ev_i[e, EI_NODE]
            if nd >= 0:
                node_lost(nd)
        elif kind == E_AZ_LOSS:
            az = ev_i[e, EI_AZ]
            for nd in range(n_nodes):
                if node_az[nd] == az:
                    node_lost(nd)
            for v in range(n_versions):
                for p in range(st_i[SI_PODS]):
                    if pd_i[p, P_VERSION] == v and pd_i[p, P_AZ] == az and pd_i[p, P_ALIVE] == 1:
                        kill_pod(p, True)

    def hpa_tick(v):
        """One step of the engine's autoscaler process (mean utilisation over a sync period)."""
        now = st_f[SF_NOW]
        sync = ve_f[v, VF_SYNC]
        step = min(sync / 10, interval)
        for p in range(st_i[SI_PODS]):
            if (
                pd_i[p, P_VERSION] == v
                and pd_i[p, P_ALIVE] == 1
                and pd_i[p, P_IN_EP] == 1
                and now >= pd_f[p, PF_READY_AT]
            ):
                hpa_f[v, 0] += pd_i[p, P_SRV_N]
                hpa_f[v, 1] += ve_i[v, VI_CONCURRENCY]
        if now < hpa_f[v, 2] - 1e-12:
            push_rare(now + min(step, hpa_f[v, 2] - now), K_HPA, v, 0)
            return
        current = 0
        for p in range(st_i[SI_PODS]):
            if pd_i[p, P_VERSION] == v and pd_i[p, P_ALIVE] == 1:
                current += 1
        busy = hpa_f[v, 0]
        cap = hpa_f[v, 1]
        hpa_f[v, 0] = 0.0
        hpa_f[v, 1] = 0.0
        hpa_f[v, 2] = now + sync
        push_rare(now + min(step, sync), K_HPA, v, 0)
        if current == 0 or cap == 0:
            return
        ratio = (busy / cap) / ve_f[v, VF_TARGET]
        desired = current
        if abs(ratio - 1.0) > ve_f[v, VF_TOLERANCE]:
            desired = np.int64(math.ceil(current * ratio))
        desired = max(ve_i[v, VI_MIN], min(ve_i[v, VI_MAX], desired))
        if desired == current:
            return
        n = st_i[SI_HPA_N]
        hpa_log[n, 0] = now
        hpa_log[n, 1] = v
        hpa_log[n, 2] = current
        hpa_log[n, 3] = desired
        st_i[SI_HPA_N] = n + 1
        if desired > current:
            # Pods beyond the room on the current nodes wait for new ones (Pending), as the
            # SimPy autoscaler (engine.py) does; hpa_f[v, 3] is the room, -1 for no limit
            add = desired - current
            room = add
            room_left = np.int64(hpa_f[v, 3])
            if room_left >= 0:
                room = max(0, room_left - current)
                if add > room:
                    per_node = ve_i[v, VI_PODS_PER_NODE]
                    if per_node <= 0:
                        per_node = add - room
                    hpa_f[v, 3] = room_left + ((add - room + per_node - 1) // per_node) * per_node
            for i in range(add):
                delay = ve_f[v, VF_STARTUP] + (ve_f[v, VF_NODE_PROVISIONING] if i >= room else 0.0)
                add_pod(v, (current + i) % n_azs, now + delay)
        else:
            seen = 0
            for p in range(st_i[SI_PODS]):
                if pd_i[p, P_VERSION] == v and pd_i[p, P_ALIVE] == 1:
                    if seen >= desired:
                        kill_pod(p, False)
                    seen += 1

    # -- start ------------------------------------------------------------------------------
    if st_i[SI_STARTED] == 0:
        st_i[SI_STARTED] = 1
        st_i[SI_RING_STALE] = 1  # the rings are built before the first pick
        st_f[SF_NOW] = 0.0
        for t in range(n_targets):
            node = tg_i[t, 1]
            ok = nd_alive[node] == 1 and (
                target_ip or not local or node_gw_at[node + 1] > node_gw_at[node]
            )
            tg_s[t, T_HEALTHY] = 1 if ok else 0
        for p in range(cfg_i[CI_TRAFFIC]):
            gap = next_gap(p, 0.0)
            if gap >= 0:
                push_rare(gap, K_ARRIVAL, p, 0)
        push_rare(interval, K_SAMPLE, 0, 0)
        push_rare(hc_interval, K_HEALTH, 0, 0)
        for e in range(cfg_i[CI_EVENTS]):
            push_rare(ev_f[e, EF_AT], K_EVENT, e, 0)
        for v in range(n_versions):
            if ve_i[v, VI_AUTOSCALE] == 1:
                sync = ve_f[v, VF_SYNC]
                hpa_f[v, 2] = sync
                hpa_f[v, 3] = ve_i[v, VI_NODE_CAP]
                push_rare(min(sync / 10, interval, sync), K_HPA, v, 0)

    # -- the loop -------------------------------------------------------------------------
    heap_cap = h_t.shape[0]
    margin = 64 + max_pods + n_targets
    while True:
        if st_i[SI_REQ_FREE] < 1 + mirror_room:
            return GROW_REQUESTS
        if st_i[SI_JOB_FREE] < 4:
            return GROW_JOBS
        if st_i[SI_HEAP] + margin > heap_cap or st_i[SI_DHEAP] + 4 > d_t.shape[0]:
            return GROW_HEAP
        if st_i[SI_RING_END] + 4 > dr_t.shape[0]:
            head = _nonneg(st_i[SI_RING_HEAD])
            end = st_i[SI_RING_END]
            while head < end and ring_stale(head):  # drop the stale first, then decide
                head += 1
            st_i[SI_RING_HEAD] = head
            if head < end and head < dr_t.shape[0] // 2:
                return GROW_HEAP
            for i in range(head, end):  # slide the live entries to the front
                dr_t[i - head] = dr_t[i]
                for f in range(3):
                    dr_i[3 * (i - head) + f] = dr_i[3 * i + f]
            st_i[SI_RING_HEAD] = 0
            st_i[SI_RING_END] = end - head
        if st_i[SI_CODES] + 4 > codes.shape[0]:
            return GROW_CODES
        if st_i[SI_HPA_N] + n_versions + 1 > hpa_log.shape[0]:
            return GROW_HPA
        if st_i[SI_RING_STALE] == 1:
            # one flag, not a walk over the clusters at every event (7 % of the seed's loop)
            if has_ring:
                return NEED_RING  # run.py rebuilds the stale rings and clears the flag
            st_i[SI_RING_STALE] = 0
        # Four sources, merged by (time, sequence): the event heap and its one-event buffer
        # (see push); a try's deadline waits in the deadline ring (appended in time order) or,
        # out of order, the deadline heap. Most deadlines are stale when due (their try ended
        # first); kept out of the event heap they do not deepen every push and pop, and in the
        # ring they cost nothing to order. One sequence counter: the events run in the same
        # order as from one heap.
        src = -1
        t = np.inf
        seq = 0
        if st_i[SI_HEAP] > 0:
            src = 0
            t = h_t[0]
            seq = h_i[H_SEQ]
        if st_i[SI_BUF] == 1:
            bt = st_f[SF_BUF_T]
            if src < 0 or bt < t or (bt == t and st_i[SI_BUF_SEQ] < seq):
                src = 3
                t = bt
                seq = st_i[SI_BUF_SEQ]
        if st_i[SI_DHEAP] > 0 and (src < 0 or d_t[0] < t or (d_t[0] == t and d_i[H_SEQ] < seq)):
            src = 1
            t = d_t[0]
            seq = d_i[H_SEQ]
        head = _nonneg(st_i[SI_RING_HEAD])
        end = _nonneg(st_i[SI_RING_END])
        # Stale deadlines are dropped when the ring's head is due (or when the ring is full,
        # above), not at every event: reading the head's request each time was 4 % of the loop,
        # and a deadline is rarely due (a route's timeout is seconds, its tries milliseconds).
        if head < end and (src < 0 or dr_t[head] <= t):
            # A deadline whose try has ended (most of them, as the try's completion clears
            # it by starting a new attempt number, and attempt numbers never repeat) would run
            # as an event that does nothing: drop it here instead of running the loop for it.
            first = head
            while head < end and ring_stale(head):
                head += 1
            if head == end:
                head = 0
                end = 0
                st_i[SI_RING_HEAD] = 0
                st_i[SI_RING_END] = 0
            elif head != first:
                st_i[SI_RING_HEAD] = head
        if head < end and (
            src < 0 or dr_t[head] < t or (dr_t[head] == t and dr_i[3 * head + H_SEQ] < seq)
        ):
            src = 2
            t = dr_t[head]
        if src < 0 or t >= until:
            break
        if src == 3:
            key = st_i[SI_BUF_KEY]
            aux = st_i[SI_BUF_AUX]
            st_i[SI_BUF] = 0
        elif src == 0:
            key = h_i[H_KEY]
            aux = h_i[H_AUX]
            _pop(h_t, h_i, st_i, SI_HEAP)
        elif src == 1:
            key = d_i[H_KEY]
            aux = d_i[H_AUX]
            _pop(d_t, d_i, st_i, SI_DHEAP)
        else:
            key = dr_i[3 * head + H_KEY]
            aux = dr_i[3 * head + H_AUX]
            if head + 1 == st_i[SI_RING_END]:
                st_i[SI_RING_HEAD] = 0
                st_i[SI_RING_END] = 0
            else:
                st_i[SI_RING_HEAD] = head + 1
        st_f[SF_NOW] = t
        kind = key & ((1 << K_BITS) - 1)
        x = _nonneg(key >> K_BITS)  # a request, job, pod, traffic source, event or version
        if kind == K_ARRIVAL:
            if rq_f.shape[0] - st_i[SI_REQ_FREE] - st_i[SI_SHADOWS] >= max_in_flight:
                if t >= warmup:
                    st_i[SI_REJECTED] += 1  # refused at the in-flight limit, never lost
            else:
                arrival(x)
        elif kind == K_SERVICE_DONE:
            then(W_SERVICE_DONE, x, 0, 0)
        elif kind == K_CPU_DONE:
            cpu_done(x)
        elif kind == K_SIDECAR_DONE:
            sidecar_done(x)
        elif kind == K_JOB_ARRIVE:
            then(W_JOB_ARRIVE, x, 0, 0)
        elif kind == K_INGRESS:
            acquire_worker(x)
        elif kind == K_DEADLINE:
            if rq_i[x, R_ATTEMPT] == aux and rq_i[x, R_POOL_WAIT] == 1:
                pool_leave(x)
            elif rq_i[x, R_ATTEMPT] == aux:
                j = rq_i[x, R_JOB]
                if j >= 0:
                    jb_i[j, J_REQ] = -1  # the pod goes on with the work, detached
                    if (
                        jb_i[j, J_STAGE] == JS_SERVING
                        and ve_i[_nonneg(pd_i[_nonneg(jb_i[j, J_POD]), P_VERSION]), VI_STOP] == 1
                    ):
                        cancel_service(j)  # ... or drops it at the reset (on_cancel stop)
                then(W_TRY_END, x, 504, F_UT)
        elif kind == K_TRY_END:
            if rq_i[x, R_ATTEMPT] == aux:
                then(W_TRY_END, x, rq_i[x, R_TRY_STATUS], rq_i[x, R_TRY_FLAG])
        elif kind == K_BACKOFF:
            cs_i[rq_i[x, R_CLUSTER], CS_RETRIES] -= 1
            then(W_TRY_START, x, 0, 0)
        elif kind == K_FINISH:
            upstream_done(x, 504, F_UT)
        elif kind == K_SAMPLE:
            sample()
        elif kind == K_HEALTH:
            health()
        elif kind == K_EVENT:
            apply_event(x)
        elif kind == K_POD_LEAVE:
            pd_i[x, P_IN_EP] = 0
            endpoints_changed()
        elif kind == K_POD_REVIVE:
            pd_i[x, P_ALIVE] = 1
            pod_capacity_from(x, 1)
            pd_i[x, P_NODE_ALIVE] = 1
            pd_i[x, P_IN_EP] = 1
            pd_f[x, PF_READY_AT] = t + ve_f[pd_i[x, P_VERSION], VF_STARTUP]
            endpoints_changed()
        elif kind == K_HPA:
            hpa_tick(x)
        elif kind == K_MIRROR:
            then(W_TRY_START, x, 0, 0)  # the copy's try (try_start knows it for a copy)
        elif kind == K_POOL_ASK:
            then(W_POOL_ASK, x, 0, 0)
        elif kind == K_POOL_READY:
            then(W_TRY_START, x, 0, 0)
        # the request's journey goes on within this instant, one stage after another
        while st_i[SI_NEXT] != W_NONE:
            work = st_i[SI_NEXT]
            y = _nonneg(st_i[SI_NEXT_X])
            status = st_i[SI_NEXT_STATUS]
            flag = st_i[SI_NEXT_FLAG]
            st_i[SI_NEXT] = W_NONE
            if work == W_FINALIZE:
                finalize(y)
            elif work == W_TRY_END:
                try_end(y, status, flag)
            elif work == W_TRY_START:
                try_start(y)
            elif work == W_JOB_ARRIVE:
                job_arrive(y)
            elif work == W_SERVER_ACQUIRE:
                server_acquire(y)
            elif work == W_SERVICE_DONE:
                service_done(y)
            elif work == W_AFTER_CPU:
                after_cpu(y)
            elif work == W_POOL_ASK and pool_ask(y):  # asked after a fault delay, granted
                rq_i[y, R_POOL_WAIT] = POOL_GRANTED
                then(W_TRY_START, y, 0, 0)
        if kind == K_ARRIVAL:
            gap = next_gap(x, t)
            if gap >= 0:
                push(t + gap, K_ARRIVAL, x, 0, False)
    if until >= duration and st_i[SI_DONE] == 0:
        st_i[SI_DONE] = 1
        close_before(n_int + GRACE + 1)
    return DONE


__all__ = ["DONE", "run_until"]
