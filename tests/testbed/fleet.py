#!/usr/bin/env python
"""A simulated fleet: extra Docker Engines side by side on this machine, one Ansible host each.

Each engine `PREFIX-N` has its own data root (a shared bind mount, which CRIU's restore
needs), exec root, socket, pidfile, configuration file (experimental mode), log, Linux
bridge and cgroup parent, so that its containers, published ports and processes never mix
with the main engine's or each other's. iptables is off for these engines: a second
dockerd with iptables on shares and rewrites the main engine's DOCKER chains. Published
ports work through docker-proxy (the userland proxy), which listens on the host.

`Engine` is also the one way a test starts a Docker Engine of its own (another daemon.json,
experimental off, live-restore): `with Engine('cryo-NAME', config={...}) as engine: engine.up()`.

Engines of other Docker releases: `ENGINES` (below) is the one table of the engines the test bed
runs, by name: the Debian packages their binaries come from (none: the system's docker.io 20.10)
and the features of their daemon.json. `Engine('cryo-NAME', kind='28.5')` runs that one: its
packages are downloaded from Debian's archive and unpacked under .cache/engines (once, by
scripts/debian-archive.sh; kept between runs), and its dockerd runs from there, with a PATH of its
own binaries first and then the service PATH (Debian 12's runc 1.1.5 in /usr/sbin: the packages'
own runc needs glibc 2.38; CRIU 4.2.1 in /usr/local/sbin). `Fleet(kinds=[...])` makes one engine of
each kind, with one inventory host each, named after the kind.

Usage:
    fleet.py up [--count 3] [--prefix cryo-fleet]      start (keep those already running),
                                                       load the test image, write the inventory
    fleet.py status [--count 3] [--prefix cryo-fleet]  one line per engine
    fleet.py down [--count 3] [--prefix cryo-fleet]    stop every engine, remove its state
    fleet.py up --kinds 20.10,26.1,28.5 [--prefix cryo-matrix]
                                                       one engine of each kind of ENGINES instead
    fleet.py fetch [--kinds ...]                       only download and unpack their packages

The inventory (`/var/lib/PREFIX/inventory.yml`) has one host per engine (`fleet-1`, ...)
in group `fleet`, with a local connection, `cryo_docker_host`, the variables
tests/testbed/simulate_reboot.yml needs (`cryo_fleet_*`) and those with which the
collection's `engine` role restarts the engine directly (`engine_*`).

Processes are read through the collection's host module (module_utils/_host.py), found as
tests/testbed/helpers.py finds it: run `make collection` once.
"""

import argparse
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib

try:
    import helpers
except ImportError as error:
    if __name__ != '__main__':
        raise
    sys.exit('fleet.py: %s' % error)

import docker
import yaml

from ansible_collections.cryo.docker.plugins.module_utils import _host

HOST = helpers.HOST
# Where engines that are not part of a fleet keep their state (a fleet: /var/lib/PREFIX).
STATE_DIR = '/var/lib/cryo-engines'
START_TIMEOUT = 60
STOP_TIMEOUT = 30

# The Docker Engines the test bed runs, by name (an Engine's `kind`):
#   packages        Debian packages (PACKAGE=VERSION) its binaries come from, in PATH order; none:
#                   the system's docker.io (Debian 12: Engine 20.10.24, containerd 1.6.20)
#   features        the "features" of its daemon.json (containerd-snapshotter: the containerd
#                   image store, Docker 29's default)
#   image_store     where it keeps images, as checkpoint_preflight reports it (facts.image_store)
#   bridge_restores whether it restores a container that has a network namespace of its own
#                   (bridge, none, a user network); Docker 28.0 to 29.x do not (moby/moby#50750):
#                   the tests run their containers there in a network holder or on the host network
ENGINES = {
    '20.10': dict(packages=(), features={}, image_store='graphdriver', bridge_restores=True),
    '26.1': dict(packages=('docker.io=26.1.5+dfsg1-9+deb13u1+b1', 'containerd=1.7.24~ds1-6+deb13u1'),
                 features={}, image_store='graphdriver', bridge_restores=True),
    '28.5': dict(packages=('docker.io=28.5.2+dfsg4-5', 'containerd=2.1.9+ds1-5'),
                 features={}, image_store='graphdriver', bridge_restores=False),
    '28.5-containerd': dict(packages=('docker.io=28.5.2+dfsg4-5', 'containerd=2.1.9+ds1-5'),
                            features={'containerd-snapshotter': True}, image_store='containerd',
                            bridge_restores=False),
}
# Where the packages are unpacked (PACKAGE_VERSION/ each) and apt's private state for them.
PACKAGE_CACHE = os.path.join(helpers.ROOT, '.cache', 'engines')
ARCHIVE_STATE = os.path.join(helpers.ROOT, '.cache', 'debian-archive')
DEBIAN_ARCHIVE = os.path.join(helpers.ROOT, 'scripts', 'debian-archive.sh')


