"""cryo.docker.docker_network_holder against a fake engine: create, keep, start, recreate and remove a
network holder; check its members; refuse what would cut containers off their network."""

import hashlib

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _holder
from ansible_collections.cryo.docker.plugins.module_utils._common import HOLDER_LABEL
from ansible_collections.cryo.docker.plugins.module_utils._engine import EngineError
from ansible_collections.cryo.docker.plugins.modules import docker_network_holder

from fake_engine import DOCKER_HOST, Container, FakeEngine, failed_clearly, run_module, warnings_of

IMAGE = 'cryo-test/busybox:1'
# Calls of the holder's engine that change something.
HOLDER_CHANGES = ('create_container', 'remove_container', 'connect_network', 'start', 'stop', 'set_restart_policy')


class Holder(Container):
    """A container as the engine keeps one made by create_container: its whole configuration."""

    def __init__(self, name, cid, image, entrypoint, command, hostname, labels, ports, port_bindings, network,
                 endpoint, dns, restart_policy, stop_signal):
        super().__init__(name, cid, restart_policy=restart_policy, labels=labels, image=image, network=network)
        self.entrypoint, self.command = entrypoint, command
        self.hostname = hostname or cid[:12]
        self.ports, self.port_bindings, self.dns, self.stop_signal = ports, port_bindings, dns, stop_signal
        self.networks = {network: endpoint}

    def inspect(self):
        out = super().inspect()
        out['Config'].update(Entrypoint=self.entrypoint, Cmd=self.command, Hostname=self.hostname,
                             StopSignal=self.stop_signal)
        bindings = {}
        for key, values in (self.port_bindings or {}).items():
            bindings[key] = [dict(HostIp=ip, HostPort=port or '') for ip, port in values]
        out['HostConfig'].update(PortBindings=bindings, Dns=self.dns)
        out['NetworkSettings'] = dict(Networks={
            name: dict(IPAMConfig=dict(IPv4Address=endpoint['ipv4_address']) if endpoint.get('ipv4_address') else None,
                       Aliases=endpoint.get('aliases'), DNSNames=[self.name, self.id[:12]],
                       IPAddress=(endpoint.get('ipv4_address') or '172.18.0.%d' % (2 + index)) if self.running else '')
            for index, (name, endpoint) in enumerate(sorted(self.networks.items()))})
        return out


