"""Retention on the real engine and CRIU: docker_checkpoint's keep_last leaves exactly the newest checkpoints, the host
cap never removes the checkpoint a stopped container resumes from (and the container resumes from it, its counter
going on), docker_checkpoint_info's sizes are what du reads on disk, and the rewind playbook's rewind_ago goes back to
the checkpoint N ago (the counter's value says which).

The counter container prints 0, 1, 2, ... once a second: the value a checkpoint holds lies between the last number
printed before it was taken and the first printed after.
"""

import os
import subprocess
import uuid

import pytest

from helpers import (COUNTER, DOCKER_HOST, IMAGE, INVENTORY, FleetBed, call_module, checkpoint_path, checkpoints,
                     collection_playbook, counter, counter_lines, ok, remove_containers, run_playbook, runs, wait_counter,
                     wait_lines, wait_running)


def take(engine, name, cp, **kwargs):
    """A checkpoint of the counter; (its result, the counter's value just before, just after)."""
    low = counter(engine, name)
    result = ok(call_module('docker_checkpoint', dict(container=name, checkpoint=cp, **kwargs)))
    high = counter(engine, name)
    assert result['changed'] is True, result
    return result, low, high


def du_bytes(directory):
    """The apparent size of the files of a checkpoint, as du reads it (du -cb FILE...: the total line)."""
    files = [os.path.join(directory, name) for name in sorted(os.listdir(directory))]
    out = subprocess.run(['du', '-cb'] + files, check=True, capture_output=True, text=True).stdout
    return int(out.splitlines()[-1].split()[0])


def test_keep_last_leaves_the_newest_and_rewind_ago_goes_back_to_the_one_asked(engine, make_container):
    name = make_container(name='retention-keep-%s' % uuid.uuid4().hex[:6])
    taken = {}
    for index in range(1, 6):
        wait_counter(engine, name, (counter(engine, name) or 0) + 3)
        args = dict(keep_last=2) if index == 5 else {}
        result, low, high = take(engine, name, 'cp%d' % index, leave_running=True, **args)
        taken['cp%d' % index] = (low, high)
    assert checkpoints(engine, name) == ['cp4', 'cp5']
    assert [(entry['name'], entry['rule']) for entry in result['removed']] == [
        ('cp1', 'keep_last'), ('cp2', 'keep_last'), ('cp3', 'keep_last')]
    assert all(entry['size'] > 0 for entry in result['removed'])
    for gone in ('cp1', 'cp2', 'cp3'):
        assert not os.path.exists(checkpoint_path(engine, name, gone))

    # docker_checkpoint_info: each size is what du reads, the container's total their sum, cp5 the newest.
    info = ok(call_module('docker_checkpoint_info', dict(container=name)))
    sizes = {}
    for entry in info['checkpoints']:
        assert entry['size'] == du_bytes(entry['directory']), entry
        sizes[entry['name']] = entry['size']
    assert {entry['name']: entry['ago'] for entry in info['checkpoints']} == {'cp5': 1, 'cp4': 2}
    [usage] = info['containers']
    assert usage['checkpoints'] == 2 and usage['size'] == sizes['cp4'] + sizes['cp5']
    assert usage['newest'] == 'cp5' and usage['oldest'] == 'cp4'

    # Rewind two checkpoints ago: cp4, whose value lies before cp5's.
    wait_counter(engine, name, counter(engine, name) + 3)
    proc = run_playbook(collection_playbook('rewind'), INVENTORY,
                        extra_vars=dict(rewind_container=name, rewind_ago=2, cryo_docker_host=DOCKER_HOST))
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert '%s rewound to checkpoint cp4' % name in proc.stdout
    assert wait_running(engine, name)
    lines = wait_lines(engine, name, len(counter_lines(engine, name)) + 3)
    parts = runs(lines)
    assert len(parts) == 2 and parts[0][0] == 0, parts
    low, high = taken['cp4']
    assert low + 1 <= parts[1][0] <= high + 1, (taken, parts)
    assert parts[1][0] <= taken['cp5'][0], 'rewound to cp5, not cp4: %s %s' % (taken, parts)

    # More checkpoints ago than there are: refused, nothing changed.
    proc = run_playbook(collection_playbook('rewind'), INVENTORY,
                        extra_vars=dict(rewind_container=name, rewind_ago=3, cryo_docker_host=DOCKER_HOST))
    assert proc.returncode != 0 and 'so none was taken 3 checkpoints ago; nothing was changed' in proc.stdout
    assert checkpoints(engine, name) == ['cp4', 'cp5']


