"""The engine matrix: the collection on every Docker Engine of the test bed's table (fleet.ENGINES).

Docker 20.10 (Debian 12's, containerd 1.6), 26.1 (Debian 13's, containerd 1.7), 28.5 (containerd 2.1)
and 28.5 with the containerd image store, one engine of each, started side by side once for this
file (fleet.Fleet with kinds; the packages come from Debian's archive into .cache/engines). Each
test runs on each engine (its id is the engine's name) and proves what happened to the process:

- the counter lifecycle: a checkpoint that stops and a verified restore (the counter goes on where
  it stopped), through docker_checkpoint's fast path (runc) and through the engine's own, leave_running,
  rewind, checkpoint_dir staging, restore into another container made from the same image, a held
  restart policy `always`, verification that catches a fresh start;
- checkpoint_preflight: the engine's version, storage driver and image store read right, the
  machine ready, each container's eligibility on that engine;
- the reboot_hosts playbook with a simulated reboot of that engine (tests/testbed/simulate_reboot.yml):
  every counter continues;
- a web server in a network holder (its published port on the holder) checkpointed, restored, and
  serving again through the holder's port.

Docker 28.0 to 29.x cannot restore a container with a network namespace of its own
(moby/moby#50750): on those engines (bridge_restores False in the table) the lifecycle's containers
run in a network holder (`network_mode: container:<holder>`, a plain `sleep` container) or on the
host network, and more tests show that the modules keep a bridge container safe: refused untouched
without allow_unrestorable, checkpointed with a warning with leave_running, and with
allow_unrestorable stopped, and then a restore that explains why it cannot work and keeps the
checkpoint; and move_container of a bridge container from 20.10 to such an engine stops before the
freeze, the source running on untouched.
"""

import json
import os
import shutil
import tempfile
import time
import uuid

import pytest

import fleet as testbed_fleet
import helpers
import host_truth
from helpers import (COUNTER, IMAGE, TESTBED, FleetBed, call_module, checkpoints, collection_playbook, counter,
                     counter_lines, free_port, http_get, ok, remove_containers, run_playbook, runs, state, wait_counter,
                     wait_http, wait_lines, wait_running)

KINDS = list(testbed_fleet.ENGINES)
# The engines that cannot restore a container with a network namespace of its own.
NO_BRIDGE_RESTORE = [kind for kind in KINDS if not testbed_fleet.ENGINES[kind]['bridge_restores']]
HOLDER_LABEL = 'cryo.docker.network-holder'
HOLDER_COMMAND = ['sleep', '2147483647']
SIMULATE_REBOOT = os.path.abspath(os.path.join(TESTBED, 'simulate_reboot.yml'))
REBOOT_HOSTS = collection_playbook('reboot_hosts')
# A web server that also counts: the counter shows the process resumed, the answer that it serves.
WEB = ('mkdir -p /www && echo served by {tag} > /www/index.html && httpd -p 8080 -h /www && '
       'i=0; while true; do echo $i; i=$(expr $i + 1); sleep 1; done')


@pytest.fixture(scope='module')
def matrix():
    """One engine of each kind of fleet.ENGINES, started concurrently, with the test image and one
    inventory host each (the kind); torn down after this file unless CRYO_FLEET_KEEP=1."""
    yield from FleetBed.running('the engine matrix', prefix=os.environ.get('CRYO_MATRIX_PREFIX', 'cryo-matrix'),
                                kinds=KINDS)


