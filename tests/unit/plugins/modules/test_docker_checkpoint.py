"""cryo.docker.docker_checkpoint against a fake engine: what it takes, holds, records, reports and refuses."""

import json
import os
import shutil
import stat

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _engine, _lifecycle, _lock, _take
from ansible_collections.cryo.docker.plugins.modules import docker_checkpoint, docker_restore

from fake_engine import DOCKER_HOST, DUMP_LOG_ERRORS, LAYOUT, failed_clearly, read, run_module, warnings_of


def run(capsys, **args):
    check_mode, diff = args.pop('check_mode', False), args.pop('diff', False)
    args.setdefault('docker_host', DOCKER_HOST)
    return run_module(capsys, docker_checkpoint, args, check_mode=check_mode, diff=diff)


def metadata(path):
    return json.loads(read(os.path.join(path, 'cryo-checkpoint.json')))


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# -- taking a checkpoint ----------------------------------------------------------------------

def test_checkpoint_stops_the_container_and_records_it(engine, capsys):
    cr = engine.add('cr')
    result = run(capsys, container='cr', checkpoint='cp1')
    path = engine.checkpoint_path(cr, 'cp1')
    assert result['changed'] is True and 'failed' not in result
    assert result['attempts'] == 1 and isinstance(result['duration'], float)
    assert result['checkpoint'] == dict(
        name='cp1', container='cr', container_id=cr.id, directory=path, size=result['checkpoint']['size'],
        created=metadata(path)['created'], leave_running=False, restart_policy=dict(Name='no', MaximumRetryCount=0),
        group=None, criu_options={})
    assert result['checkpoint']['size'] > 500
    assert engine.changes() == [('create_checkpoint', cr.id, 'cp1.cryo-new', False, None)]
    assert engine.called('wait_stopped') == [('wait_stopped', cr.id)]
    assert cr.status == 'exited' and cr.exit_code == 137
    assert sorted(os.listdir(path)) == ['cryo-checkpoint.json', 'inventory.img', 'mm-1.img', 'pstree.img']
    assert mode(os.path.join(path, 'cryo-checkpoint.json')) == 0o600
    recorded = metadata(path)
    assert recorded['checkpoint'] == 'cp1' and recorded['container'] == 'cr' and recorded['container_id'] == cr.id
    assert recorded['image'] == 'counter:1' and recorded['leave_running'] is False and recorded['format'] == 1
    assert recorded['restart_policy'] == dict(Name='no', MaximumRetryCount=0)
    assert engine.connected == [DOCKER_HOST]
    assert not warnings_of(result)


def test_leave_running_keeps_the_process(engine, capsys):
    cr = engine.add('cr')
    pid = cr.pid
    result = run(capsys, container='cr', checkpoint='warm', leave_running=True)
    assert result['changed'] is True and result['checkpoint']['leave_running'] is True
    assert cr.running and cr.pid == pid
    assert not engine.called('wait_stopped')
    assert engine.changes() == [('create_checkpoint', cr.id, 'warm.cryo-new', True, None)]
    assert metadata(engine.checkpoint_path(cr, 'warm'))['leave_running'] is True


def test_existing_checkpoint_is_left_alone(engine, capsys):
    cr = engine.add('cr')
    first = run(capsys, container='cr', checkpoint='cp1')
    engine.calls = []
    again = run(capsys, container='cr', checkpoint='cp1')  # the container is exited now: no matter
    assert again['changed'] is False and 'failed' not in again
    assert again['checkpoint'] == first['checkpoint']
    assert again['duration'] == 0.0 and 'attempts' not in again
    assert engine.changes() == []
    assert engine.called('list_checkpoints') == [('list_checkpoints', cr.id, None)]


def test_force_retakes_under_a_temporary_name_then_swaps(engine, capsys):
    cr = engine.add('cr')
    path = engine.take(cr, 'cp1', leave_running=True)
    with open(os.path.join(path, 'old-marker'), 'w') as handle:
        handle.write('old')
    result = run(capsys, container='cr', checkpoint='cp1', leave_running=True, force=True)
    assert result['changed'] is True
    assert engine.changes() == [('create_checkpoint', cr.id, 'cp1.cryo-new', True, None)]
    assert sorted(os.listdir(os.path.dirname(path))) == ['cp1']
    assert not os.path.exists(os.path.join(path, 'old-marker'))
    assert metadata(path)['created'] != '2026-12-02T10:05:00+00:00'
    assert result['checkpoint']['directory'] == path


