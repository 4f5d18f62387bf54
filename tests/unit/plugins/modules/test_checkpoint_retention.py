"""cryo.docker.docker_checkpoint's retention against a fake engine: keep_last, max_size and host_max_size remove the
oldest of the collection's checkpoints through the engine once a new one is recorded, never one a container needs,
and check mode predicts it."""

import json
import os

from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.module_utils import _lock
from ansible_collections.cryo.docker.plugins.modules import docker_checkpoint

from fake_engine import DOCKER_HOST, failed_clearly, run_module, warnings_of


def run(capsys, **args):
    check_mode, diff = args.pop('check_mode', False), args.pop('diff', False)
    args.setdefault('docker_host', DOCKER_HOST)
    return run_module(capsys, docker_checkpoint, args, check_mode=check_mode, diff=diff)


def take(engine, container, name, minute, size=0, checkpoint_dir=None, leave_running=True, metadata=True):
    """A checkpoint as docker_checkpoint leaves it, taken at 10:<minute>, with size bytes of pages besides."""
    path = engine.take(container, name, leave_running=leave_running, checkpoint_dir=checkpoint_dir, metadata=metadata)
    if metadata:
        meta = store.read_metadata(path)
        store.write_metadata(path, dict(meta, created='2026-12-07T10:%02d:00+00:00' % minute))
    with open(os.path.join(path, 'pages-1.img'), 'wb') as handle:
        handle.write(b'\0' * size)
    return path


def listed(engine, container, checkpoint_dir=None):
    return engine.list_checkpoints(container.id, checkpoint_dir)


def removed(result):
    return [(entry['container'], entry['name'], entry['rule']) for entry in result['removed']]


def test_keep_last_leaves_the_newest(engine, capsys):
    web = engine.add('web')
    for minute in range(1, 5):
        take(engine, web, 'cp%d' % minute, minute)
    result = run(capsys, container='web', checkpoint='cp5', leave_running=True, keep_last=2)
    assert result['changed'] and not warnings_of(result)
    assert removed(result) == [('web', 'cp1', 'keep_last'), ('web', 'cp2', 'keep_last'), ('web', 'cp3', 'keep_last')]
    assert listed(engine, web) == ['cp4', 'cp5']
    assert [call[:3] for call in engine.called('delete_checkpoint')] == [
        ('delete_checkpoint', web.id, 'cp1'), ('delete_checkpoint', web.id, 'cp2'), ('delete_checkpoint', web.id, 'cp3')]
    entry = result['removed'][0]
    assert entry['container_id'] == web.id and entry['created'] == '2026-12-07T10:01:00+00:00'
    assert entry['directory'] == engine.checkpoint_path(web, 'cp1') and entry['size'] > 0


def test_check_mode_predicts_and_diff_shows_it(engine, capsys):
    web = engine.add('web')
    for minute in range(1, 4):
        take(engine, web, 'cp%d' % minute, minute)
    predicted = run(capsys, container='web', checkpoint='cp4', leave_running=True, keep_last=2, check_mode=True,
                    diff=True)
    assert predicted['changed'] and removed(predicted) == [('web', 'cp1', 'keep_last'), ('web', 'cp2', 'keep_last')]
    assert predicted['diff']['before']['checkpoints'] == ['cp1', 'cp2', 'cp3']
    assert predicted['diff']['after']['checkpoints'] == ['cp3', 'cp4']
    assert listed(engine, web) == ['cp1', 'cp2', 'cp3'] and engine.changes() == []
    result = run(capsys, container='web', checkpoint='cp4', leave_running=True, keep_last=2, diff=True)
    assert removed(result) == removed(predicted) and result['diff'] == predicted['diff']
    again = run(capsys, container='web', checkpoint='cp4', leave_running=True, keep_last=1)
    assert again['changed'] is False and again['removed'] == [] and listed(engine, web) == ['cp3', 'cp4']


