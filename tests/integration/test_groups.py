"""Issue 23's acceptance for groups, on the main engine: a Compose project checkpointed as one point in time and
brought back whole.

The project is what `docker compose up` makes of three services, created here through the Engine API with the
labels Compose writes (no `docker compose` binary): redis (cryo-test/redis:7, data in memory), a worker
(cryo-test/busybox:1) that RPUSHes 0, 1, 2 ... to redis every 0.2 s over ONE TCP connection it keeps open (nc), and
a web server (cryo-test/nginx:1, stub_status on /status), on a network of the project's own. What proves the
application resumed as one:
- the worker's connection is the same one after the restore: redis's CLIENT LIST shows the same client id, its
  age carrying on, and the list goes on growing through it;
- nothing written before the checkpoint is lost and nothing was written twice: the list is 0, 1, 2 ... with no
  gap (a worker started afresh would push 0 again);
- nothing restarted: redis's run_id, the worker's list, nginx's stub_status `accepts` carry on; every member's
  restore verified (the same PID 1).
CRIU needs tcp_established for the members with an established connection (redis and the worker), at the
checkpoint and at the restore (recorded in the checkpoint).

Also: one member that CRIU cannot dump (an io_uring) refuses the group with every member running on; one member
that cannot be restored leaves every member stopped with its checkpoint, and the same task brings the group back
once the cause is gone. The freeze windows (the group's, and each member's checkpointed one by one) are printed.

Ten group restores in a row show the race a single restore only sometimes meets (about one restore in eight on the
test bed, December 2026): redis, restored first, sends to the worker's address while the worker's new network
namespace has it but not yet its restored socket; that kernel answers with a reset, the worker's nc ends and its
restart policy starts it afresh. Dropping TCP between the members' addresses on the host for the length of the
group restore (as CRIU locks one container's network) kept the connection through 20 restores of 20.
"""

import os
import socket
import time
import urllib.request
import uuid

import docker
import pytest

import build_apps
from helpers import call_module, checkpoint_path, checkpoints, free_port, ok, state, wait_http

REDIS = build_apps.APPS['redis']
NGINX = build_apps.APPS['nginx']
URING = build_apps.APPS['uring']
WORKER = ('i=0; while true; do printf "RPUSH log %s\\r\\n" $i; i=$((i+1)); sleep 0.2; done '
          '| nc redis 6379 > /dev/null')
TCP = dict(tcp_established=True)


def compose_labels(project, service, depends=None, oneoff=False):
    """The labels Compose v2 writes on a service's container."""
    labels = {'com.docker.compose.project': project, 'com.docker.compose.service': service,
              'com.docker.compose.container-number': '1', 'com.docker.compose.oneoff': str(oneoff),
              'com.docker.compose.version': '2.29.7'}
    if depends:
        labels['com.docker.compose.depends_on'] = depends
    return labels


# -- redis over a socket to its container's IP (RESP) --------------------------------------------------------------

def resp(reader):
    line = reader.readline()
    kind, rest = line[:1], line[1:-2]
    if kind in (b'+', b'-'):
        assert kind == b'+', 'redis error: %s' % rest.decode()
        return rest.decode()
    if kind == b':':
        return int(rest)
    if kind == b'$':
        return None if int(rest) < 0 else reader.read(int(rest) + 2)[:-2]
    if kind == b'*':
        return [resp(reader) for _item in range(int(rest))]
    raise ConnectionError('not a redis reply: %r' % line)


def redis(ip, *args):
    """One command on a new connection to redis at ip:6379; its reply."""
    with socket.create_connection((ip, 6379), timeout=5) as sock, sock.makefile('rb') as reader:
        sock.sendall(b'*%d\r\n' % len(args) + b''.join(b'$%d\r\n%s\r\n' % (len(str(arg)), str(arg).encode())
                                                       for arg in args))
        return resp(reader)


