# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""Installing CRIU: distribution package, PPA, or a source build; pure helpers first, then CriuHost,
which asks the host's package tools and changes the host."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile

from ansible.module_utils.urls import fetch_url

from ansible_collections.cryo.docker.plugins.module_utils._common import C_LOCALE, ModuleError
from ansible_collections.cryo.docker.plugins.module_utils._criu import (
    DOCKER_MIN_CRIU,
    format_version,
    parse_release,
    parse_version,
    version_at_least,
    version_tuple,
)
from ansible_collections.cryo.docker.plugins.module_utils._host import search_dirs

UPSTREAM_URL = 'https://github.com/checkpoint-restore/criu/archive/refs/tags/v{version}.tar.gz'

# Where the distribution packages (Debian, Ubuntu, Fedora, RHEL) put the binary.
PACKAGE_BINARY = '/usr/sbin/criu'
PACKAGE_NAME = 'criu'

BUILD_DEPS = {
    'apt': [
        'build-essential', 'pkg-config', 'libbsd-dev', 'libcap-dev', 'libgnutls28-dev',
        'libnet1-dev', 'libnftables-dev', 'libnl-3-dev', 'libprotobuf-c-dev', 'libprotobuf-dev',
        'protobuf-c-compiler', 'protobuf-compiler', 'python3-protobuf', 'uuid-dev',
    ],
    'dnf': [
        'gcc', 'make', 'pkgconf-pkg-config', 'libbsd-devel', 'libcap-devel', 'gnutls-devel',
        'libnet-devel', 'nftables-devel', 'libnl3-devel', 'protobuf-c-devel', 'protobuf-devel',
        'protobuf-c-compiler', 'protobuf-compiler', 'python3-protobuf', 'libuuid-devel',
    ],
}

BUILD_LOG_TAIL = 40
APT_ENV = dict(C_LOCALE, DEBIAN_FRONTEND='noninteractive')


class InstallError(ModuleError):
    """An install step that failed: what, why and what to do, with the tool's own output beside it."""


# -- pure helpers (unit tested with recorded outputs) --------------------------------

def parse_checksum(text):
    """The hex digest of 'sha256:<64 hex>' (lower case); None when text is not that."""
    match = re.match(r'^sha256:([0-9a-fA-F]{64})$', (text or '').strip())
    return match.group(1).lower() if match else None


