#!/usr/bin/env bash
# Fetch CRIU's upstream release tarball from Debian's source archive, for the test bed and
# the demo (the upstream download site is not reachable from these machines).
# Prints "PATH sha256:HEX"; the checksum comes from the signed .dsc that lists the tarball.
# Usage: criu-source-from-debian.sh VERSION DEST_DIR    (VERSION like 4.2.1-1)
set -euo pipefail
version=${1:-4.2.1-1}
dest=${2:-.cache/criu}
upstream=${version%-*}
tarball="$dest/criu_${upstream}.orig.tar.xz"
mkdir -p "$dest"
if [ ! -s "$tarball" ] || [ ! -s "$dest/criu_${version}.dsc" ]; then
  list=/etc/apt/sources.list.d/cryo-criu-src.sources
  if [ ! -f "$list" ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$uri" ] || { echo "no Debian archive URI found in the apt sources" >&2; exit 1; }
    printf 'Types: deb-src\nURIs: %s\nSuites: trixie sid\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$uri" > "$list"
  fi
  apt-get update -qq >&2
  # The Debian packaging tarball may already be gone from the pool (404); the upstream
  # tarball and the .dsc are all this needs.
  (cd "$dest" && apt-get source --download-only "criu=$version" >&2) || true
fi
[ -s "$tarball" ] || { echo "could not download $tarball from Debian's source archive" >&2; exit 1; }
sum=$(awk -v f="criu_${upstream}.orig.tar.xz" '/^Checksums-Sha256:/ {s=1; next} s && $3 == f {print $1; exit}' \
  "$dest/criu_${version}.dsc")
[ -n "$sum" ] || { echo "no sha256 for $tarball in the .dsc" >&2; exit 1; }
echo "$sum  $tarball" | sha256sum -c --quiet - >&2
echo "$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball") sha256:$sum"
