"""``aimc tiles``: the per-layer crossbar plan of a model on a hardware profile, and the total arrays."""

from __future__ import annotations

from omegaconf import DictConfig

from ._common import check_config, exits_on_user_error, on_model_inputs, plain

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
    # A model that cannot take the data set's images (e.g. a CIFAR net on MNIST) runs on its own input_shape.
    rows, where = on_model_inputs(data, label, lambda shape, own: tile_plan(model, hw, input_shape=shape),
                                  hint=", e.g. dataset=synthetic_cifar")
    print(f"{label} on {hw.name}{f' ({where})' if where else ''}:")
    print(format_plan(rows))

