"""Faults in the middle of an operation: each test states the one outcome the collection promises after its fault
(its docstring) and asserts that outcome only; the moment of the fault is held by a condition, never a sleep.

- CRIU killed (SIGKILL) while it dumps, on the runtime and the engine path: the container keeps running and its
  counter goes on (on the engine path the freezer stays on, the engine calls it paused, and the module unpauses it);
- the checkpoint's filesystem full (a small tmpfs as checkpoint_dir) during a checkpoint, and during an archive
  export; an engine's data root too small for an engine-path checkpoint;
- the engine (dockerd and containerd, every process of it) killed while CRIU dumps (engine path), the moment the
  dump is over,
  and during a restore, on an engine of its own (fleet.Engine('cryo-fault')), so the main engine is untouched;
- two operations on one container at once (the container's lock), two maintenance runs on one host (the role's).

Every killer finds its target by the container's id on the command line of the runc that runs CRIU, or by a
marker in the environment of the module's run: never another test's or engine's CRIU.
"""
import json
import os
import signal
import subprocess
import threading
import time
import uuid

import docker
import pytest

import fleet as testbed_fleet
from ansible_collections.cryo.docker.plugins.module_utils import _lock
from helpers import (COUNTER, HOST, checkpoints, counter, counter_lines, run_module, run_playbook, runs,
                     state, wait_counter, wait_lines, wait_running, with_descendants)

MIB = 1024 * 1024


def big_counter(mb):
    """The counter, after PID 1 filled mb MB of its own memory (a shell variable)."""
    return ('x=$(head -c %d /dev/zero | tr "\\0" a); echo allocated; ' % (mb * MIB)) + COUNTER


def wait_allocated(engine, name, timeout=60):
    deadline = time.monotonic() + timeout
    while b'allocated' not in engine.logs(name):
        assert time.monotonic() < deadline, '%s did not allocate its memory' % name
        time.sleep(0.2)
    return wait_counter(engine, name, 1)


def criu_of(container_id, operation):
    """Pids of the CRIU that works for one container: runc starts it (`criu swrk`) as its own child, and runc's
    command line names the operation (checkpoint, restore) and ends with the container's id; with every process
    that CRIU forked (a dump forks a worker: killed alone, the top one leaves the worker holding the container
    frozen and runc waiting on it, and the engine's checkpoint call never returns - measured with Docker 20.10,
    runc 1.1.5, CRIU 4.2.1). Whether runc runs for the module (the runtime path) or under the engine's containerd
    shim, no other engine's or test's CRIU matches."""
    table = HOST.processes()
    found = []
    for pid, (ppid, cmdline, _cgroup) in table.items():
        argv, parent = cmdline.split(), table.get(ppid, (0, '', ''))[1].split()
        if (argv and os.path.basename(argv[0]) == 'criu' and parent and os.path.basename(parent[0]) == 'runc'
                and operation in parent and parent[-1] == container_id):
            found.append(pid)
    return sorted(with_descendants(table, found)) if found else []


# An environment variable that marks the processes of one run_module (the module inherits ansible-playbook's
# environment): a killer finds that run's module, never another test's.
MARKER = 'CRYO_FAULT_RUN'


def modules_marked(module, marker):
    """Pids of the processes of cryo.docker.<module> run with MARKER=marker in their environment."""
    found = []
    for pid, (_ppid, cmdline, _cgroup) in HOST.processes().items():
        if '/AnsiballZ_%s.py' % module in cmdline:
            try:
                with open('/proc/%d/environ' % pid, 'rb') as handle:
                    environ = handle.read().split(b'\0')
            except OSError:
                continue
            if ('%s=%s' % (MARKER, marker)).encode() in environ:
                found.append(pid)
    return found


def container_id(engine, name):
    return engine.inspect_container(name)['Id']


def frozen(pid):
    """Whether the cgroup of process pid is frozen (CRIU freezes the container's cgroup while it dumps)."""
    for line in HOST.cgroup(pid).splitlines():
        _hierarchy, controllers, path = line.split(':', 2)
        if 'freezer' in controllers.split(','):
            state = os.path.join('/sys/fs/cgroup/freezer', path.lstrip('/'), 'freezer.state')
            return _read(state) == 'FROZEN'
        if controllers == '' and os.path.isfile('/sys/fs/cgroup/cgroup.controllers'):
            return _read(os.path.join('/sys/fs/cgroup', path.lstrip('/'), 'cgroup.freeze')) == '1'
    return False


def _read(path):
    try:
        with open(path, encoding='ascii') as handle:
            return handle.read().strip()
    except OSError:
        return None


def while_criu_dumps(engine, name):
    """find() for a Killer: the container's CRIU, once it has frozen the container (the dump is under way)."""
    cid, pid = container_id(engine, name), state(engine, name)['Pid']

    def find():
        pids = criu_of(cid, 'checkpoint')
        return pids if pids and frozen(pid) else []
    return find


