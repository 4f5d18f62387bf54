"""The image-path restore, for real: containerd's runc shim restores a container in place from its checkpoint
(CriuImagePath) on Docker 26.1 and 28.5, and Docker 20.10 falls back to the engine's restore and says why.

One engine of each of those kinds (fleet.Fleet with kinds), started side by side once for this file. On 28.5, which
cannot restore a container with a network namespace of its own (moby/moby#50750), the containers run on the host
network. Each test proves what happened to the process through the counter it prints (helpers.runs: a run of
consecutive numbers is one process; a new run that starts where a checkpoint was taken is a restore of it, one that
starts at the counter's base is a fresh start):

- an archive written on 20.10 imported on 26.1/28.5 (a move) and a clone of it on the same engine: each restored
  through the image path, verified, counting on from the checkpoint; the container then starts afresh like any
  other (its runtime disarmed) and the engine checkpoints it again;
- two imports at once of two different containers: each resumes its own counter;
- a warm container: every start (a docker start, a restart-policy restart after its process died, the engine's
  own start after an engine restart) begins at its golden checkpoint; the golden checkpoint rolled forward; its
  removal refused; turned cold, it starts afresh;
- on 20.10 the same import and restore take the engine's path and say why; a warm import is refused before
  anything is created.
"""

import concurrent.futures
import json
import os
import time
import uuid

import docker
import pytest

from helpers import IMAGE, FleetBed, call_module, counter_lines, remove_containers, runs, state, wait_counter

KINDS = ['20.10', '26.1', '28.5']
FAST = ['26.1', '28.5']
# A counter that starts at its base: a fresh start is told from a restore by its first number.
COUNTER_FROM = 'i={base}; while true; do echo $i; i=$(expr $i + 1); sleep 0.2; done'


@pytest.fixture(scope='module')
def engines():
    yield from FleetBed.running('the image-path engines', prefix=os.environ.get('CRYO_IP_PREFIX', 'cryo-ip'),
                                kinds=KINDS)


class Bed:
    """One engine as a test uses it; containers made on it are removed afterwards."""

    def __init__(self, engines, kind):
        self.kind = kind
        self.engine = engines.engine(kind)
        self.client = engines.clients[kind]
        self.docker_host = self.engine.docker_host
        self.made = []

    def module(self, name, **args):
        return call_module(name, dict(args, docker_host=self.docker_host))

    def ok(self, name, **args):
        result = self.module(name, **args)
        assert not result.get('failed'), result.get('msg', result)
        return result

    def counter(self, base, restart_policy=None):
        name = 'ip-%s-%s' % (self.kind.replace('.', ''), uuid.uuid4().hex[:6])
        self.client.create_container(IMAGE, ['/bin/sh', '-c', COUNTER_FROM.format(base=base)], name=name,
                                     stop_timeout=1, host_config=self.client.create_host_config(
                                         network_mode='host', restart_policy=restart_policy))
        self.made.append(name)
        self.client.start(name)
        wait_counter(self.client, name, base + 5)
        return name

    def export(self, name, path, checkpoint='cp1'):
        return self.ok('docker_checkpoint_export', container=name, checkpoint=checkpoint, path=path,
                       leave_running=True)

    def import_(self, path, name, **args):
        self.made.append(name)
        return self.ok('docker_checkpoint_import', path=path, container=name, allow=['host_namespaces'], **args)

    def runtime(self, name):
        return self.client.inspect_container(name)['HostConfig'].get('Runtime')

    def defined(self, runtime):
        with open(self.engine.config_file) as handle:
            return (json.load(handle).get('runtimes') or {}).get(runtime)

    def restart_container(self, name):
        self.client.stop(name, timeout=1)
        self.client.start(name)
        wait_counter(self.client, name, 0)

    def remove(self):
        remove_containers(self.client, self.made)


@pytest.fixture(params=KINDS)
def bed(engines, request):
    one = Bed(engines, request.param)
    yield one
    one.remove()


@pytest.fixture
def source(engines):
    """The 20.10 engine, where the archives come from."""
    one = Bed(engines, '20.10')
    yield one
    one.remove()


