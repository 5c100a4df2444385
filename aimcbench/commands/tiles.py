"""``aimc tiles``: the per-layer crossbar plan of a model on a hardware profile, and the total arrays."""

from __future__ import annotations

from omegaconf import DictConfig

from ._common import UsageError, check_config, exits_on_user_error, plain

COLUMNS = ["layer", "input_size", "filter_shape", "columns", "row_length", "arrays_rows", "arrays_cols", "arrays"]


def format_plan(rows: list[dict]) -> str:
    """Plain-text table of tile_plan rows plus a total line."""
    cells = [[str(r.get(c, "")) for c in COLUMNS] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    lines.append(f"total arrays: {sum(int(r.get('arrays', 0)) for r in rows)}")
    return "\n".join(lines)


@exits_on_user_error
def run(cfg: DictConfig) -> None:
    """Hydra task: build the (untrained) model, plan its tiles, print the table."""
    from aimcbench.models import build_from_config, model_label
    from aimcbench.sim import hardware_from_dict, tile_plan

    data = plain(cfg)
    check_config(data)
    model = build_from_config(data["model"]).eval()
    label = model_label(data["model"])
    hw = hardware_from_dict(data["hardware"])
    shape = tuple(data["dataset"]["shape"])
    note = ""
    try:
        rows = tile_plan(model, hw, input_shape=shape)
    except RuntimeError as err:  # the model cannot take this data set's images (e.g. a CIFAR net on MNIST)
        own = data["model"].get("input_shape")
        if own:
            # `aimc tiles model=vgg_block hardware=rram` should just work: use the shape the model is built for.
            rows = tile_plan(model, hw, input_shape=tuple(own))
            note = f" (inputs {'x'.join(map(str, own))} from model.input_shape)"
            print(f"{label} on {hw.name}{note}:")
            print(format_plan(rows))
            return
        raise UsageError("dataset", f"model {label} does not take {'x'.join(map(str, shape))} "
                                    "inputs; pick a data set of its input shape, e.g. dataset=synthetic_cifar "
                                    f"({str(err).splitlines()[0][:80]})") from None
    print(f"{label} on {hw.name}:")
    print(format_plan(rows))