def test_force_retake_that_fails_keeps_the_old_checkpoint(engine, capsys):
    cr = engine.add('cr')
    path = engine.take(cr, 'cp1', leave_running=True)
    before = metadata(path)
    engine.checkpoint_error = 'criu'
    result = run(capsys, container='cr', checkpoint='cp1', leave_running=True, force=True)
    failed_clearly(result, 'Checkpoint cp1 of container cr failed: ')
    assert metadata(path) == before
    assert sorted(os.listdir(os.path.dirname(path))) == ['cp1']
    assert cr.running


def test_force_leaves_no_earlier_temporary_checkpoint(engine, capsys):
    cr = engine.add('cr')
    path = engine.take(cr, 'cp1', leave_running=True)
    os.makedirs(path + '.cryo-new')  # what a run killed half-way left
    result = run(capsys, container='cr', checkpoint='cp1', leave_running=True, force=True)
    assert result['changed'] is True
    assert sorted(os.listdir(os.path.dirname(path))) == ['cp1']


def test_force_on_a_stopped_container_says_why_not(engine, capsys):
    cr = engine.add('cr')
    engine.take(cr, 'cp1')
    result = run(capsys, container='cr', checkpoint='cp1', force=True)
    msg = failed_clearly(result, 'Container cr is exited, and only a running container can be checkpointed '
                                 '(its checkpoint cp1 was left as it is)')
    assert 'cryo.docker.docker_restore' in msg
    assert engine.changes() == []


def test_stopped_container_is_refused_before_anything_changes(engine, capsys):
    engine.add('cr', running=False)
    result = run(capsys, container='cr', checkpoint='cp1')
    msg = failed_clearly(result, 'Container cr is exited, and only a running container can be checkpointed. ')
    assert 'Start it, or restore it from a checkpoint with cryo.docker.docker_restore.' in msg
    assert engine.changes() == []


# -- state=absent -----------------------------------------------------------------------------

def test_absent_removes_the_checkpoint(engine, capsys):
    cr = engine.add('cr')
    kept = engine.take(cr, 'cp2', leave_running=True)
    path = engine.take(cr, 'cp1')
    result = run(capsys, container='cr', checkpoint='cp1', state='absent', diff=True)
    assert result['changed'] is True and result['checkpoint'] == {}
    assert engine.changes() == [('delete_checkpoint', cr.id, 'cp1', None)]
    assert not os.path.exists(path) and os.path.isdir(kept)
    assert result['diff'] == dict(before=dict(checkpoints=['cp1', 'cp2'], container_state='exited'),
                                  after=dict(checkpoints=['cp2'], container_state='exited'))


def test_absent_when_missing_is_unchanged(engine, capsys):
    engine.add('cr')
    result = run(capsys, container='cr', checkpoint='cp1', state='absent', diff=True)
    assert result['changed'] is False and result['checkpoint'] == {} and 'diff' not in result
    assert engine.changes() == []


def test_absent_in_a_missing_checkpoint_dir_is_unchanged(engine, capsys, tmp_path):
    engine.add('cr')
    result = run(capsys, container='cr', checkpoint='cp1', state='absent', checkpoint_dir=str(tmp_path / 'none'))
    assert result['changed'] is False
    assert engine.called('list_checkpoints') == [] and engine.changes() == []
    assert not (tmp_path / 'none').exists()


def test_absent_in_a_checkpoint_dir(engine, capsys, tmp_path):
    cr = engine.add('cr')
    custom = str(tmp_path / 'srv')
    engine.take(cr, 'cp1', checkpoint_dir=custom, leave_running=True)
    result = run(capsys, container='cr', checkpoint='cp1', state='absent', checkpoint_dir=custom)
    assert result['changed'] is True
    assert engine.changes() == [('delete_checkpoint', cr.id, 'cp1', custom)]
    assert os.listdir(custom) == []


