"""The maintenance role's state machine (plugins/filter/maintenance.py) on recorded inputs.

The inputs have the shapes the role hands the filters: checkpoint_preflight's containers,
async_status results looped over the async jobs (registered with failed_when: false, which clears
`failed`), docker_checkpoint_info's checkpoints, and manifests as the role (and cryo.docker 0.1.0)
wrote them.
"""

import copy
import os

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.cryo.docker.plugins.filter import maintenance as m

FILTER_DIR = os.path.dirname(m.__file__)
RUN = '20261201T120000Z'
CHECKPOINT = 'maint-' + RUN
WEB_ID = '3db2fb40e3463df60a235b0f47177b91c0c1d6c6715287195653dad083e95474'
WORKER_ID = '77a1c0ffee3463df60a235b0f47177b91c0c1d6c6715287195653dad083e9547'
VPN_ID = '9c9c0ffee3463df60a235b0f47177b91c0c1d6c6715287195653dad083e95470'

# checkpoint_preflight's `containers` for a host with two good containers and one it cannot checkpoint.
PREFLIGHT = [
    {'name': 'web', 'id': WEB_ID, 'eligible': True, 'reasons': [], 'restart_policy': {'Name': 'always', 'MaximumRetryCount': 0}},
    {'name': 'vpn', 'id': VPN_ID, 'eligible': False, 'reasons': ['privileged container'],
     'restart_policy': {'Name': 'no', 'MaximumRetryCount': 0}},
    {'name': 'worker', 'id': WORKER_ID, 'eligible': True, 'reasons': [], 'restart_policy': {'Name': 'no', 'MaximumRetryCount': 0}},
]

CRIU_TCP = ('Checkpoint maint-x of container worker failed: ... CRIU says: Connected TCP socket, consider using '
            '--tcp-established option. The container is still running; nothing was lost.')


def manifest(*entries, status='checkpointing'):
    return {'run_id': RUN, 'host': 'host1', 'docker_host': 'unix:///run/host1.sock', 'action': 'reboot',
            'checkpoint': CHECKPOINT, 'status': status, 'started': '2026-12-01T12:00:00+00:00',
            'containers': [dict(e) for e in entries]}


def entry(name, status='planned', **extra):
    ids = {'web': WEB_ID, 'worker': WORKER_ID}
    out = {'container': name, 'id': ids[name], 'restart_policy': {'Name': 'no'}, 'checkpoint': CHECKPOINT,
           'status': status}
    out.update(extra)
    return out


def job(item, **result):
    """One async_status result of a loop over the async starts (item.item is what the start looped over)."""
    out = {'ansible_job_id': 'j' + item['container'], 'started': 1, 'finished': 1, 'failed': False,
           'changed': True, 'attempts': 1, 'ansible_loop_var': 'item',
           'item': {'ansible_job_id': 'j' + item['container'], 'started': 1, 'finished': 0,
                    'results_file': '/root/.ansible_async/j', 'changed': True, 'failed': False,
                    'ansible_loop_var': 'item', 'item': dict(item)}}
    out.update(result)
    return out


def failed_job(item, msg, **result):
    # What a module's fail_json looks like once failed_when: false has run: failed is False.
    return job(item, changed=False, failed_when_result=False, msg=msg, **result)


def unfinished_job(item):
    # An until loop that ran out of retries: the job is still running.
    return job(item, finished=0, changed=False)


def checkpoint_ok(item, size=154069, duration=0.183):
    return job(item, checkpoint={'name': CHECKPOINT, 'container': item['container'], 'size': size}, duration=duration)


def by_name(record):
    return {e['container']: e for e in record['containers']}


# -- the vocabulary ------------------------------------------------------------------------------

