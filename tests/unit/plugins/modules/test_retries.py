"""Every engine call a module makes again is counted in its result (`retries`: {reason: count}), through
docker_checkpoint, docker_restore (one container and a batch), docker_checkpoint_export and
docker_checkpoint_import. The fake engine answers as the real Engine's loop does after its retries
(_engine's own loop: tests/unit/plugins/module_utils/test_engine.py)."""

from ansible_collections.cryo.docker.plugins.modules import docker_checkpoint, docker_checkpoint_import, docker_restore

from fake_archive_engine import Bed
from fake_engine import DOCKER_HOST, failed_clearly, run_module

RACE = ('failed to upload checkpoint: failed to commit checkpoint content: content sha256:%s: already exists'
        % ('ab' * 32))
CLOSING = 'rpc error: code = Unavailable desc = transport is closing'


def checkpoint(capsys, **args):
    return run_module(capsys, docker_checkpoint, dict(args, docker_host=DOCKER_HOST, checkpoint='cp1'))


def restore(capsys, **args):
    return run_module(capsys, docker_restore, dict(args, docker_host=DOCKER_HOST, checkpoint='cp1'))


def test_a_checkpoint_and_its_restore_count_their_retries(engine, capsys):
    engine.add('cr')
    engine.transient = {'checkpoint': [RACE, CLOSING]}
    taken = checkpoint(capsys, container='cr')
    assert taken['changed'] is True and not taken.get('failed'), taken
    assert taken['retries'] == {'already exists': 1, 'transport is closing': 1}
    engine.transient = {'restore': [RACE]}
    restored = restore(capsys, container='cr')
    assert restored['restored'] is True and restored['retries'] == {'already exists': 1}, restored


def test_no_retry_is_an_empty_count_and_a_second_run_makes_none(engine, capsys):
    engine.add('cr')
    assert checkpoint(capsys, container='cr')['retries'] == {}
    assert checkpoint(capsys, container='cr')['retries'] == {}  # nothing to do
    assert restore(capsys, container='cr')['retries'] == {}


def test_a_failed_checkpoint_still_counts_its_retries(engine, capsys):
    engine.add('cr')
    engine.checkpoint_error = 'criu'
    engine.transient = {'checkpoint': [CLOSING]}
    result = checkpoint(capsys, container='cr')
    failed_clearly(result, 'Checkpoint cp1 of container cr failed')
    assert result['retries'] == {'transport is closing': 1}


def test_a_batch_counts_each_container_and_the_sum(engine, capsys):
    for name in ('a', 'b', 'c'):
        engine.add(name)
    engine.transient = {'checkpoint': [RACE, RACE]}  # the first container to be checkpointed meets both
    result = checkpoint(capsys, containers=['a', 'b', 'c'], leave_running=True)
    assert result['changed'] is True and not result.get('failed'), result
    assert result['retries'] == {'already exists': 2}
    assert sorted(entry['retries'].get('already exists', 0) for entry in result['results']) == [0, 0, 2]

    engine.transient = {'restore': [CLOSING]}
    for name in ('a', 'b', 'c'):
        engine.stop(name)
    back = restore(capsys, containers=['a', 'b', 'c'])
    assert back['retries'] == {'transport is closing': 1}, back
    assert sum(sum(entry['retries'].values()) for entry in back['results']) == 1


def test_export_and_import_count_their_retries(tmp_path, monkeypatch, capsys):
    bed = Bed(tmp_path, monkeypatch)
    bed.web()
    bed.source.transient = {'checkpoint': [RACE]}
    exported = bed.export(capsys)
    assert exported['changed'] and not exported.get('failed'), exported
    assert exported['retries'] == {'already exists': 1}
    bed.current = bed.target
    bed.target.transient = {'restore': [CLOSING, CLOSING]}
    imported = run_module(capsys, docker_checkpoint_import, dict(docker_host=DOCKER_HOST, path=bed.path('web.tar')))
    assert imported['restored'] is True and not imported.get('failed'), imported
    assert imported['retries'] == {'transport is closing': 2}
