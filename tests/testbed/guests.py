#!/usr/bin/env python
"""Real Debian hosts as QEMU guests: systemd, cgroup v2, AppArmor, Debian's kernel, Docker and CRIU,
reached by Ansible over SSH, rebooted for real.

`build(suite)` makes the disk of a guest (cached, rebuilt when the recipe below changes):
mmdebstrap --variant=important with PACKAGES from the machine's own Debian mirror into a directory,
CUSTOMIZE_HOOK (an SSH key, /etc/fstab, DHCP through systemd-networkd, sshd enabled), a busybox
rootfs tarball for the test image (/opt/cryo/busybox-rootfs.tar: no registry, and no dockerd at
build time to import it into), then `mke2fs -t ext4 -d` into a raw image (no mount needed) and the
tree's kernel and initrd beside it. Docker is left as Debian ships it (experimental mode off): the
collection's `engine` role turns it on and restarts Docker through systemd, which is what the
guests prove. Nothing is pinned: the versions come from the suite at build time and are written
to versions.json beside the image.

`Guest(suite)` boots one: QEMU with TCG (Debian's kernels do not boot under this machine's KVM),
a copy-on-write overlay of the cached image (every boot starts from a clean host), user networking
with SSH forwarded to a loopback port, the serial console in console.log, and an Ansible inventory
(`inventory`, host `debian12` or `debian13` in group `guests`, root over SSH with the test bed's
key, keepalives that end a connection to a rebooted guest in seconds). `down()` powers it off
(`systemctl poweroff`, QEMU killed after 60 s); a `with` block always calls it, on failure and
KeyboardInterrupt too, and QEMU dies with the Python process that started it (unless detached).

Layout, under .cache/guests/:
    id_ed25519[.pub]           the key pair of every guest (made once)
    debs-SUITE/                the packages of the last build (the next build downloads only what changed)
    SUITE-RECIPEHASH/          base.img, vmlinuz, initrd.img, versions.json, recipe.json, build.log
    run/SUITE/                 the running guest: overlay.qcow2, console.log, qemu.pid, port, inventory.yml

Usage (the project's .venv python, after `make guests`):
    guests.py build SUITE...        build (or find) the images; print their directories and versions
    guests.py boot SUITE            boot a guest and leave it running; print its inventory and ssh line
    guests.py ssh SUITE [CMD...]    a shell or a command in the running guest
    guests.py down SUITE            power it off
SUITE is bookworm (Debian 12) or trixie (Debian 13).
"""

import argparse
import atexit
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

try:
    import helpers
except ImportError as error:
    if __name__ != '__main__':
        raise
    sys.exit('guests.py: %s' % error)

import build_image
import yaml

# -- the recipe: everything that makes a guest's disk (its hash names the cached image) ------------

SUITES = {'bookworm': 'debian12', 'trixie': 'debian13'}
# tests/guests/test_move.py: move_container from the first to the second.
MOVE = ('bookworm', 'trixie')
# tests/guests/test_reboot.py: the guests that reboot for real (each reboot_hosts run ~8 minutes under TCG).
REBOOT = tuple(suite for suite in os.environ.get('CRYO_GUEST_REBOOT', 'bookworm').split(',') if suite)
VARIANT = 'important'
PACKAGES = (
    'linux-image-amd64', 'initramfs-tools', 'systemd-sysv', 'dbus', 'openssh-server',
    'python3', 'python3-docker', 'docker.io', 'criu', 'apparmor', 'zstd', 'iproute2', 'busybox-static',
)
# Debian 13 split the docker CLI out of docker.io into docker-cli, which docker.io only recommends (and
# mmdebstrap installs no recommends); a host installed with `apt install docker.io` has it.
SUITE_PACKAGES = {'bookworm': (), 'trixie': ('docker-cli',)}
DISK_SIZE = '8G'
# Run by mmdebstrap after the packages are installed: $1 the root tree, $2 the host name, $3 the SSH
# public key. Debian's Docker is left alone (no daemon.json).
CUSTOMIZE_HOOK = r"""set -eu
root=$1 name=$2 key=$3
install -d -m 700 "$root/root/.ssh"
install -m 600 "$key" "$root/root/.ssh/authorized_keys"
echo "$name" >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$name" >"$root/etc/hosts"
# QEMU's user network: DHCP and DNS at 10.0.2.2/3.
echo 'nameserver 10.0.2.3' >"$root/etc/resolv.conf"
printf '/dev/vda\t/\text4\terrors=remount-ro\t0\t1\n' >"$root/etc/fstab"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' >"$root/etc/systemd/network/10-dhcp.network"
chroot "$root" systemctl enable systemd-networkd ssh
"""
# The busybox applets of the test image (tests/testbed/build_image.py builds the same on the lab's engine).
APPLETS = build_image.APPLETS
RECIPE_FORMAT = 1
# The package versions versions.json records (the kernel's own package besides).
RECORDED = ('docker.io', 'docker-cli', 'containerd', 'runc', 'criu', 'systemd', 'apparmor', 'python3-docker',
            'openssh-server')
