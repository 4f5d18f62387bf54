"""cryo.docker.checkpoint_preflight on fake host facts, recorded CRIU outputs and a fake engine."""

import datetime
import os
import socket

import pytest

from ansible.module_utils import basic

from ansible_collections.cryo.docker.plugins.module_utils import _engine, _preflight
from ansible_collections.cryo.docker.plugins.module_utils._host import Host
from ansible_collections.cryo.docker.plugins.modules import checkpoint_preflight

from fake_engine import DOCKER_HOST, FIXTURES, run_module, warnings_of

KERNEL = '6.18.44-fc-v657'
GiB = 1024 ** 3
DOCKERD_STARTED = 1795965564.39  # 2026-11-29T15:19:24Z
MANAGED_SOCKET = '/var/run/docker/containerd/containerd.sock'
KERNEL_CONFIG = '\n'.join(['%s=y' % opt for opt, _why in _preflight.KERNEL_REQUIRED] +
                          ['CONFIG_USER_NS=y', '# CONFIG_MEM_SOFT_DIRTY is not set', ''])
# `criu --version` and `criu check` as recorded on Debian 12 (3.17.1) and CRIU 4.2.1 from source, kernel 6.18.
VERSION_421 = (0, 'Version: 4.2.1\n', '')
VERSION_3171 = (0, 'Version: 3.17.1\n', '')
CHECK_GOOD = (0, 'Looks good.\n', '')
CHECK_BAD = (1, '', 'Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\n'
                    'Error (criu/crtools.c:260): Could not initialize kernel features detection.\n')
CHECK_PARTIAL = (1, 'Warn  (criu/cr-check.c:1346): Dirty tracking is OFF. Memory snapshot will not work.\n'
                    'Looks good but some kernel features are missing\nwhich, depending on your process tree, '
                    'may cause\ndump or restore failure.\n', '')


class FakeHost(Host):
    """The engine's host: kernel, dockerd and its PATH, memory of processes, as the test sets them."""

    def __init__(self, tmp_path):
        super().__init__(proc=str(tmp_path / 'proc'), sys_root=str(tmp_path / 'sys'), boot=str(tmp_path / 'boot'),
                         run_root=str(tmp_path / 'run'))
        # A systemd host with D-Bus, as a Debian server has it.
        os.makedirs(str(tmp_path / 'proc' / '1'), exist_ok=True)
        (tmp_path / 'proc' / '1' / 'comm').write_text('systemd\n')
        os.makedirs(str(tmp_path / 'run' / 'systemd' / 'system'))
        os.makedirs(str(tmp_path / 'run' / 'dbus'))
        self.bus = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.bus.bind(str(tmp_path / 'run' / 'dbus' / 'system_bus_socket'))
        self.bus.listen(1)
        self.config = KERNEL_CONFIG
        self.search = '%s:%s' % (tmp_path / 'usr/local/sbin', tmp_path / 'usr/sbin')
        self.daemon = dict(pid=3397, started_at=DOCKERD_STARTED, path=self.search, options={}, config_file='',
                           exec_root='/var/run/docker', containerd_address=MANAGED_SOCKET, managed_containerd=True)
        # The containerd dockerd started, whose /tmp is on the root file system, with room.
        self.tmpdir = dict(path='/tmp', set_by=None, containerd_pid=3410, containerd_address=MANAGED_SOCKET,
                           managed=True, exists=True, mount_point='/', fstype='ext4', size=200 * GiB, free=100 * GiB)
        self.memory = {}

    def kernel_release(self):
        return KERNEL

    def kernel_config(self, release):
        return (self.config, '/boot/config-%s' % release) if self.config is not None else (None, None)

    def search_path(self, docker_host=None):
        return self.search, 'the running dockerd (pid 3397)'

    def dockerd(self, docker_host=None):
        return self.daemon

    def container_memory(self, pid, cgroup_root=None):
        return self.memory.get(pid, 0)

    def containerd_tmpdir(self, docker_host=None):
        return self.tmpdir


def criu_file(directory):
    os.makedirs(str(directory), exist_ok=True)
    path = os.path.join(str(directory), 'criu')
    with open(path, 'w') as handle:
        handle.write('#!/bin/sh\n')
    os.chmod(path, 0o755)
    return path


