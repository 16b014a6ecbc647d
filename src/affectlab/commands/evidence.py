"""``affectlab evidence METHOD=m [DATA=… TRAINER=… EXP=… key=value …] [--seeds N] [--out DIR]``: the method's
default against its controls (random init, scratch, all-positive, chance, as the method declares them),
each trained arm over N seeds through the runner of ``affectlab train``. Prints the verdict table and
writes evidence.json, evidence.md and evidence.png to --out (default runs/evidence/<method>-<data>-<time>).
Running again with the same --out reuses the finished runs of the same config, whatever code trained them:
each reused run trained at another commit says so, and the table lists the commits of its runs."""
from __future__ import annotations

import argparse
import shlex

NAME = "evidence"
HELP = "a method's default against its controls over N seeds (table, verdicts, PNG)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", help="METHOD=…, DATA=…, TRAINER=…, EXP=…, dotted.key=value")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per trained arm: seed, seed+1, … (default 3)")
    parser.add_argument("--out", default=None,
                        help="folder for the runs and the table (default runs/evidence/<method>-<data>-<time>)")


def run(args: argparse.Namespace) -> int:
    from affectlab.evidence.collect import run_evidence
    from affectlab.evidence.report import markdown, write_json, write_outputs

    command = shlex.join(["affectlab", "evidence", *args.overrides, "--seeds", str(args.seeds),
                          *(["--out", args.out] if args.out else [])])
    result = run_evidence(args.overrides, seeds=args.seeds, out=args.out, command=command, on_update=write_json)
    paths = write_outputs(result)
    print(markdown(result))
    print(f"wrote {paths['md']}, {paths['json'].name} and {paths['png'].name}", flush=True)
    failed = any(r.get("error") for e in result["arms"] for r in e["runs"])
    return 1 if failed else 0
