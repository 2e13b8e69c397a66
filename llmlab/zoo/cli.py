"""The `llmlab zoo` command group: generate the world data, train and evaluate."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `zoo` and its subcommands on the top-level `llmlab` parser.

    Args:
        subparsers: the object returned by `parser.add_subparsers()` of the
            top-level parser. Each subcommand stores its handler in `func`.
    """
    zoo = subparsers.add_parser("zoo", help="Build, train and evaluate the tiny models.")
    commands = zoo.add_subparsers(dest="zoo_command", required=True)

    data = commands.add_parser("data", help="Export the toy world as JSONL files.")
    data.add_argument("out_dir", type=Path, help="Folder to write the JSONL files to.")
    data.add_argument("--seed", type=int, default=0, help="World seed (default 0).")
    data.set_defaults(func=_reporting_errors(_run_data))

    train = commands.add_parser("train", help="Train the tokenizer and a model.")
    train.add_argument("stage", choices=["base", "chat"], help="Which model to train.")
    train.add_argument("--out", type=Path, default=None,
                       help="Output folder (default: the shipped model folder).")
    train.add_argument("--num-steps", type=int, default=None,
                       help="Optimizer steps (default: the stage's full run).")
    train.add_argument("--seed", type=int, default=0, help="World and training seed.")
    train.set_defaults(func=_reporting_errors(_run_train))

    evaluate = commands.add_parser("eval", help="Evaluate the shipped models, print JSON.")
    evaluate.add_argument("--base", type=Path, default=None, help="Base model folder.")
    evaluate.add_argument("--chat", type=Path, default=None, help="Chat model folder.")
    evaluate.add_argument("--limit", type=int, default=None,
                          help="Items per evaluation set (default: all).")
    evaluate.set_defaults(func=_reporting_errors(_run_eval))
    return zoo


def _reporting_errors(handler):
    """Wrap `handler` so a package error prints one line and exits with status 2."""

    def run(args: argparse.Namespace) -> int:
        from llmlab.errors import LlmlabError

        try:
            return handler(args)
        except LlmlabError as error:
            print(f"llmlab zoo: {error}", file=sys.stderr)
            return 2

    return run


def _run_data(args: argparse.Namespace) -> int:
    from llmlab import world

    paths = world.export(world.build(seed=args.seed), args.out_dir)
    for name, path in sorted(paths.items()):
        print(f"{name}: {path}")
    return 0


def _run_train(args: argparse.Namespace) -> int:
    from llmlab.zoo import train

    if args.stage == "base":
        out = train.train_base(out_dir=args.out, num_steps=args.num_steps, seed=args.seed)
    else:
        out = train.train_chat(out_dir=args.out, num_steps=args.num_steps, seed=args.seed)
    print(out)
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    from llmlab.zoo import evaluate

    report = evaluate.evaluate_zoo(base_dir=args.base, chat_dir=args.chat, limit=args.limit)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
