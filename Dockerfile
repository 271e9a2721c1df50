# tls-bridge container image: a Swift build stage and a slim Debian 12 runtime.
#
#   docker build -t tls-bridge .                      # full build: compiles in the Swift image
#   docker build --target runtime-local \             # runtime only, from a binary built on the host
#       --build-arg BINARY=out/tls-bridge -t tls-bridge .
#
# The binary links the Swift runtime statically (--static-swift-stdlib), so the runtime image holds
# only libevent, OpenSSL, zlib and the CA bundle. Config and certificates come from a volume at
# /etc/tls-bridge (see conf/docker-compose.example.yml). The process runs as uid:gid 10001:10001
# (numeric, so Kubernetes' runAsNonRoot can verify it): make private keys owned by uid 10001 with mode
# 0600 (tls-bridge refuses a key its group or others can read); certificates may be 0644.
#
# Health: `tls-bridge health` asks the running process's admin endpoint (GET /healthz on the config's
# [admin] listen, 3 s timeout): a stopped, wedged or crashed bridge is unhealthy even though its config
# file is fine. It needs [admin] listen in the config; the image's sample has it (127.0.0.1:9090).

ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:12-slim

# ---- runtime-base: Debian 12 with the shared libraries the binary needs, nothing else -------------
FROM ${RUNTIME_IMAGE} AS runtime-base
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The binary links libevent_core/_extra/_pthreads/_openssl (four packages), OpenSSL, zlib and libstdc++
# (the static Swift runtime needs it). Unpinned on purpose: Debian stable only ships security and bug fixes, which a rebuild should pick up.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libevent-2.1-7 libevent-openssl-2.1-7 libevent-extra-2.1-7 libevent-pthreads-2.1-7 \
        libssl3 zlib1g libstdc++6 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 tls-bridge \
    && useradd --system --uid 10001 --gid tls-bridge --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin tls-bridge \
    && install -d -o root -g tls-bridge -m 0750 /etc/tls-bridge
# The sample config (listens on 127.0.0.1 only), readable by the service's group only, plus the admin
# endpoint the HEALTHCHECK asks: a fresh named volume starts with it; mount your own (with [admin]).
COPY --chown=0:10001 --chmod=0640 conf/tls-bridge.toml /etc/tls-bridge/tls-bridge.toml
RUN printf '\n# The image'"'"'s HEALTHCHECK (tls-bridge health) asks this endpoint.\n[admin]\nlisten = "127.0.0.1:9090"\n' \
        >> /etc/tls-bridge/tls-bridge.toml
VOLUME ["/etc/tls-bridge"]
USER 10001:10001
WORKDIR /etc/tls-bridge
EXPOSE 8080
# SIGTERM: stop accepting, let open sessions drain (drain_timeout), exit 0. Give `docker stop` a
# --time at least as long as drain_timeout.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["tls-bridge", "health", "--config", "/etc/tls-bridge/tls-bridge.toml", "--timeout", "3"]
ENTRYPOINT ["tls-bridge"]
CMD ["run", "--config", "/etc/tls-bridge/tls-bridge.toml"]

# ---- runtime-local: the runtime from a binary built on the host --------------------------------
# swift build -c release --static-swift-stdlib --disable-local-rpath --product tls-bridge, then copy the binary to out/
# (the only build output .dockerignore lets in), or pass BINARY=<path inside the context>.
FROM runtime-base AS runtime-local
ARG BINARY=out/tls-bridge
COPY ${BINARY} /usr/local/bin/tls-bridge

# ---- builder: compiles the release binary (needs the Swift image; not buildable on the dev hosts) -
FROM ${SWIFT_IMAGE} AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libevent-dev libssl-dev zlib1g-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Package.resolved, when present, pins the dependencies; resolve before copying the sources so the
# dependency checkout stays cached across source changes.
COPY Package.* ./
RUN swift package resolve
# SwiftPM wants every target's directory to exist, the unit-test targets' included.
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --static-swift-stdlib --disable-local-rpath --product tls-bridge \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/tls-bridge" /out/tls-bridge

# ---- runtime: the default target ----------------------------------------------------------------
FROM runtime-base AS runtime
COPY --from=builder /out/tls-bridge /usr/local/bin/tls-bridge
