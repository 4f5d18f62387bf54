#!/usr/bin/env python
"""Build the real-application test images locally from Debian 12's own packages (no registry).

The same way as build_image.py builds the busybox image: a root filesystem put together here and
imported into the engine as a tarball (no Dockerfile, no base image). For each application (APPS):

1. its Debian packages and their library packages (the `lib*` of their Depends, except libc6) are
   downloaded with `apt-get download` from this machine's own Debian archive into .cache/apps/debs
   (kept between runs) and unpacked with `dpkg-deb -x`;
2. every ELF file unpacked goes through `ldd`: the libraries the packages did not bring (libc, the
   loader, what the libraries need in turn) are copied from this host, which runs the same release;
3. the application's own configuration and a few /etc files are added, and the tree is imported
   with a CMD and a label `cryo.test.inputs`: a digest of this file and of the package versions.
   An image whose label matches is kept (a second run takes well under a second: the versions apt
   resolved are kept in .cache/apps/versions.json until apt's lists change).

Images (tags are stable; the tests read them from APPS):
    cryo-test/redis:7   redis-server 7.0 (Debian 12), one process, data in memory, port 6379
    cryo-test/nginx:1   nginx 1.22 (Debian 12), a master and 2 workers, port 8080, /status is stub_status
    cryo-test/uring:1   a tiny static C program that holds an io_uring and counts (CRIU cannot dump it);
                        built only where gcc is installed (`make host` installs it for CRIU)

Usage: build_apps.py [--docker-host URL] [--only redis,nginx,uring] [--force]
"""

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

import docker

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEBS = os.path.join(ROOT, '.cache', 'apps', 'debs')
VERSIONS = os.path.join(ROOT, '.cache', 'apps', 'versions.json')
APT_LISTS = '/var/lib/apt/lists'
LABEL = 'cryo.test.inputs'

PASSWD = ('root:x:0:0:root:/root:/bin/sh\n'
          'www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n'
          'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n')
GROUP = 'root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n'

# No `user` directive: the command line gives it (-g), see APPS.
NGINX_CONF = """daemon off;
master_process on;
worker_processes 2;
pid /run/nginx.pid;
error_log stderr notice;
events {
    worker_connections 64;
}
http {
    access_log off;
    default_type text/plain;
    server {
        listen 8080;
        root /www;
        location = /status {
            stub_status;
        }
    }
}
"""

# Holds an io_uring (CRIU cannot dump one) and prints 0, 1, 2 ... once a second, like the counter.
URING_C = r"""
#include <linux/io_uring.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    struct io_uring_params params;
    unsigned long i;
    int fd;

    memset(&params, 0, sizeof(params));
    fd = syscall(__NR_io_uring_setup, 8, &params);
    if (fd < 0) {
        perror("io_uring_setup");
        return 1;
    }
    for (i = 0;; i++) {
        printf("%lu\n", i);
        fflush(stdout);
        sleep(1);
    }
}
"""

# name: tag, Debian packages, port, command, extra files {path: (text, mode)}, empty directories {path: mode},
# program (path, C source) compiled statically.
APPS = {
    'redis': dict(
        tag='cryo-test/redis:7', packages=('redis-server', 'redis-tools'), port=6379,
        cmd=['/usr/bin/redis-server', '--bind', '0.0.0.0', '--port', '6379', '--protected-mode', 'no',
             '--save', '', '--appendonly', 'no', '--dir', '/data'],
        files={}, dirs={'/data': 0o755}),
    'nginx': dict(
        tag='cryo-test/nginx:1', packages=('nginx',), port=8080,
        # Workers as root: CRIU needs CAP_SYS_RESOURCE to read the limits of a process of another user,
        # which these machines do not grant. The last argument is the user: 'user www-data;' is Debian's.
        cmd=['/usr/sbin/nginx', '-c', '/etc/nginx/nginx.conf', '-g', 'user root;'],
        files={'/etc/nginx/nginx.conf': (NGINX_CONF, 0o644), '/www/index.html': ('built into the image\n', 0o644)},
        dirs={'/var/lib/nginx': 0o755, '/var/log/nginx': 0o755, '/run': 0o755}),
    'uring': dict(
        tag='cryo-test/uring:1', packages=(), port=None, program=('/usr/local/bin/uring', URING_C),
        cmd=['/usr/local/bin/uring'], files={}, dirs={}),
}
# The base of every image: what a program expects to find.
BASE_FILES = {'/etc/passwd': (PASSWD, 0o644), '/etc/group': (GROUP, 0o644),
              '/etc/nsswitch.conf': ('passwd: files\ngroup: files\nhosts: files\n', 0o644),
              '/etc/hosts': ('127.0.0.1 localhost\n', 0o644)}
