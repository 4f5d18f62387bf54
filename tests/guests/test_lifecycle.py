"""The counter's lifecycle on a real Debian host: cgroup v2, systemd's cgroup driver, Docker's default seccomp
profile and AppArmor (docker-default), Debian's runc and CRIU.

docker_checkpoint and docker_restore run as Ansible tasks over SSH; the counter's log (`docker logs` in the
guest) tells whether it resumed (one unbroken run of numbers), was rewound (a second run starting just after
the checkpoint) or started afresh (a run from 0). Each test asserts one outcome.
"""

import pytest

from guests import GuestDocker
from helpers import COUNTER, counter_lines, ok, runs, wait_counter, wait_lines

# TCG runs the guest 30-40x slower than the host: a checkpoint takes ~8 s, a restore ~12 s.
WAIT = 90
STORE = '/var/tmp/cryo-guest-store'


def checkpoint(guest, name, cp='cp1', **options):
    return guest.run_module('docker_checkpoint', dict(container=name, checkpoint=cp, **options))


def restore(guest, name, cp='cp1', **options):
    return guest.run_module('docker_restore', dict(container=name, checkpoint=cp, **options))


def done(guest, result):
    """A module result that succeeded and changed something; CRIU's log and the engine's journal otherwise."""
    if result.get('failed') or not result.get('changed'):
        raise AssertionError('%s\n--- in the guest:\n%s' % (result.get('msg', result), guest.diagnose()))
    return ok(result)


def running(guest, name):
    return GuestDocker(guest).inspect_container(name)['State']['Running']


def frozen_counter(guest, name, cp='cp1', **options):
    """Checkpoint a counter that printed 3 or more; the numbers it printed by the end of the checkpoint (with
    leave_running it counts on while the module runs: the checkpoint holds one of the numbers printed during
    the call)."""
    engine = GuestDocker(guest)
    wait_counter(engine, name, 3, timeout=WAIT)
    done(guest, checkpoint(guest, name, cp, **options))
    return counter_lines(engine, name)


def test_checkpoint_then_restore_resumes_the_counter(ready, containers):
    name = containers.run(COUNTER)
    frozen = frozen_counter(ready, name)
    assert not running(ready, name)
    result = done(ready, restore(ready, name))
    assert result['verified'] is True, result
    lines = wait_lines(GuestDocker(ready), name, len(frozen) + 3, timeout=WAIT)
    assert len(runs(lines)) == 1 and lines[0] == 0, runs(lines)


def test_leave_running_keeps_the_counter_going(ready, containers):
    name = containers.run(COUNTER)
    frozen = frozen_counter(ready, name, leave_running=True)
    lines = wait_lines(GuestDocker(ready), name, len(frozen) + 3, timeout=WAIT)
    assert running(ready, name) and len(runs(lines)) == 1, runs(lines)


def test_rewind_goes_back_to_the_checkpoint(ready, containers):
    name = containers.run(COUNTER)
    engine = GuestDocker(ready)
    before = wait_counter(engine, name, 3, timeout=WAIT)
    after = frozen_counter(ready, name, leave_running=True)[-1]
    wait_counter(engine, name, after + 3, timeout=WAIT)
    done(ready, restore(ready, name, force=True))
    lines = counter_lines(engine, name)
    parts = runs(wait_lines(engine, name, len(lines) + 2, timeout=WAIT))
    # A second run that starts where the checkpoint was taken (during the call: after `before`, by `after`),
    # not at 0 and not where the counter was when it was rewound.
    assert len(parts) == 2 and before < parts[1][0] <= after + 1, (before, after, parts)


@pytest.fixture(scope='module')
def moved(ready):
    """A counter (A) checkpointed into a directory and restored into another container (B) made from the same
    image and command: (A, B, the numbers A printed). Both removed afterwards."""
    made = []
    try:
        source = 'cryo-move-a-%s' % ready.suite
        target = 'cryo-move-b-%s' % ready.suite
        ready.run('docker rm -f %s %s; rm -rf %s' % (source, target, STORE), check=False)
        made += [source, target]
        ready.run(['docker', 'run', '-d', '--name', source, 'cryo-test/busybox:1', '/bin/sh', '-c', COUNTER])
        frozen = frozen_counter(ready, source, checkpoint_dir=STORE)
        ready.run(['docker', 'create', '--name', target, 'cryo-test/busybox:1', '/bin/sh', '-c', COUNTER])
        result = restore(ready, target, checkpoint_dir=STORE)
        yield source, target, frozen, result
    finally:
        ready.run('docker rm -f %s; rm -rf %s' % (' '.join(made), STORE), check=False)


def test_restore_into_another_container(ready, moved):
    _source, target, frozen, result = moved
    done(ready, result)
    lines = wait_lines(GuestDocker(ready), target, 3, timeout=WAIT)
    assert lines[0] == frozen[-1] + 1 and len(runs(lines)) == 1, (frozen[-3:], runs(lines))


def test_second_checkpoint_of_a_container_restored_into_another(ready, moved):
    """criu#2453: on cgroup v2 with the systemd driver a container restored from another container's checkpoint
    landed in the other's scope and could not be checkpointed again; docker_restore now stages the copy with B's
    cgroups. Here B, restored from A's, is in its own scope, checkpointed and restored again."""
    _source, target, _frozen, result = moved
    done(ready, result)
    pid = GuestDocker(ready).inspect_container(target)['State']['Pid']
    cgroup = ready.run('cat /proc/%d/cgroup' % pid, timeout=60).stdout
    target_id = GuestDocker(ready).inspect_container(target)['Id']
    assert target_id in cgroup, (target_id, cgroup)
    frozen = frozen_counter(ready, target, cp='cp2')
    done(ready, restore(ready, target, cp='cp2'))
    lines = wait_lines(GuestDocker(ready), target, len(frozen) + 3, timeout=WAIT)
    assert len(runs(lines)) == 1, runs(lines)
