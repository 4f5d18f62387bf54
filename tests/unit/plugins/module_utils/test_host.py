# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The host facts of _host on recorded /proc text and on fake /proc trees."""

from __future__ import annotations

import datetime
import gzip
import json
import os
import socket

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _host
from ansible_collections.cryo.docker.plugins.module_utils._host import Host

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures')
RELEASE = '6.18.44-fc-v657'
# The counter container's PID 1, recorded on this project's test bed, and its stack/heap start.
PROC_STAT = os.path.join(FIXTURES, 'counter-proc-stat.txt')
LAYOUT = (140731690213136, 625864704)

# /proc/3397/stat of dockerd and btime of /proc/stat on this machine.
DOCKERD_STAT = ('3397 (dockerd) S 1 3393 1084 0 -1 4194560 11860 171470 11 43 76 118 80 85 20 0 11 0 11039 '
                '1570406400 22108 18446744073709551615 94281420976128 94281448223189 140735028127072 0 0 0 '
                '1002055680 0 2143420159 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0')
BTIME = 1795965454
DOCKERD_STARTED = BTIME + 110.39  # 2026-11-29T15:19:24Z

PROC_NET_UNIX = """\
Num       RefCount Protocol Flags    Type St Inode Path
0000000033afe216: 00000003 00000000 00000000 0001 03  7593 /var/run/docker/containerd/containerd.sock
00000000e9a7f6e9: 00000002 00000000 00010000 0001 01  6902 /var/run/docker.sock
0000000011111111: 00000003 00000000 00000000 0001 03  7001 /var/run/docker.sock
0000000022222222: 00000002 00000000 00010000 0001 01  8100 /run/cryo-preflight.sock
"""

PROC_CGROUP_V1 = """\
9:name=systemd:/docker/bcd0a959206a
8:pids:/docker/bcd0a959206a
4:memory:/docker/bcd0a959206a
1:cpu:/docker/bcd0a959206a
0::/docker/bcd0a959206a
"""
PROC_CGROUP_V2 = '0::/system.slice/docker-bcd0a959206a.scope\n'
STATUS = 'Name:\tsh\nVmPeak:\t    1400 kB\nVmRSS:\t    1120 kB\nRssAnon:\t      96 kB\n'


def read(path):
    with open(path) as handle:
        return handle.read()


# -- /proc/PID/stat ------------------------------------------------------------------------------

def test_proc_stat_gives_the_memory_layout():
    assert _host.parse_proc_stat(read(PROC_STAT)).layout == LAYOUT


def test_proc_stat_with_spaces_and_parens_in_comm():
    text = read(PROC_STAT)
    head, rest = text.split(')', 1)
    odd = head.split('(')[0] + '(my (odd) name' + ')' + rest
    found = _host.parse_proc_stat(odd)
    assert found.layout == LAYOUT and found.comm == 'my (odd) name'


@pytest.mark.parametrize('text', ['', 'garbage', '12 (sh) S 1 2 3'])
def test_broken_proc_stat_is_an_error(text):
    with pytest.raises(ValueError):
        _host.parse_proc_stat(text)


def test_dockerd_start_time_from_proc(tmp_path):
    assert _host.parse_boot_time('cpu  1 2 3\nbtime %d\nprocesses 9\n' % BTIME) == BTIME
    (tmp_path / '3397').mkdir()
    (tmp_path / '3397' / 'stat').write_text(DOCKERD_STAT)
    (tmp_path / 'stat').write_text('cpu  1 2 3\nbtime %d\n' % BTIME)
    host = Host(proc=str(tmp_path))
    started = host.started_at(3397)
    assert started == pytest.approx(BTIME + 11039 / float(os.sysconf('SC_CLK_TCK')))
    if os.sysconf('SC_CLK_TCK') == 100:
        assert started == pytest.approx(DOCKERD_STARTED)
        assert datetime.datetime.fromtimestamp(int(started), datetime.timezone.utc).isoformat() == \
            '2026-11-29T15:19:24+00:00'
    # A command name with spaces and parentheses does not shift the fields.
    (tmp_path / '3397' / 'stat').write_text(DOCKERD_STAT.replace('(dockerd)', '(a) b (c)'))
    assert host.started_at(3397) == pytest.approx(started)
    assert host.started_at(4000) is None