def wait_redis(ip, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if redis(ip, 'PING') == 'PONG':
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def pushed(ip):
    """The worker's list: every number it pushed, in order."""
    return [int(item) for item in redis(ip, 'LRANGE', 'log', 0, -1)]


def assert_contiguous(numbers, at_least):
    assert len(numbers) >= at_least, 'the list lost what was written before the checkpoint: %d < %d' % (
        len(numbers), at_least)
    assert numbers == list(range(len(numbers))), 'not 0, 1, 2 ... without a gap: %s' % [
        (index, value) for index, value in enumerate(numbers) if index != value][:5]


def wait_pushed(ip, count, timeout=15):
    """Wait until the list holds count numbers; its length."""
    deadline = time.monotonic() + timeout
    while True:
        length = redis(ip, 'LLEN', 'log')
        if length >= count:
            return length
        assert time.monotonic() < deadline, 'the worker pushed nothing more: %d < %d' % (length, count)
        time.sleep(0.1)


def connection_of(redis_ip, worker_ip):
    """redis's CLIENT LIST entry of the worker's connection ({field: value}), or None."""
    for line in redis(redis_ip, 'CLIENT', 'LIST').decode().splitlines():
        fields = dict(item.split('=', 1) for item in line.split() if '=' in item)
        if fields['addr'].rsplit(':', 1)[0] == worker_ip:
            return fields
    return None


def accepts(port):
    """nginx's stub_status `accepts`: connections accepted since its master started."""
    with urllib.request.urlopen('http://127.0.0.1:%d/status' % port, timeout=5) as response:
        return int(response.read().decode().splitlines()[2].split()[0])


# -- the project -----------------------------------------------------------------------------------------------------

class Project:
    """A Compose-style project on the main engine: its network, its services' containers (name by service), each
    with a fixed address (Compose's ipv4_address): Docker 20.10 gives a container the lowest free address of its
    network at each start, so members restored in another order than they were created would swap addresses, and a
    restored connection cannot bind its old one (CRIU: "Can't bind inet socket back: Cannot assign requested
    address")."""

    def __init__(self, client):
        self.client = client
        self.name = 'cryo-grp-%s' % uuid.uuid4().hex[:6]
        self.network = self.name + '_default'
        self.names = {}
        self.web_port = free_port()
        self.subnet = '10.223.%d' % (uuid.uuid4().int % 250)
        client.create_network(self.network, driver='bridge', labels={
            'com.docker.compose.project': self.name, 'com.docker.compose.network': 'default'},
            ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=self.subnet + '.0/24')]))

    def create(self, service, image, command=None, depends=None, ports=None, start=True):
        """The service's container, restart policy unless-stopped (Compose's `restart: unless-stopped`)."""
        name = '%s-%s-1' % (self.name, service)
        client = self.client
        client.create_container(
            image, command, name=name, labels=compose_labels(self.name, service, depends),
            ports=list(ports) if ports else None, stop_timeout=1,
            host_config=client.create_host_config(network_mode=self.network, port_bindings=ports,
                                                  restart_policy=dict(Name='unless-stopped')),
            networking_config=client.create_networking_config({self.network: client.create_endpoint_config(
                aliases=[service, name], ipv4_address='%s.%d' % (self.subnet, 10 + len(self.names)))}))
        self.names[service] = name
        if start:
            client.start(name)
        return name

    def ip(self, service):
        return self.client.inspect_container(self.names[service])['NetworkSettings']['Networks'][self.network][
            'IPAddress']

    def addresses(self):
        return {name: self.ip(service) for service, name in self.names.items()}

    def members(self):
        """The members in the order a restore brings them back: redis, then web and worker (by service)."""
        return [self.names[service] for service in ('redis', 'web', 'worker')]

    def running(self):
        return {name: state(self.client, name).get('Running') for name in self.members()}

    def policies(self):
        """The members' restart policies by name: unless-stopped, or no while a checkpoint holds it."""
        return {self.client.inspect_container(name)['HostConfig']['RestartPolicy']['Name'] for name in self.members()}

    def remove(self):
        for name in self.names.values():
            try:
                self.client.remove_container(name, force=True)
            except docker.errors.NotFound:
                pass
        try:
            self.client.remove_network(self.network)
        except docker.errors.NotFound:  # removed already (test_group_archive: the source host's part done)
            pass


def running_project(client, apps=('redis', 'nginx', 'uring')):
    """A Project with redis, the worker (one TCP connection to redis) and nginx running, for a fixture to yield from;
    removed afterwards. apps: the application images it makes sure of (build_apps)."""
    for app in apps:
        print(build_apps.build(client, app))
    shop = Project(client)
    try:
        shop.create('redis', REDIS['tag'], REDIS['cmd'])
        wait_redis(shop.ip('redis'))
        shop.create('worker', 'cryo-test/busybox:1', ['/bin/sh', '-c', WORKER], depends='redis:service_started:false')
        shop.create('web', NGINX['tag'], NGINX['cmd'], depends='redis:service_started:false',
                    ports={8080: ('127.0.0.1', shop.web_port)})
        wait_http(shop.web_port)
        for _request in range(10):  # stub_status's accepts past 10: a fresh nginx would count from 1 again
            accepts(shop.web_port)
        wait_pushed(shop.ip('redis'), 5)
        yield shop
    finally:
        shop.remove()


