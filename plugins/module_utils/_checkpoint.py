# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""A checkpoint on disk: where it lives, what we record beside CRIU's images, and how to
tell that a container resumed it."""

from __future__ import annotations

import datetime
import glob
import json
import os
import re
import shutil
import tempfile

from ansible_collections.cryo.docker.plugins.module_utils._common import HELD_RESTART_POLICIES
from ansible_collections.cryo.docker.plugins.module_utils._criu import image_entry
from ansible_collections.cryo.docker.plugins.module_utils._host import Host

METADATA_FILE = 'cryo-checkpoint.json'
METADATA_FORMAT = 1


def engine_dir(data_root, container_id):
    """The engine's own checkpoint place for a container (the only one it restores from)."""
    return os.path.join(data_root, 'containers', container_id, 'checkpoints')


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def ensure_private_dir(path):
    """Create path, and each missing parent, as a 0700 directory: checkpoints hold process memory.
    True when something was created."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        return False
    ensure_private_dir(os.path.dirname(path))
    os.mkdir(path, 0o700)
    os.chmod(path, 0o700)
    return True


def read_metadata(path):
    try:
        with open(os.path.join(path, METADATA_FILE)) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_metadata(path, data):
    """Write the metadata file atomically, readable by root only."""
    write_json(path, METADATA_FILE, dict(data, format=METADATA_FORMAT))


def write_json(directory, name, data):
    """Write directory/name atomically (a temporary file renamed, synced first), readable by root only."""
    write_file(directory, name, json.dumps(data, indent=2, sort_keys=True).encode())


def write_file(directory, name, data):
    """Write bytes to directory/name atomically (a temporary file renamed, synced first), readable by root only."""
    fd, tmp = tempfile.mkstemp(prefix='.cryo-', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.rename(tmp, os.path.join(directory, name))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# The restart policy a checkpoint holds (sets "no") is written first beside the engine's own files of the container,
# and removed once a restore has put it back: a run cut between the hold and its checkpoint's metadata leaves it to
# the next run, which would otherwise read "no" as the container's policy.
HOLD_FILE = 'cryo-restart-policy-held.json'


def hold_path(data_root, container_id):
    return os.path.join(data_root, 'containers', container_id, HOLD_FILE)


def read_hold(data_root, container_id):
    """The restart policy a checkpoint held on this container and no restore has put back yet, or None."""
    try:
        with open(hold_path(data_root, container_id)) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    policy = data.get('restart_policy') if isinstance(data, dict) else None
    return policy if isinstance(policy, dict) and policy.get('Name') in HELD_RESTART_POLICIES else None


def write_hold(data_root, container_id, policy):
    """Record the policy about to be held; nothing when the engine's files are not on this host (a remote engine)."""
    directory = os.path.dirname(hold_path(data_root, container_id))
    if os.path.isdir(directory):
        write_json(directory, HOLD_FILE, dict(restart_policy=policy, held=now_iso()))


def clear_hold(data_root, container_id):
    try:
        os.unlink(hold_path(data_root, container_id))
    except OSError:
        pass


