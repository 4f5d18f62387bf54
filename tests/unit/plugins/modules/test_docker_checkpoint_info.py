"""cryo.docker.docker_checkpoint_info against a fake engine: what it lists, where from."""

import os

from ansible_collections.cryo.docker.plugins.modules import docker_checkpoint_info

from fake_engine import DOCKER_HOST, failed_clearly, run_module


def run(capsys, **args):
    args.setdefault('docker_host', DOCKER_HOST)
    return run_module(capsys, docker_checkpoint_info, args, check_mode=args.pop('check_mode', False))


def names(result):
    return [(entry['container'], entry['name']) for entry in result['checkpoints']]


def test_one_container(engine, capsys):
    cr = engine.add('cr', restart_policy='always')
    other = engine.add('other')
    engine.take(cr, 'cp-b', leave_running=True)
    engine.take(cr, 'cp-a')
    engine.take(other, 'x1', leave_running=True)
    result = run(capsys, container='cr')
    assert result['changed'] is False and names(result) == [('cr', 'cp-a'), ('cr', 'cp-b')]
    first = result['checkpoints'][0]
    assert first['container_id'] == cr.id and first['directory'] == engine.checkpoint_path(cr, 'cp-a')
    assert first['created'] == '2026-12-02T10:05:00+00:00' and first['size'] > 500
    assert first['leave_running'] is False and first['restart_policy'] == dict(Name='always', MaximumRetryCount=0)
    assert result['checkpoints'][1]['leave_running'] is True
    assert engine.changes() == []


def test_all_containers(engine, capsys):
    zed, cr = engine.add('zed'), engine.add('cr')
    engine.add('bare')
    engine.take(zed, 'z1', metadata=False)  # taken by plain docker: only what the files say
    engine.take(cr, 'cp1')
    result = run(capsys, check_mode=True)
    assert names(result) == [('cr', 'cp1'), ('zed', 'z1')]
    plain = result['checkpoints'][1]
    assert plain['container_id'] == zed.id and plain['leave_running'] is None and plain['restart_policy'] is None
    assert plain['created'] is not None  # the directory's time
    assert engine.called('containers') == [('containers', True)]


def test_checkpoint_dir_alone_reads_only_the_directory(engine, capsys, tmp_path):
    cr = engine.add('cr')
    custom = str(tmp_path / 'srv')
    engine.take(cr, 'move', checkpoint_dir=custom, leave_running=True)
    os.makedirs(os.path.join(custom, 'not-a-checkpoint'))
    engine.calls = []
    result = run(capsys, checkpoint_dir=custom)
    assert names(result) == [('cr', 'move')]
    assert result['checkpoints'][0]['container_id'] == cr.id
    assert result['checkpoints'][0]['directory'] == os.path.join(custom, 'move')
    assert [call[0] for call in engine.calls] == ['version']  # require_experimental, nothing else


def test_checkpoint_dir_alone_without_metadata(engine, capsys, tmp_path):
    cr = engine.add('cr')
    custom = str(tmp_path / 'srv')
    engine.take(cr, 'bare', checkpoint_dir=custom, metadata=False)
    entry = run(capsys, checkpoint_dir=custom)['checkpoints'][0]
    assert entry['name'] == 'bare' and entry['container'] is None and entry['container_id'] is None


def test_checkpoint_dir_with_container(engine, capsys, tmp_path):
    cr = engine.add('cr')
    custom = str(tmp_path / 'srv')
    engine.take(cr, 'bare', checkpoint_dir=custom, metadata=False)
    result = run(capsys, container='cr', checkpoint_dir=custom)
    [entry] = result['checkpoints']
    assert (entry['container'], entry['container_id'], entry['name']) == ('cr', cr.id, 'bare')
    assert engine.called('list_checkpoints') == []


def test_missing_checkpoint_dir_lists_nothing(engine, capsys, tmp_path):
    assert run(capsys, checkpoint_dir=str(tmp_path / 'none'))['checkpoints'] == []


def test_unknown_container(engine, capsys):
    result = run(capsys, container='nope')
    failed_clearly(result, 'Container nope does not exist on the Docker Engine at %s.' % DOCKER_HOST)


def test_relative_checkpoint_dir(engine, capsys):
    failed_clearly(run(capsys, checkpoint_dir='srv'), "checkpoint_dir must be an absolute path, got 'srv'.")
    assert engine.calls == []


def test_engine_not_experimental(engine, capsys):
    engine.experimental = False
    failed_clearly(run(capsys), 'The Docker Engine at %s (version 20.10.24) is not in experimental mode' % DOCKER_HOST)