def test_checkpoints_not_made_by_the_collection_are_neither_counted_nor_removed(engine, capsys):
    web = engine.add('web')
    take(engine, web, 'by-hand', 0, metadata=False)
    take(engine, web, 'cp1', 1)
    result = run(capsys, container='web', checkpoint='cp2', leave_running=True, keep_last=1, max_size=1)
    assert removed(result) == [('web', 'cp1', 'keep_last')]
    assert listed(engine, web) == ['by-hand', 'cp2']
    assert any('max_size 1.00 Bytes of container web is not met' in text and 'web/cp2: just taken' in text
               for text in warnings_of(result))


def test_max_size_removes_the_oldest_until_the_rest_fits(engine, capsys):
    web = engine.add('web')
    for minute in range(1, 4):
        take(engine, web, 'cp%d' % minute, minute, size=10000)
    result = run(capsys, container='web', checkpoint='cp4', leave_running=True, max_size='15K')
    assert removed(result) == [('web', 'cp1', 'max_size'), ('web', 'cp2', 'max_size')]
    assert listed(engine, web) == ['cp3', 'cp4'] and not warnings_of(result)


def test_the_golden_checkpoint_of_a_warm_container_stays(engine, capsys):
    runtime = 'cryo-restore-0123456789ab'
    web = engine.add('web', runtime=runtime)
    gold = take(engine, web, 'gold', 1)
    take(engine, web, 'cp2', 2)
    slot = os.path.join(engine.root, 'cryo-restore', runtime)
    os.makedirs(slot)
    with open(os.path.join(slot, 'slot.json'), 'w') as handle:
        json.dump(dict(mode='warm', checkpoint='gold', golden=gold, container_id=web.id), handle)
    result = run(capsys, container='web', checkpoint='cp3', leave_running=True, keep_last=1)
    assert removed(result) == [('web', 'cp2', 'keep_last')]
    assert listed(engine, web) == ['cp3', 'gold']


def test_the_host_cap_never_removes_what_a_stopped_container_resumes_from(engine, capsys):
    web, db, cache = engine.add('web'), engine.add('db'), engine.add('cache')
    take(engine, db, 'db-old', 1, size=5000)
    take(engine, db, 'db-stop', 2, size=5000, leave_running=False)  # db is exited at db-stop
    take(engine, cache, 'cache-a', 3, size=5000)
    db_running = engine.add('db2')
    take(engine, db_running, 'db2-a', 4, size=5000)
    take(engine, web, 'web-a', 5, size=5000)
    result = run(capsys, container='web', checkpoint='web-b', leave_running=True, host_max_size='7K')
    assert removed(result) == [('db', 'db-old', 'host_max_size'), ('cache', 'cache-a', 'host_max_size'),
                               ('db2', 'db2-a', 'host_max_size'), ('web', 'web-a', 'host_max_size')]
    assert listed(engine, db) == ['db-stop'] and listed(engine, web) == ['web-b']
    assert not warnings_of(result)


def test_a_stopped_container_keeps_its_newest_checkpoint_too(engine, capsys):
    web, db = engine.add('web'), engine.add('db')
    take(engine, db, 'db-0', 0)
    take(engine, db, 'db-stop', 1, leave_running=False)
    engine.start_fresh(db)
    take(engine, db, 'db-snap', 2)  # a snapshot of the fresh start, then stopped by hand
    engine.stop(db.id)
    result = run(capsys, container='web', checkpoint='web-a', leave_running=True, host_max_size=1)
    assert removed(result) == [('db', 'db-0', 'host_max_size')]
    assert listed(engine, db) == ['db-snap', 'db-stop']
    warning = ' '.join(warnings_of(result))
    assert 'host_max_size 1.00 Bytes of the host is not met' in warning
    assert 'db/db-snap: container db is exited and resumes from it' in warning
    assert 'web/web-a: just taken' in warning


def test_a_busy_container_s_checkpoints_stay(engine, capsys):
    web, db = engine.add('web'), engine.add('db')
    take(engine, db, 'db-a', 1)
    lock = _lock.ContainerLock(_lock.lock_path(engine.root, db.id)).acquire('a restore', 'db-a')
    try:
        result = run(capsys, container='web', checkpoint='web-a', leave_running=True, host_max_size=1)
    finally:
        lock.release()
    assert result['removed'] == [] and listed(engine, db) == ['db-a']
    assert 'db/db-a: its container is busy with another operation' in ' '.join(warnings_of(result))


