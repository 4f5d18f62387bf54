"""What this host has, read by the test bed's own route: the expectations of the tests that judge
checkpoint_preflight and criu_install.

Those modules read the kernel, its configuration, the cgroup mount and the CRIU binaries through the
collection (plugins/module_utils/_host.py, _criu.py). A test that asked the same code what to expect
would pass whatever that code got wrong, so this file reads the same facts another way: the kernel
release from /proc/sys/kernel/osrelease, its configuration with gzip, the cgroup version from
/proc/self/mountinfo, dockerd's PATH from /proc/<pid of /run/docker.pid>/environ, and every `criu`
binary's version and `criu check` by running it. With it the tests hold on any host: the lab machines
(kernel 6.18, cgroup v1, /proc/config.gz, Debian's CRIU 3.17.1 beside 4.2.1) as on Debian 12 (6.1) or
Debian 13 (6.12, cgroup v2).

Plain functions, no pytest, no import of the collection.
"""

import functools
import gzip
import os
import re
import subprocess

# The lowest CRIU that works on a kernel, newest kernel first: CRIU's release notes and issues, the test
# bed's own record (the module keeps its own table; the tests compare the two through the results).
#  - 6.16: CRIU before 4.2 cannot dump TCP/UDP sockets ("Can't get 1:16 opt: Operation not supported").
#  - 6.13: CRIU before 4.1 fails on the vDSO ("Unexpected rt vDSO area bounds").
CRIU_NEEDED = (((6, 16), (4, 2)), ((6, 13), (4, 1)))
CRIU_NEEDED_DEFAULT = (2, 0)  # Docker's own minimum
# Where distributions and `make install` put criu, and the PATH of a dockerd without one.
CRIU_DIRS = ('/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin')
C_LOCALE = dict(os.environ, LANG='C', LC_ALL='C')


def version(text):
    """(4, 2, 1) from '4.2.1', 'Version: 3.17.1' or '6.18.44-fc-v1272'; None if absent."""
    match = re.search(r'(\d+)\.(\d+)(?:\.(\d+))?', text or '')
    return tuple(int(part) for part in match.groups() if part is not None) if match else None


def dotted(parts):
    return '.'.join(str(part) for part in parts)


def at_least(have, want):
    """Versions as tuples, compared with missing parts as 0: (4, 2) >= (4, 2, 0)."""
    width = max(len(have), len(want))
    return tuple(have) + (0,) * (width - len(have)) >= tuple(want) + (0,) * (width - len(want))


# -- the kernel ---------------------------------------------------------------------------------------

def kernel_release():
    with open('/proc/sys/kernel/osrelease', encoding='utf-8') as handle:
        return handle.read().strip()


def criu_needed(release=None):
    """'4.2' on kernel 6.18, '4.1' on 6.13, '2.0' on 6.1: the lowest CRIU for the kernel, as text."""
    kernel = version(release or kernel_release())[:2]
    for min_kernel, min_criu in CRIU_NEEDED:
        if kernel >= min_kernel:
            return dotted(min_criu)
    return dotted(CRIU_NEEDED_DEFAULT)


@functools.lru_cache(maxsize=None)
def kernel_config():
    """(options, source): {'CONFIG_X': value} of the running kernel and the file it came from
    (/proc/config.gz, else /boot/config-RELEASE); (None, None) when neither exists."""
    release = kernel_release()
    for path, opener in (('/proc/config.gz', gzip.open), ('/boot/config-%s' % release, open)):
        if os.path.exists(path):
            with opener(path, 'rt', encoding='utf-8', errors='replace') as handle:
                return dict(re.findall(r'^(CONFIG_\w+)=(\S*)', handle.read(), re.MULTILINE)), path
    return None, None


def kernel_has(option):
    """True when the kernel was built with option (y or m), None when its configuration cannot be read."""
    options, _source = kernel_config()
    return None if options is None else options.get(option) in ('y', 'm')


