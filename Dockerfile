# syntax=docker/dockerfile:1
#
# corsgate container image: one static binary in an empty (scratch) image, run as a non-root user.
#
# The `runtime` stage is the only place that states the image's contract: user, file paths, ports,
# stop signal and entrypoint. Both ways of building go through it:
#
#   With a registry:  docker build -t corsgate .        (or: podman build -t corsgate .)
#       The `build` stage compiles the static binary inside a Rust image.
#
#   Offline, without a registry (CI here):  deploy/container/build-offline.sh corsgate:dev
#       The script compiles the same static binary on the host, puts it at DIR/out/corsgate and runs
#       `podman build --build-context build=DIR --target runtime`. A named build context replaces the
#       stage of the same name (buildah >= 1.28, BuildKit), so `COPY --from=build` reads DIR and the
#       Rust image is never pulled.
#
# Static linking: `-C target-feature=+crt-static` on the gnu target links glibc (libc.a from
# libc6-dev) into the binary, which then needs no loader or shared library in `scratch`. Passing
# `--target` keeps build scripts and proc macros dynamically linked, as they run on the build host.
# Debug info is neither generated nor kept (strip): the binary is about 15 MB, its symbols intact.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(uname -m)-unknown-linux-gnu" \
 && RUSTFLAGS="-C target-feature=+crt-static" CARGO_PROFILE_RELEASE_DEBUG=0 \
    cargo build --release --locked --target "$target" \
 && mkdir -p /out \
 && strip --strip-debug -o /out/corsgate "target/$target/release/corsgate" \
 && bash deploy/shell-integration.sh /out/corsgate /out

FROM scratch AS runtime
LABEL org.opencontainers.image.title="corsgate" \
      org.opencontainers.image.description="A standalone CORS-enforcing reverse proxy" \
      org.opencontainers.image.licenses="Apache-2.0"
# Root owns both files and the runtime user may only read (and run) them: a compromised process
# cannot rewrite its own policy or binary.
COPY --from=build --chown=0:0 --chmod=0555 /out/corsgate /usr/local/bin/corsgate
COPY --chown=0:0 --chmod=0444 deploy/container/corsgate.toml /etc/corsgate/corsgate.toml
# Shell completions and the man page (deploy/shell-integration.sh), for images built on this one
# and for copying out: scratch has no shell or man of its own. See docs/editor-and-shell.md.
COPY --from=build --chown=0:0 /out/share/ /usr/local/share/
# `corsgate` reads its config from $CORSGATE_CONFIG when no -c is given, so mounting a file or a
# ConfigMap directory at /etc/corsgate replaces the policy without changing the command.
ENV CORSGATE_CONFIG=/etc/corsgate/corsgate.toml
# Numeric, because scratch has no /etc/passwd; 65532 is the conventional "nonroot" id.
USER 65532:65532
# 8080: the proxy; 9901: admin (/healthz, /readyz, /metrics). Both as in deploy/container/corsgate.toml.
EXPOSE 8080 9901
# SIGTERM drains in-flight requests for server.shutdown_grace, then exits 0; SIGHUP reloads the config.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/corsgate", "run"]
