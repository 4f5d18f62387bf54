# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""The group archive: one file that carries a group's members, each as its own portable archive (_archive).

An uncompressed tar (its members are compressed already):

    cryo-group.json             first member: {format, kind: group, project, checkpoint, group (id), members:
                                [{name, archive, signature}]} in the order the group comes back
    members/<name>.tar.zst      each member's archive, exactly as docker_checkpoint_export writes one alone
    members/<name>.tar.zst.sig  its signature, when the export signed it
    manifest.json               size and sha256 of every member above

Why the per-container layout inside one file and not Kubernetes' pod layout (which checkpointctl 1.6 also reads):
a pod archive carries the CRI sandbox's configuration (pod.dump, pod.options), which Docker has no equivalent for
and only CRI-O restores; each member here is the archive checkpointctl and docker_checkpoint_import already read,
with every check and signature of a lone archive. The file's own manifest only tells damage; trust comes from the
members: each is verified (and its signature, with allowed_signers) as a lone archive is, and the import takes the
group only when every member's checkpoint records the same group with exactly these members (check_one_group), so
a file that mixes members of two groups, or leaves one out, is refused whatever its manifest says.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile

from ansible_collections.cryo.docker.plugins.module_utils import _archive as fmt
from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.module_utils import _criuconf
from ansible_collections.cryo.docker.plugins.module_utils._common import Manager, ModuleError, check_name
from ansible_collections.cryo.docker.plugins.module_utils._engine import connect, connection
from ansible_collections.cryo.docker.plugins.module_utils._export import ExportManager
from ansible_collections.cryo.docker.plugins.module_utils._group import check_one_group
from ansible_collections.cryo.docker.plugins.module_utils._host import free_space
from ansible_collections.cryo.docker.plugins.module_utils._import import ImportManager
from ansible_collections.cryo.docker.plugins.module_utils._portable import ROOM_MARGIN
from ansible_collections.cryo.docker.plugins.module_utils._restore import RestoreBatch, RestoreParameters
from ansible_collections.cryo.docker.plugins.module_utils._take import CheckpointBatch, CheckpointParameters

FORMAT = 1
IDENTITY = 'cryo-group.json'
MEMBERS_DIR = 'members'
# members/<container name>.tar[.zst|.gz][.sig]: a container's name, which cannot hold a "/" or start with a dot.
MEMBER_RE = re.compile(r'^members/([a-zA-Z0-9][a-zA-Z0-9_.-]*?)(\.tar(?:\.zst|\.gz)?)(\.sig)?$')
MAX_MEMBERS = 256


def is_group_archive(path):
    """Whether the file at path is a group archive: its first member is cryo-group.json."""
    try:
        with open(path, 'rb') as handle:
            with tarfile.open(fileobj=handle, mode='r|') as tar:
                first = tar.next()
                return first is not None and first.name == IDENTITY
    except (OSError, tarfile.TarError):
        return False


def member_file(name, compression):
    return '%s/%s%s' % (MEMBERS_DIR, name, fmt.SUFFIXES[compression])


def write(path, identity, files):
    """The group archive at path (written beside it and renamed into place, flushed): identity first, then files
    ({archive member name: path on disk}) in order, then the manifest. (size, sha256)."""
    writer = fmt.Writer(path, compression='none').open()
    try:
        writer.add_json(IDENTITY, identity)
        writer.add_dir(MEMBERS_DIR)
        for name, source in files.items():
            writer.add_file(name, source)
        writer.add_json(fmt.MANIFEST, dict(format=FORMAT, members={
            entry['name']: dict(size=entry.get('size'), sha256=entry.get('sha256'))
            for entry in writer.members if entry['type'] == 'file'}))
        return writer.commit()
    except BaseException:
        writer.abort()
        raise


def refused(path, why, **details):
    return fmt.ArchiveError('The group archive %s was refused, and nothing was created: %s' % (path, why),
                            **details)