def last_run(client, name, timeout=20, length=3):
    """The counter's last run of consecutive numbers, once it holds `length` numbers."""
    deadline = time.monotonic() + timeout
    while True:
        found = runs(counter_lines(client, name))
        if found and len(found[-1]) >= length:
            return found[-1]
        if time.monotonic() > deadline:
            raise AssertionError('%s: no run of %d numbers of its counter (%s)' % (name, length, found[-3:]))
        time.sleep(0.2)


def test_an_import_and_a_clone_restore_in_place_and_start_afresh_afterwards(engines, source, bed, archives):
    """Imported from a 20.10 archive (a move) and cloned on the same engine: restored through the image path on 26.1
    and 28.5, through the engine's on 20.10, which says why; verified, counting on from the checkpoint. Afterwards the
    container is an ordinary one: a stop and start begins afresh, and the engine checkpoints it again."""
    name = source.counter(base=1000)
    path = os.path.join(archives, name + '.tar')
    source.export(name, path)
    moved = bed.import_(path, name + '-moved')
    clone = bed.import_(path, name + '-clone')
    for result in (moved, clone):
        assert result['restored'] and result['verified'], result
        if bed.kind in FAST:
            assert result['method'] == 'image_path', result
            assert result['container']['runtime'].startswith('cryo-restore-'), result['container']
            assert 'method_reason' not in result
        else:
            assert result['method'] == 'engine', result
            assert 'passes no runtime options' in result['method_reason'], result
            assert result['container']['runtime'] in (None, 'runc'), result['container']
    source_lines = counter_lines(source.client, name)
    for imported in (moved, clone):
        container = imported['container']['name']
        run = last_run(bed.client, container)
        # It prints the number that followed the last one the source printed before the checkpoint.
        assert run[0] > 1000 and run[0] - 1 in source_lines, (run, source_lines[-5:])
    if bed.kind not in FAST:
        return
    # Disarmed: the runtime is dockerd's stock runc under another name, and the container starts afresh.
    runtime = bed.runtime(moved['container']['name'])
    assert bed.defined(runtime) == {'path': 'runc'}, bed.defined(runtime)
    bed.restart_container(moved['container']['name'])
    assert last_run(bed.client, moved['container']['name'])[0] == 1000, 'a cold start begins at the base'
    # The engine owns it: its own checkpoint and restore work, and so does the runtime path's.
    for method in ('engine', 'runtime'):
        cp = 'again-' + method
        taken = bed.ok('docker_checkpoint', container=moved['container']['name'], checkpoint=cp, method=method)
        assert taken['method'] == method, taken
        restored = bed.ok('docker_restore', container=moved['container']['name'], checkpoint=cp)
        assert restored['verified'] and restored['method'] == 'image_path', restored
        # Resumed: the counter is still the one unbroken run it began at the cold start.
        printed = len(counter_lines(bed.client, moved['container']['name']))
        wait_counter(bed.client, moved['container']['name'], 1000 + printed + 2)
        assert last_run(bed.client, moved['container']['name'])[0] == 1000


@pytest.mark.parametrize('kind', FAST)
def test_two_imports_at_once_each_resume_their_own_checkpoint(engines, source, kind, archives):
    """Two archives of two counters (bases 2000 and 7000) imported at the same time: each container resumes its own
    counter through its own runtime."""
    bed = Bed(engines, kind)
    try:
        names = [source.counter(base=base) for base in (2000, 7000)]
        paths = []
        for name in names:
            paths.append(os.path.join(archives, name + '.tar'))
            source.export(name, paths[-1])
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda item: bed.import_(item[0], item[1] + '-at-once'), zip(paths, names)))
        runtimes = set()
        for base, result in zip((2000, 7000), results):
            assert result['method'] == 'image_path' and result['verified'], result
            run = last_run(bed.client, result['container']['name'])
            assert base < run[0] < base + 500, (base, run)
            runtimes.add(result['container']['runtime'])
        assert len(runtimes) == 2, runtimes
    finally:
        bed.remove()


