"""Groups through docker_checkpoint and docker_restore against a fake engine: a Compose project (and containers with
group: true) checkpointed as one point in time, restored whole in dependency order, or not at all.

The project `shop` is what Compose v2 makes of redis, a worker that depends on it and a web server that depends on
both: containers labelled com.docker.compose.project/service/container-number/depends_on, with a `docker compose
run` one-off beside them and a container of another project.
"""

import json
import os

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.module_utils import _take
from ansible_collections.cryo.docker.plugins.modules import docker_checkpoint, docker_restore

from fake_engine import DOCKER_HOST, LAYOUT, failed_clearly, read, run_module, warnings_of

MEMBERS = ['shop-redis-1', 'shop-worker-1', 'shop-web-1']
ALWAYS = dict(Name='always', MaximumRetryCount=0)


def compose_labels(service, project='shop', depends=None, oneoff=False, number=1):
    labels = {'com.docker.compose.project': project, 'com.docker.compose.service': service,
              'com.docker.compose.container-number': str(number), 'com.docker.compose.oneoff': str(oneoff)}
    if depends:
        labels['com.docker.compose.depends_on'] = depends
    return labels


@pytest.fixture(autouse=True)
def one_engine(engine, monkeypatch):
    """The members' dumps run on connections of their own (one per thread): the fake engine too."""
    monkeypatch.setattr(_take, 'connect', lambda params: engine)


@pytest.fixture
def shop(engine):
    """The project's containers by service (web is made first: the order comes from depends_on), a one-off run of
    the worker and a container of another project; redis has restart policy always."""
    made = dict(
        web=engine.add('shop-web-1', labels=compose_labels(
            'web', depends='worker:service_started:false,redis:service_started:false')),
        worker=engine.add('shop-worker-1', labels=compose_labels('worker', depends='redis:service_started:false')),
        redis=engine.add('shop-redis-1', restart_policy='always', labels=compose_labels('redis')),
        oneoff=engine.add('shop-worker-run-5e1f', labels=compose_labels('worker', oneoff=True)),
        other=engine.add('blog-web-1', labels=compose_labels('web', project='blog')))
    return made


def run(capsys, module, args):
    """module on the project shop (unless containers are given), checkpoint cp."""
    check_mode = args.pop('check_mode', False)
    args.setdefault('docker_host', DOCKER_HOST)
    args.setdefault('checkpoint', 'cp')
    if 'containers' not in args and 'container' not in args:
        args.setdefault('project', 'shop')
    return run_module(capsys, module, args, check_mode=check_mode)


def checkpoint(capsys, **args):
    return run(capsys, docker_checkpoint, args)


def restore(capsys, **args):
    return run(capsys, docker_restore, args)


def members(shop):
    return [shop['redis'], shop['worker'], shop['web']]


def metadata(engine, container, name='cp'):
    return json.loads(read(os.path.join(engine.checkpoint_path(container, name), 'cryo-checkpoint.json')))


def left_on_disk(engine, container):
    """What is in the container's checkpoints directory (temporary names too)."""
    base = store.engine_dir(engine.root, container.id)
    return sorted(os.listdir(base)) if os.path.isdir(base) else []


def calls_named(engine, *names):
    return [call for call in engine.changes() if call[0] in names]


def first_index(calls, name):
    return next(index for index, call in enumerate(calls) if call[0] == name)


def last_index(calls, name):
    return max(index for index, call in enumerate(calls) if call[0] == name)


def by_id(shop):
    return {container.id: name for name, container in shop.items()}


# -- a group checkpoint -----------------------------------------------------------------------------

