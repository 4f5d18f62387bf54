"""cryo.docker.docker_restore against a fake engine: restore, prove it resumed, fall back, clean up."""

import os

import pytest

from ansible_collections.cryo.docker.plugins.modules import docker_restore

from ansible_collections.cryo.docker.plugins.module_utils._checkpoint import remove_containerd_copies as REAL_REMOVE

from fake_engine import DOCKER_HOST, LAYOUT, RESTORE_LOG_ERRORS, failed_clearly, run_module, warnings_of


def run(capsys, **args):
    check_mode, diff = args.pop('check_mode', False), args.pop('diff', False)
    args.setdefault('docker_host', DOCKER_HOST)
    args.setdefault('container', 'cr')
    args.setdefault('checkpoint', 'cp1')
    return run_module(capsys, docker_restore, args, check_mode=check_mode, diff=diff)


@pytest.fixture
def cr(engine):
    """Container cr, checkpointed as cp1 by docker_checkpoint: exited, its restart policy always held at no."""
    container = engine.add('cr', restart_policy='always')
    container.restart_policy = dict(Name='no', MaximumRetryCount=0)
    container.path = engine.take(container, 'cp1', restart_policy=dict(Name='always', MaximumRetryCount=0))
    return container


def leftover_copy(engine, name='ctrd-checkpoint1', data=b'another checkpoint'):
    """A ctrd-checkpoint directory in containerd's /tmp that is not a copy of cp1."""
    path = os.path.join(engine.tmpdir, name)
    os.makedirs(path)
    for image in ('inventory.img', 'pstree.img', 'mm-1.img'):
        with open(os.path.join(path, image), 'wb') as handle:
            handle.write(data)
    return path


# -- a restore --------------------------------------------------------------------------------

def test_restore_is_verified_and_puts_the_policy_back(engine, cr, capsys):
    other = leftover_copy(engine)
    result = run(capsys)
    assert result['changed'] is True and 'failed' not in result
    assert result['restored'] is True and result['verified'] is True and result['fallback_used'] is False
    assert result['verification']['method'] == 'memory-layout'
    assert result['verification']['detail'] == 'PID 1 stack/heap start %#x/%#x, checkpoint %#x/%#x' % (LAYOUT + LAYOUT)
    assert result['checkpoint_removed'] is False and isinstance(result['duration'], float)
    assert result['container'] == dict(name='cr', id=cr.id, status='running', running=True)
    assert result['checkpoint']['name'] == 'cp1' and result['checkpoint']['directory'] == cr.path
    assert result['checkpoint']['restart_policy'] == dict(Name='always', MaximumRetryCount=0)
    assert engine.changes() == [('start_from_checkpoint', cr.id, 'cp1'), ('set_restart_policy', cr.id, 'always', 0)]
    assert result['restart_policy'] == dict(Name='always', MaximumRetryCount=0)
    assert engine.pid_layout(cr) == LAYOUT
    assert os.path.isdir(cr.path)
    assert result['containerd_copies_removed'] == 1
    assert os.listdir(engine.tmpdir) == [os.path.basename(other)]
    assert not warnings_of(result)


def test_running_from_the_checkpoint_is_unchanged(engine, cr, capsys):
    run(capsys)
    engine.calls = []
    again = run(capsys)
    assert again['changed'] is False and again['verified'] is True and again['restored'] is False
    assert again['duration'] == 0.0 and engine.changes() == []
    assert not warnings_of(again)


def test_running_afresh_is_said_and_left_alone(engine, cr, capsys):
    engine.start_fresh(cr)
    pid = cr.pid
    result = run(capsys)
    assert result['changed'] is False and result['verified'] is False and result['restored'] is False
    assert engine.changes() == [] and cr.pid == pid
    [warning] = warnings_of(result)
    assert warning.startswith('Container cr is running, but not from checkpoint cp1 (PID 1 stack/heap start ')
    assert warning.endswith('Nothing was restored; use force: true to rewind it to the checkpoint.')


