#!/usr/bin/env bash
# Build the corsgate runtime image without a registry: compile the static binary on this host, then
# build the Dockerfile's `runtime` stage with that binary standing in for the `build` stage.
#
#   deploy/container/build-offline.sh [IMAGE_TAG]        (default localhost/corsgate:dev)
#
# Environment:
#   CONTAINER_ENGINE  the engine command, with any global flags (default: podman). It must support
#                     `build --build-context` (podman/buildah >= 1.28, docker buildx).
#   BUILD_FLAGS       extra flags for `build` (the container test passes --layers=false so no
#                     intermediate image outlives it).
#   CARGO             the cargo binary (default: cargo; `cargo test` sets it).
#   STATIC_TARGET_DIR where the static build goes (default: target/static, apart from the normal
#                     build so neither invalidates the other's cache).
#
# The image's contract (user, paths, ports, stop signal, entrypoint) lives only in the Dockerfile.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

tag="${1:-localhost/corsgate:dev}"
read -r -a engine <<<"${CONTAINER_ENGINE:-podman}"
read -r -a build_flags <<<"${BUILD_FLAGS:-}"
cargo="${CARGO:-cargo}"
target_dir="${STATIC_TARGET_DIR:-$root/target/static}"
triple="$(uname -m)-unknown-linux-gnu"

# crt-static links glibc's libc.a (from libc6-dev) into the binary. --target keeps the flag off build
# scripts and proc macros, which run here. CARGO_ENCODED_RUSTFLAGS would override RUSTFLAGS, so it
# must not leak in from a calling cargo. The image's binary is stripped of debug info below, so it
# is not generated at all (as in the Dockerfile): a faster build, the same code.
unset CARGO_ENCODED_RUSTFLAGS
echo "build-offline: cargo build --release --target $triple (static) into $target_dir" >&2
RUSTFLAGS="-C target-feature=+crt-static" CARGO_PROFILE_RELEASE_DEBUG=0 \
    "$cargo" build --release --locked --target "$triple" --target-dir "$target_dir" --bin corsgate

bin="$target_dir/$triple/release/corsgate"
# A static binary has no program interpreter and no NEEDED shared libraries; anything else would
# fail to start in the empty image with a confusing "no such file or directory".
if readelf -lW "$bin" | grep -q 'program interpreter' || readelf -dW "$bin" | grep -q '(NEEDED)'; then
    echo "build-offline: $bin is not statically linked:" >&2
    readelf -dW "$bin" | grep '(NEEDED)' >&2 || true
    exit 1
fi

# The stand-in for the `build` stage: the Dockerfile copies /out/corsgate from it.
context="$target_dir/image-context"
rm -rf "$context"
mkdir -p "$context/out"
strip --strip-debug -o "$context/out/corsgate" "$bin"
# The completions and man page the build stage writes beside it (run here: the binary is native).
bash "$root/deploy/shell-integration.sh" "$context/out/corsgate" "$context/out"

echo "build-offline: ${engine[*]} build --target runtime -t $tag" >&2
"${engine[@]}" build "${build_flags[@]}" \
    --build-context "build=$context" \
    --target runtime \
    --file "$root/Dockerfile" \
    --tag "$tag" \
    "$root"