def wait_new_run(client, name, runs_before, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = runs(counter_lines(client, name))
        if len(found) > runs_before and len(found[-1]) >= 3:
            return found[-1]
        time.sleep(0.2)
    raise AssertionError('%s: no new run of its counter (%s)' % (name, runs(counter_lines(client, name))[-3:]))


@pytest.mark.timeout(300)
@pytest.mark.parametrize('kind', FAST)
def test_a_warm_container_starts_from_its_golden_checkpoint_every_time(engines, source, kind, archives):
    """A warm import: every start - docker start, a restart-policy restart after its process was killed, the
    engine's start after an engine restart - begins at the golden checkpoint; rolled forward, it begins at the new
    one; the golden checkpoint cannot be removed; turned cold, it starts afresh."""
    bed = Bed(engines, kind)
    try:
        name = source.counter(base=3000, restart_policy={'Name': 'always'})
        path = os.path.join(archives, name + '.tar')
        source.export(name, path, checkpoint='golden')
        warm = bed.import_(path, name + '-warm', warm=True)['container']['name']
        first = last_run(bed.client, warm)
        assert 3000 < first[0] < 3500, first
        golden_start = first[0]
        assert bed.client.inspect_container(warm)['HostConfig']['RestartPolicy']['Name'] == 'always'

        seen = len(runs(counter_lines(bed.client, warm)))
        bed.client.stop(warm, timeout=1)
        bed.client.start(warm)
        run = wait_new_run(bed.client, warm, seen)
        assert run[0] == golden_start, ('docker start', run, golden_start)

        seen = len(runs(counter_lines(bed.client, warm)))
        os.kill(state(bed.client, warm)['Pid'], 9)  # its process dies; the restart policy starts it again
        run = wait_new_run(bed.client, warm, seen)
        assert run[0] == golden_start, ('restart policy', run, golden_start)

        seen = len(runs(counter_lines(bed.client, warm)))
        bed.engine.restart()
        client = bed.client = docker.APIClient(base_url=bed.docker_host, version='auto')
        run = wait_new_run(client, warm, seen, timeout=60)
        assert run[0] == golden_start, ('engine restart', run, golden_start)

        refused = bed.module('docker_checkpoint', container=warm, checkpoint='golden', state='absent')
        assert refused.get('failed') and 'golden checkpoint of warm container' in refused['msg'], refused

        wait_counter(client, warm, golden_start + 10)
        bed.ok('docker_checkpoint', container=warm, checkpoint='golden-2', leave_running=True)
        rolled = bed.ok('docker_warm', container=warm, checkpoint='golden-2')
        assert rolled['changed'] and rolled['previous_checkpoint'] == 'golden' and rolled['checkpoint'] == 'golden-2'
        assert not bed.ok('docker_warm', container=warm, checkpoint='golden-2')['changed']
        seen = len(runs(counter_lines(client, warm)))
        client.stop(warm, timeout=1)
        client.start(warm)
        run = wait_new_run(client, warm, seen)
        assert golden_start + 10 <= run[0] < golden_start + 200, ('rolled forward', run, golden_start)

        cold = bed.ok('docker_warm', container=warm, state='cold')
        assert cold['changed'] and not cold['warm']
        seen = len(runs(counter_lines(client, warm)))
        client.stop(warm, timeout=1)
        client.start(warm)
        run = wait_new_run(client, warm, seen)
        assert run[0] == 3000, ('cold', run)
    finally:
        bed.remove()


def test_on_docker_20_10_a_warm_import_is_refused_and_nothing_created(engines, source, archives):
    """Docker 20.10 passes no runtime options to containerd: warm: true is refused before anything is created."""
    name = source.counter(base=4000)
    path = os.path.join(archives, name + '.tar')
    source.export(name, path)
    result = source.module('docker_checkpoint_import', path=path, container=name + '-warm', warm=True,
                           allow=['host_namespaces'])
    assert result.get('failed') and 'passes no runtime options' in result['msg'], result
    with pytest.raises(docker.errors.NotFound):
        source.client.inspect_container(name + '-warm')
    forced = source.module('docker_checkpoint_import', path=path, container=name + '-fast',
                           restore_method='image_path', allow=['host_namespaces'])
    assert forced.get('failed') and 'Nothing was created' in forced['msg'], forced


def test_preflight_says_where_the_image_path_can_be_taken(bed):
    """checkpoint_preflight's facts.image_path: available on 26.1 and 28.5, and on 20.10 not, with the reason."""
    facts = bed.ok('checkpoint_preflight')['facts']
    if bed.kind in FAST:
        assert facts['image_path'] == dict(available=True, reason=None), facts['image_path']
    else:
        assert not facts['image_path']['available'] and 'passes no runtime options' in facts['image_path']['reason']