def test_the_statuses_are_defined_once_and_distinct():
    assert len(set(m.CONTAINER_STATUSES)) == len(m.CONTAINER_STATUSES) == 8
    assert len(set(m.RUN_STATUSES)) == len(m.RUN_STATUSES) == 8
    assert set(m.FINISHED) <= set(m.RUN_STATUSES)
    assert set(m.MAY_BE_STOPPED) <= set(m.CONTAINER_STATUSES)
    assert set(m.TO_RESTORE) <= set(m.CONTAINER_STATUSES)
    assert set(m.LEGACY_CONTAINER_STATUSES.values()) <= set(m.CONTAINER_STATUSES)
    assert set(m.LEGACY_RUN_STATUSES.values()) <= set(m.RUN_STATUSES)


def test_no_freeze_or_thaw_in_the_names():
    names = m.CONTAINER_STATUSES + m.RUN_STATUSES + tuple(m.LEGACY_FIELDS.values())
    assert not [n for n in names if 'freez' in n or 'froz' in n or 'thaw' in n]


def test_every_filter_has_its_documentation():
    filters = m.FilterModule().filters()
    assert sorted(filters) == sorted(f[:-4] for f in os.listdir(FILTER_DIR) if f.endswith('.yml'))
    for name in filters:
        with open(os.path.join(FILTER_DIR, name + '.yml')) as handle:
            doc = yaml.safe_load(handle)
        assert doc['DOCUMENTATION']['name'] == name
        assert doc['EXAMPLES'].count('cryo.docker.' + name) >= 1
        assert '_value' in doc['RETURN']


def test_the_documented_run_statuses_are_the_ones_in_the_code():
    with open(os.path.join(FILTER_DIR, 'maintenance_mark.yml')) as handle:
        doc = yaml.safe_load(handle)
    assert doc['DOCUMENTATION']['options']['status']['choices'] == list(m.RUN_STATUSES)


# -- plan ----------------------------------------------------------------------------------------

def test_plan_takes_the_eligible_containers_only():
    plan = m.maintenance_plan(PREFLIGHT, CHECKPOINT)
    assert plan['containers'] == [
        {'container': 'web', 'id': WEB_ID, 'restart_policy': {'Name': 'always', 'MaximumRetryCount': 0},
         'checkpoint': CHECKPOINT, 'status': 'planned'},
        {'container': 'worker', 'id': WORKER_ID, 'restart_policy': {'Name': 'no', 'MaximumRetryCount': 0},
         'checkpoint': CHECKPOINT, 'status': 'planned'},
    ]
    assert plan['ineligible'] == [{'container': 'vpn', 'reasons': ['privileged container']}]


def test_plan_of_nothing():
    assert m.maintenance_plan([], CHECKPOINT) == {'containers': [], 'ineligible': []}
    assert m.maintenance_plan(None, CHECKPOINT) == {'containers': [], 'ineligible': []}


def test_plan_without_eligible_flag_is_ineligible():
    plan = m.maintenance_plan([{'name': 'odd', 'id': None}], CHECKPOINT)
    assert plan == {'containers': [], 'ineligible': [{'container': 'odd', 'reasons': []}]}


def test_plan_does_not_change_its_input():
    before = copy.deepcopy(PREFLIGHT)
    m.maintenance_plan(PREFLIGHT, CHECKPOINT)
    assert PREFLIGHT == before


@pytest.mark.parametrize('bad', ['web', {'name': 'web'}, 3])
def test_plan_wants_a_list(bad):
    with pytest.raises(AnsibleFilterError, match='must be a list'):
        m.maintenance_plan(bad, CHECKPOINT)


def test_plan_wants_dicts_in_the_list():
    with pytest.raises(AnsibleFilterError, match='must be a dictionary'):
        m.maintenance_plan(['web'], CHECKPOINT)


# -- mark ----------------------------------------------------------------------------------------

@pytest.mark.parametrize('status', m.RUN_STATUSES)
def test_mark_sets_a_run_status(status):
    record = manifest(entry('web'))
    marked = m.maintenance_mark(record, status)
    assert marked['status'] == status
    assert marked['containers'] == record['containers']
    assert record['status'] == 'checkpointing', 'the input must not change'