def unpack(path, dest, room=None):
    """Check the group archive at path and copy its members into dest (an empty private directory): only the
    names above, regular files, no more than MAX_MEMBERS, each hashed against the manifest, together no larger
    than room. The identity, with each member's archive and signature as paths in dest."""
    seen, identity, manifest, total = {}, None, None, 0
    try:
        with open(path, 'rb') as handle, tarfile.open(fileobj=handle, mode='r|') as tar:
            for member in tar:
                if len(seen) > 2 * MAX_MEMBERS + 3:
                    raise refused(path, 'it has more members than a group archive can (%d containers at most).'
                                  % MAX_MEMBERS, reason='too_many')
                name = member.name
                if name in seen:
                    raise refused(path, 'member %s is there twice.' % name, reason='duplicate', member=name)
                if name == MEMBERS_DIR and member.isdir():
                    seen[name] = None
                    continue
                if not member.isreg():
                    raise refused(path, 'member %s is not a regular file (a group archive holds only files).' % name,
                                  reason='member_type', member=name)
                if name in (IDENTITY, fmt.MANIFEST):
                    if member.size > fmt.SMALL_LIMIT:
                        raise refused(path, '%s is too large.' % name, reason='too_large', member=name)
                    data = tar.extractfile(member).read()
                    seen[name] = dict(size=len(data), sha256=fmt.sha256_hex(data))
                    try:
                        parsed = json.loads(data.decode('utf-8'))
                    except ValueError:
                        raise refused(path, '%s is not JSON.' % name, reason='damaged', member=name)
                    if name == IDENTITY:
                        identity = parsed
                    else:
                        manifest = parsed
                    continue
                if not MEMBER_RE.match(name) or identity is None:
                    raise refused(path, 'member %s is not a member of a group archive (members/<container>.tar.zst '
                                  'and its .sig, after cryo-group.json).' % name, reason='unexpected_member',
                                  member=name)
                total += member.size
                if room is not None and total > room:
                    raise refused(path, 'its members need %d bytes, more than the %d free where it is unpacked. Free '
                                  'space there (or choose another staging_dir).' % (total, room), reason='room')
                seen[name] = copy_member(tar, member, os.path.join(dest, os.path.basename(name)))
    except tarfile.TarError as exc:
        raise refused(path, 'it is not a readable tar file (%s).' % exc, reason='damaged')
    check_manifest(path, manifest, seen)
    return parse_identity(path, identity, dest)


