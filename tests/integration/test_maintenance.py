"""cryo.docker.reboot_hosts and the maintenance role, on the simulated fleet (three Docker
Engines side by side, each an inventory host).

The "reboot" is tests/testbed/simulate_reboot.yml: every process of the host's engine and
its containers is killed, then the engine starts again. After the play every counter must
continue where it was (its output is 0, 1, 2 ... with no restart and no gap), the published
port serves again, restart policies are back. Faults: a container that cannot be
checkpointed (abort: nothing rebooted, everything still running), a damaged checkpoint
(fail / cold_start), and a controller that dies after the freeze (recover playbook).
Nothing is lost in any of them.
"""

import json
import os
import uuid

import pytest

from helpers import (COUNTER, TESTBED, checkpoints, collection_playbook, counter, counter_lines, free_port,
                     run_playbook, state, wait_counter, wait_http, wait_running)

STATE_ROOT = '/var/tmp/cryo-maintenance-test'
SIMULATE_REBOOT = os.path.abspath(os.path.join(TESTBED, 'simulate_reboot.yml'))

REBOOT_HOSTS = collection_playbook('reboot_hosts')

RECOVER = collection_playbook('recover')

# A controller that dies after the freeze: the play ends before the thaw.
DIE_AFTER_FREEZE = """---
- name: The controller dies here
  ansible.builtin.meta: end_play
"""

# An action that fails with the host up, as ansible.builtin.reboot on a host without D-Bus does.
FAILING_ACTION = """---
- name: Reboot the host (no D-Bus here)
  ansible.builtin.fail:
    msg: "Failed to connect to bus: No such file or directory"
"""

# A checkpoint damaged while the host is down: CRIU cannot restore it.
DAMAGE_CHECKPOINT = """---
- name: Power-cut the engine
  ansible.builtin.include_tasks: %s

- name: Damage the checkpoint of the victim
  ansible.builtin.file:
    path: "{{ cryo_test_checkpoints }}/{{ maintenance_checkpoint }}/pages-1.img"
    state: absent
  vars:
    cryo_test_checkpoints: "{{ cryo_fleet_data_root }}/containers/{{ cryo_test_victim_id }}/checkpoints"
""" % SIMULATE_REBOOT


class Workload:
    """Containers on the fleet's engines, removed afterwards."""

    def __init__(self, fleet):
        self.fleet = fleet
        self.made = []
        self.tag = uuid.uuid4().hex[:6]

    def create(self, host, kind, command=COUNTER, port=None, restart_policy=None, labels=None, network_mode=None):
        client = self.fleet.clients[host]
        name = 'maint-%s-%s-%s' % (kind, host, self.tag)
        host_config = client.create_host_config(
            port_bindings={8080: ('127.0.0.1', port)} if port else None, network_mode=network_mode,
            restart_policy=restart_policy)
        client.create_container('cryo-test/busybox:1', ['/bin/sh', '-c', command], name=name, stop_timeout=1,
                                host_config=host_config, ports=[8080] if port else None, labels=labels)
        client.start(name)
        self.made.append((host, name))
        return name

    def remove(self):
        for host, name in self.made:
            try:
                self.fleet.clients[host].remove_container(name, force=True)
            except Exception:  # pylint: disable=broad-except
                pass


@pytest.fixture
def workload(fleet):
    bed = Workload(fleet)
    yield bed
    bed.remove()


def play(fleet, text, state_dir, limit=None, check=False, **extra):
    extra_vars = dict(maintenance_state_dir=state_dir + '/{{ inventory_hostname }}', **extra)
    return run_playbook(text, fleet.inventory, limit=limit, extra_vars=extra_vars,
                        options=['--check'] if check else [])


def manifest(state_dir, host):
    with open(os.path.join(state_dir, host, 'manifest.json')) as handle:
        return json.load(handle)


def assert_continued(client, name, at_least):
    """One process counted all along: the output is 0, 1, 2 ... with no restart from 0 and no gap."""
    assert wait_running(client, name)
    wait_counter(client, name, at_least + 2)
    lines = counter_lines(client, name)
    assert lines == list(range(len(lines))), '%s restarted or skipped: %s' % (name, lines)


def warm(fleet, names_by_host):
    last = {}
    for host, names in names_by_host.items():
        for name in names:
            last[(host, name)] = wait_counter(fleet.clients[host], name, 2)
    return last


