"""A Docker Engine in memory, for the modules' unit tests: no Docker, root or CRIU.

FakeEngine answers the calls of _engine.Engine that the modules make, keeps each container's state
(status, PID 1, restart policy) and writes checkpoints where the real engine does: a directory under
its data root (or a checkpoint_dir) with inventory.img, pstree.img and a CRIU mm-1.img made from the
recorded counter image, holding the memory layout of the process it froze. Every process gets a
/proc/PID/stat in a fake /proc: a restore gives back the layout in the checkpoint's mm-1.img, a cold
start a new one (as ASLR does), so the modules' resumed-or-fresh verification runs for real.

It fails the way the engine measured in ENVIRONMENT.md does: the raw answer (HTTP status and text)
goes through the real Engine._explain, so the modules see the sentences the real Engine gives.
Every call is recorded in `calls`; `changes()` lists the ones that change something.
"""

import copy
import hashlib
import json
import os
import shutil
import struct
import threading

import pytest

from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args

from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.module_utils import _lifecycle, _lock
from ansible_collections.cryo.docker.plugins.module_utils._common import CHECKPOINT_NAME_RE
from ansible_collections.cryo.docker.plugins.module_utils._engine import (TEMPORARY_SUFFIX, Engine, EngineError,
                                                                          count_retry, stale_content_digest,
                                                                          transient_reason)
from ansible_collections.cryo.docker.plugins.module_utils._host import Host

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures')
# Recorded on this project's test bed: the counter container's checkpoint image and its PID 1.
MM_IMAGE = os.path.join(FIXTURES, 'counter-mm-1.img')
PROC_STAT = os.path.join(FIXTURES, 'counter-proc-stat.txt')
LAYOUT = (140731690213136, 625864704)
DOCKER_HOST = 'unix:///run/fake-docker.sock'

RESTORES = threading.Lock()

# Calls that change the engine's state (the rest only read it).
CHANGES = ('create_checkpoint', 'delete_checkpoint', 'start_from_checkpoint', 'start', 'stop', 'set_restart_policy',
           'pause', 'unpause', 'kill')

# What CRIU writes when it cannot dump a connected TCP socket (CRIU 4.2.1, kernel 6.18), cut.
DUMP_LOG_ERRORS = (
    '(00.128639) Error (criu/sk-inet.c:200): inet: Connected TCP socket, consider using --tcp-established option.',
    '(00.128652) Error (criu/cr-dump.c:1545): Dump files (pid: 8076) failed with -1',
    '(00.129142) Error (criu/cr-dump.c:1975): Dumping FAILED.',
)
RESTORE_LOG_ERRORS = (
    '(00.051234) Error (criu/mount.c:1201): mnt: Unable to mount /proc/0/ns/net: No such file or directory',
    '(00.051301) Error (criu/cr-restore.c:2459): Restoring FAILED.',
)
LOG_NOISE = '(00.073436) Error (criu/util.c:1534): rlimit: Can\'t setup RLIMIT_NOFILE for self: Operation not permitted'


def read(path, mode='r'):
    with open(path, mode) as handle:
        return handle.read()


# -- CRIU's images and /proc text for a given memory layout ---------------------------------

def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def mm_image(layout):
    """An mm-1.img whose MmEntry holds only the stack and heap start (fields 5 and 6) of layout, behind the
    magics of the recorded counter image: all that the verification reads."""
    entry = _varint(5 << 3) + _varint(layout[0]) + _varint(6 << 3) + _varint(layout[1])
    return read(MM_IMAGE, 'rb')[:8] + struct.pack('<I', len(entry)) + entry


def proc_stat(pid, layout):
    """The recorded counter /proc/PID/stat for pid, with its stack and heap start set to layout."""
    text = read(PROC_STAT)
    close = text.rfind(')')
    rest = text[close + 1:].split()
    rest[25], rest[44] = str(layout[0]), str(layout[1])
    return '%d %s %s\n' % (pid, text[text.index('('):close + 1], ' '.join(rest))


