"""`python -m image_pipeline.score`: kept as the README names it; code in image_pipeline/sim/score.py."""

import sys

from image_pipeline.sim.score import main

if __name__ == "__main__":
    sys.exit(main())
