# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""docker_checkpoint_import's manager: check the archive's signature (_signing) when signers are given, verify
it (_archive), treat everything it carries as untrusted input (every name checked as an operator's would be, the
host access its configuration asks for refused unless allowed: _host_access), check that this engine can take
it, then load the image, create the container, apply its file changes, stage the checkpoint and restore it
(through _restore's RestoreBatch, with the guarantees of docker_restore).

Other callers can import the same archive several times (clones) or after carrying it to another host (move):
the plan of one import (what to create, under which name and ports) is apart from the archive's verification,
which is done once per run."""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
import time
import types

from ansible_collections.cryo.docker.plugins.module_utils import _archive as fmt
from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.module_utils import _cpu
from ansible_collections.cryo.docker.plugins.module_utils import _criuconf
from ansible_collections.cryo.docker.plugins.module_utils import _signing
from ansible_collections.cryo.docker.plugins.module_utils._common import (
    Manager,
    ModuleError,
    check_name,
    path_under,
    policy_still_held,
)
from ansible_collections.cryo.docker.plugins.module_utils._containers import (
    ARCHIVE_LABEL,
    connect,
    create_body,
    never_started,
    overlay_dirs,
    planned_ports,
    same_image,
    split_reference,
    summary,
    whiteout,
)
from ansible_collections.cryo.docker.plugins.module_utils._criu import version_at_least
from ansible_collections.cryo.docker.plugins.module_utils._engine import EngineError, connection
from ansible_collections.cryo.docker.plugins.module_utils._holder import bound_ports, parse_port
from ansible_collections.cryo.docker.plugins.module_utils._host import Host, free_space
from ansible_collections.cryo.docker.plugins.module_utils._host_access import (
    checkpoint_access,
    effective,
    host_access,
    refusal_msg,
    refused,
)
from ansible_collections.cryo.docker.plugins.module_utils._imagepath import Runtimes, Unavailable, is_slot_runtime, new_runtime_name
from ansible_collections.cryo.docker.plugins.module_utils._images import (
    ImageError,
    thread_credentials,
    thread_leaders,
    tsync_filters,
)
from ansible_collections.cryo.docker.plugins.module_utils._portable import ROOM_MARGIN, engine_criu, room_error
from ansible_collections.cryo.docker.plugins.module_utils._preflight import human_bytes, unrestorable, unrestorable_msg
from ansible_collections.cryo.docker.plugins.module_utils._restore import RestoreBatch, RestoreParameters


# What an image id and an image reference are (the reference as a tag, a digest or both); an archive's goes into
# Engine API paths.
IMAGE_ID_RE = re.compile(r'(sha256:)?[0-9a-f]{64}')
IMAGE_REFERENCE_RE = re.compile(r'[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?', re.IGNORECASE)


def untrusted(path, what):
    """The refusal of an archive whose content has not the shape an export writes."""
    return fmt.ArchiveError('The archive %s was refused: %s. An archive written by cryo.docker.docker_checkpoint_export '
                            'never has that, so the file was changed after it was written; do not use it. Nothing was '
                            'created.' % (path, what), reason='malformed')


def image_tags(path):
    """The tags `docker load` would set from the image tar at path (docker save format, or the OCI layout Docker
    25 and later write): RepoTags of manifest.json, the legacy `repositories` file, the reference annotations of
    index.json. The export saves the image by id, so an archive of its own carries none."""
    tags = []
    with tarfile.open(path, 'r:', tarinfo=fmt.LimitedInfo) as tar:
        for member in tar:
            if member.name.lstrip('./') not in ('manifest.json', 'repositories', 'index.json') or not member.isreg():
                continue
            if member.size > fmt.SMALL_LIMIT:
                raise ValueError('its %s is %d bytes long' % (member.name, member.size))
            data = json.loads(tar.extractfile(member).read().decode('utf-8'))
            name = member.name.lstrip('./')
            if name == 'manifest.json':
                tags += [tag for entry in data or [] for tag in (entry or {}).get('RepoTags') or []]
            elif name == 'repositories':
                tags += ['%s:%s' % (repo, tag) for repo, named in (data or {}).items() for tag in named or {}]
            else:
                tags += [value for entry in (data or {}).get('manifests') or []
                         for key, value in ((entry or {}).get('annotations') or {}).items()
                         if key in ('io.containerd.image.name', 'org.opencontainers.image.ref.name')]
    return tags


def check_record(path, record, manifest, deleted, members):
    """The container record and the manifest's names as the import uses them, each checked as user input: the
    checkpoint, container, holder, network and volume names, the volume members and destinations, the deleted
    paths, and that each volume member is a file the archive holds (members: what the verification read). Raises
    ArchiveError (or ModuleError for a name) before anything is unpacked or created."""
    shapes = ((record, dict, 'its container record is not an object'),
              (record.get('config'), dict, 'its container record has no config object'),
              (record.get('host_config'), dict, 'its container record has no host_config object'),
              (record.get('image'), dict, 'its container record has no image object'),
              (record.get('networks') or [], list, 'the networks of its container record are not a list'),
              (record.get('mounts') or [], list, 'the mounts of its container record are not a list'),
              (manifest.get('checkpoint'), dict, 'its manifest has no checkpoint object'),
              (manifest.get('volumes') or [], list, 'the volumes of its manifest are not a list'),
              (deleted, list, 'its %s is not a list' % fmt.DELETED_FILES))
    for value, kind, what in shapes:
        if not isinstance(value, kind):
            raise untrusted(path, what)
    image = record['image']
    for key, pattern in (('id', IMAGE_ID_RE), ('reference', IMAGE_REFERENCE_RE)):
        value = image.get(key)
        if value is not None and not (isinstance(value, str) and pattern.fullmatch(value)
                                      and '..' not in value.split('/')):
            raise untrusted(path, 'the image %s of its container record is %r' % (key, value))
    check_name('checkpoint', manifest['checkpoint'].get('name'), path)
    if record.get('name') is not None:
        check_name('container', record['name'], path)
    network_mode = record.get('network_mode') or 'default'
    host_mode = record['host_config'].get('NetworkMode') or 'default'
    for mode in (network_mode, host_mode):
        if not isinstance(mode, str):
            raise untrusted(path, 'its network mode is %r' % (mode,))
        if mode.startswith('container:'):
            check_name('container', mode[len('container:'):], path)
    if network_mode != host_mode:
        # The engine gets HostConfig.NetworkMode; the checks of the network holder read network_mode: one value.
        raise untrusted(path, 'its network mode is %r, and its HostConfig says %r' % (network_mode, host_mode))
    for net in record['networks'] + record['mounts']:
        if not isinstance(net, dict):
            raise untrusted(path, 'a network or mount of its container record is %r' % (net,))
    for net in record['networks']:
        check_name('network', net.get('name'), path)
    for volume in manifest['volumes']:
        if not isinstance(volume, dict):
            raise untrusted(path, 'a volume of its manifest is %r' % (volume,))
        check_name('volume member', volume.get('member'), path)
        check_name('volume', volume.get('name'), path)
        destination = volume.get('destination')
        if not (isinstance(destination, str) and destination.startswith('/') and destination.isprintable()
                and (destination == '/' or posixpath.normpath(destination) == destination.rstrip('/'))):
            raise untrusted(path, 'the destination of volume %s is %r, not a plain absolute path'
                            % (volume['name'], destination))
        if (members.get(volume['member']) or {}).get('type') != 'file':
            raise untrusted(path, 'its manifest lists the volume member %s, which it does not hold as a file'
                            % volume['member'])
    for entry in deleted:
        if not (isinstance(entry, str) and entry.startswith('/') and entry.isprintable()):
            raise untrusted(path, 'its %s lists %r, not an absolute path' % (fmt.DELETED_FILES, entry))


class ImportManager(Manager):
    """docker_checkpoint_import: plan (verify the archive, check everything this engine needs, decide what
    exists already), act (load, create, apply, stage, restore), report."""

    def __init__(self, module, params=None):
        super().__init__(module)
        if params is not None:
            self.params = params  # a group's member: the module's options, with this member's path and name
        params = self.params
        self.path = params['path']
        if not os.path.isabs(self.path):
            raise ModuleError('path must be an absolute path, got %r.' % self.path)
        if not os.path.isfile(self.path):
            raise ModuleError('The archive %s does not exist (or is not a regular file). Give the path of a file '
                              'written by cryo.docker.docker_checkpoint_export.' % self.path)
        for spec in params['published_ports'] or []:
            parse_port(spec)
        self.allowed_signers = params['allowed_signers']
        self.signature_file = params['signature_file'] or _signing.signature_path(self.path)
        self.ssh_keygen = module.get_bin_path('ssh-keygen') if self.allowed_signers else None
        self.signature = None
        self.host_access = []
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
        self.runtimes = None  # the engine's image-path runtimes, when the restore takes that path
        self.runtime = None   # the runtime of the container's own this import defines
        self.method_reason = None
        self.warnings = []
        self.cpu = None  # what the CPU check found

    # -- plan

    def plan(self):
        if self.allowed_signers:
            # Before a byte of the archive is parsed: only what a trusted key signed is read as a tar.
            self.signature = _signing.verify(self.ssh_keygen, self.allowed_signers, self.path, self.signature_file)
        self.verified = fmt.verify(self.path, self.zstd, self.params['checksum'], room=self.unpack_room())
        if self.signature and self.signature['sha256'] != self.verified.sha256:
            raise fmt.ArchiveError('The archive %s changed after its signature was checked (sha256 %s, then %s). '
                                   'Nothing was created; make sure nothing writes the file, and run again.'
                                   % (self.path, self.signature['sha256'], self.verified.sha256), reason='changed')
        manifest = self.verified.manifest
        record = self.verified.json(fmt.CONTAINER)
        if not isinstance(record, dict) or not record.get('config') or not record.get('image'):
            raise fmt.ArchiveError('The archive %s has no container record (%s): it cannot create the container.'
                                   % (self.path, fmt.CONTAINER))
        check_record(self.path, record, manifest, self.verified.json(fmt.DELETED_FILES, []), self.verified.members)
        meta = self.verified.json(fmt.CHECKPOINT_METADATA) or {}
        if not isinstance(meta, dict):
            raise untrusted(self.path, 'the metadata of its checkpoint (%s) is not an object' % fmt.CHECKPOINT_METADATA)
        try:
            _criuconf.check_recorded(meta.get('criu_options'))
        except ValueError as exc:
            raise untrusted(self.path, str(exc))
        name = self.params['container'] or record.get('name')
        self.check_engine(manifest, record)
        self.check_host_access(record, manifest)
        self.existing = self.engine.find(name)
        if self.existing is not None:
            self.decide_existing(name, record)
            if self.action in ('none', 'finish'):
                self.plan_ = self.make_plan(name, record, dry=True)
                if self.module.check_mode and self.changed:
                    self.steps = self.predicted()
                return
        self.plan_ = self.make_plan(name, record)
        self.choose_method()
        self.check_room()
        self.action = self.action or 'import'
        self.changed = True
        if self.module.check_mode:
            self.steps = self.predicted()

    def choose_method(self):
        """Whether the container gets a runtime of its own to restore through an image path (restore_method auto
        where the engine allows it, image_path or fail); warm needs it."""
        method = self.params['restore_method']
        # A group's member is restored afterwards, with the group (_group_archive): it may take the image path too.
        restored = self.params['restore'] or self.params.get('restored_with_group')
        if not restored or (method == 'engine' and not self.params['warm']):
            return
        try:
            self.runtimes = Runtimes.find(self.engine, self.params['docker_host'])
        except Unavailable as exc:
            if self.params['warm'] or method == 'image_path':
                raise ModuleError('The import cannot %s: the image-path restore cannot be taken on this engine: %s. '
                                  'Nothing was created. %s' % (
                                      'create a warm container' if self.params['warm'] else 'use restore_method '
                                      'image_path', exc.reason, 'A warm container needs Docker 23 or later on this '
                                      'host.' if self.params['warm'] else 'Use restore_method auto or engine.'),
                                  reason='image_path')
            self.method_reason = 'the image path cannot be taken: %s' % exc.reason

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
        own = ' with a runtime of its own' if self.runtimes else ''
        out.append('would create container %s from %s%s' % (plan.name, plan.image_ref, own))
        if self.params['restore']:
            out.append('would restore it from checkpoint %s%s' % (self.verified.manifest['checkpoint']['name'],
                                                                  ' through its image path' if self.runtimes else ''))
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
        self.check_cpu(source.get('cpu'), criu_path)
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

    def check_cpu(self, recorded, criu_path):
        """Refuse, before anything is unpacked or created, an archive whose recorded CPU has instruction sets (or an
        FPU layout) this host's lacks (_cpu); an archive that records none is imported with a warning."""
        if not _cpu.well_formed(recorded):
            raise untrusted(self.path, 'the CPU its manifest records is not an object with a list of flags')
        image = self.verified.small.get(fmt.CPUINFO)
        if self.verified.has(fmt.CPUINFO) and (image is None or len(image) > _cpu.IMAGE_LIMIT):
            raise untrusted(self.path, 'its %s is larger than any CPU\'s image' % fmt.CPUINFO)
        self.cpu = _cpu.check(_cpu.runner(self.module), criu_path, recorded, image, Host().read('cpuinfo'),
                              self.params['cpu_check'], self.path)
        warning = self.cpu.pop('warning')
        if warning:
            self.module.warn(warning)

    def unpack_room(self):
        """The bytes an archive may unpack to here: the free space where it is staged, less the margin."""
        _probe, free = free_space(fmt.nearest_existing(self.staging_root))
        return None if free is None else max(0, free - ROOM_MARGIN)

    def check_host_access(self, record, manifest):
        """Refuse, before anything is created, the host access the recorded configuration asks for, and what the
        checkpoint's own images would give its processes beyond it, that allow does not grant; self.host_access
        lists all of it."""
        carried = [volume['name'] for volume in manifest.get('volumes') or [] if not volume.get('anonymous')]
        threads = []
        for name, data in sorted(self.verified.small.items()):
            if fmt.CORE_IMAGE_RE.fullmatch(name):
                try:
                    threads.append(thread_credentials(data, posixpath.basename(name)))
                except ImageError as exc:
                    raise untrusted(self.path, 'its checkpoint image %s cannot be read (%s)' % (name, exc))
        # Which threads get their leader's filter (CRIU's TSYNC): none, when either image is missing or unreadable.
        try:
            leaders = thread_leaders(self.verified.small[fmt.CHECKPOINT_DIR + '/pstree.img'])
            tsync = tsync_filters(self.verified.small[fmt.CHECKPOINT_DIR + '/seccomp.img'])
        except (KeyError, ImageError):
            leaders, tsync = {}, set()
        self.host_access = host_access(record, carried) + checkpoint_access(threads, record, leaders, tsync)
        missing = refused(self.host_access, self.params['allow'])
        if missing:
            raise ModuleError(refusal_msg(self.path, self.host_access, self.params['allow']), reason='host_access',
                              host_access=self.host_access,
                              allow_missing=sorted({item['allow'] for item in missing}))

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
                shutil.rmtree(path_under(self.staging_root, name), ignore_errors=True)
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
        image = os.path.join(staging, fmt.IMAGE)
        try:
            tags = image_tags(image)
        except (tarfile.TarError, ValueError, AttributeError, TypeError, OSError) as exc:
            raise untrusted(self.path, 'the image it carries cannot be read as a docker save tar (%s)' % exc)
        if tags:
            # docker load would move these tags on this engine to the archive's image, whatever they name now.
            raise untrusted(self.path, 'the image it carries would tag images on this engine (%s)'
                            % ', '.join(str(tag)[:80] for tag in tags[:5]))
        with open(image, 'rb') as handle:
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
        host_config = plan.body.setdefault('HostConfig', {})
        if is_slot_runtime(host_config.get('Runtime')):
            # The source's own restore runtime: not this engine's, and never another container's here.
            host_config.pop('Runtime')
        if self.runtimes:
            self.runtimes.prune(lambda container_id: self.engine.find(container_id) is not None)
            self.runtime = new_runtime_name()
            self.runtimes.make_slot(self.runtime, container=plan.name, mode='warm' if self.params['warm'] else 'once')
            self.runtimes.arm(self.runtime)
            host_config['Runtime'] = self.runtime
            self.step('defined runtime %s for it (restores in place from its checkpoint)' % self.runtime)
        for volume in plan.volumes:
            if volume['create']:
                self.engine.create_volume(volume['name'], volume.get('driver'),
                                          labels={ARCHIVE_LABEL: self.verified.sha256})
                self.step('created volume %s' % volume['name'])
        self.created_id = self.engine.create_from_config(plan.name, plan.body)
        if self.runtime:
            self.runtimes.write_slot(self.runtime, container_id=self.created_id)
        for network, address, aliases in plan.rest:
            self.engine.connect_network(self.created_id, network, ipv4_address=address, aliases=aliases)
        self.step('created container %s (%s) from %s' % (plan.name, self.created_id[:12], plan.image_ref))

    def undo_create(self):
        """A failure before the restore removes the container this run created, and its runtime (nothing half made
        is left)."""
        if self.created_id:
            try:
                self.engine.remove_container(self.created_id, force=True)
            except EngineError:
                pass
            self.created_id = None
        if self.runtime:
            self.runtimes.forget(self.runtime)
            self.runtime = None

    def apply_files(self, plan, staging):
        diff = os.path.join(staging, fmt.ROOTFS_DIFF)
        if os.path.isfile(diff) and (self.verified.manifest.get('file_changes') or {}).get('members'):
            with open(diff, 'rb') as handle:
                self.engine.put_archive(self.created_id, '/', handle)
            self.step('applied the file changes (%s)' % human_bytes(os.path.getsize(diff)))
        for volume in plan.volumes:
            with open(path_under(staging, *volume['member'].split('/')), 'rb') as handle:
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
        store.retarget_cgroups(source, self.created_id, meta.get('container_id'))
        dest = path_under(store.engine_dir(self.data_root, self.created_id), checkpoint)
        store.ensure_private_dir(os.path.dirname(dest))
        try:
            os.rename(source, dest)
        except OSError:
            store.stage(source, dest)
            fmt.fsync_tree(dest)
        # What the restore, and a move's removal of its source, rely on is on disk before either.
        fmt.fsync_dir(dest)
        fmt.fsync_dir(os.path.dirname(dest))
        self.step('staged checkpoint %s into the container' % checkpoint)
        if self.params['warm']:
            self.runtimes.make_warm(self.runtime, checkpoint, dest)
        elif self.runtime:
            self.runtimes.point(self.runtime, dest)

    def restore(self, plan):
        checkpoint = self.verified.manifest['checkpoint']['name']
        batch = RestoreBatch(self.module, RestoreParameters(
            container=self.created_id, checkpoint=checkpoint, verify=self.params['verify'],
            fallback=self.params['fallback'], keep_checkpoint=self.params['keep_checkpoint'] or self.params['warm'],
            method=self.params['restore_method'] if self.runtime or self.action == 'finish' else 'engine',
            **dict(connection(self.params), **_criuconf.given(self.params))), self.engine)
        batch.plan()
        if batch.changed:
            batch.act()
        task = batch.tasks[0]
        self.restore_result = task.report()
        self.restore_result.pop('diff', None)
        if task.action == 'finish':
            self.step('finished the restore that was cut (verified): put back restart policy %s%s'
                      % (self.restore_result['restart_policy'].get('Name'),
                         ', removed checkpoint %s' % checkpoint if self.restore_result['checkpoint_removed'] else ''))
        else:
            self.step('restored it from checkpoint %s%s%s' % (
                checkpoint, ' through its image path' if self.restore_result.get('method') == 'image_path' else '',
                ' (verified)' if self.restore_result.get('verified') else ''))

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
            actual = effective(info)
            result['container'].update(id=info['Id'], status=info['State'].get('Status'), running=running,
                                       bound_ports=bound_ports(bound), effective=actual,
                                       mounts=['%s:%s' % (mount['source'], mount['destination'])
                                               for mount in actual['mounts']])
        else:
            result['container'].update(id=None, status=None, running=False, bound_ports=[], effective=None)
        result['container']['runtime'] = (info or {}).get('HostConfig', {}).get('Runtime') if info else None
        result['container']['warm'] = bool(self.params['warm'] and self.runtime)
        result['host_access'] = self.host_access
        result['signature'] = self.signature
        result['container']['created'] = bool(self.changed and not self.module.check_mode
                                              and self.action != 'finish')
        result['file_changes'] = dict(manifest.get('file_changes') or {}, deleted=len(
            verified.json(fmt.DELETED_FILES) or []))
        result['volumes'] = [{key: volume.get(key) for key in ('name', 'destination', 'anonymous', 'create')}
                             for volume in plan.volumes]
        restore = dict(restored=False, verified=None, verification=dict(method='none', detail='not restored'),
                       fallback_used=False, duration=0.0, restart_policy_put_back=False, retries={})
        restore.update({key: value for key, value in self.restore_result.items() if key != 'container'})
        if self.method_reason and 'method_reason' not in restore:
            restore['method_reason'] = self.method_reason
        result.update(restore)
        result['import_duration'] = getattr(self, 'import_duration', 0.0)
        result['cpu'] = self.cpu
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
