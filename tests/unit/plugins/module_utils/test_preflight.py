# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Every preflight rule on recorded inputs (this machine, Debian 12, kernel 6.18, Docker 20.10)."""

from __future__ import annotations

import copy
import datetime

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _preflight as pf
from ansible_collections.cryo.docker.plugins.module_utils._criu import parse_check
from ansible_collections.cryo.docker.plugins.module_utils._host import SERVICE_PATH

RELEASE = '6.18.44-fc-v657'

# /proc/config.gz of this machine, the lines that matter.
KERNEL_CONFIG = """\
CONFIG_NAMESPACES=y
CONFIG_UTS_NS=y
CONFIG_TIME_NS=y
CONFIG_IPC_NS=y
CONFIG_USER_NS=y
CONFIG_PID_NS=y
CONFIG_NET_NS=y
CONFIG_CHECKPOINT_RESTORE=y
CONFIG_FHANDLE=y
CONFIG_EPOLL=y
CONFIG_EVENTFD=y
CONFIG_HAVE_ARCH_SOFT_DIRTY=y
# CONFIG_MEM_SOFT_DIRTY is not set
CONFIG_PACKET_DIAG=y
CONFIG_UNIX_DIAG=y
CONFIG_INET_DIAG=y
CONFIG_NETLINK_DIAG=y
CONFIG_INOTIFY_USER=y
CONFIG_LOCALVERSION="-fc-v657"
"""

# `criu check` and `criu --version`, recorded: (rc, stdout, stderr).
CRIU_421_CHECK = (0, 'Looks good.\n', '')
CRIU_3171_CHECK = (1, '', 'Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\n'
                          'Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable\n'
                          'Error (criu/kerndat.c:1615): kerndat_vdso_fill_symtable failed when initializing kerndat.\n'
                          'Error (criu/crtools.c:260): Could not initialize kernel features detection.\n')
CRIU_WARN_CHECK = (0, 'Looks good but some kernel features are missing\nwhich, depending on your process tree, '
                      'may cause\ndump or restore failure.\n',
                   'Warn  (criu/cr-check.c:1230): Dirty tracking is OFF. Memory snapshot will not work.\n')

# GET /version and GET /info of the engine on this machine (abridged).
VERSION_20_10 = {
    'Components': [
        {'Name': 'Engine', 'Version': '20.10.24+dfsg1', 'Details': {'ApiVersion': '1.41', 'Experimental': 'true'}},
        {'Name': 'containerd', 'Version': '1.6.20~ds1', 'Details': {'GitCommit': '1.6.20~ds1-1+deb12u3'}},
        {'Name': 'runc', 'Version': '1.1.5+ds1', 'Details': {'GitCommit': '1.1.5+ds1-1+deb12u1'}},
        {'Name': 'docker-init', 'Version': '0.19.0', 'Details': {'GitCommit': ''}},
    ],
    'Version': '20.10.24+dfsg1', 'ApiVersion': '1.41', 'MinAPIVersion': '1.12',
    'KernelVersion': RELEASE, 'Experimental': True,
}
INFO_20_10 = {
    'LiveRestoreEnabled': False, 'CgroupVersion': '1', 'CgroupDriver': 'cgroupfs',
    'DockerRootDir': '/var/lib/docker', 'ExperimentalBuild': True, 'ServerVersion': '20.10.24+dfsg1',
    'ContainerdCommit': {'ID': '1.6.20~ds1-1+deb12u3', 'Expected': '1.6.20~ds1-1+deb12u3'},
    'RuncCommit': {'ID': '1.1.5+ds1-1+deb12u1', 'Expected': '1.1.5+ds1-1+deb12u1'},
}

# docker inspect of a counter container on this machine (abridged).
INSPECT = {
    'Id': 'bcd0a959206a90b3c5829e89e56655a9d65d91c8fd551e123c12e6a0a4167ee1',
    'Name': '/cr',
    'State': {'Status': 'running', 'Running': True, 'Paused': False, 'Pid': 18073,
              'StartedAt': '2026-11-29T15:28:18.007807796Z', 'FinishedAt': '2026-11-29T15:28:17.517024183Z'},
    'HostConfig': {'RestartPolicy': {'Name': 'no', 'MaximumRetryCount': 0}, 'NetworkMode': 'default',
                   'Privileged': False, 'Devices': []},
    'Config': {'Tty': False},
    'Mounts': [],
}

# btime of /proc/stat and the start of dockerd (pid 3397) on this machine.
BTIME = 1795965454
DOCKERD_STARTED = BTIME + 110.39  # 2026-11-29T15:19:24Z


def by_name(checks, name):
    found = [c for c in checks if c['name'] == name]
    assert len(found) == 1, (name, checks)
    return found[0]


def assert_shape(item):
    assert set(item) == {'name', 'status', 'detail', 'remedy'}
    assert item['status'] in ('pass', 'warn', 'fail')
    assert item['detail']
    if item['status'] == 'pass':
        assert item['remedy'] == ''
    else:
        assert item['remedy'], item


# -- summary ----------------------------------------------------------------------

