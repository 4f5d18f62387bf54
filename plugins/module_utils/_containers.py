# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""A container as something to carry: its recorded configuration, its file changes, its image and
volumes, and the Engine API calls that read and write them.

ContainerEngine adds to _holder.HolderEngine (create, remove, connect to a network) the general calls
an export and an import need - the writable layer's changes, the archive endpoint both ways, image
save, load and tag, volumes - over the docker SDK's public APIClient methods. Looking a container or a
network up (find, network) is _engine.Engine's, since checkpoint_preflight asks it too.

Recording a container keeps its Config and HostConfig as the Engine API gives them (what
`POST /containers/create` takes back), its networks' endpoint settings, its mounts and its image's
identity; `create_body` turns that record into the body that creates the container again.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile

from ansible_collections.cryo.docker.plugins.module_utils._engine import EngineError
from ansible_collections.cryo.docker.plugins.module_utils._engine import connect as engine_connect
from ansible_collections.cryo.docker.plugins.module_utils._holder import (
    HolderEngine,
    bound_ports,
    network_target,
    parse_port,
    port_arguments,
    port_text,
    port_tuples,
)
from ansible_collections.cryo.docker.plugins.module_utils._host import read_json, runtime_root, task_bundle_dirs

# The label an import puts on the container it creates (and the named volumes it creates): the sha256 of
# the archive it came from. A container of that name with this label is an earlier import of the same archive.
ARCHIVE_LABEL = 'cryo.docker.archive'
RECORD_FORMAT = 1
CHUNK = 1 << 20

# Change kinds of GET /containers/{id}/changes.
MODIFIED, ADDED, DELETED = 0, 1, 2

# Config fields POST /containers/create takes back as inspect gives them (Image is set apart).
CONFIG_FIELDS = ('Hostname', 'Domainname', 'User', 'AttachStdin', 'AttachStdout', 'AttachStderr', 'ExposedPorts',
                 'Tty', 'OpenStdin', 'StdinOnce', 'Env', 'Cmd', 'Healthcheck', 'ArgsEscaped', 'Volumes', 'WorkingDir',
                 'Entrypoint', 'NetworkDisabled', 'MacAddress', 'OnBuild', 'Labels', 'StopSignal', 'StopTimeout',
                 'Shell')
# HostConfig fields that name something of the source host only.
HOST_CONFIG_DROP = ('ContainerIDFile',)
ZERO_TIME = '0001-01-01T00:00:00Z'


class ContainerEngine(HolderEngine):
    """_holder.HolderEngine with the calls that carry a container to another engine."""

    # -- containers

    def file_changes(self, container):
        """The writable layer's changes: [{'Path': '/etc/x', 'Kind': 0 modified | 1 added | 2 deleted}]."""
        return self._sdk_saying('The Docker Engine at %s cannot list the file changes of container %s (GET '
                                '/containers/{id}/changes)' % (self.host, container), self.client.diff, container) or []

    def create_from_config(self, name, body):
        """POST /containers/create with a whole body (Config fields, HostConfig, NetworkingConfig); the id."""
        try:
            created = self._sdk(self.client.create_container_from_config, body, name=name)
        except EngineError as exc:
            raise self._explain_create(exc, name, body.get('Image'), (body.get('HostConfig') or {}).get('NetworkMode'))
        return created['Id']

    def get_archive(self, container, path):
        """(iterator of bytes, stat) of GET /containers/{id}/archive?path=...: a tar of path, its last
        component first (a file /etc/x gives the member x, a directory /tmp/d gives d, d/...)."""
        return self._sdk_saying('Cannot read %s of container %s through the Engine API' % (path, container),
                                self.client.get_archive, container, path, chunk_size=CHUNK)

    def put_archive(self, container, path, data):
        """PUT /containers/{id}/archive?path=...: unpack a tar (bytes or a file object) at path in the
        container (created or stopped: the engine mounts its file system and volumes for the call)."""
        ok = self._sdk_saying('Cannot write files into container %s at %s through the Engine API' % (container, path),
                              self.client.put_archive, container, path, data)
        if not ok:
            raise EngineError('The Docker Engine did not unpack the files into container %s at %s.' % (container, path))

    # -- images

    def image(self, image):
        """The inspect of an image (name or id), or None when the engine does not have it."""
        return self._sdk_or_none(self.client.inspect_image, image)

    def save_image(self, image):
        """GET /images/{name}/get: the image as a docker save tarball, an iterator of bytes."""
        return self._sdk(self.client.get_image, image, chunk_size=CHUNK)

    def load_image(self, handle):
        """POST /images/load with a docker save tarball (a file object, streamed); the engine's messages."""
        messages = []
        try:
            for entry in self._sdk(self.client.load_image, handle) or []:
                if isinstance(entry, dict) and entry.get('error'):
                    raise EngineError('The Docker Engine at %s could not load the image: %s'
                                      % (self.host, entry['error']), engine_message=entry['error'])
                if isinstance(entry, dict) and entry.get('stream'):
                    messages.append(entry['stream'].strip())
        except EngineError:
            raise
        except Exception as exc:  # pylint: disable=broad-except
            raise EngineError('The Docker Engine at %s could not load the image: %s' % (self.host, exc))
        return messages

    def tag_image(self, image, reference):
        repository, tag = split_reference(reference)
        self._sdk(self.client.tag, image, repository, tag)

    # -- volumes

    def volume(self, name):
        return self._sdk_or_none(self.client.inspect_volume, name)

    def create_volume(self, name, driver=None, driver_opts=None, labels=None):
        return self._sdk(self.client.create_volume, name=name, driver=driver or 'local', driver_opts=driver_opts or None,
                         labels=labels or None)