@pytest.mark.parametrize('status', ['freezing', 'thawing', 'done', 'planned'])
def test_mark_refuses_a_status_that_is_not_one(status):
    with pytest.raises(AnsibleFilterError, match='is not a status of a maintenance run'):
        m.maintenance_mark(manifest(), status)


def test_mark_starts_a_manifest_without_containers():
    expected = {'run_id': RUN, 'status': 'checkpointing', 'containers': []}
    assert m.maintenance_mark({'run_id': RUN}, 'checkpointing') == expected


def test_mark_wants_a_manifest():
    with pytest.raises(AnsibleFilterError, match='the manifest must be a dictionary'):
        m.maintenance_mark(['x'], 'action')


# -- after the checkpoint jobs -------------------------------------------------------------------

def test_checkpoint_finished_ok():
    web = entry('web')
    record = m.maintenance_checkpointed(manifest(web), [checkpoint_ok(web)])
    assert record['status'] == 'checkpointed'
    assert record['containers'] == [dict(web, status='checkpointed', checkpoint_size=154069,
                                         checkpoint_seconds=0.183, error='')]


def test_checkpoint_failed_keeps_the_module_message():
    worker = entry('worker')
    result = failed_job(worker, CRIU_TCP, criu_errors=['Connected TCP socket'], container_running=True)
    record = m.maintenance_checkpointed(manifest(worker), [result])
    assert record['status'] == 'checkpointed'
    assert record['containers'] == [dict(worker, status='checkpoint_failed', checkpoint_size=None,
                                         checkpoint_seconds=None, error=CRIU_TCP)]


def test_checkpoint_failed_without_a_message():
    worker = entry('worker')
    record = m.maintenance_checkpointed(manifest(worker), [failed_job(worker, '')])
    assert by_name(record)['worker']['error'] == 'checkpoint did not finish'


def test_checkpoint_that_did_not_finish():
    web = entry('web')
    record = m.maintenance_checkpointed(manifest(web), [unfinished_job(web)])
    assert by_name(record)['web']['status'] == 'checkpoint_failed'
    assert by_name(record)['web']['error'] == 'checkpoint did not finish'


def test_checkpoint_without_a_job_failed():
    web, worker = entry('web'), entry('worker')
    record = m.maintenance_checkpointed(manifest(web, worker), [checkpoint_ok(web)])
    assert by_name(record)['worker']['status'] == 'checkpoint_failed'
    assert by_name(record)['worker']['error'] == 'no checkpoint job ran for it'


def test_checkpoint_mixed_keeps_the_manifest_order_and_fields():
    web, worker = entry('web'), entry('worker')
    results = [failed_job(worker, CRIU_TCP), checkpoint_ok(web, size=10500000, duration=1.5)]
    before = manifest(web, worker)
    record = m.maintenance_checkpointed(before, results)
    assert [e['container'] for e in record['containers']] == ['web', 'worker']
    assert [e['status'] for e in record['containers']] == ['checkpointed', 'checkpoint_failed']
    assert record['run_id'] == RUN and record['started'] == before['started']
    assert before['containers'][0]['status'] == 'planned', 'the input must not change'


def test_checkpoint_results_must_be_async_status_over_the_starts():
    with pytest.raises(AnsibleFilterError, match='item.item.container'):
        m.maintenance_checkpointed(manifest(entry('web')), [{'finished': 1, 'checkpoint': {}}])
    with pytest.raises(AnsibleFilterError, match='must be a list'):
        m.maintenance_checkpointed(manifest(entry('web')), {'results': []})


def test_checkpoint_with_no_containers():
    record = m.maintenance_checkpointed(manifest(), [])
    assert record['status'] == 'checkpointed' and record['containers'] == []


# -- which restores ------------------------------------------------------------------------------

