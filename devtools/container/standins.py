"""The Dockerfile's base images: pulled when a registry answers, else built here as stand-ins, and cached.

- python:3.11-slim-bookworm: Debian bookworm from debootstrap (minbase) with Debian's Python 3.11,
  python3-venv and python3-pip, `python` and `pip` in /usr/local/bin, PIP_BREAK_SYSTEM_PACKAGES=1
  (Debian's pip refuses to install into the system Python otherwise), the host's extra CA
  certificates (package downloads here go through a proxy that needs them) and slim's dpkg
  excludes (no docs, man pages or locales).
- apache/kafka:4.1.1: FROM scratch with /opt/kafka/libs, the jars of the project's own broker
  launcher (Maven's copy of image_pipeline/resources/kafka-pom.xml), the one folder the image copies.

A stand-in carries the label STANDIN_LABEL set to a hash of its recipe; a later run reuses it while
the recipe is unchanged, and tries a real pull first each time, which fails at once here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]

from devtools.container.engine import STATE_DIR, Podman, StepError, tail
from image_pipeline.kafka import runtime

STANDIN_LABEL = "org.image-pipeline.stand-in"
HERE = Path(__file__).resolve().parent
KAFKA_CONTAINERFILE = HERE / "kafka-standin.Containerfile"
DEBIAN_MIRROR = os.environ.get("PIPELINE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
PULL_TIMEOUT_S = 300

# As in Debian's slim images: installed packages leave out docs, man pages and translations.
DPKG_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
"""

# The sources of the real python:*-bookworm images, so that `apt-get install` there finds the
# same security updates.
DEBIAN_SOURCES = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

PYTHON_IMPORT_CHANGES = [
    "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    "ENV PIP_BREAK_SYSTEM_PACKAGES=1",
    'CMD ["python3"]',
]


def qualified(name: str) -> str:
    """A Docker Hub short name as podman stores it: python:3 -> docker.io/library/python:3."""
    first = name.split("/", 1)[0]
    if "/" in name and ("." in first or ":" in first or first == "localhost"):
        return name
    return f"docker.io/{name}" if "/" in name else f"docker.io/library/{name}"


def base_images(dockerfile: Path) -> list[str]:
    """The images the Dockerfile's stages start FROM (not its own stage names), qualified."""
    parser = DockerfileParser(path=str(dockerfile))
    stages = {line["value"].split()[-1].lower() for line in parser.structure
              if line["instruction"] == "FROM" and " as " in line["value"].lower()}
    return sorted({qualified(image) for image in parser.parent_images if image.lower() not in stages | {"scratch"}})


def recipe_hash() -> str:
    """What a stand-in is built from; a change rebuilds it."""
    digest = hashlib.sha256()
    for path in (Path(__file__), KAFKA_CONTAINERFILE, runtime.POM):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_base_images(podman: Podman, dockerfile: Path) -> dict[str, str]:
    """Make every base image of the Dockerfile available; {image: how it was obtained}."""
    builders: dict[str, Callable[[Podman, str, str], None]] = {
        qualified("python:3.11-slim-bookworm"): build_python_standin,
        qualified(f"apache/kafka:{runtime.KAFKA_VERSION}"): build_kafka_standin,
    }
    wanted = recipe_hash()
    report = {}
    for image in base_images(dockerfile):
        present = podman.exists(image)
        stand_in = podman.label(image, STANDIN_LABEL) if present else ""
        if present and not stand_in:
            report[image] = "the real image, cached"
        elif _pull(podman, image):
            report[image] = "the real image, pulled"
        elif stand_in == wanted:
            report[image] = "stand-in, cached"
        elif image in builders:
            began = time.monotonic()
            builders[image](podman, image, wanted)
            report[image] = f"stand-in, built in {time.monotonic() - began:.0f} s"
        else:
            raise StepError(f"{image} cannot be pulled and has no stand-in recipe")
    return report


def _pull(podman: Podman, image: str) -> bool:
    result = podman.run("pull", "--quiet", image, timeout=PULL_TIMEOUT_S, check=False)
    return result.returncode == 0


# ---------------------------------------------------------------- python:3.11-slim-bookworm


def build_python_standin(podman: Podman, image: str, recipe: str) -> None:
    """debootstrap bookworm with Python 3.11 and pip, then podman import it under the real image's name."""
    work_root = STATE_DIR / "tmp"
    work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_root) as work:
        rootfs = Path(work) / "rootfs"
        podman.call(
            ["debootstrap", "--variant=minbase", "--include=python3,python3-venv,python3-pip,ca-certificates",
             "bookworm", str(rootfs), DEBIAN_MIRROR],
            timeout=900,
        )
        slim_down(rootfs)
        add_host_certificates(podman, rootfs)
        for name, target in (("python", "/usr/bin/python3"), ("pip", "/usr/bin/pip3")):
            (rootfs / "usr/local/bin" / name).symlink_to(target)
        tarball = Path(work) / "rootfs.tar"
        podman.call(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."], timeout=300)
        changes = [*PYTHON_IMPORT_CHANGES, f"LABEL {STANDIN_LABEL}={recipe}"]
        podman.run("import", *(arg for change in changes for arg in ("--change", change)), str(tarball), image)


def slim_down(rootfs: Path) -> None:
    """Debian slim's dpkg excludes for later installs, and what debootstrap already put there."""
    (rootfs / "etc/dpkg/dpkg.cfg.d/docker").write_text(DPKG_EXCLUDES, encoding="utf-8")
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(DEBIAN_SOURCES, encoding="utf-8")
    for pattern in ("usr/share/man/*", "usr/share/info/*", "usr/share/locale/*", "var/cache/apt/archives/*.deb",
                    "var/cache/apt/*.bin", "var/lib/apt/lists/*"):
        for path in rootfs.glob(pattern):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    for doc in (rootfs / "usr/share/doc").glob("*"):
        if doc.is_dir() and not doc.is_symlink():
            for item in doc.iterdir():
                if item.name != "copyright":
                    shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()


def add_host_certificates(podman: Podman, rootfs: Path) -> None:
    """The host's extra CA certificates, which pip and apt need to reach the registries through this network."""
    if not HOST_CA_DIR.is_dir() or not any(HOST_CA_DIR.rglob("*.crt")):
        return
    shutil.copytree(HOST_CA_DIR, rootfs / "usr/local/share/ca-certificates", dirs_exist_ok=True)
    result = subprocess.run(["chroot", str(rootfs), "update-ca-certificates"], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        raise StepError(f"update-ca-certificates in the stand-in failed\n{tail(result.stdout + result.stderr)}")


# ---------------------------------------------------------------- apache/kafka


def build_kafka_standin(podman: Podman, image: str, recipe: str) -> None:
    """FROM scratch with /opt/kafka/libs: the broker launcher's Maven-fetched jars."""
    saved = os.environ.pop("KAFKA_HOME", None)  # the cache, not whatever KAFKA_HOME points at
    try:
        libs = runtime.libs_dir()
    finally:
        if saved is not None:
            os.environ["KAFKA_HOME"] = saved
    podman.run(
        "build", "--format", "docker", "--label", f"{STANDIN_LABEL}={recipe}",
        "-f", str(KAFKA_CONTAINERFILE), "-t", image, str(libs.parent),
    )
