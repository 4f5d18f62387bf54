"""The use-case playbooks, for real: warm_start, rewind and snapshot on the main engine,
move_container between two engines of the simulated fleet.

Each test runs the collection's playbook with ansible-playbook and checks what the process did:
a warm start is ready much sooner than a cold one and skips the warm-up, a rewound counter goes
back (and forward again when the rewind is undone), a snapshotted counter never stops and the
snapshot resumes in a fresh container, a moved counter carries on on the other engine, where it never existed,
with the file it wrote at run time.
"""

import datetime
import glob
import io
import os
import re
import tarfile
import tempfile
import time
import uuid

import pytest

from helpers import (COUNTER, DOCKER_HOST, INVENTORY, checkpoint_path, checkpoints, collection_playbook, counter,
                     counter_lines, free_port, http_get, run_module, run_playbook, state, wait_counter, wait_lines,
                     wait_running)


def play(name, **extra_vars):
    """Run cryo.docker.<name> on this machine's main engine; the run must succeed."""
    proc = run_playbook(collection_playbook(name), INVENTORY, extra_vars=dict(extra_vars, cryo_docker_host=DOCKER_HOST))
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return proc


def discontinuities(lines):
    """Indexes where the counter output does not go on by one."""
    return [i for i in range(1, len(lines)) if lines[i] != lines[i - 1] + 1]


def log_times(engine, name):
    """(time, value) of every counter line, from the engine's log timestamps (RFC 3339, nanoseconds)."""
    out = []
    for line in engine.logs(name, timestamps=True).decode().splitlines():
        stamp, _sep, text = line.partition(' ')
        if not text.strip().isdigit():
            continue
        whole, _dot, fraction = stamp.rstrip('Z').partition('.')
        when = datetime.datetime.strptime(whole, '%Y-%m-%dT%H:%M:%S').replace(tzinfo=datetime.timezone.utc)
        out.append((when.timestamp() + float('0.' + (fraction or '0')), int(text)))
    return out


# -- warm start -----------------------------------------------------------------------------

WARM_UP = 6
# A slow starter: warms up for WARM_UP seconds, then serves on the host network.
SLOW_APP = ('echo warming up; sleep %d; mkdir -p /www; echo warm > /www/index.html; echo ready; '
            'exec httpd -f -p %%d -h /www' % WARM_UP)
READY = re.compile(r'(ready|running) ([0-9.]+) s after the start')


def test_warm_start_is_ready_much_sooner_than_a_cold_start(engine, make_container):
    port = free_port()
    name = make_container(SLOW_APP % port, name='usecase-warm-%s' % uuid.uuid4().hex[:6], network_mode='host')

    proc = play('warm_start', warm_start_container=name, warm_start_mode='prepare', warm_start_ready_port=port)
    assert checkpoints(engine, name) == ['warm']
    assert state(engine, name)['Running'], 'prepare stopped the container'
    assert http_get(port) == 'warm'
    assert 'warm-start checkpoint warm taken in' in proc.stdout
    # Prepared again: the checkpoint is kept as it is.
    proc = play('warm_start', warm_start_container=name, warm_start_mode='prepare')
    assert 'already there' in proc.stdout

    engine.stop(name, timeout=1)
    started = time.monotonic()
    proc = play('warm_start', warm_start_container=name, warm_start_mode='start', warm_start_ready_port=port)
    warm_wall = time.monotonic() - started
    assert 'started WARM from checkpoint warm' in proc.stdout, proc.stdout[-3000:]
    warm_ready = float(READY.search(proc.stdout).group(2))
    assert http_get(port) == 'warm'
    logs = engine.logs(name).decode()
    assert logs.count('warming up') == 1, 'the warm start warmed up again:\n' + logs
    assert checkpoints(engine, name) == ['warm'], 'the checkpoint must be kept for the next start'

    # The same start without a usable checkpoint falls back to a cold start, warm-up included.
    engine.stop(name, timeout=1)
    started = time.monotonic()
    proc = play('warm_start', warm_start_container=name, warm_start_mode='start', warm_start_ready_port=port,
                warm_start_checkpoint='never-taken')
    cold_wall = time.monotonic() - started
    assert 'started COLD' in proc.stdout, proc.stdout[-3000:]
    cold_ready = float(READY.search(proc.stdout).group(2))
    assert engine.logs(name).decode().count('warming up') == 2
    assert http_get(port) == 'warm'

    print('warm start: ready %.2f s after the start (playbook %.1f s); cold start: ready %.2f s (playbook %.1f s)'
          % (warm_ready, warm_wall, cold_ready, cold_wall))
    # Both include Ansible's task overhead (about 1 s here); the cold start has the warm-up on top.
    assert cold_ready >= WARM_UP
    assert warm_ready < cold_ready / 2
    assert warm_ready + WARM_UP - 2 < cold_ready
    assert warm_wall + WARM_UP - 2 < cold_wall