def dir_size(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def describe(path, name, container_name=None, container_id=None):
    """The facts every module reports about one checkpoint."""
    meta = read_metadata(path)
    local = os.path.isdir(path)
    created = meta.get('created')
    if not created and local:
        created = datetime.datetime.fromtimestamp(
            os.stat(path).st_mtime, datetime.timezone.utc).replace(microsecond=0).isoformat()
    return dict(
        name=name,
        container=meta.get('container') or container_name,
        container_id=meta.get('container_id') or container_id,
        directory=path,
        size=dir_size(path) if local else None,
        created=created,
        leave_running=meta.get('leave_running'),
        restart_policy=meta.get('restart_policy'),
        group=meta.get('group'),
        criu_options=meta.get('criu_options'),
    )


def taken_key(entry):
    """Sort key of a checkpoint (a describe() entry) by when it was taken: its recorded time (seconds), then the
    time its record was written (nanoseconds: two checkpoints taken within one second), then its name."""
    created = entry.get('created') or ''
    try:
        when = datetime.datetime.fromisoformat(created.replace('Z', '+00:00')).timestamp()
    except ValueError:
        when = 0.0
    written = 0
    for path in (os.path.join(entry['directory'], METADATA_FILE), entry['directory']):
        try:
            written = os.stat(path).st_mtime_ns
            break
        except OSError:
            pass
    return when, written, entry['name']


def newest_first(entries):
    """Checkpoints (describe() entries), the newest first: the one order of "N checkpoints ago" (1 is the newest)
    and of retention (the oldest goes first)."""
    return sorted(entries, key=taken_key, reverse=True)


def number_by_age(entries):
    """Set each checkpoint's `ago`: 1 for its container's newest among entries, 2 for the one before, ... (the
    checkpoints of no known container numbered together)."""
    groups = {}
    for entry in newest_first(entries):
        groups.setdefault(entry['container_id'], []).append(entry)
    for group in groups.values():
        for ago, entry in enumerate(group, 1):
            entry['ago'] = ago
    return entries


def usage(entries):
    """The disk the checkpoints take, by container: [{container, container_id, checkpoints, size, newest, oldest}]
    (size null when one's files are not on this host), sorted by container."""
    groups = {}
    for entry in newest_first(entries):
        groups.setdefault(entry['container_id'], []).append(entry)
    out = []
    for container_id, group in groups.items():
        sizes = [entry['size'] for entry in group]
        out.append(dict(container=group[0]['container'], container_id=container_id, checkpoints=len(group),
                        size=None if None in sizes else sum(sizes), newest=group[0]['name'], oldest=group[-1]['name']))
    return sorted(out, key=lambda item: (item['container'] or '', item['container_id'] or ''))


def looks_like_checkpoint(path):
    return os.path.isfile(os.path.join(path, 'inventory.img'))


def list_dir(checkpoint_dir):
    """Names of the checkpoints in a custom checkpoint directory."""
    if not os.path.isdir(checkpoint_dir):
        return []
    return sorted(name for name in os.listdir(checkpoint_dir)
                  if looks_like_checkpoint(os.path.join(checkpoint_dir, name)))


def stage(source, dest):
    """Copy a checkpoint into the engine's place for a container; the copy appears whole or not at all."""
    parent = os.path.dirname(dest)
    ensure_private_dir(parent)
    tmp = tempfile.mkdtemp(prefix='.cryo-stage-', dir=parent)
    try:
        target = os.path.join(tmp, 'checkpoint')
        shutil.copytree(source, target, symlinks=True)
        os.chmod(target, 0o700)
        os.rename(target, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# criu#2453: CRIU restores the processes into the cgroups its image names. A checkpoint of container A restored into
# container B on cgroup v2 with the systemd driver lands in A's scope (system.slice/docker-<A>.scope), not B's, which
# systemd removes as empty; B can then be neither paused nor checkpointed again. Docker names a container's cgroup by
# its id (docker-<id>.scope, docker/<id>), and ids have one length, so the staged copy's cgroup.img is rewritten in
# place: the protobuf's lengths do not change.
CGROUP_IMAGE = 'cgroup.img'
CGROUP_ID = re.compile(rb'(?<=docker-)[0-9a-f]{64}(?=\.scope)|(?<=docker/)[0-9a-f]{64}(?![0-9a-f])')


def retarget_cgroups(path, container_id, source_id=None):
    """Make the cgroups of the checkpoint at path those of container_id (criu#2453): every other container id in
    cgroup.img (source_id, and the ids of Docker's cgroup names) becomes container_id. The number of ids replaced."""
    image = os.path.join(path, CGROUP_IMAGE)
    try:
        with open(image, 'rb') as handle:
            data = handle.read()
    except FileNotFoundError:
        return 0
    new = container_id.encode()
    old = set(CGROUP_ID.findall(data))
    if source_id and re.fullmatch('[0-9a-f]{64}', source_id):
        old.add(source_id.encode())
    old.discard(new)
    if len(new) != 64 or not old:
        return 0
    count = 0
    for source in old:
        count += data.count(source)
        data = data.replace(source, new)
    write_file(path, CGROUP_IMAGE, data)
    return count


def swap_in(new, old):
    """Replace checkpoint old by new (both directories); old is removed only once new is in place."""
    retired = old + '.cryo-old'
    shutil.rmtree(retired, ignore_errors=True)
    os.rename(old, retired)
    os.rename(new, old)
    shutil.rmtree(retired, ignore_errors=True)


# containerd 1.6 copies a checkpoint into its temporary directory to restore it and never
# removes the copy (containerd/containerd#10166): the disk fills up, and the copies hold
# process memory in /tmp. They are recognised by content, so nothing else is touched.
CONTAINERD_COPIES = 'ctrd-checkpoint*'
IDENTITY_FILES = ('inventory.img', 'pstree.img', 'mm-1.img')


def _identity(path, names=IDENTITY_FILES):
    out = []
    for name in names:
        try:
            with open(os.path.join(path, name), 'rb') as handle:
                out.append(handle.read())
        except OSError:
            return None
    return out


def containerd_copies(path, tmpdir='/tmp'):
    """The copies containerd left of the checkpoint at path.

    A checkpoint's metadata names the container it is for, and containerd copies it too: clones of one
    checkpoint (the same images) restored at the same time on this host are told apart by it, so that one
    restore never removes the copy CRIU is still reading for another (it then fails: `Unexpected EOF on
    (empty-image)`)."""
    names = IDENTITY_FILES + ((METADATA_FILE,) if os.path.isfile(os.path.join(path, METADATA_FILE)) else ())
    want = _identity(path, names)
    if want is None:
        return []
    return sorted(copy for copy in glob.glob(os.path.join(tmpdir, CONTAINERD_COPIES))
                  if os.path.isdir(copy) and not os.path.islink(copy) and _identity(copy, names) == want)


def remove_containerd_copies(path, tmpdir='/tmp'):
    copies = containerd_copies(path, tmpdir)
    for copy in copies:
        shutil.rmtree(copy, ignore_errors=True)
    return copies


# -- did the container resume the checkpoint? ----------------------------------------------
#
# CRIU restores a process's memory layout exactly; a fresh start gets a new, randomised one
# (ASLR). So PID 1's stack and heap start addresses, as recorded in the checkpoint's
# mm-1.img, match the running PID 1 only when it is the restored process.

def parse_mm_image(data):
    """(start_stack, start_brk) from a CRIU mm-<pid>.img (MmEntry fields 5 and 6)."""
    fields = image_entry(data)
    if 5 not in fields or 6 not in fields:
        raise ValueError('mm image has no stack/brk start')
    return fields[5], fields[6]


def checkpoint_layout(path):
    with open(os.path.join(path, 'mm-1.img'), 'rb') as handle:
        return parse_mm_image(handle.read())


def verify_resumed(path, pid, host=None):
    """{verified: True|False|None, method, detail}: None when it cannot be told here."""
    host = host or Host()
    method = 'memory-layout'
    try:
        want = checkpoint_layout(path)
    except (OSError, ValueError) as exc:
        return dict(verified=None, method=method, detail='cannot read the checkpoint image mm-1.img: %s' % exc)
    if not pid:
        return dict(verified=False, method=method, detail='the container has no running process')
    found = host.stat(pid)
    if found is None:
        return dict(verified=None, method=method,
                    detail='cannot read /proc/%s/stat (is the module running on the engine host?)' % pid)
    have = found.layout
    detail = ('PID 1 stack/heap start %#x/%#x, checkpoint %#x/%#x' % (have + want))
    if not host.aslr_enabled():
        detail += '; address space randomisation is off on this host, so a fresh start looks the same'
    return dict(verified=have == want, method=method, detail=detail)
