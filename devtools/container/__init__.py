"""The container test: build the image with podman and walk the README's Docker section as a user would.

Run it with `make container-test` or `python -m devtools.container`. The modules:
- engine: podman with this test's own configuration and image storage (the machine's is left alone);
- standins: the base images, pulled when a registry answers, else local stand-ins, cached;
- readme: the README's Docker commands, read from the README and turned into podman commands;
- flow: one container, the README's `docker run` and `docker exec` lines, then stop;
- compose: `docker compose --profile clients up` through podman's Docker-compatible socket;
- drive: the steps in order, timed, with one line per failure.
"""
