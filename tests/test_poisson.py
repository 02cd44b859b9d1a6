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


def test_tpot_tail_normal_without_skew_exponential_at_skew_two():
    from llmplan.perf.poisson import _skewed_tail

    mean, sd = np.array([0.05]), np.array([0.01])
    # no skew: the normal tail, 5 % beyond 1.645 σ
    assert _skewed_tail(mean, sd, np.array([0.0]))(mean + 1.6449 * sd)[0] == pytest.approx(0.05, abs=1e-4)
    # skew 2: a shifted exponential (mean − σ + Exp(σ)), P(X > mean + kσ) = e^−(1+k)
    for k in (0.0, 1.0, 3.0):
        got = _skewed_tail(mean, sd, np.array([2.0]))(mean + k * sd)[0]
        assert got == pytest.approx(np.exp(-(1 + k)), rel=0.08)
    # below the shift nothing lies
    assert _skewed_tail(mean, sd, np.array([2.0]))(mean - 1.5 * sd)[0] == pytest.approx(1.0)


def test_a_heavier_prefill_tail_widens_the_tpot_tail():
    from llmplan.perf.poisson import _tpot_spread

    lam, steps = np.array([[2.0]]), np.full((1, QUAD), 300.0)
    d = steps * 0.05
    args = dict(rho_a=np.array([[0.3]]), slope=np.array([[1e-4]]), stable=np.array([[True]]))
    sd1, sk1 = _tpot_spread(lam, d, steps, np.array([[0.02]]), np.array([[0.01]]), **args)
    sd2, sk2 = _tpot_spread(lam, d, steps, np.array([[0.04]]), np.array([[0.05]]), **args)
    assert (sd2 > sd1).all() and (sk2 > sk1).all() and (sk1 > 0).all()


def test_window_variance_scales_as_rate_times_step_time():
    """The shortcut the TPOT spread takes: residences and windows all τ × their steps give λ τ × the unit sum."""
    rng = np.random.default_rng(3)
    steps = rng.uniform(5, 900, size=(1, QUAD))
    lam, tau = np.array([[0.7], [3.0]]), np.array([[0.02], [0.09]])
    full = _window_variance(lam, tau * steps, tau * steps)
    assert np.allclose(full, lam * tau * _window_variance(np.ones((1, 1)), steps, steps), rtol=1e-12)