# -- the engine -----------------------------------------------------------------------------

class Container:
    """What the engine knows about one container."""

    def __init__(self, name, cid, restart_policy='no', retries=0, labels=None, image='counter:1',
                 network='bridge', privileged=False, tty=False, mounts=None, devices=None, runtime=None):
        self.name = name
        self.runtime = runtime
        self.id = cid
        self.running = False
        self.status = 'created'
        self.pid = 0
        self.layout = None
        self.exit_code = 0
        self.error = ''
        self.started_at = '0001-01-01T00:00:00Z'
        self.restart_policy = dict(Name=restart_policy, MaximumRetryCount=retries)
        self.labels = labels or {}
        self.image = image
        self.network = network
        self.privileged = privileged
        self.tty = tty
        self.mounts = mounts or []
        self.devices = devices or []
        self.restart_pending = False
        self.state = {}  # inspect's State as recorded for a paused, restarting, dead or removing one (set_state)
        self.annotations = None  # HostConfig.Annotations (API 1.43), {} or None (an older engine has none)

    def inspect(self):
        state = dict(Status=self.status, Running=self.running, Paused=False, Restarting=False, Pid=self.pid,
                     ExitCode=self.exit_code, Error=self.error, StartedAt=self.started_at)
        state.update(self.state)
        return copy.deepcopy(dict(
            Id=self.id, Name='/' + self.name,
            State=state,
            HostConfig=dict(RestartPolicy=self.restart_policy, NetworkMode=self.network,
                            Privileged=self.privileged, Devices=self.devices, Runtime=self.runtime or 'runc',
                            Annotations=self.annotations),
            Config=dict(Image=self.image, Labels=self.labels, Tty=self.tty),
            NetworkSettings=dict(Networks={} if self.network.startswith('container:') else {
                'bridge' if self.network == 'default' else self.network: {}}),
            Mounts=self.mounts))