@pytest.fixture
def project(engine):
    """The project on the main engine (each test its own: a worker started afresh would spoil the next test's
    list)."""
    yield from running_project(engine)


def snapshot(shop):
    """What must carry on: the worker's connection, the list, redis's run, nginx's accepts."""
    redis_ip = shop.ip('redis')
    return dict(connection=connection_of(redis_ip, shop.ip('worker')), numbers=pushed(redis_ip),
                run_id=redis(redis_ip, 'INFO', 'server').decode().split('run_id:')[1].split()[0],
                accepts=accepts(shop.web_port))


def assert_carried_on(shop, before, seconds):
    """The application resumed where `before` was taken, `seconds` ago or more: same connection, same run, the
    list without a gap and growing through that connection, nginx counting on."""
    redis_ip = shop.ip('redis')
    wait_pushed(redis_ip, len(before['numbers']) + 5)
    after = snapshot(shop)
    assert after['connection'] is not None, 'the worker is not connected to redis any more'
    assert after['connection']['id'] == before['connection']['id'], 'the worker\'s connection is another one: %s, ' \
        'then %s' % (before['connection'], after['connection'])
    assert int(after['connection']['age']) >= int(before['connection']['age']) + int(seconds), (before, after)
    assert after['run_id'] == before['run_id'], 'redis started afresh'
    assert_contiguous(after['numbers'], len(before['numbers']) + 5)
    assert after['accepts'] > before['accepts'], 'nginx started afresh (stub_status counts from 1 again)'
    return after


# -- the tests -------------------------------------------------------------------------------------------------------

def test_an_uncheckpointable_member_refuses_the_group(project):
    """A member that holds an io_uring (CRIU cannot dump it), labelled into the project: the group checkpoint fails,
    every member is thawed and runs on, no member keeps a checkpoint, and the worker's data keeps growing."""
    if not project.client.images(name=URING['tag']):
        pytest.skip('no C compiler here for the io_uring program (make host installs gcc)')
    shop = project
    name = shop.create('cache', URING['tag'], URING['cmd'])
    try:
        before = snapshot(shop)
        started = time.monotonic()
        result = call_module('docker_checkpoint', dict(project=shop.name, checkpoint='refused', **TCP))
        assert result['failed'] is True and 'Traceback' not in result['msg'], result
        assert result['msg'].startswith('Checkpoint refused of the group Compose project %s was not taken: [%s] '
                                        % (shop.name, name)), result['msg']
        assert result['failed_members'] == [name] and result['containers_running'] is True, result
        assert shop.policies() == {'unless-stopped'}, 'the held restart policies are put back'
        for member in shop.members() + [name]:
            current = state(shop.client, member)
            assert current['Running'] and not current['Paused'], (member, current)
            assert checkpoints(shop.client, member) == []
            assert not os.path.exists(checkpoint_path(shop.client, member, 'refused'))
        assert_carried_on(shop, before, time.monotonic() - started)
        print('group refused (io_uring member): frozen %.3f s, every member running: %s'
              % (result['frozen_seconds'], result['msg']))
    finally:
        shop.client.remove_container(name, force=True)
        del shop.names['cache']


def test_freeze_window_of_the_group_and_one_by_one(project):
    """What the group's freeze costs against checkpointing the members one by one (leave_running: nothing stops).
    One by one, each member is frozen only for its own dump, but at another moment: no single point in time."""
    shop = project
    group = ok(call_module('docker_checkpoint', dict(project=shop.name, checkpoint='window', leave_running=True,
                                                     **TCP)))
    frozen = group['group']['frozen_seconds']
    assert group['group']['members'] == shop.members() and 0 < frozen < 10, group['group']
    started = time.monotonic()
    alone = ok(call_module('docker_checkpoint', dict(containers=shop.members(), checkpoint='alone', leave_running=True,
                                                     parallel=1, **TCP)))
    wall = time.monotonic() - started
    durations = {entry['container']: entry['duration'] for entry in alone['results']}
    assert all(running for running in shop.running().values())
    print('freeze window: group (leave_running) %.3f s for %d members (each member\'s dump inside it: %s); one by one '
          '%s, sum %.3f s, spread over %.1f s of wall time'
          % (frozen, len(durations), ', '.join('%.3f' % entry['duration'] for entry in group['results']),
             ', '.join('%s %.3f s' % (name.rsplit('-', 2)[1], took) for name, took in durations.items()),
             sum(durations.values()), wall))


