# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""Network holders: containers that only own a network namespace, for application containers that
run in it (network_mode container:<holder>), so that those restore on Docker 28 and 29.

What a holder should be (from the module's options) and what it is (from the engine's inspect) are
both put in one shape, `config`, compared field by field; members are found by their NetworkMode.
The engine stores a member's NetworkMode as container:<full id of the holder> whatever name it was
created with (measured on Docker 20.10.24): a holder that is removed and created again is another
container, and its old members must be created again too.

HolderEngine adds to _engine.Engine the container calls a holder needs (create, remove, connect to
a network), over the docker SDK's public APIClient methods; they are general and belong in
_engine.Engine.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.cryo.docker.plugins.module_utils._common import HOLDER_LABEL, ModuleError
from ansible_collections.cryo.docker.plugins.module_utils._engine import Engine, EngineError
from ansible_collections.cryo.docker.plugins.module_utils._engine import connect as engine_connect

# The command of a holder: sleep for 68 years, with any sleep (GNU coreutils takes "infinity", busybox
# does not; both take a number of seconds that fits in 32 bits).
DEFAULT_COMMAND = ['sleep', '2147483647']
# PID 1 of a container ignores SIGTERM unless it handles it, and sleep does not: the engine would wait
# for its stop timeout on every stop. The holder holds no state, so it is killed at once.
STOP_SIGNAL = 'SIGKILL'
DEFAULT_NETWORK = 'bridge'

PORT_RE = re.compile(r'^(?:(?P<ip>\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):)?(?:(?P<host>\d*):)?'
                     r'(?P<container>\d+)(?:/(?P<proto>tcp|udp|sctp))?$')

# A hostname the kernel takes (at most 64 bytes) made of what hostnames are made of (RFC 1123, and "_" that many use).
HOSTNAME_RE = re.compile(r'^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,62}[A-Za-z0-9_])?$')

# The fields of a holder's config, in the order a diff shows them.
FIELDS = ('image', 'command', 'networks', 'published_ports', 'hostname', 'dns', 'restart_policy', 'labels')


class HolderEngine(Engine):
    """_engine.Engine with the container calls a network holder needs. All three are general."""

    def create_container(self, name, image, command=None, entrypoint=None, host_config=None, network=None,
                         endpoint=None, **config):
        """Create (do not start) container `name` from `image`; its id.

        host_config: keyword arguments of APIClient.create_host_config; network, endpoint: the network it
        is created on and that endpoint's create_endpoint_config keyword arguments (one network: before
        API 1.44 the engine takes only one at creation, connect_network adds the others); config: other
        keyword arguments of APIClient.create_container (hostname, labels, ports, stop_signal, ...)."""
        client = self.client
        kwargs = dict(config)
        if host_config is not None:
            kwargs['host_config'] = client.create_host_config(**host_config)
        if network:
            kwargs['networking_config'] = client.create_networking_config(
                {network: client.create_endpoint_config(**(endpoint or {}))})
        try:
            created = self._sdk(client.create_container, image, command=command, entrypoint=entrypoint, name=name,
                                **kwargs)
        except EngineError as exc:
            raise self._explain_create(exc, name, image, network)
        return created['Id']

    def _explain_create(self, exc, name, image, network):
        text = (exc.engine_message or exc.msg or '').lower()
        if exc.status == 404 and 'image' in text:
            exc.msg = ('Image %s is not on the Docker Engine at %s, and the module does not pull images. Pull or '
                       'load it first (docker pull, or docker save | docker load from a host that has it).'
                       % (image, self.host))
        elif exc.status == 404 and 'network' in text:
            exc.msg = ('Network %s does not exist on the Docker Engine at %s (%s). Create it first (docker network '
                       'create), or fix its name.' % (network, self.host, exc.engine_message))
        elif exc.status == 409:
            exc.msg = ('A container named %s already exists on the Docker Engine at %s (%s).'
                       % (name, self.host, exc.engine_message))
        else:
            exc.msg = 'Container %s could not be created: %s' % (name, exc.msg)
        return exc

    def remove_container(self, container, force=False):
        """Remove a container (force: running, too: the engine kills it). False when it did not exist."""
        try:
            self._sdk(self.client.remove_container, container, force=force)
        except EngineError as exc:
            if exc.status == 404:
                return False
            exc.msg = 'Container %s could not be removed: %s' % (container, exc.msg)
            raise
        return True

    def connect_network(self, container, network, ipv4_address=None, aliases=None):
        """Connect a container (created or running) to a network, with a static address and aliases."""
        try:
            self._sdk(self.client.connect_container_to_network, container, network, ipv4_address=ipv4_address,
                      aliases=aliases or None)
        except EngineError as exc:
            raise self._explain_connect(exc, container, network)

    def _explain_connect(self, exc, container, network):
        if exc.status == 404 and 'network' in (exc.engine_message or '').lower():
            exc.msg = ('Network %s does not exist on the Docker Engine at %s (%s). Create it first (docker '
                       'network create), or fix its name.' % (network, self.host, exc.engine_message))
        else:
            exc.msg = 'Container %s could not be connected to network %s: %s' % (container, network, exc.msg)
        return exc