class HolderEngine(FakeEngine):
    """The fake engine with what a holder needs: create, remove, connect, and the container list with
    each container's NetworkMode (as /containers/json gives it).

    Knobs: images (on the engine), networks (that exist), no_sleep (images without sleep),
    taken_ports (host ports in use), exits (the holder's command ends at once), connect_error."""

    def __init__(self, tmp_path):
        super().__init__(tmp_path)
        self.images = {IMAGE}
        self.networks = {'bridge', 'host', 'none', 'appnet', 'backnet'}
        self.no_sleep = set()
        self.taken_ports = set()
        self.exits = False
        self.connect_error = None
        self.created = 0

    def changes(self):
        return [call for call in self.calls if call[0] in HOLDER_CHANGES]

    def containers(self, all=True):  # pylint: disable=redefined-builtin
        self._record('containers', all)
        return [dict(Id=c.id, Names=['/' + c.name], State=c.status, HostConfig=dict(NetworkMode=c.network))
                for c in self.store.values() if all or c.running]

    def member(self, name, holder, running=True, by='id'):
        """An application container in the namespace of holder (as the engine records it: by id)."""
        target = holder.id if by == 'id' else holder.name
        return self.add(name, running=running, network='container:' + target)

    def holder(self, name='web-net', running=True, labels=None, **options):
        """A holder as the module makes it, with options of the module (networks, published_ports ...)."""
        params = dict(image=IMAGE, command=None, networks=None, published_ports=None, hostname=None, dns=None,
                      restart_policy='unless-stopped', labels=None)
        params.update(options)
        kwargs, more = _holder.create_arguments(name, _holder.desired_config(params))
        if labels is not None:
            kwargs['labels'] = labels
        cid = self.create_container(**kwargs)
        for network, address, aliases in more:
            self.connect_network(cid, network, address, aliases)
        found = self.store[cid]
        if running:
            self._run(found)
        else:
            found.status = 'exited'
        self.calls = []
        return found

    # -- the engine's calls

    def create_container(self, name, image, command=None, entrypoint=None, host_config=None, network=None,
                         endpoint=None, **config):
        self._record('create_container', name, image)
        self.last_create = dict(name=name, image=image, command=command, entrypoint=entrypoint,
                                host_config=host_config, network=network, endpoint=endpoint, **config)
        answer = None
        if self._find(name) is not None:
            answer = (409, 'Conflict. The container name "/%s" is already in use by container "%s". You have to remove '
                           '(or rename) that container to be able to reuse that name.' % (name, self._find(name).id))
        elif image not in self.images:
            answer = (404, 'No such image: %s' % image)
        elif network not in self.networks:
            answer = (404, 'network %s not found' % network)
        if answer:
            # Explained as the real HolderEngine explains it.
            raise _holder.HolderEngine._explain_create(
                self, EngineError(answer[1], status=answer[0], engine_message=answer[1]), name, image, network)
        self.created += 1
        cid = hashlib.sha256(('%s-%d' % (name, self.created)).encode()).hexdigest()
        host_config = host_config or {}
        self.store[cid] = Holder(
            name, cid, image, entrypoint, command, config.get('hostname'), config.get('labels') or {},
            config.get('ports'), host_config.get('port_bindings'), network,
            dict(ipv4_address=(endpoint or {}).get('ipv4_address'), aliases=(endpoint or {}).get('aliases')),
            host_config.get('dns') or [], (host_config.get('restart_policy') or {}).get('Name') or 'no',
            config.get('stop_signal'))
        return cid

    def remove_container(self, container, force=False):
        found = self._find(container)
        self._record('remove_container', container, force)
        if found is None:
            return False
        if found.running and not force:
            raise EngineError('You cannot remove a running container', status=409)
        self._stop(found, 137)
        del self.store[found.id]
        return True

    def connect_network(self, container, network, ipv4_address=None, aliases=None):
        found = self._get(container)
        self._record('connect_network', found.id, network, ipv4_address, aliases)
        if self.connect_error or network not in self.networks:
            message = self.connect_error or 'network %s not found' % network
            raise _holder.HolderEngine._explain_connect(
                self, EngineError(message, status=404 if not self.connect_error else 500, engine_message=message),
                found.id, network)
        found.networks[network] = dict(ipv4_address=ipv4_address, aliases=aliases)

    def start(self, container):
        found = self._get(container)
        if isinstance(found, Holder) and not found.running:
            if found.image in self.no_sleep:
                message = ('failed to create task for container: failed to create shim task: OCI runtime create '
                           'failed: runc create failed: unable to start container process: exec: "sleep": '
                           'executable file not found in $PATH: unknown')
                self._record('start', found.id)
                raise EngineError(message, status=400, engine_message=message)
            ports = set(port for values in (found.port_bindings or {}).values() for _ip, port in values)
            if ports & self.taken_ports:
                message = ('driver failed programming external connectivity on endpoint %s: Bind for 0.0.0.0:%s '
                           'failed: port is already allocated' % (found.name, sorted(ports & self.taken_ports)[0]))
                self._record('start', found.id)
                raise EngineError(message, status=500, engine_message=message)
        super().start(container)
        if self.exits and isinstance(found, Holder):
            self._stop(found, 0)


@pytest.fixture
def engine(tmp_path, monkeypatch):
    fake = HolderEngine(tmp_path)
    monkeypatch.setattr(docker_network_holder, 'connect', lambda params: fake)
    return fake


def run(capsys, check_mode=False, diff=False, **args):
    args.setdefault('docker_host', DOCKER_HOST)
    args.setdefault('name', 'web-net')
    return run_module(capsys, docker_network_holder, args, check_mode=check_mode, diff=diff)


WEB = dict(image=IMAGE, networks=[dict(name='appnet', ipv4_address='172.30.0.10', aliases=['web', 'www']),
                                  dict(name='backnet')],
           published_ports=['127.0.0.1:8080:80', '53:53/udp'], hostname='web', dns=['10.0.0.53'])


# -- create and keep ----------------------------------------------------------------------------

