"""The `llmlab` command line: `llmlab doctor`, the `llmlab zoo` group and `llmlab serve`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="llmlab", description="Companion tools of the llmlab course book."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)

    doctor = subparsers.add_parser(
        "doctor", help="Check libraries, GPU, quantization and bundled models."
    )
    doctor.add_argument(
        "--profile", default=None,
        help="Profile to judge the chapters under (default: as llmlab.setup()).",
    )
    doctor.add_argument(
        "--strict", action="store_true",
        help="Exit non-zero when a library or model is missing, not only broken.",
    )
    doctor.set_defaults(func=_run_doctor)

    _add_optional_parser(subparsers, "zoo")
    _add_optional_parser(subparsers, "serve")
    return parser


def _add_optional_parser(subparsers, name: str) -> None:
    # Imported here so that `llmlab doctor` works even when a subpackage fails
    # to import (a missing optional dependency, say); the failure is logged and
    # `llmlab NAME` is absent.
    try:
        module = importlib.import_module(f"llmlab.{name}.cli")
    except ImportError as error:
        logger.warning("`llmlab %s` is unavailable: %s", name, error)
        return
    module.add_parser(subparsers)


def _run_doctor(args: argparse.Namespace) -> int:
    from llmlab.doctor import doctor
    from llmlab.errors import LlmlabError

    try:
        report = doctor(profile=args.profile, strict=args.strict)
    except LlmlabError as error:
        print(f"llmlab doctor: {error}", file=sys.stderr)
        return 2
    print(report)
    return report.exit_code


def main(argv: list[str] | None = None) -> int:
    """Run the command line on `argv` (default `sys.argv[1:]`); return the exit code."""
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    from llmlab.runtime import quiet_noisy_output

    quiet_noisy_output()
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