def test_ready_only_without_fail():
    checks = [pf.check('a', 'pass', 'x'), pf.check('b', 'warn', 'y', 'z')]
    assert pf.count_statuses(checks) == (True, {'pass': 1, 'warn': 1, 'fail': 0})
    checks.append(pf.check('c', 'fail', 'y', 'z'))
    assert pf.count_statuses(checks) == (False, {'pass': 1, 'warn': 1, 'fail': 1})


def test_human_bytes():
    assert pf.human_bytes(512) == '512 B'
    assert pf.human_bytes(2625536) == '2.5 MiB'
    assert pf.human_bytes(84711612416) == '78.9 GiB'
    assert pf.human_bytes(3 * 1024 ** 4) == '3.0 TiB'


# -- kernel -----------------------------------------------------------------------

def test_kernel_config_parsed():
    options = pf.parse_kernel_config(KERNEL_CONFIG)
    assert options['CONFIG_CHECKPOINT_RESTORE'] == 'y'
    assert options['CONFIG_MEM_SOFT_DIRTY'] == 'n'
    assert options['CONFIG_LOCALVERSION'] == '-fc-v657'


def test_kernel_config_of_this_machine_passes_and_warns_soft_dirty():
    checks = pf.check_kernel_config(pf.parse_kernel_config(KERNEL_CONFIG), '/proc/config.gz', RELEASE)
    for item in checks:
        assert_shape(item)
    assert by_name(checks, 'kernel config')['status'] == 'pass'
    soft = by_name(checks, 'kernel CONFIG_MEM_SOFT_DIRTY')
    assert soft['status'] == 'warn' and 'pre-dump' in soft['detail']
    assert len(checks) == 2


def test_kernel_without_checkpoint_restore_fails():
    text = KERNEL_CONFIG.replace('CONFIG_CHECKPOINT_RESTORE=y', '# CONFIG_CHECKPOINT_RESTORE is not set')
    item = by_name(pf.check_kernel_config(pf.parse_kernel_config(text), '/boot/config-x', RELEASE), 'kernel config')
    assert item['status'] == 'fail'
    assert 'CONFIG_CHECKPOINT_RESTORE' in item['detail'] and 'CONFIG_CHECKPOINT_RESTORE' in item['remedy']


@pytest.mark.parametrize('option', ['CONFIG_NET_NS', 'CONFIG_PID_NS', 'CONFIG_UNIX_DIAG', 'CONFIG_INOTIFY_USER',
                                    'CONFIG_FHANDLE'])
def test_kernel_missing_required_option_fails(option):
    text = '\n'.join(line for line in KERNEL_CONFIG.splitlines() if not line.startswith(option + '='))
    item = by_name(pf.check_kernel_config(pf.parse_kernel_config(text), '/proc/config.gz', RELEASE), 'kernel config')
    assert item['status'] == 'fail'
    assert option in item['detail']


def test_kernel_module_counts_as_present():
    text = KERNEL_CONFIG.replace('CONFIG_PACKET_DIAG=y', 'CONFIG_PACKET_DIAG=m')
    item = by_name(pf.check_kernel_config(pf.parse_kernel_config(text), '/proc/config.gz', RELEASE), 'kernel config')
    assert item['status'] == 'pass'


def test_kernel_without_user_ns_only_warns():
    text = KERNEL_CONFIG.replace('CONFIG_USER_NS=y', '# CONFIG_USER_NS is not set')
    checks = pf.check_kernel_config(pf.parse_kernel_config(text), '/proc/config.gz', RELEASE)
    assert by_name(checks, 'kernel config')['status'] == 'pass'
    assert by_name(checks, 'kernel CONFIG_USER_NS')['status'] == 'warn'


def test_kernel_config_unreadable_warns():
    checks = pf.check_kernel_config(None, None, RELEASE)
    assert len(checks) == 1
    assert checks[0]['status'] == 'warn'
    assert '/boot/config-%s' % RELEASE in checks[0]['detail']
    assert 'modprobe configs' in checks[0]['remedy']


# -- CRIU -------------------------------------------------------------------------


def test_criu_installed():
    item = pf.check_criu_installed('/usr/local/sbin/criu', SERVICE_PATH.split(':'), None)
    assert item['status'] == 'pass' and '/usr/local/sbin:/usr/local/bin' in item['detail']
    item = pf.check_criu_installed(None, SERVICE_PATH.split(':'), None)
    assert item['status'] == 'fail' and 'cryo.docker.criu' in item['remedy']
    item = pf.check_criu_installed(None, [], '/opt/criu')
    assert item['status'] == 'fail' and '/opt/criu' in item['detail']
    assert pf.check_criu_installed('/opt/criu', [], '/opt/criu')['status'] == 'pass'


def test_criu_check_good():
    item = pf.check_criu_run('/usr/local/sbin/criu', parse_check(*CRIU_421_CHECK))
    assert_shape(item)
    assert item['status'] == 'pass'


def test_criu_check_old_criu_fails_with_its_errors():
    item = pf.check_criu_run('/usr/sbin/criu', parse_check(*CRIU_3171_CHECK))
    assert_shape(item)
    assert item['status'] == 'fail'
    assert 'Unexpected rt vDSO area bounds' in item['detail']


