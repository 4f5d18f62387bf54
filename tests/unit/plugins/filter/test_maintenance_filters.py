"""The maintenance role's state machine (plugins/filter/maintenance.py) on recorded inputs.

The inputs have the shapes the role hands the filters: checkpoint_preflight's containers, the
registered result of one docker_checkpoint batch call (`containers`: the entries' ids; failed_when:
false clears the call's `failed`, never its entries'), the registered loop of docker_restore batch
calls (one per group of maintenance_restores(grouped=true)), docker_checkpoint_info's checkpoints, and
manifests as the role (and cryo.docker 0.1.0) wrote them.
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


STATS = {'freezing_time': 101065, 'frozen_time': 63941, 'memdump_time': 557, 'memwrite_time': 224,
         'pages_scanned': 48, 'pages_skipped_parent': 0, 'pages_written': 34, 'pages_lazy': 0}


def batch(*entries, **result):
    """The registered result of one batch call (docker_checkpoint or docker_restore with containers), as the role
    registers it with failed_when: false: a call with a failed container keeps its msg and results, not `failed`."""
    failed = [e for e in entries if e.get('failed')]
    out = {'changed': any(e.get('changed') for e in entries), 'failed': False, 'results': list(entries)}
    if failed:
        out.update(failed_when_result=False, msg='%d of %d containers failed: ...' % (len(failed), len(entries)))
    out.update(result)
    return out


def call_failed(msg, **result):
    """A batch call that failed as a whole, before any container: no results, only msg."""
    out = {'changed': False, 'failed': False, 'failed_when_result': False, 'msg': msg}
    out.update(result)
    return out


def checkpoint_ok(item, size=154069, duration=0.183, stats=None, method='runtime'):
    """docker_checkpoint's entry for a container it checkpointed (named by the id it was given)."""
    return {'container': item['id'], 'changed': True, 'method': method, 'duration': duration,
            'stats': dict(STATS) if stats is None and method == 'runtime' else stats,
            'checkpoint': {'name': CHECKPOINT, 'container': item['container'], 'container_id': item['id'],
                           'size': size}}


def checkpoint_failed(item, msg, **result):
    """docker_checkpoint's entry for a container whose checkpoint failed."""
    out = {'container': item['id'], 'changed': False, 'failed': True, 'msg': msg}
    out.update(result)
    return out


def restored(item, running=True, **result):
    """docker_restore's entry for a container of the call: it names the container as its single result does."""
    out = {'changed': True, 'container': {'name': item['container'], 'id': item['id'],
                                          'status': 'running' if running else 'exited', 'running': running}}
    out.update(result)
    return out


def restore_failed(item, msg, **result):
    """docker_restore's entry for a container whose restore failed: container.name is the id it was given."""
    out = {'changed': False, 'failed': True, 'msg': msg, 'container': {'name': item['id']}}
    out.update(result)
    return out


def loop(*calls):
    """The `results` of a registered loop of restore batch calls, one per group (each with the group as item)."""
    out = []
    for group, call in calls:
        out.append(dict(call, ansible_loop_var='item', item=group))
    return out


def group(*restores):
    return {'checkpoint': CHECKPOINT, 'fallback': restores[0]['fallback'], 'containers': [dict(r) for r in restores]}


def by_name(record):
    return {e['container']: e for e in record['containers']}


# -- the vocabulary ------------------------------------------------------------------------------

def test_the_statuses_are_defined_once_and_distinct():
    assert len(set(m.CONTAINER_STATUSES)) == len(m.CONTAINER_STATUSES) == 9
    assert len(set(m.HOLDER_STATUSES)) == len(m.HOLDER_STATUSES) == 5
    assert set(m.HOLDER_DOWN) <= set(m.HOLDER_STATUSES)
    assert len(set(m.RUN_STATUSES)) == len(m.RUN_STATUSES) == 8
    assert set(m.FINISHED) <= set(m.RUN_STATUSES)
    assert set(m.MAY_BE_STOPPED) <= set(m.CONTAINER_STATUSES)
    assert set(m.TO_RESTORE) <= set(m.CONTAINER_STATUSES)
    assert set(m.LEGACY_CONTAINER_STATUSES.values()) <= set(m.CONTAINER_STATUSES)
    assert set(m.LEGACY_RUN_STATUSES.values()) <= set(m.RUN_STATUSES)


def test_no_freeze_or_thaw_in_the_names():
    names = m.CONTAINER_STATUSES + m.RUN_STATUSES + m.HOLDER_STATUSES + tuple(m.LEGACY_FIELDS.values())
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
    assert plan['ineligible'] == [{'container': 'vpn', 'id': VPN_ID, 'reasons': ['privileged container'],
                                   'status': 'skipped'}]
    assert plan['holders'] == []


def test_plan_of_nothing():
    assert m.maintenance_plan([], CHECKPOINT) == {'containers': [], 'ineligible': [], 'holders': [], 'projects': []}
    assert m.maintenance_plan(None, CHECKPOINT) == {'containers': [], 'ineligible': [], 'holders': [], 'projects': []}


def test_plan_without_eligible_flag_is_ineligible():
    plan = m.maintenance_plan([{'name': 'odd', 'id': None}], CHECKPOINT)
    assert plan == {'containers': [], 'ineligible': [{'container': 'odd', 'id': None, 'reasons': [], 'status': 'skipped'}],
                    'holders': [], 'projects': []}


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
    record = m.maintenance_checkpointed(manifest(web), batch(checkpoint_ok(web)))
    assert record['status'] == 'checkpointed'
    assert record['containers'] == [dict(web, status='checkpointed', checkpoint_size=154069,
                                         checkpoint_seconds=0.183, frozen_seconds=0.063941, error='')]


