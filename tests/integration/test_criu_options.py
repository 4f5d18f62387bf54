"""CRIU options per call, for real: a container with an established TCP connection checkpoints and restores with
`tcp_established: true` given to the call, while the host's /etc/criu/runc.conf has no tcp-established (it is the
same, byte for byte, after every call), and without the option the checkpoint fails saying why, the container
still running.

The container (host network) pipes a ticker (t0, t1, ... once a second) into `nc` connected to a peer on the host's
loopback (conftest's tcp_peer, which counts the connections it accepts) and prints a counter. After the restore the
connection is the same one: the peer accepted one connection in all, the ticks go on arriving on it where they
were (no t0 again: the ticker resumed, and nc did not reconnect), and a line the peer sends then comes out of the
container's nc; the counter goes on in one run (the process resumed, verified by docker_restore).

Both checkpoint paths (method engine and runtime), each restored by the engine, on the main engine (Docker 20.10)
and on a Docker 26.1 engine of the test bed (fleet.Engine, started for this file). The restore uses the options the
checkpoint recorded (criu_options_from: checkpoint), none given to it. On 26.1 the image path too: the container
exported with tcp_established (it stops) and imported as a new container, restored through its own runtime by
containerd's shim (which runs `runc restore`, reading runc.conf) with the options the archive's checkpoint recorded.

A batch: three containers, each with its connection, checkpointed and restored in one task each (they share the
call's runc.conf). A fault: docker_checkpoint SIGKILLed while CRIU dumps with the call's options in runc.conf; the next call puts the
host's file back first.
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid

import docker
import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _criuconf
from helpers import (COLLECTIONS, COUNTER, DOCKER_HOST, HOST, IMAGE, FleetBed, call_module, counter_lines, ok, runs,
                     state, wait_counter)

RUNC_CONF = '/etc/criu/runc.conf'
# A ticker into nc, connected to the peer; what the peer sends comes out on the container's stdout.
NC_TICKER = ('(i=0; while true; do echo {tag}$i; i=$(expr $i + 1); sleep 1; done) | nc 127.0.0.1 {port} & '
             'i=0; while true; do echo $i; i=$(expr $i + 1); sleep 1; done')
TICK = rb'%s(\d+)\n'  # a tick of the container whose tag is %s
# The counter after PID 1 filled 256 MB of its memory: a dump of about a second, for a killer to catch.
BIG_COUNTER = 'x=$(head -c %d /dev/zero | tr "\\0" a); echo allocated; ' % (256 << 20) + COUNTER


@pytest.fixture(scope='module')
def engines():
    """The main engine (20.10) and a Docker 26.1 engine of the test bed: {kind: docker_host}."""
    hosts = {'20.10': DOCKER_HOST}
    if os.environ.get('CRYO_CRIU_OPTIONS_MAIN_ONLY') == '1':
        yield hosts
        return
    for bed in FleetBed.running('the 26.1 engine', prefix=os.environ.get('CRYO_CO_PREFIX', 'cryo-co'), kinds=['26.1']):
        yield dict(hosts, **{'26.1': bed.engine('26.1').docker_host})


def ticker(client, port, tag='t'):
    name = 'cryo-co-%s' % uuid.uuid4().hex[:8]
    client.create_container(IMAGE, ['/bin/sh', '-c', NC_TICKER.format(port=port, tag=tag)], name=name,
                            host_config=client.create_host_config(network_mode='host'))
    client.start(name)
    wait_counter(client, name, 2)
    return name


def read_conf():
    try:
        with open(RUNC_CONF, 'rb') as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def ticks(peer, until=None, timeout=15, tag=b't'):
    """The tick numbers that arrive on the peer's socket, read until one >= until arrived (or for a second)."""
    found, data = [], b''
    deadline = time.monotonic() + (timeout if until is not None else 1.5)
    peer.settimeout(0.3)
    while time.monotonic() < deadline:
        try:
            chunk = peer.recv(4096)
        except socket.timeout:
            chunk = None
        if chunk == b'':
            raise AssertionError('the container closed the connection; ticks so far %s' % found)
        data += chunk or b''
        found = [int(n) for n in re.findall(TICK % tag, data)]
        if until is not None and found and found[-1] >= until:
            break
    return found