def test_criu_check_zero_exit_without_looks_good_fails():
    item = pf.check_criu_run('/usr/sbin/criu', parse_check(0, '', 'Error (criu/cr-check.c:1): something\n'))
    assert item['status'] == 'fail'


def test_criu_check_warnings_warn():
    item = pf.check_criu_run('/usr/local/sbin/criu', parse_check(*CRIU_WARN_CHECK))
    assert_shape(item)
    assert item['status'] == 'warn' and 'Dirty tracking' in item['detail']


@pytest.mark.parametrize('version, kernel, status', [
    ('4.2.1', RELEASE, 'pass'),
    ('4.2', '6.16.0', 'pass'),
    ('4.1.1', RELEASE, 'fail'),
    ('3.17.1', RELEASE, 'fail'),
    ('4.1', '6.13.2', 'pass'),
    ('4.0', '6.13.2', 'fail'),
    ('3.17.1', '6.1.0-28-amd64', 'pass'),
    ('3.17.1', '6.12.9', 'pass'),
])
def test_criu_version_against_kernel(version, kernel, status):
    item = pf.check_criu_version('/usr/sbin/criu', version, kernel)
    assert_shape(item)
    assert item['status'] == status
    if status == 'fail':
        assert 'cryo.docker.criu' in item['remedy'] and '/usr/local/sbin' in item['remedy']


def test_criu_version_unknown_fails():
    item = pf.check_criu_version('/usr/sbin/criu', None, RELEASE)
    assert item['status'] == 'fail' and 'Version:' in item['detail']


# -- engine -----------------------------------------------------------------------

def test_engine_components_from_version_and_info():
    parts = pf.engine_components(VERSION_20_10, INFO_20_10)
    assert parts == dict(engine='20.10.24+dfsg1', api_version='1.41', containerd='1.6.20~ds1', runc='1.1.5+ds1',
                         experimental=True, live_restore=False, cgroup_version='1', cgroup_driver='cgroupfs',
                         data_root='/var/lib/docker', storage_driver=None, image_store=None)


def test_engine_components_fall_back_to_info():
    version = {'Version': '19.03.13', 'ApiVersion': '1.40'}
    info = dict(INFO_20_10, ExperimentalBuild=False, ContainerdCommit={'ID': '1.4.12'}, RuncCommit={'ID': 'v1.0.0-rc92'})
    parts = pf.engine_components(version, info)
    assert parts['experimental'] is False
    assert parts['containerd'] == '1.4.12' and parts['runc'] == 'v1.0.0-rc92'


def test_engine_reachable():
    item = pf.check_engine_reachable('unix:///var/run/docker.sock', None, '20.10.24+dfsg1', '1.41')
    assert item['status'] == 'pass' and '20.10.24' in item['detail']
    item = pf.check_engine_reachable('unix:///run/nothing.sock', 'Cannot reach the Docker Engine: No such file')
    assert_shape(item)
    assert item['status'] == 'fail' and 'cryo.docker.engine' in item['remedy']


def test_experimental_off_fails_with_the_engine_role_as_remedy():
    assert pf.check_experimental('unix:///var/run/docker.sock', True)['status'] == 'pass'
    item = pf.check_experimental('unix:///run/cryo-preflight.sock', False)
    assert_shape(item)
    assert item['status'] == 'fail'
    assert 'cryo.docker.engine' in item['remedy'] and '"experimental": true' in item['remedy']


@pytest.mark.parametrize('version, status, needle', [
    ('20.10.24+dfsg1', 'pass', None),
    ('24.0.7', 'pass', None),
    ('25.0.0', 'fail', 'moby/moby#47456'),
    ('25.0.3', 'fail', '25.0.4'),
    ('25.0.3+dfsg1', 'fail', 'content digest'),
    ('25.0.4', 'pass', None),
    ('26.1.4', 'pass', None),
    ('27.5.1', 'pass', None),
    ('28.0.0', 'warn', 'checkpoint-restore/criu#2834'),
    ('28.5.2', 'warn', '/proc/0/ns/net'),
    ('29.1.3', 'warn', 'host network'),
])
def test_engine_versions_known_broken(version, status, needle):
    item = pf.check_engine_version(version)
    assert_shape(item)
    assert item['status'] == status
    if needle:
        assert needle in item['detail']
        assert 'Upgrade' in item['remedy'] or 'older than 28' in item['remedy']


RUNS, STOPPED = {'Running': True, 'Status': 'running'}, {'Running': False, 'Status': 'exited'}


