"""The runtime checkpoint path of docker_checkpoint (`method: runtime`), CRIU's statistics and batches.

The runtime path runs the engine's own runc (`runc checkpoint`, with the engine's state root and
dockerd's PATH) and writes CRIU's images straight into the engine's checkpoint place; the engine
stays the owner: it lists the checkpoint, shows the container exited and restores it. Every test
proves what happened to the processes: the counter (0, 1, 2 ... once a second) goes on where it
stopped, with nothing missing and nothing repeated.

- On the main engine: the counter stopped and left running, checkpoint_dir (restored through
  staging), restart policy `always` held, a forced retake, `stats` in the result and in
  cryo-checkpoint.json, and a container holding 256 MB checkpointed without a second copy on disk
  (the engine path, measured the same way as a control, needs about twice the size).
- What the runtime cannot checkpoint (an established TCP connection): the container keeps running,
  CRIU's reason is quoted and nothing half-written is left.
- Where the runtime path cannot work (a remote `docker_host`: the main engine behind a TCP
  forwarder in this process): `method: runtime` fails and says why, `method: auto` takes the
  engine path.
- On an engine of its own (fleet.Engine): runtime checkpoints survive a graceful engine restart and
  a power cut (tests/testbed/simulate_reboot.yml) and restore through the engine.
- One batch call over 8 counters, one of which cannot be checkpointed.
"""

import json
import os
import socket
import stat
import tempfile
import threading
import time
import uuid

import docker
import pytest

import fleet
from helpers import (COUNTER, DOCKER_HOST, HOST, IMAGE, REBOOT_PLAYBOOK, assert_went_back_to_the_retake, call_module,
                     checkpoint_path, checkpoints, counter, counter_lines, ok, run_playbook, runs, state, wait_counter,
                     wait_lines, wait_running)

# Counts like COUNTER, with an established TCP connection to a peer on the host's loopback that
# CRIU cannot dump without tcp-established (as in test_checkpoint_failure.py).
NC_COUNTER = ('(while true; do echo x; sleep 1; done) | nc 127.0.0.1 {port} & '
              'i=0; while true; do echo $i; i=$(expr $i + 1); sleep 1; done')
MIB = 1 << 20
BIG_MB = 256
# A shell variable of BIG_MB MB of 'a' (anonymous memory of PID 1, every page touched), then the counter.
BIG_COUNTER = ('x=$(head -c %d /dev/zero | tr "\\0" a); echo allocated; ' % (BIG_MB * MIB)) + COUNTER


# -- helpers -----------------------------------------------------------------------------------

def failed(result):
    text = json.dumps(result)
    assert 'Traceback' not in text and 'MODULE FAILURE' not in result.get('msg', ''), text
    assert result.get('failed') is True, result
    return result


def checkpoint(name, cp='cp1', **kwargs):
    return call_module('docker_checkpoint', dict(dict(container=name, checkpoint=cp, method='runtime'), **kwargs))


def restore(name, cp='cp1', **kwargs):
    return call_module('docker_restore', dict(container=name, checkpoint=cp, **kwargs))


def assert_runtime_taken(result, cp='cp1'):
    """A checkpoint taken now through the runtime path, with CRIU's statistics."""
    ok(result)
    assert result['changed'] is True, result
    assert result['method'] == 'runtime', result
    assert 'method_reason' not in result, result
    assert result['checkpoint']['name'] == cp, result['checkpoint']
    assert result['duration'] > 0, result
    assert_plausible_stats(result['stats'])
    return result


def assert_plausible_stats(stats):
    assert stats, 'no stats: %s' % stats
    assert stats['frozen_time'] > 0, stats
    assert stats['freezing_time'] >= 0, stats
    assert stats['pages_written'] > 0, stats
    assert stats['pages_scanned'] >= stats['pages_written'], stats
    # Microseconds: the counter stays frozen for well under a minute.
    assert stats['frozen_time'] < 60 * 10 ** 6, stats


def assert_restored(result, name, cp='cp1'):
    ok(result)
    assert result['changed'] is True, result
    assert result['restored'] is True, result
    assert result['verified'] is True, result
    assert result['verification']['method'] == 'memory-layout', result['verification']
    assert result['fallback_used'] is False, result
    assert result['container']['name'] == name and result['container']['running'] is True, result['container']
    assert result['checkpoint']['name'] == cp, result['checkpoint']
    return result