def ready_host(tmp_path, monkeypatch, engine):
    """A ready host: CRIU 4.2.1 first on dockerd's PATH, Debian's 3.17.1 after it, the fake engine, 100 GiB free
    (also for test_bad_input.py)."""
    fake = FakeHost(tmp_path)
    fake.local = criu_file(tmp_path / 'usr/local/sbin')
    fake.system = criu_file(tmp_path / 'usr/sbin')
    fake.answers = {(fake.local, '--version'): VERSION_421, (fake.local, 'check'): CHECK_GOOD,
                    (fake.system, '--version'): VERSION_3171, (fake.system, 'check'): CHECK_BAD}
    fake.commands = []
    fake.free = 100 * GiB
    fake.space_asked = []

    def run_command(self, args, **kwargs):
        fake.commands.append(list(args))
        assert kwargs.get('environ_update', {}).get('LC_ALL') == 'C'
        return fake.answers[tuple(args)]

    def free_space(path):
        fake.space_asked.append(path)
        return path, fake.free

    monkeypatch.setattr(basic.AnsibleModule, 'run_command', run_command)
    monkeypatch.setattr(checkpoint_preflight, 'Host', lambda: fake)
    monkeypatch.setattr(checkpoint_preflight, 'free_space', free_space)
    monkeypatch.setattr(checkpoint_preflight, 'Engine', lambda params: engine)
    return fake


@pytest.fixture
def host(tmp_path, monkeypatch, engine):
    return ready_host(tmp_path, monkeypatch, engine)


def run(capsys, **args):
    args.setdefault('docker_host', DOCKER_HOST)
    return run_module(capsys, checkpoint_preflight, args, check_mode=args.pop('check_mode', False))


def by_name(result):
    return {check['name']: check for check in result['checks']}


def statuses(result):
    return {check['name']: check['status'] for check in result['checks']}


# -- the host as a whole ----------------------------------------------------------------------------

def test_ready_host(host, engine, capsys):
    web = engine.add('web')
    host.memory[web.pid] = 64 * 1024 ** 2
    result = run(capsys)
    assert result['changed'] is False and result['ready'] is True
    assert statuses(result) == {
        'kernel config': 'pass', 'kernel CONFIG_MEM_SOFT_DIRTY': 'warn', 'criu installed': 'pass',
        'criu check': 'pass', 'criu version': 'pass', 'engine reachable': 'pass', 'engine experimental': 'pass',
        'engine version': 'pass', 'containerd version': 'pass', 'live-restore': 'pass', 'free space': 'pass',
        'containerd tmpdir': 'pass', 'host reboot': 'pass'}
    assert result['summary'] == {'pass': 12, 'warn': 1, 'fail': 0}
    assert result['facts']['init'] == dict(pid1='systemd', systemd=True, dbus=True)
    facts = result['facts']
    assert facts['criu_path'] == host.local and facts['criu_version'] == '4.2.1' and facts['criu_min_version'] == '4.2'
    assert facts['criu_search_path'] == host.search.split(':')
    assert facts['kernel_release'] == KERNEL and facts['kernel_config'] == '/boot/config-%s' % KERNEL
    assert (facts['engine_version'], facts['api_version'], facts['containerd_version'], facts['runc_version']) == (
        '20.10.24', '1.41', '1.6.20~ds1', '1.1.5+ds1')
    assert facts['experimental'] is True and facts['live_restore'] is False and facts['data_root'] == engine.root
    assert facts['cgroup_version'] == '1' and facts['cgroup_driver'] == 'cgroupfs'
    assert facts['dockerd_pid'] == 3397 and facts['dockerd_started_at'] == '2026-11-29T15:19:24+00:00'
    assert facts['free_bytes'] == 100 * GiB and facts['memory_bytes'] == 64 * 1024 ** 2
    assert facts['running_containers'] == 1 and facts['space_path'] == engine.root
    assert facts['containerd_tmpdir'] == host.tmpdir
    assert facts['image_path'] == dict(available=False, reason='Docker 20.10.24 passes no runtime options to '
                                       'containerd (Docker 23 and later do)')
    assert by_name(result)['containerd tmpdir']['detail'] == (
        'containerd (pid 3410, started by dockerd) unpacks every checkpoint the engine restores, and writes every '
        'checkpoint the engine takes, in a directory it makes in /tmp (the default: neither XDG_RUNTIME_DIR nor '
        'TMPDIR is set in its environment): on ext4 mounted on / (100.0 GiB free of 200.0 GiB); web, the largest '
        'running container counted, has 64.0 MiB of memory, about the size of its checkpoint.')
    assert by_name(result)['criu installed']['detail'] == (
        'CRIU is at %s (first on the PATH runc uses, the running dockerd (pid 3397): %s).' % (host.local, host.search))
    assert host.commands == [[host.local, '--version'], [host.local, 'check']]
    assert result['containers'] == [] and engine.changes() == []
    assert not warnings_of(result)


