# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""Groups: containers checkpointed as one point in time (a Compose project, or a list marked as one group).

Who is in a group (members: the containers of a Compose project by its labels), in which order they come back
(dependency_order: Compose's depends_on label and a network shared with another member's namespace, dependencies
first), the record each member's checkpoint carries (record) and how a restore knows a set of checkpoints is one
group's (check_one_group). Freezing and thawing the members together is Freeze's.
"""

from __future__ import annotations

import os
import time

from ansible_collections.cryo.docker.plugins.module_utils._common import C_LOCALE, ModuleError

# The labels Compose v2 writes on every container it creates.
PROJECT_LABEL = 'com.docker.compose.project'
SERVICE_LABEL = 'com.docker.compose.service'
DEPENDS_LABEL = 'com.docker.compose.depends_on'
ONEOFF_LABEL = 'com.docker.compose.oneoff'
NUMBER_LABEL = 'com.docker.compose.container-number'


def labels(info):
    return (info.get('Config') or {}).get('Labels') or {}


def name_of(info):
    return (info.get('Name') or info.get('Id') or '').lstrip('/')


def project_of(container_labels):
    """The Compose project a container belongs to by its labels; None for a container of no project and for a
    `docker compose run` one-off (which is no member of its project)."""
    container_labels = container_labels or {}
    if str(container_labels.get(ONEOFF_LABEL, 'False')).lower() == 'true':
        return None
    return container_labels.get(PROJECT_LABEL) or None


def members(engine, project):
    """The inspects of the Compose project's containers (its `docker compose run` one-offs left out), or a
    ModuleError when it has none."""
    found = []
    for summary in engine.containers(all=True):
        if (summary.get('Labels') or {}).get(PROJECT_LABEL) != project:
            continue
        info = engine.find(summary['Id'])
        if info is None or project_of(labels(info)) != project:
            continue
        found.append(info)
    if not found:
        raise ModuleError('Compose project %s has no containers on the Docker Engine at %s (none has the label %s=%s). '
                          'Check the project name (docker compose ls) and docker_host.'
                          % (project, engine.host, PROJECT_LABEL, project), project=project)
    return found


def depends_on(info):
    """The services a Compose container depends on, from Compose's label ("db:service_healthy:false,cache:...")."""
    value = labels(info).get(DEPENDS_LABEL) or ''
    return sorted({item.split(':', 1)[0].strip() for item in value.split(',') if item.strip()})


def network_container(info):
    """The container whose network namespace this one joins (network_mode container:X), or None."""
    mode = (info.get('HostConfig') or {}).get('NetworkMode') or ''
    return mode.split(':', 1)[1] if mode.startswith('container:') else None


def dependencies(infos):
    """{member name: set of member names it needs running first}."""
    by_service, by_key = {}, {}
    for info in infos:
        name = name_of(info)
        service = labels(info).get(SERVICE_LABEL)
        if service:
            by_service.setdefault(service, set()).add(name)
        by_key[name] = by_key[info.get('Id', name)] = name
    needs = {}
    for info in infos:
        name = name_of(info)
        wanted = set()
        for service in depends_on(info):
            wanted |= by_service.get(service, set())
        joined = network_container(info)
        if joined:
            wanted.add(by_key.get(joined) or next((by_key[key] for key in by_key if key.startswith(joined)), joined))
        needs[name] = {other for other in wanted if other in by_key.values() and other != name}
    return needs


def sort_key(info):
    number = labels(info).get(NUMBER_LABEL) or '0'
    return (labels(info).get(SERVICE_LABEL) or '', int(number) if number.isdigit() else 0, name_of(info))


def dependency_order(infos):
    """The members' names, each after the members it depends on (databases and network holders first); members
    that do not depend on each other in the order of their service and name. A cycle is a ModuleError."""
    needs = dependencies(infos)
    left = sorted(infos, key=sort_key)
    order = []
    while left:
        ready = [info for info in left if needs[name_of(info)] <= set(order)]
        if not ready:
            raise ModuleError('The group cannot be ordered: %s depend on each other in a cycle (Compose\'s depends_on '
                              'labels, network_mode container:). Fix the dependencies, or restore the containers one '
                              'by one.' % ', '.join(name_of(info) for info in left))
        order.append(name_of(ready[0]))
        left.remove(ready[0])
    return order


def new_id():
    return '%x-%s' % (int(time.time()), os.urandom(4).hex())


def record(group_id, project, order, frozen):
    """What each member's checkpoint records of its group."""
    return dict(id=group_id, project=project, members=list(order), frozen_seconds=frozen)