def connect(params):
    """A HolderEngine for a module's connection options (as _engine.connect)."""
    return engine_connect(params, HolderEngine)


# -- published ports --------------------------------------------------------------------------

def parse_port(spec):
    """'[ip:][host:]container[/proto]' as (container, proto, ip, host), all str; ModuleError when it is not."""
    match = PORT_RE.match(str(spec).strip())
    if not match:
        raise ModuleError('published_ports entry %r is not of the form [ip:]host:container[/proto] (for example '
                          '8080:80, 127.0.0.1:8080:80, 127.0.0.1::80 for a free host port, 53:53/udp). Give one '
                          'port per entry.' % (spec,))
    ip = (match.group('ip') or '').strip('[]')
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ModuleError('published_ports entry %r has %r as its address, which is not an IP address.'
                              % (spec, ip))
    for port in (match.group('container'), match.group('host')):
        if port and not 0 < int(port) < 65536:
            raise ModuleError('published_ports entry %r has port %s, outside 1 to 65535.' % (spec, port))
    return (match.group('container'), match.group('proto') or 'tcp', ip, match.group('host') or '')


def port_text(container, proto, ip, host):
    """One published port as this module writes it: [ip:][host:]container/proto."""
    address = '[%s]' % ip if ':' in ip else ip
    if address:
        return '%s:%s:%s/%s' % (address, host, container, proto)
    if host:
        return '%s:%s/%s' % (host, container, proto)
    return '%s/%s' % (container, proto)


def port_tuples(port_bindings):
    """A PortBindings map (HostConfig's, or NetworkSettings' Ports of a running container) as
    [(container, proto, ip, host)], all str."""
    out = []
    for key, bindings in sorted((port_bindings or {}).items()):
        container, _sep, proto = key.partition('/')
        for binding in bindings or [{}]:
            out.append((container, proto or 'tcp', (binding or {}).get('HostIp') or '',
                        (binding or {}).get('HostPort') or ''))
    return out


def bound_ports(port_bindings):
    """A PortBindings map as sorted [ip:][host:]container/proto strings."""
    return sorted(port_text(*entry) for entry in port_tuples(port_bindings))


def port_arguments(parsed):
    """(ports, port_bindings) for APIClient.create_container and create_host_config."""
    ports, bindings = [], {}
    for container, proto, ip, host in parsed:
        key = '%s/%s' % (container, proto)
        if key not in bindings:
            ports.append((int(container), proto))
            bindings[key] = []
        bindings[key].append((ip, host or None))
    return ports, bindings


# -- what a holder is, and what it should be ----------------------------------------------------

def network_target(network_mode):
    """The container (name or id) whose namespace a NetworkMode joins, or None."""
    mode = network_mode or ''
    return mode[len('container:'):] if mode.startswith('container:') else None


def refers_to(target, name, cid):
    """Whether a container:<target> network mode means the container name/cid."""
    if not target:
        return False
    target = target.lstrip('/')
    return target == name or target == cid or (len(target) >= 12 and bool(cid) and cid.startswith(target))


def is_holder(info):
    return ((info.get('Config') or {}).get('Labels') or {}).get(HOLDER_LABEL) == 'true'


def _policy(value):
    name = (value or {}).get('Name') if isinstance(value, dict) else value
    return name or 'no'