def test_check_mode_runs_the_same_checks(host, engine, capsys):
    assert run(capsys, check_mode=True)['ready'] is True
    assert host.commands == [[host.local, '--version'], [host.local, 'check']]


def test_old_criu_is_not_ready(host, capsys):
    os.unlink(host.local)
    result = run(capsys)
    assert result['ready'] is False and result['facts']['criu_path'] == host.system
    checks = by_name(result)
    assert checks['criu check']['status'] == 'fail'
    assert 'vdso: Unexpected rt vDSO area bounds' in checks['criu check']['detail']
    assert checks['criu version']['status'] == 'fail'
    assert checks['criu version']['detail'].startswith(
        'CRIU 3.17.1 at %s is too old for kernel %s: it needs >= 4.2.' % (host.system, KERNEL))
    assert 'cryo.docker.criu' in checks['criu version']['remedy']


def test_criu_check_with_warnings(host, capsys):
    host.answers[(host.local, 'check')] = CHECK_PARTIAL
    result = run(capsys)
    check = by_name(result)['criu check']
    assert result['ready'] is True and check['status'] == 'warn'
    assert 'Dirty tracking is OFF' in check['detail']


def test_criu_that_does_not_say_its_version(host, capsys):
    host.answers[(host.local, '--version')] = (0, 'criu, some build\n', '')
    result = run(capsys)
    assert result['facts']['criu_version'] is None
    assert by_name(result)['criu version']['status'] == 'fail'


def test_explicit_criu_path(host, capsys):
    result = run(capsys, criu_path=host.system)
    assert result['facts']['criu_path'] == host.system and result['facts']['criu_search_path'] == []
    assert by_name(result)['criu installed']['detail'] == 'CRIU is at %s (given as criu_path).' % host.system
    assert host.commands == [[host.system, '--version'], [host.system, 'check']]


def test_explicit_criu_path_that_is_no_program(host, capsys, tmp_path):
    result = run(capsys, criu_path=str(tmp_path / 'nothing'))
    check = by_name(result)['criu installed']
    assert check['status'] == 'fail' and check['detail'] == 'criu_path %s is not an executable file.' % (
        tmp_path / 'nothing')
    assert 'criu check' not in by_name(result) and host.commands == []
    assert result['facts']['criu_path'] is None and result['ready'] is False


def test_no_criu_on_dockerds_path(host, capsys):
    os.unlink(host.local)
    os.unlink(host.system)
    result = run(capsys)
    check = by_name(result)['criu installed']
    assert check['status'] == 'fail'
    assert check['detail'] == ('No criu binary on the PATH runc uses (%s, the running dockerd (pid 3397)), so the '
                               'engine cannot checkpoint anything.' % host.search)
    assert host.commands == []


def test_kernel_config_missing_an_option_and_unreadable(host, capsys):
    host.config = KERNEL_CONFIG.replace('CONFIG_CHECKPOINT_RESTORE=y', '# CONFIG_CHECKPOINT_RESTORE is not set')
    check = by_name(run(capsys))['kernel config']
    assert check['status'] == 'fail' and 'CONFIG_CHECKPOINT_RESTORE (checkpoint/restore support' in check['detail']
    host.config = None
    result = run(capsys)
    assert by_name(result)['kernel config']['status'] == 'warn' and result['facts']['kernel_config'] is None


# -- the engine -------------------------------------------------------------------------------------

def test_engine_unreachable(host, capsys, monkeypatch, tmp_path):
    """The real connection code, on a socket that does not exist."""
    monkeypatch.setattr(checkpoint_preflight, 'Engine', _engine.Engine)
    socket = 'unix://%s' % (tmp_path / 'nope.sock')
    result = run(capsys, docker_host=socket)
    check = by_name(result)['engine reachable']
    assert result['ready'] is False and check['status'] == 'fail'
    assert check['detail'].startswith('Cannot talk to the Docker Engine at %s: Cannot reach the Docker Engine' % socket)
    assert 'engine experimental' not in by_name(result)
    assert host.space_asked == ['/var/lib/docker'] and result['facts']['running_containers'] == 0
    assert result['facts']['engine_version'] is None