def test_force_rewinds_a_running_container(engine, cr, capsys):
    engine.start_fresh(cr)
    result = run(capsys, force=True)
    assert result['changed'] is True and result['restored'] is True and result['verified'] is True
    assert engine.changes()[:2] == [('stop', cr.id, 1), ('start_from_checkpoint', cr.id, 'cp1')]
    assert engine.called('wait_stopped') == [('wait_stopped', cr.id)]
    assert engine.pid_layout(cr) == LAYOUT


def test_leave_running_checkpoint_of_a_running_container_is_unchanged(engine, capsys):
    warm = engine.add('warm')
    engine.take(warm, 'cp1', leave_running=True)
    result = run(capsys, container='warm')
    assert result['changed'] is False and result['verified'] is True
    assert engine.changes() == []


# -- no such checkpoint -----------------------------------------------------------------------

def test_missing_checkpoint_fails(engine, cr, capsys):
    result = run(capsys, checkpoint='cp9')
    msg = failed_clearly(result, 'Container cr has no checkpoint named cp9. ')
    assert 'cryo.docker.docker_checkpoint_info lists its checkpoints' in msg
    assert engine.changes() == []


def test_missing_checkpoint_cold_starts_with_fallback(engine, cr, capsys):
    result = run(capsys, checkpoint='cp9', fallback='cold_start', diff=True)
    assert result['changed'] is True and result['fallback_used'] is True
    assert result['restored'] is False and result['verified'] is False and result['checkpoint'] == {}
    assert engine.changes() == [('start', cr.id)]
    assert cr.running and engine.pid_layout(cr) != LAYOUT
    assert warnings_of(result) == ['Container cr has no checkpoint named cp9, so it was started afresh '
                                   '(fallback: cold_start).']
    assert result['diff'] == dict(before=dict(container_state='exited'),
                                  after=dict(container_state='running', checkpoint='cp9'))
    assert result['restart_policy'] == dict(Name='no', MaximumRetryCount=0)  # nothing recorded to put back


def test_missing_checkpoint_with_fallback_and_running_is_unchanged(engine, cr, capsys):
    engine.start_fresh(cr)
    result = run(capsys, checkpoint='cp9', fallback='cold_start')
    assert result['changed'] is False and result['fallback_used'] is False and result['verified'] is None
    assert engine.changes() == [] and not warnings_of(result)


def test_missing_checkpoint_with_fallback_in_check_mode_starts_nothing(engine, cr, capsys):
    result = run(capsys, checkpoint='cp9', fallback='cold_start', check_mode=True)
    assert result['changed'] is True and result['fallback_used'] is True
    assert engine.changes() == [] and not cr.running


# -- checkpoint_dir: staged into the engine's place and back ----------------------------------------

@pytest.fixture
def moved(engine, tmp_path):
    """Container mv, checkpointed as cp1 into checkpoint_dir tmp_path/srv."""
    container = engine.add('mv')
    container.custom = str(tmp_path / 'srv')
    container.path = engine.take(container, 'cp1', checkpoint_dir=container.custom)
    return container


def test_checkpoint_dir_is_staged_and_unstaged(engine, moved, capsys):
    result = run(capsys, container='mv', checkpoint_dir=moved.custom)
    assert result['changed'] is True and result['restored'] is True and result['verified'] is True
    assert result['checkpoint']['directory'] == moved.path
    assert engine.changes() == [('start_from_checkpoint', moved.id, 'cp1')]
    place = os.path.dirname(engine.checkpoint_path(moved, 'cp1'))
    assert os.listdir(place) == []  # the staged copy is gone, no .cryo-stage-* left
    assert os.stat(place).st_mode & 0o777 == 0o700
    assert os.path.isfile(os.path.join(moved.path, 'inventory.img'))
    assert result['containerd_copies_removed'] == 1 and os.listdir(engine.tmpdir) == []


