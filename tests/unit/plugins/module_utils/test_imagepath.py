"""The image-path restore's runtimes (_imagepath.py): when an engine can take it, the runtime definitions, the reload
that confirms them, daemon.json kept whole (and put back when the engine did not take a change), the slots."""

import json
import os
import signal

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _imagepath, _lock

RUNC_FEATURES = {'path': 'runc', 'status': {}}
INFO_26 = dict(DockerRootDir='/var/lib/docker', DefaultRuntime='runc', CgroupDriver='systemd',
               Runtimes={'runc': RUNC_FEATURES, 'io.containerd.runc.v2': RUNC_FEATURES},
               SecurityOptions=['name=seccomp,profile=builtin', 'name=cgroupns'])
VERSION_26 = dict(Version='26.1.5+dfsg1', ApiVersion='1.45')
VERSION_20 = dict(Version='20.10.24+dfsg1', ApiVersion='1.41')
DOCKERD = dict(pid=4321, config_file='/etc/docker/daemon.json', exec_root='/run/docker', options={})
# Docker 26.1.5's reload event after SIGHUP, recorded on the test bed (other attributes cut): a runtimeType runtime
# has no path, a path runtime its path.
RELOAD = {'Type': 'daemon', 'Action': 'reload', 'timeNano': 1796641701276369752, 'Actor': {
    'ID': '50e11758-3538-41e3-b4ec-fb247d142e78', 'Attributes': {
        'default-runtime': 'runc', 'live-restore': 'false', 'runtimes': 'cryo-restore-0123456789ab: other:runc'}}}
NAME = 'cryo-restore-0123456789ab'


def test_the_reload_event_lists_each_runtime_with_its_path():
    assert _imagepath.reload_paths(RELOAD) == {NAME: '', 'other': 'runc'}
    armed = _imagepath.armed_definition(dict(binary_name='runc', root='/run/docker/runtime-runc',
                                             systemd_cgroup=True), '/slot')
    assert _imagepath.reload_confirms(RELOAD, {NAME: armed})
    assert not _imagepath.reload_confirms(RELOAD, {NAME: {'path': 'runc'}}), 'still armed: not yet disarmed'
    assert _imagepath.reload_confirms(RELOAD, {'other': {'path': 'runc'}})
    assert not _imagepath.reload_confirms(RELOAD, {'cryo-restore-ffffffffffff': {'path': 'runc'}})
    assert _imagepath.reload_paths({'Action': 'reload'}) == {}


def test_event_times_carry_nanoseconds_after_the_dot():
    assert _imagepath.event_time(1796641701250000001) == '1796641701.250000001'
    assert _imagepath.event_time(5000000000) == '5.000000000'


def test_armed_is_the_stock_runc_with_an_image_path_and_plain_is_the_stock_runc():
    base = dict(binary_name='runc', root='/run/docker/runtime-runc', systemd_cgroup=False)
    assert _imagepath.armed_definition(base, '/var/lib/docker/cryo-restore/' + NAME) == {
        'runtimeType': 'io.containerd.runc.v2', 'options': {
            'BinaryName': 'runc', 'Root': '/run/docker/runtime-runc', 'SystemdCgroup': False,
            'CriuImagePath': '/var/lib/docker/cryo-restore/%s/images' % NAME,
            'CriuWorkPath': '/var/lib/docker/cryo-restore/%s/work' % NAME}}
    assert _imagepath.plain_definition(base) == {'path': 'runc'}


def test_runtime_names():
    name = _imagepath.new_runtime_name()
    assert _imagepath.is_slot_runtime(name) and name != _imagepath.new_runtime_name()
    for other in ('runc', 'cryo-restore-', 'cryo-restore-0123456789AB', 'cryo-restore-0123456789abc', None, ''):
        assert not _imagepath.is_slot_runtime(other), other