def test_engine_unreachable_measures_the_checkpoint_dir(host, engine, capsys, tmp_path):
    engine.unreachable = True
    result = run(capsys, checkpoint_dir=str(tmp_path / 'srv'))
    assert by_name(result)['engine reachable']['status'] == 'fail'
    assert host.space_asked == [str(tmp_path / 'srv')]


def test_sdk_missing(host, capsys, monkeypatch):
    monkeypatch.setattr(checkpoint_preflight, 'HAS_DOCKER', False)
    result = run(capsys)
    check = by_name(result)['engine reachable']
    assert result['ready'] is False and check['status'] == 'fail'
    assert 'docker (the Docker SDK for Python)' in check['detail'] and 'cryo.docker.engine role' in check['detail']
    assert warnings_of(result) == []  # the check says it all; no traceback as a warning
    assert host.space_asked == ['/var/lib/docker']


def test_experimental_off(host, engine, capsys):
    engine.experimental = False
    result = run(capsys)
    check = by_name(result)['engine experimental']
    assert result['ready'] is False and check['status'] == 'fail'
    assert '"experimental": true' in check['remedy']


@pytest.mark.parametrize('version, status', [('25.0.2', 'fail'), ('28.5.2', 'warn'), ('26.1.5', 'pass')])
def test_engine_versions_known_to_break_restore(host, engine, capsys, version, status):
    engine.version_text = version
    assert by_name(run(capsys))['engine version']['status'] == status


# -- containers -------------------------------------------------------------------------------------

def test_containers_listed_eligible_ineligible_and_missing(host, engine, capsys):
    web = engine.add('web', restart_policy='always')
    engine.add('stopped', running=False)
    result = run(capsys, containers=['web', 'stopped', 'missing'])
    assert result['ready'] is False
    assert [(c['name'], c['eligible']) for c in result['containers']] == [
        ('web', True), ('stopped', False), ('missing', False)]
    first, second, third = result['containers']
    assert first['id'] == web.id and first['reasons'] == []
    assert first['restart_policy'] == dict(Name='always', MaximumRetryCount=0)
    assert second['reasons'] == ['Container stopped is exited: only a running container can be checkpointed.']
    assert third['id'] is None and third['restart_policy'] is None
    assert third['reasons'] == ['Container missing does not exist on the Docker Engine at %s. Check the name or id '
                                '(docker_checkpoint_info lists the containers that have checkpoints).' % DOCKER_HOST]
    checks = statuses(result)
    assert checks['container web: running'] == 'pass' and checks['container web: restart policy'] == 'pass'
    assert checks['container stopped: running'] == 'fail' and checks['container missing'] == 'fail'
    assert result['facts']['running_containers'] == 1  # only the listed containers that run are counted


def test_containers_say_their_networks(host, engine, capsys):
    holder = engine.add('web-net', labels={'cryo.docker.network-holder': 'true'})
    engine.add('web', network='container:' + holder.id)
    engine.add('cache', network='default')
    engine.add('edge', network='host')
    found = {c['name']: c for c in run(capsys, containers=['web', 'cache', 'edge', 'missing'])['containers']}
    assert (found['web']['network_mode'], found['web']['network_holder'], found['web']['networks']) == (
        'container:' + holder.id, 'web-net', [])
    assert (found['cache']['network_mode'], found['cache']['networks']) == ('default', ['bridge'])
    assert found['edge']['networks'] == ['host'] and found['missing']['networks'] == []