# -- the restart policy -----------------------------------------------------------------------

@pytest.mark.parametrize('policy, retries', [('always', 0), ('unless-stopped', 0), ('on-failure', 3)])
def test_restart_policy_is_held_and_recorded(engine, capsys, policy, retries):
    cr = engine.add('cr', restart_policy=policy, retries=retries)
    result = run(capsys, container='cr', checkpoint='cp1')
    assert result['changed'] is True
    assert engine.changes() == [('set_restart_policy', cr.id, 'no', 0),
                                ('create_checkpoint', cr.id, 'cp1.cryo-new', False, None)]
    assert cr.restart_policy == dict(Name='no', MaximumRetryCount=0)
    assert not cr.running and cr.status == 'exited'  # the engine did not cold-start it
    recorded = dict(Name=policy, MaximumRetryCount=retries)
    assert result['checkpoint']['restart_policy'] == recorded
    assert metadata(engine.checkpoint_path(cr, 'cp1'))['restart_policy'] == recorded


def test_without_hold_the_engine_cold_starts_the_container(engine, capsys):
    cr = engine.add('cr', restart_policy='always')
    result = run(capsys, container='cr', checkpoint='cp1', hold_restart_policy=False)
    assert result['changed'] is True
    assert engine.called('set_restart_policy') == []
    assert cr.restart_policy['Name'] == 'always'
    assert cr.running and engine.pid_layout(cr) != LAYOUT  # the checkpoint is useless: why hold exists


def test_leave_running_holds_no_policy(engine, capsys):
    cr = engine.add('cr', restart_policy='unless-stopped')
    result = run(capsys, container='cr', checkpoint='cp1', leave_running=True)
    assert result['changed'] is True
    assert engine.changes() == [('create_checkpoint', cr.id, 'cp1.cryo-new', True, None)]
    assert cr.restart_policy['Name'] == 'unless-stopped'


class Cut(BaseException):
    """The module killed at this point (a BaseException: nothing of the module catches it)."""


def cut_at(monkeypatch, owner, method):
    kept = getattr(owner, method)

    def cut(*_args, **_kwargs):
        raise Cut()
    monkeypatch.setattr(owner, method, cut)
    return lambda: monkeypatch.setattr(owner, method, kept)


def held(engine, container):
    return _take.store.read_hold(engine.root, container.id)


def test_the_hold_is_recorded_first_and_a_take_cut_before_the_engine_stopped_it_records_the_held_policy(
        engine, capsys, monkeypatch):
    cr = engine.add('cr', restart_policy='always')
    undo = cut_at(monkeypatch, type(engine), 'create_checkpoint')
    with pytest.raises(Cut):
        run(capsys, container='cr', checkpoint='cp1')
    undo()
    assert cr.running and cr.restart_policy['Name'] == 'no'
    assert held(engine, cr) == dict(Name='always', MaximumRetryCount=0)
    assert mode(_take.store.hold_path(engine.root, cr.id)) == 0o600
    again = run(capsys, container='cr', checkpoint='cp1')
    assert again['changed'] and again['checkpoint']['restart_policy'] == dict(Name='always', MaximumRetryCount=0)
    assert metadata(engine.checkpoint_path(cr, 'cp1'))['restart_policy']['Name'] == 'always'


def test_a_take_cut_before_its_metadata_leaves_the_policy_to_the_restore(engine, capsys, monkeypatch):
    cr = engine.add('cr', restart_policy='on-failure', retries=2)
    undo = cut_at(monkeypatch, _take.store, 'write_metadata')
    with pytest.raises(Cut):
        run(capsys, container='cr', checkpoint='cp1')
    undo()
    assert not cr.running and cr.restart_policy['Name'] == 'no'
    assert _take.store.read_metadata(engine.checkpoint_path(cr, 'cp1')) == {}
    restored = run_module(capsys, docker_restore, dict(docker_host=DOCKER_HOST, container='cr', checkpoint='cp1'))
    assert restored['restored'] and restored['verified'] and restored['restart_policy_put_back'], restored
    assert cr.restart_policy == dict(Name='on-failure', MaximumRetryCount=2) and held(engine, cr) is None