TOOLS = {'mmdebstrap': 'mmdebstrap', 'mke2fs': 'e2fsprogs', 'qemu-system-x86_64': 'qemu-system-x86',
         'qemu-img': 'qemu-utils', 'ssh': 'openssh-client', 'setpriv': 'util-linux'}

CACHE = os.path.join(helpers.ROOT, '.cache', 'guests')
KEY = os.path.join(CACHE, 'id_ed25519')
BUSYBOX_TAR = '/opt/cryo/busybox-rootfs.tar'

# -- booting ---------------------------------------------------------------------------------------

MEMORY_MB = 2048
CPUS = 2
# TCG: Debian's kernels do not boot under this machine's KVM. One host thread for both vCPUs: with
# thread=multi a Debian 13 guest panicked once (`Oops: int3` in __schedule while the kernel patched a static
# branch as a container's network went away), a cross-vCPU code-patching race of multi-threaded TCG;
# thread=single costs ~20% (boot 77 s instead of 45, the setup playbook 161 s instead of 131) and leaves
# the other host core to ansible-playbook. CRYO_GUEST_ACCEL overrides it.
ACCEL = 'tcg,thread=single'
BOOT_TIMEOUT = 240
DOWN_TIMEOUT = 60
SSH_OPTIONS = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
               '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=3']


def recipe(suite):
    """The build parameters of a suite's image, as recorded and hashed."""
    if suite not in SUITES:
        raise KeyError('no guest for suite %r (%s)' % (suite, ', '.join(SUITES)))
    return {'format': RECIPE_FORMAT, 'suite': suite, 'suites': [suite, suite + '-updates', suite + '-security'],
            'variant': VARIANT, 'packages': list(PACKAGES + SUITE_PACKAGES[suite]),
            'customize_hook': CUSTOMIZE_HOOK, 'busybox_applets': list(APPLETS), 'disk_size': DISK_SIZE}


def recipe_hash(suite):
    return hashlib.sha256(json.dumps(recipe(suite), sort_keys=True).encode()).hexdigest()[:12]


def image_dir(suite):
    return os.path.join(CACHE, '%s-%s' % (suite, recipe_hash(suite)))


def _sources_stanzas():
    """The deb822 stanzas of the machine's debian.sources, as dicts (comment lines left out)."""
    try:
        with open('/etc/apt/sources.list.d/debian.sources') as handle:
            text = handle.read()
    except OSError:
        return []
    stanzas = []
    for block in text.split('\n\n'):
        fields = {}
        for line in block.splitlines():
            if line.startswith('#') or ':' not in line or line[:1] in (' ', '\t'):
                continue
            key, value = line.split(':', 1)
            fields[key.strip()] = value.split()
        if fields.get('URIs'):
            stanzas.append(fields)
    return stanzas


def mirror():
    """The machine's own Debian mirror: the first `URIs:` field of debian.sources (a commented snapshot
    URL may come before it), else the first `deb` line of sources.list."""
    for stanza in _sources_stanzas():
        if not any(suite.endswith('-security') for suite in stanza.get('Suites', [])):
            return stanza['URIs'][0]
    try:
        with open('/etc/apt/sources.list') as handle:
            for line in handle:
                fields = line.split()
                if fields[:1] == ['deb']:
                    return next(field for field in fields[1:] if not field.startswith('['))
    except (OSError, StopIteration):
        pass
    return 'http://deb.debian.org/debian'


def security_mirror():
    """Where the machine gets Debian's security updates (its debian.sources), else the mirror's sibling
    (.../debian-security, the archive's own layout)."""
    for stanza in _sources_stanzas():
        if any(suite.endswith('-security') for suite in stanza.get('Suites', [])):
            return stanza['URIs'][0]
    return mirror().rstrip('/') + '-security'


