"""Development tooling (benchmark, demo, process runner, compose check); not shipped in the image."""
