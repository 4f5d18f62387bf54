"""Faults in the middle of an operation: nothing is lost.

After each fault the container is running, or stopped with a usable checkpoint that a documented
command brings back; no half-written checkpoint is listed under the checkpoint's name; and a second run
of the same task converges (its counter continues).

- CRIU killed (SIGKILL, found by a /proc scan) while it dumps, on the runtime and the engine path;
- the checkpoint's filesystem full (a small tmpfs as checkpoint_dir) during a checkpoint, and during an
  archive export (docker_checkpoint_export's path on it);
- the engine (dockerd and containerd, every process of it) killed during a checkpoint and during a
  restore, on an engine of its own (fleet.Engine('cryo-fault')), so the main engine is untouched;
- two maintenance runs started at once on one host: one refuses, by the role's lock.
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
from helpers import (COUNTER, HOST, checkpoints, counter, counter_lines, run_module, run_playbook, runs,
                     state, wait_counter, wait_lines, wait_running)

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


def criu_processes(*modes):
    """Pids of the criu processes on this machine running one of modes (runc runs criu as `criu swrk`)."""
    found = []
    for pid, (_ppid, cmdline, _cgroup) in HOST.processes().items():
        argv = cmdline.split()
        if argv and os.path.basename(argv[0]) == 'criu' and any(mode in argv for mode in modes):
            found.append(pid)
    return found


def criu_dumps():
    """Pids of the `criu dump` (or swrk) processes on this machine, from /proc."""
    return criu_processes('dump', 'swrk')


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
                for pid in self.find() or pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                        self.killed.append(pid)
                    except ProcessLookupError:
                        pass
            time.sleep(0.005)


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
    name = make_container(big_counter(128))
    before = wait_allocated(engine, name)
    killer = Killer(criu_dumps)
    killer.start()
    result = run_module('docker_checkpoint', dict(container=name, checkpoint='cp1', method=method))
    killer.join(5)
    assert killer.killed, 'no criu dump was seen to kill'
    assert result.get('failed'), result
    assert 'Traceback' not in result['msg'] and 'MODULE FAILURE' not in result['msg'], result['msg']
    assert_nothing_half_written(engine, name, 'cp1')
    assert 'cp1' not in checkpoints(engine, name), 'a killed dump is listed as a checkpoint'
    if not state(engine, name)['Running']:
        # The msg names the way back: docker start (no checkpoint was taken).
        assert 'start it again' in result['msg'], result['msg']
        engine.start(name)
        before = -1
    else:
        assert result['container_running'] is True and 'nothing was lost' in result['msg']
    assert_continues(engine, name, before) if before >= 0 else wait_counter(engine, name, 1)
    # No temporary directory of the runtime path is left behind.
    container_dir = os.path.dirname(os.path.dirname(os.path.join(
        engine.info()['DockerRootDir'], 'containers', engine.inspect_container(name)['Id'], 'checkpoints', 'x')))
    assert not [entry for entry in os.listdir(container_dir) if entry.startswith('.cryo-tmp-')]
    converge(engine, name, method=method)


# -- docker_checkpoint itself killed after CRIU dumped ------------------------------------------------

def wait_written(engine, name, path, method, timeout=60):
    """Until the cut take is over: the container exited, no criu runs, the engine (engine path) lists what it
    wrote, and nothing has grown for 2 s (the engine unpacks the images after CRIU is done)."""
    deadline = time.monotonic() + timeout
    size, stable_since = None, time.monotonic()
    while True:
        assert time.monotonic() < deadline, 'the cut take did not finish: %s' % path
        listed = method != 'engine' or os.path.basename(path) in [
            entry['Name'] for entry in engine._result(engine._get(engine._url('/containers/{0}/checkpoints', name)),
                                                      True) or []]
        now = sum(entry.stat().st_size for entry in os.scandir(path)) if os.path.isdir(path) else None
        if now != size:
            size, stable_since = now, time.monotonic()
        if (not state(engine, name)['Running'] and not criu_dumps() and listed and size
                and time.monotonic() - stable_since > 2):
            return
        time.sleep(0.2)


@pytest.mark.parametrize('method, left', [('engine', 'checkpoints/cp1.cryo-new'), ('runtime', '.cryo-tmp-cp1')])
def test_a_take_cut_after_the_dump_keeps_the_held_policy_for_the_restore(engine, make_container, method, left):
    name = make_container(big_counter(64), restart_policy={'Name': 'always'})
    before = wait_allocated(engine, name)

    def the_module():
        return [pid for pid, (_ppid, cmdline, _cgroup) in HOST.processes().items()
                if '/AnsiballZ_docker_checkpoint.py' in cmdline] if criu_dumps() else []
    killer = Killer(the_module)
    killer.start()
    cut = run_module('docker_checkpoint', dict(container=name, checkpoint='cp1', method=method))
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


@pytest.mark.parametrize('method', ['engine', 'runtime'])
def test_engine_killed_during_a_checkpoint(fault_engine, method):
    client = fault_engine.client(timeout=120)
    name = start_counter(client, big_counter(128))
    before = wait_allocated(client, name)
    killer = kill_engine_when(fault_engine, criu_dumps, 0.1 if method == 'runtime' else 1.5)
    killer.start()
    result = run_module('docker_checkpoint', dict(container=name, checkpoint='cp1', method=method,
                                                  docker_host=fault_engine.docker_host, timeout=120))
    killer.join(5)
    assert killer.killed, 'the engine was not killed'
    assert_clean_failure(result)
    if result.get('failed'):
        # The engine went away under the module: the msg says what is not known and the way back.
        assert 'stopped answering' in result['msg'] and 'docker_checkpoint_info' in result['msg'], result['msg']
    client = power_cycle(fault_engine)
    assert_nothing_half_written(client, name, 'cp1')
    if 'cp1' in checkpoints(client, name):
        # The checkpoint was whole: the documented restore brings the counter back.
        back = run_module('docker_restore', dict(container=name, checkpoint='cp1', docker_host=fault_engine.docker_host))
        assert back.get('restored') and back.get('verified'), back.get('msg')
        assert_continues(client, name, before)
    else:
        # Killed with its engine and no checkpoint: its processes are gone, docker start gives a fresh run (the
        # msg said so). What the engine had written under a temporary name is not listed.
        start_afresh(client, name)
    converge(client, name, docker_host=fault_engine.docker_host, method=method)
    # The next take of cp1 removes whatever the killed one left under its temporary names.
    again = run_module('docker_checkpoint', dict(container=name, checkpoint='cp1', method=method, leave_running=True,
                                                 docker_host=fault_engine.docker_host))
    assert not again.get('failed'), again.get('msg')
    container_dir = os.path.join(fault_engine.data_root, 'containers', client.inspect_container(name)['Id'])
    left = [entry for entry in os.listdir(container_dir) if entry.startswith('.cryo-tmp-')]
    left += [entry for entry in os.listdir(os.path.join(container_dir, 'checkpoints')) if entry.endswith('.cryo-new')]
    assert not left, left
    client.remove_container(name, force=True)


def test_engine_killed_during_a_restore(fault_engine):
    client = fault_engine.client(timeout=120)
    name = start_counter(client, big_counter(128))
    before = wait_allocated(client, name)
    taken = run_module('docker_checkpoint', dict(container=name, checkpoint='cp1', method='runtime',
                                                 docker_host=fault_engine.docker_host))
    assert not taken.get('failed'), taken.get('msg')

    killer = kill_engine_when(fault_engine, lambda: criu_processes('swrk'), 0.05)
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
            running = any(self.wrapper in cmdline for _ppid, cmdline, _cgroup in table.values())
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
            return found if criu_processes('swrk') else []
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