BASE_DIRS = {'/tmp': 0o1777, '/usr/bin': 0o755, '/usr/sbin': 0o755, '/usr/lib': 0o755, '/usr/lib64': 0o755,
             '/etc': 0o755, '/var': 0o755}
# Debian 12 is merged-/usr: the image is too.
MERGED = {'bin': 'usr/bin', 'sbin': 'usr/sbin', 'lib': 'usr/lib', 'lib64': 'usr/lib64'}
LEAVE_OUT = ('usr/share/doc/', 'usr/share/man/', 'usr/share/lintian/', 'etc/init.d/', 'etc/logrotate.d/',
             'lib/systemd/', 'usr/lib/systemd/', 'etc/default/')


def log(text):
    print(text, file=sys.stderr)


def run(argv, **kwargs):
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if proc.returncode:
        raise RuntimeError('%s failed (rc %s): %s' % (' '.join(argv), proc.returncode, proc.stderr.strip()[-2000:]))
    return proc.stdout


# -- Debian packages --------------------------------------------------------------------------------

def apt_records(packages, updated=[False]):  # pylint: disable=dangerous-default-value
    """{package: (candidate version, [dependency names])} from this machine's apt lists, in one
    apt-cache call (the lists are refreshed once when they do not know a package: a fresh machine
    may never have run apt-get update)."""
    proc = subprocess.run(['apt-cache', 'show', '--no-all-versions'] + list(packages), capture_output=True,
                          text=True, check=False)
    records = {}
    for stanza in proc.stdout.split('\n\n'):
        fields = dict(re.findall(r'^([A-Za-z-]+): (.*)$', stanza, re.M))
        if 'Package' in fields and 'Version' in fields:
            depends = [re.split(r'[ :(]', alt.strip().split('|')[0].strip())[0]
                       for key in ('Pre-Depends', 'Depends') for alt in fields.get(key, '').split(',')
                       if alt.strip()]
            records.setdefault(fields['Package'], (fields['Version'], depends))
    missing = sorted(set(packages) - set(records))
    if missing and not updated[0]:
        updated[0] = True
        log('apt-get update (apt does not know %s)' % ', '.join(missing))
        run(['apt-get', 'update', '-qq'])
        return apt_records(packages)
    if missing:
        raise RuntimeError('apt knows no package %s in the archive of this machine' % ', '.join(missing))
    return records


def package_set(app):
    """{package: version}: the app's packages and the library packages they depend on (not libc6:
    the loader and libc come from this host, whose ld.so ldd runs). Kept in .cache/apps/versions.json
    until apt's lists change (apt-cache takes a second a call here)."""
    if not app['packages']:
        return {}
    key = ' '.join(app['packages'])
    try:
        lists = os.stat(APT_LISTS).st_mtime
    except OSError:
        lists = None
    try:
        with open(VERSIONS, encoding='utf-8') as handle:
            known = json.load(handle)
    except (OSError, ValueError):
        known = {}
    if lists is not None and known.get(key, {}).get('lists') == lists:
        return known[key]['versions']
    records = apt_records(app['packages'])
    libraries = sorted({dep for _version, depends in records.values() for dep in depends
                        if dep.startswith('lib') and dep != 'libc6'} - set(records))
    if libraries:
        records.update(apt_records(libraries))
    versions = {package: version for package, (version, _depends) in records.items()}
    known[key] = dict(lists=lists, versions=versions)
    os.makedirs(os.path.dirname(VERSIONS), exist_ok=True)
    with open(VERSIONS, 'w', encoding='utf-8') as handle:
        json.dump(known, handle, indent=1, sort_keys=True)
    return versions


def deb_file(package, version):
    # apt-get download leaves out nothing of the version but writes ':' (an epoch) as %3a.
    prefix = '%s_%s_' % (package, version.replace(':', '%3a'))
    for name in os.listdir(DEBS):
        if name.startswith(prefix) and name.endswith('.deb'):
            return os.path.join(DEBS, name)
    return None