def _run(argv, check=True):
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError('%s failed (rc %s): %s' % (' '.join(argv), proc.returncode, proc.stderr.strip()))
    return proc


def _cmdline(pid):
    return ' '.join(HOST.cmdline(pid))


def _read_pid(path):
    try:
        with open(path) as handle:
            return int(handle.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def _mounts():
    """Mount points of this mount namespace, with their propagation tags."""
    return HOST.mounts()


def _processes():
    """{pid: (ppid, cmdline, cgroup text)} of every process that has not exited."""
    return HOST.processes()


def package_dir(spec):
    """Where the package PACKAGE=VERSION is unpacked."""
    return os.path.join(PACKAGE_CACHE, spec.replace('=', '_', 1))


def fetch(kinds=None):
    """Download and unpack the packages of these kinds of ENGINES (all by default) into PACKAGE_CACHE,
    those not there yet: scripts/debian-archive.sh, under a lock (several engines may start at once)."""
    specs = []
    for kind in ENGINES if kinds is None else kinds:
        specs += [spec for spec in ENGINES[kind]['packages'] if spec not in specs]
    missing = [spec for spec in specs if not os.path.isfile(os.path.join(package_dir(spec), '.unpacked'))]
    if not missing:
        return []
    os.makedirs(PACKAGE_CACHE, exist_ok=True)
    with open(os.path.join(PACKAGE_CACHE, '.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run([DEBIAN_ARCHIVE, 'unpack', PACKAGE_CACHE] + missing, capture_output=True, text=True,
                              env=dict(os.environ, STATE=ARCHIVE_STATE), check=False)
    if proc.returncode != 0:
        raise RuntimeError('cannot fetch %s from Debian\'s archive: %s' % (' '.join(missing), proc.stderr.strip()))
    return missing


def _subnet(seed, first, index=None):
    """10.X.Y.1/24: X in first..first+49 from seed, Y the index or from seed too."""
    crc = zlib.crc32(seed.encode())
    return '10.%d.%d.1/24' % (first + crc % 50, index if index is not None else 1 + (crc >> 8) % 250)


def managed_containerd_pid(exec_root):
    """The pid of the containerd a dockerd with this exec root started itself (its pidfile there), if it runs."""
    pid = _read_pid(os.path.join(exec_root, 'containerd', 'containerd.pid'))
    if pid and HOST.alive(pid) and exec_root + '/' in _cmdline(pid):
        return pid
    return None


# roots and every process below them, in a process table (helpers.py: the playbook runner kills trees too).
with_descendants = helpers.with_descendants


class Engine:
    """A Docker Engine of the test bed: its names, paths, command line and life cycle.

    name:  the engine's name (`cryo-...`): its socket /run/NAME.sock, pidfile /run/NAME.pid,
           exec root /run/NAME, cgroup parent NAME and bridge NAME (hashed past 15 characters).
    state_dir: where its data root, daemon.json and log live (in STATE_DIR/NAME by default).
    config: the content of its daemon.json ({"experimental": true} by default, with the kind's features);
           configure() changes it.
    kind:  which Docker Engine it runs, a name in ENGINES (by default the system's dockerd).
    host:  its inventory host name (the fleet's fleet-N; the name by default).
    bridge_address: its bridge's address, 10.X.Y.1/24 (by default from the name, 10.150-199.Y).

    up() starts it and waits for its API; restart() and shutdown() are graceful (SIGTERM to dockerd,
    which leaves containers running with live-restore); stop() kills its containers and every
    process of the engine; remove() wipes its state. As a `with` block, it is stopped and removed
    at the end.
    """

    def __init__(self, name, state_dir=STATE_DIR, config=None, host=None, bridge_address=None, kind=None):
        if kind is not None and kind not in ENGINES:
            raise KeyError('%s: no engine %r in ENGINES (%s)' % (name, kind, ', '.join(ENGINES)))
        self.name = name
        self.kind = kind
        self.spec = ENGINES[kind] if kind else dict(packages=(), features={})
        self.host = host or name
        self.state_dir = state_dir
        self.base = os.path.join(state_dir, self.name)
        self.data_root = os.path.join(self.base, 'data')
        self.config_file = os.path.join(self.base, 'daemon.json')
        if config is None:
            config = {'experimental': True}
            if self.spec['features']:
                config['features'] = dict(self.spec['features'])
        self.config = dict(config)
        self.log = os.path.join(self.base, 'dockerd.log')
        self.exec_root = '/run/%s' % self.name
        self.socket = '/run/%s.sock' % self.name
        self.pidfile = '/run/%s.pid' % self.name
        self.cgroup_parent = self.name
        self._process = None
        # Interface names have at most 15 characters.
        crc = zlib.crc32(self.name.encode()) & 0xffffff
        self.bridge = self.name if len(self.name) <= 15 else 'cryo-br-%06x' % crc
        self.bridge_address = bridge_address or _subnet(self.name, 150)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        self.remove()
        return False

    @property
    def docker_host(self):
        return 'unix://' + self.socket

    @property
    def dockerd_path(self):
        """The PATH dockerd runs with: the usr/sbin and usr/bin of the kind's packages (those they have,
        once unpacked), then the service PATH (runc, which containerd starts with dockerd's environment,
        is Debian 12's in /usr/sbin and finds CRIU 4.2 in /usr/local/sbin on it)."""
        dirs = []
        for spec in self.spec['packages']:
            for sub in ('usr/sbin', 'usr/bin'):
                path = os.path.join(package_dir(spec), sub)
                if os.path.isdir(path) or not os.path.isdir(package_dir(spec)):
                    dirs.append(path)
        return ':'.join(dirs + [_host.SERVICE_PATH])

    @property
    def dockerd_binary(self):
        """Its dockerd: the one of its docker.io package, else the system's (on the service PATH)."""
        for spec in self.spec['packages']:
            if spec.startswith('docker.io='):
                return os.path.join(package_dir(spec), 'usr', 'sbin', 'dockerd')
        return 'dockerd'

    @property
    def dockerd_args(self):
        """The options after --config-file, --pidfile and -H (the `engine` role's engine_dockerd_args)."""
        return ['--data-root', self.data_root, '--exec-root', self.exec_root,
                '--bridge', self.bridge, '--iptables=false', '--ip-masq=false', '--ip-forward=false',
                '--cgroup-parent', self.cgroup_parent]

    @property
    def argv(self):
        """The dockerd command line, in the shape the `engine` role builds it for a direct start."""
        return [self.dockerd_binary, '--config-file', self.config_file, '--pidfile', self.pidfile,
                '-H', self.docker_host] + self.dockerd_args

    def client(self, timeout=60):
        return docker.APIClient(base_url=self.docker_host, version='auto', timeout=timeout)

    def pid(self):
        """The pid of this engine's dockerd, if it runs (a stale pidfile may name another process)."""
        pid = _read_pid(self.pidfile)
        if pid and HOST.alive(pid) and 'dockerd' in _cmdline(pid) and self.socket in _cmdline(pid):
            return pid
        return None

    def containerd_pid(self):
        """The pid of the containerd this engine's dockerd started (it outlives dockerd with live-restore)."""
        return managed_containerd_pid(self.exec_root)

    def answers(self):
        if not os.path.exists(self.socket):
            return False
        try:
            return self.client(timeout=5).ping()
        except (docker.errors.DockerException, OSError):
            return False

    def processes(self):
        """Pids of everything that belongs to this engine: dockerd, its children (containerd,
        docker-proxy), the containerd shims of its containerd and every process of its containers."""
        table = _processes()
        dockerd = self.pid()
        containerd = self.containerd_pid()
        address = os.path.join(self.exec_root, 'containerd', 'containerd.sock')
        cgroup_marker = ':/%s/' % self.cgroup_parent
        found = set()
        for pid, (ppid, cmdline, cgroup) in table.items():
            if (pid in (dockerd, containerd) or (dockerd and ppid == dockerd)
                    or ('containerd-shim' in cmdline and address in cmdline.split())
                    or cgroup_marker in cgroup):
                found.add(pid)
        # Their descendants (container processes not in the cgroup yet, children of docker-proxy).
        found = with_descendants(table, found)
        found.discard(os.getpid())
        return sorted(found)

    def status(self):
        pid = self.pid()
        info = {'engine': self.name, 'kind': self.kind, 'host': self.host, 'docker_host': self.docker_host,
                'pid': pid, 'answers': self.answers(), 'bridge': self.bridge, 'bridge_address': self.bridge_address}
        if info['answers']:
            client = self.client(timeout=10)
            version = client.version()
            info.update(version=version.get('Version'), experimental=bool(version.get('Experimental')),
                        containers=len(client.containers(all=True)),
                        running=len(client.containers()))
        return info

    def hostvars(self):
        return {
            'ansible_connection': 'local',
            'ansible_python_interpreter': sys.executable,
            'cryo_docker_host': self.docker_host,
            'cryo_fleet_engine': self.name,
            'cryo_fleet_socket': self.socket,
            'cryo_fleet_pidfile': self.pidfile,
            'cryo_fleet_data_root': self.data_root,
            'cryo_fleet_exec_root': self.exec_root,
            'cryo_fleet_config_file': self.config_file,
            'cryo_fleet_log': self.log,
            'cryo_fleet_bridge': self.bridge,
            'cryo_fleet_bridge_address': self.bridge_address,
            'cryo_fleet_cgroup_parent': self.cgroup_parent,
            'cryo_fleet_dockerd_argv': self.argv,
            'cryo_fleet_dockerd_path': self.dockerd_path,
            'cryo_fleet_kind': self.kind,
            # The collection's `engine` role, pointed at this engine and restarting it directly
            # with the same command line.
            'engine_service_manager': 'direct',
            'engine_config_file': self.config_file,
            'engine_config_backup': False,
            'engine_dockerd_pidfile': self.pidfile,
            'engine_dockerd_log': self.log,
            'engine_dockerd_args': self.dockerd_args,
            'engine_dockerd_path': self.dockerd_path,
            'engine_dockerd_binary': self.dockerd_binary,
        }

    # -- configure and start -----------------------------------------------------------------

    def configure(self, **settings):
        """Replace the engine's daemon.json with settings (it takes effect at the next start)."""
        self.config = settings
        self.write_config()

    def write_config(self):
        os.makedirs(self.base, mode=0o711, exist_ok=True)
        with open(self.config_file, 'w') as handle:
            json.dump(self.config, handle, indent=2)
            handle.write('\n')

    def prepare(self):
        os.makedirs(self.data_root, mode=0o711, exist_ok=True)
        os.makedirs(self.exec_root, mode=0o700, exist_ok=True)
        mounts = dict(_mounts())
        if self.data_root not in mounts:
            _run(['mount', '--bind', self.data_root, self.data_root])
            mounts = dict(_mounts())
        if not any(tag.startswith('shared:') for tag in mounts[self.data_root]):
            _run(['mount', '--make-shared', self.data_root])
        if not os.path.exists('/sys/class/net/%s' % self.bridge):
            self._check_subnet_free()
            _run(['ip', 'link', 'add', 'name', self.bridge, 'type', 'bridge'])
        addresses = _run(['ip', '-o', '-4', 'addr', 'show', 'dev', self.bridge]).stdout
        if self.bridge_address not in addresses.split():
            _run(['ip', 'addr', 'add', self.bridge_address, 'dev', self.bridge])
        _run(['ip', 'link', 'set', self.bridge, 'up'])
        self.write_config()

    def _check_subnet_free(self):
        network = self.bridge_address.rsplit('.', 1)[0] + '.'
        for line in _run(['ip', '-o', '-4', 'addr', 'show']).stdout.splitlines():
            fields = line.split()
            if fields[3].startswith(network):
                raise RuntimeError('%s: the subnet %s.0/24 is already used by %s; choose another name or prefix'
                                   % (self.name, network.rstrip('.'), fields[1]))

    def launch(self):
        """Start the engine afresh, without waiting: whatever is left of an earlier run of it (a
        crash, a power cut) is killed and wiped first."""
        if self.kind:
            fetch([self.kind])
        if _host.find_program('dockerd', self.dockerd_path) is None:
            raise RuntimeError('dockerd is not installed (make host installs the Docker Engine)')
        self.kill()
        self.clear_run()
        self.prepare()
        self.start()

    def up(self, timeout=START_TIMEOUT):
        """launch() and wait until the engine answers; its dockerd's pid."""
        self.launch()
        self.wait(timeout)
        return self.pid()

    def start(self):
        """Start dockerd in the background (its own session, log appended), with the PATH a
        service manager gives it after the kind's own binaries: runc finds CRIU on it (/usr/local/sbin
        first)."""
        with open(self.log, 'ab') as log:
            self._process = subprocess.Popen(  # pylint: disable=consider-using-with
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env=dict(os.environ, PATH=self.dockerd_path), close_fds=True)

    def wait(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.answers():
                return
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError('%s: dockerd exited with status %s; the end of %s:\n%s'
                                   % (self.name, self._process.returncode, self.log, self.log_tail()))
            time.sleep(0.2)
        raise RuntimeError('%s did not answer on %s within %s s; the end of %s:\n%s'
                           % (self.name, self.docker_host, timeout, self.log, self.log_tail()))

    def log_tail(self, lines=20):
        try:
            with open(self.log, errors='replace') as handle:
                return ''.join(handle.readlines()[-lines:])
        except OSError:
            return '(no log)'

    def load_image(self, image=helpers.IMAGE):
        client = self.client(timeout=120)
        if client.images(name=image):
            return 'kept'
        main = docker.APIClient(base_url=helpers.DOCKER_HOST, version='auto', timeout=120)
        try:
            if main.images(name=image):
                client.load_image(b''.join(main.get_image(image)))
                return 'copied from the main engine'
        except (docker.errors.DockerException, OSError):
            pass
        build = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'build_image.py')
        _run([sys.executable, build, '--docker-host', self.docker_host, '--tag', image])
        return 'built'

    # -- stop ------------------------------------------------------------------------------

    def _reap(self):
        """Collect dockerd's exit status if this process started it (a zombie holds its pid)."""
        if self._process is not None and self._process.poll() is not None:
            self._process = None

    def shutdown(self, timeout=STOP_TIMEOUT):
        """Stop dockerd gracefully, as a service manager does: SIGTERM, then wait for it to exit
        (SIGKILL after timeout). It stops its containers, unless live-restore keeps them (and
        their containerd) running; nothing else of the engine is touched."""
        pid = self.pid()
        if pid:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while HOST.alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if HOST.alive(pid):
                os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 5
                while HOST.alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
        self._reap()

    def restart(self, timeout=START_TIMEOUT):
        """shutdown(), then dockerd again with the same command line; the new dockerd's pid."""
        self.shutdown()
        self.start()
        self.wait(timeout)
        return self.pid()

    def stop(self, timeout=STOP_TIMEOUT):
        """Stop dockerd (its running containers killed first: they ignore SIGTERM as PID 1),
        then SIGKILL whatever of the engine is left."""
        if self.pid() and self.answers():
            client = self.client(timeout=20)
            for container in client.containers():
                try:
                    client.kill(container['Id'])
                except docker.errors.DockerException:
                    pass
        self.shutdown(timeout)
        self.kill()

    def kill(self):
        """SIGKILL every process of the engine, until none is left (and none is a zombie:
        dockerd takes a zombie in its or containerd's pidfile for a running process)."""
        killed = set()
        for _attempt in range(50):
            self._reap()
            pids = self.processes()
            if not pids:
                deadline = time.monotonic() + 5
                while any(HOST.stat(pid) for pid in killed) and time.monotonic() < deadline:
                    self._reap()
                    time.sleep(0.05)
                return
            killed.update(pids)
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            # A container a killed CRIU left frozen takes its SIGKILL only once thawed (a power cut kills it
            # anyway).
            self._thaw()
            time.sleep(0.1)
        raise RuntimeError('%s: processes %s survive SIGKILL' % (self.name, self.processes()))

    def _unmount_below(self, root, keep_root=False):
        def below(target):
            return target.startswith(root + '/') or (target == root and not keep_root)
        # Reverse order: a mount comes after the mounts it is inside of.
        for target in sorted({target for target, _tags in _mounts() if below(target)}, reverse=True):
            _run(['umount', '--lazy', target], check=False)
        left = [target for target, _tags in _mounts() if below(target)]
        if left:
            raise RuntimeError('%s: cannot unmount %s' % (self.name, left))

    def clear_run(self):
        """What a reboot wipes, for an engine that does not run: the mounts below its data
        root, its exec root, socket and pidfile (tests/testbed/simulate_reboot.yml does the same)."""
        if os.path.isdir(self.data_root):
            self._unmount_below(self.data_root, keep_root=True)
        self._unmount_below(self.exec_root)
        shutil.rmtree(self.exec_root, ignore_errors=True)
        for path in (self.socket, self.pidfile):
            if os.path.lexists(path):
                os.unlink(path)

    def remove(self):
        """Unmount and remove the engine's state, bridge and cgroups (it must be stopped)."""
        self.clear_run()
        self._unmount_below(self.base)
        shutil.rmtree(self.base, ignore_errors=True)
        if os.path.exists('/sys/class/net/%s' % self.bridge):
            _run(['ip', 'link', 'delete', self.bridge], check=False)
        for parent in self._cgroups():
            for child in sorted(os.listdir(parent)):
                if os.path.isdir(os.path.join(parent, child)):
                    try:
                        os.rmdir(os.path.join(parent, child))
                    except OSError:
                        pass
            try:
                os.rmdir(parent)
            except OSError:
                pass
        if os.path.isdir(self.state_dir) and not os.listdir(self.state_dir):
            os.rmdir(self.state_dir)

    def _thaw(self):
        """Thaw every frozen cgroup below the engine's cgroup parent (freezer v1 and cgroup v2)."""
        for parent in self._cgroups():
            for top, _dirs, files in os.walk(parent):
                for name, value in (('freezer.state', 'THAWED'), ('cgroup.freeze', '0')):
                    if name in files:
                        try:
                            with open(os.path.join(top, name), 'w', encoding='ascii') as handle:
                                handle.write(value)
                        except OSError:
                            pass

    def _cgroups(self):
        """The engine's cgroup parent in every hierarchy (it may sit below the cgroup this
        machine runs its processes in, for example memory:/process_api/X/NAME)."""
        found = []
        for top, dirs, _files in os.walk('/sys/fs/cgroup'):
            if top.count('/') > 6:
                dirs[:] = []
                continue
            if self.cgroup_parent in dirs:
                found.append(os.path.join(top, self.cgroup_parent))
                dirs.remove(self.cgroup_parent)
        return found


class Fleet:
    """The engines PREFIX-1 .. PREFIX-COUNT (the system's dockerd, inventory hosts fleet-1 ...), or
    with kinds one engine of each kind of ENGINES (PREFIX-KIND, inventory host KIND), and their
    inventory (group `fleet`)."""

    def __init__(self, count=3, prefix='cryo-fleet', state_dir=None, kinds=None):
        self.prefix = prefix
        self.state_dir = state_dir or os.path.join('/var/lib', prefix)
        self.inventory = os.path.join(self.state_dir, 'inventory.yml')
        # 10.X.N.1/24, X from the prefix, so fleets with other prefixes do not overlap.
        if kinds:
            self.engines = [Engine('%s-%s' % (prefix, kind), self.state_dir, host=kind, kind=kind,
                                   bridge_address=_subnet(prefix, 200, index))
                            for index, kind in enumerate(kinds, 1)]
        else:
            self.engines = [Engine('%s-%d' % (prefix, index), self.state_dir, host='fleet-%d' % index,
                                   bridge_address=_subnet(prefix, 200, index))
                            for index in range(1, count + 1)]

    @property
    def hosts(self):
        return [engine.host for engine in self.engines]

    def engine(self, host):
        """The engine of an inventory host (fleet-N) or of an engine name (PREFIX-N)."""
        for engine in self.engines:
            if host in (engine.host, engine.name):
                return engine
        raise KeyError(host)

    def up(self, log=print):
        """Start the engines that do not run (concurrently), load the image, write the inventory."""
        started = time.monotonic()
        starting = []
        # Every package at once (one apt run), before any engine starts.
        fetched = fetch(sorted({engine.kind for engine in self.engines if engine.kind}))
        if fetched:
            log('fetched %s into %s' % (', '.join(fetched), PACKAGE_CACHE))
        for engine in self.engines:
            if engine.pid() and engine.answers():
                log('%s: running (pid %s), kept' % (engine.name, engine.pid()))
                continue
            # Leftovers of an engine that died (or of a power cut) are wiped first.
            engine.launch()
            starting.append(engine)
        for engine in starting:
            engine.wait()
            log('%s: started (pid %s) on %s' % (engine.name, engine.pid(), engine.docker_host))
        for engine in self.engines:
            version = engine.client().version()
            if not version.get('Experimental'):
                raise RuntimeError('%s runs without experimental mode; see %s' % (engine.name, engine.config_file))
            log('%s: Docker Engine %s, image %s %s' % (engine.name, version.get('Version'), helpers.IMAGE,
                                                       engine.load_image()))
        self.write_inventory()
        log('fleet up in %.1f s; inventory %s' % (time.monotonic() - started, self.inventory))
        return self

    def write_inventory(self):
        os.makedirs(self.state_dir, exist_ok=True)
        inventory = {'all': {'children': {'fleet': {
            'hosts': {engine.host: engine.hostvars() for engine in self.engines}}}}}
        temp = self.inventory + '.tmp'
        with open(temp, 'w') as handle:
            handle.write('---\n# The simulated fleet of tests/testbed/fleet.py: one host per Docker Engine.\n')
            yaml.safe_dump(inventory, handle, default_flow_style=False, sort_keys=False)
        os.replace(temp, self.inventory)

    def down(self, log=print):
        started = time.monotonic()
        for engine in self.engines:
            engine.stop()
            engine.remove()
            log('%s: stopped and removed' % engine.name)
        for path in (self.inventory,):
            if os.path.exists(path):
                os.unlink(path)
        if os.path.isdir(self.state_dir) and not os.listdir(self.state_dir):
            os.rmdir(self.state_dir)
        log('fleet down in %.1f s' % (time.monotonic() - started))

    def status(self):
        return [engine.status() for engine in self.engines]

    def clients(self, timeout=60):
        return {engine.host: engine.client(timeout=timeout) for engine in self.engines}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('action', choices=('up', 'down', 'status', 'fetch'))
    parser.add_argument('--count', type=int, default=3)
    parser.add_argument('--kinds', help='engines of ENGINES, comma separated (%s), instead of --count of the '
                                        'system\'s' % ','.join(ENGINES))
    parser.add_argument('--prefix', help='default cryo-fleet, with --kinds cryo-matrix')
    parser.add_argument('--state-dir', help='default /var/lib/PREFIX')
    args = parser.parse_args()
    kinds = [kind for kind in (args.kinds or '').split(',') if kind]
    unknown = sorted(set(kinds) - set(ENGINES))
    if unknown:
        parser.error('no engine %s in ENGINES (%s)' % (', '.join(unknown), ', '.join(ENGINES)))
    fleet = Fleet(args.count, args.prefix or ('cryo-matrix' if kinds else 'cryo-fleet'), args.state_dir, kinds)
    try:
        if args.action == 'fetch':
            for spec in fetch(kinds or None):
                print('fetched %s into %s' % (spec, package_dir(spec)))
        elif args.action == 'up':
            fleet.up()
        elif args.action == 'down':
            fleet.down()
        else:
            for info in fleet.status():
                print(json.dumps(info, sort_keys=True))
    except RuntimeError as error:
        sys.exit('fleet.py %s: %s' % (args.action, error))


if __name__ == '__main__':
    main()