@pytest.mark.parametrize('version, info, docker_host, dockerd, argv, reason', [
    (VERSION_26, INFO_26, 'unix:///var/run/docker.sock', DOCKERD, ['dockerd'], None),
    (VERSION_20, INFO_26, 'unix:///var/run/docker.sock', DOCKERD, ['dockerd'],
     'Docker 20.10.24+dfsg1 passes no runtime options to containerd (Docker 23 and later do)'),
    (VERSION_26, INFO_26, 'tcp://10.0.0.2:2376', None, (), 'the engine at tcp://10.0.0.2:2376 is remote'),
    (VERSION_26, dict(INFO_26, SecurityOptions=['name=rootless']), 'unix:///run/user/1000/docker.sock', DOCKERD,
     ['dockerd'], 'the engine runs rootless'),
    (VERSION_26, dict(INFO_26, DefaultRuntime='crun', Runtimes={'crun': {'path': '/usr/bin/crun'}}),
     'unix:///var/run/docker.sock', DOCKERD, ['dockerd'], 'the engine\'s default runtime is crun (/usr/bin/crun)'),
    (VERSION_26, INFO_26, 'unix:///var/run/docker.sock', None, (), 'the dockerd serving unix:///var/run/docker.sock '
     'is not a process on this host'),
    (VERSION_26, INFO_26, 'unix:///var/run/docker.sock', DOCKERD, ['dockerd', '--add-runtime', 'x=/bin/x'],
     'dockerd is started with --add-runtime'),
])
def test_when_the_engine_can_take_the_image_path(version, info, docker_host, dockerd, argv, reason):
    found = _imagepath.unavailable_reason(version, info, docker_host, dockerd, argv)
    if reason is None:
        assert found is None
    else:
        assert found.startswith(reason), found


class FakeEngine:
    """daemon_events answers the reload a SIGHUP gave (events: what the engine took), or none."""

    def __init__(self, config_file, takes=True):
        self.config_file = config_file
        self.takes = takes
        self.signals = []

    def daemon_events(self, since, until):
        if not self.takes or not self.signals:
            return []
        with open(self.config_file) as handle:
            runtimes = (json.load(handle) if os.path.getsize(self.config_file) else {}).get('runtimes') or {}
        listed = ' '.join('%s:%s' % (name, value.get('path') or '') for name, value in runtimes.items())
        return [{'Action': 'reload', 'timeNano': self.signals[-1], 'Actor': {'Attributes': {'runtimes': listed}}}]


@pytest.fixture
def runtimes(tmp_path, monkeypatch):
    config = tmp_path / 'etc' / 'docker' / 'daemon.json'
    config.parent.mkdir(parents=True)
    config.write_text('{"experimental": true, "log-driver": "local", "runtimes": {"kept": {"path": "/bin/kept"}}}\n')
    os.chmod(config, 0o640)
    engine = FakeEngine(str(config))

    def kill(pid, sig):
        assert pid == 4321 and sig == signal.SIGHUP
        engine.signals.append(_imagepath.time.time_ns() + 1)

    monkeypatch.setattr(_imagepath.os, 'kill', kill)
    monkeypatch.setattr(_imagepath, 'RELOAD_TIMEOUT', 0.3)
    info = dict(INFO_26, DockerRootDir=str(tmp_path / 'docker'))
    return _imagepath.Runtimes(engine, info, dict(DOCKERD, config_file=str(config)))


def config_of(runtimes):
    with open(runtimes.config_file) as handle:
        return json.load(handle)


def test_arm_and_disarm_keep_every_other_key_and_reload_once_each(runtimes):
    assert runtimes.arm(NAME) is True
    config = config_of(runtimes)
    assert config['experimental'] is True and config['log-driver'] == 'local'
    assert config['runtimes']['kept'] == {'path': '/bin/kept'}
    assert config['runtimes'][NAME]['options']['CriuImagePath'] == os.path.join(runtimes.slots_root, NAME, 'images')
    assert config['runtimes'][NAME]['options']['Root'] == '/run/docker/runtime-runc'
    assert config['runtimes'][NAME]['options']['SystemdCgroup'] is True
    assert oct(os.stat(runtimes.config_file).st_mode & 0o777) == oct(0o640), 'its mode is kept'
    assert len(runtimes.engine.signals) == 1
    assert runtimes.arm(NAME) is False and len(runtimes.engine.signals) == 1, 'no change, no reload'
    assert runtimes.disarm(NAME) is True and config_of(runtimes)['runtimes'][NAME] == {'path': 'runc'}
    assert len(runtimes.engine.signals) == 2