def sha256_of(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def verify_checksum(path, expected_hex):
    """(ok, actual hex digest) of the file at path against expected_hex."""
    actual = sha256_of(path)
    return actual == expected_hex.lower(), actual


def upstream_version(package_version):
    """'3.17.1' from a package version such as '3.17.1-2+deb12u2', '1:4.2-1ubuntu1~22.04', '4.1'."""
    text = (package_version or '').strip()
    if not text or text == '(none)':
        return None
    if ':' in text:
        text = text.split(':', 1)[1]
    if '-' in text:
        text = text.rsplit('-', 1)[0]
    match = re.match(r'\d+(?:\.\d+)*', text)
    return match.group(0) if match else None


def parse_dpkg_status(stdout):
    """The installed version from `dpkg-query -W -f='${Status}\\t${Version}\\n' criu`, or None."""
    for line in (stdout or '').splitlines():
        status, _sep, version = line.partition('\t')
        if status.split()[-1:] == ['installed'] and version.strip():
            return version.strip()
    return None


def parse_apt_policy(stdout):
    """{'installed': ..., 'candidate': ...} (package versions or None) from `apt-cache policy PKG`."""
    found = dict(installed=None, candidate=None)
    for line in (stdout or '').splitlines():
        key, sep, value = line.strip().partition(':')
        if sep and key.lower() in found:
            value = value.strip()
            found[key.lower()] = None if value in ('', '(none)') else value
    return found


def parse_rpm_version(rc, stdout):
    """The version from `rpm -q --qf '%{VERSION}\\n' criu`; None when not installed."""
    if rc != 0:
        return None
    for line in (stdout or '').splitlines():
        if re.match(r'^\d+(?:\.\d+)+', line.strip()):
            return line.strip()
    return None


def parse_dnf_candidate(stdout):
    """The newest version listed by `dnf repoquery --qf '%{version}\\n' criu`, or None."""
    versions = [line.strip() for line in (stdout or '').splitlines()
                if re.match(r'^\d+(?:\.\d+)+$', line.strip())]
    return max(versions, key=version_tuple) if versions else None


def parse_os_release(text):
    """/etc/os-release as a dict of lower-case keys ('id', 'id_like', 'version_codename')."""
    info = {}
    for line in (text or '').splitlines():
        key, sep, value = line.strip().partition('=')
        if sep and key and not key.startswith('#'):
            info[key.lower()] = value.strip().strip('"\'')
    return info


def parse_ppa(ppa):
    """(owner, archive) of 'ppa:owner/archive'; None when ppa does not look like that."""
    match = re.match(r'^ppa:([A-Za-z0-9][\w.+-]*)/([A-Za-z0-9][\w.+-]*)$', (ppa or '').strip())
    return (match.group(1), match.group(2)) if match else None


def ppa_in_sources(ppa, texts):
    """Whether any apt source text (sources.list or deb822) already points at the PPA."""
    owner, archive = parse_ppa(ppa)
    pattern = re.compile(r'launchpad(?:content)?\.net/%s/%s/ubuntu' % (re.escape(owner), re.escape(archive)))
    for text in texts:
        for line in (text or '').splitlines():
            line = line.split('#', 1)[0]
            if pattern.search(line):
                return True
    return False


def first_criu(search_path, installing):
    """The criu runc would find on search_path once `installing` exists (None when not reachable)."""
    for directory in search_dirs(search_path):
        if same_file(directory, os.path.dirname(installing)):
            return installing
        candidate = os.path.join(directory, 'criu')
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def same_file(first, second):
    try:
        return os.path.samefile(first, second)
    except OSError:
        return os.path.normpath(first) == os.path.normpath(second)


def check_min_version(text):
    """Validate a min_version option: (version string, None) or (None, reason)."""
    if parse_release(text) is None:
        return None, 'min_version %r is not a version such as 4.2 or 4.2.1' % (text,)
    if not version_at_least(text, format_version(DOCKER_MIN_CRIU)):
        return None, ('min_version %s is below %s, the oldest CRIU Docker supports'
                      % (text, format_version(DOCKER_MIN_CRIU)))
    return text, None


def decide_auto(facts):
    """What method=auto does, from facts about the host: min_version, version, current (the CRIU runc
    runs now, from _criu.probe), package (CriuHost.package) and ubuntu.

    Returns (action, reason), action one of none, package, ppa, source.
    """
    minimum = facts['min_version']
    current = facts.get('current')
    if current and current.get('version'):
        if not version_at_least(current['version'], minimum):
            why = 'the installed CRIU %s at %s is older than %s' % (current['version'], current['path'], minimum)
        elif not current.get('check_ok'):
            why = 'the installed CRIU %s at %s fails `criu check`' % (current['version'], current['path'])
        else:
            return 'none', 'the installed CRIU %s at %s works and is new enough' % (current['version'], current['path'])
    else:
        why = 'no CRIU is installed'
    package = facts.get('package') or {}
    candidate = upstream_version(package.get('candidate'))
    if package.get('manager') and candidate and version_at_least(candidate, minimum):
        return 'package', '%s; the distribution package offers %s' % (why, candidate)
    if package.get('manager') and candidate:
        why += '; the distribution package (%s) is older than %s' % (candidate, minimum)
    elif package.get('manager'):
        why += '; the distribution has no criu package'
    if facts.get('ubuntu'):
        return 'ppa', why + '; this is Ubuntu: trying the PPA'
    return 'source', why + '; building CRIU %s from source' % facts['version']


def tail(text, lines=BUILD_LOG_TAIL):
    return [line for line in (text or '').splitlines() if line.strip()][-lines:]


def safe_members(archive, dest):
    """Members of a tarball that stay inside dest (for Pythons without tarfile filters)."""
    root = os.path.realpath(dest)
    for member in archive.getmembers():
        target = os.path.realpath(os.path.join(dest, member.name))
        if not (target == root or target.startswith(root + os.sep)):
            raise InstallError('The CRIU source tarball has a member outside its directory (%s): '
                               'refusing to unpack it.' % member.name)
        if member.isdev():
            continue
        yield member


# -- the installer ---------------------------------------------------------------------

class CriuHost:
    """The host's package tools and build tools; every command through module.run_command."""

    def __init__(self, module):
        self.module = module
        self._manager = None

    # running things

    def run(self, argv, env=None, cwd=None, data=None):
        return self.module.run_command(argv, environ_update=dict(env or C_LOCALE), cwd=cwd, data=data)

    def bin(self, name, required=False):
        return self.module.get_bin_path(name, required=required)

    # what is there

    def version_of(self, path):
        """The version a criu binary reports, or None (a build not installed yet, a missing file)."""
        if not path or not os.path.isfile(path):
            return None
        rc, out, _err = self.run([path, '--version'])
        return parse_version(out) if rc == 0 else None

    def os_release(self):
        for path in ('/etc/os-release', '/usr/lib/os-release'):
            try:
                with open(path) as handle:
                    return parse_os_release(handle.read())
            except OSError:
                continue
        return {}

    def is_ubuntu(self):
        return self.os_release().get('id') == 'ubuntu'

    def manager(self):
        """'apt' or 'dnf' (the host's package manager), or None."""
        if self._manager is None:
            if self.bin('apt-get') and self.bin('dpkg-query'):
                self._manager = 'apt'
            elif self.bin('dnf') and self.bin('rpm'):
                self._manager = 'dnf'
            else:
                self._manager = ''
        return self._manager or None

    def package(self, refresh=False):
        """{'manager', 'installed', 'candidate'} of the distribution's criu package."""
        manager = self.manager()
        found = dict(manager=manager, installed=None, candidate=None)
        if manager == 'apt':
            rc, out, err = self.run([self.bin('dpkg-query'), '-W', '-f=${Status}\t${Version}\n', PACKAGE_NAME])
            found['installed'] = parse_dpkg_status(out) if rc == 0 else None
            policy = parse_apt_policy(self.run([self.bin('apt-cache', True), 'policy', PACKAGE_NAME])[1])
            if policy['candidate'] is None and refresh and not self.module.check_mode:
                # Fresh hosts have no package lists yet; refreshing them changes no installed state.
                self.apt_update()
                policy = parse_apt_policy(self.run([self.bin('apt-cache', True), 'policy', PACKAGE_NAME])[1])
            found['candidate'] = policy['candidate']
        elif manager == 'dnf':
            rc, out, err = self.run([self.bin('rpm'), '-q', '--qf', '%{VERSION}\n', PACKAGE_NAME])
            found['installed'] = parse_rpm_version(rc, out)
            rc, out, err = self.run([self.bin('dnf'), '-q', 'repoquery', '--latest-limit', '1',
                                     '--queryformat', '%{version}\n', PACKAGE_NAME])
            found['candidate'] = parse_dnf_candidate(out) if rc == 0 else None
        return found

    def ppa_configured(self, ppa):
        texts = []
        for path in ['/etc/apt/sources.list'] + sorted(
                os.path.join('/etc/apt/sources.list.d', name)
                for name in (os.listdir('/etc/apt/sources.list.d') if os.path.isdir('/etc/apt/sources.list.d') else [])):
            try:
                with open(path, errors='replace') as handle:
                    texts.append(handle.read())
            except OSError:
                continue
        return ppa_in_sources(ppa, texts)

    # changing things

    def apt_update(self):
        rc, out, err = self.run([self.bin('apt-get', True), 'update', '-q'], env=APT_ENV)
        if rc != 0:
            raise InstallError('apt-get update failed (exit %s): the package lists could not be refreshed; '
                               'check the apt sources and the network.' % rc, stderr_lines=tail(err, 20))

    def install_packages(self, names, what):
        """Install distribution packages; on apt, refresh the lists once if that fails."""
        manager = self.manager()
        if manager == 'apt':
            argv = [self.bin('apt-get', True), 'install', '-y', '-q', '--no-install-recommends'] + list(names)
            rc, out, err = self.run(argv, env=APT_ENV)
            if rc != 0:
                self.apt_update()
                rc, out, err = self.run(argv, env=APT_ENV)
        elif manager == 'dnf':
            rc, out, err = self.run([self.bin('dnf', True), 'install', '-y', '-q'] + list(names))
        else:
            raise InstallError('Cannot install %s: no apt-get or dnf on this host. Install %s by hand.'
                               % (what, ', '.join(names)))
        if rc != 0:
            raise InstallError('Installing %s with %s failed (exit %s): %s'
                               % (what, manager, rc, (tail(err, 1) or tail(out, 1) or ['no output'])[0]),
                               packages=list(names), stderr_lines=tail(err, 20))

    def missing_packages(self, names):
        manager = self.manager()
        if manager == 'apt':
            rc, out, err = self.run([self.bin('dpkg-query'), '-W', '-f=${Package}\t${Status}\n'] + list(names))
            installed = set()
            for line in out.splitlines():
                name, _sep, status = line.partition('\t')
                if status.split()[-1:] == ['installed']:
                    installed.add(name.split(':')[0])
            return [name for name in names if name not in installed]
        if manager == 'dnf':
            missing = []
            for name in names:
                rc, out, err = self.run([self.bin('rpm'), '-q', name])
                if rc != 0:
                    missing.append(name)
            return missing
        return list(names)

    def add_ppa(self, ppa):
        tool = self.bin('add-apt-repository')
        if not tool:
            self.install_packages(['software-properties-common'], 'add-apt-repository')
            tool = self.bin('add-apt-repository', True)
        rc, out, err = self.run([tool, '-y', ppa], env=APT_ENV)
        if rc != 0:
            raise InstallError('Adding the PPA %s failed (exit %s): Launchpad may be unreachable from this host. '
                               'Use method=source with a source_url this host can reach.' % (ppa, rc),
                               stderr_lines=tail(err, 20))

    def fetch(self, source_url, dest_dir):
        """The path of the tarball: a local file as is, an http(s) URL downloaded into dest_dir."""
        if source_url.startswith('file://'):
            source_url = source_url[len('file://'):]
        if not re.match(r'^https?://', source_url):
            if not os.path.isfile(source_url):
                raise InstallError('The CRIU source tarball %s does not exist (source_url): give an existing '
                                   'local path or an http(s) URL.' % source_url)
            return source_url
        name = os.path.basename(source_url.split('?', 1)[0]) or 'criu-source.tar.gz'
        path = os.path.join(dest_dir, name)
        response, info = fetch_url(self.module, source_url, timeout=60)
        if info.get('status') != 200 or response is None:
            raise InstallError('Downloading the CRIU source from %s failed (%s): %s. If this host cannot reach it, '
                               'download the release tarball elsewhere and give its local path as source_url.'
                               % (source_url, info.get('status'), info.get('msg')), url=source_url)
        with open(path, 'wb') as handle:
            shutil.copyfileobj(response, handle, 1 << 20)
        return path

    def unpack(self, tarball, dest_dir):
        """The top directory (holding CRIU's Makefile) of the unpacked tarball."""
        try:
            with tarfile.open(tarball) as archive:
                if hasattr(tarfile, 'data_filter'):
                    archive.extractall(dest_dir, filter='data')
                else:
                    archive.extractall(dest_dir, members=safe_members(archive, dest_dir))
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise InstallError('Unpacking the CRIU source tarball %s failed: %s' % (tarball, exc))
        entries = [os.path.join(dest_dir, name) for name in os.listdir(dest_dir)]
        tops = [entry for entry in entries if os.path.isdir(entry)]
        for top in [dest_dir] + tops:
            if os.path.isfile(os.path.join(top, 'Makefile')) and os.path.isdir(os.path.join(top, 'criu')):
                return top
        raise InstallError('The tarball %s does not look like CRIU source (no Makefile and criu/ directory '
                           'at its top): check source_url.' % tarball)

    def build(self, source_dir, log_path):
        """Build the criu binary; its path in the source tree."""
        make = self.bin('make', True)
        jobs = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)
        rc, out, err = self.run([make, '-j%d' % max(jobs, 1), 'criu'], cwd=source_dir)
        with open(log_path, 'w') as handle:
            handle.write(out or '')
            handle.write(err or '')
        binary = os.path.join(source_dir, 'criu', 'criu')
        if rc != 0 or not os.path.isfile(binary):
            raise InstallError('Building CRIU failed (make exited %s); the last lines of the build log are in '
                               'build_log. A missing library usually means a build dependency could not be '
                               'installed.' % rc, build_log=tail((out or '') + '\n' + (err or '')))
        return binary

    def install_binary(self, binary, target):
        """Copy binary to target atomically: a temporary file in the same directory, then rename."""
        directory = os.path.dirname(target)
        try:
            os.makedirs(directory, mode=0o755, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix='.criu.', dir=directory)
            os.close(fd)
            try:
                shutil.copyfile(binary, temp)
                os.chmod(temp, 0o755)
                os.rename(temp, target)
            except BaseException:
                os.unlink(temp)
                raise
        except OSError as exc:
            raise InstallError('Installing the CRIU binary to %s failed: %s' % (target, exc))