class EngineBed:
    """One engine of the matrix as a test uses it: its client, the collection's modules pointed at it,
    containers made on it (removed afterwards, members before their holders)."""

    def __init__(self, matrix, kind):
        self.kind = kind
        self.spec = testbed_fleet.ENGINES[kind]
        self.engine = matrix.engine(kind)
        self.inventory = matrix.inventory
        self.client = matrix.clients[kind]
        self.docker_host = self.engine.docker_host
        self.version = self.client.version()['Version']
        self.storage_driver = self.client.info()['Driver']
        self.made = []

    def module(self, name, **args):
        return call_module(name, dict(args, docker_host=self.docker_host))

    def checkpoint(self, container, cp='cp1', **args):
        return self.module('docker_checkpoint', container=container, checkpoint=cp, **args)

    def restore(self, container, cp='cp1', **args):
        return self.module('docker_restore', container=container, checkpoint=cp, **args)

    def container(self, command=COUNTER, kind='counter', network_mode=None, start=True, restart_policy=None,
                  port=None, labels=None):
        name = 'mx-%s-%s-%s' % (kind, self.kind, uuid.uuid4().hex[:6])
        host_config = self.client.create_host_config(
            network_mode=network_mode, restart_policy=restart_policy,
            port_bindings={8080: ('127.0.0.1', port)} if port else None)
        self.client.create_container(IMAGE, ['/bin/sh', '-c', command] if isinstance(command, str) else command,
                                     name=name, host_config=host_config, labels=labels, stop_timeout=1,
                                     ports=[8080] if port else None)
        self.made.append(name)
        if start:
            self.client.start(name)
        return name

    def holder(self, port=None):
        """A network holder: a plain long-running container that owns the network (and the published
        port), restarted by the engine when it starts."""
        return self.container(HOLDER_COMMAND, 'holder', port=port, restart_policy={'Name': 'always'},
                              labels={HOLDER_LABEL: 'true'})

    def network(self, prefer='holder'):
        """The network mode for a container that must restore here: the default bridge where the engine
        restores it, else a new holder's namespace (or the host network)."""
        if self.spec['bridge_restores']:
            return None
        return 'host' if prefer == 'host' else 'container:' + self.holder()

    def counter(self, prefer='holder', **kwargs):
        return self.container(network_mode=self.network(prefer), **kwargs)

    def pid(self, name):
        return state(self.client, name).get('Pid')

    def remove(self):
        remove_containers(self.client, self.made)


@pytest.fixture(params=KINDS)
def bed(matrix, request):
    engine_bed = EngineBed(matrix, request.param)
    yield engine_bed
    engine_bed.remove()


@pytest.fixture(params=NO_BRIDGE_RESTORE)
def broken(matrix, request):
    """An engine that cannot restore a bridge container (Docker 28.5, both image stores)."""
    engine_bed = EngineBed(matrix, request.param)
    yield engine_bed
    engine_bed.remove()


# -- what every test asserts ---------------------------------------------------------------------

def assert_restored(result, name, cp='cp1'):
    ok(result)
    assert result['changed'] is True and result['restored'] is True, result
    assert result['verified'] is True and result['fallback_used'] is False, result
    assert result['container']['name'].lstrip('/') == name and result['container']['running'] is True, result
    assert result['checkpoint']['name'] == cp, result['checkpoint']


def checkpointed(bed, name, cp='cp1', **args):
    """Checkpoint a counter that has printed a few numbers; the numbers it printed."""
    wait_counter(bed.client, name, 2)
    result = ok(bed.checkpoint(name, cp, **args))
    assert result['changed'] is True, result
    if not args.get('leave_running'):
        assert not state(bed.client, name)['Running'], state(bed.client, name)
    return counter_lines(bed.client, name)


def assert_continues(client, name, frozen):
    """The counter went on right after the last number before the checkpoint: one unbroken run."""
    lines = wait_lines(client, name, len(frozen) + 2)
    assert lines[len(frozen)] == frozen[-1] + 1, 'stopped at %s, went on at %s' % (frozen[-1], lines[len(frozen)])
    assert len(runs(lines)) == 1, runs(lines)


# -- the counter lifecycle -----------------------------------------------------------------------

