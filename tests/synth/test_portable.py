"""synth/portable.py against NumPy/LAPACK: the same values (to float rounding) as the BLAS calls it replaces."""
import numpy as np
import pytest

from affectlab.synth.portable import dot, symmetric_eig_2x2


@pytest.mark.parametrize("a_shape,b_shape", [((70, 3), (3, 3)), ((3, 3), (3, 3)), ((3,), (3, 3)), ((17,), (17, 70, 3)),
                                             ((40, 9), (9,))])
def test_dot_is_tensordot(a_shape, b_shape):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    np.testing.assert_allclose(dot(a, b), np.tensordot(a, b, axes=1), rtol=1e-12, atol=1e-12)


def test_symmetric_eig_2x2_is_eigh():
    rng = np.random.default_rng(1)
    for _ in range(50):
        x = rng.standard_normal((2, 2))
        m = x @ x.T
        values, angle = symmetric_eig_2x2(m)
        ref_values, ref_vectors = np.linalg.eigh(m)
        np.testing.assert_allclose(values, ref_values, rtol=1e-10, atol=1e-12)
        major = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
        assert abs(abs(major @ ref_vectors[:, 1]) - 1) < 1e-9   # the same axis, up to sign
        assert -90 < angle <= 90
