"""Unit tests: recorded inputs and fakes, no Docker, root or CRIU."""

import hashlib
import tarfile

import pytest

from ansible.module_utils import _internal
from ansible_collections.cryo.docker.plugins.module_utils import _criuconf


@pytest.fixture(autouse=True)
def module_side_warnings(request, monkeypatch):
    """Modules under test run as on a managed host: their warnings go into their result.

    Once a controller-side plugin (the filter plugins) is imported in the same session, ansible-core
    marks the process as the controller and sends module warnings to the display instead.
    """
    if '/plugins/modules/' in str(request.path):
        monkeypatch.setattr(_internal, 'is_controller', False)


@pytest.fixture(autouse=True)
def criu_conf(tmp_path, monkeypatch):
    """No unit test reads or writes this machine's /etc/criu/runc.conf, or takes its lock: the path of the one
    the code under test uses (tmp_path/etc/criu/runc.conf, absent until a test writes it)."""
    path = tmp_path / 'etc' / 'criu' / 'runc.conf'
    monkeypatch.setattr(_criuconf, 'CONF', str(path))
    monkeypatch.setattr(_criuconf, 'LOCK_FILE', str(tmp_path / 'run' / 'criu-runc-conf.lock'))
    monkeypatch.setattr(_criuconf, '_SHARED', {})  # a test that simulates a killed call leaves its entry
    return str(path)


@pytest.fixture
def criu_tarball(tmp_path):
    """(path, 'sha256:HEX') of a tarball shaped like CRIU's source: criu-4.2.1/{Makefile,criu/}."""
    tree = tmp_path / 'tree' / 'criu-4.2.1'
    (tree / 'criu').mkdir(parents=True)
    (tree / 'Makefile').write_text('criu:\n')
    tarball = tmp_path / 'criu-4.2.1.tar.gz'
    with tarfile.open(str(tarball), 'w:gz') as archive:
        archive.add(str(tree), arcname='criu-4.2.1')
    return str(tarball), 'sha256:' + hashlib.sha256(tarball.read_bytes()).hexdigest()


def _executable_criu(directory):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / 'criu'
    path.write_text('#!/bin/sh\n')
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def make_criu():
    """make_criu(directory) -> the path of an executable stand-in `criu` made there."""
    return _executable_criu
