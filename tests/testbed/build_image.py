#!/usr/bin/env python
"""Build the local busybox test image (no registry needed): a rootfs with Debian's static
busybox, imported into the engine. Idempotent: an existing tag is kept.

Usage: build_image.py [--docker-host URL] [--tag cryo-test/busybox:1]
"""

import argparse
import io
import os
import subprocess
import sys
import tarfile

import docker

APPLETS = ('sh', 'sleep', 'echo', 'cat', 'expr', 'nc', 'httpd', 'ls', 'ps', 'wget', 'date', 'mkdir', 'true')


def busybox_path():
    """Debian's statically linked busybox (the image has no libc), installed when missing."""
    installed = subprocess.run(['dpkg-query', '-W', '-f=${Status}', 'busybox-static'],
                               capture_output=True, text=True, check=False).stdout
    if 'install ok installed' not in installed:
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        if subprocess.run(['apt-get', 'install', '-y', '-qq', 'busybox-static'], env=env, stdout=sys.stderr,
                          check=False).returncode:
            subprocess.run(['apt-get', 'update', '-qq'], env=env, stdout=sys.stderr, check=True)
            subprocess.run(['apt-get', 'install', '-y', '-qq', 'busybox-static'], env=env, stdout=sys.stderr,
                           check=True)
    return '/bin/busybox'


def rootfs_tar(busybox=None):
    """The test image's root file system as a tarball: a static busybox (busybox_path() by default), its APPLETS
    linked to it, and the directories the tests write to (the QEMU guests carry the same: tests/testbed/guests.py)."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode='w') as tar:
        for name in ('bin', 'tmp', 'data', 'www'):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if name == 'tmp' else 0o755
            tar.addfile(info)
        tar.add(busybox or busybox_path(), arcname='bin/busybox')
        for applet in APPLETS:
            info = tarfile.TarInfo('bin/' + applet)
            info.type = tarfile.SYMTYPE
            info.linkname = 'busybox'
            tar.addfile(info)
    return data.getvalue()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--docker-host', default=os.environ.get('DOCKER_HOST', 'unix:///var/run/docker.sock'))
    parser.add_argument('--tag', default='cryo-test/busybox:1')
    args = parser.parse_args()
    client = docker.APIClient(base_url=args.docker_host, version='auto')
    if client.images(name=args.tag):
        print('image %s is already there' % args.tag)
        return
    repo, tag = args.tag.rsplit(':', 1)
    client.import_image_from_data(rootfs_tar(), repository=repo, tag=tag)
    print('built image %s' % args.tag)


if __name__ == '__main__':
    main()