def test_checkpoint_stops_and_restore_resumes(bed):
    name = bed.counter()
    wait_counter(bed.client, name, 2)
    result = ok(bed.checkpoint(name))
    # The fast path (runc with the engine's state root) works on every engine of the matrix.
    assert result['changed'] is True and result['method'] == 'runtime', result
    assert not state(bed.client, name)['Running']
    frozen = counter_lines(bed.client, name)
    assert checkpoints(bed.client, name) == ['cp1']
    time.sleep(2)
    assert counter_lines(bed.client, name) == frozen, 'the counter advanced while checkpointed'
    assert_restored(bed.restore(name), name)
    assert_continues(bed.client, name, frozen)
    again = ok(bed.restore(name))
    assert again['changed'] is False and not again.get('warnings'), again
    assert checkpoints(bed.client, name) == ['cp1'], 'keep_checkpoint defaults to true'


def test_engine_path(bed):
    """The engine's own checkpoint (through containerd's content store) restores as well."""
    name = bed.counter()
    wait_counter(bed.client, name, 2)
    result = ok(bed.checkpoint(name, method='engine'))
    assert result['changed'] is True and result['method'] == 'engine', result
    assert not state(bed.client, name)['Running']
    frozen = counter_lines(bed.client, name)
    assert_restored(bed.restore(name), name)
    assert_continues(bed.client, name, frozen)


def test_leave_running(bed):
    name = bed.counter()
    pid = bed.pid(name)
    wait_counter(bed.client, name, 2)
    result = ok(bed.checkpoint(name, leave_running=True))
    assert result['changed'] is True and result['checkpoint']['leave_running'] is True, result
    assert not result.get('warnings'), result['warnings']
    assert state(bed.client, name)['Running'] and bed.pid(name) == pid
    value = counter(bed.client, name)
    wait_counter(bed.client, name, value + 2)
    assert len(runs(counter_lines(bed.client, name))) == 1
    assert checkpoints(bed.client, name) == ['cp1']


def test_rewind(bed):
    name = bed.counter()
    low = wait_counter(bed.client, name, 3)
    ok(bed.checkpoint(name, 'cp-early', leave_running=True))
    high = counter(bed.client, name)
    wait_counter(bed.client, name, high + 4)
    assert_restored(bed.restore(name, 'cp-early', force=True), name, 'cp-early')
    lines = counter_lines(bed.client, name)
    wait_lines(bed.client, name, len(lines) + 2)
    parts = runs(counter_lines(bed.client, name))
    assert len(parts) == 2, parts
    assert low + 1 <= parts[1][0] <= high + 1 < parts[0][-1], 'rewound to %s, checkpoint taken between %s and %s' % (
        parts[1][0], low, high)


def test_checkpoint_dir_staging(bed, store):
    name = bed.counter()
    frozen = checkpointed(bed, name, checkpoint_dir=store)
    assert os.listdir(os.path.join(store, 'cp1')), 'empty checkpoint directory'
    assert checkpoints(bed.client, name, store) == ['cp1']
    assert_restored(bed.restore(name, checkpoint_dir=store), name)
    assert_continues(bed.client, name, frozen)
    assert os.path.isdir(os.path.join(store, 'cp1')), 'the checkpoint in checkpoint_dir must be kept'


def test_restore_into_another_container(bed, store):
    network_mode = bed.network()
    source = bed.container(network_mode=network_mode)
    frozen = checkpointed(bed, source, checkpoint_dir=store)
    target = bed.container(network_mode=network_mode, start=False)
    assert_restored(bed.restore(target, checkpoint_dir=store), target)
    lines = wait_lines(bed.client, target, 3)
    assert lines[0] == frozen[-1] + 1, 'the target printed %s, the source stopped at %s' % (lines[:3], frozen[-1])
    assert len(runs(lines)) == 1, runs(lines)
    assert not state(bed.client, source)['Running']