class Killer(threading.Thread):
    """Waits for the first process find() names (polling /proc), then SIGKILLs what find() names."""

    def __init__(self, find, delay=0.0, timeout=120):
        super().__init__(daemon=True)
        self.find, self.delay, self.timeout = find, delay, timeout
        self.killed = []

    def run(self):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and not self.killed:
            pids = self.find()
            if pids:
                time.sleep(self.delay)
                # Stopped first, until find() names nothing new, then killed: a process that forks as it dies
                # (CRIU's dump worker) leaves nothing behind.
                stopped = []
                for _attempt in range(20):
                    more = [pid for pid in (self.find() or pids) if pid not in stopped]
                    if not more:
                        break
                    stopped += [pid for pid in more if self._signal(pid, signal.SIGSTOP)]
                    if not stopped:
                        break
                self.killed = [pid for pid in stopped if self._signal(pid, signal.SIGKILL)]
            time.sleep(0.005)

    @staticmethod
    def _signal(pid, sig):
        try:
            os.kill(pid, sig)
            return True
        except ProcessLookupError:
            return False


def assert_continues(engine, name, before, starts=1):
    """The counter runs, past what it had printed before the fault, and started only `starts` times (its
    log is that many unbroken runs of numbers)."""
    assert wait_running(engine, name, timeout=30), state(engine, name)
    wait_counter(engine, name, before + 2)
    lines = counter_lines(engine, name)
    assert len(runs(lines)) == starts, '%s restarted or skipped: %s' % (name, runs(lines))


def assert_nothing_half_written(engine, name, checkpoint, directory=None):
    """What the engine lists under the checkpoint's name is whole (CRIU's inventory.img is there)."""
    if checkpoint in checkpoints(engine, name, directory):
        root = directory or os.path.join(engine.info()['DockerRootDir'], 'containers',
                                         engine.inspect_container(name)['Id'], 'checkpoints')
        assert os.path.isfile(os.path.join(root, checkpoint, 'inventory.img')), 'half-written %s listed' % checkpoint


def converge(engine, name, docker_host=None, **args):
    """The second run: checkpoint (stopping it) and a verified restore; the counter continues."""
    host = dict(docker_host=docker_host) if docker_host else {}
    before = counter(engine, name) or 0
    starts = len(runs(counter_lines(engine, name)))
    taken = run_module('docker_checkpoint', dict(host, container=name, checkpoint='again', **args))
    assert not taken.get('failed'), taken.get('msg') or taken['_output'][-3000:]
    back = run_module('docker_restore', dict(host, container=name, checkpoint='again'))
    assert back.get('restored') and back.get('verified'), back.get('msg') or back['_output'][-3000:]
    assert_continues(engine, name, before, starts)


# -- CRIU killed during a dump ---------------------------------------------------------------------

@pytest.mark.parametrize('method', ['runtime', 'engine'])
def test_criu_killed_during_a_dump(engine, make_container, method):
    """CRIU SIGKILLed the moment it runs for this container's dump: the checkpoint fails cleanly, nothing is listed,
    and the container keeps running, its counter going on from where it was (a failed checkpoint leaves the
    container running). 256 MB: a dump of about a second, for the killer's /proc scan to catch."""
    name = make_container(big_counter(256))
    before = wait_allocated(engine, name)
    cid = container_id(engine, name)
    killer = Killer(lambda: criu_of(cid, 'checkpoint'))
    killer.start()
    result = run_module('docker_checkpoint', dict(container=name, checkpoint='cp1', method=method))
    killer.join(5)
    assert killer.killed, 'no criu dump was seen to kill'
    assert result.get('failed'), result
    assert 'Traceback' not in result['msg'] and 'MODULE FAILURE' not in result['msg'], result['msg']
    assert_nothing_half_written(engine, name, 'cp1')
    assert 'cp1' not in checkpoints(engine, name), 'a killed dump is listed as a checkpoint'
    # The promise: a failed checkpoint leaves the container running, its counter going on from where it was.
    assert state(engine, name)['Running'] and result['container_running'] is True, (state(engine, name), result)
    assert 'nothing was lost' in result['msg'], (result.get('thawed'), result.get('thaw_error'), result['msg'])
    assert_continues(engine, name, before)
    # No temporary directory of the runtime path is left behind.
    container_dir = os.path.join(engine.info()['DockerRootDir'], 'containers', cid)
    assert not [entry for entry in os.listdir(container_dir) if entry.startswith('.cryo-tmp-')]
    converge(engine, name, method=method)


# -- docker_checkpoint itself killed after CRIU dumped ------------------------------------------------

def wait_written(engine, name, path, method, timeout=60):
    """Until the cut take is over: the container exited, no criu runs, the engine (engine path) lists what it
    wrote, and nothing has grown for 2 s (the engine unpacks the images after CRIU is done)."""
    deadline = time.monotonic() + timeout
    size, stable_since = None, time.monotonic()
    cid = container_id(engine, name)
    while True:
        assert time.monotonic() < deadline, 'the cut take did not finish: %s' % path
        listed = method != 'engine' or os.path.basename(path) in [
            entry['Name'] for entry in engine._result(engine._get(engine._url('/containers/{0}/checkpoints', name)),
                                                      True) or []]
        now = sum(entry.stat().st_size for entry in os.scandir(path)) if os.path.isdir(path) else None
        if now != size:
            size, stable_since = now, time.monotonic()
        if (not state(engine, name)['Running'] and not criu_of(cid, 'checkpoint') and listed and size
                and time.monotonic() - stable_since > 2):
            return
        time.sleep(0.2)


