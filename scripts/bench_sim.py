"""Simulator speed: analog chips against the digital forward and against a one-chip-at-a-time loop (issue 15).

    python scripts/bench_sim.py                 # MLP 784-256-128-10 on 10,000 inputs, small CNN; pcm; 100 chips
    python scripts/bench_sim.py --chips 40 --profile rram --models cnn --device cuda
    python scripts/bench_sim.py --models wrn16_8 --profile rram_l3 --chips 8 --batch 32   # study 002's WRN
    python scripts/bench_sim.py --models wrn16_8 --profile rram_l3 --chips 40 --images 10000 --device cuda
    python scripts/bench_sim.py --models resnet50 --chips 100 --images 50000 --max-seconds 60 --device cuda

Each model's ``--images`` images per chip run in batches of ``--batch`` (defaults per model and device: WRN-16-8
500 on a GPU, 64 on a CPU). Prints one row per model: digital images/s; analog chip-images/s; the ratio per chip
(analog seconds per chip / digital seconds, the digital forward at torch's default precision: on a GPU cuDNN
convolutions in TF32, matmuls in FP32); one-chip-at-a-time seconds per chip and the speed-up of batching; the ATen
operators one forward of programmed chips dispatches with 2 and with 8 chips (each at least one kernel launch on a
GPU: flat in the chips is issue 15's goal); the chips per chunk and the peak memory (GPU allocator; on a CPU the
process's resident peak since the model started). ``--max-seconds`` stops a pass early and extrapolates its time
to all images (rows marked ``*``: a rate, not a full run). ``--precision`` (CUDA): ``default`` leaves torch's
defaults, ``fp32`` is strict FP32 everywhere, ``tf32`` allows TF32 in matmuls and convolutions (digital and analog).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from aimcbench.sim import ConfigError, load_hardware, to_analog
from aimcbench.sim.allocator import retain_freed_memory
from aimcbench.sim.compiled import set_compiled
from aimcbench.sim.precision import PRECISIONS, set_precision



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


def resnet50() -> nn.Module:
    """torchvision's ResNet-50, untrained (weights=None): the scale figure measures speed, not accuracy."""
    from torchvision.models import resnet50 as tv_resnet50

    return tv_resnet50(weights=None)


# name -> (builder, input shape, default batch on a CPU, on a GPU, default images per chip)
MODELS = {"mlp": (mlp, (1, 28, 28), 10000, 10000, 10000),
          "cnn": (small_cnn, (3, 32, 32), 1000, 1000, 1000),
          "wrn16_8": (wrn16_8, (3, 32, 32), 64, 500, None),
          "resnet50": (resnet50, (3, 224, 224), 4, 100, None)}