def test_a_checkpoint_of_another_container_is_staged_in_the_targets_cgroups(engine, moved, capsys, monkeypatch):
    """criu#2453: the staged copy's cgroup.img names the target's cgroup (docker-<B>.scope), not the source's; the
    checkpoint in checkpoint_dir is left as it was."""
    cgroups = b'\x00system.slice/docker-%s.scope\x00' % moved.id.encode()
    with open(os.path.join(moved.path, 'cgroup.img'), 'wb') as handle:
        handle.write(cgroups)
    target = engine.add('mv2', running=False)
    seen = []
    restore = engine.start_from_checkpoint

    def start_from_checkpoint(container, checkpoint, **options):
        with open(os.path.join(engine.checkpoint_path(target, checkpoint), 'cgroup.img'), 'rb') as handle:
            seen.append(handle.read())
        return restore(container, checkpoint, **options)

    monkeypatch.setattr(engine, 'start_from_checkpoint', start_from_checkpoint)
    result = run(capsys, container='mv2', checkpoint_dir=moved.custom)
    assert result['restored'] is True, result
    assert seen == [b'\x00system.slice/docker-%s.scope\x00' % target.id.encode()]
    with open(os.path.join(moved.path, 'cgroup.img'), 'rb') as handle:
        assert handle.read() == cgroups


def test_checkpoint_dir_conflicting_with_the_engines_checkpoint(engine, moved, capsys):
    engine.start_fresh(moved)
    engine.take(moved, 'cp1')  # the same name in the engine's place
    result = run(capsys, container='mv', checkpoint_dir=moved.custom)
    place = engine.checkpoint_path(moved, 'cp1')
    msg = failed_clearly(result, "Container mv already has a checkpoint named cp1 in the engine's place (%s), so "
                                 "the one in %s cannot be staged there." % (place, moved.custom))
    assert 'cryo.docker.docker_checkpoint state=absent' in msg
    assert engine.changes() == [] and not moved.running
    assert os.path.isdir(moved.path) and os.path.isdir(engine.checkpoint_path(moved, 'cp1'))


@pytest.mark.parametrize('fallback', ['fail', 'cold_start'])
def test_checkpoint_not_in_checkpoint_dir_fails(engine, moved, capsys, tmp_path, fallback):
    """With checkpoint_dir, a missing checkpoint fails even with fallback cold_start (a wrong path, most likely)."""
    empty = str(tmp_path / 'empty')
    result = run(capsys, container='mv', checkpoint_dir=empty, fallback=fallback)
    msg = failed_clearly(result, 'Checkpoint cp1 is not in %s (no %s/cp1/inventory.img). ' % (empty, empty))
    assert 'cryo.docker.docker_checkpoint_info lists what a directory holds' in msg
    assert engine.changes() == []


def test_keep_checkpoint_false_removes_a_verified_checkpoint_dir(engine, moved, capsys):
    result = run(capsys, container='mv', checkpoint_dir=moved.custom, keep_checkpoint=False)
    assert result['checkpoint_removed'] is True and result['verified'] is True
    assert not os.path.exists(moved.path) and os.path.isdir(moved.custom)
    assert engine.called('delete_checkpoint') == []
    assert os.listdir(os.path.dirname(engine.checkpoint_path(moved, 'cp1'))) == []


# -- the engine refuses, or the container does not resume --------------------------------------

