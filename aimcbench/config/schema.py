"""The settings of every ``aimc`` command as typed dataclasses: one schema, with defaults and a doc per field.

These classes are registered in Hydra's ConfigStore (:mod:`aimcbench.config.store`) as the first entry of each
command's defaults list, so Hydra checks types and key names while it composes, and they are the rules of the
one validation path (:func:`aimcbench.config.validate.check_config`), which adds ranges, choices and the rules
that span several keys. The hardware settings are the simulator's own :class:`~aimcbench.sim.HardwareConfig`.
The ``model`` and ``dataset`` sections are open mappings (a user's ``_target_`` takes any keyword arguments);
their known keys are checked in :mod:`aimcbench.config.validate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from aimcbench.sim.config import HardwareConfig, _f
from aimcbench.sim.config_cost import CostTable
from aimcbench.sim.precision import PRECISIONS

from .rules import aware_rule, narelu_rule, noise_injection_rule, optimize_bits_rule, sweep_fixed_rule, sweep_values_rule

CACHE_DIR = "${oc.env:AIMC_CACHE_DIR,null}"
REQUIRED = "???"  # OmegaConf's mark of a value that a config group (e.g. sweep=adc_bits) must set


@dataclass
class MCConfig:
    """Monte Carlo settings: how many chips per sweep point and where their draws come from."""

    chips: int = _f("simulated chips per sweep point", lo=1, default=40)
    seed: int = _f("base seed: chip k draws its devices from (seed, layer, k), so chip k is the same chip at every "
                   "point of a sweep and at any chip count", lo=0, default=0)
    max_memory_gb: Optional[float] = _f("memory budget of the sweep in GiB (null: the memory available when it "
                                        "starts, from /proc/meminfo or os.sysconf). Checked against an estimate "
                                        "before any file is written (one chip must fit), and bounds how many chips "
                                        "run at once", lo=0.0, lo_open=True, default=None)
    # Issue 15: one point's chips split over several jobs (GPUs, nodes); `aimc report` merges the shards.
    shard_index: int = _f("which shard of the chips this job runs: shard i of mc.shard_count runs the contiguous "
                          "chip ids [i * chips // shard_count, (i + 1) * chips // shard_count) at every point (chip "
                          "k is the same chip in any shard); 0 with shard_count 1: every chip", lo=0, default=0)
    shard_count: int = _f("how many jobs share the chips of each point (1: unsharded); at most mc.chips. Launch "
                          "the shards as one multirun (aimc sweep -m mc.shard_index=0,1,2,3 mc.shard_count=4 "
                          "hydra/launcher=joblib) and merge them with aimc report", lo=1, default=1)


def _recognizer_rule(v: Any) -> str | None:
    """eval.recognizer (study 000's digit recognizer): null, a preset name, or {model, dataset[, train]}."""
    if v is None or (isinstance(v, str) and v):
        return None
    ok = isinstance(v, dict) and {"model", "dataset"} <= set(v) <= {"model", "dataset", "train"} and all(
        isinstance(v[k], dict) for k in v if v[k] is not None)
    return None if ok else "null, none, a preset name (configs/recognizer/<name>.yaml) or {model, dataset[, train]}"


@dataclass
class EvalConfig:
    """What each sweep point evaluates."""

    n: Optional[int] = _f("test images evaluated per point (the first n of the test split; null: all)", lo=1,
                          default=10000)
    batch_size: int = _f("test images per forward pass (all chips of a chunk run each batch together)", lo=1,
                         default=250)
    noise_sigma: float = _f("denoising only: std of the Gaussian noise added to the clean test inputs", lo=0.0,
                            default=0.30)
    images: int = _f("denoising only: test images kept per point for the image grid", lo=0, default=8)
    score_threshold: float = _f("detection only: detections with at least this score are compared (digital vs "
                                "analog)", lo=0.0, default=0.5)
    recognizer: Any = _f("denoising only: the fixed classifier whose accuracy on every chip's reconstructions is the "
                         "digit_accuracy metric (aimcbench/tasks/recognizer.py): a preset name (configs/recognizer/"
                         "<name>.yaml), a mapping {model, dataset, train} trained and cached like any model, none "
                         "(off), or null: the preset named like dataset.name when one exists (mnist), else off",
                         default=None, check=_recognizer_rule)


@dataclass
class MitigationConfig:
    """Noise-aware batch norm (NaBN): each chip recomputes every batch-norm layer's running statistics on
    calib_batches x eval.batch_size training images (or the whole split: calib_pass) run through its own noisy
    weights (momentum calib_momentum, the first batch initializes). Models without batch norm are evaluated
    unchanged (a notice is logged)."""

    nabn: bool = _f("recalibrate batch-norm statistics per chip before testing", default=False)
    dynamic: bool = _f("with nabn: keep updating the statistics with every test batch", default=False)
    calib_batches: int = _f("training batches (of eval.batch_size images) for the calibration", lo=1, default=20)
    # Study 004 (issue 14): the study calibrates "over the training data" (one pass), once at a fixed noise.
    calib_pass: bool = _f("calibrate on one pass over the whole training split (Algorithm 1's 'for mini-batch x in "
                          "X'), in eval.batch_size batches, instead of calib_batches of them", default=False)
    calib_momentum: Optional[float] = _f("momentum m of the calibration, mu_C <- m mu_C + (1 - m) mu (0.999: the "
                                         "study's Algorithm 1); null: the cumulative average of the batch statistics "
                                         "(what that average converges to over a long pass)", lo=0.0, hi=1.0,
                                         default=0.999)
    calib_hardware: List[str] = _f("hardware overrides 'dotted.key=value' (below hardware.) under which the chips "
                                   "are calibrated, once for the whole sweep, e.g. [weight_noise.eta0=0.06] (study "
                                   "004 Fig. 3); empty: each point calibrates under its own hardware",
                                   factory=list, check=sweep_fixed_rule)


@dataclass
class SweepAxis:
    """One sweep axis: a dotted key of the composed config and the values it takes, one point each."""

    key: str = _f("dotted key of the composed config that the sweep sets, e.g. hardware.adc.bits", default=REQUIRED)
    values: List[Any] = _f("the values of the key, one sweep point each", default=REQUIRED, check=sweep_values_rule)
    log: bool = _f("draw the axis on a log scale", default=False)
    label: str = _f("axis title of the plots (with its unit)", default="")
    fixed: List[str] = _f("overrides 'dotted.key=value' applied at every point", factory=list, check=sweep_fixed_rule)
    loglog: bool = _f("classification: also fit and plot the error rate against the axis in log-log (a power law)",
                      default=False)


@dataclass
class TrainConfig:
    """Digital (floating-point) training before the analog evaluation. The trained weights are cached under
    cache_dir by a hash of the model, the dataset and this section (threads excepted)."""

    steps: Optional[int] = _f("mini-batch updates (null: use epochs); steps keep the time fixed whatever the data "
                              "set's size", lo=1, default=3000)
    epochs: Optional[int] = _f("passes over the training data when steps is null", lo=0, default=None)
    batch_size: int = _f("training images per mini-batch", lo=1, default=128)
    lr: float = _f("learning rate (Adam)", lo=0.0, lo_open=True, default=0.002)
    alpha_tv: float = _f("denoising only: weight of the total-variation term of the loss", lo=0.0, default=0.001)
    noise_sigma_max: float = _f("denoising only: inputs are corrupted with Gaussian noise of std drawn uniformly in "
                                "[0, noise_sigma_max] per image, then clamped to [0, 1]", lo=0.0, default=0.6)
    seed: int = _f("training seed: the initial weights, data order, batches, augmentation and every noise draw of "
                   "training come from it; the same config trains bitwise-identical weights on one machine (same "
                   "train.threads)", lo=0, default=0)
    threads: Optional[int] = _f("torch CPU threads while training (null: torch's default); 1 is fastest for small "
                                "models and immune to oversubscription when jobs share the cores", lo=1, default=1)
    limit: Optional[int] = _f("use only the first N training images (null: all)", lo=1, default=None)
    noise_injection: Any = _f("noise injected into every mini-batch: {kind: mul|add, eta0, [spatial_std, "
                              "temporal_rel_std, finetune_steps, finetune_lr]} (weights W + W N_T N_S or W + N_T N_S); "
                              "with train.aware a number: programming variation as a fraction of the range; null: "
                              "none", default=None, check=noise_injection_rule)
    aware: Any = _f("hardware-aware fine-tuning through the profiles' differentiable pipelines (train=level1|level2|"
                    "level3); null: plain training", default=None, check=aware_rule)
    narelu: Any = _f("noise-aware ReLU fine-tuning from the digital model: {profile, adc_bits, optimized, epochs, lr, "
                     "samples}; null: none", default=None, check=narelu_rule)


@dataclass
class OptimizeConfig:
    """``aimc optimize``: the convex choice of each analog layer's conductance range and ADC full scale."""

    adc_bits: Any = _f("ADC resolutions to optimize for, e.g. [3, 4, 5, 6, 7, 8]; null: hardware.adc.bits",
                       default=None, check=optimize_bits_rule)
    samples: int = _f("training images whose layer inputs give the input statistics", lo=1, default=256)
    g_min_lo_uS: Optional[float] = _f("smallest allowed g_min (null: the profile's g_min)", lo=0.0, default=None)
    g_max_hi_uS: Optional[float] = _f("largest allowed g_max (null: the profile's g_max)", lo=0.0, lo_open=True,
                                      default=None)
    g_range_min_uS: float = _f("smallest allowed g_max - g_min", lo=0.0, lo_open=True, default=1.0)
    fs_max_uA: Optional[float] = _f("largest ADC full-scale current (null: no limit)", lo=0.0, lo_open=True,
                                    default=None)
    name: str = _f("written profiles are <name>_b<bits>.yaml", default="${hardware.name}_opt")
    out_dir: Optional[str] = _f("where the profiles go (null: the Hydra run directory)", default=None)


OBJECTIVE_STATS = ("mean", "std", "min", "p5", "p25", "p50", "p75", "p95", "max")


@dataclass
class ObjectiveConfig:
    """The scalar a sweep returns to Hydra (``run(cfg)``'s value), so sweepers such as hydra/sweeper=optuna can
    search a design space: ``stat`` over chips of ``metric`` at sweep point ``point``, the same number as that
    row and column of the run's percentiles.csv (minus its digital column when ``relative``)."""

    metric: Optional[str] = _f("the metric (null: the task's first, e.g. accuracy or psnr)", default=None)
    stat: str = _f("the statistic over chips, a column of percentiles.csv", choices=OBJECTIVE_STATS, default="p5")
    point: int = _f("the sweep point (an index into sweep.values; negative counts from the end: -1 the last)",
                    default=-1)
    relative: bool = _f("subtract the digital baseline at that point (the analog loss, <= 0 for accuracy)",
                        default=False)
    target: Optional[float] = _f("when set, return |value - target| instead (minimize it: a sweeper's trials "
                                 "gather on the contour where the value equals target, e.g. -0.01 with relative: "
                                 "1 point below digital)", default=None)


REPORT_FORMATS = ("png", "pdf", "svg")
REPORT_STYLES = ("default", "paper", "slides")


def report_formats_rule(v: Any) -> str | None:
    """report.formats: a non-empty list of png, pdf, svg."""
    ok = isinstance(v, (list, tuple)) and len(v) > 0 and all(f in REPORT_FORMATS for f in v)
    return None if ok else f"a non-empty list of {', '.join(REPORT_FORMATS)}, e.g. [png,pdf]"


@dataclass
class ReportConfig:
    """The figures and the page a sweep's report step (and ``aimc report``) writes: percentiles.csv, summary.md,
    every figure once per format, and report.html (self-contained: figures embedded, config, provenance)."""

    formats: List[str] = _f("file formats of every figure (band_<metric>, box_<metric>, compare_..., grid): png "
                            "(raster at the style's dpi), pdf and svg (vector)", factory=lambda: ["png", "pdf"],
                            check=report_formats_rule)
    style: str = _f("figure preset: default (5.2 x 3.6 in, 150 dpi), paper (single column: 3.5 in wide, 8 pt "
                    "text, 300 dpi raster) or slides (8 x 4.5 in, 16:9, 14 pt text, 200 dpi)",
                    choices=REPORT_STYLES, default="default")
    html: bool = _f("also write report.html: the table, every figure, the config and the provenance in one "
                    "self-contained page", default=True)


def _device() -> Any:
    return _f("where the simulation runs: cpu, cuda or auto (cuda when available)", choices=("cpu", "cuda", "auto"),
              default="cpu")


def _cache_dir() -> Any:
    return _f("trained-model cache (null: $AIMC_CACHE_DIR, else ~/.cache/aimcbench)", default=CACHE_DIR)


def _open(doc: str) -> Any:
    return _f(doc, factory=dict)


MODEL_DOC = ("the network: a registered name (model=mlp, ...) or model._target_=pkg.module.Class with its keyword "
             "arguments; model.checkpoint=PATH evaluates a state dict instead of training")
DATASET_DOC = "the data: a registered name (dataset=mnist, ...) or dataset._target_=... with its keyword arguments"


@dataclass
class SweepApp:
    """``aimc sweep``: train (or reuse) a model, then program mc.chips simulated chips at every point of one sweep
    axis and record per-chip metrics into the Hydra run directory."""

    model: Dict[str, Any] = _open(MODEL_DOC)
    dataset: Dict[str, Any] = _open(DATASET_DOC)
    hardware: HardwareConfig = _f("the simulated chip (a profile: hardware=pcm, ...)", factory=HardwareConfig)
    sweep: SweepAxis = _f("the sweep axis (a preset: sweep=adc_bits, ...)", factory=SweepAxis)
    train: TrainConfig = _f("digital training", factory=TrainConfig)
    mc: MCConfig = _f("Monte Carlo chips", factory=MCConfig)
    eval: EvalConfig = _f("evaluation per point", factory=EvalConfig)
    mitigation: MitigationConfig = _f("noise-aware batch norm", factory=MitigationConfig)
    device: str = _device()
    precision: str = _f("matrix products on a GPU: default (torch's: cuDNN convolutions in TF32, the analog arrays' "
                        "products in fp32), fp32 (strict, no TF32) or tf32 (all in TF32); a CPU computes in fp32 "
                        "whatever this says", choices=PRECISIONS, default="default")
    compile: bool = _f("compiled noise kernels (torch.compile: a C++ compiler on a CPU, Triton on CUDA): the output "
                       "noise drawn and added in one kernel, ~20 % less time per chip for the MLP on a CPU; the "
                       "first batch compiles (~10-30 s). Numbers agree with the plain kernels' to about an ulp, not "
                       "bit for bit, so this is part of a point's hash", default=False)
    threads: Optional[int] = _f("torch CPU threads of the evaluation (null: torch's default); set it to cores / "
                                "jobs when several sweeps share a machine", lo=1, default=None)
    cache_dir: Optional[str] = _cache_dir()
    wait: bool = _f("wait for a sweep that holds the run directory instead of exiting (then resume: points it "
                    "finished are not computed again)", default=False)
    progress: str = _f("progress bars on stderr: auto (only when stderr is a terminal), on or off; notices and one "
                       "line per point always go to the log (Hydra's job log: <run dir>/sweep.log and the console)",
                       choices=("auto", "on", "off"), default="auto")
    objective: ObjectiveConfig = _f("the scalar the sweep returns (for Hydra sweepers such as Optuna)",
                                    factory=ObjectiveConfig)
    log_level: str = _f("level of aimcbench's log (Hydra's job log: <run dir>/sweep.log and the console): INFO "
                        "(notices and one line per point), WARNING (quiet: problems only) or DEBUG",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"), default="INFO")
    report: ReportConfig = _f("figure formats and style, report.html", factory=ReportConfig)


@dataclass
class TrainApp:
    """``aimc train``: digital training of one model (or the cached one) and its test metrics."""

    model: Dict[str, Any] = _open(MODEL_DOC)
    dataset: Dict[str, Any] = _open(DATASET_DOC)
    train: TrainConfig = _f("digital training", factory=TrainConfig)
    device: str = _device()
    cache_dir: Optional[str] = _cache_dir()


@dataclass
class TilesApp:
    """``aimc tiles``: how each analog layer maps onto crossbar arrays."""

    model: Dict[str, Any] = _open(MODEL_DOC)
    dataset: Dict[str, Any] = _open(DATASET_DOC)
    hardware: HardwareConfig = _f("the simulated chip", factory=HardwareConfig)


@dataclass
class CostApp:
    """``aimc cost``: energy, latency and area per inference of a model on a hardware profile (issue 17)."""

    model: Dict[str, Any] = _open(MODEL_DOC)
    dataset: Dict[str, Any] = _open(DATASET_DOC)
    hardware: HardwareConfig = _f("the simulated chip", factory=HardwareConfig)
    cost_table: CostTable = _f("the component table that prices it (a preset: cost_table=isaac_32nm)",
                               factory=CostTable)


@dataclass
class OptimizeApp:
    """``aimc optimize``: per-layer conductance range and ADC full scale from the closed-form error model."""

    model: Dict[str, Any] = _open(MODEL_DOC)
    dataset: Dict[str, Any] = _open(DATASET_DOC)
    hardware: HardwareConfig = _f("the base profile", factory=HardwareConfig)
    train: TrainConfig = _f("digital training of the model", factory=TrainConfig)
    optimize: OptimizeConfig = _f("the optimization", factory=OptimizeConfig)
    device: str = _device()
    threads: Optional[int] = _f("torch CPU threads", lo=1, default=1)
    cache_dir: Optional[str] = _cache_dir()


@dataclass
class ReportApp:
    """``aimc report DIR...``: rebuild tables and plots of sweep directories and merge several."""

    dirs: List[str] = _f("sweep run directories or multirun directories (job folders are found below them)",
                         factory=list)
    out: Optional[str] = _f("where merged outputs go (null: the single directory given, else ./report)", default=None)
    normalize_to: Optional[str] = _f("with several sweeps: divide each sweep's stat by that of its reference, the "
                                     "sweep with the same overrides except this key:value (e.g. hardware:rram_l1)",
                                     default=None)
    stat: str = _f("the percentile column that is normalized (p75, p50, mean, ...)", default="p75")
    report: ReportConfig = _f("figure formats and style, report.html (aimc sweep's settings: those given on the "
                              "command line apply to every sweep reported, the others are each sweep's own)",
                              factory=ReportConfig)


APPS: dict[str, type] = {"sweep": SweepApp, "train": TrainApp, "tiles": TilesApp, "optimize": OptimizeApp,
                         "report": ReportApp}
APPS["cost"] = CostApp  # issue 17
SECTIONS: dict[str, type] = {"train": TrainConfig, "mc": MCConfig, "eval": EvalConfig, "mitigation": MitigationConfig,
                             "sweep": SweepAxis, "optimize": OptimizeConfig, "objective": ObjectiveConfig,
                             "report": ReportConfig}
SECTIONS["cost_table"] = CostTable  # aimc cost's component table
