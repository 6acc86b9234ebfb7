# maplex-server and the `maplex` CLI in a container.
#
# Build stage: Debian 12 with the one package recipe CI uses (scripts/setup, run by .ci/run
# through scripts/test) and the one build (scripts/build). Runtime stage: debian:12-slim with
# only the shared libraries the two binaries link, running as the non-root user `maplex`.
#
#   docker build -t maplex .
#   docker run -d --name maplex -p 50051:50051 -v maplex-data:/var/lib/maplex maplex
#   docker exec maplex maplex --token_file /var/lib/maplex/operator.token import \
#       --latency /usr/share/maplex/data/nb201_latency.csv.gz \
#       --devices /usr/share/maplex/data/nb201_devices.csv
#
# Every call needs a bearer token (MAPLEX_AUTH=token): on its first start the server writes
# the first operator token's secret to /var/lib/maplex/operator.token (mode 0600, on the
# volume); make the others with `maplex tokens create` (docs/OPERATIONS.md, "Secure
# deployment"). tests/deploy/deploy_test.py fails if these defaults admit an
# unauthenticated caller.
# Configure with MAPLEX_* variables or flags after the image name
# (docker run ... maplex --method=maple); see docs/OPERATIONS.md.

FROM debian:12 AS build
WORKDIR /src
# Packages first, so that a source change does not reinstall them.
COPY scripts/setup scripts/setup
RUN bash scripts/setup && rm -rf /var/lib/apt/lists/*
COPY . .
RUN bash scripts/build build -DMAPLEX_BUILD_BENCH=OFF \
 && strip --strip-debug build/bin/maplex-server build/bin/maplex

FROM debian:12-slim
# What `ldd build/bin/maplex-server build/bin/maplex` needs beyond libc and libstdc++
# (tests/deploy/deploy_test.py checks this list against ldd), and sqlite3 for online backups.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libgrpc++1.51 libprotobuf32 libabsl20220623 libsqlite3-0 zlib1g libssl3 sqlite3 \
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/maplex --create-home \
      --shell /usr/sbin/nologin maplex
COPY --from=build /src/build/bin/maplex-server /src/build/bin/maplex /usr/local/bin/
# The bundled NAS-Bench-201 latencies with their licence notices, for `maplex import`.
COPY data/ /usr/share/maplex/data/
USER 10001:10001
VOLUME /var/lib/maplex
ENV MAPLEX_LISTEN=0.0.0.0:50051 \
    MAPLEX_AUTH=token \
    MAPLEX_BOOTSTRAP_TOKEN_FILE=/var/lib/maplex/operator.token \
    MAPLEX_DB=/var/lib/maplex/maplex.db \
    MAPLEX_SERVER=127.0.0.1:50051
EXPOSE 50051
# Healthy once the database is open and the registry serves: a fresh primary has no model
# yet, and the server as a whole ("") becomes SERVING only when one is trained.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["maplex", "--timeout", "3", "health", "--service", "maplex.v1.DeviceRegistry"]
ENTRYPOINT ["maplex-server"]
