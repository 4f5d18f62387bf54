"""The simulated fleet works for real: three Docker Engines side by side, and a power cut of
one engine (tests/testbed/simulate_reboot.yml) that checkpoints survive.

On every engine: a counter, a counter with restart policy `always`, and busybox httpd on a
published port. Each is checkpointed with cryo.docker.docker_checkpoint on its own engine,
every process of the engine is killed and the engine started again, then
cryo.docker.docker_restore brings each back: the counters continue where they were (their
output is 0, 1, 2 ... without a gap or a restart) and the port serves again. A fourth
container, not checkpointed (policy `always`), shows the power cut for what it is: it is
killed, and the engine starts it afresh. The same with a graceful engine restart
(tests/testbed/restart_engine.yml).
"""

import os
import time
import urllib.error
import uuid

import pytest

from helpers import (COUNTER, HOST, REBOOT_PLAYBOOK, call_module, checkpoint_path, checkpoints, counter, counter_lines,
                     free_port, http_get, state, wait_counter, wait_http, wait_running)

RESTART = """
- name: Restart the engine gracefully
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Stop the engine and start it again
      ansible.builtin.include_tasks: {testbed}/restart_engine.yml
"""

CHECKPOINT = 'fleet-cp'
KINDS = ('counter', 'always', 'web')


