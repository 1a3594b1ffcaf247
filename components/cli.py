"""Command line: ``python -m components <command>``. Each command lives in its own module;
this file only wires arguments to functions."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _variant(args) -> int:
    from components.modeling.integration import layer_table
    from components.modeling.models import build_model
    from components.modeling.variants import describe, make_variant, parse_params, to_yaml

    params = parse_params(args.param)
    d = make_variant(args.base, args.attention, args.placement, params, nc=args.nc)
    text = to_yaml(d, describe(args.base, args.attention, args.placement, params))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    model = build_model(d)
    print(layer_table(model.model), file=sys.stderr if not args.output else sys.stdout)
    total = sum(p.numel() for p in model.parameters())
    print(f"{total:,} parameters" + (f"; wrote {args.output}" if args.output else ""),
          file=sys.stderr if not args.output else sys.stdout)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from components.attention import ATTENTION_MODULES
    from components.modeling.variants import PLACEMENTS

    parser = argparse.ArgumentParser(prog="python -m components", description="Attention Lens tools")
    sub = parser.add_subparsers(dest="command", required=True)

    v = sub.add_parser("variant", help="write a model YAML for (base, attention, placement)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="placements:\n" + "\n".join(f"  {k:<17}{d}" for k, d in PLACEMENTS.items()))
    v.add_argument("--base", required=True, help="yolov5, yolov8 or yolo11, with an optional scale: yolov8n")
    v.add_argument("--attention", choices=list(ATTENTION_MODULES), help="omit for the plain base")
    v.add_argument("--placement", choices=list(PLACEMENTS), default="neck_outputs")
    v.add_argument("--param", action="append", metavar="NAME=VALUE", help="attention hyper-parameter (repeatable)")
    v.add_argument("--nc", type=int, help="number of classes (training on a data set overrides it anyway)")
    v.add_argument("-o", "--output", help="YAML file to write (default: stdout)")
    v.set_defaults(run=_variant)

    from components.experiments import data, evaluate, recost, train, zoo

    for module in (data, train, evaluate, recost, zoo):  # each adds its own subcommands
        module.add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
