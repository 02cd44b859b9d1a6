"""perf/poisson.py: the variance terms of a request's TPOT against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from llmplan.perf.poisson import QUAD, WEIGHTS, _window_variance


@pytest.mark.parametrize(("window_over_s", "expected_over_lam_s"), [
    (1e-6, 1.0),  # an instant: the M/G/∞ count is Poisson, variance λ E[S] = E[C]
    (1.0, 2 / 3),  # D = S: (2 / S²) ∫₀ˢ (S − h)(S − h) dh = 2 S / 3
    (2.0, 5 / 12),  # D = 2S: (2 / 4S²) (2S³ − 3S³ / 2 + S³ / 3) = 5 S / 12
    (1e4, 1e-4),  # a long window: λ E[S²] / D (less λ E[S³] / 3D²)
])
def test_window_variance_of_the_decoding_concurrency(window_over_s, expected_over_lam_s):
    lam, s = 3.0, 20.0  # requests/s, every answer decoding for 20 s
    residence = np.full((1, QUAD), s)
    window = np.full((1, QUAD), window_over_s * s)
    v = _window_variance(np.array([[lam]]), residence, window)
    assert v.shape == (1, QUAD)
    assert v[0, 0] == pytest.approx(expected_over_lam_s * lam * s, rel=1e-4)


def test_window_variance_falls_as_the_window_grows():
    rng = np.random.default_rng(7)
    residence = rng.uniform(1, 60, size=(1, QUAD))
    windows = np.geomspace(0.1, 1e3, 30)
    v = [float(_window_variance(np.array([[2.0]]), residence, np.full((1, QUAD), d))[0, 0]) for d in windows]
    assert all(a >= b for a, b in zip(v, v[1:], strict=False))
    assert v[0] <= 2.0 * float(residence[0] @ WEIGHTS) * (1 + 1e-9)  # at most λ E[S], the instantaneous variance
