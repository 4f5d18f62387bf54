"""cryo.docker.reboot_hosts and the maintenance role, on the simulated fleet (three Docker
Engines side by side, each an inventory host).

The "reboot" is tests/testbed/simulate_reboot.yml: every process of the host's engine and
its containers is killed, then the engine starts again. After the play every counter must
continue where it was (its output is 0, 1, 2 ... with no restart and no gap), the published
port serves again, restart policies are back. Faults: a container that cannot be
checkpointed (abort: nothing rebooted, everything still running), a damaged checkpoint
(fail / cold_start), and a controller that dies after the freeze (recover playbook).
Nothing is lost in any of them.

Compose projects (containers with Compose's labels, made through the Engine API, on a network of
their own; no TCP between members): a project is checkpointed as one group and resumes whole (the
counter carries on, redis is the same process with its data); a project with a member CRIU cannot
dump (an io_uring: preflight names it; a TCP connection to the host: the group checkpoint is
refused) stops the run with nothing rebooted and everything running, or, with
maintenance_on_project_failure=skip, is left running whole while the rest goes through the reboot.
"""

import json
import os
import subprocess
import time
import uuid

import pytest

import build_apps
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
        self.networks = []
        self.tag = uuid.uuid4().hex[:6]

    def create(self, host, kind, command=COUNTER, port=None, restart_policy=None, labels=None, network_mode=None,
               app=None):
        """A container of the busybox image running command, or of a test application (build_apps.APPS[app])."""
        client = self.fleet.clients[host]
        name = 'maint-%s-%s-%s' % (kind, host, self.tag)
        host_config = client.create_host_config(
            port_bindings={8080: ('127.0.0.1', port)} if port else None, network_mode=network_mode,
            restart_policy=restart_policy)
        image, argv = ((build_apps.APPS[app]['tag'], build_apps.APPS[app]['cmd']) if app
                       else ('cryo-test/busybox:1', ['/bin/sh', '-c', command]))
        client.create_container(image, argv, name=name, stop_timeout=1,
                                host_config=host_config, ports=[8080] if port else None, labels=labels)
        client.start(name)
        self.made.append((host, name))
        return name

    def member(self, host, project, service, depends=None, bridge=None, **kwargs):
        """A container of a Compose-style project, with the labels Compose writes, on the project's own network
        (made with the first member; its Linux bridge named `bridge` when given) unless network_mode says
        otherwise."""
        name = '%s-%s' % (project, self.tag)
        if (host, name) not in self.networks:
            self.fleet.clients[host].create_network(name + '_default', driver='bridge', labels={
                'com.docker.compose.project': name, 'com.docker.compose.network': 'default'},
                options={'com.docker.network.bridge.name': bridge} if bridge else None)
            self.networks.append((host, name))
        labels = {'com.docker.compose.project': name, 'com.docker.compose.service': service,
                  'com.docker.compose.container-number': '1', 'com.docker.compose.oneoff': 'False'}
        if depends:
            labels['com.docker.compose.depends_on'] = '%s:service_started:false' % depends
        kwargs.setdefault('network_mode', name + '_default')
        return self.create(host, '%s-%s' % (project, service), labels=labels, **kwargs)

    def project(self, project):
        return '%s-%s' % (project, self.tag)

    def remove(self):
        for host, name in self.made:
            try:
                self.fleet.clients[host].remove_container(name, force=True)
            except Exception:  # pylint: disable=broad-except
                pass
        for host, name in self.networks:
            try:
                self.fleet.clients[host].remove_network(name + '_default')
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


# -- Compose projects -------------------------------------------------------------------------------------------------

# A member that keeps a TCP connection to the host's loopback open (the host's network): CRIU refuses to dump it
# without tcp-established, so the group checkpoint of its project is refused - every member thawed, running on.
TCP_MEMBER = ('(while true; do echo x; sleep 1; done) | nc 127.0.0.1 %d & '
              'i=0; while true; do echo $i; i=$(expr $i + 1); sleep 1; done')


def load_apps(fleet, engine, host, *apps):
    """The test applications' images on a fleet engine (built on the main engine first when needed)."""
    for app in apps:
        build_apps.build(engine, app)
        if not engine.images(name=build_apps.APPS[app]['tag']):
            pytest.skip('image %s could not be built here (no C compiler?)' % build_apps.APPS[app]['tag'])
        fleet.engine(host).load_image(build_apps.APPS[app]['tag'])


