"""The runtime checkpoint path (runc, with the engine left the owner) and many containers in one call."""

import json
import os
import shutil

import pytest

from ansible.module_utils import basic

from ansible_collections.cryo.docker.plugins.module_utils import _runtime, _take
from ansible_collections.cryo.docker.plugins.module_utils._host import Host
from ansible_collections.cryo.docker.plugins.modules import docker_checkpoint, docker_restore

from fake_engine import DOCKER_HOST, DUMP_LOG_ERRORS, LOG_NOISE, failed_clearly, mm_image, run_module, warnings_of

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures')
with open(os.path.join(FIXTURES, 'counter-stats-dump.img'), 'rb') as _handle:
    STATS_DUMP = _handle.read()


def _run(capsys, module, args):
    """The module on container cr (unless containers is given), checkpoint cp1."""
    args.setdefault('docker_host', DOCKER_HOST)
    args.setdefault('checkpoint', 'cp1')
    if 'containers' not in args:
        args.setdefault('container', 'cr')
    return run_module(capsys, module, args)


def checkpoint(capsys, **args):
    return _run(capsys, docker_checkpoint, args)


def restore(capsys, **args):
    return _run(capsys, docker_restore, args)


class Runc:
    """runc seen through module.run_command: `checkpoint` writes images into --image-path (and stats-dump
    beside them), the container exits unless --leave-running; or it fails as CRIU does, or as a CRIU that was
    killed does (killed_for: the container's cgroup left frozen, `state` says paused until `resume`)."""

    def __init__(self, engine, tmp_path):
        self.engine = engine
        self.calls = []
        self.fail_for = set()
        self.killed_for = set()
        self.full_for = set()
        self.frozen = set()
        self.resume_fails = False
        self.runtime = dict(name='runc', binary='/usr/sbin/runc', root=str(tmp_path / 'run' / 'runtime-runc' / 'moby'),
                            search_path='/usr/local/sbin:/usr/sbin', dockerd_pid=4321, exec_root=str(tmp_path / 'run'))

    def run_command(self, argv, **kwargs):
        self.calls.append((list(argv), kwargs.get('environ_update')))
        assert argv[:3] == [self.runtime['binary'], '--root', self.runtime['root']], argv
        if argv[3] in ('state', 'resume'):
            return self.state_or_resume(argv[3], argv[-1])
        assert argv[3] == 'checkpoint', argv
        path, container_id = argv[argv.index('--image-path') + 1], argv[-1]
        assert argv[argv.index('--work-path') + 1] == path
        found = self.engine.store[container_id]
        if found.name in self.full_for:
            with open(os.path.join(path, 'dump.log'), 'w') as handle:
                handle.write('%s\n(00.301000) Error (criu/page-xfer.c:1023): page-xfer: Can\'t write the pages: No '
                             'space left on device\n' % LOG_NOISE)
            return 1, '', 'criu failed: type NOTIFY errno 0\nlog file: %s/dump.log\n' % path
        if found.name in self.killed_for:
            self.frozen.add(container_id)
            return 1, '', 'criu failed: type NOTIFY errno 0: signal: killed\n'
        if found.name in self.fail_for:
            with open(os.path.join(path, 'dump.log'), 'w') as handle:
                handle.write('%s\n%s\n' % (LOG_NOISE, '\n'.join(DUMP_LOG_ERRORS)))
            return 1, '', 'criu failed: type NOTIFY errno 0\nlog file: %s/dump.log\n' % path
        for image, data in (('inventory.img', b'inventory of ' + found.id.encode()),
                            ('pstree.img', b'tree of ' + found.id.encode()),
                            ('mm-1.img', mm_image(found.layout)), ('stats-dump', STATS_DUMP)):
            with open(os.path.join(path, image), 'wb') as handle:
                handle.write(data)
        if '--leave-running' not in argv:
            self.engine._stop(found, 137)  # pylint: disable=protected-access
        return 0, '', ''

    def state_or_resume(self, command, container_id):
        if command == 'resume':
            if self.resume_fails:
                return 1, '', 'container not paused\n'
            self.frozen.discard(container_id)
            return 0, '', ''
        status = 'paused' if container_id in self.frozen else 'running'
        return 0, json.dumps(dict(id=container_id, status=status)), ''


