"""IR drop along the word and bit lines of a crossbar: an exact nodal solve (the reference) and a fast model.

Geometry (both functions): an array of ``rows x cols`` cells, cell (i, j) a conductance G[i, j] between row line i
and column line j. Each line has a wire resistance ``r_wire_ohm`` per cell segment. Row i is driven at its
column-0 end by v_in[i] through one segment (driver -> cell (i, 0)), then one segment between neighbouring cells;
its far end (past column cols-1) is open. Column j is held at virtual ground (the TIA/ADC) at its row-0 end,
through one segment (sense -> cell (0, j)); its far end (past row rows-1) is open. The cell farthest from both
ends is (rows-1, cols-1): cols row segments from its driver and rows column segments from its sense node. Both
far ends are open, so zero-conductance cells appended past the last row or column (the crossbar's padding of a
short array to the stack's height) change nothing.

The circuit is linear, so the column currents are exactly I = M^T v for an input-independent matrix M [rows,
cols] (the effective conductances): the fast model estimates M once per programmed chip state, and the crossbar
uses it in place of G, so IR drop costs nothing per inference.

Fast model (``effective_conductance``). Write the cell currents as I = D(v 1^T) - r D A I, with D = diag(G) and A
the wire kernels: A_row[(i,j),(i,j')] = min(j, j') + 1 (shared row segments between the driver and the two cells)
and A_col[(i,j),(i',j)] = min(i, i') + 1 (shared column segments between the sense end and the two cells). To
first order in r, the column current is sum_i v_i G[i,j] (1 - r (A_row G)[i,j] - r (A_col G)[i,j]): exact in the
inputs, because A_col is symmetric, so the drop that row i' causes at cell (i, j) and the drop that row i causes
at cell (i', j) enter column j's current alike. ``sweeps=0`` uses this first-order attenuation ``a = 1 - r A G``
resummed as ``a = 1 / (1 + r A G)`` (the same to first order, exact for one cell, never negative). With ``sweeps >
0`` the attenuation is refined by fixed-point sweeps a <- 1 / (1 + r A (G a) / a) on an all-rows-driven reference
read, which captures part of the second order (the rest depends on the input pattern; see the README section and
tests/test_irdrop.py for the measured error against ``nodal_solve``).

Both A products cost O(rows * cols) per chip (two cumulative sums per line direction), batched over chips in
torch; the nodal solve (scipy) is the reference for small arrays in the tests.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch


def nodal_solve(G_S: np.ndarray, v_in_V: np.ndarray, r_wire_ohm: float) -> np.ndarray:
    """Exact column currents (amperes) of one crossbar with line resistance, by a sparse nodal (KCL) solve.

    ``G_S`` [rows, cols] cell conductances in siemens; ``v_in_V`` [rows] or [N, rows] row drive voltages (volts);
    ``r_wire_ohm`` the wire resistance per cell segment on every row and column line (geometry: module docstring).
    Returns [cols] or [N, cols]: the current flowing into each column's virtual ground. r_wire_ohm = 0 returns the
    ideal v G exactly. Unknowns: the row-line and column-line node voltage at every cell (2 rows cols)."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import splu

    G = np.asarray(G_S, dtype=np.float64)
    v = np.asarray(v_in_V, dtype=np.float64)
    single = v.ndim == 1
    V = v[None, :] if single else v
    R, C = G.shape
    if V.shape[-1] != R:
        raise ValueError(f"v_in_V has {V.shape[-1]} rows, G_S has {R}")
    if r_wire_ohm < 0:
        raise ValueError(f"r_wire_ohm must be >= 0 (got {r_wire_ohm})")
    if r_wire_ohm == 0:
        out = V @ G
        return out[0] if single else out
    gw = 1.0 / r_wire_ohm
    n = R * C
    row_node = np.arange(n).reshape(R, C)          # row-line node at cell (i, j)
    col_node = n + np.arange(n).reshape(R, C)      # column-line node at cell (i, j)
    a_list, b_list, g_list = [], [], []

    def link(a: np.ndarray, b: np.ndarray, g: np.ndarray) -> None:
        a_list.append(a.ravel()), b_list.append(b.ravel()), g_list.append(np.broadcast_to(g, a.shape).ravel())

    link(row_node, col_node, G)                                   # the cells
    link(row_node[:, :-1], row_node[:, 1:], np.full((R, C - 1), gw))   # row segments between cells
    link(col_node[:-1, :], col_node[1:, :], np.full((R - 1, C), gw))   # column segments between cells
    a, b, g = np.concatenate(a_list), np.concatenate(b_list), np.concatenate(g_list)
    diag = np.bincount(a, g, 2 * n) + np.bincount(b, g, 2 * n)
    diag[row_node[:, 0]] += gw      # driver segment of each row (its source is on the right-hand side)
    diag[col_node[0, :]] += gw      # sense segment of each column to virtual ground
    Y = sp.coo_matrix((np.concatenate([-g, -g, diag]),
                       (np.concatenate([a, b, np.arange(2 * n)]), np.concatenate([b, a, np.arange(2 * n)]))),
                      shape=(2 * n, 2 * n)).tocsc()
    rhs = np.zeros((2 * n, V.shape[0]))
    rhs[row_node[:, 0], :] = gw * V.T
    nodes = splu(Y).solve(rhs)                                    # one factorization, every input vector
    out = (gw * nodes[col_node[0, :], :]).T                       # current into each virtual ground
    return out[0] if single else out