def test_alive_tells_a_zombie_from_a_process(tmp_path):
    (tmp_path / '7').mkdir()
    (tmp_path / '7' / 'stat').write_text(DOCKERD_STAT.replace(' S 1 ', ' Z 1 '))
    (tmp_path / '8').mkdir()
    (tmp_path / '8' / 'stat').write_text(DOCKERD_STAT)
    host = Host(proc=str(tmp_path))
    assert not host.alive(7) and host.alive(8) and not host.alive(9) and not host.alive(None)


# -- dockerd, its PATH and its runtime -----------------------------------------------------------

def test_path_from_dockerd_environ():
    blob = b'HOME=/root\0PATH=/usr/local/sbin:/usr/sbin:/usr/bin\0DOCKER_HOST=x\0'
    assert _host.path_from_environ(blob) == '/usr/local/sbin:/usr/sbin:/usr/bin'
    assert _host.path_from_environ(b'HOME=/root\0') is None
    assert _host.parse_environ(blob)['DOCKER_HOST'] == 'x'


def test_unix_socket_inodes_only_listening_ones():
    assert _host.unix_socket_inodes(PROC_NET_UNIX, '/var/run/docker.sock') == {'6902'}
    assert _host.unix_socket_inodes(PROC_NET_UNIX, '/run/cryo-preflight.sock') == {'8100'}
    assert _host.unix_socket_inodes(PROC_NET_UNIX, '/run/none.sock') == set()


def test_dockerd_options_from_its_command_line():
    argv = ['dockerd', '--config-file', '/etc/x.json', '--exec-root=/run/x', '-H', 'unix:///run/x.sock',
            '--host=tcp://0.0.0.0:2376', '--iptables=false', '--pidfile', '/run/x.pid', '--data-root']
    assert _host.dockerd_options(argv) == {'config-file': '/etc/x.json', 'exec-root': '/run/x', 'pidfile': '/run/x.pid',
                                           'hosts': ['unix:///run/x.sock', 'tcp://0.0.0.0:2376']}
    assert _host.dockerd_options(['dockerd']) == {}
    assert _host.dockerd_options(['dockerd', '-H', 'fd://', '--containerd=/run/containerd/containerd.sock']) == {
        'hosts': ['fd://'], 'containerd': '/run/containerd/containerd.sock'}


def fake_dockerd(proc, pid, socket_inode, environ=b'PATH=/opt/bin:/usr/sbin\0', argv=(b'dockerd',)):
    """A dockerd in a fake /proc that holds the listening socket with that inode."""
    base = proc / str(pid)
    (base / 'fd').mkdir(parents=True)
    (base / 'comm').write_text('dockerd\n')
    (base / 'environ').write_bytes(environ)
    (base / 'cmdline').write_bytes(b'\0'.join(argv) + b'\0')
    (base / 'stat').write_text(DOCKERD_STAT.replace('3397', str(pid)))
    os.symlink('socket:[%s]' % socket_inode, str(base / 'fd' / '3'))


