# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""Restores at disk speed: the image-path restore.

The engine's restore tars the checkpoint into containerd's content store and containerd untars it into a
temporary directory before CRIU reads it (45-85 MB/s). containerd's runc shim has an option,
CriuImagePath, with which it restores a task in place from that directory instead (containerd
services/tasks/local.go, getRestorePath). Docker 23 and later pass a runtime's options from daemon.json
to the shim, and look a container's runtime up by its name at every start (moby daemon/runtime_unix.go).

So each container restored this way gets a runtime of its own, `cryo-restore-<12 hex digits>`, named in
the container when it is created (a container's runtime is fixed then), and a slot of its own in the
engine's data root, <data-root>/cryo-restore/<runtime>/: `images`, a symlink to the checkpoint, and `work`,
CRIU's work directory (restore.log, stats-restore). The runtime is in one of two states:

- armed: the shim runc.v2 with the options dockerd gives its stock runc (binary, state root, cgroup
  driver) plus CriuImagePath=<slot>/images and CriuWorkPath=<slot>/work: a start restores from images;
- plain: {"path": <the stock runc>}: dockerd's stock runc under another name, so the container starts
  afresh like any other, and its state is where the runtime path of a checkpoint looks for it.

A restore of a container arms its runtime, starts the container and disarms it whatever happened (no
container is left unable to start afresh); a warm container stays armed on its golden checkpoint until it
is turned back. Two restores at once never share a slot: the runtime is the container's own. Definitions
change in the engine's daemon.json (every other key kept), under a lock, and take effect on SIGHUP
(dockerd reloads its runtimes without a restart); the engine's reload event, which lists every runtime
with its path, confirms each change.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import signal
import time

from ansible_collections.cryo.docker.plugins.module_utils._checkpoint import ensure_private_dir, write_file, write_json
from ansible_collections.cryo.docker.plugins.module_utils._common import ModuleError
from ansible_collections.cryo.docker.plugins.module_utils._host import Host, read_json, read_text, unix_socket_path
from ansible_collections.cryo.docker.plugins.module_utils._lock import Busy, ContainerLock, lock_path

RUNTIME_PREFIX = 'cryo-restore-'
RUNTIME_RE = re.compile(r'^cryo-restore-[0-9a-f]{12}$')
SHIM = 'io.containerd.runc.v2'
SLOTS_DIR = 'cryo-restore'
SLOT_FILE = 'slot.json'
LOCK_FILE = '.daemon-json.lock'
# Docker 23.0 (Engine API 1.42) is the first to pass a runtime's options to containerd's shim.
MIN_API_VERSION = (1, 42)
RELOAD_TIMEOUT = 15.0
LOCK_TIMEOUT = 120.0

METHODS = ('auto', 'engine', 'image_path')


class Unavailable(Exception):
    """Why the image-path restore cannot be taken on this engine (a clause)."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class DefinitionRefused(ModuleError):
    """A runtime definition the engine did not take (the message says what to do)."""


def is_slot_runtime(name):
    return bool(name) and bool(RUNTIME_RE.match(name))


def slot_record(data_root, runtime):
    """The record of a container's image-path runtime in the engine's data root ({} when it has none)."""
    if not is_slot_runtime(runtime):
        return {}
    return read_json(os.path.join(data_root, SLOTS_DIR, runtime, SLOT_FILE))


def golden(record):
    """(checkpoint name, path) of the golden checkpoint a slot record names, or None when it is not a warm one's."""
    if record.get('mode') != 'warm':
        return None
    return record.get('checkpoint'), record.get('golden')


def new_runtime_name():
    return RUNTIME_PREFIX + os.urandom(6).hex()


def api_version_tuple(text):
    try:
        return tuple(int(part) for part in str(text).split('.')[:2])
    except ValueError:
        return (0, 0)


def armed_definition(base, slot):
    """The daemon.json runtime that restores every start from <slot>/images."""
    return {'runtimeType': SHIM, 'options': {
        'BinaryName': base['binary_name'], 'Root': base['root'], 'SystemdCgroup': base['systemd_cgroup'],
        'CriuImagePath': os.path.join(slot, 'images'), 'CriuWorkPath': os.path.join(slot, 'work')}}


def plain_definition(base):
    """The daemon.json runtime that is dockerd's stock runc under another name."""
    return {'path': base['binary_name']}


def event_time(nanoseconds):
    """A time (nanoseconds since the epoch) as the Engine API's events filter takes it: "SECONDS.NANOSECONDS" (moby
    reads the part after the dot as nanoseconds, so a float's fraction would be read wrong)."""
    return '%d.%09d' % divmod(nanoseconds, 1000000000)


def reload_paths(event):
    """{runtime name: path} from a daemon reload event (its "runtimes" attribute: "name:path name2: ...";
    a runtimeType runtime has an empty path)."""
    text = ((event.get('Actor') or {}).get('Attributes') or {}).get('runtimes') or ''
    out = {}
    for item in text.split():
        name, _sep, path = item.partition(':')
        out[name] = path
    return out


def reload_confirms(event, runtimes):
    """Whether a reload event shows every runtime of runtimes ({name: definition}) as defined."""
    paths = reload_paths(event)
    return all(name in paths and paths[name] == (definition.get('path') or '')
               for name, definition in runtimes.items())


def unavailable_reason(version, info, docker_host, dockerd, dockerd_argv=()):
    """Why the engine cannot restore through an image path (None when it can).

    version and info are the engine's /version and /info; dockerd is Host.dockerd() for docker_host, and
    dockerd_argv its command line."""
    api = api_version_tuple(version.get('ApiVersion'))
    if api < MIN_API_VERSION:
        return ('Docker %s passes no runtime options to containerd (Docker 23 and later do)'
                % version.get('Version', '(API %s)' % version.get('ApiVersion')))
    if unix_socket_path(docker_host) is None:
        return 'the engine at %s is remote: the image-path restore changes its daemon.json on its host' % docker_host
    if any('rootless' in option for option in info.get('SecurityOptions') or []):
        return 'the engine runs rootless'
    default = info.get('DefaultRuntime') or 'runc'
    path = ((info.get('Runtimes') or {}).get(default) or {}).get('path') or default
    if os.path.basename(path) != 'runc':
        return 'the engine\'s default runtime is %s (%s), not runc' % (default, path)
    if dockerd is None:
        return 'the dockerd serving %s is not a process on this host' % docker_host
    if any(arg.startswith('--add-runtime') for arg in dockerd_argv):
        return 'dockerd is started with --add-runtime, which its daemon.json runtimes would conflict with'
    return None


class Runtimes:
    """The image-path runtimes of one local engine: find() or Unavailable."""

    def __init__(self, engine, info, dockerd, host=None):
        self.engine = engine
        self.host = host or Host()
        self.dockerd = dockerd
        self.config_file = dockerd['config_file']
        self.data_root = info.get('DockerRootDir') or '/var/lib/docker'
        self.slots_root = os.path.join(self.data_root, SLOTS_DIR)
        default = info.get('DefaultRuntime') or 'runc'
        self.base = dict(
            binary_name=((info.get('Runtimes') or {}).get(default) or {}).get('path') or 'runc',
            root=os.path.join(dockerd['exec_root'], 'runtime-runc'),
            systemd_cgroup=info.get('CgroupDriver') == 'systemd')

    @classmethod
    def find(cls, engine, docker_host, host=None):
        host = host or Host()
        info = engine.info()
        dockerd = host.dockerd(docker_host) if unix_socket_path(docker_host) else None
        argv = host.cmdline(dockerd['pid']) if dockerd else ()
        reason = unavailable_reason(engine.version(), info, docker_host, dockerd, argv)
        if reason:
            raise Unavailable(reason)
        return cls(engine, info, dockerd, host)

    # -- slots

    def slot(self, name):
        return os.path.join(self.slots_root, name)

    def read_slot(self, name):
        """The slot's record ({} when there is none: not a runtime of this engine's slots)."""
        return slot_record(self.data_root, name)

    def write_slot(self, name, **record):
        slot = self.slot(name)
        data = dict(self.read_slot(name), runtime=name, **record)
        write_json(slot, SLOT_FILE, data)
        return data

    def make_slot(self, name, **record):
        slot = self.slot(name)
        ensure_private_dir(self.slots_root)
        os.mkdir(slot, 0o700)
        os.mkdir(os.path.join(slot, 'work'), 0o700)
        return self.write_slot(name, **record)

    def point(self, name, checkpoint_path):
        """<slot>/images -> checkpoint_path, swapped atomically, on disk before it is used."""
        slot = self.slot(name)
        tmp = os.path.join(slot, '.images-%d' % os.getpid())
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(checkpoint_path, tmp)
        os.rename(tmp, os.path.join(slot, 'images'))
        fd = os.open(slot, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def pointed(self, name):
        try:
            return os.readlink(os.path.join(self.slot(name), 'images'))
        except OSError:
            return None

    def stats(self, name):
        """CRIU's work directory of the runtime's restores (stats-restore, restore.log)."""
        return os.path.join(self.slot(name), 'work')

    def clear_stats(self, name):
        """No statistics of an earlier restore are taken for the next one's."""
        try:
            os.unlink(os.path.join(self.stats(name), 'stats-restore'))
        except OSError:
            pass

    # -- definitions

    def defined(self, name):
        """The runtime's definition in daemon.json now (None when it has none)."""
        return (read_json(self.config_file).get('runtimes') or {}).get(name)

    def arm(self, name):
        return self.define({name: armed_definition(self.base, self.slot(name))})

    def disarm(self, name):
        return self.define({name: plain_definition(self.base)})

    def left_armed(self, name, record, definition):
        """Whether a killed restore left this runtime armed: defined, not plain, and not a warm container's."""
        return golden(record) is None and definition not in (None, plain_definition(self.base))

    def settle(self, name):
        """Disarm the runtime of a container that is not warm, if a restore killed half-way left it armed; True
        when it did."""
        if not self.left_armed(name, self.read_slot(name), self.defined(name)):
            return False
        return self.disarm(name)

    def make_warm(self, name, checkpoint, path):
        """Every start of the runtime's container restores checkpoint (at path), its golden checkpoint."""
        self.point(name, path)
        self.write_slot(name, mode='warm', golden=path, checkpoint=checkpoint)
        self.arm(name)

    def make_cold(self, name):
        """The runtime's container starts afresh, like any other."""
        self.write_slot(name, mode='once', golden=None, checkpoint=None)
        self.disarm(name)

    def forget(self, name):
        """Remove the runtime from daemon.json and its slot (its container is gone)."""
        self.define({name: None})
        remove_slot(self.slot(name))

    def define(self, changes):
        """Set ({name: definition}) or remove ({name: None}) runtimes in daemon.json and have dockerd take them;
        True when anything changed. DefinitionRefused when the engine did not take them (daemon.json put back)."""
        with DaemonJsonLock(os.path.join(self.slots_root, LOCK_FILE)):
            text = read_text(self.config_file)
            if text is None and os.path.lexists(self.config_file):
                raise DefinitionRefused('%s cannot be read: the image-path restore does not rewrite it.'
                                        % self.config_file)
            existed = text is not None
            text = text or ''
            try:
                config = json.loads(text) if text.strip() else {}
            except ValueError as exc:
                raise DefinitionRefused('%s is not valid JSON (%s): the image-path restore does not rewrite it.'
                                        % (self.config_file, exc))
            if not isinstance(config, dict):
                raise DefinitionRefused('%s is not a JSON object: the image-path restore does not rewrite it.'
                                        % self.config_file)
            runtimes = dict(config.get('runtimes') or {})
            wanted = {name: value for name, value in changes.items() if value is not None}
            if all(runtimes.get(name) == value for name, value in changes.items()):
                return False
            for name, value in changes.items():
                if value is None:
                    runtimes.pop(name, None)
                else:
                    runtimes[name] = value
            config['runtimes'] = runtimes
            self.write_config(json.dumps(config, indent=2, sort_keys=True) + '\n')
            started = time.time_ns()
            try:
                os.kill(self.dockerd['pid'], signal.SIGHUP)
                self.wait_reload(started, wanted)
            except BaseException:
                self.put_back(text if existed else None)
                os.kill(self.dockerd['pid'], signal.SIGHUP)
                raise
            return True

    def put_back(self, text):
        """daemon.json as it was (None: there was none)."""
        if text is None:
            os.unlink(self.config_file)
        else:
            self.write_config(text)

    def write_config(self, text):
        directory, name = os.path.split(self.config_file)
        mode = None
        try:
            mode = os.stat(self.config_file).st_mode & 0o7777
        except OSError:
            os.makedirs(directory, 0o755, exist_ok=True)
        write_file(directory, name, text.encode())
        os.chmod(self.config_file, mode if mode is not None else 0o644)

    def wait_reload(self, since, runtimes):
        timeout = RELOAD_TIMEOUT
        deadline = time.monotonic() + timeout
        while True:
            # Up to now to the nanosecond: an `until` in the future holds the engine's answer until it comes.
            for event in self.engine.daemon_events(event_time(since - 1000000000), event_time(time.time_ns())):
                if (event.get('Action') == 'reload' and (event.get('timeNano') or 0) >= since
                        and reload_confirms(event, runtimes)):
                    return
            if time.monotonic() > deadline:
                raise DefinitionRefused(
                    'The Docker Engine did not take the runtime definition it was given in %s within %d s (no reload '
                    'event listing it after SIGHUP to dockerd pid %s): dockerd logs why. %s was put back as it was.'
                    % (self.config_file, timeout, self.dockerd['pid'], self.config_file))
            time.sleep(0.02)

    # -- upkeep

    def prune(self, exists):
        """Upkeep before a new slot: forget the slots of containers that are gone (exists(container_id) is False),
        and disarm the runtime a restore killed half-way left armed (not a warm container's, and only while no
        operation holds the container's lock): that container would restore at every start, and could not start at
        all once that checkpoint is removed. (forgotten, disarmed), runtime names."""
        if not os.path.isdir(self.slots_root):
            return [], []
        gone, armed = [], []
        plain = plain_definition(self.base)
        runtimes = read_json(self.config_file).get('runtimes') or {}
        for name in sorted(os.listdir(self.slots_root)):
            record = self.read_slot(name)
            container_id = record.get('container_id')
            if container_id and not exists(container_id):
                gone.append(name)
            elif (container_id and self.left_armed(name, record, runtimes.get(name))
                  and not busy(lock_path(self.data_root, container_id))):
                armed.append(name)
        changes = dict({name: None for name in gone}, **{name: plain for name in armed})
        if changes:
            self.define(changes)
            for name in gone:
                remove_slot(self.slot(name))
        return gone, armed


def busy(path):
    """Whether an operation holds the container lock at path now."""
    try:
        ContainerLock(path).acquire('a look at the container\'s runtime').release()
    except Busy:
        return True
    return False


def remove_slot(slot):
    shutil.rmtree(slot, ignore_errors=True)


class DaemonJsonLock:
    """An flock held while daemon.json is read, changed and reloaded (restores at once take turns)."""

    def __init__(self, path, timeout=LOCK_TIMEOUT):
        self.path = path
        self.timeout = timeout
        self.fd = None

    def __enter__(self):
        ensure_private_dir(os.path.dirname(self.path))
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN) or time.monotonic() > deadline:
                    os.close(self.fd)
                    raise
                time.sleep(0.05)

    def __exit__(self, *exc):
        os.close(self.fd)
        return False
