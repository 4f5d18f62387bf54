"""CRIU options per call against a fake engine: docker_checkpoint and docker_restore put them into runc.conf for
the CRIU run only (the fake reads runc.conf as runc does), record and reuse them, and refuse what cannot work; the
import refuses an archive whose checkpoint records options it should not."""

import json
import os

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _criuconf
from ansible_collections.cryo.docker.plugins.modules import docker_checkpoint, docker_restore

from fake_engine import DOCKER_HOST, failed_clearly, read, run_module, warnings_of
from test_docker_checkpoint_import import archive, bed, nothing_created, run_import  # noqa: F401 pylint: disable=unused-import
from test_docker_warm import imported, runtimes  # noqa: F401 pylint: disable=unused-import
from test_docker_warm import run as run_warm
from test_import_untrusted import edit_json, refused, rewrite, set_in

HOST = '# Ansible managed\nlog-file /var/log/criu/runc-criu.log\n'


@pytest.fixture
def host_conf(engine):
    """The host's runc.conf (a log file, no TCP connections), as the criu role writes it."""
    os.makedirs(os.path.dirname(engine.runc_conf), exist_ok=True)
    with open(engine.runc_conf, 'w') as handle:
        handle.write(HOST)
    return engine.runc_conf


def checkpoint(capsys, **args):
    args.setdefault('docker_host', DOCKER_HOST)
    args.setdefault('container', 'web')
    args.setdefault('checkpoint', 'cp1')
    return run_module(capsys, docker_checkpoint, args)


def restore(capsys, **args):
    args.setdefault('docker_host', DOCKER_HOST)
    args.setdefault('container', 'web')
    args.setdefault('checkpoint', 'cp1')
    return run_module(capsys, docker_restore, args)


def metadata(engine, container, name='cp1'):
    return json.loads(read(os.path.join(engine.checkpoint_path(container, name), 'cryo-checkpoint.json')))


def test_an_established_connection_needs_tcp_established_and_says_so(engine, host_conf, capsys):
    web = engine.add('web')
    engine.checkpoint_error = 'tcp'
    result = checkpoint(capsys, method='engine')
    msg = failed_clearly(result, 'Checkpoint cp1 of container web failed')
    assert 'The container has established TCP connections' in msg and 'tcp_established: true' in msg, msg
    assert 'The container is still running; nothing was lost.' in msg
    assert result['container_running'] is True and web.running
    assert any('consider using --tcp-established' in line for line in result['criu_errors'])
    assert engine.conf_seen == [HOST] and read(host_conf) == HOST


def test_tcp_established_for_one_checkpoint_is_recorded_and_the_host_file_comes_back(engine, host_conf, capsys):
    web = engine.add('web')
    engine.checkpoint_error = 'tcp'
    result = checkpoint(capsys, method='engine', tcp_established=True)
    assert result['changed'] is True and 'failed' not in result, result
    assert result['criu_options'] == dict(tcp_established=True)
    assert result['criu_options_from'] == dict(tcp_established='operator')
    assert result['checkpoint']['criu_options'] == dict(tcp_established=True)
    # CRIU ran with the host's lines and the call's option; the host's file is back, byte for byte.
    during = engine.conf_seen[0]
    assert during.startswith(HOST) and during.splitlines()[-1] == 'tcp-established'
    assert read(host_conf) == HOST and not os.path.exists(host_conf + '.cryo-host')
    assert metadata(engine, web)['criu_options'] == dict(tcp_established=True)
    assert not web.running


def test_a_batch_with_options_takes_each_checkpoint_with_them(engine, host_conf, capsys):
    names = ['c%d' % i for i in range(4)]
    for name in names:
        engine.add(name)
    engine.checkpoint_error = 'tcp'
    result = run_module(capsys, docker_checkpoint, dict(containers=names, checkpoint='cp1', method='engine',
                                                        tcp_established=True, parallel=4, docker_host=DOCKER_HOST))
    assert result['changed'] is True and 'failed' not in result, result
    assert [entry['criu_options'] for entry in result['results']] == [dict(tcp_established=True)] * 4
    assert len(engine.conf_seen) == 4 and all('tcp-established' in seen.split() for seen in engine.conf_seen)
    assert read(host_conf) == HOST and not os.path.exists(host_conf + '.cryo-host')