def test_every_member_is_paused_before_the_first_dump_and_killed_after_the_last(engine, shop, capsys):
    pids = {name: shop[name].pid for name in shop}
    result = checkpoint(capsys)
    assert result['changed'] is True and 'failed' not in result, result
    changes = engine.changes()
    names = by_id(shop)
    pauses = [names[call[1]] for call in changes if call[0] == 'pause']
    creates = [call for call in changes if call[0] == 'create_checkpoint']
    kills = [names[call[1]] for call in changes if call[0] == 'kill']
    assert sorted(pauses) == ['redis', 'web', 'worker'] and sorted(kills) == ['redis', 'web', 'worker']
    assert last_index(changes, 'pause') < first_index(changes, 'create_checkpoint')
    assert last_index(changes, 'create_checkpoint') < first_index(changes, 'kill')
    assert all(call[3] is True for call in creates), 'each member is dumped left running (frozen still)'
    assert sorted(names[call[1]] for call in creates) == ['redis', 'web', 'worker']
    assert not calls_named(engine, 'unpause')
    # redis's restart policy always is held before the group is frozen, so that the kill restarts nothing
    assert changes.index(('set_restart_policy', shop['redis'].id, 'no', 0)) < first_index(changes, 'pause')
    for container in members(shop):
        assert container.status == 'exited' and container.exit_code == 137 and not container.running
        assert left_on_disk(engine, container) == ['cp']
    assert shop['redis'].restart_policy == dict(Name='no', MaximumRetryCount=0)
    # the one-off and the other project are left alone
    for name in ('oneoff', 'other'):
        assert shop[name].running and shop[name].pid == pids[name] and left_on_disk(engine, shop[name]) == []
    group = result['group']
    assert group == dict(project='shop', members=MEMBERS, checkpoint='cp', leave_running=False,
                         frozen_seconds=group['frozen_seconds'])
    assert isinstance(group['frozen_seconds'], float) and 0 <= group['frozen_seconds'] < 5
    assert [entry['container'] for entry in result['results']] == MEMBERS
    assert all(entry['changed'] for entry in result['results'])


def test_each_member_s_checkpoint_records_the_group(engine, shop, capsys):
    result = checkpoint(capsys)
    records = [metadata(engine, container) for container in members(shop)]
    groups = [entry['group'] for entry in records]
    assert groups[0]['id'] and all(entry == groups[0] for entry in groups)
    assert groups[0] == dict(id=groups[0]['id'], project='shop', members=MEMBERS,
                             frozen_seconds=result['group']['frozen_seconds'])
    assert records[0]['restart_policy'] == ALWAYS, 'the policy before the hold is what a restore puts back'
    assert all(entry['leave_running'] is False for entry in records)


def test_leave_running_thaws_every_member_together(engine, shop, capsys):
    pids = {name: shop[name].pid for name in shop}
    result = checkpoint(capsys, leave_running=True)
    assert result['changed'] is True and result['group']['leave_running'] is True
    changes = engine.changes()
    assert last_index(changes, 'pause') < first_index(changes, 'create_checkpoint')
    assert last_index(changes, 'create_checkpoint') < first_index(changes, 'unpause')
    assert len(calls_named(engine, 'unpause')) == 3 and not calls_named(engine, 'kill')
    assert not calls_named(engine, 'set_restart_policy'), 'nothing stops: no policy is held'
    for name in ('redis', 'worker', 'web'):
        state = shop[name].inspect()['State']
        assert state['Running'] and not state['Paused'] and shop[name].pid == pids[name]
    assert isinstance(result['group']['frozen_seconds'], float)


def test_containers_marked_as_a_group_are_ordered_by_their_network(engine, capsys):
    holder = engine.add('holder')
    app = engine.add('app', network='container:' + holder.id)
    lone = engine.add('aaa-lone')
    result = checkpoint(capsys, containers=['app', 'aaa-lone', 'holder'], group=True)
    assert result['changed'] is True, result
    assert result['group']['project'] is None
    assert result['group']['members'] == ['aaa-lone', 'holder', 'app']
    assert [entry['container'] for entry in result['results']] == ['aaa-lone', 'holder', 'app']
    assert metadata(engine, app)['group']['members'] == ['aaa-lone', 'holder', 'app']
    assert metadata(engine, lone)['group']['project'] is None


def test_a_member_that_cannot_be_dumped_thaws_the_group_and_removes_the_others(engine, shop, capsys):
    pids = {name: shop[name].pid for name in shop}
    engine.failing = {'shop-worker-1': 'criu'}
    result = checkpoint(capsys)
    msg = failed_clearly(result, 'Checkpoint cp of the group Compose project shop was not taken: [shop-worker-1] '
                                 'Checkpoint cp of container shop-worker-1 failed: ')
    assert msg.endswith('Every member was thawed and runs on where it was; what the others\' dumps wrote was removed.')
    assert 'Connected TCP socket, consider using --tcp-established option' in msg
    assert result['failed_members'] == ['shop-worker-1'] and result['containers_running'] is True
    assert isinstance(result['frozen_seconds'], float)
    assert not calls_named(engine, 'kill')
    assert len(calls_named(engine, 'pause')) == 3 and len(calls_named(engine, 'unpause')) == 3
    for name in ('redis', 'worker', 'web'):
        state = shop[name].inspect()['State']
        assert state['Running'] and not state['Paused'] and shop[name].pid == pids[name], name
        assert left_on_disk(engine, shop[name]) == [], 'no checkpoint (nor its temporary name) is left'
        assert store.read_hold(engine.root, shop[name].id) is None
    assert shop['redis'].restart_policy == ALWAYS