@pytest.mark.parametrize('network, version, found, status, needle', [
    ('bridge', '20.10.24+dfsg1', None, 'pass', 'nothing known keeps'),
    ('default', '26.1.5+dfsg1', None, 'pass', 'nothing known keeps'),
    ('bridge', '28.5.2+dfsg4', None, 'fail', 'moby/moby#50750'),
    ('default', '29.1.3', None, 'fail', '/proc/0/ns/net'),
    ('none', '28.5.2', None, 'fail', 'network none'),
    ('backend', '28.5.2', True, 'fail', 'own network namespace (network backend)'),
    ('host', '28.5.2', None, 'pass', 'nothing known keeps'),
    ('bridge', '26.0.0', None, 'fail', '26.0.1'),
    ('host', '25.0.2', None, 'fail', 'content digest'),
    ('container:web-net', '28.5.2', RUNS, 'pass', 'web-net, which runs here'),
    ('container:web-net', '28.5.2', None, 'fail', 'web-net, whose network namespace it joins, does not exist'),
    ('container:web-net', '20.10.24', STOPPED, 'fail', 'is not running (exited)'),
    ('backend', '20.10.24', True, 'pass', 'Network backend exists here'),
    ('backend', '20.10.24', False, 'fail', 'Network backend does not exist on this engine'),
])
def test_restore_network(network, version, found, status, needle):
    item = pf.check_restore_network(network, version, found)
    assert_shape(item)
    assert item['name'] == 'restore network %s' % network
    assert (item['status'], needle in item['detail']) == (status, True), item


def test_restore_network_remedies_say_what_to_make():
    assert 'docker_network_holder' in pf.check_restore_network('container:web-net', '28.5.2', None)['remedy']
    assert 'older than 28' in pf.check_restore_network('bridge', '28.5.2', None)['remedy']
    assert 'docker network create backend' in pf.check_restore_network('backend', '20.10.24', False)['remedy']


def test_unrestorable_msg_is_its_detail_and_remedy():
    entry = pf.unrestorable('28.5.2', 'bridge')
    detail = pf.unrestorable_detail('28.5.2', 'bridge', entry)
    assert pf.unrestorable_msg('28.5.2', 'bridge', entry) == detail + ' ' + entry['remedy']
    assert detail.startswith('Docker Engine 28.5.2 cannot restore a container with its own network namespace')


def test_engine_version_unknown_warns():
    assert pf.check_engine_version(None)['status'] == 'warn'


@pytest.mark.parametrize('version, status', [
    ('1.6.20~ds1', 'pass'), ('1.5.0', 'pass'), ('1.7.27', 'pass'), ('2.1.5', 'pass'),
    ('1.4.12+azure-2', 'fail'), ('1.3.7', 'fail'), (None, 'warn'), ('unknown', 'warn'),
])
def test_containerd_version(version, status):
    item = pf.check_containerd_version(version)
    assert_shape(item)
    assert item['status'] == status
    if status == 'fail':
        assert 'start' in item['detail'] and 'zero' in item['detail']


# -- live-restore -----------------------------------------------------------------

def test_parse_timestamp():
    expected = datetime.datetime(2026, 11, 29, 15, 28, 18, tzinfo=datetime.timezone.utc).timestamp() + 0.007807796
    assert pf.parse_timestamp('2026-11-29T15:28:18.007807796Z') == pytest.approx(expected)
    assert pf.parse_timestamp('2026-11-29T16:28:18+01:00') == pytest.approx(expected - 0.007807796)
    assert pf.parse_timestamp('0001-01-01T00:00:00Z') is None
    assert pf.parse_timestamp('') is None
    assert pf.parse_timestamp('yesterday') is None


def test_live_restore_off_passes():
    item = pf.check_live_restore(False, None, [])
    assert item['status'] == 'pass'


def test_live_restore_names_containers_older_than_the_engine():
    engine = dict(pid=3397, started_at=DOCKERD_STARTED)
    containers = [
        dict(name='old-web', started_at=DOCKERD_STARTED - 3600),
        dict(name='new-worker', started_at=pf.parse_timestamp('2026-11-29T15:28:18.007807796Z')),
        dict(name='old-db', started_at=DOCKERD_STARTED - 60),
    ]
    item = pf.check_live_restore(True, engine, containers)
    assert_shape(item)
    assert item['status'] == 'warn'
    assert 'old-db, old-web' in item['detail'] and 'new-worker' not in item['detail']
    assert '3397' in item['detail'] and 'docker restart' in item['remedy']


def test_live_restore_on_all_new_passes():
    engine = dict(pid=3397, started_at=DOCKERD_STARTED)
    item = pf.check_live_restore(True, engine, [dict(name='a', started_at=DOCKERD_STARTED + 0.2)])
    assert item['status'] == 'pass'


def test_live_restore_on_engine_not_found_warns():
    assert pf.check_live_restore(True, None, [dict(name='a', started_at=1.0)])['status'] == 'warn'


# -- free space ---------------------------------------------------------------------

@pytest.mark.parametrize('free, memory, status', [
    (100 * 2 ** 30, 2625536, 'pass'),
    (300, 100, 'pass'),
    (299, 100, 'warn'),
    (200, 100, 'warn'),
    (199, 100, 'fail'),
    (0, 0, 'pass'),
])
def test_free_space_against_memory(free, memory, status):
    item = pf.check_free_space('/var/lib/docker', free, memory, 1)
    assert_shape(item)
    assert item['status'] == status
    if status != 'pass':
        assert '/var/lib/docker' in item['remedy']


