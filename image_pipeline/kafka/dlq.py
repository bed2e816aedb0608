"""Show what is in the dead-letter topic: python -m image_pipeline.kafka.dlq show [--limit N] [--json]."""

from __future__ import annotations

import argparse
import json
import sys
import time

from image_pipeline import cli
from image_pipeline.kafka.reading import read_recent
from image_pipeline.messages import DeadLetter, MessageError


def preview(data: bytes, width: int = 60) -> str:
    """A printable first glimpse of some bytes."""
    text = data[:width].decode("utf-8", errors="replace")
    text = "".join(ch if ch.isprintable() else "." for ch in text)
    return text + ("..." if len(data) > width else "")


def main(argv: list[str] | None = None) -> int:
    """Entry point of python -m image_pipeline.kafka.dlq."""
    parser = cli.base_parser("python -m image_pipeline.kafka.dlq", "Inspect the dead-letter topic.")
    parser.add_argument("command", choices=["show"])
    parser.add_argument("--limit", type=int, default=50, help="newest N dead letters (default 50; 0 = all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    args = parser.parse_args(argv)
    cli.setup_logging("WARNING" if args.log_level == "INFO" else args.log_level)
    return cli.run_main("dlq", lambda: _show(args))


def _show(args: argparse.Namespace) -> int:
    cfg = cli.load_from_args(args)
    topic = cfg.topics.dead_letter.name
    records = read_recent(cfg, topic, args.limit or None)
    if not args.json:
        print(f"{len(records)} dead letter(s) in topic {topic}")
    for record in records:
        try:
            letter = DeadLetter.decode(record.value)
        except MessageError as exc:
            print(f"offset {record.offset}: unreadable dead letter ({exc})")
            continue
        if args.json:
            print(json.dumps(letter.to_dict()))
            continue
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(letter.failed_at))
        print(f"{when}  {letter.client:<16} {letter.source_topic}[{letter.partition}]@{letter.offset}  "
              f"{letter.error_type}: {letter.error}")
        print(f"    value: {preview(letter.original_value())}")
        if letter.truncated:
            print(f"    (kept the first {len(letter.original_value())} of {letter.value_length} bytes; "
                  f"sha256 {letter.value_sha256})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