def test_restart_policy_always_is_held(bed):
    name = bed.counter(prefer='host', restart_policy={'Name': 'always'})
    frozen = checkpointed(bed, name)
    time.sleep(3)
    assert not state(bed.client, name)['Running'], 'the engine cold-started the checkpointed container'
    assert bed.client.inspect_container(name)['HostConfig']['RestartPolicy']['Name'] == 'no'
    assert counter_lines(bed.client, name) == frozen
    result = bed.restore(name)
    assert_restored(result, name)
    assert result['restart_policy']['Name'] == 'always', result
    assert bed.client.inspect_container(name)['HostConfig']['RestartPolicy']['Name'] == 'always'
    assert_continues(bed.client, name, frozen)


def test_verification_catches_a_fresh_start(bed):
    name = bed.counter()
    frozen = checkpointed(bed, name)
    bed.client.start(name)
    assert wait_running(bed.client, name)
    lines = wait_lines(bed.client, name, len(frozen) + 2)
    assert runs(lines)[1][0] == 0, 'the engine did not start it afresh: %s' % runs(lines)
    result = ok(bed.restore(name))
    assert result['changed'] is False and result['verified'] is False, result
    assert any('not from checkpoint cp1' in warning for warning in result.get('warnings') or []), result
    assert state(bed.client, name)['Running']
    assert len(runs(counter_lines(bed.client, name))) == 2, 'the container was touched'


# -- preflight -----------------------------------------------------------------------------------

def test_preflight(bed):
    holder = bed.holder()
    member = bed.container(network_mode='container:' + holder)
    on_host = bed.container(network_mode='host')
    bridge = bed.container()
    result = bed.module('checkpoint_preflight', containers=[member, on_host, bridge])
    assert not result.get('failed'), result
    facts = result['facts']
    version = bed.client.version()
    info = bed.client.info()
    assert facts['engine_version'] == version['Version'], facts
    assert facts['api_version'] == version['ApiVersion'], facts
    assert facts['dockerd_pid'] == bed.engine.pid() and facts['data_root'] == bed.engine.data_root, facts
    assert facts['storage_driver'] == info['Driver'], facts
    assert facts['storage_driver'] == ('overlayfs' if bed.spec['image_store'] == 'containerd' else 'overlay2')
    assert facts['image_store'] == bed.spec['image_store'], facts
    criu = host_truth.criu_of_docker(bed.engine.pidfile)
    assert facts['criu_path'] == criu and facts['criu_version'] == host_truth.criu_version(criu), facts
    assert facts['experimental'] is True, facts
    checks = {check['name']: check for check in result['checks']}
    assert checks['engine version']['status'] == ('pass' if bed.spec['bridge_restores'] else 'warn'), checks
    assert checks['containerd version']['status'] == 'pass', checks['containerd version']
    entries = {entry['name']: entry for entry in result['containers']}
    assert entries[member]['eligible'] is True and entries[member]['network_holder'] == holder, entries[member]
    assert entries[member]['network_mode'].startswith('container:') and entries[member]['holder'] is False
    assert entries[on_host]['eligible'] is True and entries[on_host]['network_mode'] == 'host', entries[on_host]
    failed = sorted(name for name, check in checks.items() if check['status'] == 'fail')
    if bed.spec['bridge_restores']:
        assert entries[bridge]['eligible'] is True, entries[bridge]
        assert failed == [] and result['ready'] is True, failed
    else:
        assert entries[bridge]['eligible'] is False, entries[bridge]
        reason = ' '.join(entries[bridge]['reasons'])
        assert 'network namespace' in reason and '50750' in reason, reason
        network = checks['container %s: network' % bridge]
        assert 'holder' in network['remedy'] and 'host' in network['remedy'], network
        # The machine itself is ready: the bridge container is the only thing that fails.
        assert failed == ['container %s: network' % bridge] and result['ready'] is False, failed


# -- maintenance ---------------------------------------------------------------------------------