def redis_cli(client, name, *args, timeout=15):
    """redis-cli in the redis container (through the engine's exec), retried until redis answers; its output."""
    deadline = time.monotonic() + timeout
    while True:
        run = client.exec_create(name, ['redis-cli'] + list(args))
        out = client.exec_start(run['Id']).decode(errors='replace').strip()
        if client.exec_inspect(run['Id'])['ExitCode'] == 0 and 'Connection refused' not in out:
            return out
        if time.monotonic() > deadline:
            raise AssertionError('redis in %s does not answer: %s' % (name, out))
        time.sleep(0.3)


def redis_run_id(client, name):
    """redis's run_id: new each time redis-server starts, the same after a restore."""
    return redis_cli(client, name, 'INFO', 'server').split('run_id:')[1].split()[0]


def reboot(fleet, state_dir, host, **extra):
    """The reboot_hosts playbook on one host, with the simulated reboot as its action."""
    return play(fleet, REBOOT_HOSTS, state_dir, limit=host, maintenance_action='tasks',
                maintenance_tasks_file=SIMULATE_REBOOT, **extra)


def assert_nothing_rebooted(fleet, host, pid, last):
    """The engine was not "rebooted", every container carried on and keeps no checkpoint."""
    assert fleet.engine(host).pid() == pid, 'the host was "rebooted" although a project could not be checkpointed'
    for (_host, name), value in last.items():
        assert_continued(fleet.clients[host], name, value)
        assert checkpoints(fleet.clients[host], name) == []


def never_restarted(client, name):
    """A counter that was left alone until the power cut: 0, 1, 2 ... with no restart and no gap."""
    lines = counter_lines(client, name)
    assert lines and lines == list(range(len(lines))), '%s restarted or skipped: %s' % (name, lines)


@pytest.mark.timeout(240)
def test_a_compose_project_resumes_whole_after_the_reboot(fleet, workload, state_dir, engine):
    """redis and a counter labelled as one Compose project (on its network), and a plain counter: the project is
    checkpointed as one group, the host "reboots", the project comes back whole - the counter carries on, redis is
    the same process with its data - and the report shows the project and how long it was frozen."""
    host = fleet.hosts[0]
    client = fleet.clients[host]
    load_apps(fleet, engine, host, 'redis')
    shop = workload.project('shop')
    redis = workload.member(host, 'shop', 'redis', app='redis')
    count = workload.member(host, 'shop', 'counter', depends='redis')
    plain = workload.create(host, 'counter')
    assert redis_cli(client, redis, 'SET', 'kept', 'written before the reboot') == 'OK'
    run_id = redis_run_id(client, redis)
    last = warm(fleet, {host: [count, plain]})
    pid = fleet.engine(host).pid()

    started = time.monotonic()
    proc = reboot(fleet, state_dir, host)
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]

    assert fleet.engine(host).pid() != pid, '%s was not "rebooted"' % host
    record = manifest(state_dir, host)
    assert record['status'] == 'complete', record
    [project] = record['projects']
    assert project['project'] == shop and project['status'] == 'restored', project
    assert sorted(project['members']) == sorted([redis, count])
    assert 0 < project['frozen_seconds'] < 30, project
    entries = {c['container']: c for c in record['containers']}
    assert all(c['status'] == 'restored' and c['verified'] for c in entries.values()), entries
    assert entries[redis]['project'] == entries[count]['project'] == shop and 'project' not in entries[plain]
    for name in (count, plain):
        assert_continued(client, name, last[(host, name)])
    assert redis_run_id(client, redis) == run_id, 'redis started afresh'
    assert redis_cli(client, redis, 'GET', 'kept') == 'written before the reboot'
    assert 'project restored: ' in proc.stdout and shop in proc.stdout
    print('maintenance with a Compose project of 2 and a container: %.1f s; the project frozen %.3f s; %s'
          % (took, project['frozen_seconds'], ', '.join('%s checkpoint %s s, CRIU frozen %s s, restore %s s' % (
              what, entries[name]['checkpoint_seconds'], entries[name]['frozen_seconds'],
              entries[name]['restore_seconds']) for what, name in (('redis', redis), ('counter', count),
                                                                   ('plain counter', plain)))))