def sources(suite):
    """The apt sources of a guest, one-line style: the suite, its updates and its security updates, as on
    any Debian host."""
    return ['deb %s %s main' % (mirror(), suite), 'deb %s %s-updates main' % (mirror(), suite),
            'deb %s %s-security main' % (security_mirror(), suite)]


def missing_tools():
    """The Debian packages of the tools a build or a boot needs that this machine lacks."""
    return sorted({package for tool, package in TOOLS.items() if shutil.which(tool) is None})


def _check_tools():
    missing = missing_tools()
    if missing:
        raise RuntimeError('missing %s: `make guests` installs them (apt-get install %s)'
                           % (', '.join(missing), ' '.join(missing)))


def ensure_key():
    """The SSH key pair of every guest, made once per cache directory; the public key's text."""
    os.makedirs(CACHE, exist_ok=True)
    if not (os.path.isfile(KEY) and os.path.isfile(KEY + '.pub')):
        for path in (KEY, KEY + '.pub'):
            if os.path.exists(path):
                os.unlink(path)
        subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'cryo-guests', '-f', KEY],
                       check=True, capture_output=True)
    with open(KEY + '.pub') as handle:
        return handle.read().strip()


def _read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _write_json(path, data):
    with open(path + '.tmp', 'w') as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write('\n')
    os.replace(path + '.tmp', path)


def dpkg_versions(root):
    """{package: version} of every installed package in a root tree (its var/lib/dpkg/status)."""
    versions = {}
    with open(os.path.join(root, 'var', 'lib', 'dpkg', 'status'), errors='replace') as handle:
        for stanza in handle.read().split('\n\n'):
            fields = {}
            for line in stanza.splitlines():
                if line[:1] not in (' ', '\t') and ':' in line:
                    key, value = line.split(':', 1)
                    fields[key] = value.strip()
            if fields.get('Package') and fields.get('Status', '').endswith(' installed'):
                versions[fields['Package']] = fields.get('Version')
    return versions


def busybox_rootfs(root):
    """A tarball of the test image's root file system, from the tree's own static busybox."""
    for candidate in ('usr/bin/busybox', 'bin/busybox'):
        busybox = os.path.join(root, candidate)
        if os.path.isfile(busybox) and not os.path.islink(busybox):
            break
    else:
        raise RuntimeError('no busybox in %s (the package busybox-static)' % root)
    return build_image.rootfs_tar(busybox)


def _kernel(root):
    """(release, vmlinuz path, initrd path) of the one kernel in the tree's /boot."""
    boot = os.path.join(root, 'boot')
    kernels = sorted(name for name in os.listdir(boot) if name.startswith('vmlinuz-'))
    if len(kernels) != 1:
        raise RuntimeError('expected one kernel in %s, found %s' % (boot, kernels or 'none'))
    release = kernels[0][len('vmlinuz-'):]
    initrd = os.path.join(boot, 'initrd.img-' + release)
    if not os.path.isfile(initrd):
        raise RuntimeError('no initrd for kernel %s in %s (initramfs-tools)' % (release, boot))
    return release, os.path.join(boot, kernels[0]), initrd


def _remove_tree(path):
    """Remove a build tree, unmounting first what an interrupted mmdebstrap may have left mounted in it (its
    /proc, /sys, /dev): removing through such a mount would reach the machine's own."""
    with open('/proc/self/mounts') as handle:
        targets = [line.split()[1].replace('\\040', ' ') for line in handle]
    for target in sorted((t for t in targets if t == path or t.startswith(path + '/')), reverse=True):
        subprocess.run(['umount', '--lazy', target], capture_output=True, check=False)
    shutil.rmtree(path, ignore_errors=True)


