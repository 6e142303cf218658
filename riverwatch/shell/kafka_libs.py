"""Apache Kafka's jars, fetched once by Maven into a cache.

The jars (``org.apache.kafka:kafka_2.13`` with its runtime dependencies and a log4j2 binding)
are fetched into ``~/.cache/riverwatch/kafka-<version>/libs`` (or under
``RIVERWATCH_KAFKA_CACHE``); no jar is ever part of the repository.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from riverwatch.core.errors import ServiceUnavailable

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.25.3"
# Kafka's own jars name slf4j-api 1.7, which the log4j2 binding for slf4j 2 does not serve;
# slf4j 2 keeps the 1.7 API, so pinning it here gives Kafka's loggers a working binding.
SLF4J_VERSION = "2.0.17"
FETCH_TIMEOUT_S = 900.0

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>riverwatch</groupId><artifactId>kafka-broker-libs</artifactId><version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId>
      <version>{slf4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId>
      <version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version></dependency>
  </dependencies>
</project>
"""


def cache_dir(version: str = KAFKA_VERSION) -> Path:
    """Where the jars of ``version`` are kept (``RIVERWATCH_KAFKA_CACHE`` overrides the root)."""
    root = os.environ.get("RIVERWATCH_KAFKA_CACHE") or Path.home() / ".cache" / "riverwatch"
    return Path(root) / f"kafka-{version}"


def fetch_libs(version: str = KAFKA_VERSION) -> Path:
    """The directory of Kafka's jars, fetched by Maven on first use; returns ``.../libs``.

    A lock file serialises concurrent first fetches, and the directory appears only complete
    (renamed into place), so an interrupted fetch is simply done again.
    """
    home = cache_dir(version)
    libs = home / "libs"
    if libs.is_dir():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None or shutil.which("java") is None:
        raise ServiceUnavailable(
            "Apache Kafka needs Java 17+ and Maven: apt-get install openjdk-17-jre-headless maven"
        )
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if libs.is_dir():  # another process fetched them while we waited
            return libs
        with tempfile.TemporaryDirectory(dir=home) as tmp:
            pom = Path(tmp) / "pom.xml"
            pom.write_text(_POM.format(kafka=version, slf4j=SLF4J_VERSION, log4j=LOG4J_VERSION))
            out = Path(tmp) / "libs"
            argv = [mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies"]
            argv += [f"-DoutputDirectory={out}", "-DincludeScope=runtime"]
            log.info("fetching Apache Kafka %s jars with Maven into %s", version, libs)
            done = subprocess.run(argv, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S)
            if done.returncode != 0:
                tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
                raise ServiceUnavailable(f"Maven could not fetch Kafka {version}:\n{tail}")
            out.rename(libs)
    return libs