def test_the_dockerd_of_a_socket_and_its_runtime(tmp_path):
    proc = tmp_path / 'proc'
    (proc / 'net').mkdir(parents=True)
    (proc / 'net' / 'unix').write_text(PROC_NET_UNIX)
    (proc / 'stat').write_text('btime %d\n' % BTIME)
    config = tmp_path / 'daemon.json'
    config.write_text(json.dumps({'exec-root': '/run/from-config'}))
    fake_dockerd(proc, 34, '6902')
    fake_dockerd(proc, 56, '8100', environ=b'LANG=C\0',
                 argv=(b'dockerd', b'--exec-root', b'/run/cryo-preflight', b'--config-file', str(config).encode()))
    host = Host(proc=str(proc))
    assert host.find_dockerd('unix:///var/run/docker.sock') == 34
    assert host.find_dockerd('unix:///run/cryo-preflight.sock') == 56
    assert host.find_dockerd('unix:///run/none.sock') is None
    assert host.find_dockerd('tcp://10.0.0.1:2376') is None  # two dockerds here: cannot tell
    main = host.dockerd('unix:///var/run/docker.sock')
    assert main['pid'] == 34 and main['path'] == '/opt/bin:/usr/sbin'
    assert main['exec_root'] == _host.DEFAULT_EXEC_ROOT and main['started_at'] is not None
    second = host.dockerd('unix:///run/cryo-preflight.sock')
    assert second['exec_root'] == '/run/cryo-preflight' and second['path'] is None

    (proc / '34' / 'runc-dir').mkdir()
    runc = proc / '34' / 'runc-dir' / 'runc'
    runc.write_text('#!/bin/sh\n')
    runc.chmod(0o755)
    (proc / '34' / 'environ').write_bytes(b'PATH=%s:/usr/sbin\0' % str(runc.parent).encode())
    found = host.runtime('unix:///var/run/docker.sock')
    assert found['binary'] == str(runc) and found['root'] == '/var/run/docker/runtime-runc/moby'
    assert host.runtime('unix:///run/cryo-preflight.sock', '/usr/bin/runc')['root'] == \
        '/run/cryo-preflight/runtime-runc/moby'
    with pytest.raises(LookupError, match='not a process on this host'):
        host.runtime('unix:///run/none.sock')
    # The exec root from the configuration file when the command line does not say.
    (proc / '56' / 'cmdline').write_bytes(b'dockerd\0--config-file\0%s\0' % str(config).encode())
    assert host.dockerd('unix:///run/cryo-preflight.sock')['exec_root'] == '/run/from-config'


def test_search_path_reads_dockerd_environment(tmp_path):
    for pid, comm, environ in (('12', 'containerd\n', b'PATH=/wrong\0'),
                               ('34', 'dockerd\n', b'LANG=C\0PATH=/opt/bin:/usr/sbin\0')):
        (tmp_path / pid).mkdir()
        (tmp_path / pid / 'comm').write_text(comm)
        (tmp_path / pid / 'environ').write_bytes(environ)
    (tmp_path / 'self').mkdir()
    host = Host(proc=str(tmp_path))
    assert host.search_path() == ('/opt/bin:/usr/sbin', 'the running dockerd (pid 34)')
    (tmp_path / '34' / 'comm').write_text('bash\n')
    assert host.search_path() == (_host.SERVICE_PATH, 'the default service PATH (no running dockerd found)')


def test_find_program_follows_the_path_order(tmp_path):
    present = {'/usr/sbin/criu', '/usr/local/sbin/criu'}
    assert _host.find_program('criu', _host.SERVICE_PATH, present.__contains__) == '/usr/local/sbin/criu'
    assert _host.find_program('criu', _host.SERVICE_PATH.split(':'), {'/usr/sbin/criu'}.__contains__) == \
        '/usr/sbin/criu'
    assert _host.find_program('criu', _host.SERVICE_PATH, set().__contains__) is None
    assert _host.find_program('criu', 'relative/dir', present.__contains__) is None


# -- memory, space, kernel -----------------------------------------------------------------------

def test_container_memory_from_cgroup_procs():
    assert _host.parse_vmrss(STATUS) == 1120 * 1024
    assert _host.parse_vmrss('Name:\tkthreadd\n') == 0
    assert _host.cgroup_procs_path(PROC_CGROUP_V1, '/sys/fs/cgroup') == \
        '/sys/fs/cgroup/memory/docker/bcd0a959206a/cgroup.procs'
    assert _host.cgroup_procs_path(PROC_CGROUP_V2, '/sys/fs/cgroup') == \
        '/sys/fs/cgroup/system.slice/docker-bcd0a959206a.scope/cgroup.procs'