def build(suite, log=print, force=False):
    """The directory of the suite's image (base.img, vmlinuz, initrd.img, versions.json), built when it is
    not cached for this recipe and this key. Builds of other recipes of the suite are removed after."""
    target = image_dir(suite)
    public_key = ensure_key()
    with open(os.path.join(CACHE, '.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = _read_json(os.path.join(target, 'recipe.json'))
        if not force and done and done.get('public_key') == public_key and os.path.isfile(
                os.path.join(target, 'base.img')):
            return target
        _check_tools()
        log('%s: building %s (mmdebstrap from %s, a few minutes)' % (suite, target, mirror()))
        started = time.monotonic()
        work = target + '.tmp'
        _remove_tree(work)
        os.makedirs(work)
        root = os.path.join(work, 'root')
        hook = os.path.join(work, 'customize.sh')
        with open(hook, 'w') as handle:
            handle.write(CUSTOMIZE_HOOK)
        debs = os.path.join(CACHE, 'debs-' + suite)
        os.makedirs(debs, exist_ok=True)
        build_log = os.path.join(work, 'build.log')
        argv = ['mmdebstrap', '--mode=root', '--variant=' + VARIANT, '--include=' + ','.join(recipe(suite)['packages']),
                # The packages of the last build are copied in, and this build's copied out (not part of the
                # recipe: only what is downloaded changes).
                '--skip=essential/unlink',
                '--setup-hook=mkdir -p "$1/var/cache/apt/archives" && '
                'find %s -maxdepth 1 -name "*.deb" -exec cp -t "$1/var/cache/apt/archives" {} +' % shlex.quote(debs),
                '--customize-hook=sh %s "$1" %s %s' % (shlex.quote(hook), SUITES[suite],
                                                       shlex.quote(KEY + '.pub')),
                '--customize-hook=rm -rf %s.new && mkdir %s.new && find "$1/var/cache/apt/archives" -maxdepth 1 '
                '-name "*.deb" -exec cp -t %s.new {} +' % ((shlex.quote(debs),) * 3),
                suite, root] + sources(suite)
        with open(build_log, 'w') as out:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False,
                                  timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError('%s: mmdebstrap failed (rc %s); the end of %s:\n%s'
                               % (suite, proc.returncode, build_log, _tail(build_log)))
        if os.path.isdir(debs + '.new'):
            shutil.rmtree(debs)
            os.rename(debs + '.new', debs)
        os.makedirs(os.path.join(root, 'opt', 'cryo'), exist_ok=True)
        with open(os.path.join(root, BUSYBOX_TAR.lstrip('/')), 'wb') as handle:
            handle.write(busybox_rootfs(root))
        release, vmlinuz, initrd = _kernel(root)
        shutil.copy(vmlinuz, os.path.join(work, 'vmlinuz'))
        shutil.copy(initrd, os.path.join(work, 'initrd.img'))
        packages = dpkg_versions(root)
        subprocess.run(['mke2fs', '-q', '-F', '-t', 'ext4', '-L', 'cryo-' + suite, '-d', root,
                        os.path.join(work, 'base.img'), DISK_SIZE], check=True, capture_output=True, timeout=900)
        _remove_tree(root)
        os.unlink(hook)
        kernel_package = 'linux-image-' + release
        versions = {
            'suite': suite, 'host': SUITES[suite], 'sources': sources(suite), 'recipe': recipe_hash(suite),
            'built': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
            'build_seconds': round(time.monotonic() - started, 1),
            'kernel': {'release': release, 'package': kernel_package, 'version': packages.get(kernel_package)},
            'packages': {name: packages.get(name) for name in RECORDED},
        }
        _write_json(os.path.join(work, 'versions.json'), versions)
        _write_json(os.path.join(work, 'recipe.json'), dict(recipe(suite), public_key=public_key))
        shutil.rmtree(target, ignore_errors=True)
        os.rename(work, target)
        for name in os.listdir(CACHE):
            other = os.path.join(CACHE, name)
            if name.startswith(suite + '-') and other != target and os.path.isdir(other):
                _remove_tree(other)
        log('%s: built in %.0f s: kernel %s, docker.io %s, criu %s'
            % (suite, versions['build_seconds'], release, versions['packages']['docker.io'],
               versions['packages']['criu']))
        return target


def versions(suite):
    """versions.json of the suite's image (None when it is not built)."""
    return _read_json(os.path.join(image_dir(suite), 'versions.json'))


def _tail(path, lines=30):
    try:
        with open(path, errors='replace') as handle:
            return ''.join(handle.readlines()[-lines:])
    except OSError:
        return '(nothing in %s)' % path


_RUNNING = set()


@atexit.register
def _down_all():
    for guest in list(_RUNNING):
        guest.down()


class Guest:
    """A running Debian guest of the test bed.

    suite: bookworm or trixie. detach: QEMU outlives this Python process (the CLI's `boot`); otherwise it
    gets SIGTERM when the process dies, and a `with` block powers it off at the end.

    up() builds the image if needed, boots and waits for SSH; `inventory` (the file), `host` (its host
    name), `port`, `boot_seconds` (QEMU start to SSH). run() runs a command in it, playbook() and
    run_module() run Ansible against it over SSH, boot_id() reads its boot id. down() powers it off.
    """

    def __init__(self, suite, detach=False, boot_timeout=BOOT_TIMEOUT, log=print):
        recipe(suite)
        self.suite = suite
        self.host = SUITES[suite]
        self.detach = detach
        self.boot_timeout = boot_timeout
        self.log = log
        self.run_dir = os.path.join(CACHE, 'run', suite)
        self.inventory = os.path.join(self.run_dir, 'inventory.yml')
        self.console = os.path.join(self.run_dir, 'console.log')
        self.pidfile = os.path.join(self.run_dir, 'qemu.pid')
        self.control = os.path.join(self.run_dir, 'ssh-control')
        self.port = None
        self.boot_seconds = None
        self.image = None
        self._process = None

    def __enter__(self):
        self.up()
        return self

    def __exit__(self, *exc):
        self.down()
        return False

    # -- boot ------------------------------------------------------------------------------

    def qemu_argv(self, overlay):
        accel = os.environ.get('CRYO_GUEST_ACCEL', ACCEL)
        return ['qemu-system-x86_64', '-name', 'cryo-' + self.suite, '-accel', accel, '-cpu', 'max',
                '-smp', str(CPUS), '-m', str(MEMORY_MB), '-nographic',
                '-kernel', os.path.join(self.image, 'vmlinuz'), '-initrd', os.path.join(self.image, 'initrd.img'),
                '-append', 'console=ttyS0 root=/dev/vda rw',
                '-drive', 'file=%s,format=qcow2,if=virtio' % overlay,
                '-netdev', 'user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22' % self.port,
                '-device', 'virtio-net-pci,netdev=n0']

    def up(self):
        """Boot the guest from a clean copy of its image and wait for SSH; the guest."""
        try:
            self.image = build(self.suite, log=self.log)
            _check_tools()
            self.kill_stale()
            shutil.rmtree(self.run_dir, ignore_errors=True)
            os.makedirs(self.run_dir)
            overlay = os.path.join(self.run_dir, 'overlay.qcow2')
            subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', os.path.join(self.image, 'base.img'),
                            '-F', 'raw', overlay], check=True, capture_output=True, timeout=60)
            self.port = helpers.free_port()
            started = time.monotonic()
            argv = self.qemu_argv(overlay)
            if not self.detach:
                # SIGTERM to QEMU when this process dies (a killed test run leaves no guest behind).
                argv = ['setpriv', '--pdeathsig', 'TERM', '--'] + argv
            with open(self.console, 'wb') as console:
                self._process = subprocess.Popen(  # pylint: disable=consider-using-with
                    argv, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                    start_new_session=True, close_fds=True)
            if not self.detach:
                _RUNNING.add(self)
            with open(self.pidfile, 'w') as handle:
                handle.write('%d\n' % self._process.pid)
            with open(os.path.join(self.run_dir, 'port'), 'w') as handle:
                handle.write('%d\n' % self.port)
            self.write_inventory()
            self.wait_ssh(self.boot_timeout)
            self.boot_seconds = round(time.monotonic() - started, 1)
            self.log('%s: %s up, SSH on 127.0.0.1:%d after %.0f s (inventory %s)'
                     % (self.suite, self.host, self.port, self.boot_seconds, self.inventory))
            return self
        except BaseException:
            self.down()
            raise

    @classmethod
    def attach(cls, suite):
        """The guest of a suite that runs already (booted by another process, e.g. `guests.py boot`)."""
        guest = cls(suite, detach=True)
        guest.image = image_dir(suite)
        try:
            with open(os.path.join(guest.run_dir, 'port')) as handle:
                guest.port = int(handle.read())
        except (OSError, ValueError):
            raise RuntimeError('no %s guest runs (guests.py boot %s)' % (suite, suite)) from None
        if not guest.qemu_pid():
            raise RuntimeError('the %s guest is not running (console: %s)' % (suite, guest.console))
        return guest

    def qemu_pid(self):
        """The pid of this suite's QEMU, if it runs (a stale pidfile may name another process)."""
        try:
            with open(self.pidfile) as handle:
                pid = int(handle.read())
            with open('/proc/%d/cmdline' % pid, 'rb') as handle:
                cmdline = handle.read().decode(errors='replace')
        except (OSError, ValueError):
            return None
        if 'qemu-system' in cmdline and self.run_dir in cmdline:
            return pid
        return None

    def kill_stale(self):
        """Kill a QEMU of this suite that an earlier, dead, run left behind."""
        pid = self.qemu_pid()
        if pid:
            self.log('%s: killing QEMU %d left by an earlier run' % (self.suite, pid))
            os.kill(pid, signal.SIGKILL)
            self._wait_gone(pid, 10)

    @staticmethod
    def _wait_gone(pid, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open('/proc/%d/stat' % pid) as handle:
                    if handle.read().rsplit(')', 1)[1].split()[0] == 'Z':
                        return True
            except OSError:
                return True
            time.sleep(0.2)
        return False

    def panicked(self):
        """The end of the serial console when the guest's kernel panicked (its console says so), else None."""
        tail = _tail(self.console, 60)
        return tail if 'Kernel panic' in tail else None

    def running(self):
        if self._process is not None:
            return self._process.poll() is None
        return self.qemu_pid() is not None

    def hostvars(self):
        return {
            'ansible_host': '127.0.0.1',
            'ansible_port': self.port,
            'ansible_user': 'root',
            'ansible_ssh_private_key_file': KEY,
            # The keepalive ends a multiplexed connection to a guest that rebooted (QEMU's user network
            # sends no reset) in seconds instead of never.
            'ansible_ssh_common_args': ' '.join(SSH_OPTIONS),
            'ansible_python_interpreter': '/usr/bin/python3',
            'cryo_guest_suite': self.suite,
        }

    def write_inventory(self):
        write_inventory(self.inventory, [self])

    # -- SSH -------------------------------------------------------------------------------

    def ssh_argv(self, master=False):
        argv = ['ssh', '-i', KEY, '-p', str(self.port), '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR',
                '-o', 'ConnectTimeout=10', '-o', 'ControlPath=' + self.control] + SSH_OPTIONS
        if master:
            argv += ['-o', 'ControlMaster=yes', '-o', 'ControlPersist=yes', '-N', '-f']
        else:
            argv += ['-o', 'ControlMaster=no']
        return argv + ['root@127.0.0.1']

    def wait_ssh(self, timeout=BOOT_TIMEOUT):
        """Wait until sshd answers (and a shared connection for run() is up); fail with the console's end."""
        self._close_master()
        deadline = time.monotonic() + timeout
        while True:
            if not self.running() or self.panicked():
                raise RuntimeError('%s: QEMU exited or the kernel panicked; the end of %s:\n%s'
                                   % (self.suite, self.console, _tail(self.console)))
            try:
                proc = subprocess.run(self.ssh_argv() + ['true'], stdin=subprocess.DEVNULL, capture_output=True,
                                      timeout=30, check=False)
                if proc.returncode == 0:
                    break
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError('%s: no SSH on 127.0.0.1:%s within %s s; the end of %s:\n%s'
                                   % (self.suite, self.port, timeout, self.console, _tail(self.console)))
            time.sleep(2)
        # The master detaches with its output on /dev/null (a pipe would keep run()'s reads open).
        subprocess.run(self.ssh_argv(master=True), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30, check=False)

    def _close_master(self):
        if self.port and os.path.exists(self.control):
            subprocess.run(self.ssh_argv()[:-1] + ['-O', 'exit', 'root@127.0.0.1'], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=10, check=False)

    def run(self, command, timeout=120, check=True, stdin_text=None):
        """Run a command in the guest (a string for its shell, or an argv); the CompletedProcess (text)."""
        if not isinstance(command, str):
            command = ' '.join(shlex.quote(arg) for arg in command)
        options = {'input': stdin_text} if stdin_text is not None else {'stdin': subprocess.DEVNULL}
        proc = subprocess.run(self.ssh_argv() + [command], capture_output=True, text=True, timeout=timeout,
                              check=False, **options)
        if check and proc.returncode != 0:
            # rc 255: ssh itself failed; say so when the guest is gone.
            gone = self.panicked() if proc.returncode == 255 else None
            raise AssertionError('%s: `%s` failed (rc %s): %s%s%s' % (
                self.host, command, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:],
                '\nthe guest\'s kernel panicked; the end of %s:\n%s' % (self.console, gone) if gone else ''))
        return proc

    def diagnose(self):
        """What to read when a checkpoint or restore failed in the guest: the end of CRIU's log (the criu role's
        /etc/criu/runc.conf sends it to /var/log/criu/runc-criu.log) and of the engine's journal."""
        proc = self.run('tail -n 40 /var/log/criu/runc-criu.log; echo ---; journalctl -u docker -n 30 --no-pager',
                        timeout=60, check=False)
        return proc.stdout + proc.stderr

    def boot_id(self):
        return self.run('cat /proc/sys/kernel/random/boot_id', timeout=60).stdout.strip()

    # -- Ansible ---------------------------------------------------------------------------

    def playbook(self, text, timeout=900, extra_vars=None, options=(), inventory=None):
        """ansible-playbook with a playbook given as text (`{testbed}` is tests/testbed) against the guest's
        inventory (or another one, e.g. of several guests: write_inventory), over SSH; the CompletedProcess.
        Killed after timeout seconds (an AssertionError)."""
        with tempfile.TemporaryDirectory(prefix='cryo-guest-') as tmp:
            argv, env = self.playbook_command(tmp, text, extra_vars, options, inventory)
            try:
                return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False,
                                      stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired as error:
                raise AssertionError('ansible-playbook against %s did not end within %s s:\n%s\n%s'
                                     % (self.host, timeout, _text(error.stdout), _text(error.stderr))) from None

    def playbook_command(self, tmp, text, extra_vars=None, options=(), inventory=None):
        """(argv, env) of ansible-playbook for playbook(), its files written in the directory tmp (for a test that
        starts it itself, to kill it half-way)."""
        playbook = os.path.join(tmp, 'play.yml')
        with open(playbook, 'w') as handle:
            handle.write(text.replace('{testbed}', helpers.TESTBED))
        argv = [helpers._ansible_playbook(), playbook, '-i', inventory or self.inventory] + list(options)  # pylint: disable=protected-access
        if extra_vars:
            with open(os.path.join(tmp, 'vars.json'), 'w') as handle:
                json.dump(extra_vars, handle)
            argv += ['-e', '@' + os.path.join(tmp, 'vars.json')]
        env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_HOST_KEY_CHECKING='false',
                   ANSIBLE_INVENTORY_UNPARSED_WARNING='false', ANSIBLE_LOCALHOST_WARNING='false')
        env.setdefault('ANSIBLE_COLLECTIONS_PATH', helpers.COLLECTIONS)
        env.setdefault('ANSIBLE_COLLECTIONS_SCAN_SYS_PATH', 'false')
        return argv, env

    MODULE_PLAYBOOK = """
- hosts: guests
  gather_facts: false
  tasks:
    - name: The module under test
      {module}: {args}
      register: cryo_result
      ignore_errors: true
    - name: Hand the result to the test
      ansible.builtin.copy:
        content: "{{{{ cryo_result | to_json }}}}"
        dest: "{{{{ cryo_out }}}}"
        mode: "0600"
      delegate_to: localhost
      check_mode: false
      diff: false
"""

    def run_module(self, module, args=None, timeout=600, check=False):
        """cryo.docker.<module> (or a FQCN) as a task on the guest, over SSH; its registered result, with
        ansible-playbook's output under `_output`."""
        name = module if '.' in module else 'cryo.docker.' + module
        with tempfile.TemporaryDirectory(prefix='cryo-guest-') as tmp:
            out = os.path.join(tmp, 'result.json')
            proc = self.playbook(self.MODULE_PLAYBOOK.format(module=name, args=json.dumps(args or {})),
                                 timeout=timeout, extra_vars={'cryo_out': out},
                                 options=['--check'] if check else [])
            try:
                with open(out) as handle:
                    result = json.load(handle)
            except (OSError, ValueError):
                raise AssertionError('ansible-playbook did not return a result (rc %s):\n%s\n%s'
                                     % (proc.returncode, proc.stdout, proc.stderr)) from None
        result['_output'] = proc.stdout + proc.stderr
        return result

    # -- down ------------------------------------------------------------------------------

    def down(self, timeout=DOWN_TIMEOUT):
        """Power the guest off (`systemctl poweroff` over SSH), wait for QEMU to exit, kill it after timeout.
        Does nothing when it does not run."""
        _RUNNING.discard(self)
        pid = self._process.pid if self._process is not None else self.qemu_pid()
        if pid and self.running():
            if self.port and not self.panicked():
                try:
                    self.run('systemctl poweroff', timeout=20, check=False)
                except subprocess.TimeoutExpired:
                    pass
                deadline = time.monotonic() + timeout
                while self.running() and time.monotonic() < deadline:
                    time.sleep(0.5)
            if self.running():
                self.log('%s: QEMU killed (%s)' % (self.suite, 'the kernel panicked' if self.panicked()
                                                   else 'no poweroff within %s s' % timeout))
                os.kill(pid, signal.SIGKILL)
        if self._process is not None:
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        elif pid:
            self._wait_gone(pid, 10)
        try:
            self._close_master()
        except subprocess.TimeoutExpired:
            pass
        overlay = os.path.join(self.run_dir, 'overlay.qcow2')
        if os.path.exists(overlay):
            os.unlink(overlay)
        if os.path.exists(self.pidfile):
            os.unlink(self.pidfile)


