# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""CRIU options for one checkpoint or restore (tcp_established, tcp_close, file_locks, ext_unix_sk, link_remap,
manage_cgroups_mode), instead of the host-wide /etc/criu/runc.conf.

Why runc.conf, for one call, on every path: runc hands CRIU a configuration file at every checkpoint and restore
(libcontainer/criu_linux.go, handleCriuConfigurationFile): the container's `org.criu.config` annotation when it has
one, else /etc/criu/runc.conf; and CRIU lets that file override what runc asked over RPC (criu/cr-service.c). The
engine's API has no CRIU option at all (containerd's shim runs runc: the engine path, the image path's restore at a
plain start), and runc's own flags (the runtime path) lack tcp-close, and restore's lack link-remap. The annotation
is fixed when a container is created (and Docker 20.10 has none). So a call's options go where every path reads
them: runc.conf, for the length of the call -

- the host's lines kept, the call's options added (CRIU's own `no-<option>` turns off one the host's file sets),
  written atomically (a synced temporary file renamed), under an exclusive flock; put back exactly afterwards;
- a call without options of its own takes the lock shared, so that it never runs CRIU with another call's;
- within one process (the tasks of a batch), calls with the same options share one rewrite: the first takes the
  lock and writes the file, the others join it, and the last one out puts the host's file back - a batch with
  options runs its CRIU runs side by side, and a caller may hold the options around its tasks (calls with
  other options wait, as another process's do);
- before the file is changed, a record of the host's (its bytes, mode, owner, and what this call wrote) is synced
  beside it: a run killed in the middle leaves it, and the next call puts the host's file back first (unless the
  file was changed since by someone else: that one is then kept).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import errno
import fcntl
import hashlib
import json
import os
import threading
import time

from ansible_collections.cryo.docker.plugins.module_utils._archive import fsync_dir
from ansible_collections.cryo.docker.plugins.module_utils._common import ModuleError
from ansible_collections.cryo.docker.plugins.module_utils._criu import RUNC_CONF, conf_entry

# The module options, and CRIU's names for them (criu/config.c).
OPTIONS = ('tcp_established', 'tcp_close', 'file_locks', 'ext_unix_sk', 'link_remap', 'manage_cgroups_mode')
BOOLEANS = OPTIONS[:-1]
CGROUPS_MODES = ('soft', 'full', 'strict', 'ignore')  # runc's --manage-cgroups-mode choices
CRIU_NAMES = dict(tcp_established='tcp-established', tcp_close='tcp-close', file_locks='file-locks',
                  ext_unix_sk='ext-unix-sk', link_remap='link-remap', manage_cgroups_mode='manage-cgroups')
# CRIU's BOOL_OPT options have a no-<name> form; ext-unix-sk takes an optional value and has none.
NEGATABLE = ('tcp_established', 'tcp_close', 'file_locks', 'link_remap')

# The argument spec every module with these options shares (documented in the _criu_options doc fragment).
ARGUMENT_SPEC = dict({name: dict(type='bool') for name in BOOLEANS},
                     manage_cgroups_mode=dict(type='str', choices=list(CGROUPS_MODES)))
DEFAULTS = {name: None for name in OPTIONS}

CONF = RUNC_CONF
LOCK_FILE = '/run/cryo.docker/criu-runc-conf.lock'
RECORD_SUFFIX = '.cryo-host'  # /etc/criu/runc.conf.cryo-host: the host's file while a call's stands in for it
WAIT = 900  # seconds a call waits for another call's options to go


def given(params):
    """The options an operator (or a caller) gave: {name: value} without the ones left unset (None)."""
    return {name: params[name] for name in OPTIONS if params.get(name) is not None}


