"""IR drop: the nodal solve against hand-solved circuits, and the fast model against the nodal solve.

Agreement metric: the largest relative error of any column current, max_j |I_model - I_nodal| / |I_nodal|, over
16 input vectors uniform in [0, 1] (every column current positive) on arrays of cells uniform in [10, 100] uS
(g_min 10, g_max 100: the range of the packaged RRAM/PCM profiles and beyond), wire resistance 1-5 ohm per cell.
For signed inputs uniform in [-1, 1] the error is divided by the column's scale sum_i |v_i| G_ij instead (a signed
column current can be near zero).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aimcbench.sim.config import ConfigError, _build
from aimcbench.sim.config_circuit import ArrayConfig
from aimcbench.sim.irdrop import (effective_conductance, effective_conductance_pair, effective_conductance_tiled,
                                  nodal_solve)

G_MIN_US, G_MAX_US = 10.0, 100.0
G_RANGE_US = G_MAX_US - G_MIN_US


def _array(rows: int, cols: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(G_MIN_US, G_MAX_US, (rows, cols))   # uS


def _model_currents(G_uS: np.ndarray, V: np.ndarray, r: float, sweeps: int = 5) -> np.ndarray:
    g = torch.tensor(G_uS / G_RANGE_US, dtype=torch.float64)
    g_eff = effective_conductance(g, G_RANGE_US, r, sweeps).numpy() * G_RANGE_US * 1e-6
    return V @ g_eff


def test_nodal_solve_one_cell_and_one_row_of_two_by_hand():
    r, g = 3.0, 80e-6
    # One cell: driver segment, the cell, sense segment in series.
    assert nodal_solve(np.array([[g]]), np.array([0.2]), r)[0] == pytest.approx(0.2 / (r + 1 / g + r), rel=1e-12)
    # One row, two cells: node A after the driver segment feeds cell 1 (then its sense segment) and, through one
    # more row segment, cell 2 (then its sense segment).
    g1, g2, v = 50e-6, 90e-6, 0.3
    ya, yb = 1 / (1 / g1 + r), 1 / (2 * r + 1 / g2)
    va = v / (1 + r * (ya + yb))
    assert nodal_solve(np.array([[g1, g2]]), np.array([v]), r) == pytest.approx([va * ya, va * yb], rel=1e-12)


def test_nodal_solve_zero_wire_is_ideal_and_it_is_linear_in_the_inputs():
    G = _array(8, 6, 0) * 1e-6
    V = np.random.default_rng(1).uniform(-1, 1, (3, 8))
    assert np.array_equal(nodal_solve(G, V, 0.0), V @ G)
    I = nodal_solve(G, V, 2.0)
    assert np.allclose(nodal_solve(G, V[0] + 2 * V[1], 2.0), I[0] + 2 * I[1], rtol=1e-10, atol=0)
    assert np.all(np.abs(I) < np.abs(V) @ G)   # the wires only lose voltage


def test_zero_wire_resistance_gives_g_bit_for_bit():
    g = torch.rand(3, 16, 12)
    assert effective_conductance(g, G_RANGE_US, 0.0) is g
    assert effective_conductance_tiled(g, G_RANGE_US, 0.0, [(0, 6), (6, 12)]) is g
    gp, gm = effective_conductance_pair(g, g * 0.5, G_RANGE_US, 0.0)
    assert gp is g and torch.equal(gm, g * 0.5)


# (rows = cols, r_wire_ohm, bound on the max relative column-current error, sweeps). The model is within 1 % while
# the worst cell loses under ~45 % of its voltage (64 x 64 at 3 ohm: 40 %); past that it degrades gradually
# (64 x 64 at 5 ohm, 53 % drop: 1.4 %). First order alone (sweeps 0) is within 1 % up to ~30 % drop.
CASES = [(16, 1.0, 0.01, 5), (16, 5.0, 0.01, 5), (32, 1.0, 0.01, 5), (32, 5.0, 0.01, 5), (64, 1.0, 0.01, 5),
         (64, 2.0, 0.01, 5), (64, 3.0, 0.01, 5), (64, 5.0, 0.02, 5), (32, 5.0, 0.01, 0), (64, 1.0, 0.01, 0)]


@pytest.mark.parametrize("n,r,bound,sweeps", CASES)
def test_fast_model_agrees_with_the_nodal_solve(n, r, bound, sweeps):
    G = _array(n, n, seed=n + int(10 * r))
    rng = np.random.default_rng(7)
    V = rng.uniform(0, 1, (16, n))
    exact = nodal_solve(G * 1e-6, V, r)
    err = np.max(np.abs(_model_currents(G, V, r, sweeps) - exact) / np.abs(exact))
    assert err < bound, f"{n}x{n}, {r} ohm: {100 * err:.2f} %"
    # The effect is real, not lost in the tolerance: the wires take more than the error.
    assert np.max(1 - exact / (V @ (G * 1e-6))) > 2 * err
    Vs = rng.uniform(-1, 1, (16, n))
    exact_s = nodal_solve(G * 1e-6, Vs, r)
    err_s = np.max(np.abs(_model_currents(G, Vs, r, sweeps) - exact_s) / (np.abs(Vs) @ (G * 1e-6)))
    assert err_s < bound


def test_non_square_arrays_agree_too():
    for rows, cols in ((64, 16), (16, 64)):
        G, V = _array(rows, cols, 3), np.random.default_rng(4).uniform(0, 1, (8, rows))
        exact = nodal_solve(G * 1e-6, V, 2.0)
        assert np.max(np.abs(_model_currents(G, V, 2.0) - exact) / exact) < 0.01


def _attenuation_nodal(G_uS: np.ndarray, r: float) -> np.ndarray:
    """Exact per-cell attenuation M / G: column currents with one row driven at a time (I = M^T v)."""
    M = nodal_solve(G_uS * 1e-6, np.eye(G_uS.shape[0]), r)   # [rows (driven), cols]
    return M / (G_uS * 1e-6)


def test_attenuation_grows_with_r_wire_and_with_distance_from_driver_and_sense_end():
    G = np.full((12, 10), 60.0)
    g = torch.tensor(G / G_RANGE_US, dtype=torch.float64)
    prev = torch.ones_like(g)
    for r in (0.5, 1.0, 2.0, 5.0):
        a = effective_conductance(g, G_RANGE_US, r) / g
        assert bool((a < prev).all())                       # more wire resistance: every cell loses more
        # Rows are driven at column 0 and columns sensed at row 0: the far corner (rows-1, cols-1) loses most.
        assert bool((a[:, 1:] < a[:, :-1]).all()) and bool((a[1:, :] < a[:-1, :]).all())
        assert float(a.min()) == float(a[-1, -1]) and float(a.max()) == float(a[0, 0])
        exact = _attenuation_nodal(G, r)
        assert np.all(np.diff(exact, axis=1) < 0) and np.all(np.diff(exact, axis=0) < 0)   # the circuit agrees
        assert np.max(np.abs(a.numpy() - exact)) < 0.01
        prev = a


def test_batched_over_chips_tiled_and_paired():
    torch.manual_seed(0)
    g = torch.rand(4, 24, 10) + G_MIN_US / G_RANGE_US                 # [Kc, rows, out], float32
    each = torch.stack([effective_conductance(g[k], G_RANGE_US, 3.0) for k in range(4)])
    batched = effective_conductance(g, G_RANGE_US, 3.0)
    assert batched.dtype == torch.float32 and torch.equal(batched, each)   # chip k does not see the others
    tiled = effective_conductance_tiled(g, G_RANGE_US, 3.0, [(0, 4), (4, 10)])
    assert torch.equal(tiled[..., :4], effective_conductance(g[..., :4], G_RANGE_US, 3.0))
    assert torch.equal(tiled[..., 4:], effective_conductance(g[..., 4:], G_RANGE_US, 3.0))
    gm = torch.rand(4, 24, 10)
    ep, em = effective_conductance_pair(g, gm, G_RANGE_US, 3.0)
    phys = torch.empty(4, 24, 20)
    phys[..., 0::2], phys[..., 1::2] = g, gm
    ref = effective_conductance(phys, G_RANGE_US, 3.0)
    assert torch.equal(ep, ref[..., 0::2]) and torch.equal(em, ref[..., 1::2])


def test_array_config_validation():
    assert _build(ArrayConfig, {}, "hardware.array").r_wire_ohm == 0.0
    assert _build(ArrayConfig, {"r_wire_ohm": 2.5}, "hardware.array").r_wire_ohm == 2.5
    with pytest.raises(ConfigError, match=r"^hardware\.array\.r_wire_ohm: must be a number in \[0\.0, inf\]"):
        _build(ArrayConfig, {"r_wire_ohm": -1.0}, "hardware.array")
    with pytest.raises(ConfigError, match=r"^hardware\.array\.irdrop_sweeps:"):
        _build(ArrayConfig, {"irdrop_sweeps": 1.5}, "hardware.array")


def test_zero_cells_past_the_far_ends_change_nothing():
    """The crossbar pads a short row array with zero rows to the stack's height (and the open line ends are past
    the last row and column), so padding must leave the real cells' effective conductances as they are."""
    G = _array(10, 7, 5)
    padded = np.zeros((16, 9))
    padded[:10, :7] = G
    V = np.random.default_rng(6).uniform(0, 1, (4, 16))
    assert np.allclose(nodal_solve(padded * 1e-6, V, 3.0)[:, :7], nodal_solve(G * 1e-6, V[:, :10], 3.0), rtol=1e-9)
    g = torch.tensor(G / G_RANGE_US)
    gp = torch.tensor(padded / G_RANGE_US)
    for sweeps in (0, 5):
        eff, eff_p = effective_conductance(g, G_RANGE_US, 3.0, sweeps), effective_conductance(gp, G_RANGE_US, 3.0, sweeps)
        assert torch.allclose(eff_p[:10, :7], eff, rtol=1e-12, atol=0) and float(eff_p[10:].abs().max()) == 0.0