def test_refused_restore_fails_keeps_the_checkpoint_and_stays_stopped(engine, cr, capsys):
    engine.restore_error = 'criu'
    result = run(capsys)
    msg = failed_clearly(result, 'Restore of container cr from checkpoint cp1 failed: failed to create task for '
                                 'container: ')
    assert (' CRIU says: %s | %s (log: %s).' % (RESTORE_LOG_ERRORS + (engine.persistent_log,))) in msg
    assert msg.endswith(' The container stays stopped and the checkpoint was kept; fix the cause and run again, or '
                        'use fallback: cold_start to start it afresh.')
    assert result['criu_errors'] == list(RESTORE_LOG_ERRORS) and result['criu_log'] == engine.persistent_log
    assert result['http_status'] == 500 and 'criu-restore.log' in result['engine_message']
    assert engine.changes() == [('start_from_checkpoint', cr.id, 'cp1')]
    assert not cr.running and cr.restart_policy['Name'] == 'no'
    assert os.path.isdir(cr.path)
    assert os.listdir(engine.tmpdir) == []  # containerd's copy is removed on a failure too


def test_refused_restore_cold_starts_with_fallback(engine, cr, capsys):
    engine.restore_error = 'criu'
    result = run(capsys, fallback='cold_start')
    assert result['changed'] is True and 'failed' not in result
    assert result['fallback_used'] is True and result['restored'] is False and result['verified'] is False
    assert result['criu_errors'] == list(RESTORE_LOG_ERRORS) and result['criu_log'] == engine.persistent_log
    assert engine.changes() == [('start_from_checkpoint', cr.id, 'cp1'), ('start', cr.id),
                                ('set_restart_policy', cr.id, 'always', 0)]
    assert cr.running and engine.pid_layout(cr) != LAYOUT
    [warning] = warnings_of(result)
    assert warning.startswith('Restore of container cr from checkpoint cp1 failed: ')
    assert warning.endswith(' The container was started afresh (fallback: cold_start); the checkpoint was kept.')
    assert os.path.isdir(cr.path)


def test_cold_start_that_fails_too(engine, cr, capsys):
    engine.restore_error = 'criu'
    engine.start_error = 'driver failed programming external connectivity: port 8080 is already allocated'
    result = run(capsys, fallback='cold_start')
    msg = failed_clearly(result, 'Restore of container cr from checkpoint cp1 failed: ')
    assert msg.endswith(' The cold start failed too: driver failed programming external connectivity: port 8080 '
                        'is already allocated')
    assert result['criu_errors'] == list(RESTORE_LOG_ERRORS)
    assert not cr.running and os.path.isdir(cr.path)


def test_container_exited_after_the_restore(engine, cr, capsys):
    engine.after_restore = 'exited'
    result = run(capsys)
    msg = failed_clearly(result, 'Restore of container cr from checkpoint cp1 failed: the container is exited after '
                                 'the restore (exit code 1). The container stays stopped')
    assert 'CRIU says' not in msg and result['criu_errors'] == []
    assert os.path.isdir(cr.path)


def test_restore_that_started_afresh_fails(engine, cr, capsys):
    engine.after_restore = 'fresh'
    result = run(capsys, keep_checkpoint=False)
    msg = failed_clearly(result, 'Restore of container cr from checkpoint cp1 failed: the container is running but '
                                 'did not resume the checkpointed processes: it started afresh (PID 1 stack/heap ')
    assert msg.endswith(' The container runs afresh; the checkpoint was kept.')
    assert engine.changes() == [('start_from_checkpoint', cr.id, 'cp1')]
    assert os.path.isdir(cr.path)


def test_restore_that_started_afresh_with_fallback_is_not_started_twice(engine, cr, capsys):
    engine.after_restore = 'fresh'
    result = run(capsys, fallback='cold_start', keep_checkpoint=False)
    assert result['changed'] is True and result['fallback_used'] is True
    assert result['restored'] is False and result['verified'] is False and result['checkpoint_removed'] is False
    assert result['verification']['method'] == 'memory-layout'
    assert engine.called('start') == []
    assert engine.changes() == [('start_from_checkpoint', cr.id, 'cp1'), ('set_restart_policy', cr.id, 'always', 0)]
    [warning] = warnings_of(result)
    assert 'did not resume the checkpointed processes' in warning and 'started afresh (fallback: cold_start)' in warning
    assert os.path.isdir(cr.path)