def test_checkpoint_through_the_engine_has_no_frozen_time():
    web = entry('web')
    record = m.maintenance_checkpointed(manifest(web), batch(checkpoint_ok(web, method='engine')))
    assert by_name(record)['web']['status'] == 'checkpointed'
    assert by_name(record)['web']['frozen_seconds'] is None


def test_checkpoint_that_changed_nothing_is_checkpointed():
    # The checkpoint was there already (a rerun): changed false, duration 0, no stats.
    web = entry('web')
    result = dict(checkpoint_ok(web, duration=0.0, method='engine'), changed=False)
    del result['method']
    record = m.maintenance_checkpointed(manifest(web), batch(result))
    assert (by_name(record)['web']['status'], by_name(record)['web']['frozen_seconds']) == ('checkpointed', None)


def test_checkpoint_failed_keeps_the_module_message():
    worker = entry('worker')
    result = checkpoint_failed(worker, CRIU_TCP, criu_errors=['Connected TCP socket'], container_running=True,
                               method='runtime')
    record = m.maintenance_checkpointed(manifest(worker), batch(result))
    assert record['status'] == 'checkpointed'
    assert record['containers'] == [dict(worker, status='checkpoint_failed', checkpoint_size=None,
                                         checkpoint_seconds=None, frozen_seconds=None, error=CRIU_TCP)]


def test_checkpoint_failed_without_a_message():
    worker = entry('worker')
    record = m.maintenance_checkpointed(manifest(worker), batch(checkpoint_failed(worker, '')))
    assert by_name(record)['worker']['error'] == 'checkpoint did not finish'


def test_checkpoint_call_that_failed_as_a_whole():
    # The engine did not answer: the call failed before any container, without results.
    web, worker = entry('web'), entry('worker')
    msg = 'Cannot reach the Docker Engine at unix:///run/host1.sock: ... Is the engine running?'
    record = m.maintenance_checkpointed(manifest(web, worker), call_failed(msg))
    assert [(e['status'], e['error'], e['checkpoint_size']) for e in record['containers']] == [
        ('checkpoint_failed', msg, None), ('checkpoint_failed', msg, None)]
    assert m.maintenance_restores(record, abort=True) == [], 'an abort resumes nothing: nothing was stopped'


def test_checkpoint_call_that_failed_as_a_whole_names_what_it_was_given():
    web, worker = entry('web'), entry('worker')
    call = call_failed('bad option', invocation={'module_args': {'containers': [WEB_ID]}})
    record = m.maintenance_checkpointed(manifest(web, worker), call)
    assert [(e['container'], e['error']) for e in record['containers']] == [
        ('web', 'bad option'), ('worker', 'the checkpoint call returned no result for it')]


def test_checkpoint_without_a_result_failed():
    web, worker = entry('web'), entry('worker')
    record = m.maintenance_checkpointed(manifest(web, worker), batch(checkpoint_ok(web)))
    assert by_name(record)['worker']['status'] == 'checkpoint_failed'
    assert by_name(record)['worker']['error'] == 'the checkpoint call returned no result for it'


def test_checkpoint_mixed_keeps_the_manifest_order_and_fields():
    web, worker = entry('web'), entry('worker')
    results = batch(checkpoint_failed(worker, CRIU_TCP), checkpoint_ok(web, size=10500000, duration=1.5))
    before = manifest(web, worker)
    record = m.maintenance_checkpointed(before, results)
    assert [e['container'] for e in record['containers']] == ['web', 'worker']
    assert [e['status'] for e in record['containers']] == ['checkpointed', 'checkpoint_failed']
    assert record['run_id'] == RUN and record['started'] == before['started']
    assert before['containers'][0]['status'] == 'planned', 'the input must not change'


def test_checkpoint_results_of_a_loop_of_batches():
    web, worker = entry('web'), entry('worker')
    looped = [dict(batch(checkpoint_ok(web)), item=[WEB_ID], ansible_loop_var='item'),
              dict(batch(checkpoint_failed(worker, CRIU_TCP)), item=[WORKER_ID], ansible_loop_var='item')]
    for results in (looped, {'changed': True, 'results': looped, 'msg': 'All items completed'}):
        record = m.maintenance_checkpointed(manifest(web, worker), results)
        assert [e['status'] for e in record['containers']] == ['checkpointed', 'checkpoint_failed']


def test_checkpoint_results_must_be_batch_results():
    with pytest.raises(AnsibleFilterError, match='each entry names its container'):
        m.maintenance_checkpointed(manifest(entry('web')), batch({'checkpoint': {}}))
    with pytest.raises(AnsibleFilterError, match='must be a list'):
        m.maintenance_checkpointed(manifest(entry('web')), 'web')
    with pytest.raises(AnsibleFilterError, match='must be a list'):
        m.maintenance_checkpointed(manifest(entry('web')), {'results': 'web'})
    with pytest.raises(AnsibleFilterError, match='must be a dictionary'):
        m.maintenance_checkpointed(manifest(entry('web')), {'results': ['web']})


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


def test_restores_grouped_one_batch_per_fallback_the_run_fallback_first():
    record = manifest(entry('worker', 'checkpoint_failed', error=CRIU_TCP), entry('web', 'checkpointed'),
                      status='restoring')
    assert m.maintenance_restores(record, 'fail', grouped=True) == [
        {'checkpoint': CHECKPOINT, 'fallback': 'fail', 'containers': [restore('web')]},
        {'checkpoint': CHECKPOINT, 'fallback': 'cold_start', 'containers': [restore('worker', 'cold_start')]},
    ]
    assert m.maintenance_restores(record, 'cold_start', grouped=True) == [
        {'checkpoint': CHECKPOINT, 'fallback': 'cold_start',
         'containers': [restore('worker', 'cold_start'), restore('web', 'cold_start')]},
    ]