def test_container_memory_sums_the_cgroup(tmp_path):
    proc, cgroup = tmp_path / 'proc', tmp_path / 'cgroup'
    for pid, kb in (('100', 1000), ('101', 24)):
        (proc / pid).mkdir(parents=True)
        (proc / pid / 'status').write_text('VmRSS:\t%d kB\n' % kb)
    (proc / '100' / 'cgroup').write_text('4:memory:/docker/abc\n')
    (cgroup / 'memory' / 'docker' / 'abc').mkdir(parents=True)
    (cgroup / 'memory' / 'docker' / 'abc' / 'cgroup.procs').write_text('100\n101\n')
    host = Host(proc=str(proc))
    assert host.container_memory(100, str(cgroup)) == 1024 * 1024
    assert host.container_memory(0, str(cgroup)) == 0


def test_free_space_measures_nearest_existing_parent(tmp_path):
    path, free = _host.free_space(str(tmp_path / 'not' / 'yet'))
    assert path == str(tmp_path) and free > 0


def test_kernel_config_prefers_proc_then_boot(tmp_path):
    proc, boot = tmp_path / 'proc', tmp_path / 'boot'
    proc.mkdir()
    boot.mkdir()
    host = Host(proc=str(proc), boot=str(boot))
    assert host.kernel_config(RELEASE) == (None, None)
    (boot / ('config-' + RELEASE)).write_text('# CONFIG_CHECKPOINT_RESTORE is not set\n')
    text, source = host.kernel_config(RELEASE)
    assert source == str(boot / ('config-' + RELEASE)) and 'CONFIG_CHECKPOINT_RESTORE is not set' in text
    with gzip.open(str(proc / 'config.gz'), 'wt') as handle:
        handle.write('CONFIG_CHECKPOINT_RESTORE=y\n')
    text, source = host.kernel_config(RELEASE)
    assert source == str(proc / 'config.gz') and text == 'CONFIG_CHECKPOINT_RESTORE=y\n'


def test_aslr(tmp_path):
    (tmp_path / 'sys' / 'kernel').mkdir(parents=True)
    host = Host(proc=str(tmp_path))
    assert host.aslr_enabled()  # unreadable: assume on
    (tmp_path / 'sys' / 'kernel' / 'randomize_va_space').write_text('0\n')
    assert not host.aslr_enabled()


def test_source_kind_on_this_host(tmp_path):
    assert _host.source_kind('/dev/null') == 'char'
    assert _host.source_kind(str(tmp_path)) == 'dir'
    assert _host.source_kind(str(tmp_path / 'none')) is None
    plain = tmp_path / 'f'
    plain.write_text('x')
    assert _host.source_kind(str(plain)) == 'file'
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(tmp_path / 's.sock'))
        assert _host.source_kind(str(tmp_path / 's.sock')) == 'socket'
    finally:
        listener.close()


MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
95 22 254:0 /var/lib/cryo-fleet-1 /var/lib/cryo-fleet-1 rw shared:50 master:1 - ext4 /dev/vda rw
96 22 0:45 / /mnt/with\\040space rw - tmpfs tmpfs rw
"""


def test_mountinfo_gives_mount_points_and_propagation(tmp_path):
    assert _host.parse_mountinfo(MOUNTINFO) == [
        ('/', ['shared:1']), ('/var/lib/cryo-fleet-1', ['shared:50', 'master:1']), ('/mnt/with space', [])]
    (tmp_path / 'self').mkdir()
    (tmp_path / 'self' / 'mountinfo').write_text(MOUNTINFO)
    assert Host(proc=str(tmp_path)).mounts()[1][0] == '/var/lib/cryo-fleet-1'
    assert _host.parse_mountinfo('') == []


# /proc/22391/mountinfo of the managed containerd on this machine (Debian 12, / on ext4), its first lines, and the
# /tmp that systemd's tmp.mount gives Debian 13 and Fedora (a tmpfs of half the RAM), stacked on an older /tmp.
CONTAINERD_MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334792k,nr_inodes=3083698,mode=755
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683784k
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
"""
TMPFS_TMP = """\
60 27 0:40 / /tmp rw,nosuid,nodev shared:20 - ext4 /dev/vdb rw
61 60 0:41 / /tmp rw,nosuid,nodev,nr_inodes=1048576 shared:21 - tmpfs tmpfs rw,size=4005444k,nr_inodes=1048576,inode64
62 27 0:42 / /tmpx rw - tmpfs tmpfs rw
"""


