"""cryo.docker.docker_network_holder and the maintenance flow with network holders, on Docker 28.5.

Docker 28.0 to 29.x cannot restore a container that has a network namespace of its own
(moby/moby#50750); a container in a network holder's namespace (`network_mode: container:<holder>`)
restores there. One Docker 28.5 engine of the test bed (fleet.Engine kind '28.5', Debian's
docker.io 28.5.2 + containerd 2.1.9, its own data root, bridge and socket; inventory host '28.5')
runs every test of this file:

- the module creates a holder (check mode first: nothing made), a second run is unchanged, and it
  reports (and refuses) a difference;
- a web server (busybox httpd from the test image, with a counter) and a counter in the holder,
  and a bridge container: a maintenance run aborts before anything is checkpointed (every container
  still runs, same pids, no checkpoint); with maintenance_on_ineligible=skip it checkpoints and
  restores the holder's members and leaves the bridge container alone; with the bridge container
  excluded by its label, everything resumes after a simulated reboot - the holder (restart policy
  "no": the role starts it) comes back first, the counters continue, the web server serves again
  through the holder's published port;
- a holder that is gone after the action: its members fail to restore, clearly, and keep their
  checkpoints;
- bad input: a holder name that is no container, an application container given as the holder, a
  stopped holder (state started starts it; docker_restore of a member refuses until then and keeps
  the checkpoint), a member that is not in container: mode - clear messages, nothing changed.
"""

import json
import os
import uuid

import docker
import pytest

from helpers import (COUNTER, IMAGE, TESTBED, FleetBed, call_module, checkpoints, collection_playbook, counter_lines,
                     free_port, ok, remove_containers, run_playbook, runs, state, wait_counter, wait_http, wait_lines,
                     wait_running)

KIND = '28.5'
HOLDER_LABEL = 'cryo.docker.network-holder'
SIMULATE_REBOOT = os.path.abspath(os.path.join(TESTBED, 'simulate_reboot.yml'))
STATE_ROOT = '/var/tmp/cryo-holder-test'
REBOOT_HOSTS = collection_playbook('reboot_hosts')
RECOVER = collection_playbook('recover')
# The action of a maintenance run whose holder is removed meanwhile (someone ran docker rm -f).
REMOVE_HOLDER = """---
- name: Remove the network holder
  ansible.builtin.command:
    argv: [docker, -H, "{{ cryo_docker_host }}", rm, --force, "{{ cryo_test_holder }}"]
  changed_when: true
"""
# A web server that also counts: the counter shows the process resumed, the page that it serves.
WEB = ('mkdir -p /www && echo served by {tag} > /www/index.html && httpd -p 8080 -h /www && '
       'i=0; while true; do echo $i; i=$(expr $i + 1); sleep 1; done')


@pytest.fixture(scope='module')
def bed():
    """One Docker 28.5 engine (fleet.Fleet with kinds), with the test image; torn down after this file
    unless CRYO_FLEET_KEEP=1."""
    yield from FleetBed.running('the Docker 28.5 engine', prefix=os.environ.get('CRYO_HOLDER_PREFIX', 'cryo-holder'),
                                kinds=[KIND])


class Workload:
    """Containers on the 28.5 engine, the holders among them made by the module; removed afterwards,
    members before their holders."""

    def __init__(self, fleet):
        self.fleet = fleet
        self.engine = fleet.engine(KIND)
        self.client = fleet.clients[KIND]
        self.docker_host = self.engine.docker_host
        self.tag = uuid.uuid4().hex[:6]
        self.made = []

    def name(self, kind):
        return 'nh-%s-%s' % (kind, self.tag)

    def module(self, module, check=False, diff=False, **args):
        return call_module(module, dict(args, docker_host=self.docker_host), check=check, diff=diff)

    def holder(self, name=None, check=False, diff=False, **args):
        """docker_network_holder on this engine; the holder is removed afterwards."""
        name = name or self.name('holder')
        if name not in self.made:
            self.made.append(name)
        args.setdefault('image', IMAGE)
        return self.module('docker_network_holder', check=check, diff=diff, name=name, **args)

    def container(self, kind, command=COUNTER, network_mode=None, labels=None, start=True):
        name = self.name(kind)
        host_config = self.client.create_host_config(network_mode=network_mode)
        self.client.create_container(IMAGE, ['/bin/sh', '-c', command], name=name, host_config=host_config,
                                     labels=labels, stop_timeout=1)
        self.made.append(name)
        if start:
            self.client.start(name)
        return name

    def pid(self, name):
        return state(self.client, name).get('Pid')

    def exists(self, name):
        try:
            self.client.inspect_container(name)
            return True
        except docker.errors.NotFound:
            return False

    def remove(self):
        remove_containers(self.client, self.made)