@pytest.fixture
def runc(engine, tmp_path, monkeypatch):
    fake = Runc(engine, tmp_path)
    monkeypatch.setattr(_take, 'find_runtime', lambda *args: dict(fake.runtime))
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', lambda self, argv, **kw: fake.run_command(argv, **kw))
    return fake


def test_runtime_checkpoint_writes_into_the_engine_place_and_the_engine_restores_it(engine, runc, capsys):
    cr = engine.add('cr', restart_policy='always')
    result = checkpoint(capsys, method='runtime')
    path = engine.checkpoint_path(cr, 'cp1')
    assert result['changed'] is True and result['method'] == 'runtime' and 'method_reason' not in result
    assert 'attempts' not in result  # no engine call took it
    assert result['stats']['frozen_time'] == 63941 and result['stats']['pages_written'] == 34
    [(argv, env)] = runc.calls
    # runc writes beside the checkpoints (where the engine lists nothing), renamed into place on success.
    temp = os.path.join(os.path.dirname(os.path.dirname(path)), '.cryo-tmp-cp1')
    assert argv == ['/usr/sbin/runc', '--root', runc.runtime['root'], 'checkpoint', '--image-path', temp,
                    '--work-path', temp, cr.id]
    assert env['PATH'] == '/usr/local/sbin:/usr/sbin' and env['LC_ALL'] == 'C'
    assert oct(os.stat(path).st_mode & 0o777) == '0o700'
    meta = json.load(open(os.path.join(path, 'cryo-checkpoint.json')))
    assert meta['method'] == 'runtime' and meta['restart_policy']['Name'] == 'always'
    assert meta['stats']['frozen_time'] == 63941
    assert not cr.running and cr.restart_policy['Name'] == 'no'
    assert engine.called('create_checkpoint') == []
    back = restore(capsys)
    assert back['restored'] is True and back['verified'] is True and cr.running
    assert cr.restart_policy['Name'] == 'always'


def test_runtime_leave_running_and_checkpoint_dir(engine, runc, capsys, tmp_path):
    cr = engine.add('cr')
    store = str(tmp_path / 'srv' / 'store')
    result = checkpoint(capsys, method='runtime', leave_running=True, checkpoint_dir=store)
    assert result['changed'] is True and cr.running
    assert '--leave-running' in runc.calls[0][0]
    assert result['checkpoint']['directory'] == os.path.join(store, 'cp1')
    assert os.path.isfile(os.path.join(store, 'cp1', 'inventory.img'))
    assert oct(os.stat(os.path.dirname(store)).st_mode & 0o777) == '0o700'


def test_runtime_force_retakes_under_a_temporary_name(engine, runc, capsys):
    cr = engine.add('cr')
    first = checkpoint(capsys, method='runtime', leave_running=True)
    os.unlink(os.path.join(first['checkpoint']['directory'], 'stats-dump'))
    again = checkpoint(capsys, method='runtime', leave_running=True, force=True)
    argv = runc.calls[-1][0]
    assert argv[argv.index('--image-path') + 1].endswith('/.cryo-tmp-cp1.cryo-new')
    assert again['changed'] is True and again['stats']['pages_written'] == 34
    assert sorted(os.listdir(os.path.dirname(again['checkpoint']['directory']))) == ['cp1']
    assert cr.running


def test_a_failed_runtime_checkpoint_leaves_it_running_and_nothing_half_written(engine, runc, capsys):
    cr = engine.add('cr', restart_policy='unless-stopped')
    runc.fail_for.add('cr')
    result = checkpoint(capsys, method='runtime')
    msg = failed_clearly(result, 'Checkpoint cp1 of container cr failed: runc checkpoint exited 1: criu failed')
    assert 'CRIU says: %s' % DUMP_LOG_ERRORS[0] in msg and 'The container is still running; nothing was lost.' in msg
    assert result['criu_errors'][0] == DUMP_LOG_ERRORS[0] and result['method'] == 'runtime'
    assert result['container_running'] is True and result['runc_rc'] == 1
    assert not os.path.exists(engine.checkpoint_path(cr, 'cp1'))
    assert cr.running and cr.restart_policy['Name'] == 'unless-stopped'


