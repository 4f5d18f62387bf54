# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""docker_warm's manager: a warm container starts from its golden checkpoint on every start.

A container can be warm only when it was created with a runtime of its own (_imagepath): warm arms that runtime on
a checkpoint of the container (its golden checkpoint), cold disarms it. Neither touches the running container: what
changes is how its next start begins.
"""

from __future__ import annotations

import os

from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.module_utils import _criuconf
from ansible_collections.cryo.docker.plugins.module_utils._common import Manager, ModuleError, check_checkpoint_name
from ansible_collections.cryo.docker.plugins.module_utils._engine import EngineError, connect
from ansible_collections.cryo.docker.plugins.module_utils._imagepath import (
    Runtimes, Unavailable, armed_definition, golden, is_slot_runtime, plain_definition)


class WarmManager(Manager):
    """plan: the container's runtime and slot, what state is wanted; act: arm or disarm; report."""

    def __init__(self, module):
        super().__init__(module)
        self.engine = connect(self.params)
        self.name = self.params['container']
        try:
            self.info = self.engine.inspect(self.name)
        except EngineError as exc:
            if exc.status == 404:
                raise ModuleError('Container %s does not exist on the Docker Engine at %s.'
                                  % (self.name, self.params['docker_host']))
            raise
        self.container_id = self.info['Id']
        self.container_name = self.info['Name'].lstrip('/')
        self.runtime = self.info['HostConfig'].get('Runtime') or 'runc'
        self.runtimes = None
        self.before = None
        self.golden = None  # (name, path) wanted

    def plan(self):
        if not is_slot_runtime(self.runtime):
            raise ModuleError(
                'Container %s runs with runtime %s, and a container\'s runtime is fixed when it is created: only a '
                'container created with a runtime of its own can be warm. Export it (docker_checkpoint_export with '
                'leave_running: true) and import it with docker_checkpoint_import and warm: true.'
                % (self.container_name, self.runtime), runtime=self.runtime)
        try:
            self.runtimes = Runtimes.find(self.engine, self.params['docker_host'])
        except Unavailable as exc:
            raise ModuleError('Container %s cannot be made warm or cold here: %s.' % (self.container_name, exc.reason))
        slot = self.runtimes.read_slot(self.runtime)
        if slot.get('container_id') != self.container_id:
            raise ModuleError('Runtime %s of container %s has no slot for it in %s: it was not made by this engine\'s '
                              'imports. Import the container again with warm: true.'
                              % (self.runtime, self.container_name, self.runtimes.slots_root))
        self.before = self.state()
        if self.params['state'] == 'cold':
            self.changed = self.before['warm'] or self.runtimes.defined(self.runtime) != plain_definition(
                self.runtimes.base)
            return
        checkpoint = self.params['checkpoint'] or self.before['checkpoint']
        if not checkpoint:
            raise ModuleError('Container %s has no golden checkpoint yet: give checkpoint, the name of one of its '
                              'checkpoints (docker_checkpoint with leave_running: true takes one).'
                              % self.container_name)
        check_checkpoint_name(checkpoint)
        path = os.path.join(store.engine_dir(self.engine.data_root(), self.container_id), checkpoint)
        if not store.looks_like_checkpoint(path):
            raise ModuleError('Container %s has no checkpoint %s (no %s/inventory.img): a warm container starts from '
                              'one of its own checkpoints. cryo.docker.docker_checkpoint_info lists them.'
                              % (self.container_name, checkpoint, path))
        self.golden = (checkpoint, path)
        self.check_options(checkpoint, path)
        self.changed = (not self.before['warm'] or self.before['checkpoint'] != checkpoint
                        or self.runtimes.pointed(self.runtime) != path
                        or self.runtimes.defined(self.runtime) != armed_definition(
                            self.runtimes.base, self.runtimes.slot(self.runtime)))

    def check_options(self, checkpoint, path):
        """A warm start is the engine's restore, with the host's runc.conf as it is then: a golden checkpoint taken
        with CRIU options of its own (tcp_established, ...) restores only where that file gives them."""
        try:
            recorded = _criuconf.check_recorded(store.read_metadata(path).get('criu_options'))
        except ValueError as exc:
            raise ModuleError('Checkpoint %s of container %s cannot be its golden checkpoint: %s (%s). Nothing was '
                              'changed; take another one with cryo.docker.docker_checkpoint.'
                              % (checkpoint, self.container_name, exc, os.path.join(path, store.METADATA_FILE)))
        lacking = _criuconf.host_lacks(recorded)
        if lacking:
            self.module.warn('Golden checkpoint %s of container %s was taken with CRIU options that %s does not give '
                             '(%s): every start of the warm container is a restore the engine runs with that file, '
                             'which may fail without them. Add them to it (the cryo.docker.criu role: '
                             'criu_tcp_established, criu_file_locks), or take the golden checkpoint without them.'
                             % (checkpoint, self.container_name, _criuconf.CONF,
                                ', '.join('%s=%s' % item for item in sorted(lacking.items()))))

    def state(self):
        found = golden(self.runtimes.read_slot(self.runtime))
        return dict(warm=found is not None, checkpoint=found[0] if found else None)

    def act(self):
        if self.params['state'] == 'cold':
            self.runtimes.make_cold(self.runtime)
        else:
            self.runtimes.make_warm(self.runtime, *self.golden)

    def report(self):
        after = self.before if not self.changed else (
            dict(warm=False, checkpoint=None) if self.params['state'] == 'cold'
            else dict(warm=True, checkpoint=self.golden[0]))
        state = self.engine.inspect(self.container_id)['State']
        result = dict(changed=self.changed, warm=after['warm'], checkpoint=after['checkpoint'],
                      previous_checkpoint=self.before['checkpoint'],
                      container=dict(name=self.container_name, id=self.container_id, runtime=self.runtime,
                                     status=state.get('Status'), running=bool(state.get('Running'))))
        if self.changed and self.module._diff:
            result['diff'] = dict(before=self.before, after=after)
        return result