class FakeEngine(Engine):
    """An engine of API 1.41 (Docker 20.10.24, containerd 1.6.20) in experimental mode, in tmp_path.

    Knobs, all off by default, make it fail the way the real one does:
      checkpoint_error   'criu' (CRIU cannot dump; the message names criu-dump.log with Error lines), 'tcp' (the
                         same, unless runc.conf says tcp-established: an established TCP connection),
                         'transient' (a containerd error that names no log), or None
      failing            {container name: checkpoint_error}: only that container's checkpoint fails (a group's member)
      restore_failing    {container name: restore_error}: only that container's restore fails
      checkpoint_kills   a failed checkpoint leaves the container exited
      stuck_running      the container still runs after a checkpoint without leave_running
      restore_error      'criu': the restore is refused; its log is gone, runc.conf's log-file keeps one
      after_restore      'resumed' (PID 1 is the checkpointed process), 'fresh' (a new process) or 'exited'
      start_error        a message: a cold start fails with it
      transient          {'checkpoint' or 'restore': [engine answers]}: answers the real Engine retries (as
                         _engine.Engine's loop does: each counted in retried by its reason), then success
      containerd_copies  each restore leaves a copy of the checkpoint in tmpdir (containerd 1.6 does)
      hide_proc          processes get no /proc/PID/stat (the module is not on the engine's host)
      reported_root      the data root the engine reports, when its files are not on this host
      experimental, unreachable, live_restore, version_text, cgroup_version, list_error, ghosts,
      networks           the networks it has, by name (bridge, host and none)
    """

    def __init__(self, tmp_path):  # pylint: disable=super-init-not-called
        self.params = dict(docker_host=DOCKER_HOST, timeout=5)
        self.host = DOCKER_HOST
        self.timeout = 5
        self.client = _Client(self)
        self.root = str(tmp_path / 'docker')
        self.proc = str(tmp_path / 'proc')
        self.tmpdir = str(tmp_path / 'tmp')
        self.exec_root = str(tmp_path / 'run' / 'docker')
        self.runc_conf = str(tmp_path / 'etc' / 'criu' / 'runc.conf')
        self.persistent_log = str(tmp_path / 'var' / 'log' / 'criu' / 'runc-criu.log')
        for path in (self.root, self.tmpdir, os.path.join(self.proc, 'sys', 'kernel')):
            os.makedirs(path)
        with open(os.path.join(self.proc, 'sys', 'kernel', 'randomize_va_space'), 'w') as handle:
            handle.write('2\n')
        self.store = {}
        self.calls = []
        self.next_pid = 4000
        self.fresh_starts = 0
        self.restores = 0
        self.checkpoint_error = None
        self.failing = {}
        self.restore_failing = {}
        self.conf_seen = []  # /etc/criu/runc.conf (its text, None when absent) at each checkpoint and restore
        self.checkpoint_kills = False
        self.checkpoint_freezes = False  # a failed dump leaves the freezer on: the engine's runc says paused
        self.thaws_itself = False  # ... for a moment only: CRIU thaws it before the module's unpause comes
        self.stuck_running = False
        self.restore_error = None
        self.after_restore = 'resumed'
        self.start_error = None
        self.transient = {}
        self.containerd_copies = True
        self.hide_proc = False
        self.reported_root = None
        self.experimental = True
        self.unreachable = False
        self.live_restore = False
        self.version_text = '20.10.24'
        self.cgroup_version = '1'
        self.list_error = None
        self.ghosts = []
        self.networks = {'bridge': {}, 'host': {}, 'none': {}}

    # -- the test's side

    def make_container(self, name, cid, **kwargs):
        return Container(name, cid, **kwargs)

    def add(self, name, running=True, **kwargs):
        """A container; running ones run their first process, with the recorded counter's layout."""
        started_at = kwargs.pop('started_at', None)
        container = self.make_container(name, kwargs.pop('cid', None) or hashlib.sha256(name.encode()).hexdigest(),
                                        **kwargs)
        self.store[container.id] = container
        os.makedirs(os.path.join(self.root, 'containers', container.id))
        if running:
            self._run(container, LAYOUT)
        else:
            container.status, container.exit_code = 'exited', 0
        container.started_at = started_at or container.started_at
        return container

    def checkpoint_path(self, container, name, checkpoint_dir=None):
        return os.path.join(checkpoint_dir or store.engine_dir(self.root, container.id), name)

    def take(self, container, name, leave_running=False, checkpoint_dir=None, restart_policy=None, metadata=True):
        """A checkpoint as docker_checkpoint leaves it: taken, with its metadata (restart_policy recorded)."""
        self.create_checkpoint(container.id, name, leave_running, checkpoint_dir)
        container.restart_pending = False  # as if its policy had been held
        path = self.checkpoint_path(container, name, checkpoint_dir)
        if metadata:
            store.write_metadata(path, dict(
                checkpoint=name, container=container.name, container_id=container.id, image=container.image,
                created='2026-12-02T10:05:00+00:00', leave_running=leave_running, duration=0.2,
                restart_policy=restart_policy or dict(container.restart_policy)))
        self.calls = []
        self.conf_seen = []
        return path

    def start_fresh(self, container):
        """The container cold-started behind the modules' back (a restart policy, an operator)."""
        self._stop(container, 0)
        self._run(container)

    def changes(self):
        return [call for call in self.calls if call[0] in CHANGES]

    def called(self, name):
        return [call for call in self.calls if call[0] == name]

    def pid_layout(self, container):
        return Host(proc=self.proc).stat(container.pid).layout

    # -- processes

    def _run(self, container, layout=None):
        if layout is None:
            self.fresh_starts += 1
            layout = (LAYOUT[0] - 0x21000 * self.fresh_starts, LAYOUT[1] + 0x5000 * self.fresh_starts)
        self.next_pid += 1
        container.pid, container.layout = self.next_pid, layout
        container.running, container.status, container.exit_code, container.error = True, 'running', 0, ''
        container.started_at = '2026-12-02T10:%02d:00.000000000Z' % (self.next_pid % 60)
        if not self.hide_proc:
            os.makedirs(os.path.join(self.proc, str(container.pid)))
            with open(os.path.join(self.proc, str(container.pid), 'stat'), 'w') as handle:
                handle.write(proc_stat(container.pid, layout))

    def _stop(self, container, exit_code, error=''):
        if container.state.get('Paused'):  # a paused container that exits is not paused any more
            container.state = {key: value for key, value in container.state.items() if key not in ('Paused', 'Status')}
        if container.pid:
            shutil.rmtree(os.path.join(self.proc, str(container.pid)), ignore_errors=True)
        container.running, container.status, container.pid, container.layout = False, 'exited', 0, None
        container.exit_code, container.error = exit_code, error

    def _find(self, container):
        for entry in self.store.values():
            if container in (entry.id, entry.name) or (len(container) >= 12 and entry.id.startswith(container)):
                return entry
        return None

    def _get(self, container, checkpoint=None):
        found = self._find(container)
        if found is None:
            raise self._answer(404, 'No such container: %s' % container, container, checkpoint)
        return found

    def _answer(self, status, message, container, checkpoint=None):
        """A raw engine answer, explained as the real Engine explains it."""
        return self._explain(EngineError(message, status=status, engine_message=message), container, checkpoint)

    def _record(self, *call):
        self.calls.append(call)

    # -- engine

    def version(self):
        self._record('version')
        if self.unreachable:
            raise EngineError('Cannot reach the Docker Engine at %s: Error while fetching server API version: '
                              '(\'Connection aborted.\', FileNotFoundError(2, \'No such file or directory\')). '
                              'Check that dockerd is running and that docker_host points at its socket.' % self.host)
        return dict(Version=self.version_text, ApiVersion='1.41', MinAPIVersion='1.12', Os='linux', Arch='amd64',
                    KernelVersion='6.18.44-fc-v657', Experimental=self.experimental,
                    Components=[dict(Name='Engine', Version=self.version_text),
                                dict(Name='containerd', Version='1.6.20~ds1'),
                                dict(Name='runc', Version='1.1.5+ds1'),
                                dict(Name='docker-init', Version='0.19.0')])

    def info(self):
        self._record('info')
        return dict(DockerRootDir=self.reported_root or self.root, ServerVersion=self.version_text,
                    LiveRestoreEnabled=self.live_restore, CgroupVersion=self.cgroup_version, CgroupDriver='cgroupfs',
                    ExperimentalBuild=self.experimental, ContainerdCommit=dict(ID='1.6.20~ds1'),
                    RuncCommit=dict(ID='1.1.5+ds1'))

    # -- containers

    def inspect(self, container):
        self._record('inspect', container)
        return Engine.inspect(self, container)  # the real 404 sentence

    def find(self, container):
        self._record('find', container)
        found = self._find(container)
        return found.inspect() if found else None

    def network(self, name):
        self._record('network', name)
        return self.networks.get(name)

    def containers(self, all=True):  # pylint: disable=redefined-builtin
        self._record('containers', all)
        if self.list_error:
            raise EngineError(self.list_error, status=500, engine_message=self.list_error)
        out = [dict(Id=c.id, Names=['/' + c.name], State=c.status, Labels=dict(c.labels))
               for c in self.store.values() if all or c.running]
        # ghosts: ids listed as running that are gone (or stopped) by the time they are inspected
        return out + [dict(Id=ghost, Names=['/ghost'], State='running') for ghost in self.ghosts]

    def wait_stopped(self, container, timeout=None):
        self._record('wait_stopped', container)
        found = self._get(container)
        if found.running:
            raise EngineError('Container %s is still running %s seconds after the checkpoint.'
                              % (container, timeout or self.timeout))
        state = found.inspect()['State']
        if found.restart_pending:
            # dockerd cold-starts a container with restart policy always/unless-stopped right after it stops.
            found.restart_pending = False
            self._run(found)
        return state

    def wait_running(self, container, timeout=None):
        self._record('wait_running', container)
        return self._get(container).inspect()

    def set_restart_policy(self, container, policy):
        found = self._get(container)
        name = policy.get('Name') or 'no'
        retries = (policy.get('MaximumRetryCount') or 0) if name == 'on-failure' else 0
        self._record('set_restart_policy', found.id, name, retries)
        found.restart_policy = dict(Name=name, MaximumRetryCount=retries)

    def start(self, container):
        found = self._get(container)
        self._record('start', found.id)
        if self.start_error:
            raise EngineError(self.start_error, status=500, engine_message=self.start_error)
        if not found.running:  # starting a running container is HTTP 304: nothing happens
            self._run(found)

    def stop(self, container, timeout=10):
        found = self._get(container)
        self._record('stop', found.id, timeout)
        if found.running:
            self._stop(found, 137)
        found.restart_pending = False  # a container stopped by hand is not restarted

    def pause(self, container):
        found = self._get(container)
        self._record('pause', found.id)
        if not found.running:
            raise self._answer(409, 'Container %s is not running' % found.id, container)
        found.state = dict(found.state, Paused=True, Status='paused')

    def kill(self, container, signal='SIGKILL'):
        """A SIGKILL: the container exits 137 (even when paused: dockerd thaws it to let it die), and dockerd does
        not restart it (a kill counts as stopped by hand)."""
        found = self._get(container)
        self._record('kill', found.id, signal)
        if not found.running:
            raise self._answer(409, 'Cannot kill container: %s: Container %s is not running' % (container, found.id),
                               container)
        self._stop(found, 137)
        found.restart_pending = False

    def unpause(self, container):
        found = self._get(container)
        self._record('unpause', found.id)
        if self.thaws_itself:
            found.state = {key: value for key, value in found.state.items() if key not in ('Paused', 'Status')}
        if not found.state.get('Paused'):
            raise self._answer(409, 'Container %s is not paused' % found.id, container)
        found.state = {key: value for key, value in found.state.items() if key not in ('Paused', 'Status')}

    # -- checkpoints

    def list_checkpoints(self, container, checkpoint_dir=None):
        self._record('list_checkpoints', container, checkpoint_dir)
        found = self._get(container)
        if found.state.get('Status') in ('dead', 'removing') and not checkpoint_dir:
            # Measured on Docker 20.10.24: a dead container's directory (its checkpoints with it) is partly removed.
            raise self._answer(500, 'checkpoint  does not exist for container %s' % found.id, container)
        base = checkpoint_dir or store.engine_dir(self.root, found.id)
        if not os.path.isdir(base):
            return []
        # As the real Engine.list_checkpoints: a checkpoint being written (a temporary name) is not listed; as
        # dockerd (os.ReadDir, DirEntry.IsDir): nor is a symbolic link, even to a directory.
        return sorted(name for name in os.listdir(base) if os.path.isdir(os.path.join(base, name))
                      and not os.path.islink(os.path.join(base, name))
                      and not name.startswith('.') and not name.endswith(TEMPORARY_SUFFIX))

    def _transient(self, operation, retried):
        """The transient answers the real Engine would have retried before this call succeeded, counted."""
        for message in self.transient.pop(operation, []):
            count_retry(retried, transient_reason(message))

    def create_checkpoint(self, container, checkpoint, leave_running=False, checkpoint_dir=None,
                          retries=3, delay=1.0, retried=None):
        self._record('create_checkpoint', container, checkpoint, leave_running, checkpoint_dir)
        self._transient('checkpoint', retried)
        found = self._get(container, checkpoint)
        if not found.running:
            raise self._answer(500, 'Container %s not running' % container, container, checkpoint)
        if not CHECKPOINT_NAME_RE.match(checkpoint):
            raise self._answer(500, 'Invalid checkpoint ID (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed'
                               % checkpoint, container, checkpoint)
        path = self.checkpoint_path(found, checkpoint, checkpoint_dir)
        if os.path.exists(path):
            raise self._answer(500, 'checkpoint with name %s already exists for container %s'
                               % (checkpoint, container), container, checkpoint)
        conf = self.see_conf()
        checkpoint_error = self.failing.get(found.name, self.checkpoint_error)
        if checkpoint_error == 'criu' or (checkpoint_error == 'tcp' and 'tcp-established' not in (
                conf or '').split()):
            log = os.path.join(self.exec_root, 'containerd', 'daemon', 'io.containerd.runtime.v2.task', 'moby',
                               found.id, 'criu-dump.log')
            os.makedirs(os.path.dirname(log))
            with open(log, 'w') as handle:
                handle.write('(00.000001) Version: 4.2.1 (gitid 0)\n%s\n%s\n' % (LOG_NOISE, '\n'.join(DUMP_LOG_ERRORS)))
            if self.checkpoint_freezes:
                found.state = dict(found.state, Paused=True, Status='paused')
            if self.checkpoint_kills:
                self._stop(found, 137)
            raise self._answer(500, 'Cannot checkpoint container %s: runc did not terminate successfully: exit '
                                    'status 1: criu failed: type NOTIFY errno 0 path= %s: unknown'
                               % (found.name, log), container, checkpoint)
        if checkpoint_error == 'full':
            # containerd 1.7's answer when its temporary directory fills up (the tar of CRIU's images there).
            raise self._answer(500, 'Cannot checkpoint container %s: failed to checkpoint: write /tmp/ctrd-checkpoint'
                                    '1234/pages-1.img: no space left on device: unknown' % found.name,
                               container, checkpoint)
        if checkpoint_error == 'transient':
            raise self._answer(500, 'failed to upload checkpoint to containerd: commit failed: content sha256:'
                                    '3f1a already exists', container, checkpoint)
        os.makedirs(path)
        for image, data in (('inventory.img', b'inventory of ' + found.id.encode()),
                            ('pstree.img', ('%s %s %d' % (found.id, checkpoint, found.pid)).encode()),
                            ('mm-1.img', mm_image(found.layout))):
            with open(os.path.join(path, image), 'wb') as handle:
                handle.write(data)
        if not leave_running and not self.stuck_running:
            self._stop(found, 137)
            found.restart_pending = found.restart_policy['Name'] in ('always', 'unless-stopped')
        return 1

    def see_conf(self):
        """runc.conf as runc reads it for this checkpoint or restore (what the fake's CRIU runs with), recorded."""
        try:
            conf = read(self.runc_conf)
        except OSError:
            conf = None
        self.conf_seen.append(conf)
        return conf

    def delete_checkpoint(self, container, checkpoint, checkpoint_dir=None):
        found = self._get(container, checkpoint)
        self._record('delete_checkpoint', found.id, checkpoint, checkpoint_dir)
        path = self.checkpoint_path(found, checkpoint, checkpoint_dir)
        if not os.path.isdir(path):
            raise self._answer(500, 'checkpoint %s does not exist for container /%s' % (checkpoint, found.name),
                               container, checkpoint)
        shutil.rmtree(path)

    def start_from_checkpoint(self, container, checkpoint, retried=None, retry_stale=True):
        found = self._get(container, checkpoint)
        self._record('start_from_checkpoint', found.id, checkpoint)
        waiting = self.transient.get('restore') or []
        if not retry_stale and waiting and stale_content_digest(waiting[0]):
            # The real Engine raises the content store's collision at once when told not to retry it.
            raise self._answer(500, waiting.pop(0), container, checkpoint)
        self._transient('restore', retried)
        if found.running:
            return 304  # the engine ignores a restore into a running container
        path = self.checkpoint_path(found, checkpoint)
        if not store.looks_like_checkpoint(path):
            raise self._answer(500, 'checkpoint %s does not exist for container /%s' % (checkpoint, found.name),
                               container, checkpoint)
        with RESTORES:  # a batch restores in threads: each copy a number of its own
            self.restores += 1
            number = self.restores
        self.see_conf()
        if self.containerd_copies:
            shutil.copytree(path, os.path.join(self.tmpdir, 'ctrd-checkpoint%d' % (81000 + number)))
        if self.restore_failing.get(found.name, self.restore_error) == 'criu':
            # The failed restore deletes its own log; the one runc.conf names stays.
            log = os.path.join(self.exec_root, 'containerd', 'daemon', 'io.containerd.runtime.v2.task', 'moby',
                               found.id, 'criu-restore.log')
            os.makedirs(os.path.dirname(self.persistent_log), exist_ok=True)
            with open(self.persistent_log, 'w') as handle:
                handle.write('%s\n%s\n' % (LOG_NOISE, '\n'.join(RESTORE_LOG_ERRORS)))
            os.makedirs(os.path.dirname(self.runc_conf), exist_ok=True)
            with open(self.runc_conf, 'w') as handle:
                handle.write('# Ansible managed\nlog-file %s\n' % self.persistent_log)
            raise self._answer(500, 'failed to create task for container: failed to create shim task: OCI runtime '
                                    'restore failed: criu failed: type RESTORE errno 0 path= %s: unknown' % log,
                               container, checkpoint)
        if self.after_restore == 'exited':
            self._run(found, store.checkpoint_layout(path))
            self._stop(found, 1, 'task exited right after the restore')
        elif self.after_restore == 'fresh':
            self._run(found)
        else:
            self._run(found, store.checkpoint_layout(path))
        return 204