def test_restores_grouped_by_checkpoint_too():
    record = manifest(entry('web', 'checkpointed'), dict(entry('worker', 'checkpointed'), checkpoint='other'))
    groups = m.maintenance_restores(record, grouped=True)
    assert [(g['checkpoint'], g['fallback'], [r['container'] for r in g['containers']]) for g in groups] == [
        (CHECKPOINT, 'fail', ['web']), ('other', 'fail', ['worker'])]


def test_restores_grouped_of_an_abort_and_of_nothing():
    assert m.maintenance_restores(after_checkpoint(), abort=True, grouped=True) == [
        {'checkpoint': CHECKPOINT, 'fallback': 'cold_start', 'containers': [restore('web', 'cold_start')]}]
    assert m.maintenance_restores(manifest(entry('web', 'restored')), grouped=True) == []


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
                                    loop((group(restore('web')), batch(restored(restore('web'), **RESTORED)))),
                                    finished='2026-12-01T12:05:00+00:00')
    assert record['status'] == 'complete'
    assert record['finished'] == '2026-12-01T12:05:00+00:00'
    assert record['containers'] == [dict(entry('web'), status='restored', restore_seconds=0.312, verified=True,
                                         checkpoint_removed=True, error='')]


def test_restored_from_one_batch_call():
    # One registered call (not a loop) reads the same.
    record = m.maintenance_restored(manifest(entry('web', 'checkpointed')), batch(restored(restore('web'), **RESTORED)))
    assert by_name(record)['web']['status'] == 'restored' and record['status'] == 'complete'


def test_cold_started_keeps_the_checkpoint_error():
    record = m.maintenance_restored(after_checkpoint(), loop(
        (group(restore('web')), batch(restored(restore('web'), **RESTORED))),
        (group(restore('worker', 'cold_start')), batch(restored(restore('worker', 'cold_start'), **COLD_STARTED)))))
    worker = by_name(record)['worker']
    assert (worker['status'], worker['verified'], worker['error']) == ('cold_started', False, CRIU_TCP)
    assert record['status'] == 'complete'


def test_running_when_there_was_nothing_to_restore():
    worker = restore('worker', 'cold_start')
    record = m.maintenance_restored(after_checkpoint(), loop((group(worker), batch(restored(worker, **RUNNING)))))
    worker = by_name(record)['worker']
    assert (worker['status'], worker['restore_seconds'], worker['checkpoint_removed']) == ('running', 0.0, False)
    # No result for web: it keeps its status.
    assert by_name(record)['web']['status'] == 'checkpointed'
    assert 'finished' not in record


def test_restore_failed_fails_the_run():
    web, worker = restore('web'), restore('worker', 'cold_start')
    record = m.maintenance_restored(after_checkpoint(), loop(
        (group(web), batch(restore_failed(web, RESTORE_MSG, criu_errors=['x']))),
        (group(worker), batch(restored(worker, **RUNNING)))))
    web = by_name(record)['web']
    assert (web['status'], web['error'], web['verified'], web['checkpoint_removed']) == (
        'restore_failed', RESTORE_MSG, None, False)
    assert record['status'] == 'restore_failed'


def test_restore_failed_in_a_batch_with_a_restored_one():
    record = manifest(entry('web', 'checkpointed'), entry('worker', 'checkpointed'), status='restoring')
    web, worker = restore('web'), restore('worker')
    record = m.maintenance_restored(record, loop((group(web, worker), batch(
        restored(worker, **RESTORED), restore_failed(web, RESTORE_MSG)))))
    assert [(e['container'], e['status']) for e in record['containers']] == [('web', 'restore_failed'),
                                                                             ('worker', 'restored')]
    assert record['status'] == 'restore_failed'


def test_restore_call_that_failed_as_a_whole():
    # Replaces the async job that never finished: the call failed before any container, its group fails.
    msg = 'Cannot reach the Docker Engine at unix:///run/host1.sock: ...'
    web, worker = restore('web'), restore('worker', 'cold_start')
    record = m.maintenance_restored(after_checkpoint(), loop(
        (group(web), call_failed(msg)), (group(worker), batch(restored(worker, **RUNNING)))))
    web = by_name(record)['web']
    assert (web['status'], web['error'], web['verified'], web['checkpoint_removed']) == (
        'restore_failed', msg, None, False)
    assert by_name(record)['worker']['status'] == 'running'
    assert record['status'] == 'restore_failed'


def test_restore_call_that_failed_as_a_whole_without_saying_for_which():
    # One registered call without results, item or arguments: every container there was to restore failed.
    record = manifest(entry('web', 'checkpointed'), entry('worker', 'restored'), status='restoring')
    record = m.maintenance_restored(record, call_failed(''))
    assert [(e['status'], e.get('error')) for e in record['containers']] == [
        ('restore_failed', 'the call failed without a message'), ('restored', None)]


def test_a_second_restore_clears_the_failure():
    failed = manifest(entry('web', 'restore_failed', error=RESTORE_MSG), status='recovering')
    web = restore('web', 'cold_start')
    record = m.maintenance_restored(failed, loop((group(web), batch(restored(web, **COLD_STARTED)))))
    assert (by_name(record)['web']['status'], by_name(record)['web']['error']) == ('cold_started', RESTORE_MSG)
    assert record['status'] == 'complete'


def test_restore_failed_entry_without_a_result_keeps_the_run_failed():
    failed = manifest(entry('web', 'restore_failed'), entry('worker', 'checkpointed'), status='recovering')
    record = m.maintenance_restored(failed, loop((group(restore('worker')), batch(restored(restore('worker'), **RESTORED)))))
    assert record['status'] == 'restore_failed'


def test_restored_with_no_calls_completes():
    assert m.maintenance_restored(manifest(status='restoring'), [])['status'] == 'complete'
    # A loop over no groups, registered: skipped, no results.
    assert m.maintenance_restored(manifest(status='restoring'), {'results': [], 'skipped': True,
                                                                 'msg': 'No items in the list'})['status'] == 'complete'


