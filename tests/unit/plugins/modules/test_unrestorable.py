"""Engines that cannot restore: docker_checkpoint refuses to stop what the engine cannot bring back,
docker_restore explains the engine's failure and checks a container's network holder first."""

import os

import pytest

from ansible_collections.cryo.docker.plugins.modules import docker_checkpoint, docker_restore

from fake_engine import DOCKER_HOST, failed_clearly, run_module, warnings_of

NETNS_ERROR = ('failed to create task for container: failed to create shim task: OCI runtime restore failed: '
               'bind-mount /proc/0/ns/net -> /run/docker/netns/4a1b2c3d: no such file or directory: unknown')


def checkpoint(capsys, **args):
    args.setdefault('docker_host', DOCKER_HOST)
    args.setdefault('container', 'cr')
    args.setdefault('checkpoint', 'cp1')
    return run_module(capsys, docker_checkpoint, args)


def restore(capsys, **args):
    args.setdefault('docker_host', DOCKER_HOST)
    args.setdefault('container', 'cr')
    args.setdefault('checkpoint', 'cp1')
    return run_module(capsys, docker_restore, args)


@pytest.mark.parametrize('version, network', [
    ('28.5.2+dfsg4', 'bridge'), ('28.0.0', 'default'), ('29.1.3', 'none'), ('28.5.2', 'appnet'),
    ('26.0.0', 'bridge'), ('25.0.3', 'host'), ('25.0.0', 'container:holder'),
])
def test_a_container_the_engine_cannot_restore_is_left_running_untouched(engine, capsys, version, network):
    engine.version_text = version
    cr = engine.add('cr', network=network, restart_policy='always')
    pid = cr.pid
    result = checkpoint(capsys)
    msg = failed_clearly(result, 'Checkpoint cp1 of container cr was not taken, and the container is still '
                                 'running untouched')
    assert 'Docker Engine %s cannot restore' % version in msg
    assert 'allow_unrestorable' in msg and 'leave_running' in msg
    if version.startswith('25.'):
        assert 'content digest' in msg and 'Upgrade the Docker Engine to 25.0.4' in msg
    else:
        assert 'bind-mount /proc/0/ns/net' in msg and 'moby' in msg
        assert 'container:<holder>' in msg and 'cryo.docker.docker_network_holder' in msg
        assert 'host network' in msg and 'older than 28' in msg
    assert result['engine_version'] == version and result['network_mode'] == network
    assert engine.changes() == []
    assert cr.running and cr.pid == pid and cr.restart_policy['Name'] == 'always'
    assert not os.path.exists(engine.checkpoint_path(cr, 'cp1'))


@pytest.mark.parametrize('version, network', [
    ('28.5.2+dfsg4', 'host'), ('28.5.2+dfsg4', 'container:5f1e6b0a8c2d'), ('29.0.0', 'host'),
    ('26.0.1', 'bridge'), ('26.1.5+dfsg1', 'bridge'), ('27.5.1', 'bridge'), ('20.10.24+dfsg1', 'bridge'),
    ('25.0.4', 'bridge'),
])
def test_containers_the_engine_restores_are_checkpointed(engine, capsys, version, network):
    engine.version_text = version
    cr = engine.add('cr', network=network)
    result = checkpoint(capsys)
    assert result['changed'] is True and 'failed' not in result, result
    assert not warnings_of(result)
    assert not cr.running and os.path.isdir(engine.checkpoint_path(cr, 'cp1'))


def test_leave_running_is_allowed_with_a_warning(engine, capsys):
    engine.version_text = '28.5.2+dfsg4'
    cr = engine.add('cr', network='bridge')
    result = checkpoint(capsys, leave_running=True)
    assert result['changed'] is True and cr.running
    [warning] = warnings_of(result)
    assert warning.startswith('Checkpoint cp1 of cr is taken with leave_running for inspection: it cannot be '
                              'restored on this engine.')
    assert 'bind-mount /proc/0/ns/net' in warning


def test_allow_unrestorable_stops_it_with_a_warning(engine, capsys):
    engine.version_text = '28.5.2+dfsg4'
    cr = engine.add('cr', network='bridge')
    result = checkpoint(capsys, allow_unrestorable=True)
    assert result['changed'] is True and not cr.running
    [warning] = warnings_of(result)
    assert 'although this engine cannot restore it (allow_unrestorable)' in warning


def test_an_existing_checkpoint_is_not_refused(engine, capsys):
    """Nothing would be stopped: the refusal is only for a checkpoint about to be taken."""
    engine.version_text = '28.5.2+dfsg4'
    cr = engine.add('cr', network='bridge')
    engine.take(cr, 'cp1', leave_running=True)
    result = checkpoint(capsys)
    assert result['changed'] is False and 'failed' not in result and cr.running


def test_the_engine_netns_restore_failure_is_explained(engine, capsys, monkeypatch):
    engine.version_text = '28.5.2+dfsg4'
    cr = engine.add('cr', network='bridge')
    engine.take(cr, 'cp1')

    def refuse(container, name, **options):
        engine._record('start_from_checkpoint', container, name)  # pylint: disable=protected-access
        raise engine._answer(500, NETNS_ERROR, container, name)  # pylint: disable=protected-access

    monkeypatch.setattr(engine, 'start_from_checkpoint', refuse)
    result = restore(capsys)
    msg = failed_clearly(result, 'Restore of container cr from checkpoint cp1 failed: The Docker Engine at %s '
                                 'cannot restore container' % DOCKER_HOST)
    assert 'CRIU never ran; the checkpoint is intact' in msg and 'containerd/containerd#12141' in msg
    assert 'cryo.docker.docker_network_holder' in msg
    assert 'The container stays stopped and the checkpoint was kept' in msg
    assert result['engine_message'] == NETNS_ERROR
    assert not cr.running and os.path.isdir(engine.checkpoint_path(cr, 'cp1'))


@pytest.fixture
def member(engine):
    """Container cr in the network namespace of the holder web-net, checkpointed as cp1."""
    holder = engine.add('web-net', labels={'cryo.docker.network-holder': 'true'})
    cr = engine.add('cr', network='container:%s' % holder.id)
    engine.take(cr, 'cp1')
    return holder, cr


def test_a_member_is_restored_into_its_running_holder(engine, capsys, member):
    _holder, cr = member
    result = restore(capsys)
    assert result['restored'] is True and result['verified'] is True and cr.running


def test_a_member_whose_holder_is_stopped_is_not_restored(engine, capsys, member):
    holder, cr = member
    holder.running, holder.status = False, 'exited'
    assert holder.name == 'web-net'
    result = restore(capsys)
    msg = failed_clearly(result, 'Container cr joins the network namespace of container web-net, which is exited, '
                                 'so it cannot be restored; nothing was done and checkpoint cp1 was kept.')
    assert 'Start the network holder first' in msg and 'state started' in msg
    assert engine.changes() == [] and not cr.running
    assert os.path.isdir(engine.checkpoint_path(cr, 'cp1'))


def test_a_member_whose_holder_is_gone_is_not_restored(engine, capsys, member):
    holder, cr = member
    del engine.store[holder.id]
    result = restore(capsys)
    msg = failed_clearly(result, 'Container cr joins the network namespace of container %s, which does not exist'
                         % holder.id)
    assert 'checkpoint cp1 was kept' in msg and 'a holder created again does not take this container back' in msg
    assert 'restore this checkpoint into the new container with docker_restore and checkpoint_dir' in msg
    assert result['network_mode'] == 'container:%s' % holder.id
    assert engine.changes() == [] and not cr.running