def current_config(info):
    """The config of an existing container, in the shape of desired_config."""
    config = info.get('Config') or {}
    host_config = info.get('HostConfig') or {}
    networks = []
    for name, endpoint in sorted(((info.get('NetworkSettings') or {}).get('Networks') or {}).items()):
        endpoint = endpoint or {}
        aliases = sorted(set((endpoint.get('Aliases') or []) + (endpoint.get('DNSNames') or [])))
        networks.append(dict(name=name, ipv4_address=((endpoint.get('IPAMConfig') or {}).get('IPv4Address') or None),
                             aliases=aliases))
    return dict(
        image=config.get('Image'),
        command=list(config.get('Entrypoint') or []) + list(config.get('Cmd') or []),
        networks=networks,
        published_ports=bound_ports(host_config.get('PortBindings')),
        hostname=config.get('Hostname'),
        dns=list(host_config.get('Dns') or []),
        restart_policy=_policy(host_config.get('RestartPolicy')),
        labels=dict(config.get('Labels') or {}),
    )


def desired_config(params):
    """The config the options ask for; None for what the options leave open (not compared)."""
    networks = None
    if params.get('networks') is not None:
        networks = []
        seen = set()
        for entry in params['networks']:
            if entry['name'] in seen:
                raise ModuleError('Network %s is listed twice in networks: give each network once, with all its '
                                  'aliases.' % entry['name'])
            seen.add(entry['name'])
            address = entry.get('ipv4_address')
            if address:
                try:
                    ipaddress.IPv4Address(address)
                except ValueError:
                    raise ModuleError('ipv4_address %r of network %s is not an IPv4 address. Give one such as '
                                      '172.18.0.10, or leave ipv4_address out.' % (address, entry['name']))
            networks.append(dict(name=entry['name'], ipv4_address=address or None,
                                 aliases=sorted(set(entry.get('aliases') or []))))
    ports = None
    if params.get('published_ports') is not None:
        ports = sorted(set(port_text(*parse_port(spec)) for spec in params['published_ports']))
    hostname = params.get('hostname')
    if hostname is not None and not HOSTNAME_RE.match(hostname):
        raise ModuleError('hostname %r is not a hostname: at most 64 letters, digits, "-", "_" and ".", starting and '
                          'ending with a letter or digit (the container would not start with it). Give one such as '
                          'web-1, or leave hostname out.' % (hostname,))
    for server in params.get('dns') or []:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise ModuleError('dns entry %r is not an IP address: each entry is a DNS server, written into the '
                              'namespace\'s /etc/resolv.conf. Give addresses such as 10.0.0.2.' % (server,))
    labels = dict(params.get('labels') or {})
    labels[HOLDER_LABEL] = 'true'
    return dict(
        image=params.get('image'),
        command=list(params.get('command') or DEFAULT_COMMAND),
        networks=networks,
        published_ports=ports,
        hostname=params.get('hostname'),
        dns=list(params['dns']) if params.get('dns') is not None else None,
        restart_policy=params.get('restart_policy') or 'unless-stopped',
        labels=labels,
    )


def differences(desired, current):
    """[(field, sentence)] for each field where the holder is not as desired (None: not compared)."""
    out = []

    def differ(field, sentence):
        out.append((field, sentence))

    if desired['image'] is not None and desired['image'] != current['image']:
        differ('image', 'image is %s, not %s' % (current['image'], desired['image']))
    if desired['command'] != current['command']:
        differ('command', 'command is %s, not %s' % (current['command'], desired['command']))
    if desired['networks'] is not None:
        have = {net['name']: net for net in current['networks']}
        for net in desired['networks']:
            found = have.get(net['name'])
            if found is None:
                differ('networks', 'it is not on network %s' % net['name'])
                continue
            if net['ipv4_address'] and net['ipv4_address'] != found['ipv4_address']:
                differ('networks', 'its static address on %s is %s, not %s'
                       % (net['name'], found['ipv4_address'] or 'none (dynamic)', net['ipv4_address']))
            missing = sorted(set(net['aliases']) - set(found['aliases']))
            if missing:
                differ('networks', 'on %s it lacks the aliases %s' % (net['name'], ', '.join(missing)))
        extra = sorted(set(have) - set(net['name'] for net in desired['networks']))
        if extra:
            differ('networks', 'it is also on %s, which networks does not list' % ', '.join(extra))
    if desired['published_ports'] is not None and desired['published_ports'] != current['published_ports']:
        differ('published_ports', 'it publishes %s, not %s' % (
            ', '.join(current['published_ports']) or 'no port', ', '.join(desired['published_ports']) or 'no port'))
    if desired['hostname'] is not None and desired['hostname'] != current['hostname']:
        differ('hostname', 'hostname is %s, not %s' % (current['hostname'], desired['hostname']))
    if desired['dns'] is not None and desired['dns'] != current['dns']:
        differ('dns', 'dns is %s, not %s' % (current['dns'], desired['dns']))
    if desired['restart_policy'] != current['restart_policy']:
        differ('restart_policy', 'restart policy is %s, not %s' % (current['restart_policy'], desired['restart_policy']))
    wrong = sorted(key for key, value in desired['labels'].items() if current['labels'].get(key) != value)
    if wrong:
        differ('labels', 'labels %s differ' % ', '.join(
            '%s=%s (is %s)' % (key, desired['labels'][key], current['labels'].get(key, 'unset')) for key in wrong))
    return out