# -- rewind ---------------------------------------------------------------------------------

def test_rewind_goes_back_and_can_be_undone(engine, make_container):
    name = make_container(name='usecase-rewind-%s' % uuid.uuid4().hex[:6])
    wait_counter(engine, name, 3)
    low = counter(engine, name)
    taken = run_module('docker_checkpoint', {'container': name, 'checkpoint': 'before', 'leave_running': True})
    high = counter(engine, name)
    assert taken.get('changed') and not taken.get('failed'), taken
    # Far enough ahead that the rewound stretch cannot run into the undo point.
    wait_counter(engine, name, high + 8)

    proc = play('rewind', rewind_container=name, rewind_checkpoint='before', rewind_save_current=True,
                rewind_save_as='undo-1')
    assert 'undo with -e rewind_checkpoint=undo-1' in proc.stdout
    assert checkpoints(engine, name) == ['before', 'undo-1']
    assert wait_running(engine, name)
    lines = counter_lines(engine, name)
    wait_lines(engine, name, len(lines) + 3)
    lines = counter_lines(engine, name)
    back = discontinuities(lines)
    assert len(back) == 1, str(lines)
    cut = back[0]
    assert lines[:cut] == list(range(cut)), 'the counter restarted before the rewind: %s' % lines
    # Back to where the checkpoint was taken, which is well before where it was.
    assert low + 1 <= lines[cut] <= high + 1, (low, high, lines)
    assert lines[cut - 1] >= high + 8
    before_rewind = lines[cut - 1]

    # Undo the rewind: forward again, to the state saved just before it.
    proc = play('rewind', rewind_container=name, rewind_checkpoint='undo-1')
    assert 'The state before the rewind is gone' in proc.stdout
    lines = counter_lines(engine, name)
    lines = wait_lines(engine, name, len(lines) + 2)
    jumps = discontinuities(lines)
    assert len(jumps) == 2, str(lines)
    # Saved a moment (the playbook's task overhead) before the rewind stopped the container.
    assert high + 9 <= lines[jumps[1]] <= before_rewind + 1, (high, before_rewind, str(lines))
    assert checkpoints(engine, name) == ['before', 'undo-1']


# -- forensic snapshot ----------------------------------------------------------------------