def create(client, name, command, ports=None, restart_policy=None):
    host_config = client.create_host_config(
        port_bindings={8080: ('127.0.0.1', ports)} if ports else None,
        restart_policy=restart_policy)
    # stop_timeout: the shell ignores SIGTERM as PID 1; a graceful engine stop need not wait.
    client.create_container('cryo-test/busybox:1', ['/bin/sh', '-c', command], name=name, stop_timeout=1,
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
        names = {kind: 'fleettest-%s-%s-%s' % (kind, host, tag) for kind in KINDS + ('victim',)}
        port = free_port()
        create(client, names['counter'], COUNTER)
        # Not checkpointed: killed by the power cut, cold-started by the engine (policy always).
        create(client, names['victim'], COUNTER, restart_policy={'Name': 'always'})
        create(client, names['always'], COUNTER, restart_policy={'Name': 'always'})
        create(client, names['web'], 'echo served by %s > /www/index.html; exec httpd -f -p 8080 -h /www' % host,
               ports=port)
        made[host] = dict(names, port=port)
    yield made
    for host, names in made.items():
        client = fleet.clients[host]
        for kind in KINDS + ('victim',):
            try:
                client.remove_container(names[kind], force=True)
            except Exception:  # pylint: disable=broad-except
                pass  # the engine may be down after a failed test; fleet teardown removes it all


def checkpoint_host(fleet, host, names):
    """Checkpoint the three containers of one host, one run_module each, on that host's engine."""
    for kind in KINDS:
        result = call_module('docker_checkpoint', {
            'container': names[kind], 'checkpoint': CHECKPOINT, 'docker_host': fleet.docker_host(host)})
        assert result.get('changed') and not result.get('failed'), result
    return after_checkpoint(fleet, host, names)


def checkpoint_hosts(fleet, hosts, workloads):
    """Checkpoint the containers of several hosts in one play (each on its cryo_docker_host)."""
    results = fleet.run_module('docker_checkpoint', {
        host: [{'container': workloads[host][kind], 'checkpoint': CHECKPOINT} for kind in KINDS] for host in hosts})
    for host in hosts:
        for result in results[host]:
            assert result.get('changed') and not result.get('failed'), result
    return {host: after_checkpoint(fleet, host, workloads[host]) for host in hosts}


def after_checkpoint(fleet, host, names):
    """The containers stopped at the checkpoint, policy held; the counters' last values."""
    client = fleet.clients[host]
    for kind in KINDS:
        assert not state(client, names[kind])['Running']
    assert client.inspect_container(names['always'])['HostConfig']['RestartPolicy']['Name'] == 'no'
    return {kind: counter(client, names[kind]) for kind in ('counter', 'always')}


def restore_hosts(fleet, hosts, workloads):
    results = fleet.run_module('docker_restore', {
        host: [{'container': workloads[host][kind], 'checkpoint': CHECKPOINT} for kind in KINDS] for host in hosts})
    for host in hosts:
        assert len(results[host]) == len(KINDS)
        for result in results[host]:
            assert result.get('changed') and not result.get('failed'), result


def assert_frozen(fleet, host, names, last):
    """After the power cut: the engine is back, every container is stopped, not cold-started,
    and its checkpoint is listed and on disk."""
    client = fleet.clients[host]
    assert client.ping()
    assert client.version().get('Experimental')
    for kind in KINDS:
        assert not state(client, names[kind])['Running'], '%s was started by the engine' % names[kind]
        assert checkpoints(client, names[kind]) == [CHECKPOINT]
        assert os.path.isdir(checkpoint_path(client, names[kind], CHECKPOINT))
    for kind, value in last.items():
        assert counter(client, names[kind]) == value, '%s ran after the checkpoint' % names[kind]
    with pytest.raises((urllib.error.URLError, OSError)):
        http_get(names['port'], timeout=1)
    # The container that was not checkpointed was killed and started afresh: its counter began again at 0.
    deadline = time.monotonic() + 20
    while counter_lines(client, names['victim']).count(0) < 2:
        assert time.monotonic() < deadline, 'the engine did not cold-start %s' % names['victim']
        time.sleep(0.2)


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


@pytest.mark.timeout(240)  # ~50 s here
def test_power_cut_keeps_checkpoints_and_restores(fleet, workloads, engine):
    started = time.monotonic()
    first, others = fleet.hosts[0], fleet.hosts[1:]
    for host, names in workloads.items():
        client = fleet.clients[host]
        for kind in ('counter', 'always'):
            wait_counter(client, names[kind], 2)
        assert wait_http(names['port']) == 'served by %s' % host
    pids = {host: dockerd_pid(fleet, host) for host in fleet.hosts}
    first_processes = {pid: HOST.cmdline(pid) for pid in fleet.engine(first).processes()}
    main_engine = engine.info()['ID']

    # One engine alone: the power cut touches nothing of the others (nor of the main engine).
    last = {first: checkpoint_host(fleet, first, workloads[first])}
    before = {host: counter(fleet.clients[host], workloads[host]['counter']) for host in others}
    proc = fleet.playbook(REBOOT_PLAYBOOK, limit=first)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert dockerd_pid(fleet, first) not in (None, pids[first])
    survivors = [(pid, args) for pid, args in first_processes.items() if HOST.cmdline(pid) == args]
    assert not survivors, 'processes of %s survived the power cut: %s' % (first, survivors)
    assert_frozen(fleet, first, workloads[first], last[first])
    for host in others:
        assert dockerd_pid(fleet, host) == pids[host]
        assert state(fleet.clients[host], workloads[host]['counter'])['Running']
        assert counter_lines(fleet.clients[host], workloads[host]['victim']).count(0) == 1
        wait_counter(fleet.clients[host], workloads[host]['counter'], before[host] + 1)
        assert wait_http(workloads[host]['port']) == 'served by %s' % host
    assert engine.info()['ID'] == main_engine and engine.ping()

    # The two others at once, in one play.
    last.update(checkpoint_hosts(fleet, others, workloads))
    proc = fleet.playbook(REBOOT_PLAYBOOK, limit=others)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for host in others:
        assert dockerd_pid(fleet, host) not in (None, pids[host])
        assert_frozen(fleet, host, workloads[host], last[host])

    restore_hosts(fleet, fleet.hosts, workloads)
    for host in fleet.hosts:
        assert_resumed(fleet, host, workloads[host], last[host])
    print('power cut and restore of %d engines: %.1f s' % (len(fleet.hosts), time.monotonic() - started))


def test_graceful_engine_restart_keeps_checkpoints(fleet, workloads):
    host = fleet.hosts[-1]
    names = workloads[host]
    client = fleet.clients[host]
    wait_counter(client, names['counter'], 2)
    pid = dockerd_pid(fleet, host)
    last = checkpoint_hosts(fleet, [host], workloads)[host]
    proc = fleet.playbook(RESTART, limit=host)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert dockerd_pid(fleet, host) not in (None, pid)
    assert_frozen(fleet, host, names, last)
    restore_hosts(fleet, [host], workloads)
    assert_resumed(fleet, host, names, last)
