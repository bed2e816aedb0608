# Image surveillance pipeline: Apache Kafka 4.1.1 plus the Python clients, in one container.
#
# Build:  docker build -t image-pipeline .          (or: docker compose build)
# Run:    docker compose up -d                       (see README.md, "Docker")
#
# Kafka comes from the official apache/kafka image. That image is Alpine (musl), where the
# opencv-python-headless wheels do not install, so only its /opt/kafka/libs is copied into a
# Debian (glibc) Python image. Kafka is started by image_pipeline.kafka.broker, the same launcher
# the test suite runs natively; `make container-test` builds and runs this file with podman.

FROM apache/kafka:4.1.1 AS kafka

# A Java 17 runtime cut down with jlink to the modules Kafka's jars use (jdeps on libs/):
# about 50 MB instead of the 220 MB that openjdk-17-jre-headless and its libraries take.
# Debian's JDK is the one the native tests run; the patch level floats because Debian drops
# superseded security builds. Slim images delete /usr/share/man, where its post-install links.
FROM python:3.11-slim-bookworm AS jre
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends "openjdk-17-jdk-headless=17.0.*" \
    && rm -rf /var/lib/apt/lists/*
RUN jlink --output /opt/java --strip-java-debug-attributes --no-header-files --no-man-pages --compress=2 \
        --add-modules java.base,java.compiler,java.desktop,java.logging,java.management,java.naming,java.rmi,java.scripting,java.security.jgss,java.security.sasl,java.sql,java.xml,jdk.crypto.ec,jdk.management,jdk.unsupported

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/pipeline \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    JAVA_HOME=/opt/java \
    PATH=/opt/java/bin:$PATH \
    KAFKA_HOME=/opt/kafka \
    PIPELINE_KAFKA_DIR=/var/lib/pipeline-kafka \
    KAFKA_HEAP="-Xmx512m -Xms256m"

COPY --from=jre /opt/java /opt/java
# The launcher needs only the jars; Kafka's scripts, configs and docs stay behind.
COPY --from=kafka /opt/kafka/libs /opt/kafka/libs

WORKDIR /pipeline

# Dependencies first, from the pins in pyproject.toml, so that code changes and other user ids
# reuse this layer. The package itself is not pip-installed: it runs from /pipeline, where
# config.yaml and the data folders live (image_pipeline.config.PROJECT_ROOT).
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Owner of the data folders; set these to your own `id -u` / `id -g` when you bind-mount
# the data folders from the host, so that files written there are yours. An id the image
# already has (gid 20 is dialout here and staff on macOS, 100 is users, 0 is root) is reused
# rather than created twice.
ARG PIPELINE_UID=1000
ARG PIPELINE_GID=1000
RUN if ! getent group "${PIPELINE_GID}" >/dev/null; then groupadd --gid "${PIPELINE_GID}" pipeline; fi \
    && if ! getent passwd "${PIPELINE_UID}" >/dev/null; then \
        useradd --no-log-init --uid "${PIPELINE_UID}" --gid "${PIPELINE_GID}" --create-home --shell /bin/bash pipeline; \
    fi

# The code stays owned by root; only the data folders and Kafka's state are writable.
COPY . ./
RUN mkdir -p image_original image_database image_event_database image_event_alerts "${PIPELINE_KAFKA_DIR}" \
    && chown "${PIPELINE_UID}:${PIPELINE_GID}" image_original image_database image_event_database \
        image_event_alerts "${PIPELINE_KAFKA_DIR}"

# Numeric, so that "runs as non-root" can be verified without reading /etc/passwd.
USER ${PIPELINE_UID}:${PIPELINE_GID}

EXPOSE 9092 5000

# Ready means the broker answers a metadata request, not that the port is open. Client
# services of docker-compose.yml run this image too and switch the check off there.
HEALTHCHECK --interval=15s --timeout=10s --start-period=90s --retries=5 \
    CMD ["python", "-m", "image_pipeline.kafka.broker", "status", "--port", "9092"]

# Kafka runs in the foreground (the launcher exec()s java, which receives SIGTERM itself)
# and logs to stdout. Clients in this container and on the host use localhost:9092; other
# containers of docker-compose.yml use the second listener, pipeline:19092.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "image_pipeline.kafka.broker", "start", "--foreground", "--bind", "0.0.0.0", "--advertised-host", "localhost", "--internal-listener", "pipeline:19092", "--port", "9092"]
