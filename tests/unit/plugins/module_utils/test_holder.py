"""Network holders (module_utils/_holder.py) on recorded engine answers, and the Engine API bodies
HolderEngine sends through the docker SDK's public APIClient.

The recordings (tests/unit/fixtures/network-holder/) are Docker 20.10.24's answers for a holder made by
hand with the docker CLI: `docker create --name nh-h --stop-signal SIGKILL --entrypoint sleep --network
nh-appnet --ip 172.31.250.10 --network-alias web --network-alias www -p 127.0.0.1:18080:80 -p 18053:53/udp
-p 127.0.0.1::81 --hostname web --dns 10.0.0.53 --restart unless-stopped --label
cryo.docker.network-holder=true cryo-test/busybox:1 2147483647`, `docker network connect nh-backnet nh-h`,
with nh-m (running) and nh-m2 (created) in it by `--network container:nh-h`; and Docker 28.5.2's
(holder-28.5.json ...) for the same holder made through the SDK on subnet 172.31.251.0/24. Both
engines keep the holder's full id in a member's NetworkMode.
"""

import json
import os

import docker
import pytest
import requests

from ansible_collections.cryo.docker.plugins.module_utils import _engine, _holder
from ansible_collections.cryo.docker.plugins.module_utils._common import ModuleError
from ansible_collections.cryo.docker.plugins.module_utils._engine import EngineError

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'network-holder')
HOLDER_ID = 'f644d29c0fe640a3e753999646cfec79357bd1f817a01a41996c48cfafb0d74e'