def test_a_member_that_cannot_be_paused_refuses_the_group(engine, shop, capsys):
    real_pause = engine.pause

    def pause(container):
        if container == shop['worker'].id:  # it exited between the plan and the freeze: the engine's 409
            raise engine._answer(409, 'Container %s is not running' % container, container)
        return real_pause(container)
    engine.pause = pause
    result = checkpoint(capsys)
    failed_clearly(result, 'Checkpoint cp of the group Compose project shop was not taken: [shop-worker-1] ')
    assert result['failed_members'] == ['shop-worker-1']
    assert not calls_named(engine, 'create_checkpoint', 'kill')
    for name in ('redis', 'worker', 'web'):
        assert not shop[name].inspect()['State']['Paused'] and left_on_disk(engine, shop[name]) == []
    assert shop['redis'].restart_policy == ALWAYS


def test_a_member_that_fails_its_plan_refuses_the_group_before_anything(engine, shop, capsys):
    engine._stop(shop['web'], 0)
    result = checkpoint(capsys)
    msg = failed_clearly(result, 'Checkpoint of the group Compose project shop was not done, and nothing was changed: '
                                 '[shop-web-1] Container shop-web-1 is exited')
    assert msg.endswith(' whole or not at all.')
    assert result['failed_members'] == ['shop-web-1']
    assert engine.changes() == []
    assert shop['redis'].running and shop['worker'].running


def test_a_member_with_the_checkpoint_already_refuses_a_mixed_group(engine, shop, capsys):
    engine.take(shop['redis'], 'cp', leave_running=True)
    result = checkpoint(capsys)
    failed_clearly(result, 'Checkpoint cp of the group Compose project shop was not taken, and nothing was changed: '
                           'shop-redis-1 already has it and shop-worker-1, shop-web-1 not.')
    assert result['members_with_checkpoint'] == ['shop-redis-1']
    assert engine.changes() == []
    forced = checkpoint(capsys, force=True)
    assert forced['changed'] is True and 'failed' not in forced, forced
    assert len({metadata(engine, container)['group']['id'] for container in members(shop)}) == 1


def test_check_mode_changes_nothing(engine, shop, capsys):
    result = checkpoint(capsys, check_mode=True)
    assert result['changed'] is True and 'failed' not in result
    assert engine.changes() == []
    assert result['group']['members'] == MEMBERS and result['group']['frozen_seconds'] is None
    assert all(shop[name].running for name in ('redis', 'worker', 'web'))


def second_run(engine, capsys, step):
    """step run twice: the second run's result, which changed nothing."""
    step(capsys)
    engine.calls = []
    again = step(capsys)
    assert again['changed'] is False and 'failed' not in again, again
    assert engine.changes() == []
    return again


def test_a_second_run_is_unchanged(engine, shop, capsys):
    again = second_run(engine, capsys, checkpoint)
    assert again['group']['frozen_seconds'] is None and again['group']['members'] == MEMBERS


def test_state_absent_removes_every_member_s_checkpoint(engine, shop, capsys):
    checkpoint(capsys, leave_running=True)
    engine.calls = []
    result = checkpoint(capsys, state='absent')
    assert result['changed'] is True and 'failed' not in result
    assert sorted(call[1] for call in calls_named(engine, 'delete_checkpoint')) == sorted(
        container.id for container in members(shop))
    assert not calls_named(engine, 'pause', 'kill')
    assert all(left_on_disk(engine, container) == [] for container in members(shop))


def test_a_project_without_containers_is_refused(engine, shop, capsys):
    result = checkpoint(capsys, project='nothere')
    failed_clearly(result, 'Compose project nothere has no containers on the Docker Engine at %s' % DOCKER_HOST)
    assert engine.changes() == []


def test_group_with_one_container_is_refused(engine, shop, capsys):
    result = checkpoint(capsys, container='shop-web-1', group=True)
    failed_clearly(result, 'group: true needs the containers of the group in containers')
    assert engine.changes() == []


