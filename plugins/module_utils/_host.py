# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection and its test bed only. It may change
# or go away at any time, without notice.

"""Facts about the engine's host, read from /proc, /sys and the file system: the one place that does.

Which dockerd serves an engine, the environment and PATH it runs with (runc inherits that PATH and
looks `criu` up on it), the OCI runtime binary and state root it uses, the containerd it talks to and
the temporary directory that containerd unpacks checkpoints in, `/proc/PID/stat`, a container's
memory, free space, address space randomisation, the kernel's configuration.

Pure parsers of recorded text come first; `Host` reads the live system through them. Only the
standard library is imported, so the test bed can load this file on its own.
"""

from __future__ import annotations

import collections
import gzip
import json
import os
import re
import socket
import stat

# The PATH a service manager gives dockerd (systemd's default, and root's on Debian): runc,
# started by containerd with dockerd's environment, finds `criu` on it.
SERVICE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock'
DEFAULT_EXEC_ROOT = '/var/run/docker'
DEFAULT_CONFIG_FILE = '/etc/docker/daemon.json'
# The containerd namespace dockerd runs its containers in.
ENGINE_NAMESPACE = 'moby'

# Options of dockerd that take a value, by the key daemon.json uses for them.
DOCKERD_VALUE_OPTIONS = {
    '--exec-root': 'exec-root', '--data-root': 'data-root', '--config-file': 'config-file',
    '--pidfile': 'pidfile', '-p': 'pidfile', '--host': 'hosts', '-H': 'hosts', '--containerd': 'containerd',
}
# Where the containerd that dockerd starts itself listens, under dockerd's exec root.
MANAGED_CONTAINERD_SOCKET = os.path.join('containerd', 'containerd.sock')


# -- parsers (pure) --------------------------------------------------------------------------------

class ProcStat(collections.namedtuple('ProcStat', 'comm state ppid starttime start_stack start_brk')):
    """The fields of /proc/PID/stat this collection uses (starttime in clock ticks since boot)."""

    __slots__ = ()

    @property
    def layout(self):
        """(start_stack, start_brk): where PID 1's stack and heap begin, kept exactly by a CRIU restore."""
        return self.start_stack, self.start_brk


def parse_proc_stat(text):
    """A ProcStat from the text of /proc/PID/stat; ValueError when it is not one.

    The command name (field 2) may hold spaces and parentheses: the other fields follow its last ')'.
    """
    text = text or ''
    close = text.rfind(')')
    if close < 0 or '(' not in text[:close]:
        raise ValueError('not a /proc/PID/stat line')
    comm = text[text.index('(') + 1:close]
    rest = text[close + 1:].split()
    if len(rest) < 45:
        raise ValueError('/proc/PID/stat has %d fields after the command, not at least 45' % len(rest))
    return ProcStat(comm=comm, state=rest[0], ppid=int(rest[1]), starttime=int(rest[19]),
                    start_stack=int(rest[25]), start_brk=int(rest[44]))


def parse_environ(data):
    """/proc/PID/environ (bytes, NUL separated) as a dict of str."""
    out = {}
    for entry in (data or b'').split(b'\0'):
        key, sep, value = entry.partition(b'=')
        if sep and key:
            out[key.decode('utf-8', 'replace')] = value.decode('utf-8', 'replace')
    return out


def path_from_environ(data):
    """The PATH in a /proc/PID/environ blob (bytes), or None."""
    return parse_environ(data).get('PATH')


def parse_boot_time(proc_stat_text):
    """The boot time (seconds since the epoch) from /proc/stat, or None."""
    match = re.search(r'^btime\s+(\d+)', proc_stat_text or '', re.MULTILINE)
    return int(match.group(1)) if match else None


def unix_socket_inodes(net_unix_text, socket_path):
    """Inodes of the listening unix sockets bound at socket_path, from /proc/net/unix."""
    wanted = {socket_path, os.path.realpath(socket_path)}
    inodes = set()
    for line in (net_unix_text or '').splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        path = fields[7]
        if (path in wanted or os.path.realpath(path) in wanted) and int(fields[3], 16) & 0x10000:
            inodes.add(fields[6])
    return inodes


