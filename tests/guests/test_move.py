"""cryo.docker.move_container from a real Debian 12 host to a real Debian 13 host, over SSH.

A counter that wrote a file at run time runs on the Debian 12 guest (Docker 20.10, Debian's CRIU 3.17.1, kernel
6.1) and is moved, as an operator runs the playbook with an inventory of both hosts, to the Debian 13 guest
(Docker 26.1, CRIU 4.1.1, kernel 6.12), where it never existed: the archive goes from one host's disk to the
controller's disk to the other's (fetch and copy, never the controller's memory). Both guests are up for this
file only (tests/guests/conftest.py keeps the source up while the target's tests run). The move runs once
(`moved`); each test judges one outcome.
"""

import glob
import json
import os
import tempfile
import time
import uuid

import pytest

from guests import MOVE, GuestDocker, PlaybookRun, write_inventory
from helpers import COUNTER, collection_playbook, counter_lines, runs, wait_counter, wait_lines

MOVE_CONTAINER = collection_playbook('move_container')
# The checks on both hosts, the checkpoint, the export, fetch and copy, the import and its restore under TCG.
MOVE_TIMEOUT = 1800
NAME = 'cryo-moved'
WRITTEN = '/written-at-run-time.txt'


def controller_copies():
    return set(glob.glob(os.path.join(tempfile.gettempdir(), 'cryo-move-*')))


@pytest.fixture(scope='module')
def moved(booted, say):
    missing = [suite for suite in MOVE if suite not in booted['ready']]
    if missing:
        pytest.fail('the move needs both guests set up, and %s is not (see its test_setup.py results)'
                    % ', '.join(missing))
    source, target = (booted['up'][suite] for suite in MOVE)
    token = uuid.uuid4().hex
    for guest in (source, target):
        guest.run('docker rm -f %s' % NAME, check=False)
    try:
        source.run(['docker', 'run', '-d', '--name', NAME, 'cryo-test/busybox:1', '/bin/sh', '-c',
                    'echo %s > %s; %s' % (token, WRITTEN, COUNTER)], timeout=180)
        wait_counter(GuestDocker(source), NAME, 3, timeout=90)
        copies = controller_copies()
        with tempfile.TemporaryDirectory(prefix='cryo-guest-move-') as tmp:
            inventory = write_inventory(os.path.join(tmp, 'inventory.yml'), [source, target])
            started = time.monotonic()
            proc = source.playbook(MOVE_CONTAINER, timeout=MOVE_TIMEOUT, inventory=inventory, extra_vars={
                'move_container': NAME, 'move_from': source.host, 'move_to': target.host})
            seconds = time.monotonic() - started
        say('move_container %s -> %s in %.0f s (rc %s)' % (source.host, target.host, seconds, proc.returncode))
        yield PlaybookRun(proc=proc, seconds=seconds, source=source, target=target, token=token,
                          copies_before=copies, copies_after=controller_copies())
    finally:
        for guest in (source, target):
            guest.run('docker rm -f %s' % NAME, check=False)


def test_move_container_passes(moved):
    assert moved.proc.returncode == 0, moved.output


def test_the_counter_carries_on_on_debian_13(moved):
    frozen = counter_lines(GuestDocker(moved.source), NAME)
    assert frozen == list(range(len(frozen))), runs(frozen)
    lines = wait_lines(GuestDocker(moved.target), NAME, 3, timeout=90)
    assert lines[0] == frozen[-1] + 1 and len(runs(lines)) == 1, (frozen[-3:], runs(lines))


def test_the_file_it_wrote_at_run_time_came_along(moved):
    assert moved.target.run(['docker', 'exec', NAME, 'cat', WRITTEN], timeout=60).stdout.strip() == moved.token


def test_the_source_is_stopped_and_its_checkpoint_removed(moved):
    state = GuestDocker(moved.source).inspect_container(NAME)['State']
    listed = moved.source.run('ls /var/lib/docker/containers/$(docker inspect -f {{.Id}} %s)/checkpoints' % NAME,
                              timeout=60, check=False).stdout.split()
    assert (state['Running'], listed) == (False, []), (state, listed)


def test_no_archive_is_left_anywhere(moved):
    left = {guest.host: guest.run('ls -A /var/lib/cryo/moves 2>/dev/null', timeout=60, check=False).stdout.split()
            for guest in (moved.source, moved.target)}
    assert left == {moved.source.host: [], moved.target.host: []} and moved.copies_after == moved.copies_before, (
        left, moved.copies_after - moved.copies_before)


def test_the_moved_container_is_in_its_own_cgroup_and_checkpoints_again(moved):
    """criu#2453 through the import: the restored processes are in the new container's scope on Debian 13, so it
    can be checkpointed again there."""
    info = GuestDocker(moved.target).inspect_container(NAME)
    cgroup = moved.target.run('cat /proc/%d/cgroup' % info['State']['Pid'], timeout=60).stdout
    again = moved.target.run_module('docker_checkpoint', dict(container=NAME, checkpoint='again', leave_running=True))
    assert info['Id'] in cgroup and not again.get('failed'), (cgroup, again.get('msg'))


def test_debian_13_restored_it_in_place_and_it_is_an_ordinary_container_after(moved):
    """Docker 26.1 passes runtime options to containerd: the import restored the container in place through a
    runtime of its own (the image path), then disarmed it: in the guest's daemon.json it is dockerd's own runc under
    another name, and the container starts afresh like any other."""
    assert 'in place, through its image path' in moved.output, moved.output[-3000:]
    runtime = GuestDocker(moved.target).inspect_container(NAME)['HostConfig']['Runtime']
    config = json.loads(moved.target.run('cat /etc/docker/daemon.json', timeout=60).stdout)
    assert runtime.startswith('cryo-restore-') and config['runtimes'][runtime] == {'path': 'runc'}, (runtime, config)