def test_creates_a_holder_that_only_owns_a_network(engine, capsys):
    result = run(capsys, image=IMAGE)
    assert result['changed'] is True and 'failed' not in result, result
    assert result['actions'] == ['created', 'started'] and result['differences'] == []
    made = engine.last_create
    assert made['image'] == IMAGE and made['entrypoint'] == ['sleep'] and made['command'] == ['2147483647']
    assert made['stop_signal'] == 'SIGKILL'
    assert made['labels'] == {HOLDER_LABEL: 'true'}
    assert made['network'] == 'bridge' and made['endpoint'] == {} and made['ports'] is None
    assert made['host_config'] == dict(network_mode='bridge', restart_policy=dict(Name='unless-stopped'))
    holder = result['holder']
    assert holder['exists'] and holder['running'] and holder['is_holder'] and holder['status'] == 'running'
    assert holder['command'] == ['sleep', '2147483647'] and holder['restart_policy'] == 'unless-stopped'
    assert holder['networks'] == [dict(name='bridge', ipv4_address=None, aliases=sorted(['web-net', holder['id'][:12]]),
                                       ip_address='172.18.0.2')]
    assert result['members'] == []
    assert [call[0] for call in engine.changes()] == ['create_container', 'start']


def test_a_second_run_changes_nothing(engine, capsys):
    run(capsys, **WEB)
    engine.calls = []
    again = run(capsys, **WEB)
    assert again['changed'] is False and again['actions'] == [] and again['differences'] == []
    assert engine.changes() == []


def test_networks_addresses_aliases_ports_hostname_and_dns(engine, capsys):
    result = run(capsys, **WEB)
    assert result['changed'] is True, result
    made = engine.last_create
    assert made['network'] == 'appnet'
    assert made['endpoint'] == dict(ipv4_address='172.30.0.10', aliases=['web', 'www'])
    assert made['ports'] == [(80, 'tcp'), (53, 'udp')]
    assert made['host_config'] == dict(network_mode='appnet', restart_policy=dict(Name='unless-stopped'),
                                       port_bindings={'80/tcp': [('127.0.0.1', '8080')], '53/udp': [('', '53')]},
                                       dns=['10.0.0.53'])
    assert made['hostname'] == 'web'
    holder = result['holder']
    assert ('connect_network', holder['id'], 'backnet', None, []) in engine.calls
    assert holder['published_ports'] == ['127.0.0.1:8080:80/tcp', '53:53/udp']
    assert [(n['name'], n['ipv4_address'], n['ip_address']) for n in holder['networks']] == [
        ('appnet', '172.30.0.10', '172.30.0.10'), ('backnet', None, '172.18.0.3')]
    assert holder['hostname'] == 'web' and holder['dns'] == ['10.0.0.53']


def test_a_free_host_port_is_compared_as_asked(engine, capsys):
    run(capsys, image=IMAGE, published_ports=['127.0.0.1::80', '9000'])
    assert engine.last_create['host_config']['port_bindings'] == {'80/tcp': [('127.0.0.1', None)],
                                                                  '9000/tcp': [('', None)]}
    again = run(capsys, image=IMAGE, published_ports=['9000/tcp', '127.0.0.1::80/tcp'])
    assert again['changed'] is False, again['differences']
    assert again['holder']['published_ports'] == ['127.0.0.1::80/tcp', '9000/tcp']


def test_two_host_ports_for_one_container_port(engine, capsys):
    run(capsys, image=IMAGE, published_ports=['127.0.0.1:8080:80', '[::1]:8080:80'])
    assert engine.last_create['ports'] == [(80, 'tcp')]
    assert engine.last_create['host_config']['port_bindings'] == {'80/tcp': [('127.0.0.1', '8080'), ('::1', '8080')]}
    assert run(capsys, image=IMAGE, published_ports=['[::1]:8080:80', '127.0.0.1:8080:80'])['changed'] is False


def test_check_mode_predicts_and_creates_nothing(engine, capsys):
    result = run(capsys, check_mode=True, diff=True, **WEB)
    assert result['changed'] is True and result['actions'] == ['created', 'started']
    assert engine.changes() == [] and engine.store == {}
    holder = result['holder']
    assert holder['id'] is None and holder['running'] is True and holder['exists'] is True
    assert holder['networks'][0] == dict(name='appnet', ipv4_address='172.30.0.10', aliases=['web', 'www'],
                                         ip_address=None)
    assert result['diff']['before'] == {'exists': False}
    assert result['diff']['after']['published_ports'] == ['127.0.0.1:8080:80/tcp', '53:53/udp']
    assert result['diff']['after']['running'] is True