def connect(params):
    """A ContainerEngine for a module's connection options (as _engine.connect)."""
    return engine_connect(params, ContainerEngine)


def split_reference(reference):
    """(repository, tag) of an image reference; tag None for a digest reference or none given."""
    if '@' in reference:
        return reference.split('@', 1)[0], None
    slash = reference.rfind('/')
    colon = reference.rfind(':')
    if colon > slash:
        return reference[:colon], reference[colon + 1:]
    return reference, 'latest'


def never_started(info):
    return ((info.get('State') or {}).get('StartedAt') or ZERO_TIME).startswith('0001-01-01')


# -- the record of a container -------------------------------------------------------------------------

def _clean(value):
    """A copy without the keys whose value is None."""
    return {key: item for key, item in (value or {}).items() if item is not None}


def record_container(info, image_info, restart_policy, resolve_container=None):
    """What container.json holds: enough to create the container again on another engine.

    info: its inspect; image_info: its image's inspect (None when gone); restart_policy: the policy to
    give it back (the one recorded with the checkpoint: a held policy is "no" on the container);
    resolve_container(id) names the container a network mode container:<id> joins."""
    config = info.get('Config') or {}
    host_config = {key: value for key, value in (info.get('HostConfig') or {}).items() if key not in HOST_CONFIG_DROP}
    host_config['RestartPolicy'] = dict(restart_policy or host_config.get('RestartPolicy') or {'Name': 'no'})
    network_mode = host_config.get('NetworkMode') or 'default'
    target = network_target(network_mode)
    if target and resolve_container:
        name = resolve_container(target)
        if name:
            network_mode = 'container:' + name
            host_config['NetworkMode'] = network_mode
    networks = []
    if not target and network_mode not in ('host', 'none'):
        short = (info.get('Id') or '')[:12]
        for name, endpoint in sorted(((info.get('NetworkSettings') or {}).get('Networks') or {}).items()):
            endpoint = endpoint or {}
            ipam = endpoint.get('IPAMConfig') or {}
            aliases = [alias for alias in endpoint.get('Aliases') or [] if alias != short]
            networks.append(dict(name=name, aliases=aliases, ipv4_address=ipam.get('IPv4Address') or None,
                                 ipv6_address=ipam.get('IPv6Address') or None, links=endpoint.get('Links') or None))
    image_info = image_info or {}
    return dict(
        format=RECORD_FORMAT,
        name=(info.get('Name') or '').lstrip('/'),
        id=info.get('Id'),
        created=info.get('Created'),
        platform=info.get('Platform') or 'linux',
        image=dict(reference=config.get('Image'), id=info.get('Image'),
                   layers=list(((image_info.get('RootFS') or {}).get('Layers')) or []),
                   repo_tags=list(image_info.get('RepoTags') or []), architecture=image_info.get('Architecture'),
                   os=image_info.get('Os'), size=image_info.get('Size')),
        config={key: config[key] for key in CONFIG_FIELDS if key in config},
        host_config=host_config,
        network_mode=network_mode,
        networks=networks,
        mounts=[dict(type=mount.get('Type'), name=mount.get('Name'), source=mount.get('Source'),
                     destination=mount.get('Destination'), driver=mount.get('Driver'), rw=mount.get('RW', True))
                for mount in info.get('Mounts') or []],
        runtime=host_config.get('Runtime') or 'runc',
    )


