"""Issue 15's GPU checks, one prepared script (plain torch, no Hydra: the device machine has none).

    python scripts/gpu_check.py                    # on a CUDA machine: all steps, ~6 minutes; results in $OUT
    python scripts/gpu_check.py --cpu-dry-run      # every step tiny on the CPU (to find bugs before GPU time)
    python scripts/gpu_check.py --steps dispatch,sync,mc,adc --out /tmp/gc

Steps (each writes its part of gpu_check.json as soon as it ends, so a run cut short keeps what it measured):
  dispatch  ATen operators per forward with 2 and 8 chips (tests/test_sim_dispatch.py's nets and profiles) on the
            device, flat in the row arrays; on CUDA also the kernels the profiler sees per forward.
  sync      every profile's second forward under torch.cuda.set_sync_debug_mode("error") (on a GPU the forward
            takes bound management's and the sign phases' sync-free way, sim/bounds.py), with positive weights so
            that outputs clip; the synchronizing call sites in warn mode if any remain.
  mc        Monte Carlo agreement: an MLP trained on the embedded MNIST sample, N chips on the CPU and on CUDA
            (fp32 and tf32): per-chip accuracies, the mean difference with a 95 % interval (Welch, and paired
            per chip: the counter-based streams give chip k the same draws on both).
  adc       a 12-bit ADC's output error (pcm's DAC/ADC, 512-row arrays) with fp32 vs tf32 matmuls, against the
            fp64 product: error before the ADC, codes that differ from the fp64 code, output error, in LSB.
  bench     scripts/bench_sim.py's table: MLP and small CNN (pcm, 100 chips), WRN-16-8 (pcm and rram_l3,
            40 chips x 10,000 images, batch 500), per precision; passes capped and extrapolated (marked *).
  resnet50  the scale figure: ResNet-50 (untrained, 224x224 synthetic), 100 chips, rate extrapolated to 50,000.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
os.environ.setdefault("AIMC_NO_DOWNLOAD", "1")  # the device machine reaches no network: no download attempts

import bench_sim

from aimcbench.sim import load_hardware, profile_names, to_analog

STEPS = ("dispatch", "sync", "mc", "adc", "bench", "resnet50")
# tests/test_sim_dispatch.py's profiles
DISPATCH_PROFILES = [("pcm", ()), ("rram", ()), ("rram_l3", ()), ("crossbar", ()), ("weight_noise", ()),
                     ("weight_noise", ("weight_noise.kind=mul",)), ("stuck_at", ()), ("ideal", ())]


def small_net() -> nn.Module:
    """tests/test_sim_dispatch.py's tiled model."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(16 * 8 * 8, 40), nn.ReLU(), nn.Linear(40, 10)).eval()


def programmed(net: nn.Module, profile: str, overrides, chips: int, device: str, x: torch.Tensor):
    """Chips of ``net`` after one forward (programmed): every later forward costs what a batch costs."""
    am = to_analog(net, load_hardware(profile, list(overrides)), chips=chips, seed=0, device=device,
                   chip_chunk=chips)
    am(x)
    return am


def cuda_kernels(fn, *args) -> int:
    """CUDA kernels the profiler records during one call of ``fn(*args)`` (-1 where the profiler fails)."""
    from torch.profiler import ProfilerActivity, profile

    try:
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn(*args)
            torch.cuda.synchronize()
        return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)
    except Exception:  # noqa: BLE001 - the profiler is a diagnostic: its failure must not end the check
        return -1


def step_dispatch(dev: str, tiny: bool) -> dict:
    x = (torch.rand(6, 3, 8, 8) * 0.1).to(dev)
    out = {"profiles": []}
    with torch.no_grad():
        for profile, ov in DISPATCH_PROFILES:
            n = {k: bench_sim.dispatched_ops(programmed(small_net(), profile, ov, k, dev, x), x) for k in (2, 8)}
            row = {"profile": profile, "overrides": list(ov), "ops2": n[2], "ops8": n[8], "flat": n[2] == n[8]}
            if dev.startswith("cuda"):
                row.update({f"kernels{k}": cuda_kernels(programmed(small_net(), profile, ov, k, dev, x), x)
                            for k in (2, 8)})
            out["profiles"].append(row)
        rows = {}
        lin = nn.Sequential(nn.Flatten(), nn.Linear(1024, 40), nn.ReLU(), nn.Linear(40, 10)).eval()
        x2 = (torch.rand(6, 1024) * 0.05).to(dev)
        for r in (64, 128, 256, 512, 100, 300):
            ov = (f"mapping.tile_rows={r}", "mapping.tile_cols=512", "adc.bound_management=none")
            rows[r] = bench_sim.dispatched_ops(programmed(lin, "pcm", ov, 2, dev, x2), x2)
    full = [rows[r] for r in (64, 128, 256, 512)]
    out["row_arrays"] = {"ops_by_tile_rows": rows, "flat_full": len(set(full)) == 1,
                         "partial_extra": rows[100] - full[0], "partial_equal": rows[100] == rows[300]}
    out["ok"] = all(p["flat"] for p in out["profiles"]) and out["row_arrays"]["flat_full"] \
        and out["row_arrays"]["partial_equal"]
    return out


