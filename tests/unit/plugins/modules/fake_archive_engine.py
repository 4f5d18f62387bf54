"""A fake Docker Engine for the archive modules: fake_engine.FakeEngine plus what an export and an import use.

ArchiveFakeEngine keeps, per container, a file system (`fs`: path -> bytes for a file, None for a directory,
('symlink', target)), the changes of its writable layer, its full configuration (Config, HostConfig,
NetworkSettings, Mounts) and an overlay2 upper directory in tmp_path; the engine has images (saved and loaded
as a small stand-in tarball), volumes and networks. The archive endpoint answers with real tar streams, so
the modules' tar handling runs for real. Every call that changes something is recorded in `calls`.
"""

import copy
import hashlib
import io
import json
import os
import shutil
import tarfile

from ansible_collections.cryo.docker.plugins.module_utils._engine import EngineError

from fake_criu import FakeCriu
from fake_engine import FIXTURES, Container, FakeEngine

IMAGE_ID = 'sha256:' + hashlib.sha256(b'counter image').hexdigest()
IMAGE_REF = 'counter:1'
LAYERS = ['sha256:' + hashlib.sha256(b'layer 1').hexdigest()]
# What the fake image holds (its lower directory on overlay2).
IMAGE_FILES = {'/bin': None, '/bin/busybox': b'\x7fELF busybox', '/etc': None, '/etc/profile': b'# profile\n',
               '/etc/motd': b'welcome\n', '/www': None, '/www/old.html': b'old page\n'}
ARCHIVE_CHANGES = ('create_from_config', 'remove_container', 'put_archive', 'load_image', 'tag_image',
                   'create_volume', 'connect_network')


class ArchiveContainer(Container):
    """A container with everything inspect returns that an export records."""

    def __init__(self, name, cid, engine, command=None, env=None, ports=None, binds=None, networks=None,
                 volumes=None, **kwargs):
        super().__init__(name, cid, **kwargs)
        self.engine = engine
        self.command = command or ['/bin/sh', '-c', 'counter']
        self.env = env or ['PATH=/bin']
        self.ports = ports or {}
        self.binds = binds or []
        self.networks = networks if networks is not None else {'bridge': {}}
        self.volumes = volumes or []
        self.image_id = IMAGE_ID
        self.fs = dict(IMAGE_FILES)
        self.change_list = []
        self.hostname = cid[:12]
        self.body = None
        self.upper = os.path.join(engine.overlay, cid, 'diff')
        os.makedirs(self.upper)

    def bound_ports(self):
        """NetworkSettings.Ports: while it runs, each published port bound, a free host port (here one made of its
        id) where none was given; an exposed port that is not published has null bindings."""
        if not self.running:
            return {}
        free = str(32768 + int(self.id[:4], 16) % 1000)
        return {key: [dict(HostIp=binding.get('HostIp') or '0.0.0.0', HostPort=binding.get('HostPort') or free)
                      for binding in bindings] or None for key, bindings in self.ports.items()}

    def inspect(self):
        data = super().inspect()
        data['Created'] = '2026-12-02T10:00:00.000000000Z'
        data['Image'] = self.image_id
        data['Platform'] = 'linux'
        data['Config'].update(Hostname=self.hostname, Cmd=list(self.command), Entrypoint=None, Env=list(self.env),
                              WorkingDir='/', User='', ExposedPorts={key: {} for key in self.ports})
        data['HostConfig'].update(PortBindings=copy.deepcopy(self.ports), Binds=list(self.binds) or None,
                                  Runtime='runc', ContainerIDFile='', CapAdd=None,
                                  SecurityOpt=getattr(self, 'security_opt', None))
        data['NetworkSettings'] = dict(Networks={name: dict(endpoint, Aliases=[self.id[:12]])
                                                 for name, endpoint in self.networks.items()},
                                       Ports=self.bound_ports())
        data['GraphDriver'] = dict(Name='overlay2', Data=dict(
            UpperDir=self.upper, LowerDir=self.engine.lower, MergedDir=self.upper + '/../merged'))
        data['Mounts'] = copy.deepcopy(self.volumes) + data.get('Mounts', [])
        return data