@pytest.mark.parametrize('version', ['20.10.24', '28.5.2+dfsg4'])
def test_restore_networks_of_a_container_from_elsewhere(host, engine, capsys, version):
    engine.version_text = version
    engine.add('web-net')
    engine.add('old-net', running=False)
    engine.networks['backend'] = {}
    result = run(capsys, restore_networks=['bridge', 'host', 'container:web-net', 'container:old-net',
                                           'container:gone', 'backend', 'frontend', ' '])
    broken = version.startswith('28')
    assert statuses(result) == dict(statuses(result), **{
        'restore network bridge': 'fail' if broken else 'pass', 'restore network host': 'pass',
        'restore network container:web-net': 'pass', 'restore network container:old-net': 'fail',
        'restore network container:gone': 'fail', 'restore network backend': 'fail' if broken else 'pass',
        'restore network frontend': 'fail', 'restore network default': 'fail' if broken else 'pass'})
    assert result['ready'] is False and result['containers'] == []
    assert ('find', 'gone') in engine.calls and ('network', 'frontend') in engine.calls
    assert ('network', 'bridge') not in engine.calls and engine.changes() == []


def test_restore_networks_that_all_restore_keep_the_host_ready(host, engine, capsys):
    engine.add('web-net')
    result = run(capsys, restore_networks=['bridge', 'container:web-net'])
    assert result['ready'] is True
    assert [c['name'] for c in result['checks'] if c['name'].startswith('restore network')] == [
        'restore network bridge', 'restore network container:web-net']


def test_the_cpu_in_the_facts_and_restore_cpu_flags_of_a_richer_source(host, engine, capsys, tmp_path):
    """The move's check before the freeze: this host's CPU (recorded /proc/cpuinfo of the lab machine) in facts,
    and the flags of a source CPU with avx512f - refused, the feature named; without restore_cpu_flags no check."""
    with open(os.path.join(FIXTURES, 'cpu', 'epyc-proc-cpuinfo.txt'), encoding='ascii') as handle:
        text = handle.read()
    (tmp_path / 'proc' / 'cpuinfo').write_text(text)
    result = run(capsys)
    cpu = result['facts']['cpu']
    assert cpu['vendor'] == 'AuthenticAMD' and cpu['model'] == 'AMD EPYC' and 'sha_ni' in cpu['flags']
    assert 'restore cpu' not in statuses(result) and result['ready'] is True
    same = run(capsys, restore_cpu_flags=cpu['flags'])
    assert statuses(same)['restore cpu'] == 'pass' and same['ready'] is True
    richer = run(capsys, restore_cpu_flags=cpu['flags'] + ['avx512f', 'hypervisor'])
    found = by_name(richer)['restore cpu']
    assert found['status'] == 'fail' and 'lacks avx512f, which the CPU' in found['detail'], found
    assert richer['ready'] is False and engine.changes() == []


def test_labels_include_and_exclude(host, engine, capsys):
    engine.add('db', labels={'tier': 'db'})
    engine.add('db-skip', labels={'tier': 'db', 'cryo.skip': 'true'})
    engine.add('web', labels={'tier': 'web'})
    result = run(capsys, containers=['db', 'db-skip', 'web'], include_labels=['tier=db'], exclude_labels=['cryo.skip'])
    assert [c['name'] for c in result['containers']] == ['db']
    assert not any(check['name'].startswith(('container web', 'container db-skip')) for check in result['checks'])


def test_each_container_says_its_compose_project(host, engine, capsys):
    """The maintenance role checkpoints a project's containers as one group: it learns the project here."""
    engine.add('shop-redis-1', labels={'com.docker.compose.project': 'shop'})
    engine.add('shop-run-1', labels={'com.docker.compose.project': 'shop', 'com.docker.compose.oneoff': 'True'})
    engine.add('plain')
    result = run(capsys, containers=['shop-redis-1', 'shop-run-1', 'plain', 'gone'])
    assert {c['name']: c['project'] for c in result['containers']} == {
        'shop-redis-1': 'shop', 'shop-run-1': None, 'plain': None, 'gone': None}


def test_select_running_adds_the_running_containers(host, engine, capsys):
    engine.add('api')
    engine.add('idle', running=False)
    engine.add('worker')
    result = run(capsys, containers=['worker'], select_running=True)
    assert [c['name'] for c in result['containers']] == ['worker', 'api']
    assert result['facts']['running_containers'] == 2


def test_select_running_on_an_engine_without_containers(host, engine, capsys):
    result = run(capsys, select_running=True)
    assert result['containers'] == [] and result['facts']['running_containers'] == 0