def test_a_runtime_dump_whose_lines_another_criu_run_wiped_says_so(engine, runc, capsys):
    engine.add('cr')
    runc.fail_for.add('cr')
    real = runc.run_command

    def wiped(argv, **kwargs):
        answer = real(argv, **kwargs)
        if '--work-path' in argv:
            open(os.path.join(argv[argv.index('--work-path') + 1], 'dump.log'), 'w').close()  # the shared log, anew
        return answer
    runc.run_command = wiped
    os.makedirs(os.path.dirname(engine.runc_conf))
    with open(engine.runc_conf, 'w') as handle:
        handle.write('log-file %s\n' % engine.persistent_log)
    result = checkpoint(capsys, method='runtime')
    msg = failed_clearly(result, 'Checkpoint cp1 of container cr failed: runc checkpoint exited 1: criu failed')
    assert result['criu_errors'] == [] and 'CRIU says' not in msg
    assert ("CRIU's log %s holds no Error lines of this dump: /etc/criu/runc.conf makes every CRIU run write that one "
            "file" % engine.persistent_log) in msg
    assert 'checkpoint this container alone to read why' in msg and result['container_running'] is True


def test_method_runtime_where_it_cannot_work_fails_clearly(engine, capsys):
    cr = engine.add('cr')
    result = checkpoint(capsys, method='runtime')
    msg = failed_clearly(result, 'method runtime cannot checkpoint container cr: the dockerd serving %s is not a '
                                 'process on this host' % DOCKER_HOST)
    assert 'Use method engine' in msg
    assert engine.changes() == [] and cr.running


def test_auto_takes_the_engine_path_and_says_why(engine, capsys):
    engine.add('cr')
    result = checkpoint(capsys)
    assert result['method'] == 'engine' and result['attempts'] == 1 and result['stats'] is None
    assert result['method_reason'].startswith('the runtime path cannot be taken: the dockerd serving')


def test_method_engine_never_asks_for_the_runtime(engine, capsys, monkeypatch):
    engine.add('cr')
    monkeypatch.setattr(_take, 'find_runtime', lambda *args: pytest.fail('asked for the runtime'))
    result = checkpoint(capsys, method='engine')
    assert result['method'] == 'engine' and 'method_reason' not in result


def test_check_mode_says_which_path_it_would_take(engine, runc, capsys):
    cr = engine.add('cr')
    result = run_module(capsys, docker_checkpoint, dict(docker_host=DOCKER_HOST, container='cr', checkpoint='cp1'),
                        check_mode=True)
    assert result['changed'] is True and result['method'] == 'runtime'
    assert runc.calls == [] and cr.running


# -- find_runtime: the reasons the runtime path cannot be taken ----------------------------------

INFO = dict(DefaultRuntime='runc', Runtimes={'runc': {'path': 'runc'}, 'io.containerd.runc.v2': {'path': 'runc'},
                                             'crun': {'path': '/usr/bin/crun'}},
            SecurityOptions=['name=seccomp,profile=default'])
INSPECT = dict(Id='c0ffee', HostConfig=dict(Runtime='runc'))


class FakeHost:
    def __init__(self, root, binary='/usr/sbin/runc'):
        self.root = root
        self.binary = binary

    def runtime(self, docker_host, runtime_path, runtime_name):
        if docker_host.endswith('/gone.sock'):
            raise LookupError('the dockerd serving %s is not a process on this host' % docker_host)
        return dict(name=runtime_name, binary=self.binary, root=self.root, search_path='/usr/sbin', dockerd_pid=9)


@pytest.fixture
def state_root(tmp_path):
    root = tmp_path / 'runtime-runc' / 'moby'
    (root / 'c0ffee').mkdir(parents=True)
    (root / 'c0ffee' / 'state.json').write_text('{}')
    return str(root)