def test_a_failed_take_clears_the_hold_with_the_policy_back(engine, capsys):
    cr = engine.add('cr', restart_policy='always')
    engine.checkpoint_error = 'criu'
    failed_clearly(run(capsys, container='cr', checkpoint='cp1'), 'Checkpoint cp1 of container cr failed')
    assert cr.restart_policy['Name'] == 'always' and held(engine, cr) is None


def test_a_restore_clears_the_hold_and_a_cold_start_puts_the_held_policy_back(engine, capsys):
    cr = engine.add('cr', restart_policy='unless-stopped')
    run(capsys, container='cr', checkpoint='cp1')
    assert held(engine, cr) == dict(Name='unless-stopped', MaximumRetryCount=0)
    shutil.rmtree(engine.checkpoint_path(cr, 'cp1'))  # lost: only a cold start is left
    started = run_module(capsys, docker_restore, dict(docker_host=DOCKER_HOST, container='cr', checkpoint='cp1',
                                                      fallback='cold_start'))
    assert started['fallback_used'] and cr.running and started['restart_policy_put_back'], started
    assert cr.restart_policy['Name'] == 'unless-stopped' and held(engine, cr) is None


def test_a_policy_changed_since_the_hold_is_not_overridden(engine, capsys, monkeypatch):
    cr = engine.add('cr', restart_policy='always')
    undo = cut_at(monkeypatch, type(engine), 'create_checkpoint')
    with pytest.raises(Cut):
        run(capsys, container='cr', checkpoint='cp1')
    undo()
    engine.set_restart_policy(cr.id, dict(Name='on-failure', MaximumRetryCount=1))  # the operator's choice
    result = run(capsys, container='cr', checkpoint='cp1')
    assert result['checkpoint']['restart_policy'] == dict(Name='on-failure', MaximumRetryCount=1)


# -- a failed checkpoint ----------------------------------------------------------------------

def test_failure_quotes_criu_and_puts_the_policy_back(engine, capsys):
    cr = engine.add('cr', restart_policy='always')
    engine.checkpoint_error = 'criu'
    result = run(capsys, container='cr', checkpoint='cp1')
    msg = failed_clearly(result, 'Checkpoint cp1 of container cr failed: Cannot checkpoint container cr: runc did '
                                 'not terminate successfully')
    log = result['criu_log']
    assert log.startswith(engine.exec_root) and log.endswith('/criu-dump.log')
    assert result['criu_errors'] == list(DUMP_LOG_ERRORS)
    assert (' CRIU says: %s | %s | %s (log: %s).' % (DUMP_LOG_ERRORS + (log,))) in msg
    assert msg.endswith(' The container is still running; nothing was lost.')
    assert 'RLIMIT_NOFILE' not in msg
    assert result['container_running'] is True and result['http_status'] == 500
    assert 'criu failed: type NOTIFY' in result['engine_message']
    assert engine.changes() == [('set_restart_policy', cr.id, 'no', 0),
                                ('create_checkpoint', cr.id, 'cp1.cryo-new', False, None),
                                ('set_restart_policy', cr.id, 'always', 0)]
    assert engine.called('stop') == [] and cr.running
    assert cr.restart_policy['Name'] == 'always'
    assert not os.path.exists(engine.checkpoint_path(cr, 'cp1'))


def test_failure_that_stopped_the_container_says_so(engine, capsys):
    cr = engine.add('cr')
    engine.checkpoint_error, engine.checkpoint_kills = 'criu', True  # CRIU killed the task half-way
    result = run(capsys, container='cr', checkpoint='cp1')
    msg = failed_clearly(result, 'Checkpoint cp1 of container cr failed: ')
    assert msg.endswith(' The container is NOT running any more: start it again (docker start), since no usable '
                        'checkpoint was taken.')
    assert result['container_running'] is False and cr.status == 'exited'
    assert engine.called('start') == []