def test_containers_that_stop_or_go_away_while_listed_are_skipped(host, engine, capsys):
    web = engine.add('web')
    host.memory[web.pid] = 1024 ** 2
    stopped = engine.add('stopped', running=False)
    engine.ghosts = ['0ff1ce', stopped.id]
    result = run(capsys)
    assert result['facts']['running_containers'] == 1 and result['facts']['memory_bytes'] == 1024 ** 2
    assert not warnings_of(result)


def test_listing_the_running_containers_fails(host, engine, capsys):
    engine.add('web')
    engine.list_error = 'Error response from daemon: context deadline exceeded'
    result = run(capsys)
    assert warnings_of(result) == ['Cannot list the running containers: Error response from daemon: context '
                                   'deadline exceeded']
    assert result['facts']['running_containers'] == 0


# -- free space -------------------------------------------------------------------------------------

@pytest.mark.parametrize('free_gib, status', [(10, 'pass'), (2.5, 'warn'), (1.5, 'fail')])
def test_free_space_against_the_memory_to_dump(host, engine, capsys, tmp_path, free_gib, status):
    for name in ('a', 'b'):
        container = engine.add(name)
        host.memory[container.pid] = GiB // 2
    host.free = int(free_gib * GiB)
    result = run(capsys, checkpoint_dir=str(tmp_path / 'srv'))
    check = by_name(result)['free space']
    assert check['status'] == status
    assert check['detail'].startswith('%s free at %s for 1.0 GiB of memory in 2 running container(s)'
                                      % (_preflight.human_bytes(host.free), tmp_path / 'srv'))
    assert result['ready'] is (status != 'fail')
    assert host.space_asked == [str(tmp_path / 'srv')]


def test_free_space_that_cannot_be_measured(host, capsys):
    host.free = None
    assert by_name(run(capsys))['free space']['status'] == 'warn'


# -- containerd's temporary directory ---------------------------------------------------------------

def tmpfs_tmp(host, free):
    """containerd's /tmp as Debian 13 and Fedora mount it: a tmpfs of half the RAM (here 4 GiB)."""
    host.tmpdir.update(mount_point='/tmp', fstype='tmpfs', size=4 * GiB, free=free)