def test_free_space_unmeasurable_warns():
    assert pf.check_free_space('/nowhere', None, 10, 1)['status'] == 'warn'


# -- containerd's temporary directory ---------------------------------------------------------

GiB = 1024 ** 3
# What _host.Host.containerd_tmpdir read on this machine (Debian 12, dockerd started directly): the managed
# containerd, nothing set in its environment, /tmp on the root file system.
TMPDIR_HERE = dict(path='/tmp', set_by=None, containerd_pid=22391, managed=True,
                   containerd_address='/var/run/docker/containerd/containerd.sock', exists=True, mount_point='/',
                   fstype='ext4', size=270553174016, free=76322934784)
# Debian 13 and Fedora: /tmp a tmpfs of half the RAM; Docker CE's system containerd (docker.service gives dockerd
# --containerd=/run/containerd/containerd.sock).
TMPDIR_TMPFS = dict(TMPDIR_HERE, managed=False, containerd_address='/run/containerd/containerd.sock',
                    mount_point='/tmp', fstype='tmpfs', size=4 * GiB, free=3 * GiB)


@pytest.mark.parametrize('tmpdir, largest, status, needle', [
    (TMPDIR_HERE, ('db', 8 * GiB), 'pass', 'on ext4 mounted on / (71.1 GiB free of 252.0 GiB); db, the largest'),
    (TMPDIR_HERE, None, 'pass', 'no running container counted.'),
    (TMPDIR_TMPFS, ('web', 3 * GiB), 'pass', 'the checkpoint takes that much RAM.'),
    (TMPDIR_TMPFS, ('db', 3 * GiB + 1), 'warn', 'its restore would fill the tmpfs, taking that much RAM, and fail.'),
    (dict(TMPDIR_HERE, free=GiB), ('db', 2 * GiB), 'warn', 'its restore would fill the file system and fail.'),
    (dict(TMPDIR_HERE, free=None), ('db', 2 * GiB), 'warn', 'its free space cannot be measured.'),
    (dict(TMPDIR_HERE, exists=False, set_by='TMPDIR', path='/srv/tmp'), None, 'fail',
     'in /srv/tmp (from its TMPDIR), which does not exist: every restore and every checkpoint'),
    (None, ('db', GiB), 'warn', 'The containerd serving the engine at unix:///var/run/docker.sock was not found'),
])
def test_containerd_tmpdir(tmpdir, largest, status, needle):
    item = pf.check_containerd_tmpdir('unix:///var/run/docker.sock', tmpdir, largest)
    assert_shape(item)
    assert item['name'] == 'containerd tmpdir' and item['status'] == status and needle in item['detail']
    if status != 'pass' and tmpdir and tmpdir['free'] is not None:
        assert 'engine_containerd_tmpdir of the cryo.docker.engine role' in item['remedy']


def test_containerd_tmpdir_says_whose_and_why():
    detail = pf.check_containerd_tmpdir('unix:///var/run/docker.sock', TMPDIR_TMPFS, ('db', 4 * GiB))['detail']
    assert detail.startswith('containerd (pid 22391, at /run/containerd/containerd.sock) unpacks every checkpoint')
    assert 'in /tmp (the default: neither XDG_RUNTIME_DIR nor TMPDIR is set in its environment)' in detail


def test_containerd_tmpdir_remedy_for_a_too_small_tmpfs():
    item = pf.check_containerd_tmpdir('unix:///var/run/docker.sock', TMPDIR_TMPFS, ('db', 5 * GiB))
    # 2 GiB short: a tmpfs of 4 GiB with 3 GiB free needs to grow to 6 GiB.
    assert item['remedy'].startswith('Give the tmpfs on /tmp at least 6.0 GiB, or point containerd\'s TMPDIR at')


def test_containerd_tmpdir_from_xdg_runtime_dir_says_to_remove_it_first():
    """containerd reads XDG_RUNTIME_DIR before TMPDIR: a TMPDIR alone would change nothing."""
    tmpdir = dict(TMPDIR_TMPFS, path='/run/user/0', set_by='XDG_RUNTIME_DIR', mount_point='/run/user/0',
                  size=GiB, free=GiB)
    item = pf.check_containerd_tmpdir('unix:///var/run/docker.sock', tmpdir, ('db', 2 * GiB))
    assert item['status'] == 'warn' and 'in /run/user/0 (from its XDG_RUNTIME_DIR)' in item['detail']
    assert item['remedy'].startswith('containerd takes XDG_RUNTIME_DIR before TMPDIR: remove it from containerd\'s '
                                     'environment (the unit or script that starts it), then Give the tmpfs')


# -- containers ---------------------------------------------------------------------

def kinds(mapping):
    return mapping.get


def container_checks(inspect, engine='20.10.24+dfsg1', live_restore=False, started=DOCKERD_STARTED, sources=None):
    checks = pf.check_container('cr', inspect, engine, live_restore, started, kinds(sources or {}))
    for item in checks:
        assert_shape(item)
    return checks