def after_checkpoint():
    return manifest(entry('web', 'checkpointed'), entry('worker', 'checkpoint_failed', error=CRIU_TCP),
                    status='restoring')


def test_restores_after_the_action_with_fail():
    assert m.maintenance_restores(after_checkpoint()) == [
        {'container': 'web', 'id': WEB_ID, 'checkpoint': CHECKPOINT, 'fallback': 'fail'},
        {'container': 'worker', 'id': WORKER_ID, 'checkpoint': CHECKPOINT, 'fallback': 'cold_start'},
    ]


def test_restores_after_the_action_with_cold_start():
    assert [r['fallback'] for r in m.maintenance_restores(after_checkpoint(), 'cold_start')] == ['cold_start'] * 2


def test_restores_retry_a_failed_restore_and_skip_the_rest():
    record = manifest(entry('web', 'restore_failed'), entry('worker', 'restored'), status='recovering')
    record['containers'].append(dict(entry('web', 'not_checkpointed'), container='other'))
    record['containers'].append(dict(entry('web', 'cold_started'), container='third'))
    record['containers'].append(dict(entry('web', 'running'), container='fourth'))
    record['containers'].append(dict(entry('web', 'planned'), container='fifth'))
    assert [(r['container'], r['fallback']) for r in m.maintenance_restores(record, 'fail')] == [('web', 'fail')]


def test_restores_of_an_abort_resume_only_what_was_checkpointed():
    assert m.maintenance_restores(after_checkpoint(), abort=True) == [
        {'container': 'web', 'id': WEB_ID, 'checkpoint': CHECKPOINT, 'fallback': 'cold_start'},
    ]


def test_restores_use_the_run_checkpoint_when_an_entry_has_none():
    record = manifest(entry('web', 'checkpointed'))
    del record['containers'][0]['checkpoint']
    assert m.maintenance_restores(record)[0]['checkpoint'] == CHECKPOINT


def test_restores_refuse_an_unknown_fallback():
    with pytest.raises(AnsibleFilterError, match='fallback must be one of fail, cold_start'):
        m.maintenance_restores(after_checkpoint(), 'cold_restart')


# -- after the restore jobs ----------------------------------------------------------------------

def restore(name, fallback='fail'):
    ids = {'web': WEB_ID, 'worker': WORKER_ID}
    return {'container': name, 'id': ids[name], 'checkpoint': CHECKPOINT, 'fallback': fallback}


RESTORED = dict(restored=True, verified=True, fallback_used=False, checkpoint_removed=True, duration=0.312)
COLD_STARTED = dict(restored=False, verified=False, fallback_used=True, checkpoint_removed=False, duration=0.05)
RUNNING = dict(changed=False, restored=False, verified=None, fallback_used=False, checkpoint_removed=False, duration=0.0)
RESTORE_MSG = ('Restore of container web from checkpoint maint-x failed: ... The container stays stopped and the '
               'checkpoint was kept; fix the cause and run again, or use fallback: cold_start to start it afresh.')


def test_restored():
    record = m.maintenance_restored(manifest(entry('web', 'checkpointed', error='')),
                                    [job(restore('web'), **RESTORED)], finished='2026-12-01T12:05:00+00:00')
    assert record['status'] == 'complete'
    assert record['finished'] == '2026-12-01T12:05:00+00:00'
    assert record['containers'] == [dict(entry('web'), status='restored', restore_seconds=0.312, verified=True,
                                         checkpoint_removed=True, error='')]


def test_cold_started_keeps_the_checkpoint_error():
    record = m.maintenance_restored(after_checkpoint(), [job(restore('web'), **RESTORED),
                                                         job(restore('worker', 'cold_start'), **COLD_STARTED)])
    worker = by_name(record)['worker']
    assert (worker['status'], worker['verified'], worker['error']) == ('cold_started', False, CRIU_TCP)
    assert record['status'] == 'complete'