def test_a_checkpoint_records_the_options_the_host_file_gives_too(engine, host_conf, capsys):
    web = engine.add('web')
    with open(host_conf, 'a') as handle:
        handle.write('file-locks\n')
    result = checkpoint(capsys, method='engine', manage_cgroups_mode='full')
    assert result['criu_options'] == dict(file_locks=True, manage_cgroups_mode='full')
    assert result['criu_options_from'] == dict(file_locks='host', manage_cgroups_mode='operator')
    assert 'manage-cgroups=full' in engine.conf_seen[0].split()
    assert metadata(engine, web)['criu_options'] == dict(file_locks=True, manage_cgroups_mode='full')
    assert read(host_conf) == HOST + 'file-locks\n'


def test_the_restore_uses_what_the_checkpoint_recorded_unless_told_otherwise(engine, host_conf, capsys):
    web = engine.add('web')
    engine.checkpoint_error = 'tcp'
    assert checkpoint(capsys, method='engine', tcp_established=True, leave_running=True)['changed']
    engine.stop(web.id)
    result = restore(capsys, method='engine')
    assert result['restored'] is True and result['verified'] is True, result
    assert result['criu_options'] == dict(tcp_established=True)
    assert result['criu_options_from'] == dict(tcp_established='checkpoint')
    assert 'tcp-established' in engine.conf_seen[-1].split() and read(host_conf) == HOST

    engine.stop(web.id)
    result = restore(capsys, method='engine', tcp_established=False, file_locks=True)
    assert result['restored'] is True, result
    assert result['criu_options'] == dict(file_locks=True)
    assert result['criu_options_from'] == dict(file_locks='operator')
    seen = engine.conf_seen[-1].split()
    assert 'no-tcp-established' in seen and 'file-locks' in seen and read(host_conf) == HOST


@pytest.mark.parametrize('recorded, words', [
    ({'exec-cmd': True}, "'exec-cmd', which is no CRIU option"),
    ({'tcp_established': 'yes'}, "tcp_established is 'yes', not true or false"),
    ({'manage_cgroups_mode': 'props'}, "manage_cgroups_mode is 'props'"),
    (['tcp_established'], 'not an object'),
])
def test_a_restore_refuses_recorded_options_it_cannot_trust(engine, host_conf, capsys, recorded, words):
    web = engine.add('web')
    path = engine.take(web, 'cp1')
    meta = json.loads(read(os.path.join(path, 'cryo-checkpoint.json')))
    meta['criu_options'] = recorded
    with open(os.path.join(path, 'cryo-checkpoint.json'), 'w') as handle:
        json.dump(meta, handle)
    result = restore(capsys)
    msg = failed_clearly(result, 'Restore of container web was not done, and nothing was changed: checkpoint cp1 '
                                 'cannot be trusted')
    assert words in msg, msg
    assert engine.changes() == [] and engine.conf_seen == [] and not web.running


def test_options_are_refused_for_a_container_with_its_own_criu_config(engine, host_conf, capsys):
    web = engine.add('web')
    web.annotations = {'org.criu.config': '/etc/criu/web.conf'}
    result = checkpoint(capsys, tcp_established=True)
    msg = failed_clearly(result, 'Checkpoint cp1 of container web was not done, and nothing was changed')
    assert "org.criu.config='/etc/criu/web.conf'" in msg and 'tcp_established' in msg
    assert result['criu_config_annotation'] == '/etc/criu/web.conf'
    assert engine.changes() == [] and web.running and read(host_conf) == HOST


def test_options_are_refused_for_a_remote_engine(engine, capsys):
    web = engine.add('web')
    result = checkpoint(capsys, docker_host='tcp://10.0.0.5:2376', method='engine', file_locks=True)
    msg = failed_clearly(result, 'Checkpoint cp1 of container web was not taken, and the container is untouched')
    assert 'remote' in msg and 'file_locks' in msg
    assert engine.changes() == [] and web.running