def check_recorded(value):
    """The options a checkpoint's metadata records, checked as untrusted input (an imported archive carries them):
    {name: value}, or ValueError saying what is wrong."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError('its recorded CRIU options are %r, not an object' % (value,))
    unknown = sorted(str(key) for key in value if key not in OPTIONS)
    if unknown:
        raise ValueError('its recorded CRIU options name %s, which is no CRIU option this collection passes (%s)'
                         % (', '.join(repr(key) for key in unknown), ', '.join(OPTIONS)))
    for name in BOOLEANS:
        if name in value and not isinstance(value[name], bool):
            raise ValueError('its recorded CRIU option %s is %r, not true or false' % (name, value[name]))
    mode = value.get('manage_cgroups_mode')
    if 'manage_cgroups_mode' in value and mode not in CGROUPS_MODES:
        raise ValueError('its recorded CRIU option manage_cgroups_mode is %r, not one of %s'
                         % (mode, ', '.join(CGROUPS_MODES)))
    return dict(value)


def line_option(raw):
    """(option name, value) a runc.conf line sets: ('tcp_established', True), ('file_locks', False) for
    no-file-locks, ('manage_cgroups_mode', 'full'); None for a comment, a blank line or another option."""
    entry = conf_entry(raw)
    if entry is None:
        return None
    key, value = entry
    for name, criu in CRIU_NAMES.items():
        if key == criu:
            if name == 'manage_cgroups_mode':
                return name, 'soft' if value is True else value
            return name, True
        if key == 'no-' + criu and name in NEGATABLE:
            return name, False
    return None


def effective(text):
    """The six options in force with a runc.conf (text; None when there is none): the last line wins, as with
    CRIU's getopt. {name: bool, manage_cgroups_mode: mode or None}."""
    found = dict({name: False for name in BOOLEANS}, manage_cgroups_mode=None)
    for raw in (text or '').splitlines():
        parsed = line_option(raw)
        if parsed:
            found[parsed[0]] = parsed[1]
    return found


def positive(options):
    """The options worth recording: the ones on, and a cgroups mode."""
    return {name: value for name, value in options.items() if value is not None and value is not False}


def merged(text, options):
    """runc.conf for one call: the host's lines (text) but those of the options the call sets, then the call's."""
    kept = [raw for raw in (text or '').splitlines() if (line_option(raw) or (None,))[0] not in options]
    lines = []
    for name in OPTIONS:
        if name not in options:
            continue
        value = options[name]
        if name == 'manage_cgroups_mode':
            lines.append('%s=%s' % (CRIU_NAMES[name], value))
        elif value:
            lines.append(CRIU_NAMES[name])
        elif name in NEGATABLE:
            lines.append('no-' + CRIU_NAMES[name])
    if not lines:
        return '\n'.join(kept) + ('\n' if kept else '')
    return '\n'.join(kept + ['# cryo.docker: the CRIU options of one call (pid %d), put back when it ends'
                             % os.getpid()] + lines) + '\n'


def sha256(data):
    return hashlib.sha256(data or b'').hexdigest()