def planned_ports(record, publish='keep', published_ports=None):
    """The published ports an import gives the container, for create_body: None keeps the recorded ones.

    published_ports (a list) replaces them; publish 'drop' publishes none; 'remap' keeps every recorded
    container port, protocol and host address and leaves the host port to the engine (a free one each, so
    that clones of one archive do not compete for it)."""
    if published_ports is not None:
        return list(published_ports)
    if publish == 'drop':
        return []
    if publish == 'remap':
        return [port_text(container, proto, ip, '') for container, proto, ip, _host in
                port_tuples((record.get('host_config') or {}).get('PortBindings'))]
    return None


def create_body(record, image, labels=None, published_ports=None):
    """The body of POST /containers/create for a recorded container, and the other networks to connect
    before it starts [(name, ipv4_address, aliases)].

    image: the reference (or id) to create it from on this engine; labels: added to the recorded ones;
    published_ports: None keeps the recorded ones, a list replaces them ([] publishes nothing). The
    restart policy is "no" at creation: the restore puts the recorded one back once the container runs,
    so that nothing can start it afresh before."""
    body = {key: value for key, value in (record.get('config') or {}).items() if value is not None}
    body['Image'] = image
    body['Labels'] = dict(body.get('Labels') or {}, **(labels or {}))
    host_config = _clean(record.get('host_config'))
    host_config['RestartPolicy'] = {'Name': 'no', 'MaximumRetryCount': 0}
    if published_ports is not None:
        ports, bindings = port_arguments([parse_port(spec) for spec in published_ports])
        host_config['PortBindings'] = {key: [{'HostIp': ip or '', 'HostPort': host or ''} for ip, host in value]
                                       for key, value in bindings.items()}
        exposed = dict(body.get('ExposedPorts') or {})
        for port, proto in ports:
            exposed['%s/%s' % (port, proto)] = {}
        body['ExposedPorts'] = exposed
    body['HostConfig'] = host_config
    networks = list(record.get('networks') or [])
    rest = []
    if networks:
        first = networks[0]
        endpoint = {}
        if first.get('ipv4_address') or first.get('ipv6_address'):
            endpoint['IPAMConfig'] = _clean(dict(IPv4Address=first.get('ipv4_address'),
                                                 IPv6Address=first.get('ipv6_address')))
        if first.get('aliases') and first['name'] != 'bridge':
            endpoint['Aliases'] = list(first['aliases'])
        body['NetworkingConfig'] = {'EndpointsConfig': {first['name']: endpoint}}
        rest = [(net['name'], net.get('ipv4_address'), net.get('aliases') if net['name'] != 'bridge' else None)
                for net in networks[1:]]
    return body, rest


def summary(name, body, rest, record):
    """The container an import creates, as check mode and the result show it."""
    host_config = body.get('HostConfig') or {}
    networks = list((body.get('NetworkingConfig') or {}).get('EndpointsConfig') or {}) + [net[0] for net in rest]
    return dict(
        name=name, image=body.get('Image'), command=body.get('Cmd'), entrypoint=body.get('Entrypoint'),
        user=body.get('User') or '', working_dir=body.get('WorkingDir') or '', hostname=body.get('Hostname'),
        network_mode=host_config.get('NetworkMode'), networks=networks,
        published_ports=bound_ports(host_config.get('PortBindings')),
        mounts=['%s:%s' % (mount.get('name') or mount.get('source'), mount.get('destination'))
                for mount in record.get('mounts') or []],
        restart_policy=((record.get('host_config') or {}).get('RestartPolicy') or {}).get('Name') or 'no',
        labels=body.get('Labels') or {},
    )


def same_image(image_info, recorded):
    """Whether an image on this engine is the recorded one: the same id, or the same layers (content)."""
    if not image_info:
        return False
    if image_info.get('Id') == recorded.get('id'):
        return True
    layers = list(((image_info.get('RootFS') or {}).get('Layers')) or [])
    return bool(layers) and layers == list(recorded.get('layers') or [])


# -- file changes ------------------------------------------------------------------------------------