def test_a_tmpfs_smaller_than_the_largest_container_warns(host, engine, capsys):
    for name, memory in (('small', GiB // 4), ('big', 3 * GiB)):
        host.memory[engine.add(name).pid] = memory
    tmpfs_tmp(host, 2 * GiB)
    result = run(capsys)
    check = by_name(result)['containerd tmpdir']
    assert check['status'] == 'warn' and result['ready'] is True
    assert check['detail'].endswith(
        'in /tmp (the default: neither XDG_RUNTIME_DIR nor TMPDIR is set in its environment): a tmpfs in memory '
        'mounted on /tmp (2.0 GiB free of 4.0 GiB); big, the largest running container counted, has 3.0 GiB of '
        'memory, about the size of its checkpoint: its restore would fill the tmpfs, taking that much RAM, and fail.')
    assert check['remedy'] == (
        'Give the tmpfs on /tmp at least 5.0 GiB, or point containerd\'s TMPDIR at a directory on disk with room, '
        'with engine_containerd_tmpdir of the cryo.docker.engine role (for example /var/lib/containerd-tmp: the role '
        'creates it, puts it in the environment of containerd and dockerd, and restarts them; while containers run '
        'only with engine_allow_restart).')
    assert result['facts']['containerd_tmpdir']['fstype'] == 'tmpfs'


def test_the_containers_given_are_the_ones_measured(host, engine, capsys):
    for name, memory in (('small', GiB // 4), ('big', 3 * GiB)):
        host.memory[engine.add(name).pid] = memory
    tmpfs_tmp(host, 2 * GiB)
    check = by_name(run(capsys, containers=['small']))['containerd tmpdir']
    assert check['status'] == 'pass' and 'small, the largest running container counted, has 256.0 MiB' in check['detail']
    assert check['detail'].endswith(': while it is restored, the checkpoint takes that much RAM.')


def test_a_tmpdir_that_does_not_exist_fails(host, capsys):
    host.tmpdir.update(path='/srv/gone', set_by='TMPDIR', exists=False)
    result = run(capsys)
    check = by_name(result)['containerd tmpdir']
    assert check['status'] == 'fail' and result['ready'] is False
    assert 'in /srv/gone (from its TMPDIR), which does not exist: every restore' in check['detail']
    assert check['remedy'].startswith('Create /srv/gone (mode 0700), or point')


def test_a_containerd_not_found_here_warns(host, capsys):
    host.tmpdir = None
    result = run(capsys)
    check = by_name(result)['containerd tmpdir']
    assert check['status'] == 'warn' and result['facts']['containerd_tmpdir'] is None
    assert check['detail'].startswith('The containerd serving the engine at %s was not found' % DOCKER_HOST)


# -- live-restore -----------------------------------------------------------------------------------

def iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def test_live_restore_names_the_containers_that_outlived_the_engine(host, engine, capsys):
    engine.live_restore = True
    engine.add('old', started_at=iso(DOCKERD_STARTED - 3600))
    engine.add('new', started_at=iso(DOCKERD_STARTED + 60))
    result = run(capsys, containers=['old', 'new'])
    check = by_name(result)['live-restore']
    assert check['status'] == 'warn' and check['detail'].endswith('("invalid task checkpoint option"): old.')
    assert '1 running container(s)' in check['detail']
    checks = statuses(result)
    assert checks['container old: engine restart'] == 'fail' and 'container new: engine restart' not in checks
    assert [(c['name'], c['eligible']) for c in result['containers']] == [('old', False), ('new', True)]


def test_live_restore_with_every_container_started_by_this_engine(host, engine, capsys):
    engine.live_restore = True
    engine.add('new', started_at=iso(DOCKERD_STARTED + 60))
    check = by_name(run(capsys))['live-restore']
    assert check['status'] == 'pass' and 'dockerd pid 3397' in check['detail']


def test_live_restore_without_the_engines_process(host, engine, capsys):
    engine.live_restore = True
    host.daemon = None
    result = run(capsys)
    assert by_name(result)['live-restore']['status'] == 'warn'
    assert result['facts']['dockerd_pid'] is None and result['facts']['dockerd_started_at'] is None


def test_dockerd_whose_start_time_is_unknown(host, capsys):
    host.daemon = dict(host.daemon, started_at=None)
    facts = run(capsys)['facts']
    assert facts['dockerd_pid'] == 3397 and facts['dockerd_started_at'] is None


def test_relative_checkpoint_dir_is_refused(host, capsys):
    result = run(capsys, checkpoint_dir='srv')
    assert result['failed'] is True and result['msg'].startswith("checkpoint_dir must be an absolute path, got 'srv'.")
    assert host.commands == []


def test_cgroup_version_from_the_host_when_the_engine_does_not_say(host, engine, capsys, tmp_path):
    engine.cgroup_version = None  # engines before API 1.40
    (tmp_path / 'sys' / 'fs' / 'cgroup').mkdir(parents=True)
    (tmp_path / 'sys' / 'fs' / 'cgroup' / 'cgroup.controllers').write_text('cpu memory\n')
    assert run(capsys)['facts']['cgroup_version'] == '2'


@pytest.mark.parametrize('bus', ['missing', 'stopped'])
def test_a_systemd_host_without_dbus_cannot_be_rebooted_by_ansible(host, tmp_path, capsys, bus):
    """A Debian guest built without dbus: ansible.builtin.reboot's `shutdown -r` failed with "Failed to connect to
    bus" after the maintenance role had checkpointed everything. `systemctl stop dbus.socket` leaves the socket's
    file behind, with nothing listening."""
    host.bus.close()
    if bus == 'missing':
        os.unlink(str(tmp_path / 'run' / 'dbus' / 'system_bus_socket'))
    result = run(capsys)
    check = by_name(result)['host reboot']
    assert check['status'] == 'warn' and result['ready'] is True
    assert 'without the D-Bus system bus' in check['detail'] and 'Failed to connect to bus' in check['detail']
    assert check['remedy'].startswith('Install and start D-Bus (apt-get install dbus')
    assert result['facts']['init'] == dict(pid1='systemd', systemd=True, dbus=False)


def test_a_host_without_systemd_reboots_through_its_shutdown(host, tmp_path, capsys):
    (tmp_path / 'proc' / '1' / 'comm').write_text('init\n')
    os.rmdir(str(tmp_path / 'run' / 'systemd' / 'system'))
    host.bus.close()
    check = by_name(run(capsys))['host reboot']
    assert check == dict(name='host reboot', status='pass', remedy='',
                         detail='PID 1 is init, not systemd: ansible.builtin.reboot uses its shutdown command.')