def test_a_checkpoint_dir_counts_the_container_s_own(engine, capsys, tmp_path):
    directory = str(tmp_path / 'kept')
    web, db = engine.add('web'), engine.add('db')
    take(engine, db, 'db-a', 0, checkpoint_dir=directory)
    take(engine, web, 'web-a', 1, checkpoint_dir=directory)
    take(engine, web, 'web-engine', 2)
    result = run(capsys, container='web', checkpoint='web-b', leave_running=True, keep_last=1, checkpoint_dir=directory,
                 diff=True)
    assert removed(result) == [('web', 'web-a', 'keep_last')]
    assert engine.called('delete_checkpoint') == [('delete_checkpoint', web.id, 'web-a', directory)]
    assert listed(engine, web, directory) == ['db-a', 'web-b'] and listed(engine, web) == ['web-engine']
    assert result['diff']['after']['checkpoints'] == ['db-a', 'web-b']


def test_a_batch_applies_the_host_cap_once_after_every_checkpoint(engine, capsys):
    web, db, other = engine.add('web'), engine.add('db'), engine.add('other')
    take(engine, web, 'web-old', 1, size=10000)
    take(engine, db, 'db-old', 2, size=10000)
    take(engine, other, 'other-old', 3, size=10000)
    result = run(capsys, containers=['web', 'db'], checkpoint='maint', leave_running=True, host_max_size='8K',
                 diff=True)
    assert removed(result) == [('web', 'web-old', 'host_max_size'), ('db', 'db-old', 'host_max_size'),
                               ('other', 'other-old', 'host_max_size')]
    assert all('removed' not in entry for entry in result['results'])
    assert result['diff'][-1] == dict(before=dict(other_checkpoints=['other/other-old']),
                                      after=dict(other_checkpoints=[]))


def test_a_removal_that_fails_is_a_warning(engine, capsys, monkeypatch):
    web = engine.add('web')
    take(engine, web, 'cp1', 1)
    real = engine.delete_checkpoint

    def refuse(container, checkpoint, checkpoint_dir=None):
        if checkpoint == 'cp1':
            raise engine._answer(500, 'device or resource busy', container, checkpoint)
        return real(container, checkpoint, checkpoint_dir)

    monkeypatch.setattr(engine, 'delete_checkpoint', refuse)
    result = run(capsys, container='web', checkpoint='cp2', leave_running=True, keep_last=1)
    assert result['changed'] and 'failed' not in result and result['removed'] == []
    assert any(text.startswith('Retention (keep_last): checkpoint web/cp1 was not removed') for text in
               warnings_of(result))


def test_retention_with_state_absent_is_refused(engine, capsys):
    web = engine.add('web')
    take(engine, web, 'cp1', 1)
    result = run(capsys, container='web', checkpoint='cp1', state='absent', keep_last=1)
    failed_clearly(result, 'keep_last apply when a checkpoint is taken (state=present)')
    assert listed(engine, web) == ['cp1']


def test_keep_last_of_0_is_refused(engine, capsys):
    engine.add('web')
    failed_clearly(run(capsys, container='web', checkpoint='cp1', keep_last=0), 'keep_last is 0: it must be 1 or more')
    assert engine.changes() == []


def test_nothing_is_removed_when_the_files_are_not_on_this_host(engine, capsys, tmp_path):
    web = engine.add('web')
    take(engine, web, 'cp1', 1)
    engine.reported_root = str(tmp_path / 'elsewhere' / 'docker')  # the engine's files are on another host
    result = run(capsys, container='web', checkpoint='cp2', leave_running=True, keep_last=1)
    assert result['changed'] and result['removed'] == [] and not engine.called('delete_checkpoint')
    assert any(text.startswith('Retention (keep_last) was not applied: the checkpoint files are not on this host')
               for text in warnings_of(result))