def test_check_mode_of_a_default_holder_shows_the_default_bridge(engine, capsys):
    result = run(capsys, check_mode=True, diff=True, image=IMAGE)
    assert result['diff']['after']['networks'] == [dict(name='bridge', ipv4_address=None, aliases=[])]
    assert result['diff']['after']['published_ports'] == [] and result['diff']['after']['dns'] == []


def test_diff_mode_shows_the_holder_before_and_after(engine, capsys):
    result = run(capsys, diff=True, **WEB)
    assert result['diff']['before'] == {'exists': False}
    after = result['diff']['after']
    assert after['exists'] is True and after['running'] is True and after['image'] == IMAGE
    assert after['labels'] == {HOLDER_LABEL: 'true'}
    assert 'ip_address' not in after['networks'][0]
    again = run(capsys, diff=True, **WEB)
    assert again['changed'] is False and again['diff']['before'] == again['diff']['after']


def test_labels_are_kept_as_strings_and_the_holder_label_is_always_set(engine, capsys):
    result = run(capsys, image=IMAGE, labels={'team': 'web', 'tier': 1, HOLDER_LABEL: 'false'})
    assert engine.last_create['labels'] == {'team': 'web', 'tier': '1', HOLDER_LABEL: 'true'}
    assert result['holder']['labels']['tier'] == '1'
    assert run(capsys, image=IMAGE, labels={'tier': '1'})['changed'] is False


# -- what is needed to create one -----------------------------------------------------------------

def test_an_image_is_needed_to_create(engine, capsys):
    msg = failed_clearly(run(capsys), 'Network holder web-net does not exist on the Docker Engine at '
                                      'unix:///run/fake-docker.sock, and image is needed to create it.')
    assert 'busybox' in msg and engine.changes() == []


def test_an_image_that_is_not_on_the_engine(engine, capsys):
    msg = failed_clearly(run(capsys, image='busybox:9'), 'Image busybox:9 is not on the Docker Engine at')
    assert 'does not pull images' in msg and engine.store == {}


def test_a_network_that_does_not_exist(engine, capsys):
    result = run(capsys, image=IMAGE, networks=[dict(name='nonet')])
    failed_clearly(result, 'Network nonet does not exist on the Docker Engine at')
    assert result['http_status'] == 404 and engine.store == {}


def test_a_second_network_that_does_not_exist_leaves_nothing_behind(engine, capsys):
    result = run(capsys, image=IMAGE, networks=[dict(name='appnet'), dict(name='nonet')])
    failed_clearly(result, 'Network nonet does not exist on the Docker Engine at')
    assert engine.store == {}
    assert [call[0] for call in engine.changes()] == ['create_container', 'connect_network', 'remove_container']


def test_a_connect_that_fails_for_another_reason(engine, capsys):
    engine.connect_error = 'Address already in use'
    result = run(capsys, image=IMAGE, networks=[dict(name='appnet'), dict(name='backnet', ipv4_address='10.9.0.2')])
    failed_clearly(result, 'Container ')
    assert 'could not be connected to network backnet: Address already in use' in result['msg']
    assert engine.store == {}


def test_a_name_taken_meanwhile(engine, capsys, monkeypatch):
    # Another client creates the name between the plan and the creation.
    real = engine.create_container

    def racing(**kwargs):
        engine.add('web-net', network='bridge')
        return real(**kwargs)

    monkeypatch.setattr(engine, 'create_container', racing)
    msg = failed_clearly(run(capsys, image=IMAGE), 'A container named web-net already exists on the Docker Engine at')
    assert 'Conflict.' in msg


def test_an_image_without_sleep(engine, capsys):
    engine.no_sleep.add(IMAGE)
    msg = failed_clearly(run(capsys, image=IMAGE), 'Network holder web-net could not be started: its image '
                                                   'cryo-test/busybox:1 has no sleep')
    assert 'busybox image has sleep' in msg


def test_a_published_port_that_is_taken(engine, capsys):
    engine.taken_ports.add('8080')
    msg = failed_clearly(run(capsys, image=IMAGE, published_ports=['8080:80']),
                         'Network holder web-net could not be started: a port it publishes is taken on the host')
    assert 'port is already allocated' in msg


def test_another_start_failure(engine, capsys):
    engine.start_error = 'cgroup: no space left on device'
    failed_clearly(run(capsys, image=IMAGE), 'Network holder web-net could not be started: cgroup: no space left')