def test_a_dump_that_left_the_container_frozen_is_thawed_through_the_engine(engine, capsys):
    """CRIU killed mid-dump (measured on the engine path): the freezer stays on and the engine calls the container
    paused. It ran when the take began, so the module unpauses it and says so."""
    cr = engine.add('cr')
    engine.checkpoint_error, engine.checkpoint_freezes = 'criu', True
    result = run(capsys, container='cr', checkpoint='cp1')
    msg = failed_clearly(result, 'Checkpoint cp1 of container cr failed: ')
    assert msg.endswith(' CRIU ended before it thawed the container\'s processes, so the module thawed them '
                        '(unpause): the container is running again where it was; nothing was lost.')
    assert result['thawed'] is True and result['container_running'] is True
    assert engine.called('unpause') == [('unpause', cr.id)] and not cr.inspect()['State']['Paused']


def test_a_container_paused_for_a_moment_after_a_failed_dump_is_reported_running(engine, capsys):
    """The engine called it paused while CRIU still thawed it (Docker 26.1, an established TCP connection): by the
    time of the module's unpause it runs again, the engine answers 409, and the container is reported running."""
    cr = engine.add('cr')
    engine.checkpoint_error, engine.checkpoint_freezes, engine.thaws_itself = 'criu', True, True
    result = run(capsys, container='cr', checkpoint='cp1')
    msg = failed_clearly(result, 'Checkpoint cp1 of container cr failed: ')
    assert msg.endswith(' The container is still running; nothing was lost.'), msg
    assert result['container_running'] is True and not result.get('thawed')
    assert 'thaw_error' not in result and not cr.inspect()['State']['Paused']


def test_failure_without_a_criu_log(engine, capsys):
    engine.add('cr')
    engine.checkpoint_error = 'transient'
    result = run(capsys, container='cr', checkpoint='cp1')
    msg = failed_clearly(result, 'Checkpoint cp1 of container cr failed: failed to upload checkpoint to containerd')
    assert 'CRIU says' not in msg and 'criu_log' not in result
    assert result['criu_errors'] == [] and result['container_running'] is True


def test_container_still_running_after_the_checkpoint_is_a_failure(engine, capsys):
    cr = engine.add('cr', restart_policy='on-failure', retries=2)
    engine.stuck_running = True
    result = run(capsys, container='cr', checkpoint='cp1')
    failed_clearly(result, 'Checkpoint cp1 of container cr failed: Container %s is still running' % cr.id)
    assert result['container_running'] is True
    assert engine.changes()[-1] == ('set_restart_policy', cr.id, 'on-failure', 2)


# -- where the files go -----------------------------------------------------------------------

def test_checkpoint_dir_is_created_private(engine, capsys, tmp_path):
    cr = engine.add('cr')
    custom = tmp_path / 'srv' / 'checkpoints'
    result = run(capsys, container='cr', checkpoint='move', checkpoint_dir=str(custom))
    path = str(custom / 'move')
    assert result['changed'] is True and result['checkpoint']['directory'] == path
    assert engine.changes() == [('create_checkpoint', cr.id, 'move.cryo-new', False, str(custom))]
    assert metadata(path)['container_id'] == cr.id
    assert not os.path.exists(engine.checkpoint_path(cr, 'move'))
    assert mode(str(custom)) == 0o700
    again = run(capsys, container='cr', checkpoint='move', checkpoint_dir=str(custom))
    assert again['changed'] is False
    assert engine.called('list_checkpoints')[-1] == ('list_checkpoints', cr.id, str(custom))


def test_every_directory_the_module_creates_is_private(engine, capsys, tmp_path):
    """The module's documentation: "Directories this module creates are mode 0700", parents included."""
    engine.add('cr')
    run(capsys, container='cr', checkpoint='move', checkpoint_dir=str(tmp_path / 'srv' / 'checkpoints'))
    assert mode(str(tmp_path / 'srv')) == 0o700


