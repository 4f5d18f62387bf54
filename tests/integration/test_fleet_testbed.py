"""The simulated fleet works for real: three Docker Engines side by side, and a power cut of
one engine (tests/testbed/simulate_reboot.yml) that checkpoints survive.

On every engine: a counter, a counter with restart policy `always`, and busybox httpd on a
published port. Each is checkpointed with cryo.docker.docker_checkpoint on its own engine,
every process of the engine is killed and the engine started again, then
cryo.docker.docker_restore brings each back: the counters continue where they were (their
output is 0, 1, 2 ... without a gap or a restart) and the port serves again.
"""

import concurrent.futures
import os
import socket
import time
import urllib.error
import urllib.request
import uuid

import pytest

from conftest import COUNTER, checkpoint_path, checkpoints, counter, counter_lines, run_module, state, wait_counter, wait_running

REBOOT = """
- name: Simulate a reboot
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Power-cut the engine and start it again
      ansible.builtin.include_tasks: {testbed}/simulate_reboot.yml
"""

RESTART = """
- name: Restart the engine gracefully
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Stop the engine and start it again
      ansible.builtin.include_tasks: {testbed}/restart_engine.yml
"""

CHECKPOINT = 'fleet-cp'


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def http_get(port, timeout=2):
    with urllib.request.urlopen('http://127.0.0.1:%d/index.html' % port, timeout=timeout) as response:
        return response.read().decode().strip()