def test_mount_table_gives_file_system_types_and_sources():
    mounts = _host.parse_mount_table(CONTAINERD_MOUNTINFO + MOUNTINFO)
    assert mounts[4] == _host.Mount(point='/', optional=[], fstype='ext4', source='/dev/vda')
    assert mounts[-1] == _host.Mount(point='/mnt/with space', optional=[], fstype='tmpfs', source='tmpfs')
    assert _host.parse_mount_table('22 1 254:0 / / rw - ext4\n') == []  # cut short: no source


@pytest.mark.parametrize('path, point, fstype', [
    ('/tmp', '/', 'ext4'), ('/var/lib/docker/tmp', '/', 'ext4'), ('/dev/shm/x', '/dev/shm', 'tmpfs'),
    ('/dev', '/dev', 'devtmpfs'),
])
def test_the_mount_that_holds_a_path(path, point, fstype):
    mount = _host.mount_of(path, _host.parse_mount_table(CONTAINERD_MOUNTINFO))
    assert (mount.point, mount.fstype) == (point, fstype)


def test_the_last_mount_on_a_point_hides_the_ones_below():
    mounts = _host.parse_mount_table(CONTAINERD_MOUNTINFO + TMPFS_TMP)
    assert _host.mount_of('/tmp', mounts).fstype == 'tmpfs'
    assert _host.mount_of('/tmp/ctrd-checkpoint123', mounts).source == 'tmpfs'
    assert _host.mount_of('/tmpfoo/x', mounts).point == '/'  # /tmp is no prefix of /tmpfoo
    assert _host.mount_of('/tmp', []) is None


def test_the_temporary_directory_of_a_go_program():
    """containerd: os.MkdirTemp(os.Getenv("XDG_RUNTIME_DIR"), ...), and os.TempDir() when that is empty."""
    assert _host.go_temp_dir({}) == ('/tmp', None)
    assert _host.go_temp_dir({'TMPDIR': '', 'XDG_RUNTIME_DIR': ''}) == ('/tmp', None)
    assert _host.go_temp_dir({'TMPDIR': '/var/lib/containerd-tmp'}) == ('/var/lib/containerd-tmp', 'TMPDIR')
    assert _host.go_temp_dir({'TMPDIR': '/x', 'XDG_RUNTIME_DIR': '/run/user/0'}) == ('/run/user/0', 'XDG_RUNTIME_DIR')


# /proc/net/unix with the listening sockets of dockerd, its managed containerd, Docker CE's system containerd.
NET_UNIX_CONTAINERD = """\
Num       RefCount Protocol Flags    Type St Inode Path
00000000e9a7f6e9: 00000002 00000000 00010000 0001 01  6902 /var/run/docker.sock
0000000033afe216: 00000002 00000000 00010000 0001 01  7593 /var/run/docker/containerd/containerd.sock
0000000044444444: 00000002 00000000 00010000 0001 01  7700 /run/containerd/containerd.sock
"""


def fake_containerd(proc, pid, socket_inode, environ, mountinfo, root):
    """A containerd in a fake /proc that listens on the socket with that inode; root: its /proc/PID/root."""
    base = proc / str(pid)
    (base / 'fd').mkdir(parents=True)
    (base / 'comm').write_text('containerd\n')
    (base / 'environ').write_bytes(environ)
    (base / 'mountinfo').write_text(mountinfo)
    os.symlink(str(root), str(base / 'root'))
    os.symlink('socket:[%s]' % socket_inode, str(base / 'fd' / '7'))


