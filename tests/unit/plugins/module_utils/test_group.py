"""Groups (module_utils/_group.py): who is in a Compose project, the order its members come back in, the record
each member's checkpoint carries and how a restore knows the checkpoints are one group's; Freeze on a stub engine.

The labels are those Compose v2 writes (com.docker.compose.project, .service, .container-number, .oneoff and
.depends_on as "service:condition:restart,...").
"""

import hashlib
import os

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _group
from ansible_collections.cryo.docker.plugins.module_utils._common import ModuleError


def cid(name):
    return hashlib.sha256(name.encode()).hexdigest()


def member(name, service=None, project='shop', depends=None, network='shop_default', number=1, oneoff=False,
           labels=None):
    """An inspect as the engine returns it for a container Compose made."""
    found = {_group.PROJECT_LABEL: project, _group.NUMBER_LABEL: str(number),
             _group.ONEOFF_LABEL: 'True' if oneoff else 'False'}
    if service:
        found[_group.SERVICE_LABEL] = service
    if depends:
        found[_group.DEPENDS_LABEL] = depends
    found.update(labels or {})
    return dict(Id=cid(name), Name='/' + name, Config=dict(Labels=found), HostConfig=dict(NetworkMode=network),
                State=dict(Running=True, Paused=False))


REDIS = member('shop-redis-1', 'redis')
WORKER = member('shop-worker-1', 'worker', depends='redis:service_started:false')
WEB = member('shop-web-1', 'web', depends='worker:service_started:false,redis:service_healthy:true')


# -- dependency order ----------------------------------------------------------------------------

def test_depends_on_brings_dependencies_first():
    assert _group.dependency_order([WEB, WORKER, REDIS]) == ['shop-redis-1', 'shop-worker-1', 'shop-web-1']
    assert _group.dependency_order([REDIS, WEB, WORKER]) == ['shop-redis-1', 'shop-worker-1', 'shop-web-1']


def test_depends_on_label_is_read_as_compose_writes_it():
    assert _group.depends_on(WEB) == ['redis', 'worker']
    assert _group.depends_on(member('x', 'x', depends=' db:service_completed_successfully:false , ,cache:x:true'))\
        == ['cache', 'db']
    assert _group.depends_on(REDIS) == []
    assert _group.depends_on(dict(Config=dict(Labels=None))) == []


def test_without_dependencies_the_order_is_service_then_number_then_name():
    infos = [member('b-2', 'b', number=2), member('b-10', 'b', number=10), member('a-1', 'a'), member('plain')]
    # a container without a service label (a plain container in an explicit group) sorts first, by name
    assert _group.dependency_order(infos) == ['plain', 'a-1', 'b-2', 'b-10']


def test_a_scaled_service_is_needed_whole():
    workers = [member('shop-worker-%d' % n, 'worker', number=n, depends='redis:service_started:false')
               for n in (2, 1)]
    web = member('shop-web-1', 'web', depends='worker:service_started:false')
    order = _group.dependency_order([web] + workers + [REDIS])
    assert order == ['shop-redis-1', 'shop-worker-1', 'shop-worker-2', 'shop-web-1']
    assert _group.dependencies([web] + workers + [REDIS])['shop-web-1'] == {'shop-worker-1', 'shop-worker-2'}


def test_a_network_holder_comes_before_the_container_in_its_namespace():
    holder = member('shop-holder-1', 'zz-holder')
    by_id = member('shop-app-1', 'app', network='container:' + cid('shop-holder-1'))
    by_name = member('shop-side-1', 'side', network='container:shop-holder-1')
    order = _group.dependency_order([by_id, by_name, holder])
    assert order == ['shop-holder-1', 'shop-app-1', 'shop-side-1']
    assert _group.network_container(by_name) == 'shop-holder-1'
    assert _group.network_container(REDIS) is None
    assert _group.network_container(dict(HostConfig={})) is None