@pytest.mark.parametrize('method, left', [('engine', 'checkpoints/cp1.cryo-new'), ('runtime', '.cryo-tmp-cp1')])
def test_a_take_cut_after_the_dump_keeps_the_held_policy_for_the_restore(engine, make_container, method, left):
    name = make_container(big_counter(128), restart_policy={'Name': 'always'})
    before = wait_allocated(engine, name)
    # The module is cut while its CRIU runs (seen, frozen or not: the runtime path's freeze is ~0.25 s, shorter
    # than a /proc scan on a busy machine); CRIU and runc finish the dump without it.
    marker, cid = uuid.uuid4().hex, container_id(engine, name)

    def the_module():
        return modules_marked('docker_checkpoint', marker) if criu_of(cid, 'checkpoint') else []
    killer = Killer(the_module)
    killer.start()
    cut = run_module('docker_checkpoint', dict(container=name, checkpoint='cp1', method=method),
                     extra_env={MARKER: marker})
    killer.join(5)
    assert killer.killed and cut.get('failed'), cut
    # CRIU finishes the dump without the module: the container exits, its images under the temporary name only,
    # with the policy still held.
    container_dir = os.path.join(engine.info()['DockerRootDir'], 'containers', engine.inspect_container(name)['Id'])
    wait_written(engine, name, os.path.join(container_dir, left), method)
    assert checkpoints(engine, name) == [] and restart_policy(engine, name) == 'no'
    with open(os.path.join(container_dir, 'cryo-restart-policy-held.json'), encoding='utf-8') as handle:
        assert json.load(handle)['restart_policy']['Name'] == 'always'
    # The runbook's way back: the whole images moved into place, restored; the held policy comes back with it.
    os.rename(os.path.join(container_dir, left), os.path.join(container_dir, 'checkpoints', 'cp1'))
    back = run_module('docker_restore', dict(container=name, checkpoint='cp1'))
    assert back.get('restored') and back.get('verified') and back.get('restart_policy_put_back'), back
    assert restart_policy(engine, name) == 'always'
    assert not os.path.exists(os.path.join(container_dir, 'cryo-restart-policy-held.json'))
    assert_continues(engine, name, before)


# -- the checkpoint's filesystem full ---------------------------------------------------------------

@pytest.fixture
def small_fs(tmp_path):
    """A 24 MB tmpfs, unmounted afterwards."""
    path = str(tmp_path / 'small')
    os.mkdir(path)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=24m,mode=0700', 'cryo-fault-small', path], check=True)
    yield path
    subprocess.run(['umount', '--lazy', path], check=False)


@pytest.mark.parametrize('method', ['runtime', 'engine'])
def test_checkpoint_dir_full_during_a_checkpoint(engine, make_container, small_fs, method):
    name = make_container(big_counter(64))
    before = wait_allocated(engine, name)
    result = run_module('docker_checkpoint', dict(container=name, checkpoint='cp1', method=method,
                                                  checkpoint_dir=small_fs))
    assert result.get('failed'), result
    assert 'Traceback' not in result['msg'] and 'MODULE FAILURE' not in result['msg'], result['msg']
    assert state(engine, name)['Running'], 'a checkpoint that did not fit stopped the container: %s' % result['msg']
    # Refused before anything was stopped (not enough room), or CRIU ran out of it and the container ran on.
    assert result['container_running'] is True, result['msg']
    assert 'still running untouched' in result['msg'] or 'nothing was lost' in result['msg'], result['msg']
    assert checkpoints(engine, name, small_fs) == []
    # What the failed checkpoint wrote is gone: the filesystem is free for the next one.
    assert os.listdir(small_fs) == [], os.listdir(small_fs)
    assert_continues(engine, name, before)
    converge(engine, name, method=method)


def test_archive_path_full_during_an_export(engine, make_container, small_fs):
    name = make_container(big_counter(64))
    before = wait_allocated(engine, name)
    archive = os.path.join(small_fs, 'counter.tar')
    result = run_module('docker_checkpoint_export', dict(container=name, checkpoint='cp1', path=archive,
                                                         leave_running=True, include_image=False))
    assert result.get('failed'), result
    assert 'Traceback' not in result['msg'] and 'MODULE FAILURE' not in result['msg'], result['msg']
    assert not os.path.exists(archive), 'a half-written archive is left under its name'
    assert not [entry for entry in os.listdir(small_fs) if not entry.startswith('lost+found')], os.listdir(small_fs)
    assert_continues(engine, name, before)
    # The second run, to a filesystem with room, converges.
    again = run_module('docker_checkpoint_export', dict(container=name, checkpoint='cp1', leave_running=True,
                                                        include_image=False,
                                                        path=os.path.join(os.path.dirname(small_fs), 'counter.tar')))
    assert not again.get('failed'), again.get('msg')
    assert_continues(engine, name, before)