@pytest.fixture
def work(bed):
    workload = Workload(bed)
    yield workload
    workload.remove()


def failed(result, *parts):
    """A failure with a sentence for a person, containing each of parts."""
    assert result.get('failed') is True, result
    msg = result['msg']
    assert 'Traceback' not in msg and 'MODULE FAILURE' not in msg, msg
    for part in parts:
        assert part in msg, msg
    return msg


def play(work, state_dir, text=REBOOT_HOSTS, **extra):
    extra_vars = dict(maintenance_state_dir=state_dir, **extra)
    return run_playbook(text, work.fleet.inventory, limit=KIND, extra_vars=extra_vars)


def manifest(state_dir):
    with open(os.path.join(state_dir, 'manifest.json')) as handle:
        return json.load(handle)


def assert_continued(client, name, frozen):
    """One process counted all along: the numbers before the checkpoint, then on from the last one."""
    assert wait_running(client, name)
    lines = wait_lines(client, name, len(frozen) + 2)
    assert len(runs(lines)) == 1, '%s restarted: %s' % (name, runs(lines))


def service(work, port, restart_policy='unless-stopped'):
    """A holder publishing 127.0.0.1:port on its port 8080, a web server and a counter in it."""
    holder = work.name('holder')
    ok(work.holder(holder, published_ports=['127.0.0.1:%d:8080' % port], restart_policy=restart_policy))
    web = work.container('web', WEB.format(tag=work.tag), network_mode='container:' + holder)
    count = work.container('counter', network_mode='container:' + holder)
    assert wait_http(port) == 'served by %s' % work.tag
    wait_counter(work.client, web, 2)
    wait_counter(work.client, count, 2)
    return holder, web, count


# -- the module ------------------------------------------------------------------------------------

def test_the_module_creates_a_holder_once(work):
    port = free_port()
    options = dict(published_ports=['127.0.0.1:%d:8080' % port], hostname='web', dns=['10.0.0.53'],
                   labels={'team': 'web'})
    name = work.name('holder')

    predicted = ok(work.holder(name, check=True, diff=True, **options))
    assert predicted['changed'] is True and predicted['actions'] == ['created', 'started']
    assert predicted['diff']['before'] == {'exists': False}
    assert not work.exists(name), 'check mode created the holder'

    made = ok(work.holder(name, diff=True, **options))
    assert made['changed'] is True and made['actions'] == ['created', 'started'], made
    info = work.client.inspect_container(name)
    assert info['State']['Running'] and info['Config']['Labels'][HOLDER_LABEL] == 'true'
    assert info['Config']['Labels']['team'] == 'web'
    assert info['Config']['Entrypoint'] + info['Config']['Cmd'] == ['sleep', '2147483647']
    assert info['Config']['StopSignal'] == 'SIGKILL' and info['Config']['Hostname'] == 'web'
    assert info['HostConfig']['RestartPolicy']['Name'] == 'unless-stopped'
    assert info['HostConfig']['PortBindings'] == {'8080/tcp': [{'HostIp': '127.0.0.1', 'HostPort': str(port)}]}
    assert made['holder']['id'] == info['Id'] and made['holder']['published_ports'] == ['127.0.0.1:%d:8080/tcp' % port]
    assert made['diff']['after']['running'] is True and made['diff']['after']['hostname'] == 'web'

    again = ok(work.holder(name, **options))
    assert again['changed'] is False and again['actions'] == [] and again['differences'] == [], again
    assert work.pid(name) == info['State']['Pid']

    # It differs: reported, nothing changed without recreate.
    other = dict(options, published_ports=options['published_ports'] + ['127.0.0.1:%d:8443' % free_port()])
    msg = failed(work.holder(name, **other), 'Network holder %s differs from the options: it publishes' % name,
                 'Nothing was changed', 'recreate: true')
    assert work.pid(name) == info['State']['Pid'], msg

    # A stop is quick: the holder's stop signal is SIGKILL (a sleep as PID 1 ignores SIGTERM).
    work.client.stop(name, timeout=30)
    assert state(work.client, name)['ExitCode'] == 137
    started = ok(work.holder(name, **options))
    assert started['changed'] is True and started['actions'] == ['started'] and started['holder']['running']