def test_a_network_holder_named_by_a_short_id_comes_first():
    holder = member('shop-holder-1', 'zz-holder')
    by_short_id = member('shop-tail-1', 'tail', network='container:' + cid('shop-holder-1')[:12])
    assert _group.dependency_order([by_short_id, holder]) == ['shop-holder-1', 'shop-tail-1']


def test_dependencies_outside_the_group_and_on_itself_are_left_out():
    lone = member('shop-web-1', 'web', depends='db:service_started:false,web:service_started:false',
                  network='container:somewhere-else')
    assert _group.dependencies([lone]) == {'shop-web-1': set()}
    assert _group.dependency_order([lone]) == ['shop-web-1']


def test_a_cycle_is_refused_naming_its_members():
    a = member('shop-a-1', 'a', depends='b:service_started:false')
    b = member('shop-b-1', 'b', depends='a:service_started:false')
    free = member('shop-c-1', 'c')
    with pytest.raises(ModuleError) as refused:
        _group.dependency_order([a, b, free])
    msg = refused.value.msg
    assert msg.startswith('The group cannot be ordered: shop-a-1, shop-b-1 depend on each other in a cycle')
    assert 'shop-c-1' not in msg and 'restore the containers one by one' in msg


def test_a_cycle_through_a_network_namespace_is_refused():
    a = member('a', 'a', network='container:b')
    b = member('b', 'b', depends='a:service_started:false')
    with pytest.raises(ModuleError, match='a, b depend on each other in a cycle'):
        _group.dependency_order([a, b])


# -- members of a Compose project --------------------------------------------------------------------

class ListingEngine:
    """containers() and find() of the engine, over inspects."""

    host = 'unix:///run/fake-docker.sock'

    def __init__(self, *infos):
        self.infos = {info['Id']: info for info in infos}

    def containers(self, all=True):  # pylint: disable=redefined-builtin
        assert all is True
        return [dict(Id=key, Names=[info['Name']], Labels=info['Config']['Labels']) for key, info in self.infos.items()]

    def find(self, container):
        return self.infos.get(container)


def test_members_are_the_project_s_containers_without_one_offs():
    run = member('shop-worker-run-1a2b', 'worker', oneoff=True)
    other = member('blog-web-1', 'web', project='blog')
    plain = dict(Id=cid('plain'), Name='/plain', Config=dict(Labels=None), HostConfig={}, State={})
    found = _group.members(ListingEngine(REDIS, run, other, plain, WEB, WORKER), 'shop')
    assert sorted(_group.name_of(info) for info in found) == ['shop-redis-1', 'shop-web-1', 'shop-worker-1']


def test_a_container_gone_between_list_and_inspect_is_left_out():
    engine = ListingEngine(REDIS, WORKER)
    engine.find = lambda container: None if container == WORKER['Id'] else REDIS
    assert [_group.name_of(info) for info in _group.members(engine, 'shop')] == ['shop-redis-1']


def test_a_project_without_containers_is_refused_clearly():
    with pytest.raises(ModuleError) as refused:
        _group.members(ListingEngine(member('blog-web-1', 'web', project='blog')), 'shop')
    msg = refused.value.msg
    assert msg.startswith('Compose project shop has no containers on the Docker Engine at unix:///run/fake-docker.sock')
    assert 'com.docker.compose.project=shop' in msg and 'docker compose ls' in msg
    assert refused.value.details == dict(project='shop')


def test_only_one_offs_is_no_project():
    with pytest.raises(ModuleError, match='Compose project shop has no containers'):
        _group.members(ListingEngine(member('shop-run-1', 'worker', oneoff=True)), 'shop')


# -- the group's record, and a restore that checks it ----------------------------------------------

def test_record_and_new_id():
    entry = _group.record('abc', 'shop', ('r', 'w'), 0.5)
    assert entry == dict(id='abc', project='shop', members=['r', 'w'], frozen_seconds=0.5)
    first, second = _group.new_id(), _group.new_id()
    assert first != second and len(first.split('-')[1]) == 8


GROUP = _group.record('g1', 'shop', ['shop-redis-1', 'shop-worker-1', 'shop-web-1'], 0.4)


