#!/usr/bin/env bash
# Write corsgate's shell completions and man page under PREFIX/share, in the places shells and man
# look by default:
#
#   deploy/shell-integration.sh CORSGATE_BINARY PREFIX      (e.g. target/release/corsgate /usr/local)
#
#   PREFIX/share/bash-completion/completions/corsgate    bash (bash-completion loads it on demand)
#   PREFIX/share/zsh/site-functions/_corsgate            zsh (on the default $fpath)
#   PREFIX/share/fish/vendor_completions.d/corsgate.fish fish
#   PREFIX/share/corsgate/completions/corsgate.elv       elvish (no system directory: see docs)
#   PREFIX/share/corsgate/completions/corsgate.ps1       PowerShell (dot-source it from $PROFILE)
#   PREFIX/share/man/man1/corsgate.1                     man corsgate
#
# The Dockerfile's build stage and deploy/container/build-offline.sh run it, so the image carries
# the files; docs/editor-and-shell.md says how to install them by hand.
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: $0 CORSGATE_BINARY PREFIX" >&2
    exit 2
fi
corsgate="$1"
share="$2/share"

mkdir -p "$share/bash-completion/completions" "$share/zsh/site-functions" \
    "$share/fish/vendor_completions.d" "$share/corsgate/completions" "$share/man/man1"
"$corsgate" completions bash >"$share/bash-completion/completions/corsgate"
"$corsgate" completions zsh >"$share/zsh/site-functions/_corsgate"
"$corsgate" completions fish >"$share/fish/vendor_completions.d/corsgate.fish"
"$corsgate" completions elvish >"$share/corsgate/completions/corsgate.elv"
"$corsgate" completions powershell >"$share/corsgate/completions/corsgate.ps1"
"$corsgate" manpage >"$share/man/man1/corsgate.1"
# Readable by all, writable by the owner only (the image copies them as root).
chmod -R u=rwX,go=rX "$share"