def test_restore_results_must_be_batch_results():
    with pytest.raises(AnsibleFilterError, match='each entry names its container'):
        m.maintenance_restored(manifest(entry('web', 'checkpointed')), batch({'restored': True}))


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
        entry('web', 'restored', checkpoint_size=10500000, checkpoint_seconds=0.183, frozen_seconds=0.063941,
              restore_seconds=0.312, verified=True),
        entry('worker', 'cold_started', checkpoint_size=None, checkpoint_seconds=None, frozen_seconds=None,
              restore_seconds=0.05, verified=False),
        status='complete')
    # An entry without frozen_seconds (a manifest from before it, or the engine path): '-'.
    record['containers'].append({'container': 'a-much-longer-container-name', 'status': 'running',
                                 'checkpoint_size': 1, 'checkpoint_seconds': 0.1, 'restore_seconds': 0.0})
    assert m.maintenance_report_lines(record) == [
        'container                           size  checkpoint s  frozen s  restore s  outcome',
        'web                              10.5 MB         0.183     0.064      0.312  restored (verified)',
        'worker                                 -             -         -       0.05  cold_started',
        'a-much-longer-container-name      1 Byte           0.1         -          -  running',
        'run %s: complete' % RUN,
    ]


def test_report_of_a_failed_restore_and_an_unfinished_entry():
    record = manifest(entry('web', 'restore_failed', checkpoint_size=999, checkpoint_seconds=0.2, frozen_seconds=0.0014,
                            verified=None),
                      entry('worker', 'planned'), status='restore_failed')
    lines = m.maintenance_report_lines(record)
    assert lines[1].split() == ['web', '999', 'Bytes', '0.2', '0.001', '-', 'restore_failed']
    assert lines[2].split() == ['worker', '-', '-', '-', '-', 'planned']
    assert lines[-1] == 'run %s: restore_failed' % RUN


def test_report_of_no_containers():
    assert m.maintenance_report_lines(manifest(status='complete')) == [
        'container        size  checkpoint s  frozen s  restore s  outcome', 'run %s: complete' % RUN]


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
    record = m.maintenance_checkpointed(record, batch(checkpoint_ok(web), checkpoint_failed(worker, CRIU_TCP)))
    assert m.maintenance_state(record)['checkpoint_failed'][0]['container'] == 'worker'
    record = m.maintenance_mark(m.maintenance_mark(record, 'action'), 'restoring')
    todo = m.maintenance_restores(record, 'fail')
    assert [(r['container'], r['fallback']) for r in todo] == [('web', 'fail'), ('worker', 'cold_start')]
    groups = m.maintenance_restores(record, 'fail', grouped=True)
    assert [[r['container'] for r in g['containers']] for g in groups] == [['web'], ['worker']]
    record = m.maintenance_restored(record, loop((groups[0], batch(restored(todo[0], **RESTORED))),
                                                 (groups[1], batch(restored(todo[1], **RUNNING)))), finished='t')
    assert m.maintenance_state(record) == {'run_id': RUN, 'status': 'complete', 'finished': True, 'may_be_stopped': [],
                                           'checkpoint_failed': [], 'restore_failed': [], 'holders_down': [],
                                           'projects_failed': [], 'projects_skipped': []}
    assert 'restored (verified)' in m.maintenance_report_lines(record)[1]
    # How long web was frozen, from CRIU's statistics (the runtime path keeps them).
    assert m.maintenance_report_lines(record)[1].split()[:5] == ['web', '154.1', 'kB', '0.183', '0.064']


# -- network holders and containers that cannot be checkpointed --------------------------------------

HOLDER_ID = '6cd0d937ffae2911731bd49cef582bcb32493be0ab1f08b1c71876bf00d80292'
NETNS = ('Has its own network namespace (bridge) on Docker Engine 28.5.2+dfsg4: restoring a container that has its '
         'own network namespace ... fails before CRIU runs')

# checkpoint_preflight's `containers` on a Docker 28.5 host: a holder (its own namespace: not eligible there),
# web and worker in it, vpn on the bridge (not eligible).
PREFLIGHT_28 = [
    {'name': 'web-net', 'id': HOLDER_ID, 'eligible': False, 'reasons': [NETNS], 'network_mode': 'bridge',
     'network_holder': None, 'holder': True, 'restart_policy': {'Name': 'unless-stopped', 'MaximumRetryCount': 0}},
    {'name': 'web', 'id': WEB_ID, 'eligible': True, 'reasons': [], 'network_mode': 'container:' + HOLDER_ID,
     'network_holder': 'web-net', 'holder': False, 'restart_policy': {'Name': 'always', 'MaximumRetryCount': 0}},
    {'name': 'worker', 'id': WORKER_ID, 'eligible': True, 'reasons': [], 'network_mode': 'container:' + HOLDER_ID,
     'network_holder': 'web-net', 'holder': False, 'restart_policy': {'Name': 'no', 'MaximumRetryCount': 0}},
    {'name': 'vpn', 'id': VPN_ID, 'eligible': False, 'reasons': [NETNS], 'network_mode': 'bridge',
     'network_holder': None, 'holder': False, 'restart_policy': {'Name': 'no', 'MaximumRetryCount': 0}},
]


def test_plan_never_checkpoints_a_holder():
    plan = m.maintenance_plan(PREFLIGHT_28, CHECKPOINT)
    assert [e['container'] for e in plan['containers']] == ['web', 'worker']
    assert plan['holders'] == [{'name': 'web-net', 'id': HOLDER_ID, 'labelled': True, 'members': ['web', 'worker'],
                                'status': 'planned'}]
    assert plan['ineligible'] == [{'container': 'vpn', 'id': VPN_ID, 'reasons': [NETNS], 'status': 'skipped'}]


