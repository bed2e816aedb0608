"""Create the pipeline's topics from config.yaml: python -m image_pipeline.kafka.topics."""

from __future__ import annotations

import argparse
import sys

from image_pipeline import cli
from image_pipeline.kafka.clients import ensure_topics


def main(argv: list[str] | None = None) -> int:
    """Create missing topics; running it again does nothing."""
    parser = cli.base_parser("python -m image_pipeline.kafka.topics", "Create the configured topics if missing.")
    args = parser.parse_args(argv)
    cli.setup_logging(args.log_level)
    return cli.run_main("topics", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    cfg = cli.load_from_args(args)
    created = ensure_topics(cfg)
    for topic in cfg.topics.all():
        state = "created" if topic.name in created else "exists"
        print(f"{topic.name:<24} partitions={topic.partitions}  {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