@pytest.mark.timeout(420)
@pytest.mark.parametrize('method', ['engine', 'runtime'])
@pytest.mark.parametrize('kind', ['20.10', '26.1'])
def test_an_established_connection_survives_with_tcp_established_for_the_call(engines, tcp_peer, kind, method):
    if kind not in engines:
        pytest.skip('CRYO_CRIU_OPTIONS_MAIN_ONLY=1: the main engine only')
    docker_host = engines[kind]
    client = docker.APIClient(base_url=docker_host, version='auto')
    host_conf = read_conf()
    assert b'tcp-established' not in (host_conf or b''), 'the host\'s runc.conf turns tcp-established on: %s' % (
        RUNC_CONF)
    port, peers = tcp_peer
    name = ticker(client, port)
    try:
        assert len(peers) == 1, 'the container did not connect to the peer once: %d' % len(peers)
        peer = peers[0]
        before = ticks(peer, until=2)
        pid = state(client, name)['Pid']

        def module(module_name, **args):
            return call_module(module_name, dict(args, container=name, checkpoint='cp1', docker_host=docker_host))

        # Without the option: refused by CRIU, said clearly, the container still running, the same process.
        refused = module('docker_checkpoint', method=method)
        assert refused['failed'] is True, refused
        assert 'The container has established TCP connections' in refused['msg'], refused['msg']
        assert 'tcp_established: true' in refused['msg'] and 'still running' in refused['msg'], refused['msg']
        assert refused['container_running'] is True, refused
        assert state(client, name)['Running'] and state(client, name)['Pid'] == pid
        assert read_conf() == host_conf

        # With it, for this call only.
        taken = ok(module('docker_checkpoint', method=method, tcp_established=True))
        assert taken['changed'] is True and taken['method'] == method, taken
        assert taken['criu_options'] == {'tcp_established': True}, taken
        assert taken['criu_options_from'] == {'tcp_established': 'operator'}, taken
        assert taken['checkpoint']['criu_options'] == {'tcp_established': True}, taken['checkpoint']
        assert not state(client, name)['Running']
        assert read_conf() == host_conf, 'runc.conf changed: %r' % read_conf()
        assert not os.path.exists(RUNC_CONF + '.cryo-host')
        stopped_at = ticks(peer)  # what the ticker sent before the freeze, drained
        last = (stopped_at or before)[-1]

        # The restore takes what the checkpoint recorded.
        restored = ok(module('docker_restore', method='engine'))
        assert restored['restored'] is True and restored['verified'] is True, restored
        assert restored['criu_options'] == {'tcp_established': True}, restored
        assert restored['criu_options_from'] == {'tcp_established': 'checkpoint'}, restored
        assert read_conf() == host_conf, 'runc.conf changed: %r' % read_conf()
        assert not os.path.exists(RUNC_CONF + '.cryo-host')

        after = assert_same_connection(client, name, peers, last)
        print('%s %s: ticks up to t%d before the checkpoint, t%d.. t%d after the restore, one connection; checkpoint '
              '%.2f s, restore %.2f s' % (kind, method, last, after[0], after[-1], taken['duration'],
                                          restored['duration']))
    finally:
        client.remove_container(name, force=True)
    assert read_conf() == host_conf