def download(versions):
    os.makedirs(DEBS, exist_ok=True)
    missing = ['%s=%s' % item for item in sorted(versions.items()) if not deb_file(*item)]
    if missing:
        log('apt-get download %s' % ' '.join(missing))
        run(['apt-get', '-o', 'APT::Sandbox::User=root', 'download'] + missing, cwd=DEBS)
    return [deb_file(*item) for item in sorted(versions.items())]


# -- the root filesystem ----------------------------------------------------------------------------

def image_path(path):
    """Where a path of the unpacked packages or of this host goes in the merged-/usr image."""
    path = path.lstrip('/')
    head, _sep, rest = path.partition('/')
    if head in MERGED:
        path = MERGED[head] + ('/' + rest if rest else '')
    return path


def is_elf(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read(4) == b'\x7fELF'
    except OSError:
        return False


def needed_libraries(elf_files, library_dirs):
    """The paths ldd resolves for these ELF files (the unpacked libraries first), or an error that
    names what is found nowhere."""
    env = dict(os.environ, LD_LIBRARY_PATH=':'.join(library_dirs), LC_ALL='C')
    found, missing = set(), set()
    for path in elf_files:
        proc = subprocess.run(['ldd', path], capture_output=True, text=True, env=env, check=False)
        if proc.returncode:  # static, or not a program (a data file that starts like ELF)
            continue
        for line in proc.stdout.splitlines():
            match = re.match(r'\s*(\S+) => (\S+)', line) or re.match(r'\s*(/\S+) \(0x', line)
            if not match:
                continue
            target = match.group(match.lastindex)
            if target == 'not':
                missing.add('%s (of %s)' % (match.group(1), path))
            elif target.startswith('/'):
                found.add(target)
    if missing:
        raise RuntimeError('libraries found neither in the packages nor on this host: %s' % ', '.join(sorted(missing)))
    return found


class Rootfs:
    """A tarball in memory with each path once; directories made on the way."""

    def __init__(self):
        self.data = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.data, mode='w')  # pylint: disable=consider-using-with
        self.names = set()
        for link, target in sorted(MERGED.items()):
            self.names.add(link)
            info = self._info(link, tarfile.SYMTYPE, 0o777)
            info.linkname = target
            self.tar.addfile(info)
        for path, mode in sorted(BASE_DIRS.items()):
            self.directory(path, mode)
        for path, (text, mode) in sorted(BASE_FILES.items()):
            self.file(path, text.encode(), mode)

    @staticmethod
    def _info(name, kind, mode=0o755):
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = kind, mode, 0
        return info

    def _parents(self, name):
        parent = os.path.dirname(name)
        if parent and parent not in self.names:
            self.directory(parent)

    def directory(self, path, mode=0o755):
        name = image_path(path)
        if name not in self.names:
            self._parents(name)
            self.names.add(name)
            self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode))

    def symlink(self, path, target):
        name = image_path(path)
        if name not in self.names:
            self._parents(name)
            self.names.add(name)
            info = self._info(name, tarfile.SYMTYPE, 0o777)
            info.linkname = target
            self.tar.addfile(info)

    def file(self, path, content, mode=0o644):
        name = image_path(path)
        if name not in self.names:
            self._parents(name)
            self.names.add(name)
            info = self._info(name, tarfile.REGTYPE, mode)
            info.size = len(content)
            self.tar.addfile(info, io.BytesIO(content))

    def copy(self, source, path):
        """A file of this host or of the unpacked packages, symlinks kept as symlinks."""
        if os.path.islink(source):
            self.symlink(path, os.readlink(source))
        elif os.path.isdir(source):
            self.directory(path, os.stat(source).st_mode & 0o7777)
        else:
            with open(source, 'rb') as handle:
                self.file(path, handle.read(), os.stat(source).st_mode & 0o7777)

    def host_library(self, path):
        """A library of this host at the path the loader asks for, and every symlink on the way."""
        for _link in range(10):
            real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
            if image_path(path) != image_path(real):  # a directory symlink of the host beyond MERGED
                self.symlink(path, real)
            self.copy(real, real)
            if not os.path.islink(real):
                return
            target = os.readlink(real)
            path = target if target.startswith('/') else os.path.join(os.path.dirname(real), target)

    def close(self):
        self.tar.close()
        return self.data.getvalue()


def left_out(relative):
    return any((os.path.normpath(relative) + '/').startswith(skip) for skip in LEAVE_OUT)