def test_find_runtime_on_this_kind_of_host(state_root):
    found = _runtime.find_runtime(FakeHost(state_root), 'unix:///var/run/docker.sock', INFO, INSPECT)
    assert found['binary'] == '/usr/sbin/runc' and found['root'] == state_root


@pytest.mark.parametrize('docker_host, info, inspect, live, binary, reason', [
    ('tcp://10.0.0.5:2376', INFO, INSPECT, False, '/usr/sbin/runc', 'is remote'),
    ('ssh://root@box', INFO, INSPECT, False, '/usr/sbin/runc', 'is remote'),
    ('unix:///run/docker.sock', dict(INFO, SecurityOptions=['name=rootless']), INSPECT, False, '/usr/sbin/runc',
     'runs rootless'),
    ('unix:///run/docker.sock', INFO, dict(INSPECT, HostConfig=dict(Runtime='crun')), False, '/usr/sbin/runc',
     'runs with the runtime crun (/usr/bin/crun), not runc'),
    ('unix:///run/docker.sock', dict(INFO, Runtimes={'runsc': {'path': '/usr/local/bin/runsc'}}, DefaultRuntime='runsc'),
     dict(Id='c0ffee', HostConfig={}), False, '/usr/sbin/runc', 'runtime runsc'),
    ('unix:///run/docker.sock', INFO, INSPECT, True, '/usr/sbin/runc', 'outlived an engine restart under live-restore'),
    ('unix:///run/gone.sock', INFO, INSPECT, False, '/usr/sbin/runc', 'is not a process on this host'),
    ('unix:///run/docker.sock', INFO, INSPECT, False, None, 'no runc binary on the PATH'),
    ('unix:///run/docker.sock', INFO, dict(INSPECT, Id='feed'), False, '/usr/sbin/runc', 'an unknown layout'),
])
def test_find_runtime_says_why_not(state_root, docker_host, info, inspect, live, binary, reason):
    with pytest.raises(_runtime.RuntimeUnavailable) as raised:
        _runtime.find_runtime(FakeHost(state_root, binary), docker_host, info, inspect, live)
    assert reason in raised.value.reason


def test_host_runtime_of_a_real_layout(tmp_path):
    """Host.runtime finds runc on dockerd's PATH and the state root under its exec root."""
    host = Host(proc=str(tmp_path / 'proc'))
    with pytest.raises(LookupError):
        host.runtime('unix:///run/none.sock')


# -- many containers in one call ----------------------------------------------------------------

def test_a_batch_over_8_counters_where_one_cannot_be_checkpointed(engine, runc, capsys):
    names = ['c%d' % n for n in range(8)]
    containers = [engine.add(name) for name in names]
    runc.fail_for.add('c5')
    result = checkpoint(capsys, containers=names, method='runtime', parallel=4)
    msg = failed_clearly(result, '1 of 8 containers failed: [c5] Checkpoint cp1 of container c5 failed')
    assert 'The others are reported in results.' in msg
    assert [entry['container'] for entry in result['results']] == names
    for entry, container in zip(result['results'], containers):
        if container.name == 'c5':
            assert entry['failed'] is True and entry['container_running'] is True and container.running
            assert entry['criu_errors'][0] == DUMP_LOG_ERRORS[0]
        else:
            assert entry['changed'] is True and entry['method'] == 'runtime' and not container.running
            assert entry['checkpoint']['name'] == 'cp1' and 'failed' not in entry
    assert result['changed'] is True
    back = restore(capsys, containers=[name for name in names if name != 'c5'])
    assert 'failed' not in back and back['changed'] is True
    assert [entry['container']['name'] for entry in back['results']] == [n for n in names if n != 'c5']
    assert all(entry['restored'] and entry['verified'] for entry in back['results'])
    assert all(container.running for container in containers)


def test_a_batch_names_missing_containers_and_goes_on(engine, runc, capsys):
    engine.add('a')
    result = checkpoint(capsys, containers=['a', 'ghost'], method='runtime')
    failed_clearly(result, '1 of 2 containers failed: [ghost] Container ghost does not exist')
    assert result['results'][0]['changed'] is True and result['results'][1]['failed'] is True