def test_plain_running_container_passes():
    checks = container_checks(INSPECT)
    assert all(c['status'] == 'pass' for c in checks), checks
    assert [c['name'] for c in checks] == ['container cr: running', 'container cr: restart policy',
                                           'container cr: network', 'container cr: mounts']


def test_missing_container_fails():
    checks = pf.check_container('nope', None, '20.10.24', False, None, kinds({}),
                                error='Container nope does not exist on the Docker Engine at unix:///x.')
    assert len(checks) == 1 and checks[0]['status'] == 'fail' and 'does not exist' in checks[0]['detail']


def test_stopped_container_fails_and_so_does_a_paused_one():
    stopped = copy.deepcopy(INSPECT)
    stopped['State'].update(Running=False, Status='exited')
    item = by_name(container_checks(stopped), 'container cr: running')
    assert item['status'] == 'fail' and 'exited' in item['detail'] and 'docker start cr' in item['remedy']
    paused = copy.deepcopy(INSPECT)
    paused['State'].update(Paused=True, Status='paused')
    item = by_name(container_checks(paused), 'container cr: running')  # docker_checkpoint refuses it
    assert item['status'] == 'fail' and 'paused' in item['detail'] and 'docker unpause cr' in item['remedy']


@pytest.mark.parametrize('policy', ['always', 'unless-stopped', 'on-failure'])
def test_restart_policy_will_be_held(policy):
    inspect = copy.deepcopy(INSPECT)
    inspect['HostConfig']['RestartPolicy']['Name'] = policy
    item = by_name(container_checks(inspect), 'container cr: restart policy')
    assert item['status'] == 'pass' and 'held' in item['detail'] and policy in item['detail']


def test_tty_is_reported_and_fine():
    inspect = copy.deepcopy(INSPECT)
    inspect['Config']['Tty'] = True
    assert by_name(container_checks(inspect), 'container cr: tty')['status'] == 'pass'


def test_privileged_warns():
    inspect = copy.deepcopy(INSPECT)
    inspect['HostConfig']['Privileged'] = True
    assert by_name(container_checks(inspect), 'container cr: privileged')['status'] == 'warn'


def test_host_network_warns():
    inspect = copy.deepcopy(INSPECT)
    inspect['HostConfig']['NetworkMode'] = 'host'
    item = by_name(container_checks(inspect), 'container cr: network')
    assert item['status'] == 'warn' and 'tcp-established' in item['detail']


@pytest.mark.parametrize('engine, network, status', [
    ('28.5.2', 'default', 'fail'),
    ('29.1.3', 'bridge', 'fail'),
    ('28.5.2', 'none', 'fail'),
    ('28.5.2', 'host', 'warn'),
    ('27.5.1', 'default', 'pass'),
])
def test_own_network_namespace_on_docker_28_29_fails(engine, network, status):
    inspect = copy.deepcopy(INSPECT)
    inspect['HostConfig']['NetworkMode'] = network
    item = by_name(container_checks(inspect, engine=engine), 'container cr: network')
    assert item['status'] == status
    if status == 'fail':
        assert 'checkpoint-restore/criu#2834' in item['detail']


def test_mounts_criu_cannot_handle():
    inspect = copy.deepcopy(INSPECT)
    inspect['Mounts'] = [
        {'Type': 'bind', 'Source': '/var/run/docker.sock', 'Destination': '/var/run/docker.sock', 'Propagation': 'rprivate'},
        {'Type': 'bind', 'Source': '/dev/kvm', 'Destination': '/dev/kvm', 'Propagation': 'rprivate'},
        {'Type': 'bind', 'Source': '/proc/sys/net', 'Destination': '/host/net', 'Propagation': 'rprivate'},
        {'Type': 'bind', 'Source': '/srv/shared', 'Destination': '/shared', 'Propagation': 'rshared'},
        {'Type': 'bind', 'Source': '/srv/data', 'Destination': '/data', 'Propagation': 'rprivate'},
        {'Type': 'volume', 'Name': 'v', 'Source': '/var/lib/docker/volumes/v/_data', 'Destination': '/v'},
        {'Type': 'tmpfs', 'Source': '', 'Destination': '/run'},
    ]
    inspect['HostConfig']['Devices'] = [{'PathOnHost': '/dev/fuse', 'PathInContainer': '/dev/fuse',
                                         'CgroupPermissions': 'rwm'}]
    sources = {'/var/run/docker.sock': 'socket', '/dev/kvm': 'char', '/srv/data': 'dir', '/srv/shared': 'dir'}
    item = by_name(container_checks(inspect, sources=sources), 'container cr: mounts')
    assert item['status'] == 'warn'
    detail = item['detail']
    assert 'bind-mounted socket (/var/run/docker.sock)' in detail
    assert 'host device (/dev/kvm)' in detail
    assert "host's /proc/sys/net" in detail
    assert 'rshared mount propagation' in detail
    assert '--device /dev/fuse' in detail
    assert '/data ' not in detail and '/v ' not in detail and '/run ' not in detail