def recorded(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return json.load(handle)


# The module's options for the recorded holder.
OPTIONS = dict(image='cryo-test/busybox:1', command=None, hostname='web', dns=['10.0.0.53'],
               networks=[dict(name='nh-appnet', ipv4_address='172.31.250.10', aliases=['web', 'www']),
                         dict(name='nh-backnet', ipv4_address=None, aliases=None)],
               published_ports=['127.0.0.1:18080:80', '18053:53/udp', '127.0.0.1::81'],
               restart_policy='unless-stopped', labels=None)


# -- published ports ------------------------------------------------------------------------------

@pytest.mark.parametrize('spec, parsed, text', [
    ('8080:80', ('80', 'tcp', '', '8080'), '8080:80/tcp'),
    ('127.0.0.1:8080:80', ('80', 'tcp', '127.0.0.1', '8080'), '127.0.0.1:8080:80/tcp'),
    ('127.0.0.1::80', ('80', 'tcp', '127.0.0.1', ''), '127.0.0.1::80/tcp'),
    ('53:53/udp', ('53', 'udp', '', '53'), '53:53/udp'),
    ('9000', ('9000', 'tcp', '', ''), '9000/tcp'),
    ('132/sctp', ('132', 'sctp', '', ''), '132/sctp'),
    ('[::1]:8443:443', ('443', 'tcp', '::1', '8443'), '[::1]:8443:443/tcp'),
    (' 0.0.0.0:80:80/tcp ', ('80', 'tcp', '0.0.0.0', '80'), '0.0.0.0:80:80/tcp'),
])
def test_published_ports_read_as_docker_writes_them(spec, parsed, text):
    assert _holder.parse_port(spec) == parsed
    assert _holder.port_text(*parsed) == text
    assert _holder.parse_port(text) == parsed


@pytest.mark.parametrize('spec', ['', 'x', '80:80:80', '::80', '8080:80/icmp', '1-2:1-2', '[zz]:80:80', '0:80', '80:0'])
def test_published_ports_that_are_not(spec):
    with pytest.raises(ModuleError):
        _holder.parse_port(spec)


def test_port_arguments_group_the_bindings_of_a_port():
    parsed = [_holder.parse_port(spec) for spec in ('127.0.0.1:8080:80', '[::1]:8080:80', '53:53/udp', '9000')]
    assert _holder.port_arguments(parsed) == (
        [(80, 'tcp'), (53, 'udp'), (9000, 'tcp')],
        {'80/tcp': [('127.0.0.1', '8080'), ('::1', '8080')], '53/udp': [('', '53')], '9000/tcp': [('', None)]})


def test_bound_ports_read_a_port_bindings_map():
    bindings = {'80/tcp': [{'HostIp': '127.0.0.1', 'HostPort': '32768'}, {'HostIp': '::1', 'HostPort': '32768'}],
                '53/udp': [{'HostIp': '', 'HostPort': '53'}], '9000/tcp': [{}]}
    assert _holder.port_tuples(bindings) == [('53', 'udp', '', '53'), ('80', 'tcp', '127.0.0.1', '32768'),
                                             ('80', 'tcp', '::1', '32768'), ('9000', 'tcp', '', '')]
    assert _holder.bound_ports(bindings) == ['127.0.0.1:32768:80/tcp', '53:53/udp', '9000/tcp', '[::1]:32768:80/tcp']
    assert _holder.bound_ports(None) == []


# -- what a holder is -------------------------------------------------------------------------------

def test_the_config_of_a_recorded_holder():
    assert _holder.current_config(recorded('holder-20.10.json')) == dict(
        image='cryo-test/busybox:1',
        command=['sleep', '2147483647'],
        networks=[dict(name='nh-appnet', ipv4_address='172.31.250.10', aliases=['f644d29c0fe6', 'web', 'www']),
                  dict(name='nh-backnet', ipv4_address=None, aliases=['f644d29c0fe6', 'web'])],
        published_ports=['127.0.0.1:18080:80/tcp', '127.0.0.1::81/tcp', '18053:53/udp'],
        hostname='web',
        dns=['10.0.0.53'],
        restart_policy='unless-stopped',
        labels={'cryo.docker.network-holder': 'true'},
    )


HOLDER_28_ID = '92747746484fd4aa552e858f7bee000791aaa0c1b2e0efa3387fff89c80a0625'


def test_the_config_of_a_holder_on_docker_28():
    # Docker 28 lists the DNS names (DNSNames, API 1.44) beside the aliases it was given.
    config = _holder.current_config(recorded('holder-28.5.json'))
    assert config['networks'] == [
        dict(name='nh-appnet', ipv4_address='172.31.251.10', aliases=['92747746484f', 'nh-h', 'web', 'www']),
        dict(name='nh-backnet', ipv4_address=None, aliases=['92747746484f', 'nh-h', 'web'])]
    assert config['published_ports'] == ['127.0.0.1:18080:80/tcp', '127.0.0.1::81/tcp', '18053:53/udp']
    assert config['command'] == ['sleep', '2147483647'] and config['hostname'] == 'web'
    options = dict(OPTIONS, networks=[dict(OPTIONS['networks'][0], ipv4_address='172.31.251.10'), OPTIONS['networks'][1]])
    assert _holder.differences(_holder.desired_config(options), config) == []


def test_members_on_docker_28():
    listed = recorded('list-28.5.json')
    assert [(m['name'], m['running']) for m in _holder.members_of(listed, 'nh-h', HOLDER_28_ID)] == [
        ('nh-m', True), ('nh-m2', False)]
    member = recorded('member-28.5.json')
    assert member['HostConfig']['NetworkMode'] == 'container:' + HOLDER_28_ID
    assert _holder.member_problem('nh-m', member, 'nh-h', recorded('holder-28.5.json'), lambda target: None) is None


def test_a_stopped_holder_keeps_its_config():
    assert (_holder.current_config(recorded('holder-stopped-20.10.json'))
            == _holder.current_config(recorded('holder-20.10.json')))


def test_the_options_of_the_recorded_holder_match_it():
    desired = _holder.desired_config(OPTIONS)
    assert _holder.differences(desired, _holder.current_config(recorded('holder-20.10.json'))) == []
    assert _holder.is_holder(recorded('holder-20.10.json'))
    assert not _holder.is_holder(recorded('member-20.10.json'))


def test_a_container_with_nothing_in_its_inspect():
    assert _holder.current_config({'Config': {}, 'HostConfig': {}}) == dict(
        image=None, command=[], networks=[], published_ports=[], hostname=None, dns=[], restart_policy='no',
        labels={})


def test_restart_policy_names():
    assert _holder.current_config({'HostConfig': {'RestartPolicy': {'Name': ''}}})['restart_policy'] == 'no'
    assert _holder.current_config({'HostConfig': {'RestartPolicy': {'Name': 'always'}}})['restart_policy'] == 'always'


def test_the_arguments_that_create_the_recorded_holder():
    kwargs, more = _holder.create_arguments('nh-h', _holder.desired_config(OPTIONS))
    assert kwargs == dict(
        name='nh-h', image='cryo-test/busybox:1', entrypoint=['sleep'], command=['2147483647'], hostname='web',
        host_config=dict(network_mode='nh-appnet', restart_policy=dict(Name='unless-stopped'), dns=['10.0.0.53'],
                         port_bindings={'80/tcp': [('127.0.0.1', '18080')], '81/tcp': [('127.0.0.1', None)],
                                        '53/udp': [('', '18053')]}),
        network='nh-appnet', endpoint=dict(ipv4_address='172.31.250.10', aliases=['web', 'www']),
        labels={'cryo.docker.network-holder': 'true'}, stop_signal='SIGKILL',
        ports=[(80, 'tcp'), (81, 'tcp'), (53, 'udp')])
    assert more == [('nh-backnet', None, [])]


def test_shown_fills_what_the_options_leave_open():
    desired = _holder.desired_config(dict(image='x:1'))
    shown = _holder.shown(desired)
    assert shown['networks'] == [dict(name='bridge', ipv4_address=None, aliases=[])]
    assert shown['published_ports'] == [] and shown['dns'] == [] and shown['hostname'] is None
    assert desired['networks'] is None, 'the input must not change'


# -- members --------------------------------------------------------------------------------------

def test_members_in_the_recorded_list():
    listed = recorded('list-20.10.json')
    assert [(m['name'], m['running']) for m in _holder.members_of(listed, 'nh-h', HOLDER_ID)] == [
        ('nh-m', True), ('nh-m2', False)]
    assert _holder.members_of(listed, 'other', 'a' * 64) == []


@pytest.mark.parametrize('target, ok', [
    (HOLDER_ID, True), (HOLDER_ID[:12], True), ('nh-h', True), ('/nh-h', True), (HOLDER_ID[:6], False),
    ('nh', False), ('', False), (None, False),
])
def test_what_a_network_mode_refers_to(target, ok):
    assert _holder.refers_to(target, 'nh-h', HOLDER_ID) is ok


def test_network_targets():
    assert _holder.network_target('container:%s' % HOLDER_ID) == HOLDER_ID
    assert _holder.network_target('bridge') is None and _holder.network_target(None) is None


def test_the_recorded_member_is_in_the_holder():
    assert _holder.member_problem('nh-m', recorded('member-20.10.json'), 'nh-h', recorded('holder-20.10.json'),
                                  lambda target: None) is None


# -- HolderEngine over the SDK --------------------------------------------------------------------

class Answer:
    """What the SDK's APIError keeps of an engine answer."""

    def __init__(self, status, reason='x'):
        self.status_code = status
        self.reason = reason
        self.url = 'http+docker://localhost/v1.41/x'


def api_error(status, message):
    return docker.errors.APIError(message, response=Answer(status), explanation=message)


@pytest.fixture
def engine():
    """A HolderEngine on a real APIClient of API 1.41 that never connects: its create_container_from_config,
    connect_container_to_network and remove_container are replaced by recorders."""
    client = docker.APIClient(base_url='unix:///nonexistent/docker.sock', version='1.41')
    client.sent = []
    out = _holder.HolderEngine({'docker_host': 'unix:///nonexistent/docker.sock', 'timeout': 5}, client=client)
    return out


def test_create_sends_the_engine_api_body(engine, monkeypatch):
    def create(config, name=None, platform=None):
        engine.client.sent.append((name, config))
        return {'Id': HOLDER_ID, 'Warnings': []}

    monkeypatch.setattr(engine.client, 'create_container_from_config', create)
    kwargs, _more = _holder.create_arguments('nh-h', _holder.desired_config(OPTIONS))
    assert engine.create_container(**kwargs) == HOLDER_ID
    [(name, body)] = engine.client.sent
    assert name == 'nh-h'
    assert body['Image'] == 'cryo-test/busybox:1'
    assert body['Entrypoint'] == ['sleep'] and body['Cmd'] == ['2147483647']
    assert body['StopSignal'] == 'SIGKILL' and body['Hostname'] == 'web'
    assert body['Labels'] == {'cryo.docker.network-holder': 'true'}
    assert body['ExposedPorts'] == {'80/tcp': {}, '81/tcp': {}, '53/udp': {}}
    host = body['HostConfig']
    assert host['NetworkMode'] == 'nh-appnet' and host['Dns'] == ['10.0.0.53']
    assert host['RestartPolicy'] == {'Name': 'unless-stopped'}
    assert host['PortBindings'] == {'80/tcp': [{'HostIp': '127.0.0.1', 'HostPort': '18080'}],
                                    '81/tcp': [{'HostIp': '127.0.0.1', 'HostPort': ''}],
                                    '53/udp': [{'HostIp': '', 'HostPort': '18053'}]}
    assert body['NetworkingConfig'] == {'EndpointsConfig': {'nh-appnet': {
        'Aliases': ['web', 'www'], 'IPAMConfig': {'IPv4Address': '172.31.250.10'}}}}


def test_create_without_a_network_or_host_config(engine, monkeypatch):
    monkeypatch.setattr(engine.client, 'create_container_from_config',
                        lambda config, name=None, platform=None: engine.client.sent.append(config) or {'Id': 'x'})
    assert engine.create_container('plain', 'img:1', command=['true']) == 'x'
    assert engine.client.sent[0].get('NetworkingConfig') is None and engine.client.sent[0]['HostConfig'] is None


@pytest.mark.parametrize('status, message, start', [
    (404, 'No such image: busybox:9', 'Image img:1 is not on the Docker Engine at unix:///nonexistent/docker.sock, and '
                                      'the module does not pull images.'),
    (404, 'network nonet not found', 'Network nonet does not exist on the Docker Engine at'),
    (409, 'Conflict. The container name "/nh-h" is already in use', 'A container named nh-h already exists'),
    (400, 'invalid IP address in add-host', 'Container nh-h could not be created: invalid IP address'),
])
def test_create_errors(engine, monkeypatch, status, message, start):
    def create(config, name=None, platform=None):
        raise api_error(status, message)

    monkeypatch.setattr(engine.client, 'create_container_from_config', create)
    with pytest.raises(EngineError) as caught:
        engine.create_container('nh-h', 'img:1', network='nonet')
    assert caught.value.msg.startswith(start), caught.value.msg
    assert caught.value.status == status and caught.value.engine_message == message


def test_remove(engine, monkeypatch):
    calls = []
    monkeypatch.setattr(engine.client, 'remove_container',
                        lambda container, force=False: calls.append((container, force)))
    assert engine.remove_container('nh-h', force=True) is True and calls == [('nh-h', True)]


def test_remove_of_a_container_that_is_gone(engine, monkeypatch):
    def remove(container, force=False):
        raise docker.errors.NotFound('No such container: nh-h', response=Answer(404), explanation='No such container')

    monkeypatch.setattr(engine.client, 'remove_container', remove)
    assert engine.remove_container('nh-h') is False


def test_remove_that_fails(engine, monkeypatch):
    def remove(container, force=False):
        raise api_error(409, 'You cannot remove a running container nh-h. Stop the container before attempting '
                             'removal or force remove')

    monkeypatch.setattr(engine.client, 'remove_container', remove)
    with pytest.raises(EngineError) as caught:
        engine.remove_container('nh-h')
    assert caught.value.msg.startswith('Container nh-h could not be removed: You cannot remove a running')


def test_connect(engine, monkeypatch):
    calls = []
    monkeypatch.setattr(engine.client, 'connect_container_to_network',
                        lambda container, net, **kwargs: calls.append((container, net, kwargs)))
    engine.connect_network('nh-h', 'nh-backnet', '172.18.0.9', ['api'])
    engine.connect_network('nh-h', 'nh-other')
    assert calls == [('nh-h', 'nh-backnet', dict(ipv4_address='172.18.0.9', aliases=['api'])),
                     ('nh-h', 'nh-other', dict(ipv4_address=None, aliases=None))]


@pytest.mark.parametrize('status, message, start', [
    (404, 'network nonet not found', 'Network nonet does not exist on the Docker Engine at'),
    (403, 'endpoint with name nh-h already exists in network nonet',
     'Container nh-h could not be connected to network nonet: endpoint with name'),
])
def test_connect_errors(engine, monkeypatch, status, message, start):
    def connect(container, net, **kwargs):
        raise api_error(status, message)

    monkeypatch.setattr(engine.client, 'connect_container_to_network', connect)
    with pytest.raises(EngineError) as caught:
        engine.connect_network('nh-h', 'nonet')
    assert caught.value.msg.startswith(start)


def test_an_unreachable_engine(engine, monkeypatch):
    def create(config, name=None, platform=None):
        raise requests.exceptions.ConnectionError('Connection refused')

    monkeypatch.setattr(engine.client, 'create_container_from_config', create)
    with pytest.raises(EngineError) as caught:
        engine.create_container('nh-h', 'img:1')
    assert 'Cannot reach the Docker Engine at unix:///nonexistent/docker.sock' in caught.value.msg


def test_connect_gives_a_holder_engine():
    made = _holder.connect({'docker_host': 'unix:///nonexistent/docker.sock', 'api_version': '1.41', 'timeout': 5})
    assert isinstance(made, _holder.HolderEngine)


def test_connect_without_the_sdk(monkeypatch):
    monkeypatch.setattr(_engine, 'HAS_DOCKER', False)
    with pytest.raises(ModuleError, match='docker'):
        _holder.connect({'docker_host': 'unix:///nonexistent/docker.sock'})