def assert_continues(client, name, frozen, more=2):
    """The counter goes on right after the last number it printed before the checkpoint: one run."""
    lines = wait_lines(client, name, len(frozen) + more)
    assert lines[:len(frozen)] == frozen, runs(lines)
    assert lines[len(frozen)] == frozen[-1] + 1, 'stopped at %s, went on at %s' % (frozen[-1], lines[len(frozen)])
    assert len(runs(lines)) == 1, runs(lines)
    return lines


def assert_frozen(client, name, seconds=2.0):
    """Not running, and the counter does not move."""
    frozen = counter_lines(client, name)
    time.sleep(seconds)
    assert not state(client, name)['Running'], state(client, name)
    assert counter_lines(client, name) == frozen, 'the counter advanced while checkpointed'
    return frozen


def metadata(directory):
    with open(os.path.join(directory, 'cryo-checkpoint.json'), encoding='utf-8') as handle:
        return json.load(handle)


def listed(name, docker_host=DOCKER_HOST, **kwargs):
    """docker_checkpoint_info's entries for a container."""
    result = ok(call_module('docker_checkpoint_info', dict(container=name, docker_host=docker_host, **kwargs)))
    return result['checkpoints']


class DiskUse:
    """How much the used space of the file system holding path grows while the block runs: the largest
    growth over the value before it (statvfs every 10 ms: `peak`) and the growth at its end (`after`)."""

    def __init__(self, path, interval=0.01):
        self.path = path
        self.interval = interval
        self.base = self.peak = self.after = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def used(self):
        vfs = os.statvfs(self.path)
        return (vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.used() - self.base)
            time.sleep(self.interval)

    def __enter__(self):
        os.sync()
        self.base = self.used()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.after = self.used() - self.base
        self.peak = max(self.peak, self.after)
        return False


class UnixForwarder:
    """tcp://127.0.0.1:PORT in front of a unix socket, a thread per direction of each connection: the
    main engine as a module sees a remote one."""

    def __init__(self, socket_path):
        self.socket_path = socket_path
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(('127.0.0.1', 0))
        self.server.listen(32)
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.sockets = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def docker_host(self):
        return 'tcp://127.0.0.1:%d' % self.port

    def _serve(self):
        while not self._stop.is_set():
            try:
                client = self.server.accept()[0]
            except OSError:
                continue
            client.settimeout(None)
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.socket_path)
            self.sockets += [client, upstream]
            for source, dest in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, dest), daemon=True).start()

    @staticmethod
    def _pump(source, dest):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                dest.sendall(data)
        except OSError:
            pass
        try:
            dest.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.server.close()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def remote_engine():
    """The main engine behind tcp://127.0.0.1:PORT (its docker_host)."""
    assert DOCKER_HOST.startswith('unix://'), 'the main engine must be a local socket: %s' % DOCKER_HOST
    forwarder = UnixForwarder(DOCKER_HOST[len('unix://'):])
    yield forwarder.docker_host
    forwarder.close()


# -- the main engine ---------------------------------------------------------------------------

def test_counter_stops_and_resumes_through_the_runtime_path(engine, make_container):
    name = make_container()
    wait_counter(engine, name, 2)
    result = assert_runtime_taken(checkpoint(name))
    print('runtime path, counter: checkpoint %.3f s, stats %s' % (result['duration'], result['stats']))
    directory = checkpoint_path(engine, name, 'cp1')
    assert result['checkpoint']['directory'] == directory
    assert result['checkpoint']['size'] > 0
    assert result['checkpoint']['leave_running'] is False
    # The engine is the owner: it saw the exit and lists the checkpoint.
    assert state(engine, name)['Status'] == 'exited', state(engine, name)
    assert checkpoints(engine, name) == ['cp1']
    assert [entry['name'] for entry in listed(name)] == ['cp1']
    # CRIU's statistics stay beside the images, and in the collection's metadata.
    assert os.path.isfile(os.path.join(directory, 'stats-dump'))
    recorded = metadata(directory)
    assert recorded['method'] == 'runtime', recorded
    assert recorded['stats'] == result['stats'], recorded
    frozen = assert_frozen(engine, name)

    again = ok(checkpoint(name))
    assert again['changed'] is False, again

    restored = assert_restored(restore(name), name)
    print('engine restore of a runtime checkpoint: %.3f s, stats %s' % (restored['duration'], restored['stats']))
    assert restored['stats'] and restored['stats']['pages_restored'] > 0, restored
    assert restored['stats']['restore_time'] > 0, restored
    assert_continues(engine, name, frozen, more=3)
    assert checkpoints(engine, name) == ['cp1'], 'keep_checkpoint defaults to true'
    assert ok(restore(name))['changed'] is False, 'a second restore of a running container changed it'


