"""Containers the engine has but that cannot be checkpointed or restored now, for real on the main engine: paused
(docker pause), restarting (restart policy always, a command that exits at once, caught in its restart loop) and
dead (the engine failed to remove it: a file of its directory made immutable with chattr +i, then docker rm -f).

docker_checkpoint, docker_restore and docker_checkpoint_export fail with a msg that names the state and what to do,
checkpoint_preflight fails the container's check (not eligible) with the same remedy, docker_checkpoint_info lists
the other containers' checkpoints beside a dead one (with a warning), none gives a traceback, and nothing is
changed: the paused container stays paused and is not checkpointed, the restarting one keeps its restart policy (it
is not held at "no") and is not stopped at a checkpoint, no archive is written.

A container being removed (State.Status "removing") lasts only while the engine deletes its files; it is covered by
the unit tests with the State the engine reports then (tests/unit/plugins/modules/test_bad_input.py).
"""

import json
import os
import shutil
import subprocess
import tempfile
import time

import docker
import pytest

from helpers import call_module, checkpoint_path, checkpoints, state, wait_counter

MODULES = ('docker_checkpoint', 'docker_restore', 'docker_checkpoint_export', 'checkpoint_preflight')


@pytest.fixture
def archive_dir():
    path = tempfile.mkdtemp(dir='/var/tmp', prefix='cryo-states-')
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_one(module, name, archive_dir):
    """The result of module on container name."""
    args = dict(
        docker_checkpoint=dict(container=name, checkpoint='cp1'),
        docker_restore=dict(container=name, checkpoint='cp1'),
        docker_checkpoint_export=dict(container=name, checkpoint='cp1', path=os.path.join(archive_dir, 'a.tar')),
        checkpoint_preflight=dict(containers=[name]),
    )[module]
    return call_module(module, args)


def run_all(name, archive_dir):
    return {module: run_one(module, name, archive_dir) for module in MODULES}


def no_traceback(result):
    """No traceback anywhere, in the result or in ansible-playbook's output. ansible-core 2.19 gives every failed
    task an `exception` key; with tracebacks off (the default) it holds only "(traceback unavailable)"."""
    text = json.dumps(result)
    assert 'Traceback' not in text and 'MODULE FAILURE' not in text, text
    assert result.get('exception') in (None, '(traceback unavailable)'), result


def refused(results, name, said, remedy):
    """Every module refused container name, saying `said` (its state) and `remedy` (what to do)."""
    for module, result in results.items():
        no_traceback(result)
        if module == 'checkpoint_preflight':
            assert not result.get('failed') and result['ready'] is False, result
            check = next(c for c in result['checks'] if c['name'] == 'container %s: running' % name)
            assert check['status'] == 'fail' and said in check['detail'] and remedy in check['remedy'], check
            assert result['containers'][0]['eligible'] is False, result['containers']
        else:
            assert result.get('failed') is True, result
            assert result['msg'].startswith('Container %s is %s' % (name, said)), result['msg']
            assert 'nothing was changed' in result['msg'] and remedy in result['msg'], result['msg']
            assert result.get('changed') is not True, result


def nothing_written(engine, name, archive_dir):
    """No checkpoint cp1 (on disk, and in the engine's list where it can list them), no archive."""
    path = checkpoint_path(engine, name, 'cp1')
    assert not os.path.lexists(path) and not os.path.lexists(path + '.cryo-new'), path
    if not state(engine, name)['Dead']:  # a dead container's checkpoints cannot be listed (its directory went)
        assert checkpoints(engine, name) == []
    assert os.listdir(archive_dir) == []


def test_paused(engine, make_container, archive_dir):
    name = make_container()
    wait_counter(engine, name, 1)
    engine.pause(name)
    try:
        refused(run_all(name, archive_dir), name, 'paused', 'docker unpause %s' % name)
        after = state(engine, name)
        assert after['Paused'] is True and after['Status'] == 'paused', after
        nothing_written(engine, name, archive_dir)
    finally:
        engine.unpause(name)


def wait_restarting(engine, name, restarts, timeout=60):
    """Wait until the container has been restarted `restarts` times and waits for the next (its back-off doubles
    from 100 ms: after 7 restarts it spends 12.8 s restarting, long enough for a module run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = engine.inspect_container(name)
        if info['RestartCount'] >= restarts and info['State']['Restarting']:
            return info
        time.sleep(0.05)
    raise AssertionError('%s is not restarting: %s' % (name, engine.inspect_container(name)['State']))


def test_restarting(engine, make_container, archive_dir):
    name = make_container('exit 3', restart_policy=dict(Name='always'))
    wait_restarting(engine, name, 7)
    results = {}
    for module in MODULES:  # each caught while the engine waits to restart it
        wait_restarting(engine, name, 7)
        results[module] = run_one(module, name, archive_dir)
    refused(results, name, 'restarting', 'docker logs %s' % name)
    info = engine.inspect_container(name)
    assert info['HostConfig']['RestartPolicy']['Name'] == 'always', info['HostConfig']['RestartPolicy']
    assert info['State']['Restarting'] or info['State']['Running'], info['State']  # still in its loop
    nothing_written(engine, name, archive_dir)


@pytest.fixture
def dead(engine, make_container):
    """A container the engine could not remove (so it marks it dead): a file in its directory is immutable."""
    name = make_container()
    wait_counter(engine, name, 1)
    info = engine.inspect_container(name)
    pinned = os.path.join(os.path.dirname(info['HostnamePath']), 'hostname')
    subprocess.run(['chattr', '+i', pinned], check=True)
    try:
        with pytest.raises(docker.errors.APIError):
            engine.remove_container(name, force=True)
        yield name
    finally:
        subprocess.run(['chattr', '-i', pinned], check=False)
        try:
            engine.remove_container(name, force=True)
        except docker.errors.NotFound:
            pass


def test_dead(engine, dead, archive_dir):
    assert state(engine, dead)['Status'] == 'dead' and state(engine, dead)['Dead'] is True, state(engine, dead)
    refused(run_all(dead, archive_dir), dead, 'dead', 'docker rm -f %s' % dead)
    assert state(engine, dead)['Status'] == 'dead'
    nothing_written(engine, dead, archive_dir)
    # Its checkpoints went with its directory: docker_checkpoint_info lists the other containers', and says so.
    listed = call_module('docker_checkpoint_info', {})
    no_traceback(listed)
    assert not listed.get('failed'), listed
    assert any(('The checkpoints of container %s cannot be listed: it is dead' % dead) in str(warning)
               for warning in listed.get('warnings', [])), listed.get('warnings')