def test_a_call_waits_no_longer_than_its_limit_for_another_calls_options(engine, host_conf, capsys, monkeypatch):
    web = engine.add('web')
    monkeypatch.setattr(_criuconf, 'WAIT', 0.3)
    with _criuconf.CriuConfig(dict(tcp_established=True)):
        result = checkpoint(capsys, method='engine')
    msg = failed_clearly(result, 'Checkpoint cp1 of container web was not done')
    assert result['busy'] is True and 'CRIU options of their own' in msg
    assert engine.changes() == [] and web.running and read(host_conf) == HOST


def test_the_next_call_puts_back_what_a_killed_one_left(engine, host_conf, capsys):
    engine.add('web')
    left = _criuconf.CriuConfig(dict(tcp_established=True))
    left.__enter__()
    left.release()  # killed: its flock is gone, its options stayed
    result = checkpoint(capsys, method='engine')
    assert result['changed'] is True and result['criu_options'] == {}, result
    assert any('the host\'s file was put back first' in warning for warning in warnings_of(result))
    assert engine.conf_seen == [HOST] and read(host_conf) == HOST


# -- the import: the archive's checkpoint metadata is untrusted input ------------------------------------

@pytest.mark.parametrize('recorded, words', [
    ({'tcp_established': True, 'exec_cmd': '/bin/sh'}, "'exec_cmd', which is no CRIU option"),
    ({'file_locks': 'true'}, "file_locks is 'true', not true or false"),
    ({'manage_cgroups_mode': 'full\nexec-cmd /bin/sh'}, 'manage_cgroups_mode is'),
    ('tcp-established', 'not an object'),
])
def test_an_archive_whose_checkpoint_records_bad_options_is_refused(bed, archive, capsys, tmp_path, recorded, words):
    path = rewrite(archive['path'], tmp_path / 'attack.tar',
                   edit_json('checkpoint/cryo-checkpoint.json', set_in('criu_options', recorded)))
    result = run_import(capsys, bed, path=path)
    refused(result, 'malformed', path, words, 'do not use it', 'Nothing was created')
    nothing_created(bed)


def test_an_archive_with_recorded_options_restores_with_them(bed, archive, capsys, tmp_path):
    path = rewrite(archive['path'], tmp_path / 'options.tar',
                   edit_json('checkpoint/cryo-checkpoint.json', set_in('criu_options', dict(tcp_established=True))))
    result = run_import(capsys, bed, path=path, file_locks=True)
    assert result['changed'] is True and result['restored'] is True, result
    assert result['criu_options'] == dict(tcp_established=True, file_locks=True)
    assert result['criu_options_from'] == dict(tcp_established='checkpoint', file_locks='operator')


# -- a warm container: its starts are the engine's restores, with the host's runc.conf ---------------------

def test_warm_warns_when_the_golden_checkpoint_needs_options_the_host_lacks(engine, runtimes, imported, host_conf,
                                                                            capsys):
    meta_path = os.path.join(imported.path, 'cryo-checkpoint.json')
    meta = json.loads(read(meta_path))
    with open(meta_path, 'w') as handle:
        json.dump(dict(meta, criu_options=dict(tcp_established=True)), handle)
    result = run_warm(capsys, container='web', checkpoint='golden')
    assert result['changed'] is True and result['warm'] is True, result
    warning = ' '.join(warnings_of(result))
    assert 'Golden checkpoint golden of container web was taken with CRIU options' in warning
    assert 'tcp_established=True' in warning and read(host_conf) == HOST

    with open(host_conf, 'a') as handle:
        handle.write('tcp-established\n')
    result = run_warm(capsys, container='web', checkpoint='golden')
    assert result['changed'] is False and not warnings_of(result)

    with open(meta_path, 'w') as handle:
        json.dump(dict(meta, criu_options=dict(tcp_established='on')), handle)
    msg = failed_clearly(run_warm(capsys, container='web', checkpoint='golden', state='warm'),
                         'Checkpoint golden of container web cannot be its golden checkpoint')
    assert "tcp_established is 'on'" in msg