def read_bytes(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


def write_atomic(path, data, mode=0o644, uid=None, gid=None):
    """Write bytes to path: a temporary file beside it, synced, given mode and owner, renamed over it."""
    directory = os.path.dirname(path)
    tmp = os.path.join(directory, '.%s.cryo-%d' % (os.path.basename(path), os.getpid()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            if uid is not None:
                os.fchown(handle.fileno(), uid, gid)
            os.fsync(handle.fileno())
        os.rename(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


# Calls of this process that share one rewrite: (conf, options) -> {owner: the CriuConfig that holds the lock (None
# while it takes it), count: the calls in it}.
_PROCESS = threading.Condition()
_SHARED = {}


class Busy(Exception):
    """The runc.conf lock stayed held by other calls for longer than the wait."""


class CriuConfig:
    """runc.conf for one call, as a context manager around the CRIU run (a checkpoint, a restore).

    options: the call's ({} for none); conf, lock_file and wait default to CONF, LOCK_FILE and WAIT. local: False
    when the engine is not on this host (nothing is done, nothing is locked). After __enter__: effective (the six in
    force), rewritten (whether the file was the call's), recovered (what a killed run's record led to: None, 'put
    back', 'kept'). A call nested in one with other options (one thread) waits for itself: give the same options."""

    def __init__(self, options, conf=None, lock_file=None, wait=None, local=True):
        self.options = dict(options or {})
        self.conf = conf or CONF
        self.record = self.conf + RECORD_SUFFIX
        self.lock_file = lock_file or LOCK_FILE
        self.wait = WAIT if wait is None else wait
        self.local = local
        self.fd = None
        self.rewritten = False
        self.recovered = None
        self.effective = None
        self.shared = None  # the key of _SHARED this call is counted in

    # -- the lock

    def flock(self, how):
        """Take (or convert to) the lock, waiting up to self.wait seconds."""
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self.fd, how | fcntl.LOCK_NB)
                return
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
            if time.monotonic() >= deadline:
                raise Busy(self.lock_file)
            time.sleep(0.1)

    def __enter__(self):
        if not self.local:
            return self
        if not self.options:
            self.acquire()
            return self
        key = (self.conf, tuple(sorted(self.options.items())))
        with _PROCESS:
            while key in _SHARED and _SHARED[key]['owner'] is None:
                _PROCESS.wait()
            entry = _SHARED.setdefault(key, dict(owner=None, count=0))
            entry['count'] += 1
            self.shared = key
            if entry['owner'] is not None:
                self.effective = entry['owner'].effective
                return self
        try:
            self.acquire()
        except BaseException:
            with _PROCESS:
                del _SHARED[key]
                _PROCESS.notify_all()
            self.shared = None
            raise
        with _PROCESS:
            entry['owner'] = self
            _PROCESS.notify_all()
        return self

    def __exit__(self, *_exc):
        if self.shared is None:
            self.finish()
            return False
        with _PROCESS:
            entry = _SHARED[self.shared]
            entry['count'] -= 1
            if entry['count'] == 0:
                del _SHARED[self.shared]
        self.shared = None
        if entry['count'] == 0:
            entry['owner'].finish()
        return False

    def acquire(self):
        """Take the lock (shared, or exclusive while the file is this call's), the host's file put back first if a
        killed run left its own."""
        os.makedirs(os.path.dirname(self.lock_file), 0o700, exist_ok=True)  # tasks of a batch race to it
        self.fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            self.flock(fcntl.LOCK_SH)
            # Under the shared lock no call has the file: a record is a killed run's, and the host's file goes back.
            if os.path.lexists(self.record) or self.needs_rewrite():
                self.flock(fcntl.LOCK_EX)
                self.recovered = self.put_back()
                if self.needs_rewrite():
                    self.write()
                else:
                    self.flock(fcntl.LOCK_SH)
            self.effective = effective((read_bytes(self.conf) or b'').decode('utf-8', 'replace'))
        except BaseException:
            self.release()
            raise

    def finish(self):
        """The host's file back if it was this call's, and the lock let go."""
        try:
            if self.rewritten:
                self.put_back()
        finally:
            self.release()

    def release(self):
        if self.fd is not None:
            os.close(self.fd)  # the flock goes with it
            self.fd = None

    # -- the file

    def host_text(self):
        data = read_bytes(self.conf)
        return None if data is None else data.decode('utf-8', 'replace')

    def needs_rewrite(self):
        """Whether the call's options change what CRIU would get from the host's file."""
        if not self.options:
            return False
        text = self.host_text()
        return effective(merged(text, self.options)) != effective(text)

    def write(self):
        """The record of the host's file first (synced), then the call's file in its place. A runc.conf that is a
        symbolic link (configuration management's) stays one: its target is what is written and put back."""
        target = os.path.realpath(self.conf)
        data = read_bytes(target)
        new = merged(None if data is None else data.decode('utf-8', 'replace'), self.options).encode('utf-8')
        record = dict(pid=os.getpid(), since=datetime.datetime.now(datetime.timezone.utc).isoformat(), path=target,
                      host=None if data is None else base64.b64encode(data).decode('ascii'), written=sha256(new))
        if data is not None:
            st = os.stat(target)
            record.update(mode=st.st_mode & 0o7777, uid=st.st_uid, gid=st.st_gid)
        os.makedirs(os.path.dirname(self.record), 0o755, exist_ok=True)
        os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)
        write_atomic(self.record, json.dumps(record).encode('utf-8'), mode=0o600)
        self.rewritten = True
        write_atomic(target, new, mode=record.get('mode', 0o644), uid=record.get('uid'), gid=record.get('gid'))

    def put_back(self):
        """The host's file back as the record has it, then the record gone (under the exclusive lock). None when
        there is no record; 'put back'; 'kept' when the file is no longer what the call wrote (changed since, by
        someone else: theirs stays)."""
        try:
            with open(self.record, 'rb') as handle:
                record = json.loads(handle.read().decode('utf-8'))
            host = record['host']
            host = None if host is None else base64.b64decode(host)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise
        except (ValueError, KeyError, TypeError):
            record = host = None
        outcome = 'kept'
        target = (record or {}).get('path') or self.conf
        current = read_bytes(target)
        if record is not None and current is not None and sha256(current) == record.get('written'):
            if host is None:
                os.unlink(target)
                fsync_dir(os.path.dirname(target))
            else:
                write_atomic(target, host, mode=record.get('mode', 0o644), uid=record.get('uid'),
                             gid=record.get('gid'))
            outcome = 'put back'
        os.unlink(self.record)
        fsync_dir(os.path.dirname(self.record))
        self.rewritten = False
        return outcome


def refuse_annotation(what, container_name, info, options):
    """A container whose org.criu.config annotation names another file than runc.conf (or none: runc then passes
    no file) never reads the per-call options: refused before anything is done."""
    annotations = (info.get('HostConfig') or {}).get('Annotations') or {}
    if not options or 'org.criu.config' not in annotations or annotations['org.criu.config'] == RUNC_CONF:
        return
    value = annotations['org.criu.config']
    raise ModuleError(
        '%s %s was not done, and nothing was changed: the container has the annotation org.criu.config=%r, so runc '
        'gives CRIU %s instead of %s, and the CRIU options of this call (%s), which go into %s, would not reach it. '
        'Put the options into that file instead, and run again without them.'
        % (what, container_name, value, 'that file' if value else 'no configuration file', RUNC_CONF,
           ', '.join(sorted(options)), RUNC_CONF), criu_config_annotation=value)


@contextlib.contextmanager
def held(conf, what, container_name, module):
    """conf (a CriuConfig) entered for a module's call: a lock held too long by others, or a runc.conf that cannot
    be written, become a ModuleError saying so; what a killed run's record led to becomes a warning."""
    try:
        conf.__enter__()
    except Busy:
        raise busy_error(what, container_name, conf.conf, conf.wait)
    except OSError as exc:
        raise ModuleError('%s %s was not done: %s could not be %s (%s). Check that path.'
                          % (what, container_name, conf.conf, 'written for the CRIU options of this call'
                             if conf.options else 'read', exc), runc_conf=conf.conf)
    try:
        if conf.recovered == 'put back':
            module.warn('A run killed while it held CRIU options of its own in %s left them there: the host\'s file '
                        'was put back first.' % conf.conf)
        elif conf.recovered == 'kept':
            module.warn('A run killed while it held CRIU options of its own in %s left its record (%s%s), but the file '
                        'was changed since: it was kept as it is. Check that it holds the options this host should '
                        'have.' % (conf.conf, conf.conf, RECORD_SUFFIX))
        yield conf
    finally:
        conf.__exit__(None, None, None)


def report(in_force, explicit, recorded):
    """What a module returns about the CRIU options of its call: criu_options (the ones in force: on, and a cgroups
    mode), criu_options_from (each one's source: operator, checkpoint - its metadata - or host - runc.conf)."""
    options = positive(in_force if in_force is not None else dict(recorded, **explicit))
    return dict(criu_options=options, criu_options_from={
        name: 'operator' if name in explicit else 'checkpoint' if name in recorded else 'host' for name in options})


def host_lacks(recorded, conf=None):
    """The recorded options (a checkpoint's) that the host's runc.conf does not give: what a restore started outside
    the collection (a warm container's start, docker start --checkpoint) would run without. {name: value}."""
    data = read_bytes(conf or CONF)
    host = effective(None if data is None else data.decode('utf-8', 'replace'))
    return {name: value for name, value in recorded.items() if host.get(name) != value}


def busy_error(what, container_name, conf=RUNC_CONF, wait=WAIT):
    """The error for a call that waited too long for another call's options to go."""
    return ModuleError(
        '%s %s was not done: for %d seconds other calls held %s with CRIU options of their '
        'own (cryo.docker.docker_checkpoint or docker_restore with tcp_established, file_locks, ...; the record '
        '%s%s names the one that has it now). Run again once they have finished.'
        % (what, container_name, wait, conf, conf, RECORD_SUFFIX), busy=True)


TCP_HINT = 'tcp-established'


def established_tcp_hint(errors, options):
    """A sentence for the msg when CRIU refused a dump for an established TCP connection, the call without
    tcp_established; '' otherwise."""
    if options.get('tcp_established') or not any(TCP_HINT in line for line in errors or ()):
        return ''
    return (' The container has established TCP connections, which CRIU checkpoints only with its tcp-established '
            'option: run again with tcp_established: true (the connections come back with the restore, where the '
            'peer still holds them), or close them first.')