def test_a_command_that_ends(engine, capsys):
    engine.exits = True
    msg = failed_clearly(run(capsys, image=IMAGE, command=['true']),
                         'Network holder web-net stopped right after it started (status exited, exit code 0)')
    assert "['true'] must keep running" in msg


@pytest.mark.parametrize('ports, start', [
    (['80:80:80'], "published_ports entry '80:80:80' is not of the form [ip:]host:container[/proto]"),
    (['8080:80/icmp'], "published_ports entry '8080:80/icmp' is not of the form"),
    (['8000-8010:8000-8010'], "published_ports entry '8000-8010:8000-8010' is not of the form"),
    (['999.1.1.1:80:80'], "published_ports entry '999.1.1.1:80:80' has '999.1.1.1' as its address"),
    (['70000:80'], "published_ports entry '70000:80' has port 70000, outside 1 to 65535."),
])
def test_bad_published_ports(engine, capsys, ports, start):
    failed_clearly(run(capsys, image=IMAGE, published_ports=ports), start)
    assert engine.calls == []


def test_bad_networks(engine, capsys):
    failed_clearly(run(capsys, image=IMAGE, networks=[]), 'networks is empty: list at least one network')
    failed_clearly(run(capsys, image=IMAGE, networks=[dict(name='appnet', ipv4_address='172.30.0.300')]),
                   "ipv4_address '172.30.0.300' of network appnet is not an IPv4 address.")
    failed_clearly(run(capsys, image=IMAGE, networks=[dict(name='appnet'), dict(name='appnet', aliases=['x'])]),
                   'Network appnet is listed twice in networks')
    assert engine.calls == []


# -- an existing holder --------------------------------------------------------------------------

def test_a_stopped_holder_is_started(engine, capsys):
    holder = engine.holder(running=False)
    result = run(capsys, image=IMAGE)
    assert result['changed'] is True and result['actions'] == ['started']
    assert engine.changes() == [('start', holder.id)]
    assert result['holder']['running'] is True and result['holder']['id'] == holder.id


def test_a_stopped_holder_with_running_members_says_they_must_restart(engine, capsys):
    holder = engine.holder(running=False)
    engine.member('web', holder)
    result = run(capsys, image=IMAGE)
    assert result['changed'] is True
    [warning] = warnings_of(result)
    assert warning == ('Network holder web-net started with a new network namespace; web (running) kept running in '
                       'the old one, without network. Restart it so that it joins the new one.')
    assert result['members'] == [dict(name='web', id=engine._find('web').id, running=True)]


def test_check_mode_of_a_start(engine, capsys):
    holder = engine.holder(running=False)
    result = run(capsys, check_mode=True, diff=True, image=IMAGE)
    assert result['changed'] is True and engine.changes() == [] and not holder.running
    assert result['holder']['id'] == holder.id and result['holder']['running'] is True
    assert result['diff']['before']['running'] is False and result['diff']['after']['running'] is True


def test_the_restart_policy_changes_in_place(engine, capsys):
    holder = engine.holder()
    result = run(capsys, image=IMAGE, restart_policy='always')
    assert result['changed'] is True and result['actions'] == ['restart_policy_updated']
    assert result['differences'] == ['restart policy is unless-stopped, not always']
    assert engine.changes() == [('set_restart_policy', holder.id, 'always', 0)]
    assert result['holder']['restart_policy'] == 'always' and result['holder']['id'] == holder.id


def test_a_holder_that_differs_is_not_recreated_unasked(engine, capsys):
    holder = engine.holder(published_ports=['8080:80'])
    result = run(capsys, image=IMAGE, published_ports=['8080:80', '8443:443'], restart_policy='always')
    msg = failed_clearly(result, 'Network holder web-net differs from the options: it publishes 8080:80/tcp, not '
                                 '8080:80/tcp, 8443:443/tcp. Nothing was changed.')
    assert 'set recreate: true' in msg and 'force' not in msg
    assert result['differences'] == ['it publishes 8080:80/tcp, not 8080:80/tcp, 8443:443/tcp',
                                     'restart policy is unless-stopped, not always']
    assert engine.changes() == [] and holder.running


