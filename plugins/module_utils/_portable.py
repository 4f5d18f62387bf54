# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""Portable checkpoint archives: the managers of docker_checkpoint_export and docker_checkpoint_import.

Export: take the checkpoint (through _lifecycle's CheckpointBatch: the guarantees of docker_checkpoint)
or use an existing one, read what recreates the container (_containers), then write one archive (_archive).
Import: verify the archive, check that this engine can take it, load the image, create the container,
apply its file changes, stage the checkpoint and restore it (through _lifecycle's RestoreTask: the
guarantees of docker_restore).

`ImportManager` is built so that other modules can import the same archive several times (clones) or
after carrying it to another host (move): the plan of one import (what to create, under which name and ports) is
apart from the archive's verification, which is done once per run.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import types

from ansible_collections.cryo.docker.plugins.module_utils import _archive as fmt
from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.module_utils._common import (
    C_LOCALE,
    Manager,
    ModuleError,
    check_checkpoint_dir,
    check_checkpoint_name,
    policy_still_held,
)
from ansible_collections.cryo.docker.plugins.module_utils._containers import (
    ARCHIVE_LABEL,
    bundle_spec,
    config_dump,
    connect,
    copy_stream,
    create_body,
    never_started,
    overlay_dirs,
    plan_changes,
    planned_ports,
    record_container,
    same_image,
    spec_from_inspect,
    split_reference,
    summary,
    whiteout,
    write_rootfs_diff,
)
from ansible_collections.cryo.docker.plugins.module_utils._criu import parse_version, version_at_least
from ansible_collections.cryo.docker.plugins.module_utils._engine import EngineError
from ansible_collections.cryo.docker.plugins.module_utils._holder import bound_ports, parse_port
from ansible_collections.cryo.docker.plugins.module_utils._host import Host, find_program, free_space
from ansible_collections.cryo.docker.plugins.module_utils._lifecycle import CheckpointBatch, RestoreTask
from ansible_collections.cryo.docker.plugins.module_utils._preflight import human_bytes, unrestorable, unrestorable_msg

# Room kept free beyond what is written: file systems behave badly when full.
ROOM_MARGIN = 64 << 20
CONNECTION_OPTIONS = ('docker_host', 'tls', 'validate_certs', 'ca_path', 'client_cert', 'client_key', 'api_version',
                      'timeout')


class ModuleView:
    """The module as one of _lifecycle's batches or tasks sees it: the same module, other params."""

    def __init__(self, module, params):
        self._module = module
        self.params = params

    def __getattr__(self, name):
        return getattr(self._module, name)


def connection(params):
    return {key: params.get(key) for key in CONNECTION_OPTIONS}


def engine_versions(version):
    """The versions an archive records, from the engine's /version answer."""
    components = {entry.get('Name'): entry.get('Version') for entry in version.get('Components') or []}
    return dict(engine=version.get('Version'), api_version=version.get('ApiVersion'),
                containerd=components.get('containerd'), runc=components.get('runc'),
                kernel=version.get('KernelVersion'), os=version.get('Os'), architecture=version.get('Arch'))


def engine_criu(module, docker_host, host=None):
    """(path, version) of the CRIU the engine's runc runs: the first `criu` on its dockerd's PATH."""
    search_path, _origin = (host or Host()).search_path(docker_host)
    criu = find_program('criu', search_path)
    if not criu:
        return None, None
    rc, out, _err = module.run_command([criu, '--version'], environ_update=C_LOCALE)
    return criu, parse_version(out) if rc == 0 else None


def dumped_by(checkpoint_path):
    """The CRIU version a checkpoint's dump.log names (runtime path), or None."""
    try:
        with open(os.path.join(checkpoint_path, 'dump.log'), errors='replace') as handle:
            head = handle.read(4096)
    except OSError:
        return None
    match = re.search(r'Version:\s*([0-9][^\s(]*)', head)
    return match.group(1) if match else None


def room_error(what, directory, need, free):
    return ModuleError('Not enough room for %s in %s: about %s is needed, %s is free. Nothing was written; free some '
                       'space or choose another place.' % (what, directory, human_bytes(need), human_bytes(free)),
                       needed_bytes=need, free_bytes=free)


# -- export ---------------------------------------------------------------------------------------

class ExportManager(Manager):
    """docker_checkpoint_export: plan (is the archive there and of this checkpoint? can it be written?),
    act (take the checkpoint if needed, collect, write), report."""

    def __init__(self, module):
        super().__init__(module)
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
        self.zstd = module.get_bin_path('zstd')
        self.compression = fmt.resolve_compression(params['compression'], self.zstd)
        self.level = fmt.resolve_level(self.compression, params['compression_level'])
        self.engine = connect(params)
        self.version = self.engine.require_experimental()
        checkpoint_params = dict(
            connection(params), container=params['container'], containers=None, parallel=None,
            checkpoint=params['checkpoint'], checkpoint_dir=params['checkpoint_dir'], state='present',
            leave_running=params['leave_running'], force=False, hold_restart_policy=True,
            allow_unrestorable=params['allow_unrestorable'], method=params['method'])
        self.batch = CheckpointBatch(ModuleView(module, checkpoint_params))
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
            out.append(dict(name=mount['name'], destination=mount['destination'], anonymous=anonymous,
                            member='%s/%d.tar' % (fmt.VOLUMES_DIR, index), spool=spool, driver=mount.get('driver')))
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
        result = dict(changed=self.changed, checkpoint_taken=bool(self.take and self.changed))
        if self.changed and not self.module.check_mode:
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
                              stats=self.taken.get('stats'))
                if self.taken.get('method_reason'):
                    result['method_reason'] = self.taken['method_reason']
        else:
            existing = self.existing or {}
            result['archive'] = dict(path=self.path, size=None if self.changed else os.path.getsize(self.path),
                                     sha256=None, compression=self.compression if self.changed else None,
                                     created=None if self.changed else existing.get('created'),
                                     checkpoint=self.checkpoint, container=self.container_name)
            result['checkpoint'] = (store.describe(self.checkpoint_path, self.checkpoint, self.container_name,
                                                   self.container_id)
                                    if os.path.isdir(self.checkpoint_path) else dict(name=self.checkpoint))
            result['duration'] = 0.0
        if self.changed and self.module._diff:
            result['diff'] = dict(
                before=dict(archive=dict(path=self.path, checkpoint=self.existing.get('checkpoint'),
                                         container=self.existing.get('container'),
                                         checkpoint_created=self.existing.get('checkpoint_created'))
                            if self.existing else None),
                after=dict(archive=dict(path=self.path, checkpoint=self.checkpoint, container=self.container_name,
                                        compression=self.compression),
                           checkpoint_taken=self.take))
        return result


