"""The guest tests' pytest fixtures: real Debian hosts booted in QEMU (tests/testbed/guests.py), one at a time.

`guest` is session-scoped and parametrized by suite (CRYO_GUESTS, default `bookworm,trixie`): pytest runs
every test of the first guest, powers it off, then boots the next, so two guests are never up at once.
`setup_runs` runs the collection's `setup` playbook twice against the guest over SSH and keeps what
happened (the tests of test_setup.py judge it); `ready` is the guest after a setup that passed, with the
test image imported; `containers` makes containers in it with Docker's defaults (default seccomp profile,
AppArmor profile docker-default), removed afterwards.

Only fixtures live here; the guests themselves are tests/testbed/guests.py (tests/README.md).
"""

import json
import os
import re
import sys
import tempfile
import time
import uuid

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'testbed'))

import guests  # noqa: E402
from helpers import IMAGE  # noqa: E402

SUITES = [suite for suite in os.environ.get('CRYO_GUESTS', ','.join(guests.SUITES)).split(',') if suite]

# The collection's setup playbook, then a play that hands the roles' results to the test.
SETUP = """
- name: The collection's setup playbook
  ansible.builtin.import_playbook: cryo.docker.setup

- name: Hand the roles' results to the test
  hosts: guests
  gather_facts: false
  tasks:
    - name: Write what the criu role and the preflight role found
      ansible.builtin.copy:
        content: "{{ {'criu_install': _criu_install, 'preflight': preflight_result} | to_json }}"
        dest: "{{ cryo_out }}"
        mode: "0600"
      delegate_to: localhost
      changed_when: false
"""
SETUP_TIMEOUT = 1200
# pytest-timeout per guest test (pytest.ini's default is for the lab): a boot and two setup runs at most.
GUEST_TEST_TIMEOUT = 2 * SETUP_TIMEOUT + 600


class SetupRun:
    """One run of the setup playbook: proc (CompletedProcess), seconds, recap ({ok, changed, ...} of the
    guest), results ({criu_install, preflight}, or None), docker_before and docker_after (ActiveEnterTimestamp
    of docker.service before and after it)."""

    def __init__(self, proc, seconds, results, docker_before, docker_after):
        self.proc = proc
        self.seconds = seconds
        self.results = results
        self.docker_before = docker_before
        self.docker_after = docker_after
        match = re.search(r'^\S+\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', proc.stdout,
                          re.MULTILINE)
        self.recap = dict(zip(('ok', 'changed', 'unreachable', 'failed'), map(int, match.groups()))) if match else {}

    @property
    def output(self):
        return self.proc.stdout[-6000:] + self.proc.stderr[-3000:]


def docker_started(guest):
    """When systemd last saw docker.service become active."""
    return guest.run('systemctl show docker -p ActiveEnterTimestamp --value', timeout=60).stdout.strip()


# The order in which a guest's test files run: the playbook an operator runs first, then what it enables.
FILE_ORDER = ('test_setup.py', 'test_lifecycle.py', 'test_reboot.py', 'test_move.py')


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Every test of one guest, then every test of the next (only the move has two up), each guest's files in
    FILE_ORDER; the move only when both of its guests are chosen (CRYO_GUESTS), the reboots only on the guests of
    guests.REBOOT (CRYO_GUEST_REBOOT)."""
    def suite_of(item):
        spec = getattr(item, 'callspec', None)
        return spec.params.get('guest') if spec else None

    def left_out(item):
        name = os.path.basename(str(item.fspath))
        return ((name == 'test_move.py' and not moving())
                or (name == 'test_reboot.py' and suite_of(item) not in guests.REBOOT))

    dropped = [item for item in items if left_out(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]

    def key(item):
        suite = suite_of(item)
        name = os.path.basename(str(item.fspath))
        return (SUITES.index(suite) if suite in SUITES else len(SUITES),
                FILE_ORDER.index(name) if name in FILE_ORDER else len(FILE_ORDER))
    items.sort(key=key)
    for item in items:
        # The first test of a guest carries its boot and the setup playbook's two runs.
        item.add_marker(pytest.mark.timeout(GUEST_TEST_TIMEOUT))


def _say(request, text):
    """A line on the terminal now, past pytest's capture (boot and playbook times as they happen)."""
    reporter = request.config.pluginmanager.get_plugin('terminalreporter')
    capture = request.config.pluginmanager.get_plugin('capturemanager')
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(text)