def test_every_difference_is_named(engine, capsys):
    engine.images.add('other:1')
    engine.holder(image='other:1', command=['sleep', '1000'], networks=[dict(name='appnet', aliases=['web'])],
                  hostname='old', dns=['1.1.1.1'], labels={HOLDER_LABEL: 'true', 'team': 'a'})
    networks = [dict(name='backnet'), dict(name='appnet', ipv4_address='172.30.0.9', aliases=['web', 'api'])]
    result = run(capsys, image=IMAGE, networks=networks, hostname='new', dns=['9.9.9.9'], labels={'team': 'b'})
    failed_clearly(result, 'Network holder web-net differs from the options: image is other:1, not '
                           'cryo-test/busybox:1; command is ')
    assert result['differences'] == [
        'image is other:1, not cryo-test/busybox:1',
        "command is ['sleep', '1000'], not ['sleep', '2147483647']",
        'it is not on network backnet',
        'its static address on appnet is none (dynamic), not 172.30.0.9',
        'on appnet it lacks the aliases api',
        'hostname is old, not new',
        "dns is ['1.1.1.1'], not ['9.9.9.9']",
        'labels team=b (is a) differ',
    ]


def test_a_network_the_options_do_not_list(engine, capsys):
    engine.holder(networks=[dict(name='appnet'), dict(name='backnet')])
    result = run(capsys, image=IMAGE, networks=[dict(name='appnet')])
    assert result['differences'] == ['it is also on backnet, which networks does not list']


def test_options_left_out_are_not_compared(engine, capsys):
    engine.holder(networks=[dict(name='appnet')], published_ports=['8080:80'], hostname='web', dns=['1.1.1.1'],
                  labels={HOLDER_LABEL: 'true', 'team': 'a'})
    assert run(capsys)['changed'] is False


def test_recreate_replaces_a_holder_without_members(engine, capsys):
    old = engine.holder(published_ports=['8080:80'])
    result = run(capsys, diff=True, image=IMAGE, published_ports=['8080:80', '8443:443'], recreate=True)
    assert result['changed'] is True and result['actions'] == ['recreated', 'started']
    assert old.id not in engine.store
    new = result['holder']
    assert new['id'] != old.id and new['running'] and new['published_ports'] == ['8080:80/tcp', '8443:443/tcp']
    assert [call[0] for call in engine.changes()] == ['remove_container', 'create_container', 'start']
    assert result['diff']['before']['published_ports'] == ['8080:80/tcp']
    assert result['diff']['after']['published_ports'] == ['8080:80/tcp', '8443:443/tcp']
    assert not warnings_of(result)
    assert run(capsys, image=IMAGE, published_ports=['8080:80', '8443:443'])['changed'] is False


def test_recreate_keeps_the_image_when_none_is_given(engine, capsys):
    engine.images.add('other:1')
    engine.holder(image='other:1', hostname='a')
    result = run(capsys, hostname='b', recreate=True)
    assert result['changed'] is True and engine.last_create['image'] == 'other:1'


def test_check_mode_of_a_recreate(engine, capsys):
    old = engine.holder(hostname='a')
    result = run(capsys, check_mode=True, diff=True, image=IMAGE, hostname='b', recreate=True)
    assert result['changed'] is True and engine.changes() == [] and engine.store[old.id].running
    assert result['holder']['id'] is None and result['holder']['hostname'] == 'b'
    assert result['diff']['before']['hostname'] == 'a' and result['diff']['after']['hostname'] == 'b'


def test_a_holder_with_members_is_not_recreated_without_force(engine, capsys):
    old = engine.holder(hostname='a')
    engine.member('web', old)
    engine.member('cron', old, running=False)
    result = run(capsys, image=IMAGE, hostname='b', recreate=True)
    msg = failed_clearly(result, 'Network holder web-net differs from the options (hostname is a, not b), but '
                                 'cron, web (running) are in its network namespace')
    assert 'Set force: true' in msg and engine.changes() == []
    assert [m['name'] for m in result['members']] == ['cron', 'web']


def test_without_recreate_the_message_names_the_members(engine, capsys):
    old = engine.holder(hostname='a')
    engine.member('web', old)
    msg = failed_clearly(run(capsys, image=IMAGE, hostname='b'), 'Network holder web-net differs from the options')
    assert 'with force: true, since web (running) is in its namespace and must then be created again' in msg