@pytest.mark.timeout(240)  # a rolling reboot of three engines: ~70 s here
def test_reboot_hosts_rolls_over_the_fleet(fleet, workload, state_dir):
    hosts = fleet.hosts
    counters = {host: [workload.create(host, 'counter')] for host in hosts}
    always = workload.create(hosts[0], 'always', restart_policy={'Name': 'always'})
    counters[hosts[0]].append(always)
    port = free_port()
    web = workload.create(hosts[1], 'web', 'echo still here > /www/index.html; exec httpd -f -p 8080 -h /www',
                          port=port)
    skipped = workload.create(hosts[2], 'skipped', labels={'cryo.skip': 'yes'})
    assert wait_http(port) == 'still here'
    last = warm(fleet, counters)
    pids = {host: fleet.engine(host).pid() for host in hosts}

    proc = play(fleet, REBOOT_HOSTS, state_dir, maintenance_action='tasks',
                maintenance_tasks_file=SIMULATE_REBOOT, maintenance_exclude_labels=['cryo.skip'])
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]

    for host in hosts:
        assert fleet.engine(host).pid() != pids[host], '%s was not "rebooted"' % host
        record = manifest(state_dir, host)
        assert record['status'] == 'complete'
        assert all(c['status'] == 'restored' and c['verified'] for c in record['containers']), record
        assert all(c['checkpoint_removed'] for c in record['containers'])
    for (host, name), value in last.items():
        assert_continued(fleet.clients[host], name, value)
    assert fleet.clients[hosts[0]].inspect_container(always)['HostConfig']['RestartPolicy']['Name'] == 'always'
    assert wait_http(port) == 'still here'
    assert state(fleet.clients[hosts[1]], web)['Running']
    # The excluded container was not frozen: the power cut killed it.
    assert skipped not in [c['container'] for c in manifest(state_dir, hosts[2])['containers']]
    assert not state(fleet.clients[hosts[2]], skipped)['Running']
    # Rolling, one host at a time: each host's play ran in its own batch.
    assert proc.stdout.count('PLAY [Reboot hosts') == len(hosts)
    assert 'restored (verified)' in proc.stdout


def test_check_mode_shows_the_plan_and_changes_nothing(fleet, workload, state_dir):
    host = fleet.hosts[0]
    name = workload.create(host, 'counter')
    last = warm(fleet, {host: [name]})
    pid = fleet.engine(host).pid()
    proc = play(fleet, REBOOT_HOSTS, state_dir, limit=host, check=True, maintenance_action='tasks',
                maintenance_tasks_file=SIMULATE_REBOOT)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert 'Freeze as checkpoint' in proc.stdout and name in proc.stdout
    assert fleet.engine(host).pid() == pid
    assert not os.path.exists(os.path.join(state_dir, host))
    assert fleet.clients[host].inspect_container(name)['State']['Running']
    assert_continued(fleet.clients[host], name, last[(host, name)])
    listed = checkpoints(fleet.clients[host], name)
    assert not listed


def test_engine_restart_action(fleet, workload, state_dir):
    host = fleet.hosts[1]
    names = [workload.create(host, 'counter'), workload.create(host, 'always', restart_policy={'Name': 'always'})]
    last = warm(fleet, {host: names})
    pid = fleet.engine(host).pid()
    proc = play(fleet, REBOOT_HOSTS, state_dir, limit=host, maintenance_action='engine_restart')
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert fleet.engine(host).pid() != pid, 'the engine was not restarted'
    for name in names:
        assert_continued(fleet.clients[host], name, last[(host, name)])
    assert manifest(state_dir, host)['status'] == 'complete'


def test_abort_when_a_container_cannot_be_checkpointed(fleet, workload, state_dir, tcp_peer):
    host = fleet.hosts[2]
    port, peers = tcp_peer
    good = workload.create(host, 'counter')
    stuck = workload.create(host, 'tcp', network_mode='host', command=(
        '(while true; do echo x; sleep 1; done) | nc 127.0.0.1 %d & '
        'i=0; while true; do echo $i; i=$(expr $i + 1); sleep 1; done' % port))
    last = warm(fleet, {host: [good, stuck]})
    assert peers, 'the container did not connect'
    pid = fleet.engine(host).pid()

    proc = play(fleet, REBOOT_HOSTS, state_dir, limit=host, maintenance_action='tasks',
                maintenance_tasks_file=SIMULATE_REBOOT)

    assert proc.returncode != 0
    assert 'aborted before the tasks' in proc.stdout, proc.stdout[-4000:]
    assert 'tcp-established' in proc.stdout
    assert fleet.engine(host).pid() == pid, 'the host was "rebooted" although a checkpoint failed'
    # Nothing lost: the frozen one was resumed, the other never stopped.
    assert_continued(fleet.clients[host], good, last[(host, good)])
    assert_continued(fleet.clients[host], stuck, last[(host, stuck)])
    record = manifest(state_dir, host)
    assert record['status'] == 'aborted'
    assert {c['container']: c['status'] for c in record['containers']}[stuck] == 'checkpoint_failed'