def sync_sites(fn, mode: str, *args) -> tuple[list, str]:
    """Run ``fn(*args)`` under set_sync_debug_mode(mode); returns ([(site, count)], error) with the innermost aimcbench
    frame of every synchronizing call ("warn") or the error raised ("error")."""
    sites: dict[str, int] = {}

    def hook(message, category, filename, lineno, file=None, line=None):
        if "synchroniz" in str(message):
            stack = [f for f in traceback.extract_stack()[:-1] if not f.filename.endswith("warnings.py")]
            ours = [f for f in stack if "aimcbench" in f.filename]
            f = (ours or stack)[-1]  # the innermost line of the simulator that made the call
            key = f"{Path(f.filename).name}:{f.lineno} {f.name}: {f.line}"
            sites[key] = sites.get(key, 0) + 1

    error = ""
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = hook
        torch.cuda.set_sync_debug_mode(mode)
        try:
            fn(*args)
            torch.cuda.set_sync_debug_mode("default")
            torch.cuda.synchronize()
        except RuntimeError as err:
            torch.cuda.set_sync_debug_mode("default")
            tb = [f for f in traceback.extract_tb(err.__traceback__) if "aimcbench" in f.filename]
            where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}: {tb[-1].line}" if tb else ""
            error = f"{str(err).splitlines()[0]}{where}"
    return sorted(sites.items(), key=lambda kv: -kv[1]), error


def step_sync(dev: str, tiny: bool) -> dict:
    cuda = dev.startswith("cuda")
    x = (torch.rand(6, 3, 8, 8) - 0.3).to(dev)       # negative inputs too: sign phases of unsigned ADCs
    cases = [(p, ()) for p in profile_names()] + [("pcm", ("adc.out_noise=3.0",)),
                                                  ("pcm", ("mapping.differential=separate_adc",))]
    out = {"cases": [], "note": "" if cuda else "CPU dry run: no sync debug mode; the code paths only"}
    with torch.no_grad():
        for profile, ov in cases:
            net = small_net()
            for name, prm in net.named_parameters():  # positive weights: outputs clip, bound management runs
                if name.endswith("weight"):
                    prm.data.abs_()
            am = programmed(net, profile, ov, 4, dev, x)
            adcs = [cb.adc for cb in am.crossbars.values()]
            row = {"profile": profile, "overrides": list(ov), "signed_adc": all(a.signed for a in adcs),
                   "iterative_bm": any(a.iterative for a in adcs), "expected_sync_free": True}
            if cuda:
                row["sites"], _ = sync_sites(am, "warn", x)
                row["n_syncs"] = sum(n for _, n in row["sites"])
                _, row["error_mode"] = sync_sites(am, "error", x)
                row["error_mode_ok"] = row["error_mode"] == ""
            else:
                am(x)
            out["cases"].append(row)
    out["ok"] = all(r.get("error_mode_ok", True) for r in out["cases"])
    return out