# -- the engine's data root full --------------------------------------------------------------------

@pytest.fixture(scope='module')
def small_root_engine():
    """An engine of its own whose data root is a 320 MB tmpfs (its images, containers, checkpoints, containerd's
    content store and the containers' logs all on it)."""
    bed = testbed_fleet.Engine('cryo-fault-full')
    os.makedirs(bed.data_root, exist_ok=True)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=320m,mode=0711', 'cryo-fault-full', bed.data_root],
                   check=True)
    with bed:
        bed.up()
        bed.load_image()
        yield bed


def fill(directory, keep=0):
    """A file that takes all the free space of directory's filesystem but keep bytes; its path."""
    path = os.path.join(directory, 'cryo-filler')
    free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
    subprocess.run(['fallocate', '-l', str(max(free - keep, 4096)), path], check=False)
    return path


def test_data_root_without_room_for_an_engine_checkpoint_is_refused_untouched(small_root_engine):
    """On the engine path the container stops as soon as CRIU has dumped, and the images reach the data root only
    afterwards (through containerd's content store): a data root that fills up then loses the container. The
    promise: with less room than the images need, the module refuses before anything is frozen; the container runs
    on untouched and nothing is listed."""
    bed = small_root_engine
    client = bed.client(timeout=120)
    name = start_counter(client, big_counter(64), 'cryo-fault-full')
    before = wait_allocated(client, name)
    filler = fill(bed.data_root, keep=32 * MIB)
    try:
        result = run_module('docker_checkpoint', dict(container=name, checkpoint='cp1', method='engine',
                                                      docker_host=bed.docker_host))
    finally:
        os.unlink(filler)
    assert result.get('failed'), result
    assert_clean_failure(result)
    assert 'still running untouched' in result['msg'] and 'MB free' in result['msg'], result['msg']
    assert result['container_running'] is True
    assert checkpoints(client, name) == []
    assert_continues(client, name, before)
    client.remove_container(name, force=True)


# -- two operations on one container at once ----------------------------------------------------------

