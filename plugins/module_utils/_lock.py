# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""One operation on a container at a time: a checkpoint, a restore or a removal holds the container's lock
from its plan to its end, and a second one started meanwhile (another task, another run, another controller
on the same host) is refused, naming the run that holds it.

The lock is an flock(2) on a file of the container's own directory in the engine's data root
(containers/<id>/cryo-operation.lock, beside the restart policy a checkpoint holds), or, when those files are
not on this host (a remote engine), on /run/cryo.docker/<id>.lock. The kernel releases an flock when its
holder exits, however it exits: a run that is killed never leaves the container locked.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os

LOCK_FILE = 'cryo-operation.lock'
RUN_DIR = '/run/cryo.docker'


class Busy(Exception):
    """The container's lock is held by another operation; owner is what that one wrote in the file ({} if
    nothing yet)."""

    def __init__(self, path, owner):
        super().__init__(path)
        self.path = path
        self.owner = owner

    def describe(self):
        """The holder in words: 'a checkpoint cp1 by pid 1234 since 2026-01-01T00:00:00+00:00'."""
        owner = self.owner
        words = owner.get('operation') or 'an operation'
        if owner.get('checkpoint'):
            words += ' of checkpoint %s' % owner['checkpoint']
        if owner.get('pid'):
            words += ' by pid %s' % owner['pid']
        if owner.get('since'):
            words += ' since %s' % owner['since']
        return words


def lock_path(data_root, container_id, run_dir=RUN_DIR):
    """The container's lock file: in its directory of the data root when that is on this host, else in run_dir."""
    directory = os.path.join(data_root, 'containers', container_id)
    if os.path.isdir(directory):
        return os.path.join(directory, LOCK_FILE)
    return os.path.join(run_dir, container_id + '.lock')


class ContainerLock:
    """The lock of one container. acquire(operation, checkpoint) takes it or raises Busy; release() lets it go
    (so does the end of the process)."""

    def __init__(self, path):
        self.path = path
        self.fd = None

    def acquire(self, operation, checkpoint=None):
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise Busy(self.path, read_owner(self.path))
            raise
        owner = dict(pid=os.getpid(), operation=operation, checkpoint=checkpoint,
                     since=datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat())
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(owner, sort_keys=True) + '\n').encode(), 0)
        self.fd = fd
        return self

    def release(self):
        """Let it go; the owner's record is emptied first, so a reader never names a run that is over."""
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)
        finally:
            os.close(self.fd)  # closing the last descriptor of the open file releases the flock
            self.fd = None

    @property
    def held(self):
        return self.fd is not None


def read_owner(path):
    """What the holder of the lock at path wrote about itself; {} when nothing (yet) or unreadable."""
    try:
        with open(path, encoding='utf-8') as handle:
            data = json.loads(handle.read() or '{}')
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