def trained_mlp(epochs: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """bench_sim's MLP trained on the CPU (deterministic) on the embedded MNIST sample; its test images/labels."""
    import tempfile

    from aimcbench.data import load_split

    with tempfile.TemporaryDirectory() as empty:  # no IDX files there: the embedded 6,000/2,000 sample, everywhere
        xtr, ytr = load_split("mnist", "train", data_dir=empty)
        xte, yte = load_split("mnist", "test", data_dir=empty)
    torch.manual_seed(0)
    model = bench_sim.mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for idx in torch.randperm(len(xtr), generator=g).split(128):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
    return model.eval(), xte, yte


def interval(a, b, paired: bool) -> dict:
    """Mean of a - b with a 95 % t interval (Welch for independent samples, else per pair)."""
    import numpy as np
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    if paired:
        d = a - b
        mean, se, df = d.mean(), d.std(ddof=1) / np.sqrt(len(d)), len(d) - 1
    else:
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        mean, se = a.mean() - b.mean(), np.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else 1
    half = float(stats.t.ppf(0.975, df) * se) if se > 0 else 0.0
    return {"mean_diff": float(mean), "ci95": [float(mean - half), float(mean + half)],
            "covers_0": bool(mean - half <= 0 <= mean + half)}


def step_mc(dev: str, tiny: bool) -> dict:
    chips, n_img, epochs = (4, 200, 1) if tiny else (40, 2000, 3)
    model, x, y = trained_mlp(epochs)
    x, y = x[:n_img], y[:n_img]
    out = {"chips": chips, "images": n_img, "digital_acc": float((model(x).argmax(-1) == y).float().mean()),
           "profiles": {}}
    targets = [("cpu", "default")] + ([(dev, "fp32"), (dev, "tf32")] if dev.startswith("cuda") else [("cpu", "tf32")])
    with torch.no_grad():
        for profile in ("pcm", "rram_l3"):
            hw, acc = load_hardware(profile), {}
            for d, prec in targets:
                bench_sim.set_precision(prec)
                am = to_analog(model, hw, chips=chips, seed=0, device=d)
                logits = am(x.to(d)).cpu()
                acc[f"{d}/{prec}"] = (logits.argmax(-1) == y).float().mean(dim=1).tolist()
            bench_sim.set_precision("default")
            ref = acc["cpu/default"]
            res = {"acc": acc, "mean": {k: sum(v) / len(v) for k, v in acc.items()}}
            for k, v in acc.items():
                if k != "cpu/default":
                    res[f"{k} - cpu"] = {"welch": interval(v, ref, False), "paired": interval(v, ref, True),
                                         "chips_identical": sum(a == b for a, b in zip(v, ref))}
            out["profiles"][profile] = res
    out["ok"] = all(r["welch"]["covers_0"] for p in out["profiles"].values() for k, r in p.items() if " - cpu" in k)
    return out


def step_adc(dev: str, tiny: bool) -> dict:
    """Pre-ADC product error, ADC code mismatches and output error of fp32 / tf32 matmuls vs the fp64 product."""
    from aimcbench.sim.converters import ADC, DAC
    from aimcbench.sim.periphery import step_size

    hw = load_hardware("pcm")
    dac, adc = DAC(hw.dac), ADC(hw.adc, hw.adc.bound, True)
    step = step_size(hw.adc.bits, hw.adc.bound, True)
    n = 256 if tiny else 4096
    g = torch.Generator().manual_seed(0)
    model, xte, _ = trained_mlp(1)
    w1 = model[1].weight.detach()[:, :512]
    cases = {"mlp_layer1_mnist": (xte[:n].flatten(1)[:, :512], w1),
             "gaussian_512x512": (torch.randn(n, 512, generator=g).relu(), torch.randn(512, 512, generator=g))}
    out = {"adc_bits": hw.adc.bits, "bound": hw.adc.bound, "lsb": step, "cases": {}}
    for name, (x, w) in cases.items():
        v, _ = dac(x)
        wn = w / w.abs().max()  # pcm's per_tile scaling: one array, max|W| = one full range
        y64 = v.double() @ wn.double().t()
        code64 = torch.round(y64 / step)  # ADC codes, compared as integers (float32 and float64 levels differ)
        inside = y64.abs() < hw.adc.bound
        res = {"outputs": int(inside.sum()), "clipped": int((~inside).sum()),
               "y_rms_lsb": float(y64.pow(2).mean().sqrt() / step)}
        for prec in ("fp32", "tf32"):
            bench_sim.set_precision(prec)
            y = (v.to(dev) @ wn.to(dev).t()).cpu().double()
            q = adc.quantize_(y.float().clone()).double()
            e = ((y - y64) / step)[inside]
            res[prec] = {"pre_adc_err_rms_lsb": float(e.pow(2).mean().sqrt()), "pre_adc_err_max_lsb": float(e.abs().max()),
                         "code_mismatch": float((torch.round(y / step) != code64)[inside].double().mean()),
                         "out_err_rms_lsb": float(((q - y64) / step)[inside].pow(2).mean().sqrt()),
                         "out_err_max_lsb": float(((q - y64) / step)[inside].abs().max())}
        bench_sim.set_precision("default")
        out["cases"][name] = res
    out["device"] = dev
    return out


def step_bench(dev: str, tiny: bool, precisions: list, budget_s: float, max_seconds: float) -> dict:
    if tiny:  # WRN-16-8 takes minutes to program on a CPU: the dry run times the small models on both profiles
        rows = [("mlp", "pcm", 2, 64, 32), ("cnn", "rram_l3", 2, 16, 8)]
    else:  # the issue's workloads
        rows = [("mlp", "pcm", 100, 10000, 10000), ("cnn", "pcm", 100, 1000, 1000),
                ("wrn16_8", "pcm", 40, 10000, 500), ("wrn16_8", "rram_l3", 40, 10000, 500)]
    t0, out = time.perf_counter(), {"rows": [], "skipped": []}

    def row(model, profile, chips, images, batch, prec, compiled=False):
        if time.perf_counter() - t0 > budget_s:
            out["skipped"].append(f"{model}/{profile}/{'compiled' if compiled else prec}")
            return
        r = bench_sim.bench(model, profile, (), chips, 2, batch, images, dev, 1, prec, max_seconds)
        if compiled:
            r["compiled"] = True
        print(("compiled: " if compiled else "") + bench_sim.format_row(r), flush=True)
        out["rows"].append(r)

    for prec in precisions:
        for spec in rows:
            row(*spec, prec)
    # compile=true (Triton kernels) on the first and third workloads, at torch's default precision
    bench_sim.set_compiled(True)
    try:
        for spec in rows[::2]:
            row(*spec, "default", compiled=True)
    finally:
        bench_sim.set_compiled(False)
    bench_sim.set_precision("default")
    return out


def step_resnet50(dev: str, tiny: bool, max_seconds: float) -> dict:
    # The dry run: one chip of exact devices (programming 25 M pcm weights takes half a minute on a CPU).
    chips, images, batch, profile = (1, 1, 1, "ideal") if tiny else (100, 50000, 100, "pcm")
    r = bench_sim.bench("resnet50", profile, (), chips, 0, batch, images, dev, 1, "default", max_seconds, ops=False)
    print(bench_sim.format_row(r), flush=True)
    r["hours_for_all"] = r["analog_s"] / 3600
    return r


def environment(dev: str) -> dict:
    env = {"torch": torch.__version__, "device": dev, "python": sys.version.split()[0],
           "threads": torch.get_num_threads()}
    if dev.startswith("cuda"):
        env.update(gpu=torch.cuda.get_device_name(dev), cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                   free_gb=torch.cuda.mem_get_info()[0] / 2**30)
    try:
        import hydra  # noqa: F401

        env["hydra"] = True
    except ImportError:
        env["hydra"] = False
    return env


def main(argv=None) -> dict:
    p = bench_sim._Parser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu-dry-run", action="store_true", help="every step tiny on the CPU")
    p.add_argument("--steps", default=",".join(STEPS), help=f"comma list from {', '.join(STEPS)}")
    p.add_argument("--out", default=os.environ.get("OUT", "gpu_check_out"), help="folder for gpu_check.json/.txt")
    p.add_argument("--precisions", default="fp32,tf32", help="bench precisions, from default, fp32, tf32")
    p.add_argument("--bench-budget-s", type=float, default=240.0, help="start no bench row after this long")
    p.add_argument("--max-seconds", type=float, default=8.0, help="cap of one timed pass (then extrapolated)")
    a = p.parse_args(argv)
    steps = a.steps.split(",")
    bad = [s for s in steps if s not in STEPS] + [q for q in a.precisions.split(",") if q not in bench_sim.PRECISIONS]
    if bad:
        p.error(f"--steps/--precisions: unknown {bad[0]!r}; allowed steps: {', '.join(STEPS)}; precisions: "
                f"{', '.join(bench_sim.PRECISIONS)}")
    dev = "cpu" if a.cpu_dry_run else "cuda"
    if dev == "cuda" and not torch.cuda.is_available():
        p.error("no CUDA device: run on the GPU machine, or pass --cpu-dry-run")
    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {"environment": environment(dev), "steps": {}}
    print("\n".join(bench_sim.header_lines(dev, "default")), flush=True)
    for step in steps:
        t0 = time.perf_counter()
        print(f"== {step}", flush=True)
        try:
            if step == "bench":
                print(bench_sim.HEADER, flush=True)
                res = step_bench(dev, a.cpu_dry_run, a.precisions.split(","), a.bench_budget_s, a.max_seconds)
            elif step == "resnet50":
                print(bench_sim.HEADER, flush=True)
                res = step_resnet50(dev, a.cpu_dry_run, 4 * a.max_seconds)
            else:
                res = globals()[f"step_{step}"](dev, a.cpu_dry_run)
        except Exception as err:  # noqa: BLE001 - one step's failure must not cost the others' GPU time
            res = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
            print(res["traceback"], flush=True)
        res["seconds"] = time.perf_counter() - t0
        result["steps"][step] = res
        (out_dir / "gpu_check.json").write_text(json.dumps(result, indent=1, default=str))
        print(summary(step, res), flush=True)
    text = "\n".join(summary(s, r) for s, r in result["steps"].items())
    (out_dir / "gpu_check.txt").write_text(json.dumps(result["environment"]) + "\n" + text + "\n")
    return result


def summary(step: str, r: dict) -> str:
    """A few printed lines per step (gpu_check.json has everything)."""
    if "error" in r:
        return f"{step}: FAILED {r['error']}"
    lines = [f"{step} ({r['seconds']:.0f} s)" + ("" if "ok" not in r else f": {'ok' if r['ok'] else 'NOT OK'}")]
    if step == "dispatch":
        lines += [f"  {p['profile']:12s} {' '.join(p['overrides']):24s} ops 2/8 chips {p['ops2']}/{p['ops8']}"
                  + (f"  kernels {p['kernels2']}/{p['kernels8']}" if "kernels2" in p else "") for p in r["profiles"]]
        lines.append(f"  ops by tile_rows {r['row_arrays']['ops_by_tile_rows']}")
    elif step == "sync":
        for c in r["cases"]:
            lines.append(f"  {c['profile']:12s} {' '.join(c['overrides']):28s} signed ADC {c['signed_adc']!s:5s} "
                         f"iterative {c['iterative_bm']!s:5s} syncs {c.get('n_syncs', '-')}"
                         + (f"  error mode: {c['error_mode'] or 'no sync'}" if "error_mode" in c else ""))
            lines += [f"      {n:4d}x {site}" for site, n in c.get("sites", [])]
    elif step == "mc":
        lines.append(f"  {r['chips']} chips x {r['images']} images, digital accuracy {r['digital_acc']:.4f}")
        for prof, res in r["profiles"].items():
            lines.append(f"  {prof}: mean accuracy " + ", ".join(f"{k} {v:.4f}" for k, v in res["mean"].items()))
            for k, c in res.items():
                if " - cpu" in k:
                    w, q = c["welch"], c["paired"]
                    lines.append(f"    {k}: Welch {w['mean_diff']:+.5f} [{w['ci95'][0]:+.5f}, {w['ci95'][1]:+.5f}]"
                                 f"; paired [{q['ci95'][0]:+.5f}, {q['ci95'][1]:+.5f}]; chips identical "
                                 f"{c['chips_identical']}/{r['chips']}")
    elif step == "adc":
        lines.append(f"  {r['adc_bits']}-bit ADC, bound {r['bound']}, LSB {r['lsb']:.5f}, on {r['device']}; errors in "
                     "LSB against the fp64 product (unclipped outputs)")
        for name, c in r["cases"].items():
            for prec in ("fp32", "tf32"):
                e = c[prec]
                lines.append(f"  {name:18s} {prec}: pre-ADC rms {e['pre_adc_err_rms_lsb']:.4f} max "
                             f"{e['pre_adc_err_max_lsb']:.4f}; codes differing {e['code_mismatch']:.2e}; output rms "
                             f"{e['out_err_rms_lsb']:.4f} max {e['out_err_max_lsb']:.4f}")
    elif step == "bench":
        lines += [bench_sim.HEADER] + [bench_sim.format_row(x) for x in r["rows"]]
        lines += [f"  skipped (time budget): {', '.join(r['skipped'])}"] if r["skipped"] else []
    elif step == "resnet50":
        lines += [bench_sim.format_row(r), f"  {r['chips']} chips x {r['images']} images: {r['analog_s']:.0f} s = "
                  f"{r['hours_for_all']:.2f} h" + (" (extrapolated from a rate)" if r["extrapolated"] else "")]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