def cgroup_version():
    """'2' when /sys/fs/cgroup is a cgroup2 mount, else '1' (from /proc/self/mountinfo)."""
    with open('/proc/self/mountinfo', encoding='utf-8') as handle:
        for line in handle:
            fields = line.split()
            # ... mount point (5th) ... ' - ' fstype source options
            if fields[4] == '/sys/fs/cgroup':
                return '2' if fields[fields.index('-') + 1] == 'cgroup2' else '1'
    return '1'


# -- CRIU -----------------------------------------------------------------------------------------------

def dockerd_path(pidfile='/run/docker.pid'):
    """The directories of the main dockerd's PATH (runc inherits it and runs the first criu on it)."""
    try:
        with open(pidfile, encoding='utf-8') as handle:
            pid = handle.read().strip()
        with open('/proc/%s/environ' % pid, 'rb') as handle:
            environ = dict(item.split(b'=', 1) for item in handle.read().split(b'\0') if b'=' in item)
    except OSError:
        return list(CRIU_DIRS)
    path = environ.get(b'PATH')
    # dockerd started without PATH (systemd gives one; a bare exec may not): Go's default lookup path.
    return path.decode().split(':') if path else list(CRIU_DIRS)


def criu_of_docker(pidfile='/run/docker.pid'):
    """The criu Docker runs: the first executable criu on the PATH of the dockerd of pidfile, or None."""
    for directory in dockerd_path(pidfile):
        path = os.path.join(directory, 'criu')
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


@functools.lru_cache(maxsize=None)
def criu_version(path):
    """'4.2.1' from `PATH --version`, None when it does not say."""
    proc = subprocess.run([path, '--version'], capture_output=True, text=True, env=C_LOCALE, check=False)
    match = re.search(r'^Version:\s*(\S+)', proc.stdout, re.MULTILINE)
    return match.group(1) if match else None


@functools.lru_cache(maxsize=None)
def criu_check(path):
    """(rc, output) of `PATH check`."""
    proc = subprocess.run([path, 'check'], capture_output=True, text=True, env=C_LOCALE, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def criu_check_passes(path):
    """`criu check` exits 0 and says "Looks good." (warnings or not)."""
    rc, output = criu_check(path)
    return rc == 0 and 'Looks good' in output


def criu_binaries():
    """{path: version} of every criu in the usual directories and on dockerd's PATH (a link counted once,
    under its first name)."""
    found, seen = {}, set()
    for directory in list(dict.fromkeys(dockerd_path() + list(CRIU_DIRS))):
        path = os.path.join(directory, 'criu')
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            continue
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            found[path] = criu_version(path)
    return found


def criu_fit(path, release=None):
    """Whether the criu at path is new enough for the kernel (by its version and the table above)."""
    have = version(criu_version(path))
    return have is not None and at_least(have, version(criu_needed(release)))


def criu_too_old():
    """(path, version) of a criu on this host too old for its kernel (Debian 12's 3.17.1 on a kernel >= 6.13),
    else None: the injected fault of the tests, when the host has one."""
    for path, found in criu_binaries().items():
        if found and not criu_fit(path):
            return path, found
    return None


# -- Debian's package -----------------------------------------------------------------------------------

def dpkg_criu():
    """(status, version) of the criu package (`dpkg-query`), ('', '') when dpkg does not know it."""
    proc = subprocess.run(['dpkg-query', '-W', '-f=${Status}\t${Version}', 'criu'], capture_output=True, text=True,
                          env=C_LOCALE, check=False)
    if proc.returncode != 0 or '\t' not in proc.stdout:
        return '', ''
    return tuple(proc.stdout.split('\t', 1))


def apt_candidate():
    """The criu version apt would install (`apt-cache policy criu`), None when none."""
    proc = subprocess.run(['apt-cache', 'policy', 'criu'], capture_output=True, text=True, env=C_LOCALE, check=False)
    match = re.search(r'^\s*Candidate:\s*(\S+)', proc.stdout, re.MULTILINE)
    return match.group(1) if match and match.group(1) != '(none)' else None


def upstream(package_version):
    """'3.17.1' from Debian's '3.17.1-2+deb12u1' (and '1:4.2-1' from an epoch)."""
    return re.sub(r'^\d+:', '', package_version or '').rsplit('-', 1)[0] or None