@pytest.mark.timeout(180)
def test_a_project_member_preflight_cannot_checkpoint_stops_the_run(fleet, workload, state_dir, engine):
    """A member that holds an io_uring (CRIU cannot dump it; preflight sees it): the run stops before anything is
    checkpointed - nothing rebooted, every container running on, no checkpoint, no manifest."""
    host = fleet.hosts[1]
    load_apps(fleet, engine, host, 'uring')
    blog = workload.project('blog')
    count = workload.member(host, 'blog', 'counter')
    uring = workload.member(host, 'blog', 'cache', app='uring')
    plain = workload.create(host, 'counter')
    last = warm(fleet, {host: [count, uring, plain]})
    pid = fleet.engine(host).pid()

    proc = reboot(fleet, state_dir, host)

    assert proc.returncode != 0
    assert 'stopped before anything was checkpointed' in proc.stdout, proc.stdout[-5000:]
    assert 'Compose project %s (' % blog in proc.stdout and 'io_uring' in proc.stdout, proc.stdout[-5000:]
    assert 'maintenance_on_project_failure=skip' in proc.stdout
    assert_nothing_rebooted(fleet, host, pid, last)
    assert not os.path.exists(os.path.join(state_dir, host, 'manifest.json'))


@pytest.mark.timeout(180)
def test_a_project_whose_group_checkpoint_is_refused_aborts_the_run(fleet, workload, state_dir, tcp_peer):
    """A member with a TCP connection open (CRIU refuses it without tcp-established, which preflight does not see):
    the group checkpoint is refused whole (every member thawed), the role aborts - the plain container it had
    checkpointed is resumed, nothing is rebooted, every container carries on."""
    host = fleet.hosts[2]
    port, peers = tcp_peer
    chat = workload.project('chat')
    count = workload.member(host, 'chat', 'counter')
    relay = workload.member(host, 'chat', 'relay', network_mode='host', command=TCP_MEMBER % port)
    plain = workload.create(host, 'counter')
    last = warm(fleet, {host: [count, relay, plain]})
    assert peers, 'the relay did not connect'
    pid = fleet.engine(host).pid()

    proc = reboot(fleet, state_dir, host)

    assert proc.returncode != 0
    assert 'aborted before the tasks' in proc.stdout, proc.stdout[-5000:]
    assert 'Compose project %s as one' % chat in proc.stdout and 'tcp-established' in proc.stdout, proc.stdout[-5000:]
    assert_nothing_rebooted(fleet, host, pid, last)
    record = manifest(state_dir, host)
    assert record['status'] == 'aborted', record
    assert [(p['project'], p['status']) for p in record['projects']] == [(chat, 'checkpoint_failed')]
    statuses = {c['container']: c['status'] for c in record['containers']}
    assert statuses == {count: 'checkpoint_failed', relay: 'checkpoint_failed', plain: 'restored'}, statuses


@pytest.mark.timeout(240)
def test_projects_that_cannot_be_checkpointed_are_skipped_whole_when_allowed(fleet, workload, state_dir, engine,
                                                                             tcp_peer):
    """maintenance_on_project_failure=skip: a project with an io_uring member (preflight) and one whose group
    checkpoint is refused (a TCP connection) are left running whole, never checkpointed; the good project and the
    plain container go through the reboot and resume."""
    host = fleet.hosts[0]
    client = fleet.clients[host]
    port, peers = tcp_peer
    load_apps(fleet, engine, host, 'redis', 'uring')
    shop, blog, chat = workload.project('shop'), workload.project('blog'), workload.project('chat')
    redis = workload.member(host, 'shop', 'redis', app='redis')
    count = workload.member(host, 'shop', 'counter', depends='redis')
    skipped = [workload.member(host, 'blog', 'counter'), workload.member(host, 'blog', 'cache', app='uring'),
               workload.member(host, 'chat', 'counter'),
               workload.member(host, 'chat', 'relay', network_mode='host', command=TCP_MEMBER % port)]
    plain = workload.create(host, 'counter')
    run_id = redis_run_id(client, redis)
    last = warm(fleet, {host: [count, plain] + skipped})
    assert peers, 'the relay did not connect'
    pid = fleet.engine(host).pid()

    proc = reboot(fleet, state_dir, host, maintenance_on_project_failure='skip')
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]

    assert fleet.engine(host).pid() != pid, '%s was not "rebooted"' % host
    record = manifest(state_dir, host)
    assert record['status'] == 'complete', record
    projects = {p['project']: p for p in record['projects']}
    assert {name: p['status'] for name, p in projects.items()} == {shop: 'restored', blog: 'skipped', chat: 'skipped'}
    assert 'io_uring' in ' '.join(projects[blog]['reasons'])
    assert 'tcp-established' in projects[chat]['error']
    statuses = {c['container']: c['status'] for c in record['containers']}
    assert [statuses[name] for name in skipped] == ['skipped'] * 4, statuses
    for name in (count, plain):
        assert_continued(client, name, last[(host, name)])
    assert redis_run_id(client, redis) == run_id, 'redis started afresh'
    for name in skipped:
        # Never checkpointed, never restarted: it ran on until the power cut, which killed it.
        assert checkpoints(client, name) == []
        never_restarted(client, name)
        assert not state(client, name)['Running']
    assert 'left running whole' in proc.stdout and 'project skipped: ' in proc.stdout


