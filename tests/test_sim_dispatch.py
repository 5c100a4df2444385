"""Issue 15: the operations one forward of programmed chips dispatches (each at least one kernel launch on a GPU)
do not grow with the number of chips, nor with the number of row arrays of a layer.

Counted with a TorchDispatchMode (every ATen operator call), on the second forward of a model whose chips are
programmed (what every later batch costs)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from aimcbench.sim import load_hardware, to_analog


class _Count(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.n += 1
        return func(*args, **(kwargs or {}))


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(16 * 8 * 8, 40), nn.ReLU(), nn.Linear(40, 10)).eval()


def dispatched(profile: str, chips: int, overrides=(), x=None) -> int:
    hw = load_hardware(profile, list(overrides))
    x = torch.rand(6, 3, 8, 8) * 0.1 if x is None else x   # small inputs: no output clips (see the iterative test)
    with torch.no_grad():
        am = to_analog(_net(), hw, chips=chips, seed=0)
        am(x)
        count = _Count()
        with count:
            am(x)
    return count.n


PROFILES = [("pcm", ()), ("rram", ()), ("rram_l3", ()), ("crossbar", ()), ("weight_noise", ()),
            ("weight_noise", ("weight_noise.kind=mul",)), ("stuck_at", ()), ("ideal", ())]


@pytest.mark.parametrize("profile, overrides", PROFILES)
def test_dispatch_count_is_flat_in_chips(profile, overrides):
    assert dispatched(profile, 2, overrides) == dispatched(profile, 8, overrides)


@pytest.mark.parametrize("profile", ["pcm", "rram"])
def test_dispatch_count_is_flat_in_row_arrays(profile):
    # A 1024-input layer on 2, 4, 8 or 16 full row arrays: the same operations; on arrays whose last one is
    # partial (3 x 300 + 124, 10 x 100 + 24), a constant more, the same for both: the partial array's own product
    # and the writing of both products into one output (about 25 operations per read; rram reads W+ and W-).
    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(1024, 40), nn.ReLU(), nn.Linear(40, 10)).eval()

    def count(rows):
        # Bound management off: how often outputs clip depends on the array height (see the iterative test).
        hw = load_hardware(profile, [f"mapping.tile_rows={rows}", "mapping.tile_cols=512", "adc.bound_management=none"])
        x = torch.rand(6, 1024) * 0.05
        with torch.no_grad():
            am = to_analog(net(), hw, chips=2, seed=0)
            am(x)
            c = _Count()
            with c:
                am(x)
        return c.n

    full = [count(r) for r in (64, 128, 256, 512)]
    assert len(set(full)) == 1, full
    partial = [count(r) for r in (100, 300)]
    assert partial[0] == partial[1] and 0 < partial[0] - full[0] <= 60, (full, partial)


def test_iterative_bound_management_adds_a_bounded_number_of_operations():
    # Large inputs make outputs clip: re-reads of the clipped vectors of all chips and arrays at once, at most
    # ten halvings per array read, whatever the number of chips.
    x = torch.rand(6, 3, 8, 8) * 20
    base = dispatched("pcm", 2, ("adc.bound_management=none",), x)
    for chips in (2, 8):
        n = dispatched("pcm", chips, (), x)
        assert base < n <= base + 4 * 10 * 40, (chips, base, n)