# -- verification and keep_checkpoint --------------------------------------------------------------

def test_unverifiable_restore_warns_and_keeps_the_checkpoint(engine, cr, capsys):
    engine.hide_proc = True  # the module does not see the engine host's /proc
    result = run(capsys, keep_checkpoint=False)
    assert result['changed'] is True and result['restored'] is True and result['verified'] is None
    assert result['checkpoint_removed'] is False and os.path.isdir(cr.path)
    assert engine.called('delete_checkpoint') == []
    assert warnings_of(result) == [
        'The restore of cr could not be verified: cannot read /proc/%s/stat (is the module running on the engine '
        'host?).' % cr.pid,
        'Checkpoint cp1 was kept although keep_checkpoint is false: the restore could not be verified.']


def test_verify_false(engine, cr, capsys):
    result = run(capsys, verify=False)
    assert result['changed'] is True and result['restored'] is True and result['verified'] is None
    assert result['verification'] == dict(method='none', detail='verify is false')
    assert not warnings_of(result)


def test_verify_false_never_removes_the_checkpoint(engine, cr, capsys):
    result = run(capsys, verify=False, keep_checkpoint=False)
    assert result['checkpoint_removed'] is False and os.path.isdir(cr.path)
    assert warnings_of(result) == ['Checkpoint cp1 was kept although keep_checkpoint is false: the restore could '
                                   'not be verified.']


def test_keep_checkpoint_false_removes_a_verified_checkpoint(engine, cr, capsys):
    result = run(capsys, keep_checkpoint=False)
    assert result['checkpoint_removed'] is True and result['verified'] is True
    assert engine.changes()[-1] == ('delete_checkpoint', cr.id, 'cp1', None)
    assert not os.path.exists(cr.path)
    engine.calls = []
    again = run(capsys, keep_checkpoint=False)
    assert again['changed'] is False and 'failed' not in again and again['verified'] is None, again.get('msg')
    assert again['verification'] == dict(method='none', detail='checkpoint cp1 is gone and the container runs')
    assert engine.changes() == [] and not warnings_of(again)
    assert failed_clearly(run(capsys, force=True), 'Container cr has no checkpoint named cp1')


# -- the restart policy --------------------------------------------------------------------------

def test_restore_restart_policy_false_leaves_it(engine, cr, capsys):
    result = run(capsys, restore_restart_policy=False)
    assert result['restored'] is True and engine.called('set_restart_policy') == []
    assert result['restart_policy'] == dict(Name='no', MaximumRetryCount=0)


def test_policy_already_in_place_is_not_set_again(engine, capsys):
    plain = engine.add('plain', restart_policy='on-failure', retries=2)
    engine.take(plain, 'cp1', leave_running=True)
    engine.stop(plain.id)
    engine.calls = []
    result = run(capsys, container='plain')
    assert result['restored'] is True and engine.called('set_restart_policy') == []
    assert result['restart_policy'] == dict(Name='on-failure', MaximumRetryCount=2)


def test_checkpoint_without_metadata_puts_nothing_back(engine, capsys):
    other = engine.add('other', restart_policy='always')
    other.restart_policy = dict(Name='no', MaximumRetryCount=0)
    engine.take(other, 'cp1', metadata=False)  # taken by plain docker
    result = run(capsys, container='other')
    assert result['restored'] is True and result['checkpoint']['restart_policy'] is None
    assert engine.called('set_restart_policy') == []


def cut_after_the_resume(engine, container):
    """What a docker_restore killed between the engine's restore and putting the policy back leaves."""
    engine.start_from_checkpoint(container.id, 'cp1')
    engine.calls = []


