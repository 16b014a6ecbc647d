"""``affectlab data summary|prepare DATA=<name> [EXP=<preset>] [key=value ...]``.

``summary``: what a datamodule will train and test on: rows and groups (subjects or clips) per split,
label base rates, class counts, the test set against the protocol's count and every item skipped while
parsing; ``--check-images`` also decodes every image and lists the undecodable ones.
``prepare``: write the aligned crops of every frame at the method's input size once
(``data_modules.prepared``; ``EXP=<preset>`` takes that preset's ``data`` settings), which frame
tasks then read instead of decoding full-resolution frames.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

NAME = "data"
HELP = "inspect a dataset (summary) or write its aligned crops once (prepare)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["summary", "prepare"], help="what to do")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="DATA=<name> plus datamodule keys (root=..., fold=2, task=...; 'data.' prefix optional)")
    parser.add_argument("--check-images", action="store_true", help="decode every image and report failures")
    parser.add_argument("--max-skipped", type=int, default=50, help="skipped items to print (all are counted)")


def parse_overrides(items: list[str]) -> tuple[str, dict[str, Any]]:
    name, exp, keys = None, None, {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        if key in ("DATA", "EXP"):
            name, exp = (value, exp) if key == "DATA" else (name, value)
            continue
        if key == "DATA_ROOT":
            key = "root"
        key = key[len("data."):] if key.startswith("data.") else key
        try:
            keys[key] = yaml.safe_load(value) if value != "" else None
        except yaml.YAMLError as err:
            raise ValueError(f"cannot parse {item!r}: {' '.join(str(err).split())}") from None
    if exp is not None:  # the preset's data section (image size, alignment), then the explicit keys
        from affectlab.config import compose

        data = dict(compose([f"EXP={exp}"] + ([f"DATA={name}"] if name else [])).data)
        name = data.pop("name")
        keys = {**data, **keys}
    if name is None:
        raise ValueError("DATA=<name> is required (e.g. DATA=bp4d)")
    return name, keys


def _format(summary: dict[str, Any], max_skipped: int) -> str:
    lines = [f"dataset {summary['dataset']}  task {summary['task']}  fold {summary['fold']}",
             f"root    {summary['root']}", "", f"{'split':<6} {'rows':>8} {'groups':>7}"]
    for split, info in summary["splits"].items():
        lines.append(f"{split:<6} {info['rows']:>8} {info['groups']:>7}")
    for split, info in summary["splits"].items():
        for key in ("positive_rate", "mean_intensity", "class_counts"):
            if key in info:
                values = "  ".join(f"{k} {v}" for k, v in info[key].items())
                lines.append(f"{split} {key.replace('_', ' ')}: {values}")
        if info.get("unlabelled_codes"):
            lines.append(f"{split} unlabelled (code 9) entries: {info['unlabelled_codes']}")
    if "test_set" in summary:
        from affectlab.engine.summary import format_test_set

        lines += [""] + format_test_set(summary["test_set"], summary.get("protocol"), summary["fold"])
    skipped = summary["skipped"]
    lines += ["", f"skipped while parsing: {len(skipped)}"]
    for rec in skipped[:max_skipped]:
        lines.append(f"  {rec['item']}: {rec['reason']}" + (f"  [{rec['file']}]" if rec["file"] else ""))
    if len(skipped) > max_skipped:
        lines.append(f"  … {len(skipped) - max_skipped} more")
    if "undecodable" in summary:
        lines += ["", f"undecodable images: {len(summary['undecodable'])}"]
        lines += [f"  {p}" for p in summary["undecodable"][:max_skipped]]
    return "\n".join(lines)


def check_images(dm: Any) -> list[str]:
    from data_modules.frames import read_rgb

    bad = []
    for split in ("train", "val", "test"):
        df = dm.manifest(split)
        paths = df["path"].tolist() if "path" in df else [p for fr in df["frames"] for p in fr]
        bad += [p for p in paths if read_rgb(p) is None]
    return sorted(set(bad))


def _prepare(dm) -> int:
    from data_modules.prepared import prepare

    if dm.eyes is None:
        print(f"affectlab data: {dm.cfg.name} has no landmarks to align by; nothing to prepare "
              f"(clip datasets use data.clip_cache=true)", file=sys.stderr)
        return 2
    folder = prepare(dm, progress=True)
    print(f"prepared {len(dm.full_manifest())} frames of {dm.cfg.name} at {dm.cfg.image_size}px in {folder}")
    return 0


def run(args: argparse.Namespace) -> int:
    from data_modules import create_datamodule
    from data_modules.frames import DataFormatError

    try:
        if args.max_skipped < 0:
            raise ValueError(f"--max-skipped must be >= 0, got {args.max_skipped}")
        name, keys = parse_overrides(args.overrides)
        dm = create_datamodule(name, **keys)
        if args.action == "prepare":
            return _prepare(dm)
        summary = dm.summary()
        if args.check_images:
            summary["undecodable"] = check_images(dm)
    except (ValueError, DataFormatError) as err:
        print(f"affectlab data: error: {err}", file=sys.stderr)
        return 2
    print(_format(summary, args.max_skipped))
    return 0
