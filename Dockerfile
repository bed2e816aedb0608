# Image surveillance pipeline: Apache Kafka 4.1.1 plus the Python clients, in one container.
#
# Build:  docker build -t image-pipeline .          (or: docker compose build)
# Run:    docker compose up -d                       (see README.md, "Docker")
#
# Kafka comes from the official apache/kafka image. That image is Alpine (musl), where the
# opencv-python-headless wheels do not install, so only its /opt/kafka is copied into a
# Debian (glibc) Python image. Kafka is started by image_pipeline.kafka.broker, the same launcher
# the test suite runs natively against an /opt/kafka-like layout (tests/test_container.py).

FROM apache/kafka:4.1.1 AS kafka

FROM python:3.11-slim-bookworm

# Owner of the data folders; set these to your own `id -u` / `id -g` when you bind-mount
# the data folders from the host, so that files written there are yours.
ARG PIPELINE_UID=1000
ARG PIPELINE_GID=1000

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/pipeline \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KAFKA_HOME=/opt/kafka \
    PIPELINE_KAFKA_DIR=/var/lib/pipeline-kafka \
    KAFKA_HEAP="-Xmx512m -Xms256m"

# Java 17 is the runtime the native tests use (Debian 12's openjdk-17). The pin keeps the
# major version; the patch level floats because Debian drops superseded security builds.
# Slim images delete /usr/share/man, where the JRE's post-install script links its man pages.
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends "openjdk-17-jre-headless=17.0.*" \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid "${PIPELINE_GID}" pipeline \
    && useradd --no-log-init --uid "${PIPELINE_UID}" --gid pipeline --create-home --shell /bin/bash pipeline

COPY --from=kafka /opt/kafka /opt/kafka

WORKDIR /pipeline

# Dependencies first, from the pins in pyproject.toml, so that code changes reuse this layer.
# The package itself is not pip-installed: it runs from /pipeline, where config.yaml and
# the data folders live (image_pipeline.config.PROJECT_ROOT).
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The code stays owned by root; only the data folders and Kafka's state are writable.
COPY . ./
RUN mkdir -p image_original image_database image_event_database image_event_alerts "${PIPELINE_KAFKA_DIR}" \
    && chown pipeline:pipeline image_original image_database image_event_database image_event_alerts \
        "${PIPELINE_KAFKA_DIR}"

# Numeric, so that "runs as non-root" can be verified without reading /etc/passwd.
USER ${PIPELINE_UID}:${PIPELINE_GID}

EXPOSE 9092 5000

# Ready means the broker answers a metadata request, not that the port is open.
HEALTHCHECK --interval=15s --timeout=10s --start-period=90s --retries=5 \
    CMD ["python", "-m", "image_pipeline.kafka.broker", "status", "--port", "9092"]

# Kafka runs in the foreground (the launcher exec()s java, which receives SIGTERM itself)
# and logs to stdout. Clients in this container and on the host use localhost:9092; other
# containers of docker-compose.yml use the second listener, pipeline:19092.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "image_pipeline.kafka.broker", "start", "--foreground", "--bind", "0.0.0.0", "--advertised-host", "localhost", "--internal-listener", "pipeline:19092", "--port", "9092"]
