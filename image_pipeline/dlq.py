"""`python -m image_pipeline.dlq`: kept as the README names it; code in image_pipeline/kafka/dlq.py."""

import sys

from image_pipeline.kafka.dlq import main

if __name__ == "__main__":
    sys.exit(main())