def plan_changes(changes):
    """Which paths to fetch for the writable layer, from GET /containers/{id}/changes.

    (fetch, deleted, counts): fetch lists the paths whose archive to read, the fewest that cover every
    changed and added file (an added directory brings everything below it; a modified directory only
    its changed entries, never its unchanged image files); deleted the deleted paths."""
    entries = sorted(((change.get('Path') or '').rstrip('/') or '/', change.get('Kind')) for change in changes or [])
    paths = [path for path, _kind in entries]
    counts = dict(changed=0, added=0, deleted=0)
    fetch, deleted, covered = [], [], None
    for index, (path, kind) in enumerate(entries):
        if kind == DELETED:
            counts['deleted'] += 1
            deleted.append(path)
            continue
        counts['changed' if kind == MODIFIED else 'added'] += 1
        if covered and (path + '/').startswith(covered + '/'):
            continue
        has_children = index + 1 < len(paths) and paths[index + 1].startswith(path.rstrip('/') + '/')
        if kind == MODIFIED and has_children:
            continue  # a directory of the image: its changed entries are listed and fetched one by one
        fetch.append(path)
        if kind == ADDED and has_children:
            covered = path
    return fetch, deleted, counts


def rebase(member, prefix):
    """A member of GET .../archive?path=P renamed under P's parent directory (relative to /)."""
    member.name = posixpath.join(prefix, member.name) if prefix else member.name
    if member.islnk():
        member.linkname = posixpath.join(prefix, member.linkname) if prefix else member.linkname
    return member


class _IterReader:
    """An iterator of byte chunks as a file object, for tarfile's stream mode."""

    def __init__(self, chunks):
        self.chunks = iter(chunks)
        self.chunk = b''
        self.pos = 0

    def read(self, size=-1):
        out = []
        wanted = size if size is not None and size >= 0 else None
        while wanted is None or wanted > 0:
            if self.pos >= len(self.chunk):
                try:
                    self.chunk, self.pos = next(self.chunks), 0
                except StopIteration:
                    break
                continue
            end = len(self.chunk) if wanted is None else min(len(self.chunk), self.pos + wanted)
            out.append(self.chunk[self.pos:end])
            if wanted is not None:
                wanted -= end - self.pos
            self.pos = end
        return b''.join(out)


def write_rootfs_diff(engine, container, paths, target):
    """Write rootfs-diff.tar (paths relative to /) at target from the archive endpoint's answers for
    each path; the number of members written. A path gone since the changes were listed is skipped."""
    count = 0
    with tarfile.open(target, 'w', format=tarfile.PAX_FORMAT) as out:
        for path in paths:
            try:
                chunks, _stat = engine.get_archive(container, path)
            except EngineError as exc:
                if exc.status == 404:
                    continue
                raise
            prefix = posixpath.dirname(path).lstrip('/')
            with tarfile.open(fileobj=_IterReader(chunks), mode='r|') as source:
                for member in source:
                    rebase(member, prefix)
                    if member.isreg():
                        out.addfile(member, source.extractfile(member))
                    else:
                        out.addfile(member)
                    count += 1
    return count


def copy_stream(chunks, target):
    """Write an iterator of bytes to a new private file; its size."""
    size = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, 'wb') as handle:
        for chunk in chunks:
            handle.write(chunk)
            size += len(chunk)
    return size


# -- deleted files: overlay2 whiteouts ---------------------------------------------------------------

def overlay_dirs(info):
    """(upper dir, [lower dirs, top first]) of a container on overlay2 whose layers are on this host, or
    (None, reason)."""
    driver = info.get('GraphDriver') or {}
    data = driver.get('Data') or {}
    if driver.get('Name') != 'overlay2':
        return None, 'its storage driver is %s, not overlay2' % (driver.get('Name') or 'not reported')
    upper = data.get('UpperDir')
    if not upper or not os.path.isdir(upper):
        return None, 'its overlay2 upper directory (%s) is not on this host' % (upper or 'not reported')
    lowers = [path for path in (data.get('LowerDir') or '').split(':') if path]
    return (upper, lowers), None


def _parts(path):
    relative = posixpath.normpath('/' + path).lstrip('/')
    parts = [part for part in relative.split('/') if part]
    if not parts or '..' in parts:
        return None
    return parts


def _lower_stat(lowers, parts):
    """lstat of a path in the first lower layer that has it (None when none has it). A lower layer's own
    whiteout hides the layers below."""
    for lower in lowers:
        try:
            st = os.lstat(os.path.join(lower, *parts))
        except OSError:
            continue
        if is_whiteout(st):
            return None
        return st
    return None


def make_whiteout(name, dir_fd):
    """The overlay whiteout itself: a character device 0/0 (needs CAP_MKNOD, as root has)."""
    os.mknod(name, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=dir_fd)