def test_a_member_is_checkpointed_and_restored_in_the_holder(work):
    port = free_port()
    holder, web, _count = service(work, port)
    ok(work.holder(holder, state='started', members=[web]))
    frozen = counter_lines(work.client, web)
    ok(work.module('docker_checkpoint', container=web, checkpoint='cp1'))
    assert not state(work.client, web)['Running'] and state(work.client, holder)['Running']
    restored = ok(work.module('docker_restore', container=web, checkpoint='cp1'))
    assert restored['restored'] is True and restored['verified'] is True, restored
    assert_continued(work.client, web, frozen)
    assert wait_http(port) == 'served by %s' % work.tag


# -- maintenance -----------------------------------------------------------------------------------

@pytest.mark.timeout(240)  # ~55 s here
def test_maintenance_with_a_holder_and_a_bridge_container(work, state_dir):
    port = free_port()
    holder, web, count = service(work, port, restart_policy='no')
    bridge = work.container('bridge', labels={'cryo.skip': 'yes'})
    wait_counter(work.client, bridge, 2)
    names = [holder, web, count, bridge]
    pids = {name: work.pid(name) for name in names}
    engine_pid = work.engine.pid()

    # 1. By default the run stops before anything is checkpointed: nothing stopped, nothing lost.
    proc = play(work, state_dir, maintenance_action='tasks', maintenance_tasks_file=SIMULATE_REBOOT)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-4000:]
    assert 'stopped before anything was checkpointed, and nothing was stopped: %s (' % bridge in out, out[-4000:]
    assert 'maintenance_on_ineligible=skip' in out and 'network holder' in out
    assert work.engine.pid() == engine_pid, 'the engine was "rebooted" although the run aborted'
    assert {name: work.pid(name) for name in names} == pids, 'a container was stopped or restarted'
    assert all(checkpoints(work.client, name) == [] for name in names)
    assert not os.path.exists(os.path.join(state_dir, 'manifest.json'))

    # 2. Skipping allowed (no reboot, to see it left alone): the holder's members go through a
    # checkpoint and a restore, the holder is never checkpointed, the bridge container is not touched.
    frozen = {name: counter_lines(work.client, name) for name in (web, count)}
    proc = play(work, state_dir, maintenance_action='none', maintenance_on_ineligible='skip')
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    record = manifest(state_dir)
    assert record['status'] == 'complete', record
    assert sorted(c['container'] for c in record['containers']) == sorted([web, count])
    assert all(c['status'] == 'restored' and c['verified'] for c in record['containers']), record
    assert [(h['name'], h['status'], h['labelled'], sorted(h['members'])) for h in record['holders']] == [
        (holder, 'running', True, sorted([web, count]))]
    assert [(c['container'], c['status']) for c in record['ineligible']] == [(bridge, 'skipped')]
    assert 'skipped (not checkpointed)' in out and 'holder running' in out
    assert work.pid(bridge) == pids[bridge] and work.pid(holder) == pids[holder]
    for name in (web, count):
        assert_continued(work.client, name, frozen[name])
    assert wait_http(port) == 'served by %s' % work.tag

    # 3. The bridge container excluded: a simulated reboot, and everything resumes. The holder
    # (restart policy "no") is started again by the role, before its members are restored.
    frozen = {name: counter_lines(work.client, name) for name in (web, count)}
    proc = play(work, state_dir, maintenance_action='tasks', maintenance_tasks_file=SIMULATE_REBOOT,
                maintenance_exclude_labels=['cryo.skip'])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert work.engine.pid() != engine_pid, 'the engine was not "rebooted"'
    record = manifest(state_dir)
    assert record['status'] == 'complete', record
    assert all(c['status'] == 'restored' and c['verified'] for c in record['containers']), record
    assert [(h['name'], h['status']) for h in record['holders']] == [(holder, 'started')]
    assert 'holder started' in out and 'restored (verified)' in out
    assert state(work.client, holder)['Running'] and work.pid(holder) != pids[holder]
    for name in (web, count):
        assert_continued(work.client, name, frozen[name])
    assert wait_http(port) == 'served by %s' % work.tag
    # The excluded bridge container was not frozen: the power cut killed it.
    assert not state(work.client, bridge)['Running']