def test_the_tmpdir_of_the_containerd_dockerd_starts(tmp_path):
    proc, root = tmp_path / 'proc', tmp_path / 'root'
    (proc / 'net').mkdir(parents=True)
    (proc / 'net' / 'unix').write_text(NET_UNIX_CONTAINERD)
    (root / 'tmp').mkdir(parents=True)
    fake_dockerd(proc, 34, '6902')
    # This machine's containerd environment, in part: neither XDG_RUNTIME_DIR nor TMPDIR.
    fake_containerd(proc, 36, '7593', b'HOME=/root\0PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\0'
                    b'LANG=C.UTF-8\0', CONTAINERD_MOUNTINFO, root)
    # Another containerd (Docker CE's), on its own socket: not this engine's.
    fake_containerd(proc, 40, '7700', b'TMPDIR=/elsewhere\0', CONTAINERD_MOUNTINFO, root)
    host = Host(proc=str(proc))
    assert host.dockerd()['containerd_address'] == '/var/run/docker/containerd/containerd.sock'
    found = host.containerd_tmpdir()
    size, free = _host.fs_usage(str(root / 'tmp'))
    assert found == dict(path='/tmp', set_by=None, containerd_pid=36, managed=True,
                         containerd_address='/var/run/docker/containerd/containerd.sock', exists=True,
                         mount_point='/', fstype='ext4', size=size, free=free)
    assert size > 0 and free is not None

    # The containerd of another socket, or none: not found.
    assert host.containerd_tmpdir('unix:///run/none.sock') is None
    assert host.containerd_tmpdir('tcp://10.0.0.1:2376') is None
    os.unlink(str(proc / '36' / 'fd' / '7'))
    assert host.containerd_tmpdir() is None


@pytest.mark.parametrize('how', ['flag', 'config'])
def test_the_tmpdir_of_a_system_containerd(tmp_path, how):
    """Docker CE: docker.service runs dockerd --containerd=/run/containerd/containerd.sock; containerd.service has
    the drop-in of engine_containerd_tmpdir, and /tmp is a tmpfs."""
    proc, root = tmp_path / 'proc', tmp_path / 'root'
    (proc / 'net').mkdir(parents=True)
    (proc / 'net' / 'unix').write_text(NET_UNIX_CONTAINERD)
    (root / 'var' / 'lib' / 'containerd-tmp').mkdir(parents=True)
    config = tmp_path / 'daemon.json'
    config.write_text(json.dumps({'containerd': '/run/containerd/containerd.sock'}))
    argv = ((b'dockerd', b'-H', b'fd://', b'--containerd=/run/containerd/containerd.sock') if how == 'flag' else
            (b'dockerd', b'--config-file', str(config).encode()))
    fake_dockerd(proc, 34, '6902', argv=argv)
    fake_containerd(proc, 40, '7700', b'LANG=C.UTF-8\0PATH=/usr/bin\0TMPDIR=/var/lib/containerd-tmp\0INVOCATION_ID=7f\0',
                    CONTAINERD_MOUNTINFO + TMPFS_TMP, root)
    found = Host(proc=str(proc)).containerd_tmpdir()
    assert (found['containerd_pid'], found['managed'], found['containerd_address']) == (
        40, False, '/run/containerd/containerd.sock')
    assert (found['path'], found['set_by'], found['exists'], found['mount_point'], found['fstype']) == (
        '/var/lib/containerd-tmp', 'TMPDIR', True, '/', 'ext4')

    # Without the drop-in: /tmp, the tmpfs; and a TMPDIR that does not exist.
    (proc / '40' / 'environ').write_bytes(b'LANG=C.UTF-8\0')
    found = Host(proc=str(proc)).containerd_tmpdir()
    assert (found['path'], found['fstype'], found['mount_point'], found['exists']) == ('/tmp', 'tmpfs', '/tmp', False)
    assert found['size'] is None and found['free'] is None