@pytest.mark.parametrize('method', ['runtime', 'engine'])
def test_the_project_resumes_as_one_and_a_failed_member_stops_the_group(project, method):
    """Checkpointed as a group (stopped at it), through runc's own checkpoint and through the engine's: after the
    restore, the same connection, the same data, nothing restarted. Before that, one member whose checkpoint cannot
    be restored: the members restored before it are stopped again, every checkpoint is kept, and the same task brings
    the group back once the cause is gone."""
    shop = project
    name = 'cp-' + method
    before, addresses = snapshot(shop), shop.addresses()
    started = time.monotonic()
    taken = ok(call_module('docker_checkpoint', dict(project=shop.name, checkpoint=name, method=method, **TCP)))
    group = taken['group']
    assert group['members'] == shop.members() and group['leave_running'] is False, group
    assert [entry['method'] for entry in taken['results']] == [method] * 3
    assert all(entry['criu_options'] == TCP for entry in taken['results']), taken['results']
    assert 0 < group['frozen_seconds'] < 10, group
    assert not any(shop.running().values()) and shop.policies() == {'no'}, 'held: the engine restarts nothing'
    assert all(name in checkpoints(shop.client, member) for member in shop.members())

    # The last member in the order (the worker) cannot be restored: a CRIU image of its checkpoint is away.
    worker_images = checkpoint_path(shop.client, shop.names['worker'], name)
    os.rename(os.path.join(worker_images, 'pstree.img'), os.path.join(worker_images, 'pstree.img.away'))
    failed = call_module('docker_restore', dict(project=shop.name, checkpoint=name))
    assert failed['failed'] is True and 'Traceback' not in failed['msg'], failed
    assert failed['msg'].startswith('The group Compose project %s was not restored: [%s] '
                                    % (shop.name, shop.names['worker'])), failed['msg']
    assert failed['stopped_again'] == shop.members()[:2] and failed['failed_members'] == [shop.names['worker']]
    assert not any(shop.running().values()) and shop.policies() == {'no'}, shop.running()
    for member in shop.members():
        assert name in checkpoints(shop.client, member), member
    os.rename(os.path.join(worker_images, 'pstree.img.away'), os.path.join(worker_images, 'pstree.img'))

    restored = ok(call_module('docker_restore', dict(project=shop.name, checkpoint=name)))
    assert restored['changed'] is True and restored['group']['members'] == shop.members()
    assert [entry['verified'] for entry in restored['results']] == [True, True, True], restored['results']
    assert all(entry['criu_options_from'] == dict(tcp_established='checkpoint') for entry in restored['results']), \
        'the restore takes tcp_established from the checkpoints'
    assert not os.path.exists('/etc/criu/runc.conf.cryo-host'), 'runc.conf is the host\'s again'

    assert all(shop.running().values()) and shop.addresses() == addresses
    assert shop.policies() == {'unless-stopped'}
    assert all(shop.client.inspect_container(member)['RestartCount'] == 0 for member in shop.members())
    after = assert_carried_on(shop, before, time.monotonic() - started)
    again = ok(call_module('docker_restore', dict(project=shop.name, checkpoint=name)))
    assert again['changed'] is False
    durations = ', '.join('%s %.2f s' % (entry['container']['name'].rsplit('-', 2)[1], entry['duration'])
                          for entry in restored['results'])
    print('group checkpoint %s (method %s): frozen %.3f s; restore %s; worker connection id %s kept (age %s s -> %s s), list '
          '%d -> %d numbers without a gap, nginx accepts %d -> %d'
          % (shop.name, method, group['frozen_seconds'], durations, after['connection']['id'],
             before['connection']['age'], after['connection']['age'], len(before['numbers']), len(after['numbers']),
             before['accepts'], after['accepts']))


def test_the_connection_survives_group_restore_after_group_restore(project):
    """The same group checkpointed (retaken: force) and restored ten times in a row: every time the worker's
    connection is the same one, the list has no gap and nothing restarted. Each restore brings the members back one
    after the other: one restored first must not reach another's address before that one's socket is back (its new
    network namespace would answer with a reset)."""
    shop = project
    cycles = []
    for cycle in range(10):
        before = snapshot(shop)
        ok(call_module('docker_checkpoint', dict(project=shop.name, checkpoint='cycle', force=True, **TCP)))
        restored = ok(call_module('docker_restore', dict(project=shop.name, checkpoint='cycle')))
        assert [entry['verified'] for entry in restored['results']] == [True, True, True], (cycle, restored['results'])
        after = assert_carried_on(shop, before, 0)
        assert all(shop.client.inspect_container(member)['RestartCount'] == 0 for member in shop.members()), cycle
        cycles.append(len(after['numbers']))
    print('10 group restores, one connection (id %s) throughout; the list grew %s'
          % (after['connection']['id'], ' -> '.join(str(length) for length in cycles)))