def test_snapshot_never_stops_the_container_and_restores_elsewhere(engine, make_container):
    name = make_container(name='usecase-snap-%s' % uuid.uuid4().hex[:6])
    wait_counter(engine, name, 3)
    started_at = state(engine, name)['StartedAt']
    with tempfile.TemporaryDirectory(prefix='cryo-usecase-snap-') as snapshot_dir:
        began = time.time()
        low = counter(engine, name)
        proc = play('snapshot', snapshot_container=name, snapshot_dir=snapshot_dir)
        high = counter(engine, name)
        wait_counter(engine, name, high + 2)

        # The container never stopped: same process, no gap in its output longer than its pace.
        assert state(engine, name)['Running'] and state(engine, name)['StartedAt'] == started_at
        lines = counter_lines(engine, name)
        assert lines == list(range(len(lines))), lines
        stamps = [when for when, _value in log_times(engine, name) if when >= began - 2]
        pauses = [later - earlier for earlier, later in zip(stamps, stamps[1:])]
        assert len(pauses) >= 3 and max(pauses) < 1.8, 'the counter paused: %s' % pauses

        place = os.path.join(snapshot_dir, name)
        assert os.stat(place).st_mode & 0o777 == 0o700
        (snapshot,) = os.listdir(place)
        assert re.match(r'^snapshot-[0-9]{8}T[0-9]{6}Z$', snapshot), snapshot
        assert os.path.isfile(os.path.join(place, snapshot, 'inventory.img'))
        assert 'Snapshot of %s: %s' % (name, os.path.join(place, snapshot)) in proc.stdout
        assert re.search(r'Size [0-9.]+ [kKMG]?B', proc.stdout), proc.stdout[-3000:]
        assert checkpoints(engine, name) == [], 'the snapshot belongs in snapshot_dir, not the engine'

        # The migration path: the snapshot resumes in a fresh container made from the same image.
        fresh = make_container(name=name + '-replay', start=False)
        result = run_module('docker_restore', {'container': fresh, 'checkpoint': snapshot, 'checkpoint_dir': place})
        assert result.get('restored') and result.get('verified'), result
        wait_counter(engine, fresh, high + 3)
        replay = counter_lines(engine, fresh)
        assert low + 1 <= replay[0] <= high + 1, (low, high, replay)
        assert replay == list(range(replay[0], replay[0] + len(replay))), replay
        assert os.path.isdir(os.path.join(place, snapshot)), 'restoring must not use up the snapshot'
        assert not os.path.exists(checkpoint_path(engine, fresh, snapshot)), 'the staged copy must be removed'


# -- move a container between hosts ---------------------------------------------------------

# A counter that writes a file at run time (in its writable layer, not in the image nor the checkpoint).
MOVED_APP = 'echo {token} > /written-at-run-time.txt; ' + COUNTER


@pytest.fixture
def move_pair(fleet):
    """(name, token, create): create(host, start) makes the counter on a fleet host; removed on both hosts."""
    name = 'usecase-move-%s' % uuid.uuid4().hex[:6]
    token = 'token-%s' % uuid.uuid4().hex[:8]

    def create(host, start=True):
        client = fleet.clients[host]
        client.create_container('cryo-test/busybox:1', ['/bin/sh', '-c', MOVED_APP.format(token=token)], name=name,
                                stop_timeout=1)
        if start:
            client.start(name)

    yield name, token, create
    for host in ('fleet-1', 'fleet-2'):
        try:
            fleet.clients[host].remove_container(name, force=True)
        except Exception:  # pylint: disable=broad-except
            pass


def move(fleet, name, directory, variable='move_archive_dir'):
    return run_playbook(collection_playbook('move_container'), fleet.inventory, extra_vars={
        'move_container': name, 'move_from': 'fleet-1', 'move_to': 'fleet-2',
        # Every fleet host is this machine: one directory per host, as two real hosts would have.
        variable: directory + '/{{ inventory_hostname }}'})


def controller_copies():
    return set(glob.glob(os.path.join(tempfile.gettempdir(), 'cryo-move-*')))


def read_file(client, name, path):
    """A file of a container, through the Engine API."""
    chunks, _stat = client.get_archive(name, path)
    with tarfile.open(fileobj=io.BytesIO(b''.join(chunks))) as tar:
        return tar.extractfile(tar.getmembers()[0]).read().decode().strip()


