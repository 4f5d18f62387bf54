# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""Retention: once docker_checkpoint has taken (and recorded) its checkpoints, the oldest of the collection's
checkpoints go, by three rules - keep_last and max_size for each container checkpointed, host_max_size for every
container of the engine - and never one a container needs.

Only checkpoints with the collection's record (cryo-checkpoint.json, written by docker_checkpoint and
docker_checkpoint_import) are counted or removed: one made by `docker checkpoint create` or another tool is left
as it is. Kept whatever the rules say (protected):
  - a checkpoint this run has just taken;
  - the golden checkpoint of a warm container (it starts from it);
  - of a container that is not running, its newest checkpoint and the newest it stopped at (taken without
    leave_running): the one it resumes from;
  - the checkpoints of a container another operation holds (its lock is busy).

plan() reads the checkpoints and chooses (choose(), pure: the unit tests feed it entries); act() removes them
through the engine, as state=absent does; report() lists what went. A removal that fails, or a cap that cannot
be met with what may go, is a warning: the checkpoint just taken is never undone for it.
"""

from __future__ import annotations

import os

from ansible.module_utils.common.text.formatters import bytes_to_human

from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.module_utils._engine import EngineError
from ansible_collections.cryo.docker.plugins.module_utils._imagepath import golden, slot_record
from ansible_collections.cryo.docker.plugins.module_utils._lock import Busy, ContainerLock, lock_path

RULES = ('keep_last', 'max_size', 'host_max_size')


def wanted(params):
    return any(params.get(rule) for rule in RULES)


def size_of(entries):
    return sum(entry['size'] or 0 for entry in entries)


def choose(entries, containers, keep_last=None, max_size=None, host_max_size=None):
    """The removals the rules ask for: ([(entry, rule)], [why a cap is not met]).

    entries: the collection's checkpoints in view, each a describe() entry with `container_id`, `here` (in the
    place this run wrote its checkpoints), `taken` (just taken by this run) and `protected` (why it must stay,
    or None). containers: the ids of the containers checkpointed, which keep_last and max_size apply to (their
    checkpoints here); host_max_size applies to every entry. The oldest go first; the just taken count newest."""
    order = sorted(entries, key=lambda entry: (entry['taken'], store.taken_key(entry)), reverse=True)
    removals, unmet = [], []
    gone = set()

    def remove(entry, rule):
        removals.append((entry, rule))
        gone.add(entry['directory'])

    def cap(group, limit, rule, what):
        left = [entry for entry in group if entry['directory'] not in gone]
        total = size_of(left)
        for entry in reversed(left):
            if total <= limit:
                break
            if not entry['protected']:
                remove(entry, rule)
                total -= entry['size'] or 0
        if total > limit:
            kept = [entry for entry in left if entry['directory'] not in gone]
            unmet.append('%s %s of %s is not met: its checkpoints take %s, and those left must stay (%s).'
                         % (rule, bytes_to_human(limit), what, bytes_to_human(total),
                            '; '.join('%s: %s' % (label(entry), entry['protected']) for entry in kept)))

    for container_id in containers:
        own = [entry for entry in order if entry['container_id'] == container_id and entry['here']]
        if not own:
            continue
        if keep_last:
            for entry in reversed(own[keep_last:]):
                if not entry['protected']:
                    remove(entry, 'keep_last')
        if max_size:
            cap(own, max_size, 'max_size', 'container %s' % own[0]['container'])
    if host_max_size:
        cap(order, host_max_size, 'host_max_size', 'the host')
    return removals, unmet


def label(entry):
    return '%s/%s' % (entry['container'], entry['name'])


class Retention:
    """The rules applied after a checkpoint batch (docker_checkpoint's): plan, act, report.

    taken: the checkpoints the batch took (or, in check mode, would take): dicts of container_id, container, name,
    base (where it is written) and estimate (its expected size, for a prediction). held: ids of the containers
    whose lock the batch holds."""

    def __init__(self, module, engine, params, data_root, taken, held):
        self.module = module
        self.engine = engine
        self.params = params
        self.data_root = data_root
        self.custom_dir = params['checkpoint_dir']
        self.taken = taken
        self.held = set(held)
        self.locks = []
        self.inspected = {}
        self.removals = []
        self.removed = []

    # -- plan

    def plan(self, predict=False):
        if not predict and not all(os.path.isdir(os.path.join(item['base'], item['name'])) for item in self.taken):
            self.module.warn('Retention (%s) was not applied: the checkpoint files are not on this host, so which '
                             'checkpoint is the oldest cannot be read. Run the module on the engine\'s host.'
                             % ', '.join(rule for rule in RULES if self.params.get(rule)))
            return
        entries = self.scan(predict)
        self.protect(entries, predict)
        self.removals, unmet = choose(entries, [item['container_id'] for item in self.taken],
                                      self.params['keep_last'], self.params['max_size'],
                                      self.params['host_max_size'])
        for why in unmet:
            self.module.warn('Retention: %s Nothing more was removed; the checkpoint just taken is kept.' % why)

    def scan(self, predict):
        """The collection's checkpoints the rules look at, by directory: each checkpointed container's in the place
        it was written; with host_max_size every container's in the engine's place, and in checkpoint_dir."""
        found = {}

        def add(path, name, container_name, container_id, here):
            meta = store.read_metadata(path)
            if not meta:
                return  # not the collection's: neither counted nor removed
            entry = store.describe(path, name, container_name, container_id)
            entry.update(here=here, taken=False, protected=None, custom=bool(self.custom_dir) and here,
                         leave_running=meta.get('leave_running'))
            found[path] = entry

        here_ids = {item['container_id'] for item in self.taken}
        if self.params['host_max_size']:
            for summary in self.engine.containers(all=True):
                try:
                    names = self.engine.list_checkpoints(summary['Id'])
                except EngineError:
                    continue  # a dead container, or one removed meanwhile: its checkpoints are not counted
                base = store.engine_dir(self.data_root, summary['Id'])
                for name in names:
                    add(os.path.join(base, name), name, summary['Names'][0].lstrip('/'), summary['Id'],
                        not self.custom_dir and summary['Id'] in here_ids)
        if self.custom_dir:
            for name in store.list_dir(self.custom_dir):
                path = os.path.join(self.custom_dir, name)
                add(path, name, None, None, True)
        else:
            for item in self.taken:
                for name in self.engine.list_checkpoints(item['container_id']):
                    if os.path.join(item['base'], name) not in found:
                        add(os.path.join(item['base'], name), name, item['container'], item['container_id'], True)
        for item in self.taken:
            path = os.path.join(item['base'], item['name'])
            if not predict and path not in found:  # taken, but its record not written: it counts all the same
                found[path] = dict(store.describe(path, item['name'], item['container'], item['container_id']),
                                   here=True, custom=bool(self.custom_dir), leave_running=item['leave_running'])
            if predict:
                found[path] = dict(name=item['name'], container=item['container'], container_id=item['container_id'],
                                   directory=path, size=item['estimate'], created=store.now_iso(),
                                   leave_running=item['leave_running'], here=True, custom=bool(self.custom_dir))
            found[path].update(taken=True, protected='just taken')
        return list(found.values())

    def protect(self, entries, predict):
        """Mark what must stay: the golden checkpoint of a warm container, what a stopped container resumes from,
        the checkpoints of a container another operation holds (its lock is taken here, but in check mode)."""
        by_container = {}
        for entry in entries:
            by_container.setdefault(entry['container_id'], []).append(entry)
        for container_id, own in by_container.items():
            if self.inspect(container_id) is None:
                continue  # removed (or not recorded): no container resumes from these
            if not predict and container_id not in self.held:
                if not self.lock(container_id):
                    for entry in own:
                        entry['protected'] = entry['protected'] or 'its container is busy with another operation'
                    continue
                del self.inspected[container_id]  # read again, now that no other operation can change it
            info = self.inspect(container_id)
            if info is None:
                continue
            for entry in own:
                entry['container'] = entry['container'] or info['Name'].lstrip('/')
            warm = golden(slot_record(self.data_root, info['HostConfig'].get('Runtime')))
            for entry in own:
                if warm and not entry['custom'] and entry['name'] == warm[0]:
                    entry['protected'] = entry['protected'] or 'the golden checkpoint of warm container %s' % (
                        entry['container'])
            if info['State'].get('Running'):
                continue
            order = store.newest_first(own)
            stopped_at = [entry for entry in order if entry['leave_running'] is False]
            for entry in order[:1] + stopped_at[:1]:
                entry['protected'] = entry['protected'] or 'container %s is %s and resumes from it' % (
                    entry['container'], info['State'].get('Status'))

    def lock(self, container_id):
        """Take the lock of another container whose checkpoints may go; False when another operation holds it."""
        lock = ContainerLock(lock_path(self.data_root, container_id))
        try:
            self.locks.append(lock.acquire('a retention', None))
        except (Busy, OSError):
            return False
        return True

    def inspect(self, container_id):
        if container_id not in self.inspected:
            try:
                self.inspected[container_id] = self.engine.inspect(container_id) if container_id else None
            except EngineError:
                self.inspected[container_id] = None
        return self.inspected[container_id]

    # -- act

    def act(self):
        for entry, rule in self.removals:
            self.remove(entry, rule)

    def release(self):
        """Let the other containers' locks go (the caller's finally: a plan that failed half-way too)."""
        for lock in self.locks:
            lock.release()
        self.locks = []

    def remove(self, entry, rule):
        """Remove one checkpoint through the engine, as state=absent does. In a checkpoint_dir the engine removes
        <dir>/<name> whichever container the call names: the one it was taken of when it still exists."""
        if entry['custom']:
            container_id = entry['container_id'] if self.inspect(entry['container_id']) else \
                self.taken[0]['container_id']
        else:
            container_id = entry['container_id']
        try:
            self.engine.delete_checkpoint(container_id, entry['name'], self.custom_dir if entry['custom'] else None)
        except EngineError as exc:
            self.module.warn('Retention (%s): checkpoint %s was not removed: %s' % (rule, label(entry), exc.msg))
            return
        self.removed.append(self.describe(entry, rule))

    # -- report

    @staticmethod
    def describe(entry, rule):
        return dict(name=entry['name'], container=entry['container'], container_id=entry['container_id'],
                    directory=entry['directory'], size=entry['size'], created=entry['created'], rule=rule)

    def report(self, predict=False):
        """What went (or, in check mode, would go)."""
        if predict:
            return [self.describe(entry, rule) for entry, rule in self.removals]
        return list(self.removed)