def test_auto_takes_the_runtime_path_on_the_local_engine(engine, make_container):
    name = make_container()
    wait_counter(engine, name, 2)
    auto = assert_runtime_taken(call_module('docker_checkpoint', {'container': name, 'checkpoint': 'cp-auto',
                                                                  'leave_running': True}), 'cp-auto')
    through_engine = ok(call_module('docker_checkpoint', {'container': name, 'checkpoint': 'cp-engine',
                                                          'leave_running': True, 'method': 'engine'}))
    assert through_engine['changed'] is True and through_engine['method'] == 'engine', through_engine
    assert through_engine['stats'] is None, through_engine
    print('counter, leave_running: runtime %.3f s, engine %.3f s'
          % (auto['duration'], through_engine['duration']))
    assert state(engine, name)['Running']
    assert checkpoints(engine, name) == ['cp-auto', 'cp-engine']
    assert metadata(checkpoint_path(engine, name, 'cp-engine'))['method'] == 'engine'


def test_leave_running_then_rewind_through_the_engine(engine, make_container):
    name = make_container()
    low = wait_counter(engine, name, 3)
    result = assert_runtime_taken(checkpoint(name, leave_running=True))
    assert result['checkpoint']['leave_running'] is True
    high = counter(engine, name)
    assert state(engine, name)['Running']
    wait_counter(engine, name, high + 3)
    assert len(runs(counter_lines(engine, name))) == 1, 'the counter stopped or restarted'
    assert listed(name)[0]['leave_running'] is True

    assert_restored(restore(name, force=True), name)
    lines = counter_lines(engine, name)
    wait_lines(engine, name, len(lines) + 2)
    parts = runs(counter_lines(engine, name))
    assert len(parts) == 2, parts
    assert low + 1 <= parts[1][0] <= high + 1, 'rewound to %s, checkpoint taken between %s and %s' % (
        parts[1][0], low, high)


def test_checkpoint_dir_restored_through_staging(engine, make_container, store):
    name = make_container()
    wait_counter(engine, name, 2)
    result = assert_runtime_taken(checkpoint(name, checkpoint_dir=store))
    target = os.path.join(store, 'cp1')
    assert result['checkpoint']['directory'] == target, result['checkpoint']
    assert os.path.isfile(os.path.join(target, 'inventory.img'))
    assert os.path.isfile(os.path.join(target, 'stats-dump'))
    assert metadata(target)['stats'] == result['stats']
    for path in (store, target):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, '%s is %o' % (path, os.stat(path).st_mode)
    assert not os.path.exists(checkpoint_path(engine, name, 'cp1')), 'written to the engine\'s place too'
    assert [entry['name'] for entry in listed(name, checkpoint_dir=store)] == ['cp1']
    frozen = assert_frozen(engine, name)
    assert ok(checkpoint(name, checkpoint_dir=store))['changed'] is False

    assert_restored(restore(name, checkpoint_dir=store), name)
    assert_continues(engine, name, frozen)
    assert os.path.isdir(target), 'the checkpoint in checkpoint_dir must be kept'
    assert not os.path.exists(checkpoint_path(engine, name, 'cp1')), 'the staged copy was left behind'