def assert_same_connection(client, name, peers, last):
    """The connection the peer accepted first is the container's still: one accept in all, the ticks go on arriving
    on it where they were (last: the last one before the checkpoint), it carries a line the other way, and the
    counter went on in one run. The ticks after the restore."""
    peer = peers[0]
    after = ticks(peer, until=last + 3)
    assert after and after[0] <= last + 2 and after[-1] >= last + 3, (last, after)
    assert all(b == a + 1 for a, b in zip(after, after[1:])), after
    assert len(peers) == 1, 'the container connected again: %d connections' % len(peers)
    peer.sendall(b'hello-from-peer\n')
    deadline = time.monotonic() + 10
    while b'hello-from-peer' not in client.logs(name) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert b'hello-from-peer' in client.logs(name), 'the peer\'s line did not come out of the container\'s nc'
    value = wait_counter(client, name, 0)
    wait_counter(client, name, value + 2)
    assert len(runs(counter_lines(client, name))) == 1, runs(counter_lines(client, name))
    return after


@pytest.mark.timeout(420)
def test_an_imported_connection_restores_through_the_image_path_with_the_recorded_option(engines, tcp_peer, archives):
    if '26.1' not in engines:
        pytest.skip('CRYO_CRIU_OPTIONS_MAIN_ONLY=1: the main engine only')
    docker_host = engines['26.1']
    client = docker.APIClient(base_url=docker_host, version='auto')
    host_conf = read_conf()
    port, peers = tcp_peer
    name = ticker(client, port)
    moved = name + '-moved'
    path = os.path.join(archives, 'ticker.tar')
    try:
        assert len(peers) == 1
        last = ticks(peers[0], until=2)[-1]
        exported = ok(call_module('docker_checkpoint_export', dict(
            container=name, checkpoint='cp1', path=path, docker_host=docker_host, tcp_established=True)))
        assert exported['criu_options'] == {'tcp_established': True}, exported
        assert not state(client, name)['Running'] and read_conf() == host_conf
        last = (ticks(peers[0]) or [last])[-1]

        imported = ok(call_module('docker_checkpoint_import', dict(
            path=path, container=moved, docker_host=docker_host, restore_method='image_path',
            allow=['host_namespaces'])))
        assert imported['restored'] is True and imported['verified'] is True, imported
        assert imported['method'] == 'image_path', imported
        assert imported['criu_options'] == {'tcp_established': True}, imported
        assert imported['criu_options_from'] == {'tcp_established': 'checkpoint'}, imported
        assert read_conf() == host_conf and not os.path.exists(RUNC_CONF + '.cryo-host')
        after = assert_same_connection(client, moved, peers, last)
        print('26.1 image path: ticks up to t%d before the export, t%d.. t%d in the imported container, one '
              'connection; restore %.2f s' % (last, after[0], after[-1], imported['duration']))
    finally:
        for one in (name, moved):
            try:
                client.remove_container(one, force=True)
            except docker.errors.NotFound:
                pass
    assert read_conf() == host_conf


# -- a batch: the containers of one task share the call's runc.conf ---------------------------------------

@pytest.mark.timeout(240)
def test_a_batch_with_tcp_established_keeps_every_connection(engine, tcp_peer):
    """Three containers, each with its connection to the peer, checkpointed in one task (containers, parallel,
    tcp_established, the runtime path) and restored in one task with what each checkpoint recorded: every connection
    is the one the peer accepted, and the host's runc.conf is the same bytes."""
    host_conf = read_conf()
    port, peers = tcp_peer
    tags = ['a', 'b', 'c']
    names = []
    try:
        for tag in tags:
            names.append(ticker(engine, port, tag))
        deadline = time.monotonic() + 10
        while len(peers) < len(tags) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(peers) == len(tags), 'each container connects once: %d connections' % len(peers)
        # Which connection is whose: the tag of the ticks it carries.
        by_tag = {}
        for peer in peers:
            data = b''
            peer.settimeout(3)
            while not re.search(rb'([abc])\d+\n', data):
                data += peer.recv(4096)
            by_tag[re.search(rb'([abc])\d+\n', data).group(1)] = peer
        assert sorted(by_tag) == [b'a', b'b', b'c'], by_tag

        taken = ok(call_module('docker_checkpoint', dict(containers=names, checkpoint='cp1', method='runtime',
                                                         tcp_established=True, parallel=3)))
        assert [entry['criu_options'] for entry in taken['results']] == [{'tcp_established': True}] * 3, taken
        assert read_conf() == host_conf
        last = {tag: (ticks(peer, tag=tag) or [0])[-1] for tag, peer in by_tag.items()}
        restored = ok(call_module('docker_restore', dict(containers=names, checkpoint='cp1', parallel=3)))
        for entry in restored['results']:
            assert entry['restored'] and entry['verified'], entry
            assert entry['criu_options_from'] == {'tcp_established': 'checkpoint'}, entry
        assert read_conf() == host_conf and not os.path.exists(RUNC_CONF + '.cryo-host')
        for tag, peer in by_tag.items():
            after = ticks(peer, until=last[tag] + 2, tag=tag)
            assert after and after[-1] >= last[tag] + 2 and all(b == a + 1 for a, b in zip(after, after[1:])), (
                tag, last[tag], after)
        assert len(peers) == len(tags), 'a container connected again: %d connections' % len(peers)
    finally:
        for name in names:
            engine.remove_container(name, force=True)
    assert read_conf() == host_conf