def test_force_recreates_and_names_the_members_cut_off(engine, capsys):
    old = engine.holder(hostname='a')
    engine.member('web', old)
    result = run(capsys, image=IMAGE, hostname='b', recreate=True, force=True)
    assert result['changed'] is True and result['actions'] == ['recreated', 'started']
    [warning] = warnings_of(result)
    assert warning.startswith('web (running) was in the network namespace of holder web-net, which is gone')
    assert 'Create it again with network_mode container:web-net' in warning
    assert [m['name'] for m in result['members']] == ['web']


# -- not a holder -----------------------------------------------------------------------------------

@pytest.mark.parametrize('state', ['present', 'started', 'absent'])
def test_a_container_that_is_not_a_holder_is_left_alone(engine, capsys, state):
    app = engine.add('web-net', network='bridge')
    result = run(capsys, image=IMAGE, state=state, recreate=True, force=True)
    msg = failed_clearly(result, 'Container web-net on the Docker Engine at unix:///run/fake-docker.sock is not a '
                                 'network holder (it has no label cryo.docker.network-holder=true), so it was left alone')
    assert 'set adopt: true' in msg and result['is_holder'] is False
    assert engine.changes() == [] and app.running


def test_adopt_starts_a_container_that_is_not_a_holder(engine, capsys):
    app = engine.add('web-net', running=False, network='bridge')
    result = run(capsys, state='started', adopt=True)
    assert result['changed'] is True and engine.changes() == [('start', app.id)]
    assert result['holder']['is_holder'] is False


def test_adopt_without_recreate_names_the_missing_label(engine, capsys):
    engine.add('web-net', network='bridge', image=IMAGE)
    result = run(capsys, image=IMAGE, adopt=True)
    failed_clearly(result, 'Network holder web-net differs from the options')
    assert 'labels cryo.docker.network-holder=true (is unset) differ' in result['differences']


def test_adopt_and_recreate_make_it_a_holder(engine, capsys):
    app = engine.add('web-net', network='bridge', image=IMAGE)
    result = run(capsys, image=IMAGE, adopt=True, recreate=True)
    assert result['changed'] is True and app.id not in engine.store
    assert result['holder']['is_holder'] is True


# -- state started --------------------------------------------------------------------------------

def test_started_fails_when_the_holder_does_not_exist(engine, capsys):
    result = run(capsys, state='started', members=['web'])
    msg = failed_clearly(result, 'Network holder web-net does not exist on the Docker Engine at '
                                 'unix:///run/fake-docker.sock, so it cannot be started.')
    assert 'state: present' in msg and result['exists'] is False


def test_started_starts_a_stopped_holder_and_compares_nothing(engine, capsys):
    holder = engine.holder(running=False, hostname='a')
    result = run(capsys, state='started', hostname='b', image='whatever:1')
    assert result['changed'] is True and result['actions'] == ['started'] and result['differences'] == []
    assert engine.changes() == [('start', holder.id)]


def test_started_on_a_running_holder_changes_nothing(engine, capsys):
    engine.holder()
    result = run(capsys, state='started')
    assert result['changed'] is False and engine.changes() == []


# -- members --------------------------------------------------------------------------------------

def test_members_in_the_namespace_pass(engine, capsys):
    holder = engine.holder()
    engine.member('web', holder)
    engine.member('cron', holder, running=False)
    engine.member('byname', holder, by='name')
    result = run(capsys, image=IMAGE, members=['web', 'cron', 'byname'])
    assert result['changed'] is False and 'failed' not in result, result
    assert [(m['name'], m['running']) for m in result['members']] == [('byname', True), ('cron', False), ('web', True)]


def test_a_member_in_its_own_network_namespace(engine, capsys):
    holder = engine.holder()
    engine.member('web', holder)
    engine.add('api', network='appnet')
    result = run(capsys, image=IMAGE, hostname='changed', recreate=True, force=True, members=['web', 'api'])
    msg = failed_clearly(result, 'Network holder web-net: 1 of the members is not in its network namespace; nothing '
                                 'was changed. Member api has network mode appnet: it has a network namespace of its '
                                 'own, not that of holder web-net.')
    assert "A container's network mode cannot change after it is created" in msg
    assert 'docker rm api, then docker create --network container:web-net' in msg
    assert result['problems'] == [msg.split('nothing was changed. ')[1]]
    assert engine.changes() == [] and holder.id in engine.store