def test_plan_of_a_holder_that_is_eligible_on_an_older_engine():
    holder = dict(PREFLIGHT_28[0], eligible=True, reasons=[])
    plan = m.maintenance_plan([holder], CHECKPOINT)
    assert plan['containers'] == [] and plan['ineligible'] == []
    assert plan['holders'] == [{'name': 'web-net', 'id': HOLDER_ID, 'labelled': True, 'members': [], 'status': 'planned'}]


def test_plan_takes_a_container_others_join_for_a_holder_even_without_the_label():
    provider = dict(PREFLIGHT_28[0], holder=False, eligible=True, reasons=[])
    plan = m.maintenance_plan([provider, PREFLIGHT_28[1]], CHECKPOINT)
    assert [e['container'] for e in plan['containers']] == ['web']
    assert plan['holders'] == [{'name': 'web-net', 'id': HOLDER_ID, 'labelled': False, 'members': ['web'],
                                'status': 'planned'}]


def test_plan_names_the_holder_of_a_container_when_the_holder_was_not_selected():
    plan = m.maintenance_plan(PREFLIGHT_28[1:3], CHECKPOINT)
    assert plan['holders'] == [{'name': 'web-net', 'id': None, 'labelled': None, 'members': ['web', 'worker'],
                                'status': 'planned'}]


def test_plan_of_preflight_output_without_holder_fields():
    # checkpoint_preflight of cryo.docker 0.2.0 before network holders: no holder keys at all.
    plan = m.maintenance_plan(PREFLIGHT, CHECKPOINT)
    assert plan['holders'] == [] and [e['container'] for e in plan['containers']] == ['web', 'worker']


def holder_job(looped, **result):
    """One result of docker_network_holder (state started) in a loop over the manifest's holders."""
    out = {'changed': False, 'failed': False, 'ansible_loop_var': 'item', 'item': dict(looped)}
    out.update(result)
    return out


def with_holders(*holders, status='restoring'):
    record = manifest(entry('web', 'checkpointed'), entry('worker', 'checkpointed'), status=status)
    record['holders'] = [dict(h) for h in holders]
    record['ineligible'] = [{'container': 'vpn', 'id': VPN_ID, 'reasons': [NETNS], 'status': 'skipped'}]
    return record


WEB_NET = {'name': 'web-net', 'id': HOLDER_ID, 'labelled': True, 'members': ['web', 'worker'], 'status': 'planned'}
DB_NET = {'name': 'db-net', 'id': None, 'labelled': None, 'members': ['db'], 'status': 'planned'}
MISSING_MSG = ('Network holder db-net does not exist on the Docker Engine at unix:///run/host1.sock, so it cannot be '
               'started. Create it with state: present ...')


def test_holders_started_records_each_outcome():
    other = dict(WEB_NET, name='cache-net', id='c' * 64)
    broken = dict(WEB_NET, name='broken-net', id='b' * 64)
    record = with_holders(WEB_NET, DB_NET, other, broken, dict(WEB_NET, name='unlooked'))
    results = [
        holder_job(WEB_NET, changed=True, holder={'name': 'web-net', 'id': HOLDER_ID, 'running': True}),
        holder_job(other, holder={'name': 'cache-net', 'id': 'c' * 64, 'running': True}),
        holder_job(DB_NET, failed_when_result=False, exists=False, msg=MISSING_MSG),
        holder_job(broken, failed_when_result=False, msg=''),
    ]
    after = m.maintenance_holders_started(record, results)
    assert [(h['name'], h['status'], h.get('error')) for h in after['holders']] == [
        ('web-net', 'started', ''), ('db-net', 'missing', MISSING_MSG), ('cache-net', 'running', ''),
        ('broken-net', 'start_failed', 'the holder could not be started'), ('unlooked', 'planned', None)]
    assert record['holders'][0]['status'] == 'planned', 'the input must not change'
    assert [h['name'] for h in m.maintenance_state(after)['holders_down']] == ['db-net', 'broken-net']


def test_holders_started_learns_the_id_of_a_holder_that_was_not_selected():
    job = holder_job(DB_NET, holder={'name': 'db-net', 'id': 'd' * 64, 'running': True})
    [holder] = m.maintenance_holders_started(with_holders(DB_NET), [job])['holders']
    assert (holder['status'], holder['id']) == ('running', 'd' * 64)


def test_holders_started_on_a_manifest_without_holders():
    record = m.maintenance_holders_started(manifest(entry('web', 'checkpointed'), status='restoring'), [])
    assert record['holders'] == []
    assert m.maintenance_holders_started(LEGACY, None)['holders'] == []


def test_holders_started_wants_the_results_of_a_loop_over_the_holders():
    with pytest.raises(AnsibleFilterError, match='each with item.name'):
        m.maintenance_holders_started(with_holders(WEB_NET), [{'changed': True, 'item': 'web-net'}])
    with pytest.raises(AnsibleFilterError, match='must be a list'):
        m.maintenance_holders_started(with_holders(WEB_NET), {'results': []})


def test_a_manifest_whose_holders_are_not_a_list():
    with pytest.raises(AnsibleFilterError, match="the manifest's holders must be a list"):
        m.maintenance_state(dict(manifest(), holders='web-net'))


def test_report_shows_the_holders_and_the_skipped_containers():
    record = with_holders(dict(WEB_NET, status='started'), dict(DB_NET, status='missing'), status='restore_failed')
    record['containers'] = [entry('web', 'restored', checkpoint_size=1000, checkpoint_seconds=0.2,
                                  restore_seconds=0.3, verified=True)]
    assert m.maintenance_report_lines(record) == [
        'container        size  checkpoint s  frozen s  restore s  outcome',
        'web            1.0 kB           0.2         -        0.3  restored (verified)',
        'web-net             -             -         -          -  holder started',
        'db-net              -             -         -          -  holder missing',
        'vpn                 -             -         -          -  skipped (not checkpointed)',
        'run %s: restore_failed' % RUN,
    ]


