# One entry point for set-up, tests, the demo and the benchmark.
# Each target creates .venv and fetches Kafka when they are missing.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test test-cluster container-test demo bench lint kafka broker-start broker-stop clean-data

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

kafka: $(STAMP)
	@$(PY) -m image_pipeline.kafka.broker fetch

lint: $(STAMP)
	$(VENV)/bin/ruff check image_pipeline devtools tests *.py
	$(VENV)/bin/mypy image_pipeline devtools tests *.py
	$(VENV)/bin/hadolint Dockerfile
	$(PY) -m devtools.compose_check docker-compose.yml

# Starts its own broker on a free port, runs the suite, stops the broker even on failure.
test: kafka lint
	@port=$$($(PY) -m image_pipeline.kafka.broker free-port); \
	$(PY) -m image_pipeline.kafka.broker start --fresh --port $$port || exit 1; \
	trap '$(PY) -m image_pipeline.kafka.broker stop --purge --port '$$port EXIT; \
	KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$$port PIPELINE_TEST_BROKER_PORT=$$port \
		$(PY) -m pytest $(PYTEST_ARGS)
	@if ! command -v podman >/dev/null 2>&1; then echo "podman is not installed: container-test skipped (.ci/run installs it)"; \
	elif [ "$$(id -u)" != 0 ]; then echo "container-test needs root for podman's own image store: skipped (run make container-test as root)"; \
	else $(MAKE) --no-print-directory container-test; fi

# A 3-broker KRaft cluster of the tests' own (tests/test_cluster*.py): broker loss, inline transport.
test-cluster: kafka
	PIPELINE_TEST_CLUSTER=1 $(PY) -m pytest -q $(wildcard tests/test_cluster*.py)

# Builds the image with podman and walks the README's Docker section (devtools/container/).
container-test: kafka
	$(PY) -m devtools.container

demo: kafka
	$(PY) -m devtools.demo

bench: kafka
	$(PY) -m devtools.bench --json bench-results/bench.json
	$(PY) -m devtools.bench_cluster --json bench-results/cluster.json

clean-data:
	./clean_image_dirs.sh
