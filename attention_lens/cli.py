"""Command line: ``python -m attention_lens <command>``. Each command lives in its own module;
this file only wires arguments to functions."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _variant(args) -> int:
    from attention_lens.modeling.integration import layer_table
    from attention_lens.modeling.models import build_model
    from attention_lens.modeling.variants import describe, make_variant, parse_params, to_yaml

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


#: Files over this size a Hugging Face Space keeps out of plain git (they need its large-file storage).
SPACE_FILE_BYTES = 10 * 2**20


def _analyze(args) -> int:
    from attention_lens.data.datasets import open_dataset
    from attention_lens.device import device_label, set_device
    from attention_lens.evaluation.report import evaluate_models
    from attention_lens.modeling.catalog import ModelStore, read_manifest
    from attention_lens.views.results import skipped_lines, write_report

    device = set_device(args.device)
    print(f"models run on {device_label(device)}" + (" (float16)" if args.half else ""), file=sys.stderr)
    split = open_dataset(args.data, args.split)
    entries = {e.name: e for e in read_manifest(args.weights)}
    store = ModelStore(list(entries.values()))
    models, by_path = {}, {}
    # The app's own store: a catalogue model as the Evaluate tab loads it, a checkpoint file as it
    # loads an upload (built the same way, fused, on the device, and named alike: its run name,
    # base and attention), so the CLI's numbers are the tab's.
    for item in args.models or store.names:
        if item in store.entries:
            models[item] = store.get(item)
            continue
        if not Path(item).is_file():
            raise FileNotFoundError(f"{item}: neither a model in {args.weights}/manifest.json nor a checkpoint file")
        name, model = store.upload(item)
        models[name] = model
        by_path[item] = name
    # As the app does: the baseline of the base most of the chosen attention models have, else a
    # checkpoint without attention.
    reference = by_path.get(args.reference, args.reference) or store.reference_for(models)
    if reference not in models:
        raise SystemExit(f"--reference {reference!r} is not among the evaluated models")
    ref_base = entries[reference].base if reference in entries else None
    done = {"last": -1}

    def progress(i, total, what):
        pct = 100 * i // total
        if pct // 10 != done["last"]:
            done["last"] = pct // 10
            print(f"{pct:3d}%  {what}", file=sys.stderr)

    localise = not args.no_localisation
    results = evaluate_models(models, split, reference, args.imgsz, args.confidence, args.rounds,
                              store.seed_groups(models), progress, localise, args.half)
    from attention_lens.evaluation.predict import ran_on

    results["ran on"] = {n: ran_on(m, localise, args.half) for n, m in models.items()}
    if args.save_detections:
        from attention_lens.evaluation.stored import merged_detections, save_detections
        from attention_lens.evaluation.predict import predictions_for_models

        Path(args.save_detections).parent.mkdir(parents=True, exist_ok=True)

        # Cached by evaluate_models: no new forwards.
        both = predictions_for_models(models, split, args.imgsz, localise=localise, half=args.half)
        dets, scores = {n: d for n, (d, _) in both.items()}, {n: s for n, (_, s) in both.items()}
        if args.merge and Path(args.save_detections).is_file():
            dets, scores = merged_detections(args.save_detections, split, args.imgsz, dets, scores)
        save_detections(args.save_detections, split, args.imgsz, dets, scores)
        if Path(args.save_detections).stat().st_size > SPACE_FILE_BYTES:
            print(f"note: {args.save_detections} is over 10 MB, which a Hugging Face Space keeps out of plain git; "
                  "store further models in another file of the same split (the app joins them)", file=sys.stderr)
    json_path, html_path = write_report(results, args.out, "results.json", "report.html")
    for line in skipped_lines(results):
        print(f"skipped {line}")
    print(f"reference: {reference}")
    for name, m in results["models"].items():
        b = results["against reference"].get(name, {}).get("bootstrap", {}).get("mAP50-95")
        other = name in entries and ref_base and entries[name].base != ref_base
        print(f"{name:40s} mAP50-95 {m['mAP50-95']:.3f}" + (f"  Δ {b['delta']:+.3f} [{b['low']:+.3f}, "
                                                           f"{b['high']:+.3f}]  {b['verdict']}" if b else "  (reference)")
              + (f"  (another base than the reference's {ref_base})" if other else ""))
        why = results["against reference"].get(name, {}).get("why")
        if why:
            print(f"    why (TIDE): {why.split(': ', 1)[-1]}")
    print(f"wrote {json_path} and {html_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from attention_lens.attention import ATTENTION_MODULES
    from attention_lens.modeling.variants import PLACEMENTS

    parser = argparse.ArgumentParser(prog="python -m attention_lens", description="Attention Lens tools")
    sub = parser.add_subparsers(dest="command", required=True)

    v = sub.add_parser("variant", help="write a model YAML for (base, attention, placement)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="placements:\n" + "\n".join(f"  {k:<17}{d}" for k, d in PLACEMENTS.items()))
    v.add_argument("--base", required=True, help="yolov5, yolov8, yolo11, yolo12 or yolo26, with an optional scale: yolov8n")
    v.add_argument("--attention", choices=list(ATTENTION_MODULES), help="omit for the plain base")
    v.add_argument("--placement", choices=list(PLACEMENTS), default="neck_outputs")
    v.add_argument("--param", action="append", metavar="NAME=VALUE", help="attention hyper-parameter (repeatable)")
    v.add_argument("--nc", type=int, help="number of classes (training on a data set overrides it anyway)")
    v.add_argument("-o", "--output", help="YAML file to write (default: stdout)")
    v.set_defaults(run=_variant)

    a = sub.add_parser("analyze", help="evaluate models over a labelled split against a reference: "
                                       "metrics, found/missed objects, bootstrap intervals (JSON + HTML report)")
    a.add_argument("--data", required=True, help="data.yaml, a folder holding one or a VOC tree, or a zip of either")
    a.add_argument("--split", default="test", choices=["train", "val", "test"])
    a.add_argument("--models", nargs="*", help="names from --weights' manifest or checkpoint files (default: the zoo)")
    a.add_argument("--reference", help="model the others are compared with (default: the baseline of the base "
                                          "most of the chosen attention models have)")
    a.add_argument("--weights", default="weights")
    a.add_argument("--imgsz", type=int, default=320)
    a.add_argument("--confidence", type=float, default=0.25, help="threshold for P, R and found objects")
    a.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds")
    a.add_argument("--out", required=True, help="folder for results.json and report.html")
    a.add_argument("--no-localisation", action="store_true",
                   help="skip the attention localisation scores (energy in boxes, pointing game)")
    a.add_argument("--save-detections", metavar="FILE.json.gz",
                   help="also store the split's boxes and every model's detections (numbers only), "
                        "as weights/evaluation/ holds them for the zoo")
    a.add_argument("--device", help="auto (the first GPU torch sees, else the CPU), cpu, cuda or cuda:N "
                                     "(default: $ATTENTION_LENS_DEVICE, else auto)")
    a.add_argument("--half", action="store_true",
                   help="on a GPU, the pass in float16 (labelled in the JSON; its mAP difference is in "
                        "docs/PERFORMANCE.md)")
    a.add_argument("--merge", action="store_true",
                   help="with --save-detections: keep the other models already stored in that file (same split "
                        "and image size), so only new models need a pass")
    a.set_defaults(run=_analyze)

    from attention_lens.data import convert
    from attention_lens.experiments import evaluate, recost, train, zoo

    for module in (convert, train, evaluate, recost, zoo):  # each adds its own subcommands
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