def parse_vmrss(status_text):
    """VmRSS of /proc/PID/status in bytes (0 for kernel threads or if absent)."""
    match = re.search(r'^VmRSS:\s+(\d+)\s*kB', status_text or '', re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def parse_status_ids(status_text):
    """((real, effective, saved, fs uid), (... gid), effective capabilities as an int) from the text of
    /proc/PID/status; None for what it does not hold."""
    fields = dict(line.split(':', 1) for line in (status_text or '').splitlines() if ':' in line)
    uids = tuple(int(x) for x in fields.get('Uid', '').split()) or None
    gids = tuple(int(x) for x in fields.get('Gid', '').split()) or None
    caps = fields.get('CapEff', '').strip()
    return uids, gids, (int(caps, 16) if caps else None)


def cgroup_procs_path(proc_cgroup_text, cgroup_root='/sys/fs/cgroup'):
    """The cgroup.procs file of a process's memory cgroup (v1) or unified cgroup (v2)."""
    unified = None
    for line in (proc_cgroup_text or '').splitlines():
        parts = line.split(':', 2)
        if len(parts) != 3:
            continue
        if 'memory' in parts[1].split(','):
            return os.path.join(cgroup_root, 'memory', parts[2].lstrip('/'), 'cgroup.procs')
        if parts[0] == '0' and parts[1] == '':
            unified = os.path.join(cgroup_root, parts[2].lstrip('/'), 'cgroup.procs')
    return unified


class Mount(collections.namedtuple('Mount', 'point optional fstype source')):
    """One line of /proc/PID/mountinfo: mount point, optional fields ('shared:N', 'master:N' ...), file system
    type and source."""

    __slots__ = ()


def unescape_mount_field(field):
    """A mountinfo field with the kernel's octal escapes (\\040 space, \\011 tab, \\012 newline, \\134 backslash)
    undone."""
    return re.sub(r'\\([0-7]{3})', lambda match: chr(int(match.group(1), 8)), field)


def parse_mount_table(text):
    """[Mount] from the text of /proc/PID/mountinfo, in its order (a later mount on a point hides an earlier)."""
    mounts = []
    for line in (text or '').splitlines():
        fields = line.split()
        if '-' not in fields or len(fields) < 7:
            continue
        dash = fields.index('-')
        if len(fields) < dash + 3:
            continue
        mounts.append(Mount(point=unescape_mount_field(fields[4]), optional=fields[6:dash],
                            fstype=fields[dash + 1], source=unescape_mount_field(fields[dash + 2])))
    return mounts


def parse_mountinfo(text):
    """[(mount point, [optional fields])] from /proc/PID/mountinfo ('shared:N', 'master:N' ...)."""
    return [(mount.point, mount.optional) for mount in parse_mount_table(text)]


def mount_of(path, mounts):
    """The Mount that holds an absolute path (symbolic links not followed): the one on the longest mount point
    above it, the last of those on the same point; None when none is."""
    found, longest = None, -1
    for mount in mounts:
        point = mount.point.rstrip('/') or '/'
        if (point == '/' or path == point or path.startswith(point + '/')) and len(point) >= longest:
            found, longest = mount, len(point)
    return found


def go_temp_dir(environ):
    """(directory, the variable that set it) where a Go program's os.MkdirTemp(os.Getenv("XDG_RUNTIME_DIR"), ...)
    creates its directory: $XDG_RUNTIME_DIR when set, else os.TempDir(): $TMPDIR, else /tmp; the variable is
    None for /tmp."""
    for name in ('XDG_RUNTIME_DIR', 'TMPDIR'):
        if environ.get(name):
            return environ[name], name
    return '/tmp', None


def dockerd_options(argv):
    """The options of a dockerd command line that say where it keeps things, by their daemon.json key.

    {'exec-root': '/run/x', 'config-file': '/etc/x.json', 'hosts': ['unix:///run/x.sock'], ...}
    """
    out = {}
    args = list(argv or [])[1:]
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        name, sep, value = arg.partition('=')
        key = DOCKERD_VALUE_OPTIONS.get(name)
        if key is None:
            continue
        if not sep:
            if index >= len(args):
                break
            value = args[index]
            index += 1
        if key == 'hosts':
            out.setdefault('hosts', []).append(value)
        else:
            out[key] = value
    return out


def search_dirs(search_path):
    """The absolute directories of a PATH string or list, in order."""
    if isinstance(search_path, str):
        search_path = search_path.split(os.pathsep)
    return [directory for directory in (search_path or []) if directory and os.path.isabs(directory)]


def is_executable(path):
    return bool(path) and os.path.isfile(path) and os.access(path, os.X_OK)


def find_program(name, search_path, executable=is_executable):
    """The first executable `name` along search_path (a PATH string or a list of directories), or None."""
    for directory in search_dirs(search_path):
        candidate = os.path.join(directory, name)
        if executable(candidate):
            return candidate
    return None


def runtime_root(exec_root, runtime='runc', namespace=ENGINE_NAMESPACE):
    """The state root dockerd gives an OCI runtime: <exec-root>/runtime-<name>/<containerd namespace>."""
    return os.path.join(exec_root, 'runtime-' + runtime, namespace)


def task_bundle_dirs(data_root, exec_root, container_id, namespace=ENGINE_NAMESPACE):
    """Where containerd's runc shim may keep a container's task bundle (its CRIU work directory on restore,
    stats-restore included), for the containerd dockerd starts: under its data root or its exec root."""
    return [os.path.join(root, 'containerd', 'daemon', 'io.containerd.runtime.v2.task', namespace, container_id)
            for root in (data_root, exec_root) if root]


def unix_socket_path(docker_host):
    """The socket path of a unix:// docker_host, or None for any other kind of address."""
    if docker_host and docker_host.startswith('unix://'):
        return docker_host[len('unix://'):]
    return None


# -- the live host -----------------------------------------------------------------------------------

class Host:
    """Reads this host's /proc, /sys and file system; proc, sys_root, boot and run_root are for tests."""

    def __init__(self, proc='/proc', sys_root='/sys', boot='/boot', run_root='/run'):
        self.proc = proc
        self.sys_root = sys_root
        self.boot = boot
        self.run_root = run_root

    # -- processes

    def read(self, *parts, **kwargs):
        """Text (or bytes with binary=True) of a file under proc, or None when it cannot be read."""
        path = os.path.join(self.proc, *[str(part) for part in parts])
        try:
            if kwargs.get('binary'):
                with open(path, 'rb') as handle:
                    return handle.read()
            with open(path, errors='replace') as handle:
                return handle.read()
        except OSError:
            return None

    def pids(self):
        try:
            return sorted(int(entry) for entry in os.listdir(self.proc) if entry.isdigit())
        except OSError:
            return []

    def stat(self, pid):
        """The ProcStat of a process, or None when it is gone or unreadable."""
        try:
            return parse_proc_stat(self.read(pid, 'stat'))
        except ValueError:
            return None

    def alive(self, pid):
        """Whether a process exists and has not exited (a zombie has, only nobody reaped it yet)."""
        found = self.stat(pid) if pid else None
        return found is not None and found.state != 'Z'

    def comm(self, pid):
        return (self.read(pid, 'comm') or '').strip()

    def cmdline(self, pid):
        data = self.read(pid, 'cmdline', binary=True) or b''
        return [arg.decode('utf-8', 'replace') for arg in data.split(b'\0') if arg]

    def environ(self, pid):
        return parse_environ(self.read(pid, 'environ', binary=True))

    def cgroup(self, pid):
        return self.read(pid, 'cgroup') or ''

    def processes(self):
        """{pid: (ppid, command line as one string, /proc/PID/cgroup text)} of every process that has
        not exited (zombies left out)."""
        table = {}
        for pid in self.pids():
            found = self.stat(pid)
            if found is None or found.state == 'Z':
                continue
            table[pid] = (found.ppid, ' '.join(self.cmdline(pid)), self.cgroup(pid))
        return table

    def boot_time(self):
        return parse_boot_time(self.read('stat'))

    def started_at(self, pid):
        """When a process started, in seconds since the epoch; None when it cannot be told."""
        found = self.stat(pid)
        boot = self.boot_time()
        if found is None or boot is None:
            return None
        return boot + found.starttime / float(os.sysconf('SC_CLK_TCK'))

    # -- the engine's daemon

    def dockerd_pids(self):
        return [pid for pid in self.pids() if self.comm(pid) == 'dockerd']

    def find_dockerd(self, docker_host=DEFAULT_DOCKER_HOST):
        """The pid of the dockerd serving docker_host on this host, or None.

        For a unix:// docker_host, the process that holds its listening socket; for any other
        address, the only dockerd running here, if there is exactly one.
        """
        pids = self.dockerd_pids()
        socket_path = unix_socket_path(docker_host)
        if socket_path is None:
            return pids[0] if len(pids) == 1 else None
        return self.socket_holder(socket_path, pids)

    def socket_holder(self, socket_path, pids):
        """The first of pids that holds the listening unix socket bound at socket_path, or None."""
        targets = {'socket:[%s]' % inode for inode in unix_socket_inodes(self.read('net', 'unix'), socket_path)}
        for pid in pids if targets else []:
            fd_dir = os.path.join(self.proc, str(pid), 'fd')
            try:
                fds = os.listdir(fd_dir)
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink(os.path.join(fd_dir, fd)) in targets:
                        return pid
                except OSError:
                    continue
        return None

    def dockerd(self, docker_host=DEFAULT_DOCKER_HOST):
        """Facts about the dockerd serving docker_host, or None when it is not a process on this host.

        {pid, started_at, path (its PATH, None if unreadable), options (of its command line and
        configuration file), exec_root, config_file, containerd_address (the socket of the containerd it
        talks to: --containerd, "containerd" in its configuration file, else the one it starts itself under
        its exec root), managed_containerd (whether it starts that containerd itself)}
        """
        pid = self.find_dockerd(docker_host)
        if pid is None:
            return None
        options = dockerd_options(self.cmdline(pid))
        config_file = options.get('config-file', DEFAULT_CONFIG_FILE)
        config = read_json(config_file)
        exec_root = options.get('exec-root') or config.get('exec-root') or DEFAULT_EXEC_ROOT
        external = options.get('containerd') or config.get('containerd')
        address = unix_socket_path(external) or external or os.path.join(exec_root, MANAGED_CONTAINERD_SOCKET)
        return dict(pid=pid, started_at=self.started_at(pid), path=self.environ(pid).get('PATH'),
                    options=options, config_file=config_file, exec_root=exec_root, containerd_address=address,
                    managed_containerd=not external)

    def containerd_tmpdir(self, docker_host=DEFAULT_DOCKER_HOST):
        """Where the containerd serving the engine at docker_host unpacks the checkpoints it restores and
        writes those the engine takes, or None when that containerd is not a process on this host.

        containerd's task service makes that directory with os.MkdirTemp(os.Getenv("XDG_RUNTIME_DIR"),
        "ctrd-checkpoint"): in Create, the restore, which never removes it (containerd/containerd#10166),
        and in Checkpoint, without an image path (dockerd gives none), removed when the checkpoint is in
        the content store ("ctd-checkpoint" there in 1.6). containerd services/tasks/local.go, v1.6.20
        lines 167 and 554, v1.7.29 lines 187 and 582; plugins/services/tasks/local.go in 2.x, v2.2.1 lines
        195 and 574. An empty first argument is Go's os.TempDir(): $TMPDIR, else /tmp (go_temp_dir).
        dockerd starts the containerd it manages with its own environment, before it sets TMPDIR for itself
        to <data-root>/tmp (moby cmd/dockerd/daemon.go: initContainerd before daemon.NewDaemon).

        {path, set_by (XDG_RUNTIME_DIR, TMPDIR or None for the default /tmp), containerd_pid,
        containerd_address, managed (dockerd started that containerd), exists, mount_point, fstype, size and
        free (bytes, see fs_usage; None when unknown)}. The path is the one containerd's environment
        names, read through /proc/PID/root and /proc/PID/mountinfo, so in containerd's mount namespace.
        """
        dockerd = self.dockerd(docker_host) if unix_socket_path(docker_host) else None
        if dockerd is None:
            return None
        candidates = [pid for pid in self.pids() if self.comm(pid) == 'containerd']
        pid = self.socket_holder(dockerd['containerd_address'], candidates)
        if pid is None:
            return None
        path, set_by = go_temp_dir(self.environ(pid))
        seen = os.path.join(self.proc, str(pid), 'root', path.lstrip('/'))
        mount = mount_of(os.path.normpath(path), parse_mount_table(self.read(pid, 'mountinfo')))
        size, free = fs_usage(seen)
        return dict(path=path, set_by=set_by, containerd_pid=pid, containerd_address=dockerd['containerd_address'],
                    managed=dockerd['managed_containerd'], exists=os.path.isdir(seen),
                    mount_point=mount.point if mount else None, fstype=mount.fstype if mount else None,
                    size=size, free=free)

    def search_path(self, docker_host=None):
        """(PATH, where it comes from): the PATH runc searches for `criu`.

        runc runs under containerd, which dockerd starts with its own environment: the PATH of the
        dockerd serving docker_host (by default the host's main engine, else any running dockerd);
        with none running, or its environment unreadable, the PATH a service manager will give it.
        """
        candidates = [self.find_dockerd(docker_host or DEFAULT_DOCKER_HOST)]
        if not docker_host:
            candidates += self.dockerd_pids()
        for pid in candidates:
            path = self.environ(pid).get('PATH') if pid else None
            if path:
                return path, 'the running dockerd (pid %s)' % pid
        return SERVICE_PATH, 'the default service PATH (no running dockerd found)'

    def runtime(self, docker_host, runtime_path='runc', runtime_name='runc'):
        """The OCI runtime the engine at docker_host runs: {name, binary, root, dockerd_pid}.

        runtime_path is the engine's path for the runtime (its /info Runtimes entry); a bare name is
        looked up on dockerd's PATH, as containerd's shim does. The state root is where dockerd tells
        that runtime to keep its containers' state. Raises LookupError, with the reason, when the
        engine's daemon is not a process on this host.
        """
        dockerd = self.dockerd(docker_host)
        if dockerd is None:
            raise LookupError('the dockerd serving %s is not a process on this host' % docker_host)
        search_path = dockerd['path'] or SERVICE_PATH
        binary = runtime_path if os.path.isabs(runtime_path) else find_program(runtime_path, search_path)
        return dict(name=runtime_name, binary=binary, search_path=search_path, dockerd_pid=dockerd['pid'],
                    root=runtime_root(dockerd['exec_root'], runtime_name), exec_root=dockerd['exec_root'])

    # -- memory, space, kernel

    def kernel_release(self):
        return os.uname().release

    def init_system(self):
        """What a reboot goes through: PID 1's name, whether systemd runs the host (sd_booted: /run/systemd/system)
        and whether the D-Bus system bus answers (the `shutdown` ansible.builtin.reboot runs talks to logind
        through it; a stopped dbus.socket leaves its file behind)."""
        return dict(pid1=(self.read(1, 'comm') or '').strip() or None,
                    systemd=os.path.isdir(os.path.join(self.run_root, 'systemd', 'system')),
                    dbus=socket_answers(os.path.join(self.run_root, 'dbus', 'system_bus_socket')))

    def container_pids(self, pid, cgroup_root=None):
        """The pids (text) of every process in the container of pid: its cgroup's, pid always among them."""
        if not pid:
            return []
        procs_path = cgroup_procs_path(self.cgroup(pid), cgroup_root or os.path.join(self.sys_root, 'fs', 'cgroup'))
        pids = (read_text(procs_path) or '').split() if procs_path else []
        if str(pid) not in pids:
            pids.append(str(pid))
        return pids

    def container_memory(self, pid, cgroup_root=None):
        """Resident memory (bytes) of every process in the container of pid: the sum of their VmRSS."""
        return sum(parse_vmrss(self.read(p, 'status')) for p in self.container_pids(pid, cgroup_root))

    def capabilities(self, pid):
        """The effective capabilities of a process (an int, bit N is capability N), or None."""
        return parse_status_ids(self.read(pid, 'status'))[2]

    def container_users(self, pid, cgroup_root=None):
        """[(pid, command name, uids, gids)] of every process in the container of pid, as the host sees
        them (/proc/PID/status Uid and Gid: real, effective, saved, fs), sorted."""
        out = []
        for member in self.container_pids(pid, cgroup_root):
            uids, gids, _caps = parse_status_ids(self.read(member, 'status'))
            if uids and gids:
                out.append((int(member), self.comm(member), uids, gids))
        return sorted(out)

    def open_files(self, pid, cgroup_root=None):
        """[(pid, command name, target)] of the open files of every process in the container of pid,
        as /proc/PID/fd shows them (a path, 'socket:[N]', 'anon_inode:[io_uring]' ...), sorted."""
        out = []
        for member in self.container_pids(pid, cgroup_root):
            fd_dir = os.path.join(self.proc, member, 'fd')
            try:
                fds = os.listdir(fd_dir)
            except OSError:
                continue  # gone meanwhile, or not ours to read
            comm = self.comm(member)
            for fd in fds:
                try:
                    out.append((int(member), comm, os.readlink(os.path.join(fd_dir, fd))))
                except OSError:
                    continue
        return sorted(out)

    def cgroup_memory(self, pid, cgroup_root=None):
        """Memory charged to the memory cgroup of pid (cgroup v1 usage_in_bytes, v2 memory.current),
        in bytes; None when it cannot be read."""
        procs_path = cgroup_procs_path(self.cgroup(pid), cgroup_root or os.path.join(self.sys_root, 'fs', 'cgroup'))
        for name in ('memory.usage_in_bytes', 'memory.current'):
            text = read_text(os.path.join(os.path.dirname(procs_path), name)) if procs_path else None
            if text and text.strip().isdigit():
                return int(text)
        return None

    def mounts(self, pid='self'):
        """[(mount point, [optional fields such as 'shared:12'])] of a process's mount namespace."""
        return parse_mountinfo(self.read(pid, 'mountinfo'))

    def aslr_enabled(self):
        value = self.read('sys', 'kernel', 'randomize_va_space')
        return value is None or value.strip() != '0'

    def kernel_config(self, release):
        """(text, source) of the running kernel's configuration, from /proc/config.gz or
        /boot/config-<release>; (None, None) when neither reads."""
        path = os.path.join(self.proc, 'config.gz')
        try:
            with gzip.open(path, 'rt', errors='replace') as handle:
                text = handle.read()
            if text:
                return text, path
        except (OSError, EOFError):
            pass
        path = os.path.join(self.boot, 'config-%s' % release)
        text = read_text(path)
        return (text, path) if text else (None, None)

    def cgroup_version(self):
        """'2' when the host's cgroup root is a cgroup2 mount, '1' otherwise."""
        return '2' if os.path.exists(os.path.join(self.sys_root, 'fs', 'cgroup', 'cgroup.controllers')) else '1'


# -- the file system -------------------------------------------------------------------------------

def socket_answers(path, timeout=2.0):
    """Whether something accepts connections on the unix socket at path."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(timeout)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def read_text(path):
    try:
        with open(path, errors='replace') as handle:
            return handle.read()
    except OSError:
        return None


def read_json(path):
    """A JSON object file as a dict; {} when it is missing, unreadable or not an object."""
    text = read_text(path)
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def fs_usage(path):
    """(size, free bytes) of the file system holding path, as statvfs gives them (free: f_bavail, what a
    process without root's reserve may use); (None, None) when path cannot be measured."""
    try:
        vfs = os.statvfs(path)
    except OSError:
        return None, None
    return vfs.f_blocks * vfs.f_frsize, vfs.f_bavail * vfs.f_frsize


def free_space(path):
    """(measured path, free bytes) of the file system holding path (or its nearest existing parent)."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe) and probe != os.path.dirname(probe):
        probe = os.path.dirname(probe)
    return probe, fs_usage(probe)[1]


def source_kind(path):
    """What a mount source is: 'socket', 'char', 'block', 'dir', 'file', or None when it does not exist."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISSOCK(mode):
        return 'socket'
    if stat.S_ISCHR(mode):
        return 'char'
    if stat.S_ISBLK(mode):
        return 'block'
    if stat.S_ISDIR(mode):
        return 'dir'
    return 'file'
