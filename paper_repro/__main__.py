"""``python -m paper_repro {list,run,claims,report,bench}``: the command line (thin; see --help)."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import textwrap
from pathlib import Path
from typing import Any

from paper_repro.registry import PAPERS, all_experiments


def _short(text: str, width: int = 100) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _experiment_listing() -> str:
    exps = all_experiments()
    if not exps:
        return "registered experiments: (none)"
    width = max(len(e.name) for e in exps)
    lines = ["registered experiments:"]
    lines += [f"  {e.name:<{width}}  [{e.paper}] {_short(e.summary)}" for e in exps]
    return "\n".join(lines)


def _parse_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set expects KEY=VALUE (VALUE as JSON or a string). Found {text!r}.")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def build_parser() -> argparse.ArgumentParser:
    epilog = _experiment_listing() + textwrap.dedent(
        """

        examples:
          python -m paper_repro list
          python -m paper_repro run EXPERIMENT --profile quick --seeds 0 1 2
          python -m paper_repro claims --profile quick --strict
          python -m paper_repro report --profile quick --out report
          python -m paper_repro bench --help
        """
    )
    parser = argparse.ArgumentParser(
        prog="python -m paper_repro",
        description="Reproduce the NMT, EMTL, CSO and MT2O papers: run experiments (resumable), check the "
        "papers' claims, write a report, benchmark the methods.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{list,run,claims,report,bench}")

    p = sub.add_parser("list", help="list the registered experiments and claims")
    p.add_argument("--paper", choices=PAPERS, help="only this paper")

    p = sub.add_parser(
        "run",
        help="run one experiment over seeds (resumable) and print its summary",
        description="Run the missing seeds of an experiment, aggregate them into OUT/PROFILE/EXPERIMENT.json "
        "and print mean ± se per quantity. Completed seeds are read back; an interrupted seed resumes from "
        "its checkpoint. Stored seeds with other settings stop the run unless --fresh.",
    )
    p.add_argument("experiment", help="experiment name (see `python -m paper_repro list`)")
    p.add_argument("--profile", default="quick", help="profile: quick (CI, minutes) or full (hours / GPU)")
    p.add_argument("--seeds", type=int, nargs="+", help="training seeds (default: the profile's, else 0 1 2)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--out", type=Path, default=Path("runs"), help="output folder (default runs/)")
    p.add_argument("--fresh", action="store_true", help="discard stored seeds and checkpoints of this experiment")
    p.add_argument("--threads", type=int, help="torch.set_num_threads before running")
    p.add_argument("--set", dest="overrides", type=_parse_override, action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (dotted for nested; VALUE parsed as JSON); repeatable")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")

    p = sub.add_parser(
        "claims",
        help="check the papers' claims and print the table",
        description="Run (or load) the experiments behind the claims and print a Markdown table: claim, paper, "
        "statement, paper's figure, ours, holds. Exit code 0 even when claims fail, unless --strict.",
    )
    p.add_argument("--profile", default="quick", help="profile of the experiments (default quick)")
    p.add_argument("--paper", choices=PAPERS, help="only the claims of this paper")
    p.add_argument("--out", type=Path, default=Path("runs"), help="runs folder (default runs/)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--no-run", action="store_true", help="only use stored results; never run experiments")
    p.add_argument("--strict", action="store_true", help="exit 1 if any claim does not hold as expected")

    p = sub.add_parser(
        "report",
        help="write report/index.md and index.html (figures, tables, claims, theory)",
        description="Run or load every registered experiment of the profile and write a static report.",
    )
    p.add_argument("--profile", default="quick", help="profile (default quick)")
    p.add_argument("--out", type=Path, default=Path("report"), help="report folder (default report/)")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="runs folder (default runs/)")
    p.add_argument("--paper", choices=PAPERS, action="append", help="only these papers (repeatable)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--no-run", action="store_true", help="only use stored results")
    p.add_argument("--no-theory", action="store_true", help="leave out the theory table")

    sub.add_parser("bench", help="benchmark harness (arguments forwarded to paper_repro.bench.main)", add_help=False)
    return parser


def _bench(argv: list[str]) -> int:
    try:  # import_module reads sys.modules (``import a.b as c`` would read the attribute on ``a``)
        bench = importlib.import_module("paper_repro.bench")
    except ModuleNotFoundError as exc:
        if exc.name != "paper_repro.bench":
            raise
        print("The benchmark harness (paper_repro/bench.py) is not available in this checkout.", file=sys.stderr)
        return 2
    rc = bench.main(argv)
    return int(rc or 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `bench` forwards everything after it untouched (including --help).
    for i, a in enumerate(argv):
        if a == "bench":
            return _bench(argv[i + 1 :])
        if not a.startswith("-"):
            break
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")

    if args.command == "list":
        from paper_repro.claims import all_claims

        print("| experiment | paper | profiles | description |\n|---|---|---|---|")
        for e in all_experiments(args.paper):
            print(f"| {e.name} | {e.paper} | {', '.join(e.profiles)} | {e.summary} |")
        claims = all_claims(args.paper)
        print(f"\n{len(claims)} claim(s):")
        for c in claims:
            print(f"  {c.id} [{c.paper}] ({c.experiment}): {c.statement}")
        return 0

    if args.command == "run":
        from paper_repro.runner import run_experiment, summary_table

        res = run_experiment(
            args.experiment, profile=args.profile, seeds=args.seeds, device=args.device, out_dir=args.out,
            progress=not args.no_progress, overrides=dict(args.overrides) or None, fresh=args.fresh,
            threads=args.threads,
        )
        print(f"{res['experiment']} [{res['profile']}], seeds {res['seeds']} "
              f"(run now {res['seeds_run']}, read back {res['seeds_resumed']}); "
              f"wall-clock {res['wall_clock_s']:.1f} s; -> {args.out / args.profile / (args.experiment + '.json')}")
        if res["summary"]:
            print(summary_table(res))
        return 0

    if args.command == "claims":
        from paper_repro.claims import evaluate, format_table

        rows = evaluate(profile=args.profile, run_missing=not args.no_run, out_dir=args.out, device=args.device,
                        paper=args.paper)
        print(format_table(rows))
        n_hold = sum(r.holds is True for r in rows)
        print(f"\n{n_hold}/{len(rows)} claims hold (profile {args.profile}).")
        unexpected = [r.id for r in rows if r.holds is not None and r.expect_holds is not None
                      and r.holds != r.expect_holds]
        missing = [r.id for r in rows if r.holds is None]
        unrecorded = [r.id for r in rows if r.holds is not None and r.expect_holds is None]
        if unexpected:
            print(f"Not as expected: {', '.join(unexpected)}")
        if missing:
            print(f"Not evaluated (no results, or an error): {', '.join(missing)}")
        if unrecorded:
            print(f"No outcome recorded for profile {args.profile}: {', '.join(unrecorded)}")
        return 1 if args.strict and (unexpected or missing) else 0

    if args.command == "report":
        from paper_repro.report import write_report

        index = write_report(profile=args.profile, out=args.out, papers=args.paper, out_dir=args.runs,
                             device=args.device, run_missing=not args.no_run, include_theory=not args.no_theory)
        print(f"report written to {index} (and {index.with_suffix('.html')})")
        return 0
    raise AssertionError(args.command)  # unreachable: argparse restricts the commands


if __name__ == "__main__":
    sys.exit(main())
