#!/usr/bin/env bash
# Packages from Debian's archive (suites trixie and sid) for the test bed and the demo: CRIU's
# upstream tarball, newer Docker Engines, checkpointctl. Nothing else is reachable from these
# machines (no GitHub, no registry), and Debian 12 has none of them new enough.
#
# The system's apt configuration is left alone: a private sources list (the machine's own Debian
# URI with the suites trixie and sid), package lists and download cache under $STATE. apt checks
# every file it fetches against the archive's signed Release file.
#
# Usage:
#   debian-archive.sh source PACKAGE=VERSION DEST
#       Download the upstream tarball of a source package and its signed .dsc into DEST; print
#       "TARBALL sha256:HEX", the checksum as the .dsc lists it (and checked against the file).
#   debian-archive.sh unpack DEST PACKAGE=VERSION...
#       Download binary packages and unpack each into DEST/PACKAGE_VERSION (kept when already
#       there); print one such directory per line.
# STATE defaults to .cache/debian-archive (of the working directory).
set -euo pipefail

state=$(realpath -m "${STATE:-.cache/debian-archive}")

die() { printf 'debian-archive.sh: %s\n' "$*" >&2; exit 1; }

# The private apt state, refreshed once a day.
apt_options=()
prepare() {
  local uri
  mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/etc"
  if [ ! -s "$state/etc/cryo.sources" ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$uri" ] || die "no Debian archive URI found in the apt sources of this machine"
    printf 'Types: deb deb-src\nURIs: %s\nSuites: trixie sid\nComponents: main\nSigned-By: %s\n' \
      "$uri" /usr/share/keyrings/debian-archive-keyring.gpg >"$state/etc/cryo.sources"
  fi
  apt_options=(-o "Dir::Etc::sourcelist=$state/etc/cryo.sources" -o Dir::Etc::sourceparts=-
    -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache" -o APT::Get::List-Cleanup=0)
  if [ -z "$(find "$state/lists" -maxdepth 1 -name '*_InRelease' -mmin -1440 2>/dev/null)" ]; then
    apt-get "${apt_options[@]}" update -qq >&2 || die "apt-get update of trixie and sid failed"
  fi
}

cmd_source() {
  local spec=${1:?PACKAGE=VERSION} dest=${2:?DEST} package version upstream tarball sum
  package=${spec%%=*}
  version=${spec#*=}
  upstream=${version%-*}
  upstream=${upstream#*:}
  mkdir -p "$dest"
  dest=$(realpath "$dest")
  tarball=$(find "$dest" -maxdepth 1 -name "${package}_${upstream}.orig.tar.*" ! -name '*.asc' | head -n 1)
  if [ -z "$tarball" ] || [ ! -s "$dest/${package}_${version}.dsc" ]; then
    prepare
    # The Debian packaging tarball may already be gone from the pool (404, and a non-zero exit):
    # the upstream tarball and the .dsc are all that is needed.
    (cd "$dest" && apt-get "${apt_options[@]}" -o APT::Sandbox::User=root source --download-only "$spec" >&2) || true
    tarball=$(find "$dest" -maxdepth 1 -name "${package}_${upstream}.orig.tar.*" ! -name '*.asc' | head -n 1)
  fi
  if [ -z "$tarball" ] || [ ! -s "$tarball" ]; then die "could not download the upstream tarball of $spec"; fi
  sum=$(awk -v f="$(basename "$tarball")" '/^Checksums-Sha256:/ {s=1; next} s && $3 == f {print $1; exit}' \
    "$dest/${package}_${version}.dsc")
  [ -n "$sum" ] || die "no sha256 for $(basename "$tarball") in ${package}_${version}.dsc"
  echo "$sum  $tarball" | sha256sum -c --quiet - >&2 || die "$tarball does not match its .dsc"
  echo "$tarball sha256:$sum"
}

cmd_unpack() {
  local dest=${1:?DEST} spec package version target missing=() deb
  shift
  [ $# -gt 0 ] || die "unpack: name at least one PACKAGE=VERSION"
  mkdir -p "$dest"
  dest=$(realpath "$dest")
  for spec in "$@"; do
    target=$dest/${spec%%=*}_${spec#*=}
    [ -f "$target/.unpacked" ] || missing+=("$spec")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    prepare
    (cd "$state/cache/archives" && apt-get "${apt_options[@]}" -o APT::Sandbox::User=root download "${missing[@]}" >&2) ||
      die "apt-get download ${missing[*]} failed"
    for spec in "${missing[@]}"; do
      package=${spec%%=*}
      version=${spec#*=}
      # Pool file names leave out the epoch and encode ':' as %3a.
      deb=$(find "$state/cache/archives" -maxdepth 1 -name "${package}_${version#*:}_*.deb" | head -n 1)
      [ -n "$deb" ] || die "apt-get download did not leave a .deb for $spec"
      target=$dest/${package}_${version}
      rm -rf "$target.tmp"
      mkdir -p "$target.tmp"
      dpkg-deb -x "$deb" "$target.tmp"
      touch "$target.tmp/.unpacked"
      rm -rf "$target"
      mv "$target.tmp" "$target"
    done
  fi
  for spec in "$@"; do
    echo "$dest/${spec%%=*}_${spec#*=}"
  done
}

case ${1:-} in
  source) shift; cmd_source "$@" ;;
  unpack) shift; cmd_unpack "$@" ;;
  *) die "usage: $0 source PACKAGE=VERSION DEST | unpack DEST PACKAGE=VERSION..." ;;
esac