def reboot_hosts(bed, **extra_vars):
    """The reboot_hosts playbook on this engine's inventory host; its manifest."""
    state_dir = tempfile.mkdtemp(dir='/var/tmp', prefix='cryo-mx-maint-')
    try:
        proc = run_playbook(REBOOT_HOSTS, bed.inventory, limit=bed.kind,
                            extra_vars=dict(extra_vars, maintenance_state_dir=state_dir))
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
        with open(os.path.join(state_dir, 'manifest.json')) as handle:
            return json.load(handle)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


def assert_same_engine_again(bed, pid):
    """A new dockerd of the engine's kind, started with the engine's PATH (from the inventory) and its
    daemon.json (the image store too)."""
    new = bed.engine.pid()
    assert new and new != pid, 'the engine was not restarted'
    binary = shutil.which(bed.engine.dockerd_binary, path=bed.engine.dockerd_path)
    assert os.path.realpath('/proc/%d/exe' % new) == os.path.realpath(binary), 'another dockerd was started'
    assert helpers.HOST.environ(new).get('PATH') == bed.engine.dockerd_path
    assert bed.client.version()['Version'] == bed.version
    assert bed.client.info()['Driver'] == bed.storage_driver


@pytest.mark.timeout(240)  # up to ~35 s here
def test_maintenance_reboot(bed):
    counters = [bed.counter(), bed.counter(prefer='host', restart_policy={'Name': 'always'})]
    last = {name: wait_counter(bed.client, name, 2) for name in counters}
    pid = bed.engine.pid()
    # Holders are not checkpointed: the engine starts them again (restart policy always) before
    # the containers in them are restored.
    record = reboot_hosts(bed, maintenance_action='tasks', maintenance_tasks_file=SIMULATE_REBOOT,
                          maintenance_exclude_labels=[HOLDER_LABEL])
    assert_same_engine_again(bed, pid)
    assert record['status'] == 'complete', record
    assert sorted(c['container'] for c in record['containers']) == sorted(counters), record
    assert all(c['status'] == 'restored' and c['verified'] for c in record['containers']), record
    for name in counters:
        assert wait_running(bed.client, name)
        wait_counter(bed.client, name, last[name] + 2)
        lines = counter_lines(bed.client, name)
        assert lines == list(range(len(lines))), '%s restarted or skipped: %s' % (name, runs(lines))
    assert bed.client.inspect_container(counters[1])['HostConfig']['RestartPolicy']['Name'] == 'always'


@pytest.mark.timeout(240)  # up to ~50 s here (28.5 with the containerd image store)
def test_maintenance_engine_restart(bed):
    """The engine_restart action: the collection's engine role restarts this engine directly, with the
    dockerd and PATH the inventory gives it (engine_dockerd_binary, engine_dockerd_path)."""
    name = bed.counter()
    last = wait_counter(bed.client, name, 2)
    pid = bed.engine.pid()
    record = reboot_hosts(bed, maintenance_action='engine_restart', maintenance_exclude_labels=[HOLDER_LABEL])
    assert_same_engine_again(bed, pid)
    assert record['status'] == 'complete', record
    assert [(c['container'], c['status'], c['verified']) for c in record['containers']] == [(name, 'restored', True)]
    wait_counter(bed.client, name, last + 2)
    lines = counter_lines(bed.client, name)
    assert lines == list(range(len(lines))), runs(lines)


# -- a service in a network holder ---------------------------------------------------------------

def test_web_server_in_holder(bed):
    port = free_port()
    holder = bed.holder(port=port)
    web = bed.container(WEB.format(tag=bed.kind), 'web', network_mode='container:' + holder)
    assert wait_http(port) == 'served by %s' % bed.kind
    frozen = checkpointed(bed, web)
    assert state(bed.client, holder)['Running'], 'the holder must not stop with the checkpoint'
    with pytest.raises(OSError):
        http_get(port, timeout=1)
    assert_restored(bed.restore(web), web)
    assert wait_http(port) == 'served by %s' % bed.kind
    assert_continues(bed.client, web, frozen)


# -- Docker 28: a bridge container is never stopped at a checkpoint it cannot come back from -----