def test_keep_last_in_a_checkpoint_dir_counts_the_container_s_own(engine, make_container, tmp_path):
    directory = str(tmp_path / 'kept')
    name = make_container(name='retention-dir-%s' % uuid.uuid4().hex[:6])
    other = make_container(name='retention-other-%s' % uuid.uuid4().hex[:6])
    wait_counter(engine, other, 1)
    take(engine, other, 'other-1', leave_running=True, checkpoint_dir=directory)
    wait_counter(engine, name, 1)
    for index in range(1, 4):
        result, _low, _high = take(engine, name, 'cp%d' % index, leave_running=True, checkpoint_dir=directory,
                                   keep_last=1)
    assert [(entry['name'], entry['rule']) for entry in result['removed']] == [('cp2', 'keep_last')]
    assert sorted(os.listdir(directory)) == ['cp3', 'other-1']
    assert checkpoints(engine, name, directory) == ['cp3', 'other-1']


@pytest.fixture(scope='module')
def own_engine():
    """An engine of its own (fleet.Fleet, one engine): a host cap removes any container's checkpoints, so it is tried
    where the test's containers are the only ones."""
    yield from FleetBed.running('the retention engine', count=1, prefix=os.environ.get('CRYO_RT_PREFIX', 'cryo-rt'))


def test_the_host_cap_keeps_what_a_stopped_container_resumes_from(own_engine):
    client = own_engine.clients['fleet-1']
    docker_host = own_engine.docker_host('fleet-1')
    names = []
    for role in ('stopped', 'busy'):
        name = 'retention-%s-%s' % (role, uuid.uuid4().hex[:6])
        client.create_container(IMAGE, ['/bin/sh', '-c', COUNTER], name=name)
        client.start(name)
        names.append(name)
    stopped, busy = names
    try:
        wait_counter(client, stopped, 2)
        take(client, stopped, 'old', leave_running=True, docker_host=docker_host)
        wait_counter(client, stopped, counter(client, stopped) + 2)
        # it exits at this checkpoint, and resumes from it
        _result, low, high = take(client, stopped, 'stop', docker_host=docker_host)
        assert not client.inspect_container(stopped)['State']['Running']
        printed = counter_lines(client, stopped)

        # Another container checkpointed three times, under keep_last 1 and a host cap of one byte: every checkpoint
        # that may go goes.
        wait_counter(client, busy, 2)
        take(client, busy, 'b1', leave_running=True, docker_host=docker_host)
        take(client, busy, 'b2', leave_running=True, docker_host=docker_host)
        result, _low, _high = take(client, busy, 'b3', leave_running=True, keep_last=1, host_max_size=1,
                                   docker_host=docker_host)
        removed = [(entry['container'], entry['name'], entry['rule']) for entry in result['removed']]
        assert removed == [(busy, 'b1', 'keep_last'), (busy, 'b2', 'keep_last'), (stopped, 'old', 'host_max_size')]
        assert checkpoints(client, stopped) == ['stop'] and checkpoints(client, busy) == ['b3']
        warnings = ' '.join(result.get('warnings', []))
        assert 'host_max_size 1.00 Bytes of the host is not met' in warnings, warnings
        assert '%s/stop: container %s is exited and resumes from it' % (stopped, stopped) in warnings
        assert '%s/b3: just taken' % busy in warnings

        # And it does: the counter goes on from the checkpoint, one unbroken run.
        restored = ok(call_module('docker_restore', dict(container=stopped, checkpoint='stop', docker_host=docker_host)))
        assert restored['changed'] is True and restored['verified'] is True, restored
        lines = wait_lines(client, stopped, len(printed) + 3)
        assert len(runs(lines)) == 1, runs(lines)
        assert low <= printed[-1] <= high + 1
    finally:
        remove_containers(client, names)