def test_cgroup_memory_v1_and_v2(tmp_path):
    proc, cgroup = tmp_path / 'proc', tmp_path / 'cgroup'
    (proc / '100').mkdir(parents=True)
    (proc / '100' / 'cgroup').write_text('4:memory:/docker/abc\n')
    (cgroup / 'memory' / 'docker' / 'abc').mkdir(parents=True)
    host = Host(proc=str(proc))
    assert host.cgroup_memory(100, str(cgroup)) is None
    (cgroup / 'memory' / 'docker' / 'abc' / 'memory.usage_in_bytes').write_text('4096\n')
    assert host.cgroup_memory(100, str(cgroup)) == 4096
    (proc / '100' / 'cgroup').write_text('0::/system.slice/x.scope\n')
    (cgroup / 'system.slice' / 'x.scope').mkdir(parents=True)
    (cgroup / 'system.slice' / 'x.scope' / 'memory.current').write_text('8192\n')
    assert host.cgroup_memory(100, str(cgroup)) == 8192


def test_processes_leave_out_zombies(tmp_path):
    for pid, state in ((7, 'Z'), (8, 'S')):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / 'stat').write_text(DOCKERD_STAT.replace('3397', str(pid)).replace(' S 1 ', ' %s 1 ' % state))
        (tmp_path / str(pid) / 'cmdline').write_bytes(b'dockerd\0-H\0unix:///x\0')
        (tmp_path / str(pid) / 'cgroup').write_text('0::/\n')
    assert Host(proc=str(tmp_path)).processes() == {8: (1, 'dockerd -H unix:///x', '0::/\n')}


# /proc/PID/status of an nginx worker of Debian's configuration (user www-data) in a container, on a
# host whose root lacks CAP_SYS_RESOURCE (bit 24): recorded on this project's test bed.
WORKER_STATUS = ('Name:\tnginx\nUid:\t33\t33\t33\t33\nGid:\t33\t33\t33\t33\n'
                 'CapEff:\t0000000000000000\n')
DOCKERD_STATUS = 'Name:\tdockerd\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nCapEff:\t000001fffeffffff\n'


def test_status_ids_and_capabilities():
    assert _host.parse_status_ids(WORKER_STATUS) == ((33, 33, 33, 33), (33, 33, 33, 33), 0)
    uids, gids, caps = _host.parse_status_ids(DOCKERD_STATUS)
    assert uids == gids == (0, 0, 0, 0) and not caps & (1 << 24) and caps & (1 << 21)
    assert _host.parse_status_ids('') == (None, None, None)


def test_open_files_and_users_of_a_container(tmp_path):
    """A fake /proc of the io_uring test program (pid 100) and an nginx worker (pid 101) in one cgroup."""
    proc, cgroup = tmp_path / 'proc', tmp_path / 'cgroup'
    links = {'100': {'0': '/dev/null', '1': 'pipe:[258593]', '3': 'anon_inode:[io_uring]'},
             '101': {'5': 'socket:[31337]', '6': 'anon_inode:[eventpoll]'}}
    for pid, fds in links.items():
        (proc / pid / 'fd').mkdir(parents=True)
        for fd, target in fds.items():
            os.symlink(target, str(proc / pid / 'fd' / fd))
    (proc / '100' / 'comm').write_text('uring\n')
    (proc / '101' / 'comm').write_text('nginx\n')
    (proc / '100' / 'status').write_text(DOCKERD_STATUS.replace('dockerd', 'uring'))
    (proc / '101' / 'status').write_text(WORKER_STATUS)
    (proc / '100' / 'cgroup').write_text('4:memory:/docker/abc\n')
    (cgroup / 'memory' / 'docker' / 'abc').mkdir(parents=True)
    (cgroup / 'memory' / 'docker' / 'abc' / 'cgroup.procs').write_text('100\n101\n102\n')  # 102 is gone
    host = Host(proc=str(proc))
    assert host.open_files(100, str(cgroup)) == [
        (100, 'uring', '/dev/null'), (100, 'uring', 'anon_inode:[io_uring]'), (100, 'uring', 'pipe:[258593]'),
        (101, 'nginx', 'anon_inode:[eventpoll]'), (101, 'nginx', 'socket:[31337]')]
    assert host.container_users(100, str(cgroup)) == [
        (100, 'uring', (0, 0, 0, 0), (0, 0, 0, 0)), (101, 'nginx', (33, 33, 33, 33), (33, 33, 33, 33))]
    assert host.capabilities(101) == 0
    assert host.open_files(0, str(cgroup)) == []
