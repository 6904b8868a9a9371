# syntax=docker/dockerfile:1.7
#
# Pakaura event host: one small runtime image with the `pakaura` binary (the default mapper
# embedded in it) and the example v2 mapper component beside it.
#
#   docker build -t pakaura:local .
#   docker run --rm -p 8080:8080 pakaura:local            # SQLite in /var/lib/pakaura
#
# Needs BuildKit (the default builder since Docker 23) for the cache mounts below.

# The toolchain the workspace declares (`rust-version = "1.95"` in Cargo.toml). Bookworm, so the
# binary links against the same glibc as the distroless cc-debian12 runtime below.
ARG RUST_VERSION=1.95

############################################################################################
# Builder: compiles the guest mappers (wasm32-wasip2) and the host.
############################################################################################
FROM rust:${RUST_VERSION}-slim-bookworm AS builder

# host/build.rs compiles guest-mappers/ for wasm32-wasip2 with a nested `cargo build` and
# embeds the default mapper in the binary; the target's standard library must be installed.
RUN rustup target add wasm32-wasip2

WORKDIR /src

# The cargo target directory lives in a BuildKit cache mount (see the build step); naming it
# here fixes where host/build.rs puts the guests: `<target>/guest-build/wasm32-wasip2/release`.
# Progress bars off: build logs are read in CI.
ENV CARGO_TARGET_DIR=/build/target \
    CARGO_TERM_PROGRESS_WHEN=never

# The whole source tree (less what .dockerignore drops: target dirs, .git, helm/, …). Copying
# manifests alone first would need stub sources for every target of every workspace member;
# the cache mounts below already keep downloads and compiled dependencies between builds.
COPY . .

# Download every crate both workspaces need, exactly as locked: the host workspace and the
# guest-mappers workspace that host/build.rs builds in a nested cargo. The registry and git
# caches are cache mounts, so a rebuild after a source change downloads nothing.
RUN --mount=type=cache,id=pakaura-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=pakaura-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    cargo fetch --locked \
 && cargo fetch --locked --manifest-path guest-mappers/Cargo.toml

# Build only the host package (not the `tests` member, whose build script compiles the hostile
# test guests). The target directory is a cache mount too, so compiled dependencies and the
# guest build survive between image builds; its content is not part of the layer, so the
# outputs are copied out to /out in the same step:
#   /out/pakaura                       the binary (default mapper embedded)
#   /out/examples/*.wasm               the example v2 mapper, for operators to copy or mount
#   /out/var/lib/pakaura, /out/var/cache/pakaura, /out/etc/pakaura/mappers
#                                      empty folders the runtime stage takes over (distroless
#                                      has no shell to mkdir in)
RUN --mount=type=cache,id=pakaura-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=pakaura-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=pakaura-cargo-target,target=/build/target,sharing=locked \
    cargo build --release --locked -p pakaura-host --bin pakaura \
 && mkdir -p /out/examples /out/var/lib/pakaura /out/var/cache/pakaura /out/etc/pakaura/mappers \
 && cp /build/target/release/pakaura /out/pakaura \
 && cp /build/target/guest-build/wasm32-wasip2/release/pakaura_mapper_v2.wasm /out/examples/v2.wasm \
 && /out/pakaura --version

############################################################################################
# Runtime: distroless "cc" (glibc, libgcc_s, CA certificates, tzdata; no shell, no package
# manager) as its built-in `nonroot` user (uid/gid 65532).
############################################################################################
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime

LABEL org.opencontainers.image.title="pakaura" \
      org.opencontainers.image.description="Pakaura event host: task API, transactional outbox, WebAssembly mappers, Dapr publishing" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=builder /out/pakaura /usr/local/bin/pakaura
# The example v2 mapper: `docker cp`, or a Helm ConfigMap (helm/README.md), puts it into the
# mappers folder. The default mapper is embedded in the binary and needs no file.
COPY --from=builder /out/examples/ /opt/pakaura/examples/
# MAPPERS_DIR must exist (the host refuses to start on a missing folder): an empty folder that
# a volume is mounted over in Kubernetes.
COPY --from=builder /out/etc/pakaura/ /etc/pakaura/
# The SQLite default needs a folder it may write (the database and its -wal/-shm files),
# owned by the runtime user. Kubernetes mounts an emptyDir or a volume here; `docker run`
# can too (`-v pakaura-data:/var/lib/pakaura`).
COPY --from=builder --chown=65532:65532 /out/var/lib/pakaura/ /var/lib/pakaura/
# Compiled mappers (MAPPER_CACHE_DIR), so a restart or reload of an unchanged mapper skips
# compiling it. With a read-only root filesystem mount an emptyDir here (the chart does);
# if it cannot be written the host warns and compiles at every start instead.
COPY --from=builder --chown=65532:65532 /out/var/cache/pakaura/ /var/cache/pakaura/

# Defaults for a container; every one can be overridden at run time (the chart does).
# BIND_ADDR listens on all interfaces (the binary's own default is loopback only).
ENV BIND_ADDR=0.0.0.0:8080 \
    DATABASE_URL=sqlite:/var/lib/pakaura/pakaura.db \
    MAPPERS_DIR=/etc/pakaura/mappers \
    MAPPER_CACHE_DIR=/var/cache/pakaura \
    RUST_LOG=info

EXPOSE 8080

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532

# Exec form: pakaura is PID 1 and receives SIGTERM (graceful shutdown) and SIGHUP (mapper
# reload) itself; it installs handlers for both and starts no child processes to reap.
# No HEALTHCHECK: distroless has no shell or curl; Kubernetes probes /healthz and /readyz.
ENTRYPOINT ["/usr/local/bin/pakaura"]
CMD ["serve"]