def test_project_and_containers_are_mutually_exclusive(engine, shop, capsys):
    result = checkpoint(capsys, project='shop', containers=['shop-web-1'])
    assert result['failed'] is True and 'mutually exclusive' in result['msg']
    assert engine.changes() == []


# -- a group restore --------------------------------------------------------------------------------

@pytest.fixture
def taken(engine, shop, capsys):
    """The project checkpointed as a group (cp): every member exited, redis's policy always held at no."""
    result = checkpoint(capsys)
    assert result['changed'] is True and 'failed' not in result, result
    engine.calls = []
    return shop


def test_restore_brings_members_back_in_dependency_order_then_concludes(engine, taken, capsys):
    result = restore(capsys, keep_checkpoint=False)
    assert result['changed'] is True and 'failed' not in result, result
    changes = engine.changes()
    names = by_id(taken)
    starts = [names[call[1]] for call in changes if call[0] == 'start_from_checkpoint']
    assert starts == ['redis', 'worker', 'web']
    # the policy back and the checkpoints removed only after every member was verified
    assert changes.index(('set_restart_policy', taken['redis'].id, 'always', 0)) > last_index(
        changes, 'start_from_checkpoint')
    assert first_index(changes, 'delete_checkpoint') > last_index(changes, 'start_from_checkpoint')
    assert [entry['container']['name'] for entry in result['results']] == MEMBERS
    assert all(entry['verified'] is True and entry['restored'] is True for entry in result['results'])
    assert result['group'] == dict(project='shop', members=MEMBERS)
    for container in members(taken):
        assert container.running and engine.pid_layout(container) == LAYOUT
        assert left_on_disk(engine, container) == []
    assert taken['redis'].restart_policy == ALWAYS
    assert not warnings_of(result)


def test_a_second_restore_is_unchanged(engine, taken, capsys):
    again = second_run(engine, capsys, restore)
    assert all(entry['verified'] is True for entry in again['results'])


def test_restore_check_mode_changes_nothing(engine, taken, capsys):
    result = restore(capsys, check_mode=True)
    assert result['changed'] is True and engine.changes() == []
    assert not any(container.running for container in members(taken))


def test_a_member_that_cannot_be_restored_stops_the_ones_before_it(engine, taken, capsys):
    engine.restore_failing = {'shop-web-1': 'criu'}
    result = restore(capsys, keep_checkpoint=False)
    msg = failed_clearly(result, 'The group Compose project shop was not restored: [shop-web-1] Restore of container '
                                 'shop-web-1 from checkpoint cp failed: ')
    assert 'Every member is stopped again with its checkpoint (shop-redis-1, shop-worker-1 restored before it and ' \
           'stopped again)' in msg
    assert result['failed_members'] == ['shop-web-1']
    assert result['stopped_again'] == ['shop-redis-1', 'shop-worker-1']
    names = by_id(taken)
    assert [names[call[1]] for call in calls_named(engine, 'kill')] == ['redis', 'worker']
    assert not calls_named(engine, 'delete_checkpoint'), 'keep_checkpoint: false removes nothing of a failed group'
    for container in members(taken):
        assert not container.running and left_on_disk(engine, container) == ['cp']
    assert taken['redis'].restart_policy == dict(Name='no', MaximumRetryCount=0), 'still held: nothing runs'
    # the cause fixed, the same task brings the whole group back
    engine.restore_failing = {}
    engine.calls = []
    again = restore(capsys)
    assert again['changed'] is True and 'failed' not in again, again
    assert all(container.running for container in members(taken))
    assert taken['redis'].restart_policy == ALWAYS


def test_the_first_member_failing_restores_none(engine, taken, capsys):
    engine.restore_failing = {'shop-redis-1': 'criu'}
    result = restore(capsys)
    msg = failed_clearly(result, 'The group Compose project shop was not restored: [shop-redis-1] ')
    assert '(none was restored before it)' in msg and result['stopped_again'] == []
    assert [call[1] for call in calls_named(engine, 'start_from_checkpoint')] == [taken['redis'].id]
    assert not any(container.running for container in members(taken))