def test_a_restore_cut_before_the_policy_was_put_back_is_finished(engine, cr, capsys):
    cut_after_the_resume(engine, cr)
    pid = cr.pid
    result = run(capsys, diff=True)
    assert result['changed'] is True and result['restart_policy_put_back'] is True
    assert result['restored'] is False and result['verified'] is True and result['checkpoint_removed'] is False
    assert engine.changes() == [('set_restart_policy', cr.id, 'always', 0)] and cr.pid == pid
    assert result['restart_policy'] == dict(Name='always', MaximumRetryCount=0)
    assert result['diff'] == dict(before=dict(container_state='running', restart_policy='no'),
                                  after=dict(container_state='running', restart_policy='always'))
    assert not warnings_of(result)
    again = run(capsys)
    assert again['changed'] is False and again['restart_policy_put_back'] is False


def test_a_cut_restore_finished_with_keep_checkpoint_false_removes_it_and_containerds_copies(engine, cr, capsys):
    cut_after_the_resume(engine, cr)
    result = run(capsys, keep_checkpoint=False)
    assert result['changed'] is True and result['verified'] is True and result['restart_policy_put_back'] is True
    assert result['checkpoint_removed'] is True and result['containerd_copies_removed'] == 1
    assert engine.changes() == [('set_restart_policy', cr.id, 'always', 0), ('delete_checkpoint', cr.id, 'cp1', None)]
    assert os.listdir(engine.tmpdir) == [] and not os.path.exists(cr.path)


def test_a_cut_restore_in_check_mode_or_without_restore_restart_policy_is_left(engine, cr, capsys):
    cut_after_the_resume(engine, cr)
    predicted = run(capsys, check_mode=True)
    assert predicted['changed'] is True and engine.changes() == []
    left = run(capsys, restore_restart_policy=False)
    assert left['changed'] is False and engine.changes() == []
    assert cr.restart_policy == dict(Name='no', MaximumRetryCount=0)


def test_a_policy_set_to_no_on_purpose_without_a_recorded_hold_is_left(engine, capsys):
    plain = engine.add('plain')
    engine.take(plain, 'cp1', leave_running=True)
    result = run(capsys, container='plain')
    assert result['changed'] is False and engine.changes() == []


def test_no_containerd_copies_counted_when_there_are_none(engine, cr, capsys):
    engine.containerd_copies = False
    assert run(capsys)['containerd_copies_removed'] == 0


# -- check and diff mode, bad input -------------------------------------------------------------

def test_check_mode_predicts_and_touches_nothing(engine, moved, capsys):
    engine.stop(moved.id)
    engine.calls = []
    result = run(capsys, container='mv', checkpoint_dir=moved.custom, check_mode=True, diff=True)
    assert result['changed'] is True and result['restored'] is False and result['verified'] is None
    assert result['diff'] == dict(before=dict(container_state='exited'),
                                  after=dict(container_state='running', checkpoint='cp1'))
    assert engine.changes() == []
    assert not os.path.exists(engine.checkpoint_path(moved, 'cp1'))  # nothing staged
    assert not moved.running


def test_check_mode_force_stops_nothing(engine, cr, capsys):
    engine.start_fresh(cr)
    result = run(capsys, force=True, check_mode=True)
    assert result['changed'] is True and engine.changes() == [] and cr.running


def test_diff_of_an_unchanged_run_is_empty(engine, cr, capsys):
    run(capsys)
    assert 'diff' not in run(capsys, diff=True)


@pytest.mark.parametrize('args, start', [
    (dict(checkpoint='-bad'), "Checkpoint name '-bad' is not valid: "),
    (dict(checkpoint_dir='relative/dir'), "checkpoint_dir must be an absolute path, got 'relative/dir'. "),
])
def test_bad_input_is_refused_before_the_engine_is_asked(engine, capsys, args, start):
    failed_clearly(run(capsys, **args), start)
    assert engine.calls == []


def test_unknown_container(engine, capsys):
    result = run(capsys, container='nope')
    failed_clearly(result, 'Container nope does not exist on the Docker Engine at %s.' % DOCKER_HOST)
    assert result['http_status'] == 404