def test_restart_policy_always_is_held(engine, make_container):
    name = make_container(restart_policy={'Name': 'always'})
    wait_counter(engine, name, 2)
    result = assert_runtime_taken(checkpoint(name))
    assert result['checkpoint']['restart_policy']['Name'] == 'always', result['checkpoint']
    assert listed(name)[0]['restart_policy']['Name'] == 'always'
    assert engine.inspect_container(name)['HostConfig']['RestartPolicy']['Name'] == 'no'
    frozen = assert_frozen(engine, name, 3)  # not cold-started by the engine

    result = assert_restored(restore(name), name)
    assert result['restart_policy']['Name'] == 'always', result
    assert engine.inspect_container(name)['HostConfig']['RestartPolicy']['Name'] == 'always'
    assert_continues(engine, name, frozen)


def test_forced_retake_replaces_the_checkpoint(engine, make_container):
    name = make_container()
    wait_counter(engine, name, 1)
    assert_runtime_taken(checkpoint(name, leave_running=True))
    value = counter(engine, name)
    wait_counter(engine, name, value + 3)
    again = assert_runtime_taken(checkpoint(name, leave_running=True, force=True))
    assert checkpoints(engine, name) == ['cp1']
    base = os.path.dirname(again['checkpoint']['directory'])
    assert sorted(os.listdir(base)) == ['cp1'], 'leftovers of the retake: %s' % os.listdir(base)
    assert state(engine, name)['Running']

    assert_restored(restore(name, force=True), name)
    assert_went_back_to_the_retake(engine, name, value)


def test_256_mb_without_a_second_copy_on_disk(engine, make_container):
    name = make_container(BIG_COUNTER)
    deadline = time.monotonic() + 120
    while b'allocated' not in engine.logs(name):
        assert time.monotonic() < deadline, '%s did not allocate %d MB' % (name, BIG_MB)
        assert state(engine, name)['Running'], engine.logs(name)[-500:]
        time.sleep(0.2)
    wait_counter(engine, name, 2)
    pid = state(engine, name)['Pid']
    rss = HOST.container_memory(pid)
    assert rss >= BIG_MB * MIB, 'the container holds only %.1f MB' % (rss / MIB)
    data_root = engine.info()['DockerRootDir']

    with DiskUse(data_root) as disk:
        result = assert_runtime_taken(checkpoint(name, 'big'), 'big')
    size = result['checkpoint']['size']
    assert size >= BIG_MB * MIB, 'checkpoint of %.1f MB' % (size / MIB)
    assert result['stats']['pages_written'] * 4096 >= BIG_MB * MIB, result['stats']
    print('runtime path, %d MB (rss %.1f MB): checkpoint %.3f s, %.1f MB, disk peak +%.1f MB, after +%.1f MB'
          % (BIG_MB, rss / MIB, result['duration'], size / MIB, disk.peak / MIB, disk.after / MIB))
    # No second copy: the used space grows by the checkpoint, never by twice it.
    assert disk.peak <= size * 1.25 + 32 * MIB, 'disk peak %.1f MB for a checkpoint of %.1f MB' % (
        disk.peak / MIB, size / MIB)
    frozen = assert_frozen(engine, name, 1)

    restored = assert_restored(restore(name, 'big'), name, 'big')
    print('engine restore of %d MB: %.3f s' % (BIG_MB, restored['duration']))
    assert_continues(engine, name, frozen)
    after = HOST.container_memory(state(engine, name)['Pid'])
    assert after >= BIG_MB * MIB, 'only %.1f MB came back' % (after / MIB)

    # The control: the engine's path, measured the same way, holds about twice the size at its peak.
    with DiskUse(data_root) as disk:
        through_engine = ok(checkpoint(name, 'big-engine', method='engine'))
    assert through_engine['method'] == 'engine'
    engine_size = through_engine['checkpoint']['size']
    print('engine path, %d MB: checkpoint %.3f s, %.1f MB, disk peak +%.1f MB, after +%.1f MB'
          % (BIG_MB, through_engine['duration'], engine_size / MIB, disk.peak / MIB, disk.after / MIB))
    assert disk.peak >= engine_size * 1.5, 'the engine path peaked at only %.1f MB: the measurement is blind' % (
        disk.peak / MIB)