def test_a_whole_run_on_docker_28_with_a_holder_that_is_gone_after_the_reboot():
    plan = m.maintenance_plan(PREFLIGHT_28, CHECKPOINT)
    record = m.maintenance_mark(dict(manifest(), containers=plan['containers'], holders=plan['holders'],
                                     ineligible=plan['ineligible']), 'checkpointing')
    web, worker = record['containers']
    record = m.maintenance_checkpointed(record, batch(checkpoint_ok(web), checkpoint_ok(worker)))
    record = m.maintenance_mark(m.maintenance_mark(record, 'action'), 'restoring')
    gone = ('Network holder web-net does not exist on the Docker Engine at unix:///run/host1.sock, so it cannot be '
            'started.')
    record = m.maintenance_holders_started(record, [holder_job(record['holders'][0], exists=False, msg=gone)])
    todo = m.maintenance_restores(record, 'fail')
    assert [r['container'] for r in todo] == ['web', 'worker'], 'the holders are never restored'
    in_gone_holder = ('Container web joins the network namespace of container web-net, which does not exist, so it '
                      'cannot be restored; nothing was done and checkpoint %s was kept.' % CHECKPOINT)
    [group_] = m.maintenance_restores(record, 'fail', grouped=True)
    record = m.maintenance_restored(record, loop((group_, batch(
        restore_failed(todo[0], in_gone_holder), restore_failed(todo[1], in_gone_holder.replace('web ', 'worker '))))))
    state = m.maintenance_state(record)
    assert state['status'] == 'restore_failed' and state['may_be_stopped'] == ['web', 'worker']
    assert [h['name'] for h in state['holders_down']] == ['web-net']
    assert 'web-net             -             -         -          -  holder missing' in m.maintenance_report_lines(record)


# -- Compose projects: checkpointed as one group, restored whole -------------------------------------

REDIS_ID = '41aa0ffee3463df60a235b0f47177b91c0c1d6c6715287195653dad083e95471'
COUNTER_ID = '52bb0ffee3463df60a235b0f47177b91c0c1d6c6715287195653dad083e95472'
URING_ID = '63cc0ffee3463df60a235b0f47177b91c0c1d6c6715287195653dad083e95473'
NO = {'Name': 'no', 'MaximumRetryCount': 0}
URING = ('container shop-uring-1: open files: uring (pid 7) holds an io_uring instance (anon_inode:[io_uring] in '
         '/proc/PID/fd): CRIU cannot dump it.')


def member(name, container_id, project='shop', eligible=True, reasons=()):
    """checkpoint_preflight's entry of a container with Compose's labels (its `project`)."""
    return {'name': name, 'id': container_id, 'eligible': eligible, 'reasons': list(reasons), 'restart_policy': NO,
            'project': project, 'holder': False, 'network_holder': None}


# A plain container and a Compose project of two (redis and a counter).
PREFLIGHT_SHOP = [
    {'name': 'web', 'id': WEB_ID, 'eligible': True, 'reasons': [], 'restart_policy': NO},
    member('shop-redis-1', REDIS_ID),
    member('shop-counter-1', COUNTER_ID),
]


def shop_run(preflight=None):
    plan = m.maintenance_plan(preflight or PREFLIGHT_SHOP, CHECKPOINT)
    return m.maintenance_mark(dict(manifest(), containers=plan['containers'], holders=plan['holders'],
                                   ineligible=plan['ineligible'], projects=plan['projects']), 'checkpointing')


def group_ok(call, frozen=0.412):
    """docker_checkpoint's result of a group call (containers + group: true) that checkpointed every member."""
    members = [dict(c) for c in call['containers']]
    return dict(batch(*[checkpoint_ok(c) for c in members]), ansible_loop_var='item', item=call,
                group={'project': None, 'members': [c['container'] for c in members], 'checkpoint': CHECKPOINT,
                       'frozen_seconds': frozen, 'leave_running': False})


REFUSED = ('Checkpoint %s of the group (shop-redis-1, shop-counter-1) was not taken: [shop-counter-1] Checkpoint '
           'failed: ... CRIU says: Connected TCP socket, consider using --tcp-established option. Every member was '
           'thawed and runs on where it was; what the others\' dumps wrote was removed.' % CHECKPOINT)


def group_refused(call, msg=REFUSED, running=True):
    """docker_checkpoint's failure of a refused group, registered with failed_when: false: no results."""
    return dict(call_failed(msg, failed_members=['shop-counter-1'], frozen_seconds=0.2, containers_running=running),
                ansible_loop_var='item', item=call)


def plain_ok(call):
    return dict(batch(*[checkpoint_ok(c) for c in call['containers']]), ansible_loop_var='item', item=call)


def test_plan_groups_a_project_and_keeps_the_plain_containers_as_they_were():
    plan = m.maintenance_plan(PREFLIGHT_SHOP, CHECKPOINT)
    assert plan['containers'][0] == {'container': 'web', 'id': WEB_ID, 'restart_policy': NO,
                                     'checkpoint': CHECKPOINT, 'status': 'planned'}
    assert [(e['container'], e['project'], e['status']) for e in plan['containers'][1:]] == [
        ('shop-redis-1', 'shop', 'planned'), ('shop-counter-1', 'shop', 'planned')]
    assert plan['projects'] == [{'project': 'shop', 'members': ['shop-redis-1', 'shop-counter-1'], 'status': 'planned',
                                 'reasons': [], 'frozen_seconds': None, 'error': ''}]
    assert plan['ineligible'] == []