def test_bridge_container_is_refused_untouched(broken):
    name = broken.container()
    wait_counter(broken.client, name, 2)
    pid = broken.pid(name)
    result = broken.checkpoint(name)
    assert result.get('failed') is True, result
    msg = result['msg']
    assert 'still running untouched' in msg and 'moby/moby#50750' in msg, msg
    assert 'holder' in msg and 'host network' in msg and 'allow_unrestorable' in msg, msg
    assert 'Traceback' not in json.dumps(result)
    assert state(broken.client, name)['Running'] and broken.pid(name) == pid
    value = counter(broken.client, name)
    wait_counter(broken.client, name, value + 2)
    assert len(runs(counter_lines(broken.client, name))) == 1, 'the container was touched'
    assert checkpoints(broken.client, name) == []


def test_bridge_container_leave_running_warns(broken):
    name = broken.container()
    wait_counter(broken.client, name, 2)
    pid = broken.pid(name)
    result = ok(broken.checkpoint(name, leave_running=True))
    assert result['changed'] is True, result
    warnings = ' '.join(result.get('warnings') or [])
    assert 'cannot be restored on this engine' in warnings and '50750' in warnings, result
    assert state(broken.client, name)['Running'] and broken.pid(name) == pid
    assert checkpoints(broken.client, name) == ['cp1']
    value = counter(broken.client, name)
    wait_counter(broken.client, name, value + 2)
    assert len(runs(counter_lines(broken.client, name))) == 1


def test_move_of_a_bridge_container_to_this_engine_freezes_nothing(matrix, broken):
    """move_container from Docker 20.10 to an engine that cannot restore a bridge container: the target is
    asked with the container's networks before the freeze, so the source runs on untouched."""
    source = EngineBed(matrix, '20.10')
    try:
        name = source.container()
        wait_counter(source.client, name, 2)
        pid = source.pid(name)
        with tempfile.TemporaryDirectory(prefix='cryo-mx-move-') as directory:
            proc = run_playbook(collection_playbook('move_container'), matrix.inventory, extra_vars={
                'move_container': name, 'move_from': '20.10', 'move_to': broken.kind,
                'move_archive_dir': directory + '/{{ inventory_hostname }}'})
            assert os.listdir(directory) == [], 'no archive directory was made'
        assert proc.returncode != 0, proc.stdout
        assert 'cannot restore %s of 20.10; nothing was frozen' % name in proc.stdout, proc.stdout
        assert '[restore network bridge] Docker Engine 28.5' in proc.stdout and 'moby/moby#50750' in proc.stdout
        assert 'Remedy: Run such containers in the network namespace of a network holder' in proc.stdout
        assert 'Traceback' not in proc.stdout + proc.stderr
        assert state(source.client, name)['Running'] and source.pid(name) == pid
        assert checkpoints(source.client, name) == []
        value = counter(source.client, name)
        wait_counter(source.client, name, value + 2)
        lines = counter_lines(source.client, name)
        assert lines == list(range(len(lines))), 'the container was touched: %s' % runs(lines)
        assert not broken.client.containers(all=True, filters={'name': name})
    finally:
        source.remove()


def test_bridge_container_allowed_then_restore_explains(broken):
    name = broken.container()
    frozen = checkpointed(broken, name, allow_unrestorable=True)
    assert checkpoints(broken.client, name) == ['cp1']
    result = broken.restore(name)
    assert result.get('failed') is True, result
    msg = result['msg']
    assert 'CRIU never ran' in msg and 'network namespace' in msg and 'moby/moby#50750' in msg, msg
    assert 'holder' in msg, msg
    assert 'Traceback' not in json.dumps(result)
    time.sleep(0.5)
    assert not state(broken.client, name)['Running']
    assert checkpoints(broken.client, name) == ['cp1'], 'the checkpoint must be kept'
    assert counter_lines(broken.client, name) == frozen
