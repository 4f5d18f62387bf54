# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""docker_checkpoint_export's manager: take the checkpoint (through _take's CheckpointBatch, with the
guarantees of docker_checkpoint) or use an existing one, read what recreates the container (_containers), write
one archive (_archive) and sign it (_signing) when a key is given."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time

from ansible_collections.cryo.docker.plugins.module_utils import _archive as fmt
from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.module_utils import _cpu
from ansible_collections.cryo.docker.plugins.module_utils import _criuconf
from ansible_collections.cryo.docker.plugins.module_utils import _signing
from ansible_collections.cryo.docker.plugins.module_utils._common import (
    Manager,
    ModuleError,
    check_checkpoint_dir,
    check_checkpoint_name,
    check_name,
)
from ansible_collections.cryo.docker.plugins.module_utils._containers import (
    bundle_spec,
    config_dump,
    connect,
    copy_stream,
    plan_changes,
    record_container,
    spec_from_inspect,
    write_rootfs_diff,
)
from ansible_collections.cryo.docker.plugins.module_utils._engine import connection
from ansible_collections.cryo.docker.plugins.module_utils._host import Host, free_space
from ansible_collections.cryo.docker.plugins.module_utils._portable import ROOM_MARGIN, engine_criu, room_error
from ansible_collections.cryo.docker.plugins.module_utils._take import CheckpointBatch, CheckpointParameters


def engine_versions(version):
    """The versions an archive records, from the engine's /version answer."""
    components = {entry.get('Name'): entry.get('Version') for entry in version.get('Components') or []}
    return dict(engine=version.get('Version'), api_version=version.get('ApiVersion'),
                containerd=components.get('containerd'), runc=components.get('runc'),
                kernel=version.get('KernelVersion'), os=version.get('Os'), architecture=version.get('Arch'))


def dumped_by(checkpoint_path):
    """The CRIU version a checkpoint's dump.log names (runtime path), or None."""
    try:
        with open(os.path.join(checkpoint_path, 'dump.log'), errors='replace') as handle:
            head = handle.read(4096)
    except OSError:
        return None
    match = re.search(r'Version:\s*([0-9][^\s(]*)', head)
    return match.group(1) if match else None


