"""The same bytes from the generator on every x86-64 CPU (docs/synthetic.md "Determinism").

Two libraries pick their kernels by the CPU they run on, and their kernels round differently:
OpenBLAS (every NumPy ``@`` / ``dot`` / ``linalg`` call: AVX-512, AVX2 or SSE kernels sum in different
orders) and OpenCV (AVX2 / AVX-512 dispatch and Intel IPP in blur, warp, Sobel, colour conversion).
On one machine the output was already reproducible; between machines a copy differed in the
landmark files and in a few pixels. So the generator avoids BLAS for its small products
(:func:`dot`: element-wise products summed in a fixed order) and runs OpenCV on its baseline
instruction set (:func:`baseline_opencv`). NumPy's own element-wise loops and reductions give the
same bits on every instruction set (IEEE operations, fixed summation order).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import cv2
import numpy as np


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.tensordot(a, b, axes=1)`` (``a @ b`` for matrices and vectors) without BLAS: element-wise
    products summed over ``a``'s last and ``b``'s first axis by NumPy's fixed-order reduction."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.sum(a.reshape(a.shape + (1,) * (b.ndim - 1)) * b, axis=a.ndim - 1)


def symmetric_eig_2x2(m: np.ndarray) -> tuple[np.ndarray, float]:
    """Eigenvalues (ascending) of a symmetric 2×2 matrix and the angle (degrees, in (−90, 90]) of the
    eigenvector of the larger one, in closed form (LAPACK's ``eigh`` goes through BLAS kernels)."""
    a, b, c = float(m[0, 0]), float(m[0, 1]), float(m[1, 1])
    mean, half = (a + c) / 2, np.hypot((a - c) / 2, b)
    return np.array([mean - half, mean + half]), float(np.degrees(0.5 * np.arctan2(2 * b, a - c)))


def configure_worker(threads: int = 1) -> None:
    """Pool-worker initialiser: one OpenCV thread (the workers already fill the cores), baseline kernels."""
    cv2.setNumThreads(threads)
    cv2.setUseOptimized(False)


@contextmanager
def baseline_opencv(threads: int = 1) -> Iterator[None]:
    """OpenCV without CPU dispatch and IPP (``setUseOptimized(False)``: its baseline SIMD code only) and
    with ``threads`` threads, restored on exit."""
    optimized, previous = cv2.useOptimized(), cv2.getNumThreads()
    configure_worker(threads)
    try:
        yield
    finally:
        cv2.setUseOptimized(optimized)
        cv2.setNumThreads(previous)
