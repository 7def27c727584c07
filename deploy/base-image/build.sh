#!/usr/bin/env bash
# Build a Python base image from Debian's own packages, with no container registry.
#
#   deploy/base-image/build.sh [TAG]        (default distlab-base:bookworm)
#
# debootstrap installs a minimal Debian bookworm (whose python3 is 3.11, the version distlab
# targets) into a temporary directory, which `docker import` turns into an image. Nothing is
# pulled from a registry, so this works where only Debian's package mirror is reachable.
# An existing image with the tag is kept: set REBUILD=1 to build it again.
set -euo pipefail

TAG="${1:-distlab-base:bookworm}"
SUITE="${SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PACKAGES="python3,python3-venv,ca-certificates"

if [[ "${REBUILD:-0}" != 1 ]] && docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "base image $TAG exists (REBUILD=1 to build it again)"
    exit 0
fi
if ! command -v debootstrap >/dev/null; then
    echo "debootstrap is missing: apt-get install -y debootstrap" >&2
    exit 2
fi
if [[ $(id -u) != 0 ]]; then
    echo "debootstrap needs root: run this with sudo" >&2
    exit 2
fi

root=$(mktemp -d /tmp/distlab-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
started=$(date +%s)
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR"

# Keep the image small and reproducible: no package lists, caches, logs or docs.
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
# Point apt at the mirror used here, for anyone extending the image.
echo "deb $MIRROR $SUITE main" > "$root/etc/apt/sources.list"

tar -C "$root" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$TAG"
echo "built $TAG from Debian $SUITE in $(( $(date +%s) - started )) s"