def test_maintenance_when_the_holder_is_gone_after_the_action(work, state_dir, tmp_path):
    port = free_port()
    holder, web, count = service(work, port)
    other = work.container('host', network_mode='host')
    wait_counter(work.client, other, 2)
    frozen = counter_lines(work.client, other)
    tasks = tmp_path / 'remove-holder.yml'
    tasks.write_text(REMOVE_HOLDER)

    proc = play(work, state_dir, maintenance_action='tasks', maintenance_tasks_file=str(tasks),
                cryo_test_holder=holder)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-6000:]
    assert 'could not be restored' in out and 'Network holders not running: %s' % holder in out, out[-6000:]
    record = manifest(state_dir)
    assert record['status'] == 'restore_failed'
    assert [(h['name'], h['status']) for h in record['holders']] == [(holder, 'missing')]
    statuses = {c['container']: c['status'] for c in record['containers']}
    assert statuses == {web: 'restore_failed', count: 'restore_failed', other: 'restored'}, record
    errors = {c['container']: c['error'] for c in record['containers']}
    assert 'which does not exist any more, so it cannot be restored' in errors[web], errors[web]
    # The members keep their checkpoints; the other container resumed.
    for name in (web, count):
        assert not state(work.client, name)['Running']
        assert checkpoints(work.client, name) == [record['checkpoint']]
    assert_continued(work.client, other, frozen)


# -- bad input -------------------------------------------------------------------------------------

def test_a_holder_that_is_no_container(work):
    name = work.name('nothing')
    msg = failed(work.module('docker_network_holder', name=name, state='started'),
                 'Network holder %s does not exist on the Docker Engine at %s, so it cannot be started.'
                 % (name, work.docker_host))
    assert 'state: present' in msg
    failed(work.module('docker_network_holder', name=name), 'image is needed to create it')
    failed(work.module('docker_network_holder', name=name, image='cryo-test/none:1'),
           'Image cryo-test/none:1 is not on the Docker Engine at', 'does not pull images')
    assert not work.exists(name)


def test_an_application_container_given_as_the_holder(work):
    app = work.container('app')
    pid = work.pid(app)
    for state_ in ('present', 'started', 'absent'):
        result = work.holder(app, state=state_, recreate=True, force=True)
        failed(result, 'Container %s on the Docker Engine at %s is not a network holder' % (app, work.docker_host),
               'adopt: true')
    assert work.pid(app) == pid


def test_a_stopped_holder(work):
    port = free_port()
    holder, web, _count = service(work, port)
    frozen = counter_lines(work.client, web)
    ok(work.module('docker_checkpoint', container=web, checkpoint='cp1'))
    work.client.stop(holder)
    msg = failed(work.module('docker_restore', container=web, checkpoint='cp1'),
                 'Container %s joins the network namespace of container ' % web, 'which is exited',
                 'checkpoint cp1 was kept', 'state started')
    assert checkpoints(work.client, web) == ['cp1'] and not state(work.client, web)['Running'], msg

    started = ok(work.holder(holder, state='started'))
    assert started['changed'] is True and started['actions'] == ['started']
    assert ok(work.holder(holder, state='started'))['changed'] is False
    restored = ok(work.module('docker_restore', container=web, checkpoint='cp1'))
    assert restored['restored'] is True and restored['verified'] is True, restored
    assert_continued(work.client, web, frozen)
    assert wait_http(port) == 'served by %s' % work.tag


def test_a_member_that_is_not_in_container_mode(work):
    port = free_port()
    holder, web, count = service(work, port)
    bridge = work.container('bridge')
    before = {name: (work.pid(name), work.client.inspect_container(name)['HostConfig']['NetworkMode'])
              for name in (holder, web, count, bridge)}
    result = work.holder(holder, published_ports=['127.0.0.1:%d:8080' % port], members=[web, bridge])
    msg = failed(result, 'Network holder %s: 1 of the members is not in its network namespace; nothing was changed.'
                 % holder, 'Member %s has network mode bridge' % bridge,
                 "A container's network mode cannot change after it is created",
                 'docker create --network container:%s' % holder)
    assert result['problems'] and len(result['problems']) == 1
    assert {name: (work.pid(name), work.client.inspect_container(name)['HostConfig']['NetworkMode'])
            for name in (holder, web, count, bridge)} == before, msg
    assert wait_http(port) == 'served by %s' % work.tag