def test_a_batch_restore_reports_each_and_fails_for_one(engine, runc, capsys):
    for name in ('a', 'b'):
        engine.add(name)
    checkpoint(capsys, containers=['a', 'b'], method='runtime')
    shutil.rmtree(engine.checkpoint_path(engine._find('b'), 'cp1'))  # pylint: disable=protected-access
    result = restore(capsys, containers=['a', 'b'])
    failed_clearly(result, '1 of 2 containers failed: [b] Container b has no checkpoint named cp1')
    assert result['results'][0]['restored'] is True and result['results'][1]['container'] == {'name': 'b'}


def test_a_batch_is_idempotent_and_diffs_each(engine, runc, capsys):
    for name in ('a', 'b'):
        engine.add(name)
    first = run_module(capsys, docker_checkpoint, dict(docker_host=DOCKER_HOST, containers=['a', 'b'], checkpoint='cp1',
                                                       leave_running=True), diff=True)
    assert [d['before']['container'] for d in first['diff']] == ['a', 'b']
    again = checkpoint(capsys, containers=['a', 'b'], leave_running=True)
    assert again['changed'] is False and all(not entry['changed'] for entry in again['results'])


@pytest.mark.parametrize('args, message', [
    (dict(containers=[]), 'containers is empty'),
    (dict(containers=['a', 'a']), 'containers names a more than once'),
])
def test_batch_bad_input(engine, capsys, args, message):
    engine.add('a')
    result = checkpoint(capsys, **args)
    assert message in failed_clearly(result, '')
    assert engine.changes() == []


def test_container_and_containers_exclude_each_other(engine, capsys):
    engine.add('a')
    result = run_module(capsys, docker_checkpoint, dict(docker_host=DOCKER_HOST, container='a', containers=['a'],
                                                        checkpoint='cp1'))
    assert result['failed'] is True and 'mutually exclusive' in result['msg']
    assert not warnings_of(result)


def test_runtime_path_writes_into_a_temporary_directory_renamed_on_success(engine, runc, capsys, tmp_path):
    cr = engine.add('cr')
    path = engine.checkpoint_path(cr, 'cp1')
    temp = os.path.join(os.path.dirname(os.path.dirname(path)), '.cryo-tmp-cp1')
    os.makedirs(temp)  # what a run killed during the dump left: removed by the next take
    open(os.path.join(temp, 'pages-1.img'), 'w').close()
    result = checkpoint(capsys, method='runtime', leave_running=True)
    argv = runc.calls[-1][0]
    assert argv[argv.index('--image-path') + 1] == temp
    assert result['changed'] is True and os.path.isfile(os.path.join(path, 'inventory.img'))
    assert not os.path.exists(temp) and not os.path.exists(os.path.join(path, 'pages-1.img'))
    store = str(tmp_path / 'store')
    checkpoint(capsys, method='runtime', leave_running=True, checkpoint_dir=store, checkpoint='cp2')
    argv = runc.calls[-1][0]
    assert argv[argv.index('--image-path') + 1] == os.path.join(store, '.cryo-tmp-cp2')
    assert os.listdir(store) == ['cp2']


def test_a_failed_runtime_dump_leaves_no_directory_the_engine_lists(engine, runc, capsys, tmp_path):
    cr = engine.add('cr')
    runc.fail_for.add('cr')
    store = str(tmp_path / 'store')
    result = checkpoint(capsys, method='runtime', checkpoint_dir=store)
    assert result['failed'] and result['container_running'] is True
    assert os.listdir(store) == []
    assert not os.path.exists(os.path.dirname(engine.checkpoint_path(cr, 'cp1')) + '/../.cryo-tmp-cp1')
    assert cr.running