def test_existing_checkpoint_dir_keeps_its_mode(engine, capsys, tmp_path):
    engine.add('cr')
    custom = tmp_path / 'shared'
    custom.mkdir(mode=0o750)
    custom.chmod(0o750)
    result = run(capsys, container='cr', checkpoint='cp1', checkpoint_dir=str(custom))
    assert result['changed'] is True and mode(str(custom)) == 0o750


def test_files_not_on_this_host_are_said(engine, capsys, tmp_path):
    cr = engine.add('cr')
    engine.reported_root = str(tmp_path / 'elsewhere' / 'docker')
    result = run(capsys, container='cr', checkpoint='cp1')
    assert result['changed'] is True and 'failed' not in result
    expected = os.path.join(engine.reported_root, 'containers', cr.id, 'checkpoints', 'cp1')
    assert warnings_of(result) == [
        'The checkpoint files are not on this host (%s), so its restart policy and time were not recorded. '
        'Run the module on the engine host.' % expected]
    assert result['checkpoint']['size'] is None and result['checkpoint']['created'] is None
    assert not os.path.exists(os.path.join(engine.checkpoint_path(cr, 'cp1'), 'cryo-checkpoint.json'))


# -- check and diff mode ----------------------------------------------------------------------

def test_check_mode_predicts_and_touches_nothing(engine, capsys, tmp_path):
    cr = engine.add('cr', restart_policy='always')
    custom = tmp_path / 'srv'
    result = run(capsys, container='cr', checkpoint='cp1', checkpoint_dir=str(custom), check_mode=True)
    assert result['changed'] is True
    assert result['checkpoint']['name'] == 'cp1'
    assert result['checkpoint']['created'] is None and result['checkpoint']['size'] is None
    assert engine.changes() == []
    assert not custom.exists()
    assert cr.running and cr.restart_policy['Name'] == 'always'


def test_check_mode_force_and_absent_change_nothing(engine, capsys):
    cr = engine.add('cr')
    path = engine.take(cr, 'cp1', leave_running=True)
    before = metadata(path)
    forced = run(capsys, container='cr', checkpoint='cp1', force=True, check_mode=True)
    absent = run(capsys, container='cr', checkpoint='cp1', state='absent', check_mode=True)
    assert forced['changed'] is True and absent['changed'] is True
    assert engine.changes() == []
    assert metadata(path) == before


def test_diff_shows_checkpoints_and_container_state(engine, capsys):
    cr = engine.add('cr')
    engine.take(cr, 'old', leave_running=True)
    stopped = run(capsys, container='cr', checkpoint='cp1', diff=True, check_mode=True)
    assert stopped['diff'] == dict(before=dict(checkpoints=['old'], container_state='running'),
                                   after=dict(checkpoints=['cp1', 'old'], container_state='exited'))
    running = run(capsys, container='cr', checkpoint='cp1', leave_running=True, diff=True)
    assert running['diff']['after'] == dict(checkpoints=['cp1', 'old'], container_state='running')
    unchanged = run(capsys, container='cr', checkpoint='cp1', diff=True)
    assert 'diff' not in unchanged


# -- bad input and an engine that cannot help ---------------------------------------------------

@pytest.mark.parametrize('name', ['-bad', 'a', 'with space', '.x'])
def test_bad_name_is_refused_before_the_engine_is_asked(engine, capsys, name):
    result = run(capsys, container='cr', checkpoint=name)
    msg = failed_clearly(result, 'Checkpoint name %r is not valid: ' % name)
    assert msg.endswith('Choose another name.')
    assert engine.calls == [] and engine.connected == []


def test_relative_checkpoint_dir_is_refused(engine, capsys):
    result = run(capsys, container='cr', checkpoint='cp1', checkpoint_dir='srv/checkpoints')
    failed_clearly(result, "checkpoint_dir must be an absolute path, got 'srv/checkpoints'. ")
    assert engine.calls == []


def test_unknown_container(engine, capsys):
    result = run(capsys, container='nope', checkpoint='cp1')
    failed_clearly(result, 'Container nope does not exist on the Docker Engine at %s. Check the name or id'
                   % DOCKER_HOST)
    assert result['http_status'] == 404 and result['engine_message'] == 'No such container: nope'


