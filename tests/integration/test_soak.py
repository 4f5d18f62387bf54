"""The soak, short: the checkpoint/restore cycles of `make soak` (tests/testbed/soak.py), a few of them, on
the main engine.

CYCLES cycles of the busybox counter and of redis-server side by side, every combination of docker_checkpoint's
method (runtime, engine) and stop / rewind twice: every call succeeds, every cycle resumes (the counter goes on
from its checkpoint, redis keeps its key, its run_id and its uptime), and between cycle BASELINE and the last the
engine's data root, /tmp and containerd's content store do not grow by a checkpoint (a checkpoint or a copy of one
left behind by each cycle grows them by CYCLES - BASELINE of them). The memory of dockerd and containerd is
reported, not asserted: a few cycles are too few to tell a leak from a garbage collector.

The judges the soak uses are tested first on recorded logs and figures, so that a restart, a rewind to the wrong
place or a leftover copy is shown to fail them.
"""

import os
import subprocess

import pytest

import build_apps
import soak
from helpers import DOCKER_HOST

CYCLES = 8
BASELINE = 2


# -- the judges --------------------------------------------------------------------------------------

def test_jumps():
    assert soak.jumps([0, 1, 2, 3], 0) == []
    assert soak.jumps([0, 1, 2, 0, 1, 7], 0) == [3, 5]
    assert soak.jumps([0, 1, 2, 0, 1, 7], 4) == [5]


def test_stop_continuity():
    frozen = list(range(40))
    assert soak.stop_continuity(frozen, frozen + [40, 41]) == (True, None)
    assert soak.stop_continuity(frozen, frozen + [0, 1]) == (False, 'stopped at 39, went on at 0')
    assert soak.stop_continuity(frozen, frozen + [38, 39])[0] is False
    assert soak.stop_continuity(frozen, frozen)[0] is False


def test_rewind_continuity():
    taken = list(range(40))  # the checkpoint call started after 35 and returned after 39
    assert soak.rewind_continuity(35, taken, taken + [40, 41, 42, 37, 38]) == (True, None)
    assert soak.rewind_continuity(35, taken, taken + [40, 41, 40, 41]) == (True, None)
    assert soak.rewind_continuity(35, taken, taken + [40, 0, 1])[1] == (
        'went back to 0, the checkpoint was taken between 35 and 39')
    assert soak.rewind_continuity(35, taken, taken + [40, 41, 36])[0] is True
    assert soak.rewind_continuity(35, taken, taken + [40, 41, 35])[0] is False
    assert 'not rewound' in soak.rewind_continuity(35, taken, taken + [40, 41, 42])[1]
    assert 'jumped 2 times' in soak.rewind_continuity(35, taken, taken + [40, 37, 0])[1]


def test_growth_verdicts():
    checkpoint = 150 << 10
    first = dict(data_root=500 << 20, tmp=0, content_store=4096, dockerd_rss=60 << 20, containerd_rss=None)
    noise = dict(data_root=(500 << 20) + 64 * 1024, tmp=0, content_store=4096, dockerd_rss=75 << 20,
                 containerd_rss=30 << 20)
    verdicts = soak.growth_verdicts(first, noise, checkpoint)
    assert {metric: v['ok'] for metric, v in verdicts.items()} == dict(
        data_root=True, tmp=True, content_store=True, dockerd_rss=True, containerd_rss=None)
    # A copy of the checkpoint left in /tmp by each of 6 cycles, memory that grew by a third.
    leaking = dict(noise, tmp=6 * checkpoint, dockerd_rss=100 << 20)
    verdicts = soak.growth_verdicts(first, leaking, checkpoint)
    assert verdicts['tmp'] == dict(first=0, last=6 * checkpoint, growth=6 * checkpoint, tolerance=checkpoint, ok=False)
    assert verdicts['dockerd_rss']['ok'] is False and verdicts['data_root']['ok'] is True


def test_disk_usage(tmp_path):
    (tmp_path / 'a').write_bytes(b'x' * 10000)
    os.link(str(tmp_path / 'a'), str(tmp_path / 'hard'))
    os.symlink('/usr', str(tmp_path / 'link'))
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'sub' / 'log').write_bytes(b'y' * 50000)
    everything = soak.disk_usage(str(tmp_path))
    without_log = soak.disk_usage(str(tmp_path), leave_out={str(tmp_path / 'sub' / 'log')})
    assert everything - without_log == os.lstat(str(tmp_path / 'sub' / 'log')).st_blocks * 512
    assert without_log < 100000, 'a hard link counted twice or a symlink followed: %d' % without_log
    assert soak.disk_usage(str(tmp_path / 'gone')) == 0


def test_in_use(tmp_path):
    used, idle = tmp_path / 'used', tmp_path / 'idle'
    used.mkdir()
    idle.mkdir()
    with subprocess.Popen(['sleep', '60'], cwd=str(used)) as proc:
        try:
            assert soak.in_use([str(used), str(idle)]) == {str(used)}
        finally:
            proc.kill()


def test_schedule():
    assert [soak.schedule(cycle) for cycle in range(1, 9)] == [
        ('runtime', 'stop'), ('engine', 'stop'), ('runtime', 'rewind'), ('engine', 'rewind')] * 2


# -- the soak ------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def soaked(engine):
    """The short soak on the main engine; its summary."""
    print(build_apps.build(engine, 'redis'))
    result = soak.Soak(DOCKER_HOST, cycles=CYCLES, baseline=BASELINE, log=print).run()
    for workload in result['workloads']:
        print('%s: %s' % (workload['workload'], workload))
    print('engine calls made again (retries): %d %s' % (result['retried'], result['retries']))
    for metric, verdict in result['growth'].items():
        print('growth of %s: %s' % (metric, verdict))
    return result


@pytest.mark.timeout(300)  # the first one runs the soak (its fixture): ~25 s here
@pytest.mark.parametrize('workload', list(soak.WORKLOADS))
def test_every_cycle_resumes(soaked, workload):
    found = [w for w in soaked['workloads'] if w['workload'] == workload][0]
    assert found['aborted'] is None, found['aborted']
    assert found['cycles'] == CYCLES, found
    assert found['failures'] == 0, found['failed']
    assert found['continuity']['continuous'] == found['continuity']['checked'] == CYCLES, found['broken']
    assert found['unverified'] == 0, found
    assert found['methods'] == ['engine', 'runtime'], found['methods']
    # Every call's retries are counted (reported, not judged: a retried call that succeeded is no failure).
    assert found['retried'] == sum(found['retries'].values()), found


def test_nothing_piles_up(soaked):
    last = soaked['measurements']['cycle %d' % CYCLES]
    assert last['containerd_copies'] == 0, 'containerd left copies of checkpoints in /tmp: %s' % last['tmp_new']
    for metric in soak.DISK_METRICS:
        verdict = soaked['growth'][metric]
        assert verdict['ok'] is True, '%s grew by %s bytes between cycle %d and %d (tolerance %s): %s' % (
            metric, verdict['growth'], BASELINE, CYCLES, verdict['tolerance'], soaked['measurements'])