def test_a_change_the_engine_does_not_take_is_put_back(runtimes):
    before = open(runtimes.config_file).read()
    runtimes.engine.takes = False
    with pytest.raises(_imagepath.DefinitionRefused) as refused:
        runtimes.arm(NAME)
    assert 'did not take the runtime definition' in refused.value.msg
    assert open(runtimes.config_file).read() == before
    assert len(runtimes.engine.signals) == 2, 'dockerd was told to reload what it had'


def test_a_daemon_json_that_is_not_json_is_never_rewritten(runtimes):
    with open(runtimes.config_file, 'w') as handle:
        handle.write('{"experimental": true,')
    with pytest.raises(_imagepath.DefinitionRefused) as refused:
        runtimes.arm(NAME)
    assert 'is not valid JSON' in refused.value.msg
    assert open(runtimes.config_file).read() == '{"experimental": true,' and not runtimes.engine.signals


def test_no_daemon_json_is_made_and_removed_again_when_refused(runtimes):
    os.unlink(runtimes.config_file)
    runtimes.engine.takes = False
    with pytest.raises(_imagepath.DefinitionRefused):
        runtimes.arm(NAME)
    assert not os.path.exists(runtimes.config_file)
    runtimes.engine.takes = True
    assert runtimes.arm(NAME) and list(config_of(runtimes)) == ['runtimes']


def test_a_slot_points_at_its_checkpoint_and_is_pruned_with_its_container(runtimes, tmp_path):
    record = runtimes.make_slot(NAME, container='web', mode='once')
    assert record == dict(runtime=NAME, container='web', mode='once')
    assert oct(os.stat(runtimes.slot(NAME)).st_mode & 0o777) == oct(0o700)
    for checkpoint in ('cp1', 'cp2'):
        runtimes.point(NAME, str(tmp_path / checkpoint))
        assert runtimes.pointed(NAME) == str(tmp_path / checkpoint)
    runtimes.write_slot(NAME, container_id='a' * 64)
    assert _imagepath.slot_record(runtimes.data_root, NAME)['container_id'] == 'a' * 64
    assert _imagepath.slot_record(runtimes.data_root, 'runc') == {}
    runtimes.disarm(NAME)
    assert runtimes.prune(lambda container_id: True) == ([], [])
    assert runtimes.prune(lambda container_id: False) == ([NAME], [])
    assert not os.path.exists(runtimes.slot(NAME)) and NAME not in config_of(runtimes)['runtimes']
    assert config_of(runtimes)['runtimes'] == {'kept': {'path': '/bin/kept'}}


def test_a_runtime_a_killed_restore_left_armed_is_disarmed_unless_warm_or_busy(runtimes, tmp_path):
    """A restore killed between arming the container's runtime and disarming it: the next import's upkeep disarms
    it, but not while an operation holds the container's lock, and never a warm container's."""
    container_id = 'b' * 64
    os.makedirs(os.path.join(runtimes.data_root, 'containers', container_id))
    runtimes.make_slot(NAME, container='web', mode='once', container_id=container_id)
    runtimes.arm(NAME)
    holder = _lock.ContainerLock(_lock.lock_path(runtimes.data_root, container_id)).acquire('a restore', 'cp1')
    assert runtimes.prune(lambda cid: True) == ([], []), 'a restore is under way'
    holder.release()
    assert runtimes.prune(lambda cid: True) == ([], [NAME])
    assert config_of(runtimes)['runtimes'][NAME] == {'path': 'runc'}
    runtimes.write_slot(NAME, mode='warm')
    runtimes.arm(NAME)
    assert runtimes.prune(lambda cid: True) == ([], []), 'a warm container stays armed'