def test_one_group_s_checkpoints_pass():
    _group.check_one_group('cp', {name: dict(GROUP) for name in GROUP['members']})


def test_a_member_checkpointed_alone_is_named():
    recorded = {name: dict(GROUP) for name in GROUP['members']}
    recorded['shop-web-1'] = None
    with pytest.raises(ModuleError) as refused:
        _group.check_one_group('cp', recorded)
    msg = refused.value.msg
    assert msg.startswith('Checkpoint cp of these containers is not one group\'s checkpoint: shop-web-1 were not '
                          'taken as a group.')
    assert 'nothing was restored' in msg and 'Restore them one by one' in msg


def test_no_member_in_a_group_is_refused():
    with pytest.raises(ModuleError, match='shop-redis-1, shop-worker-1 were not taken as a group'):
        _group.check_one_group('cp', {'shop-redis-1': None, 'shop-worker-1': {}})


def test_checkpoints_of_two_group_checkpoints_are_refused():
    recorded = {name: dict(GROUP) for name in GROUP['members']}
    recorded['shop-web-1'] = dict(GROUP, id='g2')
    with pytest.raises(ModuleError, match='they were taken by different group checkpoints'):
        _group.check_one_group('cp', recorded)


@pytest.mark.parametrize('names', [['shop-redis-1', 'shop-worker-1'],
                                   ['shop-redis-1', 'shop-worker-1', 'shop-web-1', 'shop-extra-1']],
                         ids=['part', 'more'])
def test_part_of_a_group_or_more_is_refused(names):
    with pytest.raises(ModuleError) as refused:
        _group.check_one_group('cp', {name: dict(GROUP) for name in names})
    msg = refused.value.msg
    assert msg.startswith('Checkpoint cp was taken of the group shop-redis-1, shop-web-1, shop-worker-1, not of '
                          'these containers (%s)' % ', '.join(sorted(names)))
    assert 'Name the same containers (or the project)' in msg


# -- Freeze ----------------------------------------------------------------------------------------

class FreezingEngine:
    """pause, unpause, kill and inspect, recorded; fail: {call: {container id}} that fail."""

    def __init__(self, fail=None):
        self.calls = []
        self.paused = set()
        self.fail = fail or {}

    def _do(self, call, container):
        self.calls.append((call, container))
        if container in self.fail.get(call, ()):
            raise ModuleError('%s of %s failed' % (call, container))

    def pause(self, container):
        self._do('pause', container)
        self.paused.add(container)

    def unpause(self, container):
        self._do('unpause', container)
        self.paused.discard(container)

    def kill(self, container):
        self._do('kill', container)
        self.paused.discard(container)

    def wait_stopped(self, container):
        self._do('wait_stopped', container)

    def inspect(self, container):
        self._do('inspect', container)
        return dict(State=dict(Paused=container in self.paused))


def test_freeze_pauses_all_then_thaws_all():
    engine = FreezingEngine()
    freeze = _group.Freeze(engine, ['a', 'b', 'c'])
    assert freeze.window() is None
    freeze.pause()
    assert engine.calls == [('pause', 'a'), ('pause', 'b'), ('pause', 'c')] and freeze.paused == ['a', 'b', 'c']
    assert freeze.window() >= 0
    assert freeze.thaw() == {}
    assert [call for call in engine.calls if call[0] == 'unpause'] == [('unpause', 'a'), ('unpause', 'b'),
                                                                       ('unpause', 'c')]
    assert engine.paused == set() and freeze.window() == freeze.window()


def test_freeze_kills_all_while_frozen_then_waits():
    engine = FreezingEngine()
    freeze = _group.Freeze(engine, ['a', 'b'])
    freeze.pause()
    freeze.kill()
    assert engine.calls[2:] == [('kill', 'a'), ('kill', 'b'), ('wait_stopped', 'a'), ('wait_stopped', 'b')]
    assert isinstance(freeze.window(), float)