class ExportManager(Manager):
    """docker_checkpoint_export: plan (is the archive there and of this checkpoint? can it be written?),
    act (take the checkpoint if needed, collect, write), report."""

    def __init__(self, module, params=None):
        super().__init__(module)
        if params is not None:
            self.params = params  # a group's member: the module's options, with this member's path and name
        params = self.params
        self.path = params['path']
        if not os.path.isabs(self.path):
            raise ModuleError('path must be an absolute path, got %r: give the full path of the archive file.'
                              % self.path)
        if self.path.endswith('/') or os.path.isdir(self.path):
            raise ModuleError('path %s is a directory: give the path of the archive file to write, for example '
                              '%s' % (self.path, os.path.join(self.path, '%s-%s%s' % (
                                  params['container'], params['checkpoint'], fmt.SUFFIXES['zstd']))))
        check_checkpoint_name(params['checkpoint'])
        check_checkpoint_dir(params['checkpoint_dir'])
        self.signing_key = params['signing_key']
        self.ssh_keygen = module.get_bin_path('ssh-keygen') if self.signing_key else None
        if self.signing_key:
            _signing.check_key(self.ssh_keygen, self.signing_key)
        self.signature_path = _signing.signature_path(self.path)
        self.signature = None
        self.sign_only = False
        self.zstd = module.get_bin_path('zstd')
        self.compression = fmt.resolve_compression(params['compression'], self.zstd)
        self.level = fmt.resolve_level(self.compression, params['compression_level'])
        self.engine = connect(params)
        self.version = self.engine.require_experimental()
        self.batch = CheckpointBatch(module, CheckpointParameters(
            container=params['container'], checkpoint=params['checkpoint'], checkpoint_dir=params['checkpoint_dir'],
            leave_running=params['leave_running'], allow_unrestorable=params['allow_unrestorable'],
            method=params['method'], **dict(connection(params), **_criuconf.given(params))), self.engine)
        self.task = self.batch.tasks[0]
        self.info = self.task.info
        self.container_id = self.task.container_id
        self.container_name = self.task.container_name
        self.checkpoint = params['checkpoint']
        self.checkpoint_path = os.path.join(self.task.base, self.checkpoint)
        self.take = False
        self.existing = None
        self.spec = self.spec_source = None
        self.written = {}
        self.taken = {}

    # -- plan

    def plan(self):
        exists = self.checkpoint_exists()
        self.existing = self.read_existing()
        if self.existing is not None and self.is_this_checkpoint(self.existing, exists) and not self.params['force']:
            # Up to date; signed again only when it has no signature by this key.
            self.sign_only = self.changed = bool(self.signing_key) and not _signing.signed_with(
                self.ssh_keygen, self.signing_key, self.signature_path, self.path)
            return
        if self.existing is not None and not self.params['force'] and not self.is_stale_copy(self.existing):
            raise ModuleError(
                'path %s holds %s, not an archive of checkpoint %s of container %s, and was left alone. Give another '
                'path, or force: true to replace it.' % (self.path, self.describe_existing(), self.checkpoint,
                                                         self.container_name), existing=self.existing)
        self.batch.plan()
        self.take = self.task.changed
        if not self.take and not store.looks_like_checkpoint(self.checkpoint_path):
            raise ModuleError('Checkpoint %s of container %s is not on this host (no %s/inventory.img): the export '
                              'reads its files, so run the module on the engine\'s host.'
                              % (self.checkpoint, self.container_name, self.checkpoint_path))
        self.check_place()
        if self.info['State'].get('Running'):
            # The task's bundle goes away when the container stops at the checkpoint: read it now.
            self.read_spec()
        self.changed = True

    def checkpoint_exists(self):
        custom = self.params['checkpoint_dir']
        if custom and not os.path.isdir(custom):
            return False
        return self.checkpoint in self.task.list_checkpoints(custom)

    def read_existing(self):
        """The identity of what is at path: None for nothing, a dict (possibly {}) for a file."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return None
        if os.path.islink(self.path):
            raise ModuleError('path %s is a symbolic link, and the module never writes through one (it could point '
                              'anywhere). Give the real path of the archive.' % self.path)
        if not os.path.isfile(self.path) or st is None:
            raise ModuleError('path %s exists and is not a regular file; give the path of an archive file.'
                              % self.path)
        return fmt.read_identity(self.path, self.zstd) or {}

    def is_this_checkpoint(self, identity, exists):
        if identity.get('container_id') != self.container_id or identity.get('checkpoint') != self.checkpoint:
            return False
        if not exists:
            # The checkpoint is gone (restored, removed): the archive is the copy of it that is left.
            return True
        return identity.get('checkpoint_created') == store.describe(self.checkpoint_path, self.checkpoint)['created']

    def is_stale_copy(self, identity):
        """An archive of an earlier checkpoint of the same name of this container: written over."""
        return identity.get('container_id') == self.container_id and identity.get('checkpoint') == self.checkpoint

    def describe_existing(self):
        if not self.existing:
            return 'a file that is not a checkpoint archive of this collection'
        return 'an archive of checkpoint %s of container %s' % (
            self.existing.get('checkpoint'), self.existing.get('container'))

    def check_place(self):
        """The destination directory is (or can be) made and written, with room for an estimate."""
        directory = os.path.dirname(self.path)
        probe = directory if os.path.isdir(directory) else fmt.nearest_existing(directory)
        reason = fmt.writable_dir(probe)
        if reason:
            raise ModuleError('The archive cannot be written in %s: %s. Nothing was done (no checkpoint taken); '
                              'choose another path, or fix the directory.' % (probe, reason), directory=probe)
        need = self.estimate()
        _probe, free = free_space(probe)
        if free is not None and free < need + ROOM_MARGIN:
            raise room_error('the archive', probe, need + ROOM_MARGIN, free)

    def estimate(self):
        """Bytes the archive and its spools need, before anything is read: the checkpoint (or the container's
        memory, when it is to be taken) plus the image twice (spooled, then in the archive)."""
        if self.take:
            need = Host().container_memory(self.info['State'].get('Pid'))
        else:
            need = store.dir_size(self.checkpoint_path)
        if self.params['include_image']:
            image = self.engine.image(self.info['Image']) or {}
            need += 2 * int(image.get('Size') or 0)
        return need

    def read_spec(self):
        dockerd = Host().dockerd(self.params['docker_host'])
        spec, path = bundle_spec(self.engine.data_root(), dockerd['exec_root'] if dockerd else None,
                                 self.container_id)
        if spec:
            self.spec, self.spec_source = spec, 'bundle %s' % path

    # -- act

    def act(self):
        if self.sign_only:
            self.signature = _signing.sign(self.ssh_keygen, self.signing_key, self.path, self.signature_path)
            return
        started = time.monotonic()
        directory = os.path.dirname(self.path)
        store.ensure_private_dir(directory)
        for stale in fmt.stale_temps(self.path):
            shutil.rmtree(stale, ignore_errors=True) if os.path.isdir(stale) else os.unlink(stale)
        if self.take:
            self.batch.act()
            if not store.looks_like_checkpoint(self.checkpoint_path):
                raise ModuleError('Checkpoint %s of container %s was taken, but its files are not on this host (%s): '
                                  'the export reads them, so run the module on the engine\'s host.'
                                  % (self.checkpoint, self.container_name, self.checkpoint_path))
        self.taken = self.batch.report() if self.take else {}
        checkpoint_done = time.monotonic()
        work = tempfile.mkdtemp(prefix=fmt.temp_name(self.path), suffix=fmt.TMP_SUFFIX, dir=directory)
        try:
            self.write(work)
        except OSError as exc:
            raise ModuleError('Writing the archive %s failed: %s. No partial archive was left%s.'
                              % (self.path, exc, '; the checkpoint was taken and stays' if self.take else ''))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if self.signing_key:
            self.signature = _signing.sign(self.ssh_keygen, self.signing_key, self.path, self.signature_path)
        elif os.path.lexists(self.signature_path):
            # A signature of the archive this one replaced: it no longer matches, and must not pass for one that does.
            os.unlink(self.signature_path)
        self.written['duration'] = round(time.monotonic() - checkpoint_done, 3)
        self.written['total_duration'] = round(time.monotonic() - started, 3)

    def resolve_container(self, target):
        found = self.engine.find(target)
        return (found or {}).get('Name', '').lstrip('/') or None

    def write(self, work):
        info = self.engine.inspect(self.container_id)
        meta = store.read_metadata(self.checkpoint_path)
        checkpoint = store.describe(self.checkpoint_path, self.checkpoint, self.container_name, self.container_id)
        policy = meta.get('restart_policy') or info['HostConfig'].get('RestartPolicy') or {'Name': 'no'}
        image_info = self.engine.image(info['Image'])
        record = record_container(info, image_info, policy, self.resolve_container)
        if self.spec is None:
            self.read_spec()
        if self.spec is None:
            self.spec, self.spec_source = spec_from_inspect(info), 'inspect'

        fetch, deleted, counts = plan_changes(self.engine.file_changes(self.container_id))
        diff = os.path.join(work, fmt.ROOTFS_DIFF)
        counts['members'] = write_rootfs_diff(self.engine, self.container_id, fetch, diff)
        volumes = self.spool_volumes(record, work)
        image = None
        if self.params['include_image']:
            need = int((image_info or {}).get('Size') or 0)
            _probe, free = free_space(work)
            if free is not None and free < need + ROOM_MARGIN:
                raise room_error('the image %s' % record['image']['reference'], work, need + ROOM_MARGIN, free)
            image = os.path.join(work, fmt.IMAGE)
            copy_stream(self.engine.save_image(info['Image']), image)

        spools = [diff] + [entry['spool'] for entry in volumes] + ([image] if image else [])
        need = store.dir_size(self.checkpoint_path) + sum(os.path.getsize(spool) for spool in spools)
        _probe, free = free_space(work)
        if free is not None and free < need + ROOM_MARGIN:
            raise room_error('the archive', os.path.dirname(self.path), need + ROOM_MARGIN, free)

        criu_path, criu_version = engine_criu(self.module, self.params['docker_host'])
        source = dict(engine_versions(self.version), criu=dumped_by(self.checkpoint_path) or criu_version,
                      machine=os.uname().machine, hostname=os.uname().nodename, criu_path=criu_path)
        cpu_image, source['cpu'] = _cpu.record(_cpu.runner(self.module), criu_path, Host().read('cpuinfo'))
        if cpu_image is None:
            self.module.warn('The archive records this host\'s CPU by its /proc/cpuinfo flags only: criu cpuinfo '
                             'dump wrote no image (%s). The import compares the flags, without CRIU\'s own check.'
                             % source['cpu']['image_error'])
        identity = dict(format=fmt.FORMAT, checkpoint=self.checkpoint, checkpoint_created=checkpoint['created'],
                        container=self.container_name, container_id=self.container_id, created=fmt.now_iso())
        writer = fmt.Writer(self.path, self.compression, self.level, self.zstd).open()
        try:
            writer.add_json(fmt.IDENTITY, identity)
            writer.add_json(fmt.CONFIG_DUMP, config_dump(info, checkpoint['created']))
            writer.add_json(fmt.SPEC_DUMP, self.spec)
            writer.add_json(fmt.CONTAINER, record)
            writer.add_json(fmt.DELETED_FILES, deleted)
            stats = os.path.join(self.checkpoint_path, fmt.STATS_DUMP)
            if os.path.isfile(stats):
                writer.add_file(fmt.STATS_DUMP, stats)
            if cpu_image is not None:
                writer.add_bytes(fmt.CPUINFO, cpu_image)
            writer.add_tree(fmt.CHECKPOINT_DIR, self.checkpoint_path)
            writer.add_file(fmt.ROOTFS_DIFF, diff)
            if volumes:
                writer.add_dir(fmt.VOLUMES_DIR)
                for entry in volumes:
                    writer.add_file(entry['member'], entry['spool'])
            if image:
                writer.add_file(fmt.IMAGE, image)
            manifest = dict(
                format=fmt.FORMAT, created=identity['created'], compression=self.compression,
                checkpoint=dict(name=self.checkpoint, created=checkpoint['created'], size=checkpoint['size'],
                                method=meta.get('method'), leave_running=meta.get('leave_running')),
                container=dict(name=self.container_name, id=self.container_id),
                image=dict(reference=record['image']['reference'], id=record['image']['id'], carried=bool(image)),
                source=source, spec_source='inspect' if self.spec_source == 'inspect' else 'bundle',
                file_changes=dict(counts), deleted_files=len(deleted),
                volumes=[{key: entry[key] for key in ('name', 'destination', 'member', 'anonymous')}
                         for entry in volumes],
                members=list(writer.members))
            data, digest_line = fmt.manifest_bytes(manifest)
            writer.add_bytes(fmt.MANIFEST, data)
            writer.add_bytes(fmt.MANIFEST_DIGEST, digest_line)
            size, sha256 = writer.commit()
        except BaseException:
            writer.abort()
            raise
        self.written.update(
            size=size, sha256=sha256, members=len(writer.members), content_size=writer.total(), manifest=manifest,
            checkpoint=checkpoint, file_changes=dict(counts, size=os.path.getsize(diff)), identity=identity,
            image=dict(manifest['image'], size=os.path.getsize(image) if image else None),
            volumes=manifest['volumes'])

    def spool_volumes(self, record, work):
        """The contents of the container's volumes (include_volumes), each read through the archive endpoint."""
        if not self.params['include_volumes']:
            return []
        out = []
        for index, mount in enumerate(mount for mount in record['mounts'] if mount['type'] == 'volume'):
            spool = os.path.join(work, 'volume-%d.tar' % index)
            chunks, _stat = self.engine.get_archive(self.container_id, mount['destination'])
            copy_stream(chunks, spool)
            anonymous = not any(self.names_volume(mount['name'], record))
            out.append(dict(name=check_name('volume', mount['name']), destination=mount['destination'],
                            anonymous=anonymous, member=check_name('volume member', '%s/%d.tar' % (fmt.VOLUMES_DIR, index)),
                            spool=spool, driver=mount.get('driver')))
        return out

    @staticmethod
    def names_volume(name, record):
        """Whether the container's HostConfig names the volume (a named volume, not an anonymous one)."""
        host_config = record['host_config']
        for bind in host_config.get('Binds') or []:
            yield bind.split(':', 1)[0] == name
        for mount in host_config.get('Mounts') or []:
            yield mount.get('Type') == 'volume' and mount.get('Source') == name

    # -- report

    def report(self):
        result = dict(changed=self.changed, checkpoint_taken=bool(self.take and self.changed),
                      signature=self.signature_report(), retries=dict(self.taken.get('retries') or {}))
        rewritten = self.changed and not self.sign_only
        if rewritten and not self.module.check_mode:
            written = self.written
            result['archive'] = dict(path=self.path, size=written['size'], sha256=written['sha256'],
                                     compression=self.compression, members=written['members'],
                                     content_size=written['content_size'], created=written['identity']['created'],
                                     checkpoint=self.checkpoint, container=self.container_name,
                                     image_carried=written['image']['carried'],
                                     volumes_carried=len(written['volumes']))
            result.update(checkpoint=written['checkpoint'], duration=written['duration'],
                          total_duration=written['total_duration'], spec_source=self.spec_source,
                          file_changes=written['file_changes'], image=written['image'], volumes=written['volumes'],
                          source=written['manifest']['source'])
            if self.take:
                result.update(checkpoint_duration=self.taken.get('duration'), method=self.taken.get('method'),
                              stats=self.taken.get('stats'), criu_options=self.taken.get('criu_options'),
                              criu_options_from=self.taken.get('criu_options_from'))
                if self.taken.get('method_reason'):
                    result['method_reason'] = self.taken['method_reason']
        else:
            existing = self.existing or {}
            result['archive'] = dict(path=self.path, size=None if rewritten else os.path.getsize(self.path),
                                     sha256=None, compression=self.compression if rewritten else None,
                                     created=None if rewritten else existing.get('created'),
                                     checkpoint=self.checkpoint, container=self.container_name)
            result['checkpoint'] = (store.describe(self.checkpoint_path, self.checkpoint, self.container_name,
                                                   self.container_id)
                                    if os.path.isdir(self.checkpoint_path) else dict(name=self.checkpoint))
            result['duration'] = 0.0
        if self.sign_only and self.module._diff:
            result['diff'] = dict(before=dict(signature=None), after=dict(signature=self.signature_path))
        elif self.changed and self.module._diff:
            result['diff'] = dict(
                before=dict(archive=dict(path=self.path, checkpoint=self.existing.get('checkpoint'),
                                         container=self.existing.get('container'),
                                         checkpoint_created=self.existing.get('checkpoint_created'))
                            if self.existing else None),
                after=dict(archive=dict(path=self.path, checkpoint=self.checkpoint, container=self.container_name,
                                        compression=self.compression),
                           checkpoint_taken=self.take))
        return result

    def signature_report(self):
        """The archive's signature after the run: what this run made, what would be made, or None."""
        if self.signature:
            return self.signature
        if self.signing_key and self.changed:
            return dict(path=self.signature_path, key=None, sha256=None)
        if self.signing_key:
            return dict(path=self.signature_path, key=_signing.key_fingerprint(self.ssh_keygen, self.signing_key),
                        sha256=None)
        return None