def is_whiteout(st):
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def whiteout(upper, lowers, path):
    """Hide path of the image in a created container, as overlayfs does for a deleted file: a 0/0
    character device of that name in the container's upper directory. Parent directories missing in the
    upper directory are made with the image's owner, mode and times. Nothing is followed: each component
    is opened with O_NOFOLLOW below the upper directory.

    'whiteout' (made), 'present' (already one), 'absent' (not in the image: nothing to hide), or raises
    OSError/ValueError when it cannot be done."""
    parts = _parts(path)
    if parts is None:
        raise ValueError('%r is not a path below /' % path)
    if _lower_stat(lowers, parts) is None:
        return 'absent'
    fd = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for index, part in enumerate(parts[:-1]):
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                st = _lower_stat(lowers, parts[:index + 1])
                if st is None or not stat.S_ISDIR(st.st_mode):
                    raise ValueError('/%s is not a directory of the image' % '/'.join(parts[:index + 1]))
                os.mkdir(part, stat.S_IMODE(st.st_mode), dir_fd=fd)
                os.chown(part, st.st_uid, st.st_gid, dir_fd=fd, follow_symlinks=False)
                os.chmod(part, stat.S_IMODE(st.st_mode), dir_fd=fd)
                os.utime(part, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=fd, follow_symlinks=False)
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
        leaf = parts[-1]
        try:
            st = os.lstat(leaf, dir_fd=fd)
        except FileNotFoundError:
            st = None
        if st is not None:
            if is_whiteout(st):
                return 'present'
            raise ValueError('%s exists in the container\'s upper directory' % path)
        make_whiteout(leaf, fd)
        return 'whiteout'
    finally:
        os.close(fd)


# -- the OCI spec ------------------------------------------------------------------------------------

def bundle_from_runc_state(state):
    """The bundle directory runc recorded for a container (state.json: config.labels 'bundle=...')."""
    for label in ((state or {}).get('config') or {}).get('labels') or []:
        if isinstance(label, str) and label.startswith('bundle='):
            return label[len('bundle='):]
    return None


def bundle_spec(data_root, exec_root, container_id):
    """(spec, path) of a running container's OCI spec: the config.json of its task bundle, found through
    runc's state (<exec-root>/runtime-runc/moby/<id>/state.json) or containerd's bundle places; (None, None)
    when it cannot be read here (the task is gone once the container stopped)."""
    candidates = []
    if exec_root:
        bundle = bundle_from_runc_state(read_json(os.path.join(runtime_root(exec_root), container_id, 'state.json')))
        if bundle:
            candidates.append(bundle)
    candidates += task_bundle_dirs(data_root, exec_root, container_id)
    for directory in candidates:
        path = os.path.join(directory, 'config.json')
        spec = read_json(path)
        if spec.get('ociVersion'):
            return spec, path
    return None, None


def spec_from_inspect(info):
    """An OCI spec built from the container's inspect, for checkpointctl, when its bundle cannot be read:
    process, root, hostname, mounts and namespaces as the engine would set them up (not byte for byte)."""
    config = info.get('Config') or {}
    host_config = info.get('HostConfig') or {}
    user = (config.get('User') or '0').split(':')
    uid = int(user[0]) if user[0].isdigit() else 0
    gid = int(user[1]) if len(user) > 1 and user[1].isdigit() else 0
    network = host_config.get('NetworkMode') or 'default'
    namespaces = [dict(type=kind) for kind in ('mount', 'uts', 'pid', 'ipc')]
    if network != 'host':
        namespaces.append(dict(type='network'))
    mounts = [dict(destination='/proc', type='proc', source='proc')]
    for mount in info.get('Mounts') or []:
        mounts.append(dict(destination=mount.get('Destination'), type='bind', source=mount.get('Source'),
                           options=['rbind', 'rw' if mount.get('RW', True) else 'ro']))
    return dict(
        ociVersion='1.0.2-dev',
        process=dict(terminal=bool(config.get('Tty')), user=dict(uid=uid, gid=gid),
                     args=list(config.get('Entrypoint') or []) + list(config.get('Cmd') or []),
                     env=list(config.get('Env') or []), cwd=config.get('WorkingDir') or '/'),
        root=dict(path=((info.get('GraphDriver') or {}).get('Data') or {}).get('MergedDir') or 'rootfs'),
        hostname=config.get('Hostname') or '',
        mounts=mounts,
        annotations={},
        linux=dict(namespaces=namespaces),
    )


def config_dump(info, checkpointed):
    """config.dump as checkpointctl reads it (Podman's field names)."""
    return dict(id=info.get('Id'), name=(info.get('Name') or '').lstrip('/'),
                rootfsImageName=(info.get('Config') or {}).get('Image'), rootfsImageID=info.get('Image'),
                runtime=(info.get('HostConfig') or {}).get('Runtime') or 'runc', createdTime=info.get('Created'),
                checkpointedTime=checkpointed)