def test_a_pause_that_fails_leaves_the_paused_ones_to_thaw():
    engine = FreezingEngine(fail={'pause': {'b'}})
    freeze = _group.Freeze(engine, ['a', 'b', 'c'])
    with pytest.raises(ModuleError):
        freeze.pause()
    assert freeze.paused == ['a']
    assert freeze.thaw() == {}
    assert ('unpause', 'a') in engine.calls and ('pause', 'c') not in engine.calls
    assert not [call for call in engine.calls if call[0] == 'unpause' and call[1] != 'a']


def test_thaw_unpauses_only_the_paused_and_says_which_could_not_be():
    engine = FreezingEngine(fail={'unpause': {'b'}})
    freeze = _group.Freeze(engine, ['a', 'b', 'c'])
    freeze.pause()
    engine.paused.discard('c')  # CRIU's dump of c left it thawed
    assert freeze.thaw() == {'b': 'unpause of b failed'}
    assert ('unpause', 'c') not in engine.calls and ('unpause', 'a') in engine.calls


def test_project_of_a_container_by_its_labels():
    from ansible_collections.cryo.docker.plugins.module_utils._group import project_of
    assert project_of({'com.docker.compose.project': 'shop'}) == 'shop'
    assert project_of({'com.docker.compose.project': 'shop', 'com.docker.compose.oneoff': 'True'}) is None
    assert project_of({'com.docker.compose.project': 'shop', 'com.docker.compose.oneoff': 'False'}) == 'shop'
    assert project_of({}) is None and project_of(None) is None


class LockModule:
    """module.run_command and get_bin_path for NetworkLock: iptables answers as it would, rules kept per namespace."""

    def __init__(self, missing=(), fail_insert=False):
        self.calls, self.rules, self.missing, self.fail_insert = [], {}, missing, fail_insert

    def get_bin_path(self, name, opt_dirs=None):
        return None if name in self.missing else '/usr/sbin/' + name

    def run_command(self, argv, environ_update=None):
        self.calls.append(argv)
        if argv[2] == '/usr/sbin/ip':
            assert argv[3:] == ['neigh', 'flush', 'all']
            self.flushed = getattr(self, 'flushed', 0) + 1
            return 0, '', ''
        namespace, action = argv[1], argv[4]
        assert argv[2:4] == ['/usr/sbin/iptables', '-w'] and argv[5:] == _group.NetworkLock.RULE
        if action == '-I':
            if self.fail_insert:
                return 2, '', "iptables v1.8.9 (nf_tables): Couldn't load match `comment'"
            self.rules[namespace] = self.rules.get(namespace, 0) + 1
            return 0, '', ''
        if self.rules.get(namespace):
            self.rules[namespace] -= 1
            return 0, '', ''
        return 1, '', 'iptables: Bad rule (does a matching rule exist in that chain?).'


def test_network_lock_locks_each_namespace_once_and_unlocks_it():
    module = LockModule()
    lock = _group.NetworkLock(module)
    pid = os.getpid()
    lock.lock('shop-redis-1', pid)
    lock.lock('shop-web-1', pid)  # the same network namespace (a member joined to another's): one rule
    assert module.rules == {'--net=/proc/%d/ns/net' % pid: 1} and lock.problems == [] and module.flushed == 1
    lock.unlock()
    assert module.rules == {'--net=/proc/%d/ns/net' % pid: 0} and lock.locked == {}


def test_network_lock_says_why_it_could_not_lock():
    missing = _group.NetworkLock(LockModule(missing=('iptables',)))
    missing.lock('shop-redis-1', os.getpid())
    assert missing.problems == ['nsenter, iptables or ip is not installed'] and missing.locked == {}
    refused = _group.NetworkLock(LockModule(fail_insert=True))
    refused.lock('shop-redis-1', os.getpid())
    assert refused.problems == ["shop-redis-1: iptables exited 2: iptables v1.8.9 (nf_tables): Couldn't load match "
                                "`comment'"] and refused.locked == {}
    gone = _group.NetworkLock(LockModule())
    gone.lock('shop-worker-1', 2 ** 22 + 7)  # no such process
    assert gone.problems[0].startswith('shop-worker-1: ') and gone.locked == {}