def inputs(shape: tuple, batch: int) -> torch.Tensor:
    """Realistic inputs: MNIST digits (full set, or the embedded sample repeated) for the MLP, CIFAR-shaped
    synthetic images for the CIFAR CNNs, ImageNet-normalized uniform noise for 224x224 models. Dense U(0,1)
    inputs would make most outputs of a 512-row array clip."""
    from aimcbench.data import load_split

    if shape == (1, 28, 28):
        x = load_split("mnist", "train")[0]
        return x.repeat((batch + len(x) - 1) // len(x), 1, 1, 1)[:batch]
    if shape == (3, 32, 32):
        return load_split("synthetic_cifar", "test", limit=batch)[0]
    g = torch.Generator().manual_seed(0)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    return (torch.rand((batch, *shape), generator=g) - mean.view(3, 1, 1)) / std.view(3, 1, 1)


def run_images(fns: list, x: torch.Tensor, images: int, batch: int, sync: Callable,
               max_seconds: float | None = None) -> tuple[float, float]:
    """Seconds to push ``images`` images (in batches of ``batch``, slices of x) through each of ``fns``, and the
    fraction actually run: with ``max_seconds`` the pass stops once that much time has passed and its time is
    extrapolated linearly to all images."""
    sizes = [batch] * (images // batch) + ([images % batch] if images % batch else [])
    total, done = len(fns) * images, 0
    t0 = time.perf_counter()
    for fn in fns:
        for b in sizes:
            fn(x if b == x.shape[0] else x[:b])
            done += b
            # The host clock runs ahead of a GPU: synchronize only once it says the time is up.
            if max_seconds is not None and done < total and time.perf_counter() - t0 > max_seconds:
                sync()
                elapsed = time.perf_counter() - t0
                if elapsed > max_seconds:
                    return elapsed * total / done, done / total
    sync()
    return time.perf_counter() - t0, 1.0


def best_of(repeat: int, *args) -> tuple[float, float]:
    """The fastest of ``repeat`` (seconds, fraction run) measurements of ``run_images(*args)``."""
    return min((run_images(*args) for _ in range(max(1, repeat))), key=lambda r: r[0])


def dispatched_ops(fn, *args) -> int:
    """The number of ATen operators one call of ``fn`` dispatches (each is one kernel launch on a GPU, or more):
    the figure issue 15 wants flat in the number of chips and of row arrays. ``fn(*args)`` is the call."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += 1
            return func(*args, **(kwargs or {}))

    with Count():
        fn(*args)
    return Count.n


def reset_peak_memory(device: str) -> bool:
    """Start a new peak-memory window; False where only the process's lifetime peak can be read."""
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        return True
    try:  # Linux: writing 5 to clear_refs resets the resident high-water mark (VmHWM)
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_memory_mb(device: str) -> float:
    """Peak GPU memory allocated (CUDA), else the process's resident high-water mark, in MB."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def auto_memory_gb(device: str) -> float | None:
    """Chunk budget: 3/4 of the GPU's free memory on CUDA; None (to_analog's default) elsewhere."""
    if device.startswith("cuda"):
        return 0.75 * torch.cuda.mem_get_info()[0] / 2**30
    return None


def bench(name: str, profile: str = "pcm", overrides: tuple = (), chips: int = 100, loop_chips: int = 5,
          batch: int | None = None, images: int | None = None, device: str = "cpu", repeat: int = 3,
          precision: str = "default", max_seconds: float | None = None, max_memory_gb: float | None = None,
          ops: bool = True) -> dict:
    """One row of the table (see the module docstring); times in seconds for all ``images`` images."""
    build, shape, batch_cpu, batch_gpu, default_images = MODELS[name]
    cuda = device.startswith("cuda")
    batch = batch or (batch_gpu if cuda else batch_cpu)
    images = images or default_images or batch
    batch = min(batch, images)
    if cuda:
        torch.cuda.empty_cache()  # blocks cached by earlier rows would shrink the free memory chunks are sized from
    torch.manual_seed(0)
    model = build().eval().to(device)
    x = inputs(shape, batch).to(device)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    hw = load_hardware(profile, list(overrides))
    mem = max_memory_gb if max_memory_gb is not None else auto_memory_gb(device)
    mem_kw = {} if mem is None else {"max_memory_gb": mem}
    r = {"model": name, "profile": profile, "precision": precision, "device": device, "batch": batch,
         "images": images, "chips": chips}
    with torch.no_grad():
        # The ratio's baseline: the digital forward as torch runs it by default.
        for prec, key in (("default", "digital_default_s"), (precision, "digital_s")):
            if key == "digital_s" and (prec == "default" or not cuda):  # the same settings: measured already
                r[key] = r["digital_default_s"]
                break
            set_precision(prec)
            model(x)
            sync()
            r[key] = best_of(repeat, [model], x, images, batch, sync, max_seconds)[0]
        r["tf32"] = set_precision(precision)
        r["peak_window"] = reset_peak_memory(device)
        am = to_analog(model, hw, chips=chips, seed=0, device=device, **mem_kw)
        t0 = time.perf_counter()
        am(x)  # programs the chips (cached when they fit): timed apart, as every later batch reuses them
        sync()
        r["first_call_s"] = time.perf_counter() - t0
        r["chunk"] = len(am.chunks(batch, x)[0])
        r["analog_s"], r["fraction"] = best_of(repeat, [am], x, images, batch, sync, max_seconds)
        r["peak_mb"] = peak_memory_mb(device)
        del am
        r["loop_per_chip_s"] = float("nan")
        if loop_chips > 0:
            singles = [to_analog(model, hw, chips=[k], seed=0, device=device, **mem_kw) for k in range(loop_chips)]
            for s in singles:
                s(x)
            sync()
            t_loop, frac = best_of(max(1, repeat // 2), singles, x, images, batch, sync, max_seconds)
            r["loop_per_chip_s"] = t_loop / loop_chips
            r["fraction"] = min(r["fraction"], frac)
            del singles
        r["ops2"] = r["ops8"] = -1
        if ops:
            x1 = x[: min(8, x.shape[0])]
            for k in (2, 8):  # a second forward of programmed chips (one chunk): what every later batch costs
                am_k = to_analog(model, hw, chips=k, seed=0, device=device, chip_chunk=k)
                am_k(x1)
                r[f"ops{k}"] = dispatched_ops(am_k, x1)
                del am_k
    r["per_chip_s"] = r["analog_s"] / chips
    r["ratio"] = r["per_chip_s"] / r["digital_default_s"]
    r["speedup"] = r["loop_per_chip_s"] / r["per_chip_s"]
    r["digital_img_s"] = images / r["digital_s"]
    r["chip_img_s"] = chips * images / r["analog_s"]
    r["extrapolated"] = r["fraction"] < 1.0
    return r


HEADER = (f"{'model':8s} {'profile':9s} {'prec':7s} {'batch':>5s} {'images':>6s} {'chips':>5s} {'chunk':>5s} "
          f"{'digital img/s':>13s} {'chip-img/s':>11s} {'analog s':>9s} {'s/chip':>8s} {'x digital':>9s} "
          f"{'loop s/chip':>11s} {'batching':>8s} {'ops 2ch':>7s} {'ops 8ch':>7s} {'peak MB':>8s} {'1st call s':>10s}")


def format_row(r: dict) -> str:
    mark = "*" if r["extrapolated"] else " "
    return (f"{r['model']:8s} {r['profile']:9s} {r['precision']:7s} {r['batch']:5d} {r['images']:6d} {r['chips']:5d} "
            f"{r['chunk']:5d} {r['digital_img_s']:13.1f} {r['chip_img_s']:11.1f} {r['analog_s']:8.2f}{mark} "
            f"{r['per_chip_s']:8.4f} {r['ratio']:9.2f} {r['loop_per_chip_s']:11.4f} {r['speedup']:8.2f} "
            f"{r['ops2']:7d} {r['ops8']:7d} {r['peak_mb']:8.0f} {r['first_call_s']:10.2f}")


def header_lines(device: str, precision: str) -> list[str]:
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"
    lines = [f"torch {torch.__version__} on {device} ({name}), {torch.get_num_threads()} threads"]
    if device.startswith("cuda"):
        lines.append(f"precision {precision}: {set_precision(precision)}; the ratio's digital baseline runs at "
                     f"torch's default ({set_precision('default')})")
        set_precision(precision)
    else:
        lines.append("precision: FP32 (TF32 switches act on CUDA only)")
    lines.append("x digital = analog s per chip / digital s; chip-img/s = chips x images / analog s; ops = ATen "
                 "operators per forward of 2 / 8 programmed chips; * = rate over part of the images, extrapolated")
    return lines


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """Bad input: one line naming the option and what is allowed, exit status 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse(argv=None) -> argparse.Namespace:
    p = _Parser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mlp,cnn", help=f"comma list from {', '.join(MODELS)}")
    p.add_argument("--profile", default="pcm", help="hardware profile (aimcbench/configs/hardware)")
    p.add_argument("--set", nargs="*", default=[], help="hardware overrides, e.g. adc.bits=6")
    p.add_argument("--chips", type=int, default=100)
    p.add_argument("--loop-chips", type=int, default=5, help="chips timed one at a time (0: no loop)")
    p.add_argument("--batch", type=int, default=None, help="images per forward (default per model and device)")
    p.add_argument("--images", type=int, default=None, help="images per chip, run in batches (default: per model)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", default="default", choices=PRECISIONS)
    p.add_argument("--compile", action="store_true",
                   help="compiled noise kernels (torch.compile; a sweep's compile=true); compiling is in '1st call s'")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--repeat", type=int, default=3, help="timed passes; the fastest counts")
    p.add_argument("--max-seconds", type=float, default=None, help="stop a pass after this long and extrapolate")
    p.add_argument("--max-memory-gb", type=float, default=None,
                   help="chip-chunk budget (default: 3/4 of free GPU memory on CUDA, to_analog's default on CPU)")
    a = p.parse_args(argv)
    for key in ("chips", "batch", "images", "repeat", "threads"):
        if getattr(a, key) is not None and getattr(a, key) < 1:
            p.error(f"--{key}: must be an integer >= 1 (got {getattr(a, key)})")
    if a.loop_chips < 0:
        p.error(f"--loop-chips: must be >= 0 (got {a.loop_chips})")
    unknown = [m for m in a.models.split(",") if m not in MODELS]
    if unknown:
        p.error(f"--models: unknown model {unknown[0]!r}; allowed: {', '.join(MODELS)}")
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        p.error(f"--device: {a.device} asked for but torch {torch.__version__} sees no CUDA device; allowed: cpu")
    try:
        load_hardware(a.profile, list(a.set))
    except (ConfigError, ValueError, FileNotFoundError) as err:
        p.error(f"--profile/--set: {str(err).splitlines()[0]}")
    return a


def main(argv=None) -> list[dict]:
    a = parse(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    kept = retain_freed_memory()  # what the sweep runner does too (aimcbench/sim/allocator.py)
    print("\n".join(header_lines(a.device, a.precision)))
    set_compiled(a.compile)
    print(f"noise kernels: {'compiled (torch.compile)' if a.compile else 'plain PyTorch'}")
    print(f"CPU allocator: {'freed blocks kept for reuse' if kept else 'system default'} (AIMC_CPU_MALLOC)")
    print(f"profile={a.profile} {' '.join(a.set)} chips={a.chips}")
    print(HEADER, flush=True)
    rows = []
    for name in a.models.split(","):
        r = bench(name, a.profile, tuple(a.set), a.chips, a.loop_chips, a.batch, a.images, a.device, a.repeat,
                  a.precision, a.max_seconds, a.max_memory_gb)
        print(format_row(r), flush=True)
        rows.append(r)
    return rows


if __name__ == "__main__":
    main()
