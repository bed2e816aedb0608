"""`python -m image_pipeline.broker`: kept as the README names it; code in image_pipeline/kafka/broker.py."""

import sys

from image_pipeline.kafka.broker import main

if __name__ == "__main__":
    sys.exit(main())