def check_one_group(checkpoint, recorded):
    """recorded: {member: its checkpoint's group record or None}. A ModuleError unless every member's checkpoint is
    the same group's, taken with every one of these members."""
    ids = {(entry or {}).get('id') for entry in recorded.values()}
    if len(ids) == 1 and None not in ids:
        wanted = set((next(iter(recorded.values())) or {}).get('members') or [])
        if wanted == set(recorded):
            return
        raise ModuleError('Checkpoint %s was taken of the group %s, not of these containers (%s): restoring part of '
                          'a group, or more, would not be one point in time. Name the same containers (or the '
                          'project) that were checkpointed.'
                          % (checkpoint, ', '.join(sorted(wanted)), ', '.join(sorted(recorded))))
    apart = sorted(name for name, entry in recorded.items() if not entry)
    raise ModuleError('Checkpoint %s of these containers is not one group\'s checkpoint: %s. A group restore brings '
                      'back only checkpoints taken together (docker_checkpoint with project or group), so that the '
                      'application comes back as one point in time; nothing was restored. Restore them one by one '
                      '(without group) to accept what they hold.'
                      % (checkpoint, ('%s were not taken as a group' % ', '.join(apart)) if apart else
                         'they were taken by different group checkpoints'))


class Freeze:
    """The members frozen together: pause all (the engine's freezer, as `docker pause`), and afterwards thaw all or
    kill all while still frozen (a SIGKILL: nothing of theirs runs after the dump). window() is how long the first
    was frozen before the last was thawed or killed."""

    def __init__(self, engine, container_ids):
        self.engine = engine
        self.ids = list(container_ids)
        self.paused = []
        self.started = self.ended = None

    def pause(self):
        self.started = time.monotonic()
        for container_id in self.ids:
            self.engine.pause(container_id)
            self.paused.append(container_id)

    def thaw(self):
        """Unpause every member this froze; the ones that could not be, with why."""
        failed = {}
        for container_id in self.paused:
            try:
                if self.engine.inspect(container_id)['State'].get('Paused'):
                    self.engine.unpause(container_id)
            except ModuleError as exc:
                failed[container_id] = exc.msg
        self.ended = time.monotonic()
        return failed

    def kill(self):
        for container_id in self.paused:
            self.engine.kill(container_id)
        self.ended = time.monotonic()
        for container_id in self.paused:
            self.engine.wait_stopped(container_id)

    def window(self):
        if self.started is None:
            return None
        return round((self.ended or time.monotonic()) - self.started, 3)


class NetworkLock:
    """A restored member's network locked until the whole group is back, as CRIU locks a namespace while it restores
    it: its TCP out (loopback aside) dropped by a rule in its own network namespace. The engine brings a member's
    address up before CRIU puts its sockets back, and a segment that reaches it in between is answered with a reset:
    the kernel of a member restored earlier retransmits, answers and probes even while its processes are frozen, so
    freezing them is not enough. Dropped, the segments are sent again once the lock is gone. What it sent before the
    lock to an address that was not up yet waits in its neighbour table until that address answers - which it does
    once the engine brings the next member up - so that table is flushed once the lock is on.

    Needs nsenter, iptables and ip on the engine's host (CRIU's own network lock for tcp-established runs iptables too);
    where they are missing, or a rule cannot be added, the module says so and the restore goes on unlocked."""

    RULE = ['OUTPUT', '-p', 'tcp', '!', '-o', 'lo', '-m', 'comment', '--comment', 'cryo.docker group restore',
            '-j', 'DROP']

    def __init__(self, module):
        self.module = module
        self.nsenter = module.get_bin_path('nsenter')
        self.iptables = module.get_bin_path('iptables', opt_dirs=['/usr/sbin', '/sbin'])
        self.ip = module.get_bin_path('ip', opt_dirs=['/usr/sbin', '/sbin', '/usr/bin', '/bin'])
        self.locked = {}  # network namespace -> the pid it is entered through
        self.problems = []

    def run(self, pid, action):
        rc, out, err = self.module.run_command(
            [self.nsenter, '--net=/proc/%d/ns/net' % pid, self.iptables, '-w', action] + self.RULE,
            environ_update=C_LOCALE)
        return rc, ' '.join((err or out or '').split())[:200]

    def lock(self, name, pid):
        if not (self.nsenter and self.iptables and self.ip):
            self.problems.append('nsenter, iptables or ip is not installed')
            return
        try:
            namespace = os.readlink('/proc/%d/ns/net' % pid)
        except OSError as exc:
            self.problems.append('%s: %s' % (name, exc))
            return
        if namespace in self.locked:
            return
        rc, why = self.run(pid, '-I')
        if rc != 0:
            self.problems.append('%s: iptables exited %s: %s' % (name, rc, why))
            return
        self.locked[namespace] = pid
        # What it sent before the lock to an address that is not up yet waits in its neighbour table for the address
        # to answer (the next member's, once the engine brings it up): dropped too.
        rc, out, err = self.module.run_command([self.nsenter, '--net=/proc/%d/ns/net' % pid, self.ip, 'neigh', 'flush',
                                                'all'], environ_update=C_LOCALE)
        if rc != 0:
            self.problems.append('%s: ip neigh flush exited %s: %s' % (name, rc, ' '.join((err or out or '').split())[:200]))

    def unlock(self):
        for pid in self.locked.values():
            while self.run(pid, '-D')[0] == 0:
                pass
        self.locked = {}