def test_plan_skips_a_project_whole_when_one_member_cannot_be_checkpointed():
    preflight = PREFLIGHT_SHOP + [member('shop-uring-1', URING_ID, eligible=False, reasons=[URING])]
    plan = m.maintenance_plan(preflight, CHECKPOINT)
    assert {e['container']: e['status'] for e in plan['containers']} == {
        'web': 'planned', 'shop-redis-1': 'skipped', 'shop-counter-1': 'skipped', 'shop-uring-1': 'skipped'}
    [shop] = plan['projects']
    assert shop['status'] == 'skipped' and shop['reasons'] == ['shop-uring-1: ' + URING]
    assert 'a member of Compose project shop' in by_name(plan)['shop-redis-1']['reasons'][0]
    # The member is the project's business, not maintenance_on_ineligible's.
    assert plan['ineligible'] == []


def test_plan_of_two_projects_one_blocked():
    preflight = PREFLIGHT_SHOP + [member('blog-db-1', VPN_ID, project='blog', eligible=False, reasons=['x'])]
    plan = m.maintenance_plan(preflight, CHECKPOINT)
    assert [(p['project'], p['status']) for p in plan['projects']] == [('shop', 'planned'), ('blog', 'skipped')]


def test_checkpoints_one_group_call_per_project_then_the_others():
    record = shop_run()
    assert m.maintenance_checkpoints(record) == [
        {'project': 'shop', 'group': True, 'containers': [{'container': 'shop-redis-1', 'id': REDIS_ID},
                                                          {'container': 'shop-counter-1', 'id': COUNTER_ID}]},
        {'project': None, 'group': False, 'containers': [{'container': 'web', 'id': WEB_ID}]},
    ]


def test_checkpoints_leave_out_a_skipped_project_and_of_nothing():
    record = shop_run(PREFLIGHT_SHOP + [member('shop-uring-1', URING_ID, eligible=False, reasons=[URING])])
    assert m.maintenance_checkpoints(record) == [
        {'project': None, 'group': False, 'containers': [{'container': 'web', 'id': WEB_ID}]}]
    assert m.maintenance_checkpoints(manifest()) == []


def test_checkpoints_of_a_manifest_from_before_projects():
    record = manifest(entry('web'), entry('worker'))
    assert m.maintenance_checkpoints(record) == [
        {'project': None, 'group': False, 'containers': [{'container': 'web', 'id': WEB_ID},
                                                         {'container': 'worker', 'id': WORKER_ID}]}]


def test_checkpointed_records_the_group_freeze():
    record = shop_run()
    shop, plain = m.maintenance_checkpoints(record)
    record = m.maintenance_checkpointed(record, {'results': [group_ok(shop), plain_ok(plain)]})
    assert {e['container']: e['status'] for e in record['containers']} == {
        'web': 'checkpointed', 'shop-redis-1': 'checkpointed', 'shop-counter-1': 'checkpointed'}
    assert record['projects'][0]['status'] == 'checkpointed'
    assert record['projects'][0]['frozen_seconds'] == 0.412 and record['projects'][0]['error'] == ''
    state = m.maintenance_state(record)
    assert state['projects_failed'] == [] and state['checkpoint_failed'] == []


def test_a_refused_group_fails_the_project_whole_and_aborts():
    record = shop_run()
    shop, plain = m.maintenance_checkpoints(record)
    record = m.maintenance_checkpointed(record, {'results': [group_refused(shop), plain_ok(plain)]})
    entries = by_name(record)
    assert entries['shop-redis-1']['status'] == entries['shop-counter-1']['status'] == 'checkpoint_failed'
    assert entries['shop-redis-1']['error'] == REFUSED
    assert entries['web']['status'] == 'checkpointed'
    [project] = m.maintenance_state(record)['projects_failed']
    assert project['project'] == 'shop' and project['error'] == REFUSED and project['frozen_seconds'] == 0.2
    # The abort resumes web; the project's members never stopped.
    assert [g['containers'][0]['container'] for g in m.maintenance_restores(record, abort=True, grouped=True)] == ['web']


def test_a_refused_group_is_skipped_whole_when_allowed():
    record = shop_run()
    shop, plain = m.maintenance_checkpoints(record)
    record = m.maintenance_checkpointed(record, {'results': [group_refused(shop), plain_ok(plain)]},
                                        on_project_failure='skip')
    entries = by_name(record)
    assert entries['shop-redis-1']['status'] == entries['shop-counter-1']['status'] == 'skipped'
    assert entries['shop-counter-1']['error'] == REFUSED
    state = m.maintenance_state(record)
    assert state['projects_failed'] == [] and [p['project'] for p in state['projects_skipped']] == ['shop']
    assert state['checkpoint_failed'] == []
    # After the action only web is restored; the skipped project is never restored nor counted as stopped.
    record = m.maintenance_mark(record, 'action')
    assert m.maintenance_state(record)['may_be_stopped'] == ['web']
    assert [g['containers'][0]['container'] for g in m.maintenance_restores(record, grouped=True)] == ['web']


def test_a_refused_group_with_a_member_left_frozen_is_not_skipped():
    record = shop_run()
    shop, plain = m.maintenance_checkpoints(record)
    record = m.maintenance_checkpointed(record, {'results': [group_refused(shop, running=False), plain_ok(plain)]},
                                        on_project_failure='skip')
    assert [p['project'] for p in m.maintenance_state(record)['projects_failed']] == ['shop']


def test_checkpointed_refuses_an_unknown_project_policy():
    with pytest.raises(AnsibleFilterError, match='on_project_failure must be one of abort, skip'):
        m.maintenance_checkpointed(shop_run(), [], on_project_failure='cold_start')


def checkpointed_shop():
    record = shop_run()
    shop, plain = m.maintenance_checkpoints(record)
    record = m.maintenance_checkpointed(record, {'results': [group_ok(shop), plain_ok(plain)]})
    return m.maintenance_mark(m.maintenance_mark(record, 'action'), 'restoring')


