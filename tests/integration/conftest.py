"""The integration tests' pytest fixtures: the real Docker Engine and CRIU on this machine.

Only fixtures live here. The functions the tests call (run_module, run_playbook, wait_counter,
checkpoints, ...) are in tests/testbed/helpers.py, the extra engines in tests/testbed/fleet.py;
tests/README.md tells what is where. tests/testbed goes on sys.path here, so test files import
them as `helpers` and `fleet`.
"""

import os
import shutil
import socket
import sys
import tempfile
import threading
import uuid

import docker
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'testbed'))

import helpers  # noqa: E402
from helpers import COUNTER, DOCKER_HOST, IMAGE, FleetBed  # noqa: E402


@pytest.fixture(autouse=True)
def playbook_timeout(request, monkeypatch):
    """A test marked with a longer timeout than pytest.ini's (@pytest.mark.timeout(N)) gives each of its playbooks
    N - 20 seconds instead of helpers.PLAYBOOK_TIMEOUT: still killed, with its output, before the test's own."""
    marker = request.node.get_closest_marker('timeout')
    default = float(request.config.getini('timeout') or 0)
    if marker and marker.args and float(marker.args[0]) > default:
        monkeypatch.setattr(helpers, 'PLAYBOOK_TIMEOUT', max(helpers.PLAYBOOK_TIMEOUT, float(marker.args[0]) - 20))


@pytest.fixture(scope='session')
def engine():
    """A docker.APIClient of this machine's main engine (DOCKER_HOST, else the local socket)."""
    return docker.APIClient(base_url=DOCKER_HOST, version='auto')


@pytest.fixture
def make_container(engine):
    """Factory: make_container(command=COUNTER, **host_config) -> name; removed afterwards. Docker's defaults
    (its default seccomp profile among them) unless a test asks for more, as security_opt=[...]."""
    created = []

    def factory(command=COUNTER, name=None, start=True, ports=None, restart_policy=None,
                security_opt=(), tty=False, image=IMAGE, **host_kwargs):
        name = name or 'cryo-test-%s' % uuid.uuid4().hex[:8]
        host_config = engine.create_host_config(
            port_bindings=ports, restart_policy=restart_policy,
            security_opt=list(security_opt) if security_opt else None, **host_kwargs)
        engine.create_container(image, ['/bin/sh', '-c', command] if isinstance(command, str) else command,
                                name=name, host_config=host_config, tty=tty,
                                ports=list(ports) if ports else None)
        created.append(name)
        if start:
            engine.start(name)
        return name

    yield factory
    for name in created:
        try:
            engine.remove_container(name, force=True)
        except docker.errors.NotFound:
            pass


@pytest.fixture
def tcp_peer():
    """A listener on the host's loopback that keeps every connection open: (port, [peer sockets])."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(('127.0.0.1', 0))
    server.listen(8)
    server.settimeout(0.5)
    peers, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                peers.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], peers
    stop.set()
    thread.join(2)
    for peer in peers:
        peer.close()
    server.close()


@pytest.fixture
def store():
    """A fresh absolute checkpoint_dir under /var/tmp that does not exist yet; removed afterwards."""
    base = tempfile.mkdtemp(dir='/var/tmp', prefix='cryo-store-')
    yield os.path.join(base, 'store')
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def archives():
    """A private directory (0700) for the archives of one test, removed afterwards."""
    directory = tempfile.mkdtemp(prefix='cryo-archive-test-')
    os.chmod(directory, 0o700)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def state_dir(request):
    """A maintenance_state_dir of its own for a test, below its file's STATE_ROOT; removed afterwards."""
    path = os.path.join(getattr(request.module, 'STATE_ROOT', '/var/tmp/cryo-test'), uuid.uuid4().hex[:8])
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope='session')
def fleet():
    """CRYO_FLEET_COUNT (3) Docker Engines side by side, one inventory host each, with the test
    image (a helpers.FleetBed); torn down after the session unless CRYO_FLEET_KEEP=1."""
    yield from FleetBed.running('the fleet', count=int(os.environ.get('CRYO_FLEET_COUNT', '3')),
                                prefix=os.environ.get('CRYO_FLEET_PREFIX', 'cryo-fleet'))