@pytest.fixture(scope='session')
def say(request):
    """say(text): a line on the terminal now, past pytest's capture."""
    return lambda text: _say(request, text)


def moving():
    """test_move.py runs (both of guests.MOVE are chosen): the source guest stays up (idle) while the target's
    tests run, and the move runs last, with both."""
    return all(suite in SUITES for suite in guests.MOVE)


@pytest.fixture(scope='session')
def booted():
    """The guests up in this session, by suite ({suite: guests.Guest}), and those whose setup passed (`ready`
    set); whatever is still up is powered off at the end of the session, on failure too."""
    state = dict(up={}, ready=set())
    try:
        yield state
    finally:
        for guest in state['up'].values():
            guest.down()


@pytest.fixture(scope='session', params=SUITES, ids=[guests.SUITES.get(suite, suite) for suite in SUITES])
def guest(request, booted, say):
    """A booted guest (guests.Guest) of one suite, powered off after its tests (the move's source after the
    move)."""
    up = booted['up']
    if request.param not in up:
        up[request.param] = guests.Guest(request.param, log=say).up()
    yield up[request.param]
    if not (moving() and request.param == guests.MOVE[0]):
        up.pop(request.param).down()


@pytest.fixture(scope='session')
def setup_runs(guest, say):
    """The setup playbook run twice against the guest: [first, second] (SetupRun)."""
    runs = []
    for _attempt in range(2):
        before = docker_started(guest)
        with tempfile.TemporaryDirectory(prefix='cryo-guest-') as tmp:
            out = os.path.join(tmp, 'results.json')
            started = time.monotonic()
            proc = guest.playbook(SETUP, timeout=SETUP_TIMEOUT, extra_vars={'cryo_out': out})
            seconds = time.monotonic() - started
            try:
                with open(out) as handle:
                    results = json.load(handle)
            except (OSError, ValueError):
                results = None
        runs.append(SetupRun(proc, seconds, results, before, docker_started(guest)))
        say('%s: setup playbook run %d in %.0f s: %s' % (guest.host, len(runs), seconds, runs[-1].recap))
    return runs


@pytest.fixture(scope='session')
def ready(guest, setup_runs, booted):
    """The guest once the setup playbook passed on it, with the test image (imported from the busybox rootfs
    tarball its build put in the disk: no registry)."""
    if setup_runs[0].proc.returncode != 0:
        pytest.fail('the setup playbook failed on %s (see test_setup.py):\n%s' % (guest.host, setup_runs[0].output))
    guest.run('docker image inspect %s >/dev/null 2>&1 || docker import %s %s'
              % (IMAGE, guests.BUSYBOX_TAR, IMAGE), timeout=300)
    booted['ready'].add(guest.suite)
    return guest


class Containers:
    """Containers in a guest, made with the docker CLI over SSH and Docker's defaults; removed by remove()."""

    def __init__(self, guest):
        self.guest = guest
        self.made = []

    def run(self, command, kind='counter', options=()):
        """`docker run -d` of the test image with command under sh; the container's name."""
        name = 'cryo-%s-%s' % (kind, uuid.uuid4().hex[:6])
        self.guest.run(['docker', 'run', '-d', '--name', name] + list(options) + [IMAGE, '/bin/sh', '-c', command],
                       timeout=180)
        self.made.append(name)
        return name

    def add(self, name):
        """A container the test made otherwise, removed with the others."""
        self.made.append(name)
        return name

    def remove(self):
        if self.made:
            self.guest.run(['docker', 'rm', '-f'] + self.made, timeout=180, check=False)


@pytest.fixture
def containers(ready):
    made = Containers(ready)
    yield made
    made.remove()