def shop_restores(fallback='fail', allow_partial=False):
    return {'checkpoint': CHECKPOINT, 'fallback': fallback, 'project': 'shop', 'group': True,
            'allow_partial': allow_partial,
            'containers': [{'container': 'shop-redis-1', 'id': REDIS_ID, 'checkpoint': CHECKPOINT,
                            'fallback': fallback, 'project': 'shop'},
                           {'container': 'shop-counter-1', 'id': COUNTER_ID, 'checkpoint': CHECKPOINT,
                            'fallback': fallback, 'project': 'shop'}]}


def test_restores_one_group_call_per_project():
    record = checkpointed_shop()
    assert m.maintenance_restores(record, 'fail', grouped=True) == [
        {'checkpoint': CHECKPOINT, 'fallback': 'fail', 'containers': [
            {'container': 'web', 'id': WEB_ID, 'checkpoint': CHECKPOINT, 'fallback': 'fail'}]},
        shop_restores()]


def test_restores_of_a_project_with_cold_start_allow_partial():
    groups = m.maintenance_restores(checkpointed_shop(), 'cold_start', grouped=True)
    assert groups[1] == shop_restores('cold_start', allow_partial=True)


def test_restores_of_an_abort_resume_a_project_whole_whatever_it_takes():
    record = checkpointed_shop()
    groups = m.maintenance_restores(record, abort=True, grouped=True)
    assert groups[0] == shop_restores('cold_start', allow_partial=True)
    assert [r['container'] for r in groups[1]['containers']] == ['web']


def test_restores_put_the_projects_before_the_cold_starts():
    record = checkpointed_shop()
    by_name(record)['web'].update(status='checkpoint_failed')
    groups = m.maintenance_restores(record, 'fail', grouped=True)
    assert [(g.get('project'), g['fallback']) for g in groups] == [('shop', 'fail'), (None, 'cold_start')]


def test_a_project_restored_whole():
    record = checkpointed_shop()
    plain, shop = m.maintenance_restores(record, 'fail', grouped=True)
    redis, counter = shop['containers']
    record = m.maintenance_restored(record, loop((plain, batch(restored(plain['containers'][0], **RESTORED))),
                                                 (shop, batch(restored(redis, **RESTORED), restored(counter, **RESTORED),
                                                              group={'project': None,
                                                                     'members': ['shop-redis-1', 'shop-counter-1']}))))
    assert record['status'] == 'complete'
    assert record['projects'][0]['status'] == 'restored' and record['projects'][0]['frozen_seconds'] == 0.412
    lines = m.maintenance_report_lines(record)
    assert lines[2].endswith('restored (verified), project shop')
    assert lines[4].split() == ['shop', '-', '-', '0.412', '-', 'project', 'restored:', 'shop-redis-1,', 'shop-counter-1']


GROUP_RESTORE_FAILED = ('The group (shop-redis-1, shop-counter-1) was not restored: [shop-counter-1] Restore failed: ... '
                        'Every member is stopped again with its checkpoint (shop-redis-1 restored before it and stopped '
                        'again): never half an application.')


def test_a_project_that_cannot_be_restored_whole_stays_stopped_whole():
    record = checkpointed_shop()
    plain, shop = m.maintenance_restores(record, 'fail', grouped=True)
    record = m.maintenance_restored(record, loop(
        (plain, batch(restored(plain['containers'][0], **RESTORED))),
        (shop, call_failed(GROUP_RESTORE_FAILED, failed_members=['shop-counter-1'], stopped_again=['shop-redis-1']))))
    entries = by_name(record)
    assert entries['shop-redis-1']['status'] == entries['shop-counter-1']['status'] == 'restore_failed'
    assert entries['web']['status'] == 'restored'
    assert record['status'] == 'restore_failed'
    assert record['projects'][0]['status'] == 'restore_failed'
    assert record['projects'][0]['error'] == GROUP_RESTORE_FAILED
    assert m.maintenance_state(record)['may_be_stopped'] == ['shop-redis-1', 'shop-counter-1']
    # The recover playbook restores the project whole again.
    again = m.maintenance_restores(m.maintenance_mark(record, 'recovering'), 'fail', grouped=True)
    assert again == [shop_restores()]


def test_a_project_restored_in_part_with_cold_start():
    record = checkpointed_shop()
    plain, shop = m.maintenance_restores(record, 'cold_start', grouped=True)
    redis, counter = shop['containers']
    record = m.maintenance_restored(record, loop((plain, batch(restored(plain['containers'][0], **RESTORED))),
                                                 (shop, batch(restored(redis, **RESTORED),
                                                              restored(counter, **COLD_STARTED)))))
    assert record['projects'][0]['status'] == 'cold_started', 'a project is restored only when every member is'


def test_recovering_a_project_interrupted_while_checkpointing():
    record = shop_run()
    have = [{'container_id': REDIS_ID, 'name': CHECKPOINT}, {'container_id': COUNTER_ID, 'name': CHECKPOINT}]
    record = m.maintenance_recovering(record, have)
    assert record['projects'][0]['status'] == 'checkpointed'
    assert by_name(record)['web']['status'] == 'not_checkpointed'
    assert [g.get('project') for g in m.maintenance_restores(record, grouped=True)] == ['shop']


def test_report_of_a_skipped_project():
    record = shop_run(PREFLIGHT_SHOP + [member('shop-uring-1', URING_ID, eligible=False, reasons=[URING])])
    lines = m.maintenance_report_lines(record)
    assert lines[2].endswith('skipped (not checkpointed), project shop')
    assert 'project skipped: shop-redis-1, shop-counter-1, shop-uring-1' in lines[5]


def test_state_of_a_manifest_without_projects():
    state = m.maintenance_state(manifest(entry('web', 'checkpointed')))
    assert state['projects_failed'] == [] and state['projects_skipped'] == []


def test_project_statuses_are_container_statuses():
    assert set(m.PROJECT_STATUSES) <= set(m.CONTAINER_STATUSES)
    assert set(m.PROJECT_TO_RESTORE) <= set(m.TO_RESTORE)
