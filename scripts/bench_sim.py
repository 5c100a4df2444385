"""Simulator speed: seconds per chip against one digital forward and against a one-chip-at-a-time loop.

    python scripts/bench_sim.py                 # MLP 784-256-128-10 on 10,000 inputs, small CNN; pcm; 100 chips
    python scripts/bench_sim.py --chips 40 --profile rram --models cnn --device cuda
    python scripts/bench_sim.py --models wrn16_8 --profile rram_l3 --chips 8 --batch 32   # study 002's WRN

Prints one row per model: digital forward seconds, batched seconds per chip, ratio to digital (aihwkit: 6-11 on a
2-core CPU), one-chip-at-a-time seconds per chip, the speed-up of batching, and images per second: digital, and
per chip (a chip's share of the batched pass); the ATen operators one forward of programmed chips dispatches with
2 and with 8 chips (each at least one kernel launch on a GPU: flat in the chips is issue 15's goal) and the peak
memory (GPU allocator, else the process's peak RSS).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from aimcbench.sim import load_hardware, to_analog


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 4 * 4, 128), nn.ReLU(), nn.Linear(128, 10))


def wrn16_8() -> nn.Module:
    from aimcbench.models import build_model

    return build_model("wrn16_8", num_classes=10)


MODELS = {"mlp": (mlp, (1, 28, 28), 10000), "cnn": (small_cnn, (3, 32, 32), 1000), "wrn16_8": (wrn16_8, (3, 32, 32), 64)}


def _inputs(shape: tuple, batch: int) -> torch.Tensor:
    """Realistic inputs: MNIST digits (full set, or the embedded sample repeated) for the MLP, CIFAR-shaped
    synthetic images for the CNNs. Dense U(0,1) inputs would make most outputs of a 512-row array clip."""
    from aimcbench.data import load_split

    if shape == (1, 28, 28):
        x = load_split("mnist", "train")[0]
        return x.repeat((batch + len(x) - 1) // len(x), 1, 1, 1)[:batch]
    return load_split("synthetic_cifar", "test", limit=batch)[0]


def _time(fn, repeat: int, sync) -> float:
    """Best of ``repeat`` wall times (after one warm-up call)."""
    fn()
    sync()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def dispatched_ops(fn) -> int:
    """The number of ATen operators one call of ``fn`` dispatches (each is one kernel launch on a GPU, or more):
    the figure issue 15 wants flat in the number of chips and of row arrays."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += 1
            return func(*args, **(kwargs or {}))

    with Count():
        fn()
    return Count.n


def peak_memory_mb(device: str) -> float:
    """Peak GPU memory allocated (CUDA), else the process's peak resident set size, in MB."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(name: str, profile: str, overrides: list[str], chips: int, loop_chips: int, batch: int | None,
          device: str, repeat: int) -> dict:
    build, shape, default_batch = MODELS[name]
    batch = batch or default_batch
    torch.manual_seed(0)
    model = build().eval().to(device)
    x = _inputs(shape, batch).to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    hw = load_hardware(profile, overrides)
    with torch.no_grad():
        t_digital = _time(lambda: model(x), repeat, sync)
        am = to_analog(model, hw, chips=chips, seed=0, device=device)
        t_batched = _time(lambda: am(x), repeat, sync) / chips
        singles = [to_analog(model, hw, chips=[k], seed=0, device=device) for k in range(loop_chips)]
        t_loop = _time(lambda: [s(x) for s in singles], max(1, repeat // 2), sync) / loop_chips
        x1 = x[: min(8, x.shape[0])]
        ops = {}
        for k in (2, 8):  # a second forward of programmed chips: what every later read costs
            am_k = to_analog(model, hw, chips=k, seed=0, device=device)
            am_k(x1)
            ops[k] = dispatched_ops(lambda: am_k(x1))
    return dict(model=name, batch=batch, digital_s=t_digital, per_chip_s=t_batched, ratio=t_batched / t_digital,
                loop_per_chip_s=t_loop, speedup=t_loop / t_batched, ops2=ops[2], ops8=ops[8],
                peak_mb=peak_memory_mb(device))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mlp,cnn", help=f"comma list from {', '.join(MODELS)}")
    p.add_argument("--profile", default="pcm")
    p.add_argument("--set", nargs="*", default=[], help="hardware overrides, e.g. adc.bits=6")
    p.add_argument("--chips", type=int, default=100)
    p.add_argument("--loop-chips", type=int, default=5, help="chips timed one at a time")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    print(f"device={a.device} threads={torch.get_num_threads()} profile={a.profile} {' '.join(a.set)} chips={a.chips}")
    print(f"{'model':8s} {'batch':>6s} {'digital s':>10s} {'s/chip':>10s} {'x digital':>10s} "
          f"{'loop s/chip':>12s} {'batching speed-up':>18s} {'digital img/s':>14s} {'img/s/chip':>11s} "
          f"{'ops/fwd 2 chips':>15s} {'ops/fwd 8 chips':>15s} {'peak MB':>8s}")
    for name in a.models.split(","):
        r = bench(name, a.profile, a.set, a.chips, a.loop_chips, a.batch, a.device, a.repeat)
        print(f"{r['model']:8s} {r['batch']:6d} {r['digital_s']:10.4f} {r['per_chip_s']:10.4f} {r['ratio']:10.2f} "
              f"{r['loop_per_chip_s']:12.4f} {r['speedup']:18.2f} {r['batch'] / r['digital_s']:14.1f} "
              f"{r['batch'] / r['per_chip_s']:11.1f} {r['ops2']:15d} {r['ops8']:15d} {r['peak_mb']:8.0f}")


if __name__ == "__main__":
    main()