def _row_kernel(I: torch.Tensor) -> torch.Tensor:
    """(A_row I)[i, j] = sum_j' (min(j, j') + 1) I[i, j']: the summed current through the row segments between
    the driver and cell (i, j) (the segment before column k carries every cell current at k and beyond)."""
    c = I.cumsum(-1)
    seg = c[..., -1:] - c + I              # current in the segment feeding column k (a reverse cumsum, no flips)
    return seg.cumsum(-1)


def _col_kernel(I: torch.Tensor) -> torch.Tensor:
    """(A_col I)[i, j] = sum_i' (min(i, i') + 1) I[i', j]: the summed current through the column segments
    between the sense end and cell (i, j) (the segment above row s carries every cell current at s and beyond)."""
    c = I.cumsum(-2)
    seg = c[..., -1:, :] - c + I           # current in the segment feeding row s from the sense side
    return seg.cumsum(-2)


def effective_conductance(g_norm: torch.Tensor, g_range_uS: float, r_wire_ohm: float, sweeps: int = 5) -> torch.Tensor:
    """IR-drop-attenuated conductances G_eff = G * a of physical arrays, in the units of ``g_norm``.

    ``g_norm`` [..., rows, cols]: one physical array per leading index (e.g. [Kc, rows, cols] chips), conductances
    divided by ``g_range_uS`` (the crossbar's normalized units; absolute conductances, g_min included, because
    every cell carries current). ``r_wire_ohm`` per cell segment; ``sweeps`` fixed-point refinements of the
    first-order attenuation (module docstring). Input-independent: apply once per programmed chip state and use
    G_eff in place of G for every inference. r_wire_ohm = 0 returns ``g_norm`` itself (bit for bit the same)."""
    if r_wire_ohm < 0:
        raise ValueError(f"r_wire_ohm must be >= 0 (got {r_wire_ohm})")
    if r_wire_ohm == 0:
        return g_norm
    # r * G is dimensionless: ohm * (uS * 1e-6) per normalized unit.
    k = r_wire_ohm * g_range_uS * 1e-6
    # float32 suffices (the sums have at most a few thousand terms; the model's error is ~1e-3); float64 stays.
    g = g_norm if g_norm.dtype in (torch.float32, torch.float64) else g_norm.float()
    drop = k * (_row_kernel(g) + _col_kernel(g))   # first-order relative voltage loss at each cell
    a = 1.0 / (1.0 + drop)
    for _ in range(sweeps):
        # The reference read (every row at one volt) has a = 1 - r A (G a): the same fixed point written as a
        # ratio, which stays in (0, 1] and converges where the plain (Jacobi) update diverges (drops past ~60 %).
        ga = g * a
        a = 1.0 / (1.0 + k * (_row_kernel(ga) + _col_kernel(ga)) / a)
    return (g * a).to(g_norm.dtype)


def effective_conductance_tiled(g_norm: torch.Tensor, g_range_uS: float, r_wire_ohm: float,
                                col_splits: Optional[Sequence[tuple[int, int]]] = None,
                                sweeps: int = 5) -> torch.Tensor:
    """``effective_conductance`` of a row array [Kc, rows, out] whose columns are split over physical arrays
    (``col_splits``: (c0, c1) column ranges, one per array, as ``TilePlan.col_splits``; None: one array)."""
    if r_wire_ohm == 0:
        return g_norm
    if not col_splits or len(col_splits) == 1:
        return effective_conductance(g_norm, g_range_uS, r_wire_ohm, sweeps)
    return torch.cat([effective_conductance(g_norm[..., c0:c1], g_range_uS, r_wire_ohm, sweeps)
                      for c0, c1 in col_splits], dim=-1)


def effective_conductance_pair(gp_norm: torch.Tensor, gm_norm: torch.Tensor, g_range_uS: float, r_wire_ohm: float,
                               col_splits: Optional[Sequence[tuple[int, int]]] = None,
                               sweeps: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """IR drop of a differential pair stored on one physical array with g+ and g- of output c on the adjacent
    columns 2c and 2c + 1 (so one array of ``col_splits`` range (c0, c1) holds 2 (c1 - c0) physical columns).
    ``gp_norm``, ``gm_norm`` [Kc, rows, out]; returns their attenuated copies."""
    if r_wire_ohm == 0:
        return gp_norm, gm_norm
    both = torch.stack([gp_norm, gm_norm], dim=-1).flatten(-2)        # [..., rows, 2 out], interleaved
    splits = None if not col_splits else [(2 * c0, 2 * c1) for c0, c1 in col_splits]
    eff = effective_conductance_tiled(both, g_range_uS, r_wire_ohm, splits, sweeps).unflatten(-1, (-1, 2))
    return eff[..., 0], eff[..., 1]