def test_running_when_there_was_nothing_to_restore():
    record = m.maintenance_restored(after_checkpoint(), [job(restore('worker', 'cold_start'), **RUNNING)])
    worker = by_name(record)['worker']
    assert (worker['status'], worker['restore_seconds'], worker['checkpoint_removed']) == ('running', 0.0, False)
    # No job for web: it keeps its status.
    assert by_name(record)['web']['status'] == 'checkpointed'
    assert 'finished' not in record


def test_restore_failed_fails_the_run():
    record = m.maintenance_restored(after_checkpoint(), [failed_job(restore('web'), RESTORE_MSG, criu_errors=['x']),
                                                         job(restore('worker', 'cold_start'), **RUNNING)])
    web = by_name(record)['web']
    assert (web['status'], web['error'], web['verified'], web['checkpoint_removed']) == (
        'restore_failed', RESTORE_MSG, None, False)
    assert record['status'] == 'restore_failed'


def test_restore_that_did_not_finish():
    record = m.maintenance_restored(after_checkpoint(), [unfinished_job(restore('web'))])
    web = by_name(record)['web']
    assert (web['status'], web['error']) == ('restore_failed', 'restore did not finish')
    assert record['status'] == 'restore_failed'


def test_a_second_restore_clears_the_failure():
    failed = manifest(entry('web', 'restore_failed', error=RESTORE_MSG), status='recovering')
    record = m.maintenance_restored(failed, [job(restore('web', 'cold_start'), **COLD_STARTED)])
    assert (by_name(record)['web']['status'], by_name(record)['web']['error']) == ('cold_started', RESTORE_MSG)
    assert record['status'] == 'complete'


def test_restore_failed_entry_without_a_job_keeps_the_run_failed():
    failed = manifest(entry('web', 'restore_failed'), entry('worker', 'checkpointed'), status='recovering')
    record = m.maintenance_restored(failed, [job(restore('worker'), **RESTORED)])
    assert record['status'] == 'restore_failed'


def test_restored_with_no_jobs_completes():
    assert m.maintenance_restored(manifest(status='restoring'), [])['status'] == 'complete'


# -- recover -------------------------------------------------------------------------------------

CHECKPOINTS = [
    {'name': CHECKPOINT, 'container': 'web', 'container_id': WEB_ID, 'size': 154069},
    {'name': 'an-older-one', 'container': 'worker', 'container_id': WORKER_ID, 'size': 1},
]


def test_recover_marks_what_the_engine_has():
    interrupted = manifest(entry('web'), entry('worker'), status='checkpointing')
    record = m.maintenance_recovering(interrupted, CHECKPOINTS)
    assert record['status'] == 'recovering'
    # worker has a checkpoint, but not this run's: it was never checkpointed, it kept running.
    assert {e['container']: e['status'] for e in record['containers']} == {'web': 'checkpointed',
                                                                           'worker': 'not_checkpointed'}
    assert interrupted['containers'][0]['status'] == 'planned', 'the input must not change'


def test_recover_leaves_entries_that_are_not_planned():
    record = m.maintenance_recovering(after_checkpoint(), [])
    assert [e['status'] for e in record['containers']] == ['checkpointed', 'checkpoint_failed']


def test_recover_with_no_checkpoints_at_all():
    record = m.maintenance_recovering(manifest(entry('web')), None)
    assert by_name(record)['web']['status'] == 'not_checkpointed'


def test_recover_then_restore():
    record = m.maintenance_recovering(manifest(entry('web'), entry('worker'), status='action'), CHECKPOINTS)
    assert m.maintenance_restores(record) == [restore('web')]


# -- state: guard, recover, failures ---------------------------------------------------------------

@pytest.mark.parametrize('status', m.FINISHED)
def test_a_finished_run_blocks_nothing(status):
    state = m.maintenance_state(manifest(entry('web', 'checkpointed'), status=status))
    assert state['finished'] is True
    assert state['may_be_stopped'] == []
    assert state['status'] == status and state['run_id'] == RUN