def test_tcp_connection_fails_cleanly_and_keeps_running(engine, make_container, tcp_peer):
    port, peers = tcp_peer
    name = make_container(NC_COUNTER.format(port=port), network_mode='host')
    wait_counter(engine, name, 2)
    assert peers, 'the container did not connect to the test peer'
    pid = state(engine, name)['Pid']

    result = failed(checkpoint(name, 'doomed'))
    assert result['method'] == 'runtime', result
    assert result['container_running'] is True, result
    assert 'still running' in result['msg'], result['msg']
    errors = result['criu_errors']
    assert errors and all('Error (' in line for line in errors), result
    assert any('tcp-established' in line for line in errors), errors
    assert not any('RLIMIT_NOFILE' in line for line in errors), errors
    assert errors[0] in result['msg'], result['msg']
    # Still the same process, still counting, and nothing half-written left.
    assert state(engine, name)['Running'] and state(engine, name)['Pid'] == pid
    before = counter(engine, name)
    wait_counter(engine, name, before + 2)
    assert len(runs(counter_lines(engine, name))) == 1
    assert listed(name) == []
    directory = checkpoint_path(engine, name, 'doomed')
    assert not os.path.exists(directory), os.listdir(directory)
    parent = os.path.dirname(directory)
    assert not os.path.isdir(parent) or not os.listdir(parent), 'left in %s: %s' % (parent, os.listdir(parent))


# -- where the runtime path cannot be taken ------------------------------------------------------

def test_remote_engine_runtime_refused_and_auto_takes_the_engine_path(engine, make_container, remote_engine):
    name = make_container()
    wait_counter(engine, name, 2)
    through = docker.APIClient(base_url=remote_engine, version='auto')
    assert engine.inspect_container(name)['Id'] in [c['Id'] for c in through.containers()], 'no main engine there'

    refused = failed(checkpoint(name, docker_host=remote_engine))
    assert 'method runtime' in refused['msg'] and 'remote' in refused['msg'], refused['msg']
    assert remote_engine in refused['msg'], refused['msg']
    assert state(engine, name)['Running'], 'the refused checkpoint touched the container'
    assert checkpoints(engine, name) == []
    before = counter(engine, name)
    wait_counter(engine, name, before + 1)
    assert len(runs(counter_lines(engine, name))) == 1

    result = ok(checkpoint(name, docker_host=remote_engine, method='auto'))
    assert result['changed'] is True and result['method'] == 'engine', result
    assert 'remote' in result['method_reason'], result
    assert result['stats'] is None, result
    print('engine path through tcp, counter: checkpoint %.3f s' % result['duration'])
    assert metadata(checkpoint_path(engine, name, 'cp1'))['method'] == 'engine'
    frozen = assert_frozen(engine, name)
    assert checkpoints(engine, name) == ['cp1']

    assert_restored(restore(name, docker_host=remote_engine), name)
    assert_continues(engine, name, frozen)


# -- the engine stays the owner, across engine restarts ------------------------------------------

@pytest.mark.timeout(240)  # an engine of its own, restarted and power-cut: ~55 s here
def test_engine_owns_runtime_checkpoints_across_restart_and_power_cut():
    with fleet.Engine('cryo-rt-owner') as owner:
        owner.up()
        owner.load_image()
        client = owner.client()
        host = owner.docker_host
        names = {kind: 'cryo-rt-owner-%s-%s' % (kind, uuid.uuid4().hex[:6]) for kind in ('plain', 'always')}
        for kind, name in names.items():
            client.create_container(IMAGE, ['/bin/sh', '-c', COUNTER], name=name, stop_timeout=1,
                                    host_config=client.create_host_config(
                                        restart_policy={'Name': 'always'} if kind == 'always' else None))
            client.start(name)
        for name in names.values():
            wait_counter(client, name, 2)

        def checkpoint_all(cp):
            frozen = {}
            for name in names.values():
                assert_runtime_taken(checkpoint(name, cp, docker_host=host), cp)
                frozen[name] = counter_lines(client, name)
            return frozen

        def restore_all(cp, frozen, what):
            for kind, name in names.items():
                assert state(client, name)['Status'] == 'exited', '%s after %s: %s' % (name, what, state(client, name))
                assert counter_lines(client, name) == frozen[name], '%s ran after %s' % (name, what)
                assert cp in [entry['name'] for entry in listed(name, host)], '%s: %s not listed' % (what, cp)
                assert cp in checkpoints(client, name)
                assert_restored(restore(name, cp, docker_host=host), name, cp)
                lines = assert_continues(client, name, frozen[name])
                assert lines == list(range(len(lines))), '%s after %s: %s' % (name, what, runs(lines))
                if kind == 'always':
                    assert client.inspect_container(name)['HostConfig']['RestartPolicy']['Name'] == 'always'

        # A graceful engine restart.
        frozen = checkpoint_all('cp-restart')
        pid = owner.pid()
        assert owner.restart() not in (None, pid)
        time.sleep(2)  # time enough for the engine to cold-start a container it thinks it should
        restore_all('cp-restart', frozen, 'a graceful engine restart')

        # A power cut: every process of the engine killed, /run wiped, the engine started again.
        frozen = checkpoint_all('cp-power')
        pid = owner.pid()
        with tempfile.TemporaryDirectory(prefix='cryo-rt-') as tmp:
            inventory = os.path.join(tmp, 'inventory.json')
            with open(inventory, 'w', encoding='utf-8') as handle:
                json.dump({'all': {'children': {'fleet': {'hosts': {owner.host: owner.hostvars()}}}}}, handle)
            proc = run_playbook(REBOOT_PLAYBOOK, inventory=inventory)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert owner.pid() not in (None, pid)
        time.sleep(2)
        restore_all('cp-power', frozen, 'a power cut')
        for name in names.values():
            client.remove_container(name, force=True)