# -- a run killed while its options stand in runc.conf ----------------------------------------------------

def criu_runs_for(container_id):
    """Whether a CRIU runs for this container (runc's command line ends with its id; runc is CRIU's parent)."""
    table = HOST.processes()
    for _pid, (ppid, cmdline, _cgroup) in table.items():
        argv, parent = cmdline.split(), table.get(ppid, (0, '', ''))[1].split()
        if argv and os.path.basename(argv[0]) == 'criu' and parent and parent[-1] == container_id:
            return True
    return False


@pytest.mark.timeout(180)
def test_fault_a_module_killed_while_its_options_stand_leaves_them_to_the_next_call(engine, make_container, tmp_path):
    """docker_checkpoint SIGKILLed while CRIU dumps with the call's options in runc.conf (file_locks): the file
    stays the call's, with its record beside it; the next call of the collection (another container's checkpoint,
    no options) puts the host's file back first, byte for byte, says so, and runs with the host's options."""
    host_conf = read_conf()
    try:
        name = make_container(BIG_COUNTER)
        deadline = time.monotonic() + 60
        while b'allocated' not in engine.logs(name):
            assert time.monotonic() < deadline, 'the counter did not allocate its memory'
            time.sleep(0.2)
        other = make_container()
        wait_counter(engine, other, 1)
        cid = engine.inspect_container(name)['Id']
        args = tmp_path / 'args.json'
        args.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': dict(container=name, checkpoint='cp1', method='engine',
                                                                file_locks=True, docker_host=DOCKER_HOST)}))
        module = subprocess.Popen([sys.executable, os.path.join(COLLECTIONS, 'ansible_collections', 'cryo', 'docker',
                                                                'plugins', 'modules', 'docker_checkpoint.py'), str(args)],
                                  env=dict(os.environ, PYTHONPATH=COLLECTIONS), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not (criu_runs_for(cid) and b'file-locks' in (read_conf() or b'')):
                assert module.poll() is None, 'the module ended before CRIU was seen dumping with its options'
                assert time.monotonic() < deadline, 'CRIU was not seen dumping with the call\'s options'
                time.sleep(0.005)
            module.kill()
        finally:
            module.wait(30)
        deadline = time.monotonic() + 60
        while criu_runs_for(cid) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = read_conf()
        assert left != host_conf and b'file-locks' in left, 'the kill came too late: %r' % left
        assert os.path.exists(RUNC_CONF + '.cryo-host')

        result = ok(call_module('docker_checkpoint', dict(container=other, checkpoint='cp1', leave_running=True)))
        assert any('the host\'s file was put back first' in warning for warning in result.get('warnings', [])), result
        assert result['criu_options'] == {}, result
        assert read_conf() == host_conf and not os.path.exists(RUNC_CONF + '.cryo-host')
    finally:
        # Whatever happened, the machine's runc.conf is the host's again for the tests after this one.
        with _criuconf.CriuConfig({}):
            pass
        assert read_conf() == host_conf