def test_move_container_to_a_host_where_it_never_existed(fleet, move_pair):
    name, token, create = move_pair
    source, target = fleet.clients['fleet-1'], fleet.clients['fleet-2']
    create('fleet-1')
    wait_counter(source, name, 3)
    copies = controller_copies()
    with tempfile.TemporaryDirectory(prefix='cryo-usecase-move-') as directory:
        started = time.monotonic()
        proc = move(fleet, name, directory)
        wall = time.monotonic() - started
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]

        # The target carries on the source's sequence; the source stays stopped where it was.
        assert not state(source, name)['Running']
        frozen = counter_lines(source, name)
        assert frozen == list(range(len(frozen))), frozen
        assert wait_running(target, name)
        wait_counter(target, name, frozen[-1] + 3)
        moved = counter_lines(target, name)
        assert moved == list(range(frozen[-1] + 1, frozen[-1] + 1 + len(moved))), (frozen[-1], moved)
        # The file it wrote at run time came along (the archive's file changes).
        assert read_file(target, name, '/written-at-run-time.txt') == token
        assert 'cryo.docker.archive' in target.inspect_container(name)['Config']['Labels']
        assert 'It is your choice to remove the container there' in proc.stdout
        report = re.search(r'moved from fleet-1 to fleet-2 \(container %s, import\): archive ([^(]+) \(.*restored in '
                           r'([0-9.]+) s \((in place|through the engine)[^\n]*?\), verified \(memory-layout\)' % name,
                           proc.stdout)
        assert report, proc.stdout[-3000:]
        # The fleet's engines are Docker 20.10: the report says why the restore took the engine's path.
        assert report.group(3) == 'through the engine' and 'passes no runtime options' in proc.stdout

        # Nothing left behind: no checkpoint, no archive on either host, no copy on the controller.
        for host in ('fleet-1', 'fleet-2'):
            place = os.path.join(directory, host)
            assert os.listdir(place) == [], (host, os.listdir(place))
            assert os.stat(place).st_mode & 0o777 == 0o700
        assert checkpoints(source, name) == [] and checkpoints(target, name) == []
        assert not os.path.exists(checkpoint_path(target, name, 'move'))
        assert controller_copies() == copies
        print('move: archive %s, restore %s s, playbook %.1f s' % (report.group(1).strip(), report.group(2), wall))


def test_move_refuses_a_name_taken_on_the_target_and_freezes_nothing(fleet, move_pair):
    """A container made beforehand on the target (what the playbook once needed) is refused, naming what to do."""
    name, _token, create = move_pair
    source = fleet.clients['fleet-1']
    create('fleet-1')
    create('fleet-2', start=False)
    wait_counter(source, name, 2)
    with tempfile.TemporaryDirectory(prefix='cryo-usecase-move-') as directory:
        proc = move(fleet, name, directory)
        assert proc.returncode != 0
        assert 'Container %s already exists on fleet-2, and it was not made by an import' % name in proc.stdout, \
            proc.stdout[-3000:]
        assert 'choose another name with move_target_container. Nothing was frozen' in proc.stdout
        assert not os.path.exists(os.path.join(directory, 'fleet-1'))
    assert state(source, name)['Running']
    before = counter(source, name)
    wait_counter(source, name, before + 1)
    lines = counter_lines(source, name)
    assert lines == list(range(len(lines)))


def test_move_carries_on_after_an_interrupted_run(fleet, move_pair):
    """A run that died after the freeze left the source stopped with its checkpoint (taken into move_checkpoint_dir,
    the variable of the playbook before archives): running the playbook again moves that checkpoint."""
    name, token, create = move_pair
    source, target = fleet.clients['fleet-1'], fleet.clients['fleet-2']
    create('fleet-1')
    wait_counter(source, name, 2)
    with tempfile.TemporaryDirectory(prefix='cryo-usecase-move-') as directory:
        frozen = run_module('docker_checkpoint', {'container': name, 'checkpoint': 'move', 'docker_host':
                                                  fleet.docker_host('fleet-1'),
                                                  'checkpoint_dir': os.path.join(directory, 'fleet-1')})
        assert frozen.get('changed') and not frozen.get('failed'), frozen
        last = counter(source, name)
        proc = move(fleet, name, directory, variable='move_checkpoint_dir')
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
        wait_counter(target, name, last + 2)
        moved = counter_lines(target, name)
        assert moved[0] == last + 1, (last, moved)
        assert read_file(target, name, '/written-at-run-time.txt') == token
        assert os.listdir(os.path.join(directory, 'fleet-1')) == []
