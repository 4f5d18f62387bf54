"""Fixtures for the modules' unit tests: a fake engine in tmp_path that every module connects to."""

import functools

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.module_utils import _criu, _lifecycle
from ansible_collections.cryo.docker.plugins.module_utils._host import Host
from ansible_collections.cryo.docker.plugins.modules import docker_checkpoint_info

from fake_engine import FakeEngine


@pytest.fixture
def engine(tmp_path, monkeypatch):
    """A FakeEngine the modules connect to, whose /proc, /tmp and /etc/criu/runc.conf are theirs too."""
    fake = FakeEngine(tmp_path)
    fake.connected = []

    def connect(params):
        fake.connected.append(params['docker_host'])
        return fake

    for module in (_lifecycle, docker_checkpoint_info):
        monkeypatch.setattr(module, 'connect', connect)
    monkeypatch.setattr(store, 'Host', functools.partial(Host, proc=fake.proc))
    real_remove = store.remove_containerd_copies
    monkeypatch.setattr(store, 'remove_containerd_copies', lambda path, tmpdir=None: real_remove(path, fake.tmpdir))
    monkeypatch.setattr(_criu.runc_log_file, '__defaults__', (fake.runc_conf,))
    return fake