@pytest.mark.parametrize('status', ['checkpointing', 'checkpointed', 'action', 'restoring', 'recovering', 'restore_failed'])
def test_a_run_that_did_not_finish_names_what_may_be_stopped(status):
    record = manifest(entry('web', 'checkpointed'), entry('worker', 'checkpoint_failed', error=CRIU_TCP), status=status)
    record['containers'] += [dict(entry('web', 'planned'), container='p'), dict(entry('web', 'restore_failed'), container='f'),
                             dict(entry('web', 'restored'), container='r'), dict(entry('web', 'not_checkpointed'), container='n')]
    state = m.maintenance_state(record)
    assert state['finished'] is False
    assert state['may_be_stopped'] == ['web', 'p', 'f']
    assert [e['container'] for e in state['checkpoint_failed']] == ['worker']
    assert state['checkpoint_failed'][0]['error'] == CRIU_TCP
    assert [e['container'] for e in state['restore_failed']] == ['f']


def test_state_of_a_manifest_without_status_is_unfinished():
    assert m.maintenance_state({})['finished'] is False


# -- manifests of cryo.docker 0.1.0 --------------------------------------------------------------

# As the 0.1.0 role wrote it: interrupted after the checkpoints, during the action.
LEGACY = {
    'run_id': RUN, 'host': 'host1', 'docker_host': 'unix:///run/host1.sock', 'action': 'reboot',
    'checkpoint': CHECKPOINT, 'status': 'action', 'started': '2026-12-01T12:00:00+00:00',
    'updated': '2026-12-01T12:00:03+00:00',
    'containers': [
        {'container': 'web', 'id': WEB_ID, 'restart_policy': {'Name': 'always'}, 'status': 'frozen',
         'checkpoint': CHECKPOINT, 'checkpoint_size': 154069, 'freeze_seconds': 0.183, 'error': ''},
        {'container': 'worker', 'id': WORKER_ID, 'restart_policy': {'Name': 'no'}, 'status': 'checkpoint_failed',
         'checkpoint': CHECKPOINT, 'checkpoint_size': None, 'freeze_seconds': None, 'error': CRIU_TCP},
    ],
}


@pytest.mark.parametrize('old, new', sorted(m.LEGACY_RUN_STATUSES.items()))
def test_legacy_run_statuses(old, new):
    state = m.maintenance_state(dict(LEGACY, status=old))
    assert state['status'] == new
    assert state['finished'] is False


def test_legacy_manifest_blocks_a_new_run():
    state = m.maintenance_state(LEGACY)
    assert state['finished'] is False
    assert state['may_be_stopped'] == ['web']


def test_legacy_manifest_is_recovered():
    record = m.maintenance_recovering(LEGACY, CHECKPOINTS)
    assert record['status'] == 'recovering'
    web = by_name(record)['web']
    assert web['status'] == 'checkpointed'
    assert web['checkpoint_seconds'] == 0.183 and 'freeze_seconds' not in web
    assert [(r['container'], r['fallback']) for r in m.maintenance_restores(record)] == [
        ('web', 'fail'), ('worker', 'cold_start')]
    assert LEGACY['containers'][0]['status'] == 'frozen', 'the input must not change'


def test_legacy_not_frozen_and_planned():
    old = dict(LEGACY, status='freezing', containers=[
        dict(LEGACY['containers'][0], status='not_frozen'), dict(LEGACY['containers'][1], status='planned')])
    record = m.maintenance_recovering(old, [])
    assert [e['status'] for e in record['containers']] == ['not_checkpointed', 'not_checkpointed']
    assert m.maintenance_restores(record) == []


def test_legacy_abort_resumes_frozen_containers():
    assert [r['container'] for r in m.maintenance_restores(LEGACY, abort=True)] == ['web']