class PlaybookRun:
    """What a playbook run of a guest test did: proc (its CompletedProcess) and whatever else the test keeps."""

    def __init__(self, **fields):
        self.__dict__.update(fields)

    @property
    def output(self):
        return self.proc.stdout[-6000:] + self.proc.stderr[-3000:]


def write_inventory(path, booted):
    """An Ansible inventory of running guests (group `guests`), reached over SSH."""
    inventory = {'all': {'children': {'guests': {'hosts': {guest.host: guest.hostvars() for guest in booted}}}}}
    with open(path + '.tmp', 'w') as handle:
        handle.write('---\n# %s of tests/testbed/guests.py, reached over SSH.\n'
                     % ' and '.join('the %s guest' % guest.suite for guest in booted))
        yaml.safe_dump(inventory, handle, default_flow_style=False, sort_keys=False)
    os.replace(path + '.tmp', path)
    return path


class GuestDocker:
    """The few docker.APIClient calls helpers' counter functions make (logs, inspect_container), answered
    by the docker CLI in the guest over SSH: `helpers.counter_lines(GuestDocker(guest), name)`."""

    def __init__(self, guest):
        self.guest = guest

    def logs(self, name):
        proc = self.guest.run(['docker', 'logs', name], timeout=60)
        return (proc.stdout + proc.stderr).encode()

    def inspect_container(self, name):
        return json.loads(self.guest.run(['docker', 'inspect', '--type', 'container', name], timeout=60).stdout)[0]


