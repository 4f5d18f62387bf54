#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_network_holder
short_description: Create and keep a network holder, a container that owns the network of others
version_added: 0.2.0
description:
  - A network holder is a container that does nothing but own a network namespace - its networks,
    static addresses, published ports, DNS names and aliases, hostname and DNS servers. Application
    containers run in it with C(network_mode container:<holder>) and have no network of their own.
  - On Docker 26.0.0 and 28.0 to 29.x a container with a network namespace of its own (bridge, a user
    network, V(none)) cannot be restored from a checkpoint (the engine fails before CRIU runs,
    containerd/containerd#12141, moby/moby#50750). A container in a holder's namespace restores, into
    that namespace, and its service answers again through the holder's published ports. The holder
    itself is never checkpointed - it holds no state; the P(cryo.docker.maintenance#role) role starts it
    again (cold) before it restores the containers in it.
  - The module creates the holder if it is missing, starts it if it is stopped, and reports how an
    existing holder differs from the options. A holder cannot be changed in place (except its restart
    policy) - O(recreate=true) removes it and creates it again.
  - The engine records the full id of the holder in each member's network mode. A holder that is
    removed and created again is another container, and its old members cannot start any more - they
    must be created again too. So the module refuses to remove or recreate a holder that has members
    unless O(force=true).
  - The holder carries the label C(cryo.docker.network-holder=true); a container without it is never
    changed or removed unless O(adopt=true).
  - The module never creates, changes or restarts application containers. O(members) only checks,
    before anything is done, that the named containers run in the holder's namespace.
extends_documentation_fragment:
  - cryo.docker._docker
  - cryo.docker._attributes
  - cryo.docker._attributes.action
attributes:
  diff_mode:
    support: full
    details:
      - The diff shows the holder's configuration before and after - whether it exists and runs, image,
        command, networks, published ports, hostname, DNS servers, restart policy and labels.
  idempotent:
    support: full
options:
  name:
    description:
      - Name of the network holder container.
      - The application containers join it with C(network_mode container:<name>).
    type: str
    required: true
  state:
    description:
      - V(present) - the holder exists as the options say, and runs. It is created if it is missing
        (O(image) is needed then) and started if it is stopped.
      - V(started) - an existing holder runs; it is started if it is stopped. Nothing else is compared,
        and a holder that does not exist is an error - this is what the maintenance role uses after a
        reboot, when the holder must be the very container its members joined.
      - V(absent) - the holder is removed (killed first if it runs). Refused while containers are in its
        network namespace, unless O(force=true).
    type: str
    choices: [present, started, absent]
    default: present
  image:
    description:
      - The image of the holder. Needed to create it; when it is not given, an existing holder's image is
        not compared (and a recreated holder keeps its image).
      - Any small image that has a C(sleep) program does - for example a C(busybox) image (about 2 MB;
        this collection's test image is one, built from Debian's C(busybox-static)). The holder runs
        nothing but O(command).
      - The module does not pull images - the image must be on the engine.
    type: str
  command:
    description:
      - The command the holder runs, as a list, in place of the image's entrypoint and command. It must
        keep running - the holder stops when it ends.
      - The default works with any C(sleep), GNU coreutils or busybox (busybox does not take
        C(infinity)). The holder's stop signal is C(SIGKILL) - a C(sleep) as PID 1 ignores C(SIGTERM), so
        every stop would otherwise wait for the engine's timeout.
    type: list
    elements: str
    default: [sleep, '2147483647']
  networks:
    description:
      - The networks the holder is on, with their static addresses and aliases. The first is the one it
        is created on, the others are connected before it starts.
      - When not given, a new holder is on the engine's default bridge network, and an existing holder's
        networks are not compared.
      - Static addresses and aliases need a user-defined network (C(docker network create)); the default
        bridge takes neither.
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the network. It must exist.
        type: str
        required: true
      ipv4_address:
        description:
          - A static IPv4 address on that network. Without one the holder gets a new address from the
            network's pool each time it starts - after a reboot the address usually changes.
        type: str
      aliases:
        description:
          - DNS names of the holder on that network, besides its name. Other containers on the network
            reach the members through them.
        type: list
        elements: str
  published_ports:
    description:
      - Ports of the holder's namespace published on the host, as C([ip:]host:container[/proto]) - for
        example C(8080:80), C(127.0.0.1:8080:80), C(127.0.0.1::80) (any free host port), C(53:53/udp).
        One port per entry. The members' servers listen on them - a member cannot publish ports itself.
      - When not given, an existing holder's published ports are not compared; a new holder publishes none.
    type: list
    elements: str
  hostname:
    description:
      - Hostname of the namespace (the members share it) - at most 64 letters, digits, C(-), C(_) and C(.),
        starting and ending with a letter or digit. When not given, the engine uses the holder's short id,
        and an existing holder's hostname is not compared.
    type: str
  dns:
    description:
      - DNS servers for the namespace, as IP addresses. When not given, the engine's defaults apply and an
        existing holder's are not compared.
    type: list
    elements: str
  restart_policy:
    description:
      - Restart policy of the holder. With V(unless-stopped) (or V(always)) the engine starts it again
        when the engine starts, for example after a reboot.
      - The only setting that an existing holder changes in place.
    type: str
    choices: ["no", on-failure, always, unless-stopped]
    default: unless-stopped
  labels:
    description:
      - Labels of the holder. C(cryo.docker.network-holder=true) is always added - it is how the
        maintenance role and M(cryo.docker.checkpoint_preflight) know a holder.
      - Labels the holder has beyond these are left alone.
    type: dict
  members:
    description:
      - Names of application containers that must be in the holder's network namespace. With
        O(state=present) and O(state=started), each must exist and run with
        C(network_mode container:<holder>), or the module fails before anything is done, saying how to
        create it again - a container's network mode cannot change after it is created.
      - Only checked; the module never creates, changes or starts them. Not used with O(state=absent).
    type: list
    elements: str
    default: []
  recreate:
    description:
      - When an existing holder differs from the options (other than its restart policy), remove it and
        create it as the options say. Without this the module fails and lists the differences.
      - A holder that has members is recreated only with O(force=true) as well.
    type: bool
    default: false
  force:
    description:
      - Remove (O(state=absent)) or recreate (O(recreate=true)) the holder even though containers are in
        its network namespace. They lose their network, and cannot start again until they are created
        again with C(network_mode container:<holder>) - the module warns and names them.
    type: bool
    default: false
  adopt:
    description:
      - Accept an existing container of that name that does not carry the holder label as the holder -
        start it (O(state=started)), remove it (O(state=absent)), or, with O(recreate=true), replace it
        with a labelled holder (O(state=present); the missing label is a difference).
      - Without it such a container is never touched - it is most likely an application container of
        the same name.
    type: bool
    default: false
notes:
  - The collection's C(docs/use-cases/network-holder.md) shows a service moved into a holder, step by step.
  - The module does not need the engine's experimental mode; checkpoint and restore of the members do.
  - Members cannot have their own published ports, hostname, DNS servers or network aliases - the
    engine refuses them with C(network_mode container:); the holder has them.
  - On a cold start (after a reboot, or when the module starts or recreates it) the holder gets a new
    network namespace - give O(networks[].ipv4_address) for an address that stays. Members that were
    running in the old namespace stay there, without network; restart them (or, in the maintenance
    flow, they are restored into the new one).
seealso:
  - module: cryo.docker.docker_checkpoint
  - module: cryo.docker.docker_restore
  - module: cryo.docker.checkpoint_preflight
  - name: moby/moby#50750
    description: The Docker 28 bug - restoring a container with a network namespace of its own fails.
    link: https://github.com/moby/moby/issues/50750
  - name: containerd/containerd#12141
    description: The same failure as containerd sees it (C(bind-mount /proc/0/ns/net)).
    link: https://github.com/containerd/containerd/issues/12141
  - name: Container networking (network mode container)
    description: How a container joins the network stack of another container.
    link: https://docs.docker.com/engine/network/#container-networks
author:
  - cryo.docker contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: A holder for the web server, on appnet, serving on the host's port 8080
  cryo.docker.docker_network_holder:
    name: web-net
    image: busybox:1.36
    networks:
      - name: appnet
        ipv4_address: 172.30.0.10
        aliases: [web]
    published_ports:
      - "8080:80"
    hostname: web

# Then the application container joins it, for example:
#   docker run -d --name web --network container:web-net nginx:1.27

- name: The same holder, and check that the web server runs in its namespace
  cryo.docker.docker_network_holder:
    name: web-net
    image: busybox:1.36
    networks: [{name: appnet, ipv4_address: 172.30.0.10, aliases: [web]}]
    published_ports: ["8080:80"]
    hostname: web
    members: [web]

- name: After a reboot, start the holder again before restoring its members
  cryo.docker.docker_network_holder:
    name: web-net
    state: started

- name: Publish another port - the holder must be created again, and so must its members
  cryo.docker.docker_network_holder:
    name: web-net
    image: busybox:1.36
    networks: [{name: appnet, ipv4_address: 172.30.0.10, aliases: [web]}]
    published_ports: ["8080:80", "8443:443"]
    recreate: true
    force: true

- name: Remove a holder that is no longer used
  cryo.docker.docker_network_holder:
    name: web-net
    state: absent
"""

RETURN = r"""
holder:
  description:
    - The holder after the run (predicted in check mode, where C(id) is null for a holder that would be
      created). Only C(name) and C(exists) when it does not exist.
  returned: success
  type: dict
  contains:
    name:
      description: Name of the holder.
      type: str
      sample: web-net
    id:
      description: Full id of the holder container.
      type: str
      sample: 6cd0d937ffae2911731bd49cef582bcb32493be0ab1f08b1c71876bf00d80292
    exists:
      description: Whether the holder exists.
      type: bool
      sample: true
    running:
      description: Whether it runs.
      type: bool
      sample: true
    status:
      description: The engine's status of the container (running, exited, created ...).
      type: str
      sample: running
    is_holder:
      description: Whether it carries the label C(cryo.docker.network-holder=true) (false for a container adopted with O(adopt=true)).
      type: bool
      sample: true
    image:
      description: Its image.
      type: str
      sample: busybox:1.36
    command:
      description: What it runs (entrypoint and command).
      type: list
      elements: str
      sample: [sleep, '2147483647']
    networks:
      description:
        - Its networks, each with C(name), C(ipv4_address) (the static address, or null), C(aliases) and
          C(ip_address) (the address it has now; empty while stopped).
      type: list
      elements: dict
      sample: [{name: appnet, ipv4_address: 172.30.0.10, aliases: [web], ip_address: 172.30.0.10}]
    published_ports:
      description: Its published ports, as C([ip:][host:]container/proto).
      type: list
      elements: str
      sample: ["8080:80/tcp"]
    hostname:
      description: The hostname of its namespace.
      type: str
      sample: web
    dns:
      description: Its DNS servers (empty for the engine's defaults).
      type: list
      elements: str
      sample: []
    restart_policy:
      description: Its restart policy.
      type: str
      sample: unless-stopped
    labels:
      description: Its labels.
      type: dict
      sample: {cryo.docker.network-holder: "true"}
members:
  description:
    - The containers in the holder's network namespace (all of them, not only O(members)), each with
      C(name), C(id) and C(running). After a removal or a recreation, those that were in the old holder.
  returned: success
  type: list
  elements: dict
  sample: [{name: web, id: 3db2fb40e3463df60a235b0f47177b91c0c1d6c6715287195653dad083e95474, running: true}]
actions:
  description:
    - What the run did (would do, in check mode), in order - V(created), V(recreated), V(removed),
      V(restart_policy_updated), V(started). Empty when nothing changed.
  returned: success
  type: list
  elements: str
  sample: [created, started]
differences:
  description:
    - How the existing holder differed from the options before the run, one sentence each. Also
      returned, with the module's failure, when it differs and O(recreate) is false.
  returned: success, and failure because the holder differs
  type: list
  elements: str
  sample: ["it publishes 8080:80/tcp, not 8080:80/tcp, 8443:443/tcp"]
problems:
  description: Why each member in O(members) is not in the holder's network namespace.
  returned: failure because of O(members)
  type: list
  elements: str
exists:
  description: False when the module fails because the holder does not exist (O(state=started), or no O(image) to create it).
  returned: failure because the holder does not exist
  type: bool
  sample: false
is_holder:
  description: False when the module refuses a container of that name that does not carry the holder label (see O(adopt)).
  returned: failure because the container is not a holder
  type: bool
  sample: false
"""

from ansible_collections.cryo.docker.plugins.module_utils._common import HOLDER_LABEL, Manager, ModuleError, run
from ansible_collections.cryo.docker.plugins.module_utils._engine import EngineError, docker_argument_spec
from ansible_collections.cryo.docker.plugins.module_utils._holder import (
    DEFAULT_COMMAND,
    FIELDS,
    connect,
    create_arguments,
    current_config,
    desired_config,
    differences,
    is_holder,
    members_of,
    member_problem,
    shown,
)


def names(members):
    return ', '.join('%s%s' % (m['name'], ' (running)' if m['running'] else '') for m in members)


class Holder(Manager):
    """plan: what the holder is, whether it differs, who is in its namespace, whether the members are
    right; act: create, recreate, remove, start, update the restart policy; report: the holder now."""

    def __init__(self, module):
        super().__init__(module)
        self.name = self.params['name']
        if self.params['networks'] is not None and not self.params['networks']:
            raise ModuleError('networks is empty: list at least one network, or leave it out for the engine\'s '
                              'default bridge network.')
        if self.params['labels']:
            self.params['labels'] = dict((str(k), str(v)) for k, v in self.params['labels'].items())
        self.desired = desired_config(self.params)
        self.engine = connect(self.params)
        self.info = self.before_info = self.inspect(self.name)
        self.current = current_config(self.info) if self.info else None
        self.members = []
        self.actions = []
        self.differences = []

    def inspect(self, container):
        """The container's inspect data, or None when it does not exist."""
        try:
            return self.engine.inspect(container)
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise

    @property
    def where(self):
        return 'on the Docker Engine at %s' % self.engine.host

    # -- plan

    def plan(self):
        state = self.params['state']
        if self.info is not None:
            if not is_holder(self.info) and not self.params['adopt']:
                raise ModuleError(
                    'Container %s %s is not a network holder (it has no label %s=true), so it was left alone: it '
                    'is most likely an application container of the same name. Choose another name for the holder, '
                    'or set adopt: true to take this container as the holder.'
                    % (self.name, self.where, HOLDER_LABEL), is_holder=False)
            self.members = members_of(self.engine.containers(all=True), self.info['Name'].lstrip('/'), self.info['Id'])
        if state == 'absent':
            self.plan_absent()
        elif state == 'started':
            self.plan_started()
        else:
            self.plan_present()
        self.changed = bool(self.actions)

    def plan_absent(self):
        if self.info is None:
            return
        if self.members and not self.params['force']:
            raise ModuleError(
                'Network holder %s was not removed: %s %s in its network namespace, and would lose their network for '
                'good - the engine keeps the holder\'s id in their network mode, so a new holder of the same name does '
                'not bring them back. Remove them first, or set force: true.'
                % (self.name, names(self.members), 'is' if len(self.members) == 1 else 'are'),
                members=self.members)
        self.actions = ['removed']

    def plan_started(self):
        if self.info is None:
            raise ModuleError(
                'Network holder %s does not exist %s, so it cannot be started. Create it with state: present (and an '
                'image); containers that joined a holder of that name before must be created again with network_mode '
                'container:%s.' % (self.name, self.where, self.name), exists=False)
        self.check_members()
        if not self.info['State'].get('Running'):
            self.actions = ['started']

    def plan_present(self):
        self.check_members()
        if self.info is None:
            if not self.desired['image']:
                raise ModuleError(
                    'Network holder %s does not exist %s, and image is needed to create it. Give image: any small '
                    'image that has sleep will do, for example a busybox image (the module does not pull it).'
                    % (self.name, self.where), exists=False)
            self.actions = ['created', 'started']
            return
        found = differences(self.desired, self.current)
        self.differences = [sentence for _field, sentence in found]
        hard = [sentence for field, sentence in found if field != 'restart_policy']
        if hard:
            self.plan_recreate(hard)
            return
        if found:
            self.actions.append('restart_policy_updated')
        if not self.info['State'].get('Running'):
            self.actions.append('started')

    def plan_recreate(self, hard):
        what = '; '.join(hard)
        if not self.params['recreate']:
            raise ModuleError(
                'Network holder %s differs from the options: %s. Nothing was changed. A holder cannot be changed in '
                'place (only its restart policy): set recreate: true to remove it and create it as the options say%s.'
                % (self.name, what, self.members_warning()), differences=self.differences, members=self.members)
        if self.members and not self.params['force']:
            raise ModuleError(
                'Network holder %s differs from the options (%s), but %s %s in its network namespace: recreating the '
                'holder cuts them off for good (the engine keeps the holder\'s id in their network mode). Nothing was '
                'changed. Set force: true to recreate it anyway, then create those containers again with network_mode '
                'container:%s.' % (self.name, what, names(self.members), 'is' if len(self.members) == 1 else 'are', self.name),
                differences=self.differences, members=self.members)
        if self.desired['image'] is None:
            self.desired['image'] = self.current['image']
        self.actions = ['recreated', 'started']

    def members_warning(self):
        if not self.members:
            return ''
        return (' - with force: true, since %s %s in its namespace and must then be created again'
                % (names(self.members), 'is' if len(self.members) == 1 else 'are'))

    def check_members(self):
        """Every container in `members` runs in this holder's namespace; else fail, before anything is done."""
        problems = []
        for member in self.params['members']:
            problem = member_problem(member, self.inspect(member), self.name, self.info, self.resolve)
            if problem:
                problems.append(problem)
        if problems:
            raise ModuleError('Network holder %s: %d of the members %s not in its network namespace; nothing was '
                              'changed. %s' % (self.name, len(problems), 'is' if len(problems) == 1 else 'are',
                                               ' '.join(problems)), problems=problems)

    def resolve(self, target):
        info = self.inspect(target)
        return info['Name'].lstrip('/') if info else None

    # -- act

    def act(self):
        for action in self.actions:
            if action == 'removed':
                self.engine.remove_container(self.info['Id'], force=True)
                self.warn_cut_off()
            elif action == 'recreated':
                self.engine.remove_container(self.info['Id'], force=True)
                self.warn_cut_off()
                self.create()
            elif action == 'created':
                self.create()
            elif action == 'restart_policy_updated':
                self.engine.set_restart_policy(self.info['Id'], {'Name': self.desired['restart_policy']})
            elif action == 'started':
                self.start()
        if 'removed' not in self.actions:
            self.info = self.engine.inspect(self.info['Id'])

    def warn_cut_off(self):
        if self.members:
            self.module.warn('%s %s in the network namespace of holder %s, which is gone: %s no network now and '
                             'cannot start again. Create %s again with network_mode container:%s.'
                             % (names(self.members), 'was' if len(self.members) == 1 else 'were', self.name,
                                'it has' if len(self.members) == 1 else 'they have',
                                'it' if len(self.members) == 1 else 'them', self.name))

    def create(self):
        kwargs, more = create_arguments(self.name, self.desired)
        cid = self.engine.create_container(**kwargs)
        try:
            for network, address, aliases in more:
                self.engine.connect_network(cid, network, address, aliases)
        except EngineError:
            # Leave no half-made holder behind.
            self.engine.remove_container(cid, force=True)
            raise
        self.info = self.engine.inspect(cid)

    def start(self):
        # After a recreate the members are cut off for good (warn_cut_off said so); here they only need a restart.
        running = [m for m in self.members if m['running']] if 'recreated' not in self.actions else []
        try:
            self.engine.start(self.info['Id'])
        except EngineError as exc:
            text = (exc.engine_message or exc.msg or '').lower()
            if 'executable file not found' in text or ('no such file or directory' in text and 'exec' in text):
                exc.msg = ('Network holder %s could not be started: its image %s has no %s (%s). Use an image that '
                           'has it (a busybox image has sleep), or another command.'
                           % (self.name, self.info['Config'].get('Image'), self.desired['command'][0],
                              exc.engine_message))
            elif 'port is already allocated' in text or 'address already in use' in text:
                exc.msg = ('Network holder %s could not be started: a port it publishes is taken on the host (%s). '
                           'Free it, or publish another one.' % (self.name, exc.engine_message))
            else:
                exc.msg = 'Network holder %s could not be started: %s' % (self.name, exc.msg)
            raise
        self.info = self.engine.inspect(self.info['Id'])
        state = self.info['State']
        if not state.get('Running'):
            raise ModuleError('Network holder %s stopped right after it started (status %s, exit code %s%s): its '
                              'command %s must keep running.'
                              % (self.name, state.get('Status'), state.get('ExitCode'),
                                 ', %s' % state['Error'] if state.get('Error') else '',
                                 self.desired['command']))
        if running:
            self.module.warn('Network holder %s started with a new network namespace; %s kept running in the old one, '
                             'without network. Restart %s so that %s the new one.'
                             % (self.name, names(running), 'it' if len(running) == 1 else 'them',
                                'it joins' if len(running) == 1 else 'they join'))

    # -- report

    def describe(self, info):
        if info is None:
            return dict(name=self.name, exists=False)
        config = current_config(info)
        addresses = dict((name, (endpoint or {}).get('IPAddress') or '')
                         for name, endpoint in ((info.get('NetworkSettings') or {}).get('Networks') or {}).items())
        for net in config['networks']:
            net['ip_address'] = addresses.get(net['name'], '')
        out = dict(name=info['Name'].lstrip('/'), id=info['Id'], exists=True, running=bool(info['State'].get('Running')),
                   status=info['State'].get('Status'), is_holder=is_holder(info))
        out.update(config)
        return out

    def predicted(self):
        """The holder as the planned actions would leave it (check mode)."""
        if 'removed' in self.actions:
            return dict(name=self.name, exists=False)
        if 'created' in self.actions or 'recreated' in self.actions:
            out = shown(self.desired)
            out.update(id=None, is_holder=True)
        else:
            out = dict(self.current, restart_policy=self.desired['restart_policy'])
            out.update(id=self.info['Id'], is_holder=is_holder(self.info))
        out['networks'] = [dict(net, ip_address=None) for net in out['networks']]
        out.update(name=self.name, exists=True, running=True, status='running')
        return out

    @staticmethod
    def config_of(described):
        """The part of a described holder that a diff shows."""
        if not described.get('exists'):
            return dict(exists=False)
        out = dict(exists=True, running=described['running'])
        for field in FIELDS:
            out[field] = described[field]
        out['networks'] = [dict(name=n['name'], ipv4_address=n['ipv4_address'], aliases=n['aliases'])
                           for n in described['networks']]
        return out

    def report(self):
        if not self.changed:
            after = self.describe(self.info)
        elif self.module.check_mode:
            after = self.predicted()
        elif 'removed' in self.actions:
            after = self.describe(None)
        else:
            after = self.describe(self.info)
            if 'recreated' not in self.actions:
                self.members = members_of(self.engine.containers(all=True), self.name, self.info['Id'])
        result = dict(changed=self.changed, holder=after, members=self.members, actions=self.actions,
                      differences=self.differences)
        if self.module._diff:
            result['diff'] = dict(before=self.config_of(self.describe(self.before_info)), after=self.config_of(after))
        return result


def main():
    argument_spec = docker_argument_spec(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'started', 'absent']),
        image=dict(type='str'),
        command=dict(type='list', elements='str', default=list(DEFAULT_COMMAND)),
        networks=dict(type='list', elements='dict', options=dict(
            name=dict(type='str', required=True),
            ipv4_address=dict(type='str'),
            aliases=dict(type='list', elements='str'),
        )),
        published_ports=dict(type='list', elements='str'),
        hostname=dict(type='str'),
        dns=dict(type='list', elements='str'),
        restart_policy=dict(type='str', default='unless-stopped', choices=['no', 'on-failure', 'always', 'unless-stopped']),
        labels=dict(type='dict'),
        members=dict(type='list', elements='str', default=[]),
        recreate=dict(type='bool', default=False),
        force=dict(type='bool', default=False),
        adopt=dict(type='bool', default=False),
    )
    run(Holder, argument_spec)


if __name__ == '__main__':
    main()