def test_ordinary_bind_mounts_and_volumes_pass():
    inspect = copy.deepcopy(INSPECT)
    inspect['Mounts'] = [
        {'Type': 'bind', 'Source': '/srv/data', 'Destination': '/data', 'Propagation': 'rprivate'},
        {'Type': 'bind', 'Source': '/etc/app.conf', 'Destination': '/etc/app.conf', 'Propagation': 'rprivate'},
        {'Type': 'volume', 'Name': 'v', 'Source': '/var/lib/docker/volumes/v/_data', 'Destination': '/v'},
    ]
    sources = {'/srv/data': 'dir', '/etc/app.conf': 'file'}
    item = by_name(container_checks(inspect, sources=sources), 'container cr: mounts')
    assert item['status'] == 'pass' and '3 mount(s)' in item['detail']


def test_container_older_than_engine_with_live_restore_fails():
    inspect = copy.deepcopy(INSPECT)
    inspect['State']['StartedAt'] = '2026-11-29T14:00:00.5Z'
    item = by_name(container_checks(inspect, live_restore=True), 'container cr: engine restart')
    assert item['status'] == 'fail' and 'docker restart cr' in item['remedy']
    # The same container without live-restore, or started after the engine: no such check.
    assert not [c for c in container_checks(inspect, live_restore=False) if c['name'].endswith('engine restart')]
    assert not [c for c in container_checks(INSPECT, live_restore=True) if c['name'].endswith('engine restart')]


# -- engines that cannot restore (Docker 26.0.0, 28.x, 29.x; 25.0.0-25.0.3) ----------------------

@pytest.mark.parametrize('version, network, broken', [
    ('28.5.2+dfsg4', 'bridge', True), ('28.5.2+dfsg4', 'default', True), ('28.5.2', 'none', True),
    ('29.1.3', 'appnet', True), ('28.5.2', 'host', False), ('28.5.2', 'container:5f1e6b0a', False),
    ('26.0.0', 'bridge', True), ('26.0.1', 'bridge', False), ('26.1.5+dfsg1', 'bridge', False),
    ('27.5.1', 'bridge', False), ('25.0.3', 'host', True), ('25.0.3', 'container:x', True),
    ('25.0.4', 'bridge', False), ('20.10.24+dfsg1', 'default', False), (None, 'bridge', False),
])
def test_one_rule_says_what_the_engine_cannot_restore(version, network, broken):
    entry = pf.unrestorable(version, network)
    assert (entry is not None) is broken
    if broken:
        msg = pf.unrestorable_msg(version, network, entry)
        assert msg.startswith('Docker Engine %s cannot restore ' % version)
        assert entry['reference'] in msg and entry['remedy'] in msg


def test_own_network_namespace():
    assert pf.has_own_netns('bridge') and pf.has_own_netns('default') and pf.has_own_netns(None)
    assert pf.has_own_netns('none') and pf.has_own_netns('my-user-network')
    assert not pf.has_own_netns('host') and not pf.has_own_netns('container:abc')


def test_docker_26_0_0_warns_and_26_0_1_passes():
    item = pf.check_engine_version('26.0.0')
    assert item['status'] == 'warn' and '26.0.1' in item['detail'] and 'network holder' in item['remedy']
    assert pf.check_engine_version('26.0.1')['status'] == 'pass'


@pytest.mark.parametrize('engine', ['28.5.2+dfsg4', '20.10.24+dfsg1'])
def test_a_container_in_a_holder_namespace_passes_on_every_engine(engine):
    inspect = copy.deepcopy(INSPECT)
    inspect['HostConfig']['NetworkMode'] = 'container:5f1e6b0a8c2d'
    item = by_name(container_checks(inspect, engine=engine), 'container cr: network')
    assert item['status'] == 'pass' and 'network namespace of container 5f1e6b0a8c2d' in item['detail']


def test_own_netns_on_28_names_the_holder_remedy():
    item = by_name(container_checks(copy.deepcopy(INSPECT), engine='28.5.2+dfsg4'), 'container cr: network')
    assert item['status'] == 'fail' and 'cryo.docker.docker_network_holder' in item['remedy']


# /info of Docker 28.5.2 (Debian's docker.io 28.5.2+dfsg4) with the containerd image store, abridged.
INFO_28_5_CONTAINERD = {
    'ServerVersion': '28.5.2+dfsg4', 'Driver': 'overlayfs',
    'DriverStatus': [['driver-type', 'io.containerd.snapshotter.v1']],
    'ContainerdCommit': {'ID': ''}, 'RuncCommit': {'ID': 'v1.1.5-0-g1.1.5+ds1'},
    'DockerRootDir': '/var/lib/cryo-engines/cryo-28-5/data', 'LiveRestoreEnabled': False,
    'CgroupVersion': '1', 'CgroupDriver': 'cgroupfs',
}
VERSION_28_5 = {
    'Version': '28.5.2+dfsg4', 'ApiVersion': '1.51', 'MinAPIVersion': '1.24', 'Experimental': True,
    'Components': [{'Name': 'Engine', 'Version': '28.5.2+dfsg4'}, {'Name': 'containerd', 'Version': '2.1.9+unknown'},
                   {'Name': 'runc', 'Version': '1.1.5+ds1'}],
}