def wait_http(port, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return http_get(port)
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def create(client, name, command, ports=None, restart_policy=None):
    host_config = client.create_host_config(
        port_bindings={8080: ('127.0.0.1', ports)} if ports else None,
        restart_policy=restart_policy, security_opt=['seccomp=unconfined'])
    client.create_container('cryo-test/busybox:1', ['/bin/sh', '-c', command], name=name,
                            host_config=host_config, ports=[8080] if ports else None)
    client.start(name)


def dockerd_pid(fleet, host):
    return fleet.engine(host).pid()


@pytest.fixture
def workloads(fleet):
    """Per host: {'counter': name, 'always': name, 'web': name, 'port': int}; removed afterwards."""
    tag = uuid.uuid4().hex[:6]
    made = {}
    for host in fleet.hosts:
        client = fleet.clients[host]
        names = {kind: 'fleettest-%s-%s-%s' % (kind, host, tag) for kind in ('counter', 'always', 'web')}
        port = free_port()
        create(client, names['counter'], COUNTER)
        create(client, names['always'], COUNTER, restart_policy={'Name': 'always'})
        create(client, names['web'], 'echo served by %s > /www/index.html; exec httpd -f -p 8080 -h /www' % host,
               ports=port)
        made[host] = dict(names, port=port)
    yield made
    for host, names in made.items():
        client = fleet.clients[host]
        for kind in ('counter', 'always', 'web'):
            try:
                client.remove_container(names[kind], force=True)
            except Exception:  # pylint: disable=broad-except
                pass  # the engine may be down after a failed test; fleet teardown removes it all


def checkpoint_host(fleet, host, names):
    """Checkpoint the three containers of one host with the module; the counters' last values."""
    client = fleet.clients[host]
    last = {}
    for kind in ('counter', 'always', 'web'):
        result = run_module('docker_checkpoint', {
            'container': names[kind], 'checkpoint': CHECKPOINT, 'docker_host': fleet.docker_host(host)})
        assert result.get('changed') and not result.get('failed'), result
        assert not state(client, names[kind])['Running']
        if kind != 'web':
            last[kind] = counter(client, names[kind])
    assert client.inspect_container(names['always'])['HostConfig']['RestartPolicy']['Name'] == 'no'
    return last


def restore_host(fleet, host, names):
    for kind in ('counter', 'always', 'web'):
        result = run_module('docker_restore', {
            'container': names[kind], 'checkpoint': CHECKPOINT, 'docker_host': fleet.docker_host(host)})
        assert result.get('changed') and not result.get('failed'), result


def assert_frozen(fleet, host, names, last):
    """After the power cut: the engine is back, every container is stopped, not cold-started,
    and its checkpoint is listed and on disk."""
    client = fleet.clients[host]
    assert client.ping()
    assert client.version().get('Experimental')
    for kind in ('counter', 'always', 'web'):
        assert not state(client, names[kind])['Running'], '%s was started by the engine' % names[kind]
        assert checkpoints(client, names[kind]) == [CHECKPOINT]
        assert os.path.isdir(checkpoint_path(client, names[kind], CHECKPOINT))
    for kind, value in last.items():
        assert counter(client, names[kind]) == value, '%s ran after the checkpoint' % names[kind]
    with pytest.raises((urllib.error.URLError, OSError)):
        http_get(names['port'], timeout=1)


def assert_resumed(fleet, host, names, last):
    client = fleet.clients[host]
    for kind, value in last.items():
        assert wait_running(client, names[kind])
        wait_counter(client, names[kind], value + 2)
        lines = counter_lines(client, names[kind])
        # One process counted all along: no restart from 0, no gap, no repeat.
        assert lines == list(range(len(lines))), '%s: %s' % (names[kind], lines)
    assert client.inspect_container(names['always'])['HostConfig']['RestartPolicy']['Name'] == 'always'
    assert wait_http(names['port']) == 'served by %s' % host


def test_power_cut_keeps_checkpoints_and_restores(fleet, workloads, engine):
    started = time.monotonic()
    first, others = fleet.hosts[0], fleet.hosts[1:]
    for host, names in workloads.items():
        client = fleet.clients[host]
        for kind in ('counter', 'always'):
            wait_counter(client, names[kind], 2)
        assert wait_http(names['port']) == 'served by %s' % host
    pids = {host: dockerd_pid(fleet, host) for host in fleet.hosts}
    main_engine = engine.info()['ID']

    # One engine alone: the power cut touches nothing of the others (nor of the main engine).
    last = {first: checkpoint_host(fleet, first, workloads[first])}
    before = {host: counter(fleet.clients[host], workloads[host]['counter']) for host in others}
    proc = fleet.playbook(REBOOT, limit=first)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert dockerd_pid(fleet, first) not in (None, pids[first])
    assert_frozen(fleet, first, workloads[first], last[first])
    for host in others:
        assert dockerd_pid(fleet, host) == pids[host]
        assert state(fleet.clients[host], workloads[host]['counter'])['Running']
        wait_counter(fleet.clients[host], workloads[host]['counter'], before[host] + 1)
        assert wait_http(workloads[host]['port']) == 'served by %s' % host
    assert engine.info()['ID'] == main_engine and engine.ping()

    # The two others at once, in one play.
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(others)) as pool:
        for host, values in zip(others, pool.map(lambda h: checkpoint_host(fleet, h, workloads[h]), others)):
            last[host] = values
    proc = fleet.playbook(REBOOT, limit=others)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for host in others:
        assert dockerd_pid(fleet, host) not in (None, pids[host])
        assert_frozen(fleet, host, workloads[host], last[host])

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(fleet.hosts)) as pool:
        list(pool.map(lambda h: restore_host(fleet, h, workloads[h]), fleet.hosts))
    for host in fleet.hosts:
        assert_resumed(fleet, host, workloads[host], last[host])
    print('power cut and restore of %d engines: %.1f s' % (len(fleet.hosts), time.monotonic() - started))


def test_graceful_engine_restart_keeps_checkpoints(fleet, workloads):
    host = fleet.hosts[-1]
    names = workloads[host]
    client = fleet.clients[host]
    wait_counter(client, names['counter'], 2)
    pid = dockerd_pid(fleet, host)
    last = checkpoint_host(fleet, host, names)
    proc = fleet.playbook(RESTART, limit=host)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert dockerd_pid(fleet, host) not in (None, pid)
    assert_frozen(fleet, host, names, last)
    restore_host(fleet, host, names)
    assert_resumed(fleet, host, names, last)
