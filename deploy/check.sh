#!/usr/bin/env bash
# Lint and validate the shipping files: the Dockerfile (hadolint), the Kubernetes manifests (schema
# validation with kubernetes-validate, then deploy/kubernetes/check.py for how the pieces fit), the
# systemd unit (systemd-analyze verify and security), the shell scripts (shellcheck) and the configs
# shipped in deploy/ (corsgate check). Exits non-zero on the first failing step.
#
# Needs hadolint, kubernetes-validate, shellcheck, python3 with PyYAML, systemd-analyze and cargo;
# .ci/container-prereqs installs the first three.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { echo "deploy/check: $*" >&2; }

# The oldest Kubernetes the manifests target: the preStop `sleep` action is new in 1.30.
KUBE_MIN=1.30.0

step "corsgate binary"
cargo build --quiet --bin corsgate
target_dir="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
corsgate="$target_dir/debug/corsgate"

step "hadolint Dockerfile"
hadolint Dockerfile

step "shellcheck"
shellcheck deploy/check.sh deploy/container/build-offline.sh deploy/shell-integration.sh .ci/container-prereqs

step "corsgate check on the shipped configs"
"$corsgate" check -c deploy/container/corsgate.toml >/dev/null

step "kubernetes-validate (latest and $KUBE_MIN)"
kubernetes-validate --strict --quiet deploy/kubernetes/*.yaml
kubernetes-validate --strict --quiet --kubernetes-version "$KUBE_MIN" deploy/kubernetes/*.yaml

step "manifests agree with their config"
python3 deploy/kubernetes/check.py "$corsgate" deploy/kubernetes/*.yaml

step "systemd unit"
unit_dir="$(mktemp -d)"
trap 'rm -rf "$unit_dir"' EXIT
# verify insists that ExecStart's binary exists, so point the copy at the one just built.
sed "s|/usr/local/bin/corsgate|$corsgate|g" deploy/systemd/corsgate.service >"$unit_dir/corsgate.service"
# verify only warns about unknown keys and bad values: any output at all is a failure.
verify_out="$(systemd-analyze verify "$unit_dir/corsgate.service" 2>&1)" || {
    echo "$verify_out" >&2
    exit 1
}
if [ -n "$verify_out" ]; then
    echo "$verify_out" >&2
    exit 1
fi
# shellcheck disable=SC2016 # $MAINPID is systemd's, not ours to expand
grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' deploy/systemd/corsgate.service || {
    echo "deploy/systemd/corsgate.service: ExecReload must send SIGHUP" >&2
    exit 1
}
# Exposure 0.0 (locked down) .. 10.0 (unsafe); keep the unit in systemd's "OK" band.
systemd-analyze security --offline=yes --threshold=20 "$unit_dir/corsgate.service" >/dev/null || {
    systemd-analyze security --offline=yes "$unit_dir/corsgate.service" >&2 || true
    exit 1
}

step "all good"