def test_engine_not_experimental(engine, capsys):
    engine.add('cr')
    engine.experimental = False
    result = run(capsys, container='cr', checkpoint='cp1')
    msg = failed_clearly(result, 'The Docker Engine at %s (version 20.10.24) is not in experimental mode' % DOCKER_HOST)
    assert '"experimental": true in /etc/docker/daemon.json' in msg
    assert engine.changes() == []


def test_sdk_missing(engine, capsys, monkeypatch):
    monkeypatch.setattr(_lifecycle, 'connect', _engine.connect)
    monkeypatch.setattr(_engine, 'HAS_DOCKER', False)
    monkeypatch.setattr(_engine, 'DOCKER_IMPORT_ERROR', 'Traceback (most recent call last):\nImportError: docker')
    result = run(capsys, container='cr', checkpoint='cp1')
    msg = failed_clearly(result, 'Failed to import the required Python library (docker (the Docker SDK for Python))')
    assert msg.endswith('The cryo.docker.engine role installs it on the host.')
    assert 'ImportError' not in msg and 'exception' not in result


def test_engine_unreachable(capsys, tmp_path):
    """The real connection code, on a socket that does not exist."""
    host = 'unix://%s' % (tmp_path / 'nope.sock')
    result = run(capsys, container='cr', checkpoint='cp1', docker_host=host)
    msg = failed_clearly(result, 'Cannot reach the Docker Engine at %s: ' % host)
    assert 'Check that dockerd is running and that docker_host points at its socket' in msg


def test_engine_killed_during_the_checkpoint_says_what_is_not_known(engine, capsys, monkeypatch):
    engine.add('cr')
    gone = _engine.EngineError('Cannot reach the Docker Engine at %s: Connection aborted.' % DOCKER_HOST)

    def killed(container, checkpoint, *args, **kwargs):
        monkeypatch.setattr(engine, 'inspect', lambda *a: (item for item in ()).throw(gone))
        raise gone
    monkeypatch.setattr(engine, 'create_checkpoint', killed)
    result = run(capsys, container='cr', checkpoint='cp1', method='engine')
    msg = failed_clearly(result, 'Checkpoint cp1 of container cr failed: Cannot reach the Docker Engine')
    assert 'The engine stopped answering during the checkpoint' in msg
    assert 'docker_checkpoint_info lists checkpoint cp1' in msg and 'cp1.cryo-new' in msg
    assert result['container_running'] is None


# -- one operation on a container at a time -----------------------------------------------------

@pytest.mark.parametrize('module, operation', [(docker_checkpoint, 'Checkpoint'), (docker_restore, 'Restore')])
def test_an_operation_on_a_busy_container_is_refused_and_changes_nothing(engine, capsys, module, operation):
    cr = engine.add('cr', restart_policy='always')
    if module is docker_restore:
        engine.take(cr, 'cp1')
    path = _lock.lock_path(engine.root, cr.id)
    other = _lock.ContainerLock(path).acquire('a checkpoint', 'cp1')
    engine.calls = []
    try:
        refused = run_module(capsys, module, dict(docker_host=DOCKER_HOST, container='cr', checkpoint='cp1'))
        msg = failed_clearly(refused, '%s of container cr was not done, and nothing was changed: the container is '
                                      'busy with a checkpoint of checkpoint cp1 by pid %d' % (operation, os.getpid()))
        assert 'Wait until that one has finished, then run this again' in msg and path in msg
        assert refused['busy'] is True and refused['lock_owner']['operation'] == 'a checkpoint'
        assert engine.changes() == [] and cr.restart_policy['Name'] == 'always'
        # Check mode changes nothing and takes no lock: it predicts.
        predicted = run_module(capsys, module, dict(docker_host=DOCKER_HOST, container='cr', checkpoint='cp1'),
                               check_mode=True)
        assert predicted['changed'] and not predicted.get('failed')
    finally:
        other.release()
    done = run_module(capsys, module, dict(docker_host=DOCKER_HOST, container='cr', checkpoint='cp1'))
    assert done['changed'] and not done.get('failed'), done
    assert _lock.read_owner(path) == {}, 'the run released the lock'
