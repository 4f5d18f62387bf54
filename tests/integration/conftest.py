"""The integration tests' pytest fixtures: the real Docker Engine and CRIU on this machine.

Only fixtures live here. The functions the tests call (run_module, run_playbook, wait_counter,
checkpoints, ...) are in tests/testbed/helpers.py, the extra engines in tests/testbed/fleet.py;
tests/README.md tells what is where. tests/testbed goes on sys.path here, so test files import
them as `helpers` and `fleet`.
"""

import os
import socket
import sys
import threading
import uuid

import docker
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'testbed'))

import fleet as testbed_fleet  # noqa: E402
from helpers import COUNTER, DOCKER_HOST, IMAGE, FleetBed  # noqa: E402


@pytest.fixture(scope='session')
def engine():
    """A docker.APIClient of this machine's main engine (DOCKER_HOST, else the local socket)."""
    return docker.APIClient(base_url=DOCKER_HOST, version='auto')


@pytest.fixture
def make_container(engine):
    """Factory: make_container(command=COUNTER, **host_config) -> name; removed afterwards."""
    created = []

    def factory(command=COUNTER, name=None, start=True, ports=None, restart_policy=None,
                security_opt=('seccomp=unconfined',), tty=False, image=IMAGE, **host_kwargs):
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


@pytest.fixture(scope='session')
def fleet():
    """CRYO_FLEET_COUNT (3) Docker Engines side by side, one inventory host each, with the test
    image (a helpers.FleetBed); torn down after the session unless CRYO_FLEET_KEEP=1."""
    bed = testbed_fleet.Fleet(count=int(os.environ.get('CRYO_FLEET_COUNT', '3')),
                              prefix=os.environ.get('CRYO_FLEET_PREFIX', 'cryo-fleet'))
    messages = []
    try:
        bed.up(log=messages.append)
    except RuntimeError as error:
        bed.down(log=messages.append)
        raise AssertionError('the fleet did not come up: %s\n%s' % (error, '\n'.join(messages))) from None
    try:
        yield FleetBed(bed)
    finally:
        if os.environ.get('CRYO_FLEET_KEEP') != '1':
            bed.down(log=messages.append)