def test_a_checkpoint_that_cannot_fit_is_refused_before_anything_stops(engine, capsys, tmp_path, monkeypatch):
    cr = engine.add('cr')
    monkeypatch.setattr(Host, 'container_memory', lambda self, pid, cgroup_root=None: 1 << 50)
    result = checkpoint(capsys, method='engine', checkpoint_dir=str(tmp_path / 'store'))
    msg = failed_clearly(result, 'Checkpoint cp1 of container cr was not taken, and the container is still running '
                                 'untouched: %s has' % tmp_path)
    assert 'Free some space or choose another checkpoint_dir' in msg and result['needed_bytes'] == 1 << 50
    assert cr.running and engine.called('create_checkpoint') == []


@pytest.mark.parametrize('method', ['runtime', 'engine'])
def test_a_container_that_a_killed_criu_left_frozen_is_thawed(engine, runc, capsys, method):
    """CRIU killed during the dump never thaws the cgroup it froze: the container runs for the engine, but none of its
    processes does. The module thaws it through runc (the engine path's runc found as the runtime path's) and says
    so; the container runs on where it was."""
    cr = engine.add('cr', restart_policy='always')
    runc.killed_for.add('cr')
    if method == 'engine':
        engine.checkpoint_error = 'transient'
        runc.frozen.add(cr.id)
    result = checkpoint(capsys, method=method)
    msg = failed_clearly(result, 'Checkpoint cp1 of container cr failed')
    assert 'CRIU ended before it thawed the container\'s processes, so the module thawed them (runc resume)' in msg
    assert result['thawed'] is True and result['container_running'] is True
    assert runc.frozen == set() and [argv[3] for argv, _env in runc.calls][-3:] == ['state', 'resume', 'state']
    assert cr.running and cr.restart_policy['Name'] == 'always'
    assert engine.checkpoint_path(cr, 'cp1') and engine.list_checkpoints(cr.id) == []


def test_a_container_left_frozen_that_cannot_be_thawed_is_named_with_the_command(engine, runc, capsys):
    cr = engine.add('cr')
    runc.killed_for.add('cr')
    runc.resume_fails = True
    result = checkpoint(capsys, method='runtime')
    msg = failed_clearly(result, 'Checkpoint cp1 of container cr failed')
    assert 'its processes are frozen' in msg and 'resume %s' % cr.id in msg and 'container not paused' in msg
    assert result['container_running'] is False and result['thawed'] is False


def test_a_failed_checkpoint_of_a_container_not_frozen_resumes_nothing(engine, runc, capsys):
    engine.add('cr')
    runc.fail_for.add('cr')
    result = checkpoint(capsys, method='runtime')
    assert 'nothing was lost' in result['msg'] and result['thawed'] is False
    assert 'resume' not in [argv[3] for argv, _env in runc.calls]


def test_a_checkpoint_that_fills_the_disk_says_the_disk_is_full(engine, runc, capsys):
    cr = engine.add('cr')
    runc.full_for.add('cr')
    result = checkpoint(capsys, method='runtime')
    msg = failed_clearly(result, 'Checkpoint cp1 of container cr failed: runc checkpoint exited 1')
    assert 'No space left on device' in msg and 'The disk is full: the filesystem of ' in msg, msg
    assert result['disk_full'] is True and result['container_running'] is True and cr.running
    assert engine.list_checkpoints(cr.id) == [] and 'nothing was lost' in msg


def test_an_engine_checkpoint_that_fills_containerds_temporary_directory_names_it(engine, capsys, monkeypatch):
    """The engine's checkpoint passes through containerd's temporary directory (a tmpfs /tmp on Debian 13): the
    message names it, with what it has left and the engine role's remedy."""
    from ansible_collections.cryo.docker.plugins.module_utils import _take
    cr = engine.add('cr')
    engine.checkpoint_error = 'full'
    monkeypatch.setattr(_take.Host, 'containerd_tmpdir', lambda self, docker_host: dict(
        path='/tmp', fstype='tmpfs', free=3 * 1048576))
    result = checkpoint(capsys, method='engine')
    msg = failed_clearly(result, 'Checkpoint cp1 of container cr failed')
    assert "containerd's temporary directory first, /tmp (tmpfs, 3.0 MB free now)" in msg, msg
    assert 'engine_containerd_tmpdir' in msg and result['disk_full'] is True and cr.running