def test_legacy_report_shows_the_checkpoint_time():
    assert '0.183' in m.maintenance_report_lines(LEGACY)[1]


# -- the report ----------------------------------------------------------------------------------

def test_report_lines():
    record = manifest(
        entry('web', 'restored', checkpoint_size=10500000, checkpoint_seconds=0.183, restore_seconds=0.312, verified=True),
        entry('worker', 'cold_started', checkpoint_size=None, checkpoint_seconds=None, restore_seconds=0.05, verified=False),
        status='complete')
    record['containers'].append({'container': 'a-much-longer-container-name', 'status': 'running',
                                 'checkpoint_size': 1, 'checkpoint_seconds': 0.1, 'restore_seconds': 0.0})
    assert m.maintenance_report_lines(record) == [
        'container                           size  checkpoint s  restore s  outcome',
        'web                              10.5 MB         0.183      0.312  restored (verified)',
        'worker                                 -             -       0.05  cold_started',
        'a-much-longer-container-name      1 Byte           0.1          -  running',
        'run %s: complete' % RUN,
    ]


def test_report_of_a_failed_restore_and_an_unfinished_entry():
    record = manifest(entry('web', 'restore_failed', checkpoint_size=999, checkpoint_seconds=0.2, verified=None),
                      entry('worker', 'planned'), status='restore_failed')
    lines = m.maintenance_report_lines(record)
    assert lines[1].split() == ['web', '999', 'Bytes', '0.2', '-', 'restore_failed']
    assert lines[2].split() == ['worker', '-', '-', '-', 'planned']
    assert lines[-1] == 'run %s: restore_failed' % RUN


def test_report_of_no_containers():
    assert m.maintenance_report_lines(manifest(status='complete')) == [
        'container        size  checkpoint s  restore s  outcome', 'run %s: complete' % RUN]


@pytest.mark.parametrize('size, text', [
    (0, '0 Bytes'), (1, '1 Byte'), (999, '999 Bytes'), (1000, '1.0 kB'), (154069, '154.1 kB'),
    (10500000, '10.5 MB'), (2 * 10 ** 9, '2.0 GB'), (3 * 10 ** 12, '3.0 TB'), (4 * 10 ** 15, '4000.0 TB'),
])
def test_sizes_read_as_jinja_filesizeformat(size, text):
    assert m._size(size) == text  # pylint: disable=protected-access


def test_sizes_match_jinja():
    jinja_filters = pytest.importorskip('jinja2.filters')
    for size in (0, 1, 2, 999, 1000, 1001, 154069, 10500000, 2 * 10 ** 9, 3 * 10 ** 12):
        assert m._size(size) == jinja_filters.do_filesizeformat(size)  # pylint: disable=protected-access


# -- a whole run, as the role strings the filters together -----------------------------------------

def test_a_whole_run_with_cold_start():
    plan = m.maintenance_plan(PREFLIGHT, CHECKPOINT)
    record = m.maintenance_mark(dict(manifest(), containers=plan['containers']), 'checkpointing')
    web, worker = record['containers']
    record = m.maintenance_checkpointed(record, [checkpoint_ok(web), failed_job(worker, CRIU_TCP)])
    assert m.maintenance_state(record)['checkpoint_failed'][0]['container'] == 'worker'
    record = m.maintenance_mark(m.maintenance_mark(record, 'action'), 'restoring')
    todo = m.maintenance_restores(record, 'fail')
    assert [(r['container'], r['fallback']) for r in todo] == [('web', 'fail'), ('worker', 'cold_start')]
    record = m.maintenance_restored(record, [job(todo[0], **RESTORED), job(todo[1], **RUNNING)], finished='t')
    assert m.maintenance_state(record) == {'run_id': RUN, 'status': 'complete', 'finished': True, 'may_be_stopped': [],
                                           'checkpoint_failed': [], 'restore_failed': []}
    assert 'restored (verified)' in m.maintenance_report_lines(record)[1]