def test_a_member_that_does_not_exist(engine, capsys):
    engine.holder()
    result = run(capsys, image=IMAGE, members=['ghost', 'other'])
    failed_clearly(result, 'Network holder web-net: 2 of the members are not in its network namespace; nothing was '
                           'changed. Member ghost does not exist. Create it with network_mode container:web-net, or '
                           'remove it from members.')


def test_a_member_of_another_holder(engine, capsys):
    engine.holder()
    other = engine.holder('db-net')
    engine.member('db', other)
    msg = failed_clearly(run(capsys, state='started', members=['db']), 'Network holder web-net: 1 of the members')
    assert 'Member db joins the network namespace of container db-net, not that of holder web-net.' in msg


def test_a_member_of_a_holder_that_was_removed(engine, capsys):
    old = engine.holder()
    engine.member('web', old, running=False)
    engine.remove_container(old.id, force=True)
    engine.holder()
    msg = failed_clearly(run(capsys, image=IMAGE, members=['web']), 'Network holder web-net: 1 of the members')
    assert ('Member web joins the network namespace of container %s, which no longer exists: the engine keeps the id'
            % old.id[:12]) in msg


def test_members_of_a_holder_that_does_not_exist_yet(engine, capsys):
    engine.add('web', network='bridge')
    msg = failed_clearly(run(capsys, image=IMAGE, members=['web']), 'Network holder web-net: 1 of the members')
    assert 'Member web has network mode bridge' in msg and engine.store[engine._find('web').id]
    assert engine.changes() == []


def test_a_member_named_by_the_holder_name_before_it_exists(engine, capsys):
    # An engine that keeps the name (not the id) in the network mode: the member joins once the holder is made.
    engine.add('web', running=False, network='container:web-net')
    result = run(capsys, image=IMAGE, members=['web'])
    assert result['changed'] is True and result['members'] == [dict(name='web', id=engine._find('web').id,
                                                                    running=False)]


# -- absent ---------------------------------------------------------------------------------------

def test_absent_removes_the_holder(engine, capsys):
    holder = engine.holder()
    result = run(capsys, state='absent', diff=True)
    assert result['changed'] is True and result['actions'] == ['removed']
    assert engine.changes() == [('remove_container', holder.id, True)] and engine.store == {}
    assert result['holder'] == dict(name='web-net', exists=False)
    assert result['diff']['before']['exists'] is True and result['diff']['after'] == {'exists': False}
    again = run(capsys, state='absent')
    assert again['changed'] is False and again['actions'] == []


def test_check_mode_of_absent(engine, capsys):
    holder = engine.holder()
    result = run(capsys, state='absent', check_mode=True)
    assert result['changed'] is True and result['holder'] == dict(name='web-net', exists=False)
    assert engine.changes() == [] and holder.id in engine.store


def test_absent_refuses_while_containers_are_in_it(engine, capsys):
    holder = engine.holder()
    engine.member('web', holder)
    result = run(capsys, state='absent')
    msg = failed_clearly(result, 'Network holder web-net was not removed: web (running) is in its network namespace')
    assert 'Remove them first, or set force: true.' in msg
    assert result['members'][0]['name'] == 'web' and engine.changes() == []


def test_absent_with_force_removes_and_names_them(engine, capsys):
    holder = engine.holder()
    engine.member('web', holder, running=False)
    engine.member('cron', holder, running=False)
    result = run(capsys, state='absent', force=True)
    assert result['changed'] is True and engine.changes() == [('remove_container', holder.id, True)]
    [warning] = warnings_of(result)
    assert warning.startswith('cron, web were in the network namespace of holder web-net, which is gone: they have '
                              'no network now and cannot start again. Create them again')


def test_absent_of_a_holder_that_went_away_meanwhile(engine, capsys, monkeypatch):
    engine.holder()
    monkeypatch.setattr(engine, 'remove_container', lambda container, force=False: False)
    assert run(capsys, state='absent')['changed'] is True


def test_an_engine_error_while_looking_is_not_taken_for_a_missing_holder(engine, capsys, monkeypatch):
    def inspect(container):
        raise EngineError('Get "http://%2Fvar%2Frun%2Fdocker.sock/v1.41/containers/web-net/json": context deadline '
                          'exceeded', status=500, engine_message='context deadline exceeded')

    monkeypatch.setattr(engine.client, 'inspect_container', inspect)
    result = run(capsys, image=IMAGE)
    failed_clearly(result, 'Get "http://')
    assert result['http_status'] == 500 and engine.changes() == []