def tar_of(entries):
    """A tar (bytes) of [(name, bytes | None (dir) | ('symlink', target))]."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w') as tar:
        for name, value in entries:
            info = tarfile.TarInfo(name)
            if value is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(value, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, value[1]
                tar.addfile(info)
            else:
                info.size, info.mode = len(value), 0o644
                tar.addfile(info, io.BytesIO(value))
    return out.getvalue()


class ArchiveFakeEngine(FakeEngine):
    """FakeEngine with the container, image and volume calls of _containers.ContainerEngine."""

    def __init__(self, tmp_path, arch='amd64'):
        super().__init__(tmp_path)
        self.overlay = str(tmp_path / 'overlay2')
        self.lower = os.path.join(self.overlay, 'image', 'diff')
        os.makedirs(self.lower)
        for path, value in sorted(IMAGE_FILES.items()):
            target = os.path.join(self.lower, path.lstrip('/'))
            if value is None:
                os.makedirs(target, exist_ok=True)
            else:
                with open(target, 'wb') as handle:
                    handle.write(value)
        self.arch = arch
        self.driver = 'overlay2'
        self.images = {IMAGE_ID: dict(Id=IMAGE_ID, RepoTags=[IMAGE_REF], RootFS=dict(Layers=list(LAYERS)),
                                      Architecture='amd64', Os='linux', Size=2000000)}
        self.refs = {IMAGE_REF: IMAGE_ID}
        self.volumes = {}
        self.created = 0
        self.archive_error = None

    # -- containers

    def make_container(self, name, cid, **kwargs):
        return ArchiveContainer(name, cid, self, **kwargs)

    def version(self):
        data = super().version()
        data['Arch'] = self.arch
        return data

    def info(self):
        data = super().info()
        data['Driver'] = self.driver
        return data

    def file_changes(self, container):
        self._record('file_changes', container)
        return copy.deepcopy(self._get(container).change_list)

    def get_archive(self, container, path):
        self._record('get_archive', container, path)
        if self.archive_error:
            raise EngineError(self.archive_error, status=500, engine_message=self.archive_error)
        found = self._get(container)
        if path not in found.fs:
            raise EngineError('Could not find the file %s in container %s' % (path, container), status=404)
        base = os.path.basename(path)
        entries = [(base, found.fs[path])]
        for other in sorted(found.fs):
            if other.startswith(path + '/'):
                entries.append((base + other[len(path):], found.fs[other]))
        data = tar_of(entries)
        return iter([data[:700], data[700:]]), dict(name=base)

    def put_archive(self, container, path, data):
        found = self._get(container)
        self._record('put_archive', found.id, path)
        with tarfile.open(fileobj=data if hasattr(data, 'read') else io.BytesIO(data), mode='r|') as tar:
            for member in tar:
                target = os.path.join(path, member.name).replace('//', '/')
                if member.isdir():
                    found.fs[target] = None
                elif member.issym():
                    found.fs[target] = ('symlink', member.linkname)
                else:
                    found.fs[target] = tar.extractfile(member).read()
        return True

    def create_from_config(self, name, body):
        self._record('create_from_config', name)
        if self._find(name):
            raise EngineError('Conflict. The container name "/%s" is already in use' % name, status=409)
        self.created += 1
        cid = hashlib.sha256(('%s-%d-%s' % (name, self.created, self.root)).encode()).hexdigest()
        host_config = body.get('HostConfig') or {}
        networks = {}
        for net, endpoint in ((body.get('NetworkingConfig') or {}).get('EndpointsConfig') or {}).items():
            networks[net] = dict(IPAMConfig=endpoint.get('IPAMConfig'))
        container = self.add(name, running=False, cid=cid, command=body.get('Cmd'), env=body.get('Env'),
                             ports=host_config.get('PortBindings') or {}, binds=host_config.get('Binds'),
                             networks=networks, labels=dict(body.get('Labels') or {}),
                             image=body.get('Image'),
                             restart_policy=(host_config.get('RestartPolicy') or {}).get('Name') or 'no')
        container.status, container.started_at = 'created', '0001-01-01T00:00:00Z'
        container.hostname = body.get('Hostname') or cid[:12]
        container.body = body
        image = self.image(body.get('Image'))
        container.image_id = image['Id'] if image else body.get('Image')
        return cid

    def remove_container(self, container, force=False):
        found = self._find(container)
        self._record('remove_container', found.id if found else container)
        if found is None:
            return False
        del self.store[found.id]
        shutil.rmtree(os.path.join(self.root, 'containers', found.id), ignore_errors=True)
        return True

    def connect_network(self, container, network, ipv4_address=None, aliases=None):
        found = self._get(container)
        self._record('connect_network', found.id, network)
        found.networks[network] = dict(IPAMConfig=dict(IPv4Address=ipv4_address) if ipv4_address else None)

    # -- images, volumes, networks

    def image(self, image):
        self._record('image', image)
        image_id = self.refs.get(image, image)
        found = self.images.get(image_id)
        return copy.deepcopy(found) if found else None

    def save_image(self, image):
        """docker save by id: manifest.json without RepoTags, and the image (here its inspect as config.json)."""
        self._record('save_image', image)
        found = self.images[self.refs.get(image, image)]
        manifest = [dict(Config='config.json', RepoTags=None, Layers=[])]
        return iter([tar_of([('manifest.json', json.dumps(manifest).encode()),
                             ('config.json', json.dumps(found).encode())])])

    def load_image(self, handle):
        """docker load: the image, tagged as its manifest.json says."""
        data = handle.read()
        self._record('load_image', len(data))
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            image = json.loads(tar.extractfile('config.json').read().decode())
            [entry] = json.loads(tar.extractfile('manifest.json').read().decode())
        image['RepoTags'] = list(entry.get('RepoTags') or [])
        self.images[image['Id']] = image
        for tag in image['RepoTags']:
            self.refs[tag] = image['Id']
        return ['Loaded image ID: %s' % image['Id']]

    def tag_image(self, image, reference):
        self._record('tag_image', image, reference)
        self.refs[reference] = image
        self.images[image].setdefault('RepoTags', []).append(reference)

    def volume(self, name):
        self._record('volume', name)
        return copy.deepcopy(self.volumes.get(name))

    def create_volume(self, name, driver=None, driver_opts=None, labels=None):
        self._record('create_volume', name)
        self.volumes[name] = dict(Name=name, Driver=driver or 'local', Labels=labels or {})
        return self.volumes[name]

    def archive_changes(self):
        return [call for call in self.calls if call[0] in ARCHIVE_CHANGES]


def read_fixture(*parts):
    with open(os.path.join(FIXTURES, *parts), 'rb') as handle:
        return handle.read()


# -- the test bed: two engines, the modules connected to one of them -----------------------------------

class Bed:
    """A source and a target ArchiveFakeEngine sharing one fake /proc (distinct pids); `current` is the one the
    modules connect to (the source for an export, the target for an import)."""

    def __init__(self, tmp_path, monkeypatch):
        # Imported here: these are the collection's modules, loaded once the collection is importable.
        import functools

        from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
        from ansible_collections.cryo.docker.plugins.module_utils import _containers, _cpu, _criu, _export, _import, _lifecycle
        from ansible_collections.cryo.docker.plugins.module_utils._host import Host

        self.tmp_path = tmp_path
        self.source = ArchiveFakeEngine(tmp_path / 'source')
        self.target = ArchiveFakeEngine(tmp_path / 'target')
        self.target.proc = self.source.proc
        self.target.next_pid = 7000
        self.current = self.source
        self.criu = '4.2.1'
        self.dir = str(tmp_path / 'archives')
        self.whiteouts = []
        monkeypatch.setattr(_lifecycle, 'connect', lambda params: self.current)
        for manager in (_export, _import):
            monkeypatch.setattr(manager, 'connect', lambda params: self.current)
            monkeypatch.setattr(manager, 'engine_criu',
                                lambda module, docker_host, host=None: ('/usr/local/sbin/criu', self.criu))
        proc_host = functools.partial(Host, proc=self.source.proc)
        monkeypatch.setattr(store, 'Host', proc_host)
        monkeypatch.setattr(_export, 'Host', proc_host)
        monkeypatch.setattr(_import, 'Host', proc_host)
        # The CPU: this fake /proc's cpuinfo (both engines' host), and criu cpuinfo dump and check as recorded.
        self.set_cpuinfo(read_fixture('cpu', 'epyc-proc-cpuinfo.txt').decode('ascii'))
        self.criu_cpu = FakeCriu(read_fixture('cpu', 'epyc-cpuinfo.img'))
        monkeypatch.setattr(_cpu, 'runner', lambda module: self.criu_cpu)
        real_remove = store.remove_containerd_copies
        monkeypatch.setattr(store, 'remove_containerd_copies',
                            lambda path, tmpdir=None: real_remove(path, self.current.tmpdir))
        monkeypatch.setattr(_criu.runc_log_file, '__defaults__', (self.source.runc_conf,))
        real_whiteout = _containers.make_whiteout

        def make_whiteout(name, dir_fd):
            self.whiteouts.append(name)
            if os.geteuid() == 0:
                return real_whiteout(name, dir_fd)
            # Without CAP_MKNOD: a marker file, so that the unit tests run as any user.
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dir_fd))
            return None

        monkeypatch.setattr(_containers, 'make_whiteout', make_whiteout)

    def set_cpuinfo(self, text):
        with open(os.path.join(self.source.proc, 'cpuinfo'), 'w', encoding='ascii') as handle:
            handle.write(text)

    def path(self, name='web.tar.zst'):
        return os.path.join(self.dir, name)

    def export(self, capsys, check_mode=False, diff=False, **args):
        """docker_checkpoint_export on the source: container web, checkpoint move, uncompressed into web.tar,
        unless args say otherwise."""
        from ansible_collections.cryo.docker.plugins.modules import docker_checkpoint_export

        from fake_engine import DOCKER_HOST, run_module

        args.setdefault('docker_host', DOCKER_HOST)
        args.setdefault('container', 'web')
        args.setdefault('checkpoint', 'move')
        args.setdefault('path', self.path('web.tar'))
        args.setdefault('compression', 'none')
        self.current = self.source
        return run_module(capsys, docker_checkpoint_export, args, check_mode=check_mode, diff=diff)

    def web(self, **kwargs):
        """Container web on the source: a web server that wrote its page at run time and deleted /etc/motd,
        restart policy always, port 8080 published."""
        kwargs.setdefault('restart_policy', 'always')
        kwargs.setdefault('ports', {'80/tcp': [{'HostIp': '127.0.0.1', 'HostPort': '8080'}]})
        container = self.source.add('web', **kwargs)
        container.fs.update({'/www/index.html': b'written at run time\n', '/tmp': None, '/tmp/new': None,
                             '/tmp/new/f': b'x\n', '/tmp/link': ('symlink', '/etc/profile')})
        del container.fs['/etc/motd']
        container.change_list = [
            {'Path': '/etc', 'Kind': 0}, {'Path': '/etc/motd', 'Kind': 2}, {'Path': '/tmp', 'Kind': 1},
            {'Path': '/tmp/link', 'Kind': 1}, {'Path': '/tmp/new', 'Kind': 1}, {'Path': '/tmp/new/f', 'Kind': 1},
            {'Path': '/www', 'Kind': 0}, {'Path': '/www/index.html', 'Kind': 1}]
        return container


def members_of(path):
    """{name: TarInfo} of an archive (any compression), and the raw bytes of its small JSON members."""
    with tarfile.open(path, 'r:*') as tar:
        members = {member.name: member for member in tar.getmembers()}
        data = {name: tar.extractfile(member).read() for name, member in members.items()
                if member.isreg() and member.size < 1 << 20}
    return members, data