class _Client:
    """The one docker SDK call the real Engine.inspect makes, so that its 404 sentence is the real one."""

    def __init__(self, engine):
        self.engine = engine

    def inspect_container(self, container):
        found = self.engine._find(container)
        if found is None:
            raise EngineError('No such container: %s' % container, status=404,
                              engine_message='No such container: %s' % container)
        return found.inspect()


# -- running a module -----------------------------------------------------------------------

class ProcessLock(_lock.ContainerLock):
    """A container's lock that the end of run_module releases, as the end of the module's process does (a run the
    test cuts with an exception never gets to release it itself)."""

    taken = []

    def acquire(self, operation, checkpoint=None):
        super().acquire(operation, checkpoint)
        self.taken.append(self)
        return self

    @classmethod
    def end_of_process(cls):
        while cls.taken:
            cls.taken.pop().release()


def run_module(capsys, module, args, check_mode=False, diff=False):
    """The result of module.main() for args, as Ansible reads it from the module's output. The run ends as the
    module's process does: whatever way it ends, the containers' locks it took are released."""
    args = dict(args)
    if check_mode:
        args['_ansible_check_mode'] = True
    if diff:
        args['_ansible_diff'] = True
    ansible_warnings._global_warnings.clear()
    kept, _lifecycle.ContainerLock = _lifecycle.ContainerLock, ProcessLock
    try:
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                module.main()
    finally:
        _lifecycle.ContainerLock = kept
        ProcessLock.end_of_process()
    return json.loads(capsys.readouterr().out)


def warnings_of(result):
    """Warning texts (ansible-core 2.19 returns them as WarningSummary objects)."""
    return [w['event']['msg'] if isinstance(w, dict) else w for w in result.get('warnings', [])]


def failed_clearly(result, start):
    """A failure with a sentence for a person: it starts as expected and is no traceback."""
    assert result.get('failed') is True, result
    assert result['msg'].startswith(start), result['msg']
    assert 'Traceback' not in result['msg'] and 'MODULE FAILURE' not in result['msg']
    return result['msg']
