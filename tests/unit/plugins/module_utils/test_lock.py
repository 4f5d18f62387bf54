"""The container's lock (_lock.py): one operation at a time, the holder named, released when its process ends."""

import os
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _lock


@pytest.fixture
def path(tmp_path):
    directory = tmp_path / 'docker' / 'containers' / 'abc'
    directory.mkdir(parents=True)
    return str(directory / _lock.LOCK_FILE)


def test_the_lock_lives_beside_the_container_else_in_run(tmp_path):
    (tmp_path / 'containers' / 'abc').mkdir(parents=True)
    assert _lock.lock_path(str(tmp_path), 'abc', '/run/x') == str(tmp_path / 'containers' / 'abc' / _lock.LOCK_FILE)
    # A remote engine: its data root is not on this host.
    assert _lock.lock_path(str(tmp_path), 'def', '/run/x') == '/run/x/def.lock'


def test_a_second_operation_is_refused_with_the_holder_named(path):
    first = _lock.ContainerLock(path).acquire('a checkpoint', 'cp1')
    assert first.held
    with pytest.raises(_lock.Busy) as refused:
        _lock.ContainerLock(path).acquire('a restore', 'cp1')
    owner = refused.value.owner
    assert owner['pid'] == os.getpid() and owner['operation'] == 'a checkpoint' and owner['checkpoint'] == 'cp1'
    expected = 'a checkpoint of checkpoint cp1 by pid %d since %s' % (os.getpid(), owner['since'])
    assert refused.value.describe() == expected
    assert refused.value.path == path
    first.release()
    assert not first.held and _lock.read_owner(path) == {}, 'a released lock names no holder'
    again = _lock.ContainerLock(path).acquire('a restore')
    assert _lock.read_owner(path)['operation'] == 'a restore'
    again.release()
    again.release()  # twice is harmless


def test_a_holder_that_dies_leaves_the_container_free(path, tmp_path):
    """A run killed (SIGKILL) while it holds the lock: the kernel releases it, nothing stale is left to clear."""
    ready = str(tmp_path / 'ready')
    holder = subprocess.Popen([sys.executable, '-c', textwrap.dedent('''
        import sys, time
        from ansible_collections.cryo.docker.plugins.module_utils import _lock
        _lock.ContainerLock(sys.argv[1]).acquire('a checkpoint', 'cp1')
        open(sys.argv[2], 'w').close()
        time.sleep(60)
        '''), path, ready], env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    try:
        while not os.path.exists(ready):
            assert holder.poll() is None, 'the holder exited'
        with pytest.raises(_lock.Busy) as refused:
            _lock.ContainerLock(path).acquire('a restore')
        assert refused.value.owner['pid'] == holder.pid
    finally:
        holder.kill()
        holder.wait()
    _lock.ContainerLock(path).acquire('a restore').release()


def test_the_run_dir_is_made_and_a_link_is_never_followed(tmp_path):
    run_dir = tmp_path / 'run' / 'cryo.docker'
    lock = _lock.ContainerLock(_lock.lock_path(str(tmp_path / 'remote'), 'abc', str(run_dir))).acquire('a restore')
    assert oct(os.stat(str(run_dir)).st_mode & 0o777) == '0o700'
    lock.release()
    link = tmp_path / 'link.lock'
    link.symlink_to(tmp_path / 'elsewhere')
    with pytest.raises(OSError):
        _lock.ContainerLock(str(link)).acquire('a checkpoint')
    assert not (tmp_path / 'elsewhere').exists()


def test_an_unreadable_owner_record_is_no_owner(path):
    with open(path, 'w') as handle:
        handle.write('not json')
    assert _lock.read_owner(path) == {}
    assert _lock.Busy(path, {}).describe() == 'an operation'
