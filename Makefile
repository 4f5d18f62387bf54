# cryo.docker: `make demo` runs the counter example, `make test` runs every test and gate.
# Both prepare a fresh Debian 12 host (root) themselves, and skip what is already done.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
CACHE := $(CURDIR)/.cache
COLLECTIONS := $(CURDIR)/build/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/cryo/docker
CRIU_DEBIAN_VERSION ?= 4.2.1-1
# The real Debian hosts of tests/guests (QEMU guests of tests/testbed/guests.py).
GUEST_SUITES ?= bookworm trixie

export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH := false
export ANSIBLE_LOCALHOST_WARNING := false
export ANSIBLE_INVENTORY_UNPARSED_WARNING := false
export ANSIBLE_FORCE_COLOR := false
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help demo test venv tools collection host image unit integration molecule sanity lint docs-lint build-check bench soak clean guest-tools guests guest-tests

help:
	@echo "make demo   prepare this host (Docker Engine, CRIU) and run the counter example"
	@echo "make test   prepare this host and run unit, integration, Molecule and guest (real Debian hosts) tests and the quality gates"
	@echo "make bench  run the benchmarks in bench/ (not part of make test); e.g. BENCH_ARGS='--only warm_start'"
	@echo "make guest-tests  only the tests on real Debian 12 and 13 hosts (QEMU guests); e.g. CRYO_GUESTS=bookworm"
	@echo "make soak   100 checkpoint/restore cycles on every engine of the test bed (not part of make test); e.g. SOAK_ARGS='--kinds 20.10'"

# -- set-up -----------------------------------------------------------------

$(BIN)/.ready: requirements/test.txt requirements/constraints.txt
	@if ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c requirements/constraints.txt -r requirements/test.txt
	touch $@

venv: $(BIN)/.ready

# The programs the modules run and the unit tests use for real: zstd (compressed archives), ssh-keygen and
# ssh-agent (signed archives), script (a terminal for ssh-keygen's prompt test).
TOOLS := zstd ssh-keygen ssh-agent script
tools:
	@missing=$$(for tool in $(TOOLS); do command -v $$tool >/dev/null || echo $$tool; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing the programs for: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zstd openssh-client bsdutils; fi

collection:
	@mkdir -p $(dir $(COLLECTION_LINK))
	@ln -sfn $(CURDIR) $(COLLECTION_LINK)

# The Docker Engine (experimental) and CRIU from source, through the collection's own playbook.
host: venv collection
	@set -e; read -r src sum < <(STATE=$(CACHE)/debian-archive scripts/debian-archive.sh source criu=$(CRIU_DEBIAN_VERSION) $(CACHE)/criu); \
	ansible-playbook playbooks/setup.yml -i tests/testbed/inventory.yml \
	  -e criu_method=source -e criu_source_url=$$src -e criu_source_checksum=$$sum \
	  -e engine_install=true

image: host
	$(BIN)/python tests/testbed/build_image.py
	$(BIN)/python tests/testbed/build_apps.py

# -- the main job -------------------------------------------------------------

demo: image
	ansible-playbook playbooks/demo.yml -i tests/testbed/inventory.yml

# -- tests --------------------------------------------------------------------

unit: venv collection tools
	PYTHONPATH=$(COLLECTIONS) $(BIN)/python -m pytest -p no:cacheprovider tests/unit -q -rs

integration: image
	PYTHONPATH=$(COLLECTIONS) $(BIN)/python -m pytest -p no:cacheprovider tests/integration -v -rs --durations=25

molecule: host
	@set -e; read -r src sum < <(STATE=$(CACHE)/debian-archive scripts/debian-archive.sh source criu=$(CRIU_DEBIAN_VERSION) $(CACHE)/criu); \
	export CRYO_CRIU_SOURCE_URL=$$src CRYO_CRIU_SOURCE_CHECKSUM=$$sum; \
	for role in criu engine; do \
	  echo "== molecule: role $$role"; \
	  (cd roles/$$role && molecule test --all); \
	done

sanity lint docs-lint: venv collection
	scripts/quality.sh $@

build-check: image
	scripts/quality.sh $@

# Real Debian hosts (Debian 12 and 13) as QEMU guests: their disk images are built once and cached
# (.cache/guests, rebuilt when the recipe in tests/testbed/guests.py changes), then tests/guests boots one
# at a time and runs the collection's playbooks against it over SSH (the move from 12 to 13 last, with both).
guest-tools:
	@missing=; for tool in mmdebstrap:mmdebstrap mke2fs:e2fsprogs qemu-system-x86_64:qemu-system-x86 \
	  qemu-img:qemu-utils ssh:openssh-client; do \
	  command -v $${tool%%:*} >/dev/null 2>&1 || missing="$$missing $${tool#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

guests: venv collection guest-tools
	$(BIN)/python tests/testbed/guests.py build $(GUEST_SUITES)

guest-tests: guests
	PYTHONPATH=$(COLLECTIONS) $(BIN)/python -m pytest -p no:cacheprovider tests/guests -v -rsx --durations=0

# The guests' tests run beside the lab's, at a lower priority: QEMU's TCG takes one core for hours of guest time
# that the lab's tests, mostly waiting on engines and CRIU, leave idle. Everything they install (apt, the
# guests' images) is done first, one thing at a time. Their output comes after the lab's.
GUEST_LOG := build/guest-tests.log
test: image guests
	@set -u; mkdir -p $(dir $(GUEST_LOG)); \
	nice -n 10 $(MAKE) --no-print-directory guest-tests >$(GUEST_LOG) 2>&1 & guests=$$!; \
	trap 'kill $$guests 2>/dev/null' INT TERM; \
	$(MAKE) --no-print-directory unit sanity lint docs-lint integration molecule build-check; lab=$$?; \
	echo "== the guest tests (make guest-tests, $(GUEST_LOG)), run beside the lab's"; \
	wait $$guests; guest=$$?; cat $(GUEST_LOG); \
	if [ $$lab -ne 0 ] || [ $$guest -ne 0 ]; then echo "make test: FAILED (lab: $$lab, guests: $$guest)"; exit 1; fi; \
	echo "make test: every suite and gate passed"

# -- benchmarks (on demand, not part of `make test`) --------------------------------

bench: image
	$(BIN)/python bench/run.py $(BENCH_ARGS)

soak: image
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf build .cache/criu-build