def signal_if_there(pid, signum):
    """A CRIU worker seen a moment ago may have ended since (a zombie can be stopped, then be reaped): red in CI,
    the SIGCONT of such a pid left the others stopped, and the first checkpoint with them."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


@pytest.mark.parametrize('second', ['docker_checkpoint', 'docker_restore'])
def test_two_operations_on_one_container_the_second_is_refused(engine, make_container, second):
    """A checkpoint is under way (the test holds it stopped once its CRIU runs: CRIU and the module that holds the
    container's lock, so the moment is sure) when a second run starts a checkpoint, or a restore, of the same
    container. The promise: the second fails at once, saying the container is busy with the first (a checkpoint of
    cp1, its pid), and changes nothing; the first finishes: the container is stopped at cp1, which docker_restore
    resumes where it was."""
    name = make_container(big_counter(128))
    before = wait_allocated(engine, name)
    cid = container_id(engine, name)
    lock = _lock.lock_path(engine.info()['DockerRootDir'], cid)
    first = {}
    thread = threading.Thread(target=lambda: first.update(result=run_module(
        'docker_checkpoint', dict(container=name, checkpoint='cp1', method='runtime'))), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not criu_of(cid, 'checkpoint'):
        assert time.monotonic() < deadline and thread.is_alive(), 'the first checkpoint never dumped: %s' % first
        time.sleep(0.005)
    # Stopped, the module keeps the lock: CRIU alone can be seen in its last moments, after which the module lets
    # the lock go before the second run starts (under load, in CI).
    holder = _lock.read_owner(lock).get('pid')
    held = criu_of(cid, 'checkpoint') + ([holder] if holder else [])
    for pid in held:
        signal_if_there(pid, signal.SIGSTOP)
    try:
        assert holder and _lock.read_owner(lock).get('pid') == holder, (
            'the first checkpoint ended before it could be held (lock owner %s): %s' % (holder, first))
        refused = run_module(second, dict(container=name, checkpoint='cp1'))
    finally:
        for pid in held:
            signal_if_there(pid, signal.SIGCONT)
    thread.join(120)
    assert refused.get('failed') and refused.get('busy') is True, refused
    assert_clean_failure(refused)
    assert 'the container is busy with a checkpoint of checkpoint cp1 by pid' in refused['msg'], refused['msg']
    assert 'nothing was changed' in refused['msg']
    assert not first['result'].get('failed'), first['result'].get('msg')
    assert checkpoints(engine, name) == ['cp1'] and not state(engine, name)['Running']
    back = run_module('docker_restore', dict(container=name, checkpoint='cp1'))
    assert back.get('restored') and back.get('verified'), back.get('msg')
    assert_continues(engine, name, before)


# -- the engine killed during a checkpoint and a restore ----------------------------------------------

@pytest.fixture(scope='module')
def fault_engine():
    with testbed_fleet.Engine('cryo-fault') as bed:
        bed.up()
        bed.load_image()
        yield bed


def start_counter(client, command, prefix='cryo-fault'):
    """A container running command (a counter) on the engine of client; its name."""
    name = '%s-%s' % (prefix, uuid.uuid4().hex[:6])
    client.create_container('cryo-test/busybox:1', ['/bin/sh', '-c', command], name=name,
                            host_config=client.create_host_config(security_opt=['seccomp=unconfined']))
    client.start(name)
    return name


def power_cycle(bed):
    """What a power cut and a boot do to one engine: every process of it SIGKILLed, /run wiped, started again."""
    bed.kill()
    bed.clear_run()
    bed.prepare()
    bed.start()
    bed.wait()
    return bed.client(timeout=120)


def start_afresh(client, name):
    """docker start of a container whose processes were lost; waits for its new run of numbers."""
    starts = len(runs(counter_lines(client, name)))
    client.start(name)
    assert wait_running(client, name, 30)
    deadline = time.monotonic() + 60
    while len(runs(counter_lines(client, name))) <= starts:
        assert time.monotonic() < deadline, 'the counter of %s did not start again' % name
        time.sleep(0.2)


def kill_engine_when(bed, find, delay):
    """SIGKILL every process of the engine once find() names a process (after delay s)."""
    def engine_pids():
        return bed.processes() if find() else []
    return Killer(engine_pids, delay=delay)


def assert_clean_failure(result):
    assert 'Traceback' not in result.get('msg', '') and 'MODULE FAILURE' not in result.get('msg', ''), result


def assert_no_temporary_left(client, bed, name, method):
    """The next take of cp1 removes whatever a killed one left under its temporary names."""
    again = run_module('docker_checkpoint', dict(container=name, checkpoint='cp1', method=method, leave_running=True,
                                                 docker_host=bed.docker_host))
    assert not again.get('failed'), again.get('msg')
    container_dir = os.path.join(bed.data_root, 'containers', container_id(client, name))
    left = [entry for entry in os.listdir(container_dir) if entry.startswith('.cryo-tmp-')]
    left += [entry for entry in os.listdir(os.path.join(container_dir, 'checkpoints')) if entry.endswith('.cryo-new')]
    assert not left, left


def checkpoint_killing_the_engine(bed, method, moment):
    """A counter on bed, checkpointed as cp1 while every process of the engine is SIGKILLed at moment(client, name)
    (a find() for a Killer); (client, name, the counter before, the module's result)."""
    client = bed.client(timeout=120)
    name = start_counter(client, big_counter(128))
    before = wait_allocated(client, name)
    killer = kill_engine_when(bed, moment(client, name), 0)
    killer.start()
    result = run_module('docker_checkpoint', dict(container=name, checkpoint='cp1', method=method,
                                                  docker_host=bed.docker_host, timeout=120))
    killer.join(5)
    assert killer.killed, 'the engine was not killed'
    return client, name, before, result


@pytest.mark.parametrize('method', ['engine'])
def test_engine_killed_while_criu_dumps_no_checkpoint_is_listed(fault_engine, method):
    """The engine (every process of it, its containers too: a power cut) killed while CRIU dumps the container.
    The promise: the module fails saying the engine stopped answering and how to tell what is left; once the
    engine is back no checkpoint cp1 is listed (what was written is under a temporary name only), the container
    is stopped (its processes died with the engine) and docker start runs it afresh; the next take converges and
    removes what the killed one left."""
    client, name, _before, result = checkpoint_killing_the_engine(fault_engine, method, while_criu_dumps)
    assert result.get('failed'), result
    assert_clean_failure(result)
    assert 'stopped answering' in result['msg'] and 'docker_checkpoint_info' in result['msg'], result['msg']
    client = power_cycle(fault_engine)
    assert checkpoints(client, name) == []
    assert not state(client, name)['Running']
    start_afresh(client, name)
    converge(client, name, docker_host=fault_engine.docker_host, method=method)
    assert_no_temporary_left(client, fault_engine, name, method)
    client.remove_container(name, force=True)


def after_the_dump(engine, name):
    """find() for a Killer: true once the container's CRIU was seen and its processes are gone (CRIU ends a dump
    without leave_running by killing them), while the module has not finished."""
    cid, pid = container_id(engine, name), state(engine, name)['Pid']
    seen = []

    def find():
        if not seen:
            seen.extend(criu_of(cid, 'checkpoint'))
            return []
        return [pid] if not HOST.alive(pid) else []
    return find


@pytest.mark.parametrize('method, listed', [('engine', []), ('runtime', ['cp1'])])
def test_engine_killed_after_the_dump(fault_engine, method, listed):
    """The engine killed the moment the dump is over (the container's processes gone), before the module moved the
    images to the checkpoint's name. The promise differs by path, and each is one outcome: on the engine path the
    images still travel through containerd and dockerd, so the module never renames anything and cp1 is not
    listed: the container can only start afresh. On the runtime path runc wrote the images itself and the module
    renames them without the engine: cp1 is listed whole, and docker_restore brings the counter back where it
    stopped."""
    client, name, before, result = checkpoint_killing_the_engine(fault_engine, method, after_the_dump)
    assert_clean_failure(result)
    if result.get('failed'):
        assert 'stopped answering' in result['msg'], result['msg']
    client = power_cycle(fault_engine)
    assert checkpoints(client, name) == listed
    assert_nothing_half_written(client, name, 'cp1')
    if listed:
        back = run_module('docker_restore', dict(container=name, checkpoint='cp1',
                                                 docker_host=fault_engine.docker_host, timeout=120))
        assert back.get('restored') and back.get('verified'), back.get('msg') or back['_output'][-3000:]
        assert_continues(client, name, before)
    else:
        assert result.get('failed'), 'the engine path reported a checkpoint the engine never finished'
        start_afresh(client, name)
    converge(client, name, docker_host=fault_engine.docker_host, method=method)
    assert_no_temporary_left(client, fault_engine, name, method)
    client.remove_container(name, force=True)


def test_engine_killed_during_a_restore(fault_engine):
    client = fault_engine.client(timeout=120)
    name = start_counter(client, big_counter(128))
    before = wait_allocated(client, name)
    taken = run_module('docker_checkpoint', dict(container=name, checkpoint='cp1', method='runtime',
                                                 docker_host=fault_engine.docker_host))
    assert not taken.get('failed'), taken.get('msg')

    cid = container_id(client, name)
    killer = kill_engine_when(fault_engine, lambda: criu_of(cid, 'restore'), 0.05)
    killer.start()
    result = run_module('docker_restore', dict(container=name, checkpoint='cp1', docker_host=fault_engine.docker_host,
                                               timeout=120))
    killer.join(5)
    assert killer.killed, 'the engine was not killed during the restore'
    assert_clean_failure(result)
    client = power_cycle(fault_engine)
    # The checkpoint was kept (a restore removes it only once verified): the same command brings it back, past
    # the tarball the killed engine left in containerd's content store.
    assert checkpoints(client, name) == ['cp1']
    back = run_module('docker_restore', dict(container=name, checkpoint='cp1', docker_host=fault_engine.docker_host,
                                             timeout=120))
    assert back.get('restored') and back.get('verified'), back.get('msg') or back['_output'][-3000:]
    # The killed engine had uploaded the checkpoint's tarball: it collided with every retry until removed.
    assert back.get('stale_content_removed', '').startswith('sha256:'), back
    assert_continues(client, name, before)
    converge(client, name, docker_host=fault_engine.docker_host)
    client.remove_container(name, force=True)


def start_from_checkpoint(engine, name, checkpoint):
    """The engine's restore alone, through the Engine API: what a docker_restore killed right after it leaves."""
    response = engine._post(engine._url('/containers/{0}/start', name), params={'checkpoint': checkpoint})
    engine._raise_for_status(response)


def restart_policy(engine, name):
    return engine.inspect_container(name)['HostConfig']['RestartPolicy']['Name']


def test_a_restore_cut_after_the_resume_is_finished_by_the_next_run(engine, make_container):
    name = make_container(big_counter(16), restart_policy={'Name': 'always'})
    before = wait_allocated(engine, name)
    taken = run_module('docker_checkpoint', dict(container=name, checkpoint='cp1'))
    assert taken.get('changed') and not taken.get('failed'), taken.get('msg')
    assert restart_policy(engine, name) == 'no', 'the checkpoint holds the policy'
    start_from_checkpoint(engine, name, 'cp1')
    assert wait_running(engine, name, timeout=30) and restart_policy(engine, name) == 'no'
    finished = run_module('docker_restore', dict(container=name, checkpoint='cp1', keep_checkpoint=False))
    assert not finished.get('failed'), finished.get('msg')
    assert finished['changed'] and finished['verified'] is True and finished['restart_policy_put_back'], finished
    assert finished['restored'] is False and finished['checkpoint_removed'] and checkpoints(engine, name) == []
    assert restart_policy(engine, name) == 'always'
    assert_continues(engine, name, before)
    again = run_module('docker_restore', dict(container=name, checkpoint='cp1', keep_checkpoint=False))
    assert not again.get('failed') and not again['changed'], again.get('msg')


# -- two maintenance runs at once -----------------------------------------------------------------

REBOOT_HOSTS = """
- name: The collection's playbook
  ansible.builtin.import_playbook: cryo.docker.reboot_hosts
"""

# The first run's action: wait until the test says the second run is over.
WAIT_FOR_SIGNAL = """---
- name: Wait for the test
  ansible.builtin.wait_for:
    path: "{{ cryo_test_signal }}"
    timeout: 120
"""


def test_two_maintenance_runs_at_once_one_refuses_by_the_lock(fleet, tmp_path):
    host = fleet.hosts[0]
    client = fleet.clients[host]
    name = start_counter(client, COUNTER, 'cryo-fault-lock')
    try:
        before = wait_counter(client, name, 2)
        state_dir = str(tmp_path / 'state')
        tasks = tmp_path / 'wait.yml'
        tasks.write_text(WAIT_FOR_SIGNAL)
        signal_file = str(tmp_path / 'go')
        extra = dict(maintenance_state_dir=state_dir, maintenance_action='tasks', maintenance_tasks_file=str(tasks),
                     cryo_test_signal=signal_file, maintenance_containers=[name])
        first = {}
        thread = threading.Thread(target=lambda: first.update(proc=run_playbook(
            REBOOT_HOSTS, fleet.inventory, limit=host, extra_vars=dict(extra, maintenance_run_id='first'))))
        thread.start()
        deadline = time.monotonic() + 120
        while not os.path.isfile(os.path.join(state_dir, 'lock', 'owner.json')):
            assert time.monotonic() < deadline and thread.is_alive(), 'the first run never took the lock'
            time.sleep(0.2)
        second = run_playbook(REBOOT_HOSTS, fleet.inventory, limit=host,
                              extra_vars=dict(extra, maintenance_run_id='second'))
        open(signal_file, 'w').close()
        thread.join(180)
        assert second.returncode != 0
        assert 'Another maintenance run holds the lock' in second.stdout and 'run first' in second.stdout, \
            second.stdout[-3000:]
        assert first['proc'].returncode == 0, first['proc'].stdout[-5000:]
        assert not os.path.exists(os.path.join(state_dir, 'lock')), 'the lock was not released'
        assert_continues(client, name, before)
        # A third run finds the lock free.
        third = run_playbook(REBOOT_HOSTS, fleet.inventory, limit=host,
                             extra_vars=dict(extra, maintenance_run_id='third', maintenance_action='none'))
        assert third.returncode == 0, third.stdout[-3000:]
        assert not os.path.exists(os.path.join(state_dir, 'lock'))
        assert_continues(client, name, before)
    finally:
        client.remove_container(name, force=True)


def test_a_lock_left_behind_is_named_with_the_way_to_clear_it(fleet, tmp_path):
    host = fleet.hosts[0]
    state_dir = str(tmp_path / 'state')
    os.makedirs(os.path.join(state_dir, 'lock'))
    with open(os.path.join(state_dir, 'lock', 'owner.json'), 'w') as handle:
        handle.write('{"run_id": "old", "taken": "2026-01-01T00:00:00+00:00", "boot_id": "not-this-boot"}\n')
    proc = run_playbook(REBOOT_HOSTS, fleet.inventory, limit=host,
                        extra_vars=dict(maintenance_state_dir=state_dir, maintenance_action='none',
                                        maintenance_containers=[]))
    assert proc.returncode != 0
    assert 'run old' in proc.stdout and 'before this host last booted' in proc.stdout, proc.stdout[-3000:]
    assert 'rm -r %s/lock' % state_dir in proc.stdout
    # It is not ours to remove: it stays until the operator clears it.
    assert os.path.isdir(os.path.join(state_dir, 'lock'))


# -- a host "rebooted" between the freeze and the manifest write ------------------------------------------

RECOVER = """
- name: The collection's playbook
  ansible.builtin.import_playbook: cryo.docker.recover
"""


def descendants(root):
    """root and every process below it, from /proc."""
    return testbed_fleet.with_descendants(HOST.processes(), {root})


class ModuleCut(threading.Thread):
    """Kills the run (the process whose command line has marker, and all below it) the moment the module
    named `module` has run on it and returned: what a host that went down right then leaves."""

    def __init__(self, marker, module, timeout=180):
        super().__init__(daemon=True)
        self.marker, self.wrapper, self.timeout = marker, '/AnsiballZ_%s.py' % module, timeout
        self.cut = False

    def run(self):
        deadline = time.monotonic() + self.timeout
        seen = False
        while time.monotonic() < deadline:
            table = HOST.processes()
            runner = [pid for pid, (_ppid, cmdline, _cgroup) in table.items()
                      if self.marker in cmdline and 'ansible-playbook' in cmdline]
            # The module of this run only: another run on this host (the guests' tests beside these run theirs
            # through ssh, the wrapper's path on its command line) must not cut this one.
            running = bool(runner) and any(self.wrapper in table[pid][1]
                                           for pid in with_descendants(table, {runner[0]}) if pid in table)
            if runner and running:
                seen = True
            elif runner and seen:
                for pid in descendants(runner[0]):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.cut = True
                return
            time.sleep(0.002)


def test_host_rebooted_between_the_freeze_and_the_manifest_write(fleet, tmp_path):
    host = fleet.hosts[0]
    client = fleet.clients[host]
    name = start_counter(client, COUNTER, 'cryo-fault-reboot')
    try:
        before = wait_counter(client, name, 2)
        state_dir = str(tmp_path / 'state')
        marker = 'cryo_fault_marker=%s' % uuid.uuid4().hex
        cut = ModuleCut(marker, 'docker_checkpoint')
        cut.start()
        killed = run_playbook(REBOOT_HOSTS, fleet.inventory, limit=host, options=['-e', marker], extra_vars=dict(
            maintenance_state_dir=state_dir, maintenance_action='none', maintenance_containers=[name],
            maintenance_run_id='cut'))
        cut.join(5)
        assert cut.cut, 'the run was not cut after its checkpoint: %s' % killed.stdout[-3000:]
        # The freeze happened, the manifest still says the run was checkpointing (its entries only planned).
        with open(os.path.join(state_dir, 'manifest.json'), encoding='utf-8') as handle:
            assert json.load(handle)['status'] == 'checkpointing'
        assert checkpoints(client, name), 'the container was not checkpointed before the cut'
        assert not state(client, name)['Running']
        client = power_cycle(fleet.engine(host))
        # A new run refuses (the lock of the cut run is still there, and the manifest is not finished) ...
        refused = run_playbook(REBOOT_HOSTS, fleet.inventory, limit=host, extra_vars=dict(
            maintenance_state_dir=state_dir, maintenance_action='none', maintenance_containers=[name]))
        assert refused.returncode != 0 and 'cryo.docker.recover' in refused.stdout, refused.stdout[-3000:]
        assert not state(client, name)['Running']
        # ... and the documented recover playbook brings the container back where it stopped.
        recovered = run_playbook(RECOVER, fleet.inventory, limit=host, extra_vars=dict(maintenance_state_dir=state_dir))
        assert recovered.returncode == 0, recovered.stdout[-5000:]
        assert_continues(client, name, before)
        # It converged: the lock is released and the manifest says the run is over (a new run may start).
        assert not os.path.exists(os.path.join(state_dir, 'lock')), 'the recover run did not release the lock'
        with open(os.path.join(state_dir, 'manifest.json'), encoding='utf-8') as handle:
            assert json.load(handle)['status'] == 'complete'
    finally:
        client.remove_container(name, force=True)


# -- an archive import interrupted half-way ------------------------------------------------------------

@pytest.mark.parametrize('when', ['unpacking', 'created', 'restoring'])
def test_import_interrupted_half_way_then_run_again(engine, make_container, tmp_path, when):
    source = make_container(big_counter(64), restart_policy={'Name': 'always'})
    wait_allocated(engine, source)
    archive = str(tmp_path / 'counter.tar')
    exported = run_module('docker_checkpoint_export', dict(container=source, checkpoint='cp1', path=archive,
                                                           leave_running=True, include_image=False))
    assert not exported.get('failed'), exported.get('msg')
    frozen_at = counter(engine, source)
    clone = 'cryo-fault-clone-%s' % uuid.uuid4().hex[:6]
    staging = os.path.join(engine.info()['DockerRootDir'], 'cryo-import')

    def import_process():
        found = [pid for pid, (_ppid, cmdline, _cgroup) in HOST.processes().items()
                 if '/AnsiballZ_docker_checkpoint_import.py' in cmdline]
        if not found:
            return []
        if when == 'restoring':
            made = engine.containers(all=True, filters={'name': clone})
            return found if made and criu_of(made[0]['Id'], 'restore') else []
        if when == 'unpacking':
            unpacking = [entry for entry in (os.listdir(staging) if os.path.isdir(staging) else [])
                         if clone in entry and os.listdir(os.path.join(staging, entry))]
            return found if unpacking else []
        made = engine.containers(all=True, filters={'name': clone})
        return found if made and not made[0]['State'] == 'running' else []
    killer = Killer(import_process)
    killer.start()
    try:
        cut = run_module('docker_checkpoint_import', dict(path=archive, container=clone, allow=['security_options']))
        killer.join(5)
        assert killer.killed, 'the import was not interrupted %s' % when
        assert cut.get('failed'), cut
        made = engine.containers(all=True, filters={'name': clone})
        if when == 'restoring':
            # The engine's restore goes on without its client: the clone resumes, its policy still held.
            assert wait_running(engine, clone, timeout=30) and restart_policy(engine, clone) == 'no'
        elif made:
            # What the cut left: maybe a created container that never ran; no checkpoint listed half-written.
            assert made[0]['State'] != 'running'
            assert_nothing_half_written(engine, clone, 'cp1')
        again = run_module('docker_checkpoint_import', dict(path=archive, container=clone, allow=['security_options']))
        assert not again.get('failed'), again.get('msg') or again['_output'][-3000:]
        if when == 'restoring' or again['action'] == 'finish':
            # The run proved the clone runs the checkpoint and did what the cut one left undone (a cut 'created'
            # lands in the engine's restore now and then).
            assert again['action'] == 'finish' and not again['restored'] and again['restart_policy_put_back'], again
        else:
            assert again['restored'], again
        assert again['verified'] is True, again
        assert restart_policy(engine, clone) == 'always' and checkpoints(engine, clone) == []
        # The clone counts on from the checkpoint (not from 0), in one unbroken run; nothing of the cut is left.
        lines = wait_lines(engine, clone, 2)
        assert len(runs(lines)) == 1 and 0 < lines[0] <= frozen_at + 1, lines
        assert not [entry for entry in os.listdir(staging) if clone in entry], os.listdir(staging)
        # A third run changes nothing.
        third = run_module('docker_checkpoint_import', dict(path=archive, container=clone, allow=['security_options']))
        assert not third.get('failed') and not third['changed'], third.get('msg')
    finally:
        try:
            engine.remove_container(clone, force=True)
        except docker.errors.NotFound:
            pass