# -- many containers in one call -----------------------------------------------------------------

def test_batch_of_eight_with_one_that_cannot_be_checkpointed(engine, make_container, tcp_peer):
    port, peers = tcp_peer
    good = [make_container() for _index in range(7)]
    stuck = make_container(NC_COUNTER.format(port=port), network_mode='host')
    # The one that fails starts last: /etc/criu/runc.conf makes every CRIU run write one log, started anew by
    # each, so a dump started after this one failed would wipe the lines quoted here (the msg then says so).
    names = good + [stuck]
    for name in names:
        wait_counter(engine, name, 2)
    assert peers, 'the container did not connect to the test peer'
    stuck_pid = state(engine, stuck)['Pid']

    result = failed(call_module('docker_checkpoint', {'containers': names, 'checkpoint': 'batch'}))
    assert '1 of 8 containers failed' in result['msg'], result['msg']
    assert '[%s]' % stuck in result['msg'], result['msg']
    assert not any('[%s]' % name in result['msg'] for name in good), result['msg']
    entries = result['results']
    assert [entry['container'] for entry in entries] == names, entries
    frozen = {}
    for entry in entries:
        if entry['container'] == stuck:
            assert entry['failed'] is True and entry['container_running'] is True, entry
            assert entry['method'] == 'runtime', entry
            assert any('tcp-established' in line for line in entry['criu_errors']), entry
            continue
        assert not entry.get('failed') and entry['changed'] is True, entry
        assert entry['method'] == 'runtime' and entry['checkpoint']['name'] == 'batch', entry
        assert_plausible_stats(entry['stats'])
        assert state(engine, entry['container'])['Status'] == 'exited', entry['container']
        assert checkpoints(engine, entry['container']) == ['batch']
        frozen[entry['container']] = counter_lines(engine, entry['container'])
    print('batch of 8: checkpoint durations %s' % [entry.get('duration') for entry in entries])
    assert state(engine, stuck)['Running'] and state(engine, stuck)['Pid'] == stuck_pid
    assert checkpoints(engine, stuck) == []

    restored = ok(call_module('docker_restore', {'containers': good, 'checkpoint': 'batch'}))
    assert restored['changed'] is True
    assert [entry['container']['name'] for entry in restored['results']] == good, restored['results']
    for entry in restored['results']:
        assert_restored(entry, entry['container']['name'], 'batch')
    print('batch of 7: restore durations %s' % [entry['duration'] for entry in restored['results']])
    for name in good:
        assert wait_running(engine, name)
        assert_continues(engine, name, frozen[name])
    # The eighth ran on untouched all along.
    assert state(engine, stuck)['Running'] and state(engine, stuck)['Pid'] == stuck_pid
    lines = counter_lines(engine, stuck)
    assert lines == list(range(len(lines))), runs(lines)