# -- a stale checkpoint tarball in containerd's content store (an engine killed during a restore) --------

STALE_DIGEST = 'sha256:' + '5e' * 32
STALE = ('failed to upload checkpoint: failed to commit checkpoint content: content %s: already exists'
         % STALE_DIGEST)


def stale(engine, monkeypatch, times=1):
    """The engine's restore answers the content store's collision `times` times (each call, retries or not)."""
    real = engine.start_from_checkpoint
    answers = [STALE] * times
    calls = []

    def start(container, checkpoint, retried=None, retry_stale=True):
        calls.append(retry_stale)
        if answers:
            message = answers.pop(0)
            raise engine._answer(500, message, container, checkpoint)
        return real(container, checkpoint, retried=retried)
    monkeypatch.setattr(engine, 'start_from_checkpoint', start)
    return calls


def test_stale_content_is_removed_then_the_restore_runs(engine, cr, capsys, monkeypatch):
    from ansible_collections.cryo.docker.plugins.module_utils import _restore
    calls = stale(engine, monkeypatch)
    removed = []
    monkeypatch.setattr(_restore, 'remove_stale_content',
                        lambda module, host, digest: removed.append((host, digest)) or (True, None))
    result = run(capsys)
    assert result['restored'] is True and result['verified'] is True, result
    assert removed == [(DOCKER_HOST, STALE_DIGEST)]
    assert result['stale_content_removed'] == STALE_DIGEST
    assert result['retries'] == {'stale content removed': 1}
    assert calls == [False, True], 'the collision is not retried blindly first: its cause is removed'
    assert any('content store' in warning for warning in warnings_of(result))


def test_stale_content_that_cannot_be_removed_is_tried_again_as_it_is(engine, cr, capsys, monkeypatch):
    """Where the blob cannot be removed (a remote engine, no ctr), containerd's garbage collection may take it:
    the restore is tried again, blindly, counted."""
    from ansible_collections.cryo.docker.plugins.module_utils import _restore
    calls = stale(engine, monkeypatch)
    monkeypatch.setattr(_restore, 'remove_stale_content', lambda module, host, digest: (False, 'remote'))
    result = run(capsys)
    assert result['restored'] is True and result['verified'] is True, result
    assert calls == [False, True] and result['retries'] == {'already exists': 1}


def test_stale_content_that_cannot_be_removed_names_the_command(engine, cr, capsys, monkeypatch):
    from ansible_collections.cryo.docker.plugins.module_utils import _restore
    stale(engine, monkeypatch, times=2)
    monkeypatch.setattr(_restore, 'remove_stale_content', lambda module, host, digest: (False, 'no ctr on the PATH'))
    result = run(capsys)
    msg = failed_clearly(result, 'Restore of container cr from checkpoint cp1 failed: ')
    assert 'content rm %s' % STALE_DIGEST in msg and 'no ctr on the PATH' in msg
    assert 'the checkpoint was kept' in msg and os.path.isdir(cr.path)
    assert result['stale_content'] == STALE_DIGEST
    assert result['retries'] == {'already exists': 1}  # tried again once, as it was


def test_containerd_copies_are_removed_where_containerd_makes_them(engine, cr, capsys, monkeypatch):
    """engine_containerd_tmpdir points containerd's TMPDIR elsewhere: the copies it leaves are looked for there."""
    from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint, _restore
    monkeypatch.setattr(_checkpoint, 'remove_containerd_copies', REAL_REMOVE)  # the fixture's looks in engine.tmpdir
    monkeypatch.setattr(_restore.Host, 'containerd_tmpdir',
                        lambda self, docker_host: dict(path=engine.tmpdir, exists=True))
    result = run(capsys)
    assert result['restored'] is True and result['containerd_copies_removed'] == 1, result
    assert os.listdir(engine.tmpdir) == []