def test_docker_28_facts_are_read_right():
    parts = pf.engine_components(VERSION_28_5, INFO_28_5_CONTAINERD)
    assert parts['engine'] == '28.5.2+dfsg4' and parts['api_version'] == '1.51'
    assert parts['containerd'] == '2.1.9+unknown' and parts['runc'] == '1.1.5+ds1'
    assert parts['storage_driver'] == 'overlayfs' and parts['image_store'] == 'containerd'
    assert pf.check_containerd_version(parts['containerd'])['status'] == 'pass'
    # An empty containerd commit id (Docker 28.5.2's /info) and no version in /version: a warning, not a crash.
    parts = pf.engine_components({'Version': '28.5.2+dfsg4'}, INFO_28_5_CONTAINERD)
    assert parts['containerd'] is None
    assert pf.check_containerd_version(parts['containerd'])['status'] == 'warn'


def test_image_store():
    assert pf.image_store({'Driver': 'overlay2', 'DriverStatus': [['Backing Filesystem', 'extfs']]}) == 'graphdriver'
    assert pf.image_store(INFO_28_5_CONTAINERD) == 'containerd'
    assert pf.image_store({}) is None


def test_a_network_holder_passes_on_docker_28():
    """A holder is never checkpointed: its own namespace is no reason to fail it."""
    inspect = copy.deepcopy(INSPECT)
    inspect['Config']['Labels'] = {'cryo.docker.network-holder': 'true'}
    item = by_name(container_checks(inspect, engine='28.5.2+dfsg4'), 'container cr: network')
    assert item['status'] == 'pass' and 'never checkpointed' in item['detail']


# -- what CRIU cannot dump, seen in /proc before anything stops ------------------------------------

URING_FILES = [(4242, 'uring', '/dev/null'), (4242, 'uring', 'anon_inode:[io_uring]'),
               (4250, 'nginx', 'anon_inode:[eventpoll]')]
NO_SYS_RESOURCE = 0x1fffeffffff  # CapEff of root on this project's test bed: every capability but 24
ALL_CAPS = 0x1ffffffffff
NGINX_USERS = [(4300, 'nginx', (0, 0, 0, 0), (0, 0, 0, 0)), (4307, 'nginx', (33, 33, 33, 33), (33, 33, 33, 33))]
ROOT_USERS = [(4300, 'nginx', (0, 0, 0, 0), (0, 0, 0, 0))]


def running_inspect():
    return {'Id': 'abc', 'State': {'Running': True, 'Pid': 4242, 'Status': 'running'},
            'HostConfig': {'NetworkMode': 'bridge', 'RestartPolicy': {'Name': 'no'}}, 'Config': {}, 'Mounts': []}


def ending_in(checks, suffix):
    return [c for c in checks if c['name'].endswith(suffix)]


def test_io_uring_fails_the_container_with_a_remedy():
    found = pf.check_open_files('container u', URING_FILES)
    assert found['status'] == pf.FAIL
    assert 'uring (pid 4242)' in found['detail'] and 'io_uring' in found['detail'] and 'send_fds' in found['detail']
    assert 'nginx' not in found['detail']
    assert 'innodb_use_native_aio=0' in found['remedy']
    assert pf.check_open_files('container u', URING_FILES[:1] + URING_FILES[2:])['status'] == pf.PASS
    assert pf.undumpable_files([]) == []


def test_check_container_reads_open_files_only_when_given():
    def kind(_path):
        return None
    checks = pf.check_container('u', running_inspect(), '20.10.24', False, None, kind, open_files=URING_FILES)
    assert [c['status'] for c in ending_in(checks, ': open files')] == [pf.FAIL]
    assert not ending_in(pf.check_container('u', running_inspect(), '20.10.24', False, None, kind), ': open files')
    stopped = running_inspect()
    stopped['State'] = {'Running': False, 'Status': 'exited'}
    stopped_checks = pf.check_container('u', stopped, '20.10.24', False, None, kind, open_files=URING_FILES)
    assert not ending_in(stopped_checks, ': open files')


def test_processes_of_another_user_need_cap_sys_resource():
    refused = pf.check_process_users('container web', NGINX_USERS, NO_SYS_RESOURCE)
    assert refused['status'] == pf.FAIL
    assert 'nginx (pid 4307, uid 33)' in refused['detail'] and 'CAP_SYS_RESOURCE' in refused['detail']
    assert "Can't get rlimit" in refused['detail'] and 'user root;' in refused['remedy']
    assert pf.check_process_users('container web', NGINX_USERS, ALL_CAPS)['status'] == pf.PASS
    assert pf.check_process_users('container web', ROOT_USERS, NO_SYS_RESOURCE)['status'] == pf.PASS
    assert pf.check_process_users('container web', NGINX_USERS, None)['status'] == pf.PASS

    def kind(_path):
        return None
    checks = pf.check_container('web', running_inspect(), '20.10.24', False, None, kind, users=NGINX_USERS,
                                engine_caps=NO_SYS_RESOURCE)
    assert [c['status'] for c in ending_in(checks, ': process users')] == [pf.FAIL]