@pytest.mark.timeout(180)
def test_recover_brings_a_project_back_whole(fleet, workload, state_dir, engine, tmp_path):
    """The controller dies after the checkpoints: the project's members are stopped at one point in time; the recover
    playbook restores the project whole (one group call), redis the same process, the counter carrying on."""
    host = fleet.hosts[1]
    client = fleet.clients[host]
    load_apps(fleet, engine, host, 'redis')
    shop = workload.project('shop')
    redis = workload.member(host, 'shop', 'redis', app='redis', restart_policy={'Name': 'always'})
    count = workload.member(host, 'shop', 'counter', depends='redis')
    run_id = redis_run_id(client, redis)
    warm(fleet, {host: [count]})
    tasks = tmp_path / 'die.yml'
    tasks.write_text(DIE_AFTER_FREEZE)

    play(fleet, REBOOT_HOSTS, state_dir, limit=host, maintenance_action='tasks', maintenance_tasks_file=str(tasks))
    assert not state(client, redis)['Running'] and not state(client, count)['Running']
    assert manifest(state_dir, host)['projects'][0]['status'] == 'checkpointed'
    frozen = counter(client, count)

    proc = play(fleet, RECOVER, state_dir, limit=host)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    record = manifest(state_dir, host)
    assert record['status'] == 'complete' and record['projects'][0]['status'] == 'restored', record
    assert redis_run_id(client, redis) == run_id, 'redis started afresh'
    assert_continued(client, count, frozen)
    assert client.inspect_container(redis)['HostConfig']['RestartPolicy']['Name'] == 'always'
    assert 'project %s, fail' % shop in proc.stdout, 'not one group call for the project'


@pytest.fixture
def members_may_talk():
    """A Linux bridge name for a project's network whose members may talk to each other: the fleet's engines run
    without iptables, and this machine's FORWARD policy (the main engine's) drops traffic between two containers on
    one bridge; a rule lets it through for this bridge, removed afterwards."""
    bridge = 'cryo-mnt%s' % uuid.uuid4().hex[:6]
    rule = ['FORWARD', '-i', bridge, '-o', bridge, '-j', 'ACCEPT']
    subprocess.run(['iptables', '-I'] + rule, check=True)
    yield bridge
    subprocess.run(['iptables', '-D'] + rule, check=False)


@pytest.mark.timeout(180)
def test_members_talking_over_tcp_resume_with_tcp_established(fleet, workload, state_dir, members_may_talk):
    """maintenance_tcp_established=true: a client member sends 0, 1, 2 ... over one TCP connection to a server
    member (busybox nc), which prints them. The project is checkpointed as one with the connection, the host
    "reboots", and the server's output carries on without a gap: the same connection, both ends restored."""
    host = fleet.hosts[2]
    client = fleet.clients[host]
    server = workload.member(host, 'talk', 'server', bridge=members_may_talk, command=(
        # nc ends when its input does: an input that never ends.
        'while true; do sleep 3600; done | nc -l -p 7000'))
    sender = workload.member(host, 'talk', 'client', depends='server', command=(
        'sleep 1; i=0; while true; do echo $i; i=$(expr $i + 1); sleep 1; done | nc %s 7000' % server))
    last = warm(fleet, {host: [server]})
    pid = fleet.engine(host).pid()

    proc = reboot(fleet, state_dir, host, maintenance_tcp_established=True)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]

    assert fleet.engine(host).pid() != pid, '%s was not "rebooted"' % host
    record = manifest(state_dir, host)
    assert record['status'] == 'complete' and record['projects'][0]['status'] == 'restored', record
    # The server prints what arrives on its one connection: no gap, no restart (nc -l takes one connection).
    assert_continued(client, server, last[(host, server)])
    assert state(client, sender)['Running']
