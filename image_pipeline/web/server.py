"""Command line of the web server: options, config, then Flask's threaded server."""

from __future__ import annotations

import logging

from kafka.errors import KafkaError

from image_pipeline.cli import base_parser, ensure_data_dirs, load_from_args, run_main, setup_logging
from image_pipeline.kafka.clients import ensure_topics
from image_pipeline.web import create_app

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve until Ctrl-C."""
    parser = base_parser("web_server.py", "Web server: upload, messages, dashboard and event viewer.")
    parser.add_argument("--port", type=int, default=None, help="port to listen on (default: config web.port, 5000)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; the container uses 0.0.0.0)"
    )
    args = parser.parse_args(argv)

    def body() -> int:
        setup_logging(args.log_level)
        cfg = load_from_args(args)
        port = args.port if args.port is not None else cfg.web.port
        ensure_data_dirs(cfg)
        try:
            ensure_topics(cfg)
        except KafkaError as exc:
            # The pages that read the disk still work; upload answers 503 until Kafka is back.
            logger.warning("Kafka at %s not ready (%s); starting anyway", cfg.kafka.bootstrap_servers, exc)
        app = create_app(cfg)
        logger.info(
            "web server on http://%s:%d kafka=%s data=%s upload_limit=%d bytes",
            args.host, port, cfg.kafka.bootstrap_servers, cfg.data_dir, cfg.web.max_upload_bytes,
        )
        try:
            app.run(host=args.host, port=port, threaded=True, debug=False, use_reloader=False)
        finally:
            app.extensions["image_pipeline"].close()
        return 0

    return run_main("web_server.py", body)