def _text(data):
    if isinstance(data, bytes):
        return data.decode(errors='replace')
    return data or ''


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('action', choices=('build', 'boot', 'ssh', 'down'))
    parser.add_argument('suite', nargs='+', metavar='SUITE',
                        help='%s (build takes several; ssh takes a command after it)' % ' or '.join(SUITES))
    args = parser.parse_args()
    suites, command = args.suite[:1], args.suite[1:]
    if args.action == 'build':
        suites, command = args.suite, []
    for suite in suites:
        if suite not in SUITES:
            parser.error('no guest for %s (%s)' % (suite, ', '.join(SUITES)))
    if command and args.action != 'ssh':
        parser.error('%s takes only suites' % args.action)
    try:
        if args.action == 'build':
            for suite in suites:
                path = build(suite)
                print('%s: %s' % (suite, path))
                print(json.dumps(versions(suite), indent=2, sort_keys=True))
        elif args.action == 'boot':
            guest = Guest(suites[0], detach=True).up()
            print('inventory: %s' % guest.inventory)
            print('ssh: %s' % ' '.join(shlex.quote(arg) for arg in guest.ssh_argv()))
        elif args.action == 'ssh':
            guest = Guest.attach(suites[0])
            argv = guest.ssh_argv()
            if not command:
                argv.insert(1, '-t')
            os.execvp('ssh', argv + command)
        else:
            try:
                guest = Guest.attach(suites[0])
            except RuntimeError as error:
                print(error)
                return
            guest.down()
            print('%s: down' % suites[0])
    except (RuntimeError, subprocess.CalledProcessError) as error:
        sys.exit('guests.py %s: %s' % (args.action, error))


if __name__ == '__main__':
    main()
