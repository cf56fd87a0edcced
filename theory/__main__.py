"""``python -m theory [--paper P] [--list] [--strict]``: run the theory checks and print the table."""

from __future__ import annotations

import argparse
import logging
import sys

from theory.registry import PAPERS, all_checks, format_table, run_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m theory",
        description="Run the numerical checks of the papers' theoretical claims and print a Markdown table "
        "(paper, claim, check, result, holds). Exit code 0 even when a check fails, unless --strict.",
    )
    parser.add_argument("--paper", choices=PAPERS, help="only the checks of this paper")
    parser.add_argument("--list", action="store_true", help="list the checks without running them")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any check fails or raises")
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if args.list:
        print("| paper | claim | check |\n|---|---|---|")
        for c in all_checks(args.paper):
            print(f"| {c.paper} | {c.claim} | {c.name} |")
        return 0
    rows = run_all(args.paper)
    print(format_table(rows))
    n_ok = sum(r.holds is True for r in rows)
    print(f"\n{n_ok}/{len(rows)} checks hold.")
    if args.strict and n_ok < len(rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