# -- import ---------------------------------------------------------------------------------------

class ImportManager(Manager):
    """docker_checkpoint_import: plan (verify the archive, check everything this engine needs, decide what
    exists already), act (load, create, apply, stage, restore), report."""

    def __init__(self, module):
        super().__init__(module)
        params = self.params
        self.path = params['path']
        if not os.path.isabs(self.path):
            raise ModuleError('path must be an absolute path, got %r.' % self.path)
        if not os.path.isfile(self.path):
            raise ModuleError('The archive %s does not exist (or is not a regular file). Give the path of a file '
                              'written by cryo.docker.docker_checkpoint_export.' % self.path)
        for spec in params['published_ports'] or []:
            parse_port(spec)
        self.zstd = module.get_bin_path('zstd')
        self.engine = connect(params)
        self.version = self.engine.require_experimental()
        self.engine_info = self.engine.info()
        self.data_root = self.engine_info.get('DockerRootDir') or '/var/lib/docker'
        self.staging_root = params['staging_dir'] or os.path.join(self.data_root, 'cryo-import')
        self.verified = None
        self.plan_ = None
        self.existing = None
        self.action = None          # import | replace | none
        self.steps = []
        self.created_id = None
        self.restore_result = {}
        self.held_policy = None  # the recorded restart policy a cut import left held
        self.warnings = []

    # -- plan

    def plan(self):
        self.verified = fmt.verify(self.path, self.zstd, self.params['checksum'])
        manifest = self.verified.manifest
        record = self.verified.json(fmt.CONTAINER) or {}
        if not record.get('config') or not record.get('image'):
            raise fmt.ArchiveError('The archive %s has no container record (%s): it cannot create the container.'
                                   % (self.path, fmt.CONTAINER))
        name = self.params['container'] or record.get('name')
        self.check_engine(manifest, record)
        self.existing = self.engine.find(name)
        if self.existing is not None:
            self.decide_existing(name, record)
            if self.action in ('none', 'finish'):
                self.plan_ = self.make_plan(name, record, dry=True)
                if self.module.check_mode and self.changed:
                    self.steps = self.predicted()
                return
        self.plan_ = self.make_plan(name, record)
        self.check_room()
        self.action = self.action or 'import'
        self.changed = True
        if self.module.check_mode:
            self.steps = self.predicted()

    def predicted(self):
        """What act() would do, as check mode reports it."""
        plan = self.plan_
        out = []
        if self.action == 'finish':
            return ['would finish the restore that was cut: put back restart policy %s' % self.held_policy['Name']]
        if self.action == 'replace':
            out.append('would remove the container left by an earlier import (%s)' % self.existing['Id'][:12])
        if plan.load_image:
            out.append('would load image %s from the archive' % plan.record['image']['reference'])
        out += ['would create volume %s' % volume['name'] for volume in plan.volumes if volume['create']]
        out.append('would create container %s from %s' % (plan.name, plan.image_ref))
        if self.params['restore']:
            out.append('would restore it from checkpoint %s' % self.verified.manifest['checkpoint']['name'])
        return out

    def check_engine(self, manifest, record):
        """Refuse, before anything is unpacked or created, what this engine cannot take."""
        source = manifest.get('source') or {}
        arch = self.version.get('Arch')
        if source.get('architecture') and arch and source['architecture'] != arch:
            raise ModuleError('The archive %s was written on a %s host (%s), and this engine runs on %s: CRIU restores '
                              'processes only on the CPU architecture they were dumped on. Nothing was created.'
                              % (self.path, source['architecture'], source.get('machine'), arch),
                              reason='architecture', archive_architecture=source['architecture'],
                              engine_architecture=arch)
        if not os.path.isdir(self.data_root):
            raise ModuleError('The data root of the engine at %s (%s) is not on this host: the import stages the '
                              'checkpoint there, so run the module on the engine\'s host.'
                              % (self.params['docker_host'], self.data_root))
        criu_path, criu_version = engine_criu(self.module, self.params['docker_host'])
        dumped = source.get('criu')
        if not criu_path:
            raise ModuleError('No criu on the PATH of the dockerd serving %s, so it cannot restore the checkpoint. '
                              'Install CRIU %s or later (the cryo.docker.criu role). Nothing was created.'
                              % (self.params['docker_host'], dumped or ''), reason='criu')
        if dumped and criu_version and not version_at_least(criu_version, dumped):
            raise ModuleError('The checkpoint in %s was dumped by CRIU %s, and this engine runs CRIU %s (%s): an older '
                              'CRIU cannot be trusted to restore images of a newer one. Install CRIU %s or later (the '
                              'cryo.docker.criu role). Nothing was created.'
                              % (self.path, dumped, criu_version, criu_path, dumped), reason='criu',
                              archive_criu=dumped, engine_criu=criu_version)
        network = record.get('network_mode') or 'default'
        entry = unrestorable(self.version.get('Version'), (record.get('host_config') or {}).get('NetworkMode'))
        if entry is not None:
            raise ModuleError('The container in %s cannot be restored on this engine, so it was not created. %s'
                              % (self.path, unrestorable_msg(self.version.get('Version'), network, entry)),
                              reason='unrestorable', reference=entry['reference'])
        holder = network[len('container:'):] if network.startswith('container:') else None
        if holder:
            found = self.engine.find(holder)
            if found is None or not found['State'].get('Running'):
                raise ModuleError('The container in %s runs in the network namespace of container %s, which %s on '
                                  'this engine. Create and start it first (cryo.docker.docker_network_holder), with '
                                  'that name. Nothing was created.'
                                  % (self.path, holder, 'does not exist' if found is None else 'is not running'),
                                  reason='network_holder')
        for net in record.get('networks') or []:
            if net['name'] not in ('bridge', 'host', 'none') and self.engine.network(net['name']) is None:
                raise ModuleError('Network %s, which the container in %s is on, does not exist on this engine. '
                                  'Create it first (docker network create, or community.docker.docker_network). '
                                  'Nothing was created.' % (net['name'], self.path), reason='network')
        deleted = self.verified.json(fmt.DELETED_FILES) or []
        if deleted and self.params['deleted_files'] == 'remove' and self.engine_info.get('Driver') != 'overlay2':
            raise ModuleError(
                'The archive %s records %d files the container deleted from its image, and this engine\'s storage '
                'driver is %s: the Engine API cannot delete files in a container, and this module does it only on '
                'overlay2 (a whiteout in the container\'s upper directory). Nothing was created. Set deleted_files: '
                'ignore to import it with those files present, as the image has them.'
                % (self.path, len(deleted), self.engine_info.get('Driver') or 'unknown'), reason='deleted_files')

    def decide_existing(self, name, record):
        info = self.existing
        label = ((info.get('Config') or {}).get('Labels') or {}).get(ARCHIVE_LABEL)
        if label != self.verified.sha256:
            raise ModuleError(
                'A container named %s already exists on the engine at %s, and it was not created by an import of this '
                'archive (%s). Nothing was created: choose another name with container, or remove that container.'
                % (name, self.params['docker_host'], 'its label %s is %s' % (ARCHIVE_LABEL, label) if label else
                   'it has no %s label' % ARCHIVE_LABEL), reason='name_taken', container_id=info['Id'])
        state = info.get('State') or {}
        if self.params['force']:
            self.action = 'replace'
        elif state.get('Running'):
            check = self.resumed(state.get('Pid'))
            self.restore_result = dict(verified=check['verified'], verification=check, restored=False)
            if check['verified'] is False:
                self.module.warn('Container %s (from this archive) is running, but not from its checkpoint (%s): '
                                 'something started it afresh. Nothing was done; use force: true to import it again.'
                                 % (name, check['detail']))
            self.action = 'none'
            recorded = (record.get('host_config') or {}).get('RestartPolicy')
            if check['verified'] and self.params['restore'] and self.holds_checkpoint(info) and policy_still_held(
                    recorded, (info.get('HostConfig') or {}).get('RestartPolicy')):
                # An import cut after its restore resumed the container: the restore finishes what it left undone.
                self.action, self.changed, self.held_policy = 'finish', True, recorded
        elif not self.params['restore'] and self.holds_checkpoint(info):
            self.action = 'none'
        elif never_started(info):
            # An import that stopped half-way, or a restore that failed: done again from the start.
            self.action = 'replace'
        else:
            raise ModuleError(
                'Container %s was imported from this archive earlier, has run since, and is now %s: what it did '
                'since is not in the archive, and importing again would lose it. Start it (docker start), or use '
                'force: true to replace it with a fresh import of the archive.' % (name, state.get('Status')),
                reason='ran_since')

    def holds_checkpoint(self, info):
        """Whether a container has the archive's checkpoint in its checkpoint place (restore: false)."""
        checkpoint = self.verified.manifest['checkpoint']['name']
        return store.looks_like_checkpoint(os.path.join(store.engine_dir(self.data_root, info['Id']), checkpoint))

    def resumed(self, pid):
        """Whether PID 1 of a running container is the archive's checkpointed process (memory layout)."""
        data = self.verified.small.get(fmt.CHECKPOINT_DIR + '/mm-1.img')
        method = 'memory-layout'
        try:
            want = store.parse_mm_image(data or b'')
        except (ValueError, IndexError) as exc:
            return dict(verified=None, method=method, detail='the archive\'s mm-1.img cannot be read: %s' % exc)
        found = store.Host().stat(pid) if pid else None
        if found is None:
            return dict(verified=None, method=method, detail='cannot read /proc/%s/stat' % pid)
        return dict(verified=found.layout == want, method=method,
                    detail='PID 1 stack/heap start %#x/%#x, checkpoint %#x/%#x' % (found.layout + want))

    def make_plan(self, name, record, dry=False):
        recorded = record['image']
        carried = self.verified.has(fmt.IMAGE)
        local = self.engine.image(recorded.get('id')) if recorded.get('id') else None
        by_ref = self.engine.image(recorded['reference']) if recorded.get('reference') else None
        load = False
        if local is not None or same_image(by_ref, recorded):
            image_ref = recorded['reference'] if same_image(by_ref, recorded) else recorded['id']
        elif carried:
            load = True
            image_ref = recorded['reference'] if by_ref is None else recorded['id']
        elif dry:
            image_ref = recorded['reference']
        else:
            other = (' (%s on this engine is another image, %s)' % (recorded['reference'], by_ref.get('Id'))
                     if by_ref is not None else '')
            raise ModuleError('Image %s (%s) is not on this engine%s, and the archive %s does not carry it. Nothing '
                              'was created. Export with include_image: true, or load the image here first (docker '
                              'save | docker load from a host that has it).'
                              % (recorded['reference'], recorded.get('id'), other, self.path),
                              reason='image_missing', image=recorded)
        labels = {ARCHIVE_LABEL: self.verified.sha256}
        body, rest = create_body(record, image_ref, labels,
                                 planned_ports(record, self.params['publish'], self.params['published_ports']))
        volumes = self.plan_volumes(record, dry)
        # What one import creates: the container's name, image, body, volumes (image_ref changes once a loaded
        # image is tagged).
        return types.SimpleNamespace(name=name, body=body, rest=rest, record=record, image_ref=image_ref,
                                     load_image=load, volumes=volumes)

    def plan_volumes(self, record, dry):
        """The volumes the archive carries: [{name, destination, member, anonymous, create}]."""
        out = []
        for entry in (self.verified.manifest.get('volumes') or []):
            entry = dict(entry, create=False)
            if not entry.get('anonymous'):
                found = self.engine.volume(entry['name'])
                if found is None:
                    entry['create'] = True
                elif ((found.get('Labels') or {}).get(ARCHIVE_LABEL) != self.verified.sha256) and not dry:
                    raise ModuleError('Volume %s exists on this engine and was not created by an import of this '
                                      'archive: its content would be replaced by the archived one. Nothing was '
                                      'created; remove the volume, or import without it.'
                                      % entry['name'], reason='volume_taken')
                mount = next((m for m in record.get('mounts') or [] if m.get('name') == entry['name']), {})
                entry['driver'] = mount.get('driver') or 'local'
            out.append(entry)
        return out

    def check_room(self):
        """The staging directory's file system holds the unpacked archive, and the engine's what it writes."""
        need = self.verified.file_size() + self.verified.file_size(fmt.IMAGE) + self.verified.file_size(
            fmt.ROOTFS_DIFF) + self.verified.file_size(fmt.VOLUMES_DIR)
        probe = fmt.nearest_existing(self.staging_root)
        reason = fmt.writable_dir(probe)
        if reason:
            raise ModuleError('The archive cannot be unpacked in %s: %s. Nothing was created; give staging_dir.'
                              % (probe, reason))
        _probe, free = free_space(probe)
        if free is not None and free < need + ROOM_MARGIN:
            raise room_error('unpacking the archive and what the engine writes', probe, need + ROOM_MARGIN, free)

    # -- act

    def act(self):
        if self.action == 'finish':
            self.created_id = self.existing['Id']
            self.restore(self.plan_)
            return
        started = time.monotonic()
        plan = self.plan_
        prefix = '%s-%s.' % (self.verified.sha256.split(':', 1)[1][:16], plan.name[:64])  # a name has no length limit
        if not os.path.isdir(self.staging_root):
            store.ensure_private_dir(self.staging_root)
        for name in os.listdir(self.staging_root):
            if name.startswith(prefix):
                shutil.rmtree(os.path.join(self.staging_root, name), ignore_errors=True)
        if self.action == 'replace':
            self.engine.remove_container(self.existing['Id'], force=True)
            self.step('removed the container left by an earlier import (%s)' % self.existing['Id'][:12])
        staging = tempfile.mkdtemp(prefix=prefix, dir=self.staging_root)
        try:
            fmt.extract(self.verified, staging, self.zstd)
            self.step('verified and unpacked the archive (%s)' % human_bytes(self.verified.file_size()))
            self.load_image(plan, staging)
            self.create(plan)
            self.apply_files(plan, staging)
            self.stage_checkpoint(plan, staging)
        except BaseException:
            self.undo_create()
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.import_duration = round(time.monotonic() - started, 3)
        if self.params['restore']:
            self.restore(plan)

    def step(self, text):
        self.steps.append(text)

    def load_image(self, plan, staging):
        if not plan.load_image:
            return
        with open(os.path.join(staging, fmt.IMAGE), 'rb') as handle:
            self.engine.load_image(handle)
        recorded = plan.record['image']
        if self.engine.image(recorded['id']) is None:
            raise ModuleError('The image the archive carries was loaded, but the engine has no image %s now (an '
                              'engine with another image store gives loaded images other ids). Nothing was created.'
                              % recorded['id'])
        if self.engine.image(recorded['reference']) is None and split_reference(recorded['reference'])[1]:
            self.engine.tag_image(recorded['id'], recorded['reference'])
            plan.body['Image'] = plan.image_ref = recorded['reference']
        self.step('loaded image %s (%s)' % (recorded['reference'], recorded['id']))

    def create(self, plan):
        for volume in plan.volumes:
            if volume['create']:
                self.engine.create_volume(volume['name'], volume.get('driver'),
                                          labels={ARCHIVE_LABEL: self.verified.sha256})
                self.step('created volume %s' % volume['name'])
        self.created_id = self.engine.create_from_config(plan.name, plan.body)
        for network, address, aliases in plan.rest:
            self.engine.connect_network(self.created_id, network, ipv4_address=address, aliases=aliases)
        self.step('created container %s (%s) from %s' % (plan.name, self.created_id[:12], plan.image_ref))

    def undo_create(self):
        """A failure before the restore removes the container this run created (nothing half made is left)."""
        if self.created_id:
            try:
                self.engine.remove_container(self.created_id, force=True)
            except EngineError:
                pass
            self.created_id = None

    def apply_files(self, plan, staging):
        diff = os.path.join(staging, fmt.ROOTFS_DIFF)
        if os.path.isfile(diff) and (self.verified.manifest.get('file_changes') or {}).get('members'):
            with open(diff, 'rb') as handle:
                self.engine.put_archive(self.created_id, '/', handle)
            self.step('applied the file changes (%s)' % human_bytes(os.path.getsize(diff)))
        for volume in plan.volumes:
            with open(os.path.join(staging, volume['member']), 'rb') as handle:
                self.engine.put_archive(self.created_id, os.path.dirname(volume['destination'].rstrip('/')) or '/',
                                        handle)
            self.step('filled volume %s at %s' % (
                volume['name'] if not volume.get('anonymous') else '(anonymous)', volume['destination']))
        self.apply_deletions()

    def apply_deletions(self):
        deleted = self.verified.json(fmt.DELETED_FILES) or []
        if not deleted:
            return
        if self.params['deleted_files'] == 'ignore':
            self.module.warn('%d files the container deleted from its image are present again in the imported '
                             'container (deleted_files: ignore): %s' % (len(deleted), ', '.join(deleted[:10])))
            return
        dirs, reason = overlay_dirs(self.engine.inspect(self.created_id))
        if dirs is None:
            raise ModuleError('The %d files the container deleted from its image cannot be deleted in the new '
                              'container: %s. Nothing was left behind; set deleted_files: ignore to import it with '
                              'those files present.' % (len(deleted), reason), reason='deleted_files')
        upper, lowers = dirs
        made = 0
        for path in deleted:
            try:
                if whiteout(upper, lowers, path) == 'whiteout':
                    made += 1
            except (OSError, ValueError) as exc:
                raise ModuleError('Cannot delete %s in the new container (overlay2 whiteout in %s): %s. Nothing was '
                                  'left behind; set deleted_files: ignore to import it with the file present.'
                                  % (path, upper, exc), reason='deleted_files')
        self.step('deleted %d files of the image (overlay2 whiteouts)' % made)

    def stage_checkpoint(self, plan, staging):
        """The unpacked checkpoint goes into the new container's checkpoint place (a rename, on the same file
        system), with its metadata naming the new container and the restart policy to put back."""
        checkpoint = self.verified.manifest['checkpoint']['name']
        source = os.path.join(staging, fmt.CHECKPOINT_DIR)
        meta = store.read_metadata(source)
        policy = (plan.record.get('host_config') or {}).get('RestartPolicy') or {'Name': 'no'}
        store.write_metadata(source, dict(meta, checkpoint=checkpoint, container=plan.name,
                                          container_id=self.created_id, restart_policy=policy,
                                          imported_from=dict(path=self.path, sha256=self.verified.sha256,
                                                             container=plan.record.get('name'),
                                                             container_id=plan.record.get('id'))))
        dest = os.path.join(store.engine_dir(self.data_root, self.created_id), checkpoint)
        store.ensure_private_dir(os.path.dirname(dest))
        try:
            os.rename(source, dest)
        except OSError:
            store.stage(source, dest)
        self.step('staged checkpoint %s into the container' % checkpoint)

    def restore(self, plan):
        checkpoint = self.verified.manifest['checkpoint']['name']
        params = dict(connection(self.params), container=plan.name, containers=None, parallel=None,
                      checkpoint=checkpoint, checkpoint_dir=None, force=False, verify=self.params['verify'],
                      restore_restart_policy=True, fallback=self.params['fallback'],
                      keep_checkpoint=self.params['keep_checkpoint'])
        view = ModuleView(self.module, params)
        batch = types.SimpleNamespace(module=view, params=params, engine=self.engine, single=True)
        task = RestoreTask(batch, self.created_id)
        task.plan()
        if task.changed:
            task.act()
        self.restore_result = task.report()
        self.restore_result.pop('diff', None)
        if task.action == 'finish':
            self.step('finished the restore that was cut (verified): put back restart policy %s%s'
                      % (self.restore_result['restart_policy'].get('Name'),
                         ', removed checkpoint %s' % checkpoint if self.restore_result['checkpoint_removed'] else ''))
        else:
            self.step('restored it from checkpoint %s%s' % (
                checkpoint, ' (verified)' if self.restore_result.get('verified') else ''))

    # -- report

    def report(self):
        plan = self.plan_
        verified = self.verified
        manifest = verified.manifest
        result = dict(changed=self.changed, action=self.action if self.changed else 'none', steps=self.steps)
        result['archive'] = dict(path=self.path, sha256=verified.sha256, size=verified.size,
                                 compression=verified.compression, checkpoint=manifest['checkpoint']['name'],
                                 created=manifest.get('created'), container=manifest['container']['name'],
                                 source=manifest.get('source'), image_carried=manifest['image']['carried'],
                                 members=len(verified.members))
        result['image'] = dict(reference=plan.record['image']['reference'], id=plan.record['image']['id'],
                               loaded=plan.load_image and self.changed and not self.module.check_mode,
                               would_load=plan.load_image)
        result['container'] = summary(plan.name, plan.body, plan.rest, plan.record)
        info = self.engine.find(plan.name) if not (self.module.check_mode and self.changed) else None
        if info is not None:
            running = bool(info['State'].get('Running'))
            # NetworkSettings.Ports also lists the exposed ports that are not published (null bindings).
            bound = {key: value for key, value in ((info.get('NetworkSettings') or {}).get('Ports') or {}).items()
                     if value} if running else {}
            result['container'].update(id=info['Id'], status=info['State'].get('Status'), running=running,
                                       bound_ports=bound_ports(bound))
        else:
            result['container'].update(id=None, status=None, running=False, bound_ports=[])
        result['container']['created'] = bool(self.changed and not self.module.check_mode
                                              and self.action != 'finish')
        result['file_changes'] = dict(manifest.get('file_changes') or {}, deleted=len(
            verified.json(fmt.DELETED_FILES) or []))
        result['volumes'] = [{key: volume.get(key) for key in ('name', 'destination', 'anonymous', 'create')}
                             for volume in plan.volumes]
        restore = dict(restored=False, verified=None, verification=dict(method='none', detail='not restored'),
                       fallback_used=False, duration=0.0, restart_policy_put_back=False)
        restore.update({key: value for key, value in self.restore_result.items() if key != 'container'})
        result.update(restore)
        result['import_duration'] = getattr(self, 'import_duration', 0.0)
        if self.changed and self.module._diff and self.action == 'finish':
            result['diff'] = dict(before=dict(restart_policy='no'), after=dict(restart_policy=self.held_policy['Name']))
        elif self.changed and self.module._diff:
            before = None
            if self.existing is not None:
                before = dict(container=dict(name=plan.name, id=self.existing['Id'],
                                             status=self.existing['State'].get('Status')))
            result['diff'] = dict(before=dict(container=before), after=dict(container=summary(
                plan.name, plan.body, plan.rest, plan.record)))
        return result
