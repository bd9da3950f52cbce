"""Numba versions of the small numpy computations of the scene generator, bit for bit.

The synthetic datasets are pinned byte for byte (``tests/test_synth_pin.py``), so a compiled replacement of a
numpy expression must round exactly as numpy does. Three sources of rounding matter:

* **libm**: numpy's float64 ``sin``, ``cos``, ``pow`` call the C library on this platform, as numba does;
  ``array ** scalar`` takes numpy's fast paths for the exponents 2 (``x * x``), 0.5 (``sqrt``) and -1
  (``1 / x``) (:func:`npy_pow`).
* **BLAS**: numpy hands ``@`` to OpenBLAS, whose x86-64 kernels (Haswell / Zen, the ones this machine runs)
  fuse multiply-adds in a fixed order: a matrix product accumulates ``c = fma(a_k, b_k, c)`` over ``k`` from
  ``c = a_0 b_0`` (:func:`mat3`, :func:`rigid_rows`); a 3x3 matrix times a vector is
  ``fma(a_2, x_2, fma(a_0, x_0, a_1 x_1))`` (:func:`mat3_vec`); a vector times a few matrix rows adds
  ``fma(a_2, m_2, a_0 m_0) + fma(a_3, m_3, a_1 m_1)`` per group of four rows, then a pair
  ``a_0 m_0 + a_1 m_1``, then a single row, except in the last ``n % 4`` of ``n`` columns, which are plain
  sums in order (:func:`rows_combination`).
* **reductions**: ``np.trace`` of a 3x3 matrix is ``(d_0 + d_1) + d_2``, ``np.linalg.norm`` of a 3-vector
  ``sqrt((x_0^2 + x_1^2) + x_2^2)``, ``mean(axis=0)`` adds rows in order.

``tests/test_synth_exact.py`` checks every function here against its numpy expression on random inputs,
so a different BLAS or numpy that rounds otherwise fails there (and in the pinned bytes) rather than
silently.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic


@intrinsic
def fma(typingctx, a, b, c):  # pragma: no cover
    """``a * b + c`` with one rounding (LLVM's ``llvm.fma.f64``; a hardware FMA on x86-64 with FMA3)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        d = ir.DoubleType()
        fn = builder.module.declare_intrinsic("llvm.fma", [d], ir.FunctionType(d, [d, d, d]))
        return builder.call(fn, args)

    return sig, codegen


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def npy_pow(x, e):  # pragma: no cover
    """``x ** e`` as numpy computes ``array ** scalar`` for float64 (its fast paths for 2, 0.5 and -1)."""
    if e == 2.0:
        return x * x
    if e == 0.5:
        return math.sqrt(x)
    if e == -1.0:
        return 1.0 / x
    return x ** e


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def spow(x, e):  # pragma: no cover
    """``np.sign(x) * np.abs(x) ** e`` (a signed power)."""
    s = 1.0 if x > 0.0 else (-1.0 if x < 0.0 else (0.0 if x == 0.0 else x))
    return s * npy_pow(abs(x), e)


@njit(cache=True, nogil=True)
def mat3(A, B):  # pragma: no cover
    """``A @ B`` for ``(3, 3)`` float64 matrices, as OpenBLAS's dgemm rounds."""
    C = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            C[i, j] = fma(A[i, 2], B[2, j], fma(A[i, 1], B[1, j], A[i, 0] * B[0, j]))
    return C


@njit(cache=True, nogil=True)
def mat3_vec(A, x0, x1, x2):  # pragma: no cover
    """``A @ np.array([x0, x1, x2])`` for a ``(3, 3)`` float64 matrix, as OpenBLAS's dgemv rounds; ``(3,)``."""
    y = np.empty(3)
    for i in range(3):
        y[i] = 0.0 + fma(A[i, 2], x2, fma(A[i, 0], x0, A[i, 1] * x1))
    return y


@njit(cache=True, nogil=True, inline="always")
def rigid_row(p0, p1, p2, R, t, out, i):  # pragma: no cover
    """``out[i] = np.array([p0, p1, p2]) @ R.T + t`` (one row of :func:`rigid_rows`)."""
    for j in range(3):
        out[i, j] = fma(p2, R[j, 2], fma(p1, R[j, 1], p0 * R[j, 0])) + t[j]


@njit(cache=True, nogil=True)
def rigid_rows(P, R, t, out):  # pragma: no cover
    """``out[:] = P @ R.T + t`` for ``(N, 3)`` points (``N >= 2``: numpy computes a single row as a matrix-vector
    product, which rounds otherwise), a ``(3, 3)`` rotation and a ``(3,)`` translation."""
    for i in range(P.shape[0]):
        rigid_row(P[i, 0], P[i, 1], P[i, 2], R, t, out, i)


@njit(cache=True, nogil=True)
def rows_combination(a, rows, nz, out):  # pragma: no cover
    """``out[:] = a @ rows[nz]`` (a short vector ``a`` times a few rows of a matrix), as OpenBLAS's dgemv rounds:
    the sum starts at +0.0 and adds the groups of rows in order; the last ``rows.shape[1] % 4`` elements are
    plain sums in order. Streams along the rows (it vectorises)."""
    k = nz.shape[0]
    m = rows.shape[1]
    m4 = m - m % 4
    for j in range(m):
        out[j] = 0.0
    q = 0
    while q + 4 <= k:
        a0, a1, a2, a3 = a[q], a[q + 1], a[q + 2], a[q + 3]
        r0, r1, r2, r3 = rows[nz[q]], rows[nz[q + 1]], rows[nz[q + 2]], rows[nz[q + 3]]
        for j in range(m4):
            out[j] = out[j] + (fma(a2, r2[j], a0 * r0[j]) + fma(a3, r3[j], a1 * r1[j]))
        q += 4
    if k - q >= 2:
        a0, a1 = a[q], a[q + 1]
        r0, r1 = rows[nz[q]], rows[nz[q + 1]]
        for j in range(m4):
            out[j] = out[j] + (a0 * r0[j] + a1 * r1[j])
        q += 2
    if k - q == 1:
        a0 = a[q]
        r0 = rows[nz[q]]
        for j in range(m4):
            out[j] = out[j] + a0 * r0[j]
    for j in range(m4, m):
        acc = 0.0
        for q in range(k):
            acc = acc + a[q] * rows[nz[q], j]
        out[j] = 0.0 + acc


@njit(cache=True, nogil=True)
def euler_rotation(yaw_deg, pitch_deg, roll_deg):  # pragma: no cover
    """``Rx(-pitch) @ Ry(yaw) @ Rz(roll)`` (the project's Euler convention, degrees), ``(3, 3)``: the numpy
    expression of :func:`depthface.synth.context._rotation`, bit for bit."""
    y = yaw_deg * (math.pi / 180.0)
    p = -pitch_deg * (math.pi / 180.0)
    r = roll_deg * (math.pi / 180.0)
    rx = np.zeros((3, 3))
    ry = np.zeros((3, 3))
    rz = np.zeros((3, 3))
    rx[0, 0] = 1.0
    rx[1, 1] = math.cos(p)
    rx[1, 2] = -math.sin(p)
    rx[2, 1] = math.sin(p)
    rx[2, 2] = math.cos(p)
    ry[0, 0] = math.cos(y)
    ry[0, 2] = math.sin(y)
    ry[1, 1] = 1.0
    ry[2, 0] = -math.sin(y)
    ry[2, 2] = math.cos(y)
    rz[0, 0] = math.cos(r)
    rz[0, 1] = -math.sin(r)
    rz[1, 0] = math.sin(r)
    rz[1, 1] = math.cos(r)
    rz[2, 2] = 1.0
    return mat3(mat3(rx, ry), rz)


@njit(cache=True, nogil=True)
def scaled_rotation(R, f):  # pragma: no cover
    """``exp(f log R)``, the numpy expression of :func:`depthface.synth.context._scaled_rotation` bit for bit."""
    c = min(max(((R[0, 0] + R[1, 1]) + R[2, 2] - 1.0) / 2.0, -1.0), 1.0)
    angle = math.acos(c)
    out = np.zeros((3, 3))
    if angle < 1e-9:
        for i in range(3):
            out[i, i] = 1.0
        return out
    w0 = R[2, 1] - R[1, 2]
    w1 = R[0, 2] - R[2, 0]
    w2 = R[1, 0] - R[0, 1]
    n = math.sqrt((w0 * w0 + w1 * w1) + w2 * w2)
    if n < 1e-9:  # angle ~ pi: axis from the symmetric part
        a0 = math.sqrt(max((R[0, 0] + 1.0) / 2.0, 0.0))
        a1 = math.sqrt(max((R[1, 1] + 1.0) / 2.0, 0.0))
        a2 = math.sqrt(max((R[2, 2] + 1.0) / 2.0, 0.0))
    else:
        a0 = w0 / n
        a1 = w1 / n
        a2 = w2 / n
    a = f * angle
    k = np.zeros((3, 3))
    k[0, 1] = -a2
    k[0, 2] = a1
    k[1, 0] = a2
    k[1, 2] = -a0
    k[2, 0] = -a1
    k[2, 1] = a0
    kk = mat3(k, k)
    s = math.sin(a)
    omc = 1.0 - math.cos(a)
    for i in range(3):
        for j in range(3):
            out[i, j] = ((1.0 if i == j else 0.0) + s * k[i, j]) + omc * kk[i, j]
    return out