def unpack(debs, dest):
    for deb in debs:
        run(['dpkg-deb', '-x', deb, dest])


def compile_program(source, dest):
    compiler = shutil.which('gcc') or shutil.which('cc')
    if not compiler:
        return None
    with tempfile.TemporaryDirectory(prefix='cryo-app-') as tmp:
        path = os.path.join(tmp, 'program.c')
        with open(path, 'w', encoding='utf-8') as handle:
            handle.write(source)
        run([compiler, '-static', '-O2', '-o', dest, path])
    return dest


def rootfs_tar(app):
    """The image's root filesystem as a tarball (bytes), or None when it cannot be built here."""
    fs = Rootfs()
    with tempfile.TemporaryDirectory(prefix='cryo-app-') as staging:
        unpack(download(package_set(app)), staging)
        elf_files, library_dirs = [], []
        for top, dirs, files in os.walk(staging):
            relative = os.path.relpath(top, staging)
            dirs[:] = sorted(name for name in dirs if not left_out(os.path.join(relative, name)))
            if files and re.search(r'(^|/)lib(64)?(/x86_64-linux-gnu)?$', relative):
                library_dirs.append(top)
            for name in dirs + sorted(files):
                source = os.path.join(top, name)
                fs.copy(source, os.path.normpath(os.path.join(relative, name)))
                if name in files and not os.path.islink(source) and is_elf(source):
                    elf_files.append(source)
        if app.get('program'):
            path, source = app['program']
            if not compile_program(source, os.path.join(staging, 'program')):
                return None
            fs.copy(os.path.join(staging, 'program'), path)
        for library in sorted(needed_libraries(elf_files, library_dirs)):
            if not library.startswith(staging + '/'):
                fs.host_library(library)
    for path, mode in sorted(app['dirs'].items()):
        fs.directory(path, mode)
    for path, (text, mode) in sorted(app['files'].items()):
        fs.file(path, text.encode(), mode)
    return fs.close()


# -- images -----------------------------------------------------------------------------------------

def inputs_digest(name, app):
    """What the image is made of: this file, the package versions and this host's libc."""
    digest = hashlib.sha256()
    with open(os.path.abspath(__file__), 'rb') as handle:
        digest.update(handle.read())
    digest.update(name.encode())
    for package, version in sorted(package_set(app).items()):
        digest.update(('%s=%s\n' % (package, version)).encode())
    libc = subprocess.run(['dpkg-query', '-W', '-f=${Version}', 'libc6'], capture_output=True, text=True,
                          check=False).stdout
    digest.update(libc.encode())
    return digest.hexdigest()[:16]


def image_inputs(client, tag):
    """The inputs label of an image of this tag, or None when there is none."""
    try:
        return ((client.inspect_image(tag).get('Config') or {}).get('Labels') or {}).get(LABEL) or ''
    except docker.errors.ImageNotFound:
        return None


def _json_list(argv):
    return json.dumps(list(argv))


def build(client, name, force=False):
    """Build one application image unless it is there with the same inputs; a sentence saying what happened."""
    app = APPS[name]
    inputs = inputs_digest(name, app)
    if not force and image_inputs(client, app['tag']) == inputs:
        return 'image %s is already there (inputs %s)' % (app['tag'], inputs)
    started = time.monotonic()
    data = rootfs_tar(app)
    if data is None:
        return 'image %s not built: no C compiler on this machine (gcc)' % app['tag']
    repo, tag = app['tag'].rsplit(':', 1)
    changes = ['CMD %s' % _json_list(app['cmd']), 'LABEL %s=%s' % (LABEL, inputs)]
    if app['port']:
        changes.append('EXPOSE %d' % app['port'])
    client.import_image_from_data(data, repository=repo, tag=tag, changes=changes)
    return 'built image %s (%.1f MB, %.1f s, inputs %s)' % (app['tag'], len(data) / 1e6, time.monotonic() - started,
                                                            inputs)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--docker-host', default=os.environ.get('DOCKER_HOST', 'unix:///var/run/docker.sock'))
    parser.add_argument('--only', default=','.join(APPS), help='comma-separated: %s' % ', '.join(APPS))
    parser.add_argument('--force', action='store_true', help='build even when the image is there')
    args = parser.parse_args()
    client = docker.APIClient(base_url=args.docker_host, version='auto', timeout=300)
    for name in args.only.split(','):
        print(build(client, name, args.force))


if __name__ == '__main__':
    main()
