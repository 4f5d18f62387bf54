#!/usr/bin/env bash
# The quality gates of `make test`, one per target:
#   scripts/quality.sh sanity       ansible-test sanity: every test that applies, no ignore file
#   scripts/quality.sh lint         ansible-lint, production profile (config: .ansible-lint)
#   scripts/quality.sh docs-lint    antsibull-docs and antsibull-changelog linters
#   scripts/quality.sh build-check  build the tarball, install it into an empty collections path,
#                                   ansible-doc every module and role, check the execution
#                                   environment metadata, then run checkpoint_preflight and the
#                                   demo playbook from the installed copy (needs the engine and
#                                   the image of `make image`)
# The Makefile puts the project's virtualenv (.venv, requirements/test.txt) first on PATH.
# Each gate fails on any error, and on any check that was skipped instead of run.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=$root/build
namespace=cryo
name=docker
fqcn=$namespace.$name

export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false ANSIBLE_FORCE_COLOR=false ANSIBLE_NOCOLOR=1 NO_COLOR=1 \
  PYTHONDONTWRITEBYTECODE=1

say() { printf '== %s\n' "$*"; }
die() { printf 'quality.sh: %s\n' "$*" >&2; exit 1; }

# The collection's own files: tracked or untracked-but-not-ignored, as a clean clone would
# have them plus work in progress; never the virtualenv, build output or caches.
collection_files() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard
  else
    find . -mindepth 1 \( -name .git -prune \) -o \( -type f -o -type l \) -printf '%P\0'
  fi | while IFS= read -r -d '' path; do
    case $path in
      .venv/* | build/* | .cache/* | tests/output/*) continue ;;
    esac
    if [ -e "$path" ] || [ -L "$path" ]; then printf '%s\0' "$path"; fi
  done
}

# A real copy (ansible-test refuses a symlinked collection root) at DEST/ansible_collections/NS/NAME.
copy_collection() {
  local dest=$1/ansible_collections/$namespace/$name
  rm -rf "$1"
  mkdir -p "$dest"
  collection_files | tar --null -T - -cf - | tar -C "$dest" -xf -
  printf '%s\n' "$dest"
}

# Debian programs a gate needs; installed here when missing, as `make venv` does for python3-venv.
need_program() {
  local program=$1 package=$2
  command -v "$program" >/dev/null 2>&1 && return 0
  say "installing $package (provides $program)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "$package" >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq "$package" >/dev/null; } ||
    die "$program is needed and $package could not be installed"
}

# ansible-test bootstraps pip in each sanity virtualenv with get-pip.py from
# ci-files.testing.ansible.com, which is not reachable from these machines. It uses a copy at
# ~/.ansible/test/cache/get_pip_<version>.py if there is one; this stand-in gives the same result
# (the pip version ansible-test asks for) from ensurepip and the package index.
bootstrap_pip_offline() {
  local version cache
  version=$(python - <<'EOF'
import pathlib
import re

import ansible_test

source = pathlib.Path(ansible_test.__file__).parent / '_internal' / 'python_requirements.py'
match = re.search(r"default_packages = dict\(\s*pip='([0-9.]+)'", source.read_text())
print(match.group(1) if match else '')
EOF
)
  [ -n "$version" ] || die "cannot tell which pip version ansible-test bootstraps (ansible_test internals changed?)"
  cache=$HOME/.ansible/test/cache/get_pip_${version//./_}.py
  mkdir -p "$(dirname "$cache")"
  cat >"$cache" <<'EOF'
"""Offline stand-in for get-pip.py (written by cryo.docker's scripts/quality.sh)."""
import subprocess
import sys

# ensurepip in a child process: in-process it points PIP_CONFIG_FILE at /dev/null, which would
# hide the machine's pip configuration (index, certificates) from the install below.
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade'])
args = [arg for arg in sys.argv[1:] if arg not in ('--no-setuptools', '--no-wheel')]
sys.exit(subprocess.call([sys.executable, '-m', 'pip', 'install'] + args))
EOF
}

gate_sanity() {
  local ignores dest pyver log rc=0
  ignores=$(find tests/sanity -name 'ignore-*.txt' 2>/dev/null || true)
  [ -z "$ignores" ] || die "sanity runs without ignore files; fix the code instead of listing it in: $ignores"
  # The shellcheck sanity test checks scripts/*.sh. pslint has nothing to check (no PowerShell
  # here); if PowerShell files ever appear without pwsh installed, the skip check below fails.
  need_program shellcheck shellcheck
  bootstrap_pip_offline
  dest=$(copy_collection "$build/sanity")
  # The copy lies inside this repository's ignored build/ directory; its own (empty) git
  # repository makes ansible-test list its files instead of skipping them all as ignored.
  git -C "$dest" init -q
  pyver=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  log=$build/sanity/sanity.log
  say "ansible-test sanity --python $pyver in $dest"
  # Only the venv's Python is checked: these machines have no other interpreter (Debian 12 ships
  # 3.11 only) and no container registry for ansible-test --docker. compile and import on the other
  # target Pythons ansible-core supports need those interpreters; CI images with them can pass
  # --python more than once.
  (cd "$dest" && env -u ANSIBLE_COLLECTIONS_PATH ansible-test sanity --python "$pyver" --color no) 2>&1 |
    tee "$log" || rc=$?
  # A test ansible-test skips for a missing program or interpreter is reported as a warning,
  # with exit status 0: treat it as a failure, it did not run.
  if grep -E 'Required program "|Skipping sanity test|All targets skipped' "$log"; then
    die "sanity: the tests above were skipped, not run (install what they need)"
  fi
  [ "$rc" -eq 0 ] || die "sanity failed (log: $log)"
  say "sanity passed"
}

gate_lint() {
  say "ansible-lint --profile production"
  # ansible-lint finds this collection through ANSIBLE_COLLECTIONS_PATH (the Makefile's symlink)
  # and refuses to set up its own paths when the sys.path scan is off.
  # It also builds and installs the collection into $ANSIBLE_HOME/collections: keep that copy in
  # build/ rather than in ~/.ansible, where it would shadow the working tree for later runs.
  mkdir -p "$build/lint"
  env -u ANSIBLE_COLLECTIONS_SCAN_SYS_PATH ANSIBLE_HOME="$build/lint/ansible-home" \
    ansible-lint --profile production --strict
  say "lint passed"
}

gate_docs_lint() {
  # antsibull-docs needs the collection at .../ansible_collections/cryo/docker; the copy also
  # keeps it from the symlinked development tree.
  local dest
  dest=$(copy_collection "$build/docs-lint")
  say "antsibull-docs lint-collection-docs --plugin-docs"
  ANSIBLE_COLLECTIONS_PATH=$build/docs-lint antsibull-docs lint-collection-docs \
    --plugin-docs --validate-collection-refs dependent --disallow-unknown-collection-refs "$dest"
  say "antsibull-changelog lint"
  antsibull-changelog lint
  say "docs-lint passed"
}

build_check_container=
remove_build_check_container() {
  [ -n "$build_check_container" ] || return 0
  python -c 'import sys, docker
try:
    docker.from_env().api.remove_container(sys.argv[1], force=True)
except docker.errors.NotFound:
    pass' "$build_check_container"
}

gate_build_check() {
  local dist=$build/dist installed=$build/installed tarball target modules module role out failed=0
  local container=cryo-build-check-counter image=cryo-test/busybox:1
  rm -rf "$dist" "$installed"
  mkdir -p "$dist" "$installed"
  say "ansible-galaxy collection build"
  ansible-galaxy collection build --output-path "$dist" "$root"
  tarball=$(find "$dist" -name "$namespace-$name-*.tar.gz")
  say "ansible-galaxy collection install $(basename "$tarball") into an empty collections path"
  # From here on, only the installed copy is visible: what users install is what is tested.
  export ANSIBLE_COLLECTIONS_PATH=$installed
  ansible-galaxy collection install --offline --no-deps --force -p "$installed" "$tarball"
  target=$installed/ansible_collections/$namespace/$name

  say "ansible-doc for every module in plugins/modules and every role"
  modules=$(find plugins/modules -maxdepth 1 -name '*.py' ! -name '__init__.py' -printf '%f\n' | sed -e 's/\.py$//' | sort)
  [ -n "$modules" ] || die "build-check: no modules in plugins/modules"
  for module in $modules; do
    if out=$(ansible-doc -t module "$fqcn.$module" 2>&1) &&
      grep -qF "> MODULE $fqcn.$module ($target/plugins/modules/$module.py)" <<<"$out" &&
      ! grep -qE '^\[?(ERROR|WARNING)' <<<"$out"; then
      echo "ansible-doc $fqcn.$module: ok"
    else
      printf 'ansible-doc %s failed (or not from %s):\n%s\n' "$fqcn.$module" "$target" "$out" >&2
      failed=1
    fi
  done
  out=$(ansible-doc -t module -l "$fqcn" 2>&1)
  for module in $modules; do
    grep -q "^$fqcn\.$module " <<<"$out" || { echo "ansible-doc -l does not list $fqcn.$module" >&2; failed=1; }
  done
  for role in $(find roles -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort); do
    if out=$(ansible-doc -t role "$fqcn.$role" 2>&1) && grep -qF "($target)" <<<"$out" &&
      ! grep -qE '^\[?(ERROR|WARNING)' <<<"$out"; then
      echo "ansible-doc -t role $fqcn.$role: ok"
    else
      printf 'ansible-doc -t role %s failed (or not from %s):\n%s\n' "$fqcn.$role" "$target" "$out" >&2
      failed=1
    fi
  done
  [ "$failed" -eq 0 ] || die "build-check: ansible-doc failed for the installed collection"

  say "ansible-builder introspect: the execution environment requirements of the installed copy"
  out=$(ansible-builder introspect --sanitize "$installed")
  printf '%s\n' "$out"
  grep -q "docker>=.*# from collection $fqcn" <<<"$out" ||
    die "build-check: ansible-builder does not see $fqcn's Python requirements (meta/execution-environment.yml)"

  say "modules and the demo playbook from the installed copy, against this host's engine"
  python -c 'import docker, sys; docker.from_env().images.get(sys.argv[1])' "$image" 2>/dev/null ||
    die "build-check needs the Docker Engine running and the image $image (make image)"
  ansible all -i "$root/tests/testbed/inventory.yml" -m "$fqcn.checkpoint_preflight"
  # The installed playbook by its FQCN: the counter is checkpointed, stays frozen, and must resume
  # where it stopped (the playbook asserts it).
  build_check_container=$container
  trap remove_build_check_container EXIT
  ansible-playbook -i "$root/tests/testbed/inventory.yml" "$fqcn.demo" -e "demo_container=$container"
  say "build-check passed"
}

case ${1:-} in
  sanity) gate_sanity ;;
  lint) gate_lint ;;
  docs-lint) gate_docs_lint ;;
  build-check) gate_build_check ;;
  *) die "usage: $0 sanity|lint|docs-lint|build-check" ;;
esac