def shown(config, networks_default=None):
    """A config with the open fields (None) filled for a diff: what the holder will have."""
    out = dict(config)
    if out['networks'] is None:
        out['networks'] = networks_default if networks_default is not None else [
            dict(name=DEFAULT_NETWORK, ipv4_address=None, aliases=[])]
    for field, empty in (('published_ports', []), ('dns', [])):
        if out[field] is None:
            out[field] = empty
    return out


def create_arguments(name, desired):
    """The keyword arguments of HolderEngine.create_container for a holder, and the other networks
    [(name, ipv4_address, aliases)] to connect before it starts."""
    networks = desired['networks'] or [dict(name=DEFAULT_NETWORK, ipv4_address=None, aliases=[])]
    first, rest = networks[0], networks[1:]
    ports, bindings = port_arguments([parse_port(spec) for spec in desired['published_ports'] or []])
    host_config = dict(network_mode=first['name'], restart_policy=dict(Name=desired['restart_policy']))
    if bindings:
        host_config['port_bindings'] = bindings
    if desired['dns']:
        host_config['dns'] = desired['dns']
    endpoint = {}
    if first['ipv4_address']:
        endpoint['ipv4_address'] = first['ipv4_address']
    if first['aliases']:
        endpoint['aliases'] = first['aliases']
    command = desired['command']
    kwargs = dict(name=name, image=desired['image'], entrypoint=command[:1], command=command[1:],
                  host_config=host_config, network=first['name'], endpoint=endpoint, labels=desired['labels'],
                  stop_signal=STOP_SIGNAL, ports=ports or None)
    if desired['hostname']:
        kwargs['hostname'] = desired['hostname']
    return kwargs, [(net['name'], net['ipv4_address'], net['aliases']) for net in rest]


# -- members --------------------------------------------------------------------------------------

def members_of(listed, name, cid):
    """[{name, id, running}] of the containers (the engine's container list) in the namespace of the
    container name/cid."""
    out = []
    for entry in listed or []:
        mode = (entry.get('HostConfig') or {}).get('NetworkMode')
        if entry.get('Id') != cid and refers_to(network_target(mode), name, cid):
            names = entry.get('Names') or ['/' + entry['Id'][:12]]
            out.append(dict(name=names[0].lstrip('/'), id=entry['Id'], running=entry.get('State') == 'running'))
    return sorted(out, key=lambda member: member['name'])


def member_problem(member, info, holder, holder_info, resolve):
    """Why container `member` (its inspect `info`, None when it does not exist) is not in the namespace of
    the holder named `holder` (its inspect `holder_info`, None when it does not exist yet); None when it
    is. resolve(target) names the container a NetworkMode target means (None when it is gone)."""
    recreate = ('A container\'s network mode cannot change after it is created: create it again with network_mode '
                'container:%s (docker rm %s, then docker create --network container:%s with its other options, '
                'without -p/--publish, --hostname, --dns or --network-alias, which belong to the holder), then '
                'start it.' % (holder, member, holder))
    if info is None:
        return ('Member %s does not exist. Create it with network_mode container:%s, or remove it from members.'
                % (member, holder))
    mode = (info.get('HostConfig') or {}).get('NetworkMode') or 'default'
    target = network_target(mode)
    if target is None:
        return 'Member %s has network mode %s: it has a network namespace of its own, not that of holder %s. %s' % (
            member, mode, holder, recreate)
    if holder_info is not None and refers_to(target, holder, holder_info['Id']):
        return None
    if holder_info is None and target.lstrip('/') == holder:
        return None
    other = resolve(target)
    if other is None:
        return ('Member %s joins the network namespace of container %s, which no longer exists: the engine keeps the '
                'id of the container it joins, so a holder removed and created again is another container. %s'
                % (member, target[:12], recreate))
    return 'Member %s joins the network namespace of container %s, not that of holder %s. %s' % (
        member, other, holder, recreate)