def test_failed_restore_fail_then_cold_start(fleet, workload, state_dir, tmp_path):
    host = fleet.hosts[0]
    good = workload.create(host, 'counter')
    victim = workload.create(host, 'victim')
    last = warm(fleet, {host: [good, victim]})
    client = fleet.clients[host]
    tasks = tmp_path / 'damage.yml'
    tasks.write_text(DAMAGE_CHECKPOINT)
    victim_id = client.inspect_container(victim)['Id']

    proc = play(fleet, REBOOT_HOSTS, state_dir, limit=host, maintenance_action='tasks',
                maintenance_tasks_file=str(tasks), cryo_test_victim_id=victim_id,
                maintenance_restore_fallback='fail')
    assert proc.returncode != 0
    assert 'could not be restored' in proc.stdout, proc.stdout[-4000:]
    assert_continued(client, good, last[(host, good)])
    # fail: the victim stays stopped and keeps its checkpoint.
    assert not state(client, victim)['Running']
    record = manifest(state_dir, host)
    checkpoint = record['checkpoint']
    assert record['status'] == 'restore_failed'
    assert [c['status'] for c in record['containers'] if c['container'] == victim] == ['restore_failed']
    kept = os.path.join(fleet.engine(host).data_root, 'containers', victim_id, 'checkpoints', checkpoint)
    assert os.path.isdir(kept)

    # The operator accepts a fresh start: the recover playbook with cold_start.
    proc = play(fleet, RECOVER, state_dir, limit=host, maintenance_restore_fallback='cold_start')
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert wait_running(client, victim)
    assert counter_lines(client, victim).count(0) == 2, 'the victim was not started afresh'
    statuses = [c['status'] for c in manifest(state_dir, host)['containers'] if c['container'] == victim]
    assert statuses == ['cold_started'], proc.stdout[-5000:]
    assert os.path.isdir(kept), 'a cold start must keep the checkpoint'
    assert 'cold_started' in proc.stdout


def test_a_failed_action_restores_what_it_froze_then_fails(fleet, workload, state_dir, tmp_path):
    """The action fails with the host up: the role restores every container it froze (verified, policies back),
    then fails the host with the action's error. The applications never stay down."""
    host = fleet.hosts[2]
    names = [workload.create(host, 'counter'), workload.create(host, 'always', restart_policy={'Name': 'always'})]
    last = warm(fleet, {host: names})
    client = fleet.clients[host]
    tasks = tmp_path / 'fails.yml'
    tasks.write_text(FAILING_ACTION)

    proc = play(fleet, REBOOT_HOSTS, state_dir, limit=host, maintenance_action='tasks',
                maintenance_tasks_file=str(tasks))
    assert proc.returncode != 0, proc.stdout[-4000:]
    assert 'Failed to connect to bus' in proc.stdout and 'were restored' in proc.stdout, proc.stdout[-4000:]
    for name in names:
        assert_continued(client, name, last[(host, name)])
        assert checkpoints(client, name) == [], 'a verified restore removes its checkpoint'
    assert client.inspect_container(names[1])['HostConfig']['RestartPolicy']['Name'] == 'always'
    assert manifest(state_dir, host)['status'] == 'complete'


def test_a_failed_action_leaves_them_frozen_when_asked(fleet, workload, state_dir, tmp_path):
    host = fleet.hosts[0]
    name = workload.create(host, 'always', restart_policy={'Name': 'always'})
    last = warm(fleet, {host: [name]})
    client = fleet.clients[host]
    tasks = tmp_path / 'fails.yml'
    tasks.write_text(FAILING_ACTION)

    proc = play(fleet, REBOOT_HOSTS, state_dir, limit=host, maintenance_action='tasks',
                maintenance_tasks_file=str(tasks), maintenance_on_action_failure='leave_frozen')
    assert proc.returncode != 0 and 'stay checkpointed and stopped' in proc.stdout, proc.stdout[-4000:]
    assert not state(client, name)['Running']
    assert client.inspect_container(name)['HostConfig']['RestartPolicy']['Name'] == 'no'
    proc = play(fleet, RECOVER, state_dir, limit=host)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert_continued(client, name, last[(host, name)])
    assert client.inspect_container(name)['HostConfig']['RestartPolicy']['Name'] == 'always'


def test_interrupted_after_freeze_is_recovered(fleet, workload, state_dir, tmp_path):
    host = fleet.hosts[1]
    names = [workload.create(host, 'counter'), workload.create(host, 'always', restart_policy={'Name': 'always'})]
    last = warm(fleet, {host: names})
    client = fleet.clients[host]
    tasks = tmp_path / 'die.yml'
    tasks.write_text(DIE_AFTER_FREEZE)

    proc = play(fleet, REBOOT_HOSTS, state_dir, limit=host, maintenance_action='tasks',
                maintenance_tasks_file=str(tasks))
    # The play ended after the freeze: the containers are frozen, the manifest knows.
    for name in names:
        assert not state(client, name)['Running']
    assert manifest(state_dir, host)['status'] == 'action'
    frozen = {name: counter(client, name) for name in names}

    # A new run refuses to freeze on top of it.
    proc = play(fleet, REBOOT_HOSTS, state_dir, limit=host, maintenance_action='none')
    assert proc.returncode != 0
    assert 'did not finish' in proc.stdout and 'recover' in proc.stdout

    proc = play(fleet, RECOVER, state_dir, limit=host)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    for name in names:
        assert frozen[name] >= last[(host, name)]
        assert_continued(client, name, frozen[name])
    assert client.inspect_container(names[1])['HostConfig']['RestartPolicy']['Name'] == 'always'
    assert manifest(state_dir, host)['status'] == 'complete'

    # Recovering again finds nothing to do.
    proc = play(fleet, RECOVER, state_dir, limit=host)
    assert proc.returncode == 0 and 'Nothing to recover' in proc.stdout