def test_allow_partial_restores_the_others(engine, taken, capsys):
    engine.restore_failing = {'shop-worker-1': 'criu'}
    result = restore(capsys, allow_partial=True)
    assert result['failed'] is True
    assert 'shop-worker-1' in result['msg'] and 'Traceback' not in result['msg']
    assert any('came back in part (allow_partial): shop-worker-1 could not be restored' in warning
               for warning in warnings_of(result))
    assert taken['redis'].running and taken['web'].running and not taken['worker'].running
    assert not calls_named(engine, 'kill')
    assert taken['redis'].restart_policy == ALWAYS, 'a restored member is concluded'
    assert left_on_disk(engine, taken['worker']) == ['cp']


def test_checkpoints_taken_one_by_one_are_not_a_group(engine, shop, capsys):
    for container in members(shop):
        result = checkpoint(capsys, container=container.name)
        assert result['changed'] is True
    engine.calls = []
    result = restore(capsys)
    failed_clearly(result, 'Checkpoint cp of these containers is not one group\'s checkpoint: shop-redis-1, '
                           'shop-web-1, shop-worker-1 were not taken as a group.')
    assert engine.changes() == []
    alone = restore(capsys, containers=MEMBERS)
    assert alone['changed'] is True and 'failed' not in alone, 'one by one, they restore as before'


def test_part_of_a_group_is_not_restored_as_a_group(engine, taken, capsys):
    result = restore(capsys, containers=['shop-redis-1', 'shop-worker-1'], group=True)
    failed_clearly(result, 'Checkpoint cp was taken of the group shop-redis-1, shop-web-1, shop-worker-1, not of '
                           'these containers (shop-redis-1, shop-worker-1)')
    assert engine.changes() == []


def test_checkpoints_of_two_group_checkpoints_are_refused(engine, shop, capsys):
    first = checkpoint(capsys, containers=['shop-redis-1', 'shop-worker-1'], group=True)
    second = checkpoint(capsys, containers=['shop-web-1'], group=True)
    assert first['changed'] and second['changed']
    engine.calls = []
    result = restore(capsys)
    failed_clearly(result, 'Checkpoint cp of these containers is not one group\'s checkpoint: they were taken by '
                           'different group checkpoints')
    assert engine.changes() == []


def test_fallback_cold_start_is_refused_for_a_group(engine, taken, capsys):
    result = restore(capsys, fallback='cold_start')
    failed_clearly(result, 'The group Compose project shop was not restored, and nothing was changed: fallback: '
                           'cold_start would start a member afresh')
    assert engine.changes() == []


def test_fallback_cold_start_with_allow_partial_starts_the_failing_member_afresh(engine, taken, capsys):
    engine.restore_failing = {'shop-web-1': 'criu'}
    result = restore(capsys, fallback='cold_start', allow_partial=True)
    assert result['changed'] is True
    web = result['results'][2]
    assert web['fallback_used'] is True and web['verified'] is False
    assert all(container.running for container in members(taken))
    assert [entry['verified'] for entry in result['results'][:2]] == [True, True]


def test_a_member_running_afresh_refuses_the_group(engine, taken, capsys):
    engine.start_fresh(taken['web'])
    result = restore(capsys)
    failed_clearly(result, 'The group Compose project shop was not restored, and nothing was changed: shop-web-1 is '
                           'running, not from checkpoint cp, while shop-redis-1, shop-worker-1 would be restored')
    assert engine.changes() == []
    forced = restore(capsys, force=True)
    assert forced['changed'] is True and 'failed' not in forced, forced
    assert all(engine.pid_layout(container) == LAYOUT for container in members(taken))


def test_the_failed_member_is_not_told_to_unpause_what_the_group_thaws(engine, shop, capsys):
    engine.failing = {'shop-worker-1': 'criu'}
    msg = failed_clearly(checkpoint(capsys), 'Checkpoint cp of the group Compose project shop was not taken: ')
    assert 'docker unpause' not in msg and 'is paused' not in msg, msg
    assert ' The container is still running; nothing was lost.' in msg


def test_a_member_the_failed_dump_killed_is_not_said_to_run_on(engine, shop, capsys):
    engine.failing = {'shop-worker-1': 'criu'}
    engine.checkpoint_kills = True
    result = checkpoint(capsys)
    msg = failed_clearly(result, 'Checkpoint cp of the group Compose project shop was not taken: [shop-worker-1] ')
    assert not shop['worker'].running and shop['redis'].running and shop['web'].running
    assert result['containers_running'] is False
    assert 'Every member was thawed and runs on' not in msg