def copy_member(tar, member, target):
    source = tar.extractfile(member)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    digest = hashlib.sha256()
    with os.fdopen(fd, 'wb') as out:
        while True:
            chunk = source.read(fmt.CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return dict(size=member.size, sha256=digest.hexdigest())


def check_manifest(path, manifest, seen):
    listed = (manifest or {}).get('members') if isinstance(manifest, dict) else None
    if not isinstance(listed, dict):
        raise refused(path, 'it has no manifest (%s): it was not written whole.' % fmt.MANIFEST, reason='damaged')
    found = {name: entry for name, entry in seen.items() if entry is not None and name != fmt.MANIFEST}
    if set(listed) != set(found):
        raise refused(path, 'its manifest lists %s, and the file holds %s.'
                      % (', '.join(sorted(listed)) or 'nothing', ', '.join(sorted(found))), reason='manifest')
    for name, entry in found.items():
        want = listed[name] if isinstance(listed[name], dict) else {}
        if want.get('sha256') != entry['sha256'] or want.get('size') != entry['size']:
            raise refused(path, 'member %s differs from its manifest (damaged, or changed).' % name,
                          reason='member_damaged', member=name)


def parse_identity(path, identity, dest):
    """The identity, its names checked as an operator's input is: {project, checkpoint, group, members: [{name,
    archive, signature}]} with paths in dest."""
    if not isinstance(identity, dict) or identity.get('kind') != 'group' or identity.get('format') != FORMAT:
        raise refused(path, '%s is not a group archive\'s identity of format %d.' % (IDENTITY, FORMAT),
                      reason='damaged')
    entries = identity.get('members')
    if not isinstance(entries, list) or not entries or len(entries) > MAX_MEMBERS:
        raise refused(path, 'it names no members.', reason='damaged')
    check_name('checkpoint', identity.get('checkpoint'), path)
    if identity.get('project') is not None:
        check_name('container', identity.get('project'), path)
    members, names = [], set()
    for entry in entries:
        if not isinstance(entry, dict):
            raise refused(path, 'a member entry is not an object.', reason='damaged')
        name = entry.get('name')
        check_name('container', name, path)
        if name in names:
            raise refused(path, 'member %s is named twice.' % name, reason='duplicate')
        names.add(name)
        archive = entry.get('archive')
        match = MEMBER_RE.match(archive) if isinstance(archive, str) else None
        if not match or match.group(1) != name or match.group(3):
            raise refused(path, 'member %s names the archive %r, not members/%s.tar...' % (name, archive, name),
                          reason='damaged')
        local = os.path.join(dest, os.path.basename(archive))
        if not os.path.isfile(local):
            raise refused(path, 'the archive of member %s (%s) is not in the file.' % (name, archive),
                          reason='member_missing')
        signature = local + '.sig'
        members.append(dict(name=name, archive=local, signature=signature if os.path.isfile(signature) else None))
    return dict(project=identity.get('project'), checkpoint=identity['checkpoint'], group=identity.get('group'),
                members=members)


def read_identity(path):
    """The identity of the group archive at path without unpacking it (for an export's up-to-date check), or None."""
    try:
        with open(path, 'rb') as handle, tarfile.open(fileobj=handle, mode='r|') as tar:
            first = tar.next()
            if first is None or first.name != IDENTITY or not first.isreg() or first.size > fmt.SMALL_LIMIT:
                return None
            return json.loads(tar.extractfile(first).read().decode('utf-8'))
    except (OSError, tarfile.TarError, ValueError):
        return None


class GroupExportManager(Manager):
    """docker_checkpoint_export with project or containers: the group's checkpoint (taken as one, if it is not
    there), each member exported as a lone archive would be, and all of them in one group archive."""

    def __init__(self, module):
        super().__init__(module)
        params = self.params
        self.path = params['path']
        if not os.path.isabs(self.path) or self.path.endswith('/') or os.path.isdir(self.path):
            raise ModuleError('path must be the absolute path of the group archive file to write, got %r.'
                              % self.path)
        for name in params['containers'] or []:
            check_name('container', name)
        if params['project']:
            check_name('container', params['project'])
        check_name('checkpoint', params['checkpoint'])
        self.zstd = module.get_bin_path('zstd')
        self.compression = fmt.resolve_compression(params['compression'], self.zstd)
        self.engine = connect(params)
        self.batch = CheckpointBatch(module, CheckpointParameters(
            project=params['project'], containers=params['containers'], group=True, checkpoint=params['checkpoint'],
            checkpoint_dir=params['checkpoint_dir'], leave_running=params['leave_running'],
            allow_unrestorable=params['allow_unrestorable'], method=params['method'],
            **dict(connection(params), **_criuconf.given(params))), self.engine)
        self.members = [task.container_name for task in self.batch.tasks]
        self.existing = read_identity(self.path) if os.path.lexists(self.path) else None
        self.take = False
        self.exports = []
        self.written = {}

    def recorded_group(self):
        """The group id the members' checkpoints record now (None when they are not there, or not one group's)."""
        ids = set()
        for task in self.batch.tasks:
            ids.add((store.read_metadata(os.path.join(task.base, self.params['checkpoint'])).get('group') or {})
                    .get('id'))
        return ids.pop() if len(ids) == 1 else None

    def plan(self):
        self.batch.plan()
        self.take = self.batch.changed
        existing = self.existing or {}
        if (not self.take and not self.params['force'] and existing.get('checkpoint') == self.params['checkpoint']
                and existing.get('group') and existing.get('group') == self.recorded_group()
                and [entry.get('name') for entry in existing.get('members') or []] == self.members):
            return
        if os.path.lexists(self.path) and self.existing is None and not self.params['force']:
            raise ModuleError('path %s holds something else than a group archive, and was left alone. Give another '
                              'path, or force: true to replace it.' % self.path)
        self.changed = True

    def act(self):
        if self.take:
            self.batch.act()
        directory = os.path.dirname(self.path)
        store.ensure_private_dir(directory)
        for stale in fmt.stale_temps(self.path):
            shutil.rmtree(stale, ignore_errors=True) if os.path.isdir(stale) else os.unlink(stale)
        work = tempfile.mkdtemp(prefix=fmt.temp_name(self.path), suffix=fmt.TMP_SUFFIX, dir=directory)
        try:
            files, entries = {}, []
            for task in self.batch.tasks:
                name = task.container_name
                archive = member_file(name, self.compression)
                local = os.path.join(work, os.path.basename(archive))
                export = ExportManager(self.module, dict(
                    self.params, container=name, path=local, force=True, compression=self.compression))
                export.task.held = task.held  # the member's lock, which the group holds to the end
                try:
                    export.plan()
                    export.act()
                finally:
                    export.task.held = None
                self.exports.append(export.report())
                files[archive] = local
                signed = os.path.isfile(local + '.sig')
                if signed:
                    files[archive + '.sig'] = local + '.sig'
                entries.append(dict(name=name, archive=archive, signature=archive + '.sig' if signed else None))
            identity = dict(format=FORMAT, kind='group', project=self.params['project'],
                            checkpoint=self.params['checkpoint'], group=self.recorded_group(), members=entries,
                            created=fmt.now_iso())
            size, sha256 = write(self.path, identity, files)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.written = dict(size=size, sha256=sha256, group=identity['group'])

    def report(self):
        group = self.batch.group_report() if self.take else dict(
            project=self.params['project'], members=self.members, checkpoint=self.params['checkpoint'])
        result = dict(changed=self.changed, checkpoint_taken=bool(self.take and self.changed), group=group,
                      archive=dict(path=self.path, members=self.members, checkpoint=self.params['checkpoint'],
                                   compression=self.compression, size=self.written.get('size'),
                                   sha256=self.written.get('sha256'), group=self.written.get('group') or (
                                       self.existing or {}).get('group')),
                      results=[dict(container=entry['archive']['container'], archive=entry['archive'],
                                    signature=entry.get('signature')) for entry in self.exports])
        if self.changed and self.module._diff:
            result['diff'] = dict(before=dict(archive=self.path if self.existing else None),
                                  after=dict(archive=self.path, members=self.members))
        return result


class GroupImportManager(Manager):
    """docker_checkpoint_import of a group archive: every member's archive verified and every check of a lone import
    made (allow, signatures) before anything is created; the members created with their checkpoints staged; then
    restored as one group (docker_restore's group restore: dependency order, each verified, all or none)."""

    def __init__(self, module):
        super().__init__(module)
        params = self.params
        self.path = params['path']
        if params['container']:
            raise ModuleError('container cannot be given with the group archive %s: its members are created under '
                              'the names they had, as the same project.' % self.path)
        if params['warm']:
            raise ModuleError('warm cannot be given with the group archive %s: a group comes back as one point in '
                              'time, a warm container on its own.' % self.path)
        self.engine = connect(params)
        self.engine.require_experimental()
        data_root = self.engine.data_root()
        self.staging_root = params['staging_dir'] or os.path.join(data_root, 'cryo-import')
        self.staging = None
        self.identity = None
        self.imports = []
        self.batch = None

    def plan(self):
        if not self.module.check_mode:
            store.ensure_private_dir(self.staging_root)
        probe = fmt.nearest_existing(self.staging_root)
        _probe, free = free_space(probe)
        self.staging = tempfile.mkdtemp(prefix='group-', dir=self.staging_root if os.path.isdir(
            self.staging_root) else None)
        try:
            self.identity = unpack(self.path, self.staging, None if free is None else max(0, free - ROOM_MARGIN))
            for entry in self.identity['members']:
                manager = ImportManager(self.module, dict(
                    self.params, path=entry['archive'], signature_file=entry['signature'], container=None,
                    restore=False, restored_with_group=True, checksum=None))
                manager.plan()
                if manager.plan_.name != entry['name']:
                    raise refused(self.path, 'member %s carries the archive of container %s.'
                                  % (entry['name'], manager.plan_.name), reason='member_mismatch')
                self.imports.append(manager)
            recorded = {manager.plan_.name: (manager.verified.json(fmt.CHECKPOINT_DIR + '/' + store.METADATA_FILE) or {})
                        .get('group') for manager in self.imports}
            check_one_group(self.identity['checkpoint'], recorded)
        except BaseException:
            self.clean()
            raise
        self.changed = any(manager.changed for manager in self.imports)
        if not self.changed:
            self.clean()

    def act(self):
        try:
            for manager in self.imports:
                if manager.changed and manager.action != 'finish':
                    manager.act()
        finally:
            self.clean()
        params = self.params
        self.batch = RestoreBatch(self.module, RestoreParameters(
            containers=[manager.plan_.name for manager in self.imports], group=True,
            checkpoint=self.identity['checkpoint'], verify=params['verify'], fallback=params['fallback'],
            keep_checkpoint=params['keep_checkpoint'], method=params['restore_method'],
            **dict(connection(params), **_criuconf.given(params))), self.engine)
        self.batch.plan()
        if self.batch.changed:
            self.batch.act()

    def clean(self):
        if self.staging:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None

    def report(self):
        self.clean()
        restored = self.batch.report() if self.batch is not None else {}
        members = [manager.report() for manager in self.imports]
        return dict(changed=self.changed, group=dict(project=self.identity['project'],
                                                     checkpoint=self.identity['checkpoint'],
                                                     group=self.identity['group'],
                                                     members=[manager.plan_.name for manager in self.imports]),
                    results=[dict(container=entry['container'], action=entry['action'], steps=entry['steps'],
                                  host_access=entry['host_access'], signature=entry['signature'])
                             for entry in members],
                    restore=restored.get('results') or [])


def export_manager(module):
    """docker_checkpoint_export's manager: a group's with project or containers, else a lone container's."""
    if module.params.get('project') or module.params.get('containers'):
        return GroupExportManager(module)
    return ExportManager(module)


def import_manager(module):
    """docker_checkpoint_import's manager: a group archive's (its first member says), else a lone archive's."""
    if is_group_archive(module.params['path']):
        return GroupImportManager(module)
    return ImportManager(module)
