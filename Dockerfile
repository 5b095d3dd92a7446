# OpenBridge container image: built from source, installed from its own .deb, run as non-root.
#   docker build -t openbridge .
#   docker run -p 8080:8080 -e OPENAI_API_KEY=sk-... -e OPENBRIDGE_CLIENT_TOKEN=sk-... openbridge
# Mount your own config over /etc/openbridge/config.json (docs/DEPLOYMENT.md).

# ---- build: compile and package (the same CPack .deb the Debian install uses)
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake make dpkg-dev file libboost1.81-dev libboost-json1.81-dev libsimdjson-dev \
      libcli11-dev libssl-dev ca-certificates libnghttp2-dev libhiredis-dev libsqlite3-dev \
      pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt README.md CHANGELOG.md ./
COPY cmake cmake
COPY src src
COPY packaging packaging
COPY examples examples
COPY docs docs
COPY scripts/package scripts/package
# Without profile-guided optimisation (OPENBRIDGE_PGO=0): its training run needs Node.js and the
# mock provider, which this stage does not have. The .deb that `scripts/package` builds on a
# Debian 12 host is profile-guided (6-10% fewer instructions per request; docs/DEPLOYMENT.md).
RUN OPENBRIDGE_PGO=0 BUILD_DIR=build scripts/package Release && mkdir /out && cp build/openbridge_*.deb /out/

# ---- runtime: the .deb and its shared libraries only; curl for the health check
FROM debian:bookworm-slim
COPY --from=build /out/ /tmp/deb/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      /tmp/deb/openbridge_*.deb curl \
 && rm -rf /var/lib/apt/lists/* /tmp/deb
# Any unprivileged id works (the config is world-readable, nothing is written but stderr).
USER 65532:65532
EXPOSE 8080
# /healthz on the client listener answers without a token while the process serves.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS -o /dev/null http://127.0.0.1:8080/healthz || exit 1
# SIGTERM drains (timeouts.shutdown_grace, 30 s by default): give `docker stop -t 35` or more.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/openbridge"]
CMD ["--config", "/etc/openbridge/config.json"]
