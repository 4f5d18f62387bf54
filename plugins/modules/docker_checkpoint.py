#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_checkpoint
short_description: Checkpoint a running Docker container with CRIU, or remove a checkpoint
version_added: 0.1.0
description:
  - Freezes a running container into a checkpoint on disk (CRIU, through the Docker Engine API),
    so that M(cryo.docker.docker_restore) can later resume it exactly where it stopped.
  - Idempotent - an existing checkpoint of that name is left alone.
  - A checkpoint that fails leaves the container running; the module checks that it is and
    quotes the C(Error) lines of CRIU's log.
  - Records beside CRIU's images (in C(cryo-checkpoint.json)) the container, the time, whether
    it was taken with O(leave_running), and the restart policy it had, so that
    M(cryo.docker.docker_restore) can put that policy back.
  - Checkpoint files hold the memory of the container's processes, secrets included.
    Directories this module creates are mode C(0700), owned by root.
extends_documentation_fragment:
  - cryo.docker._docker
  - cryo.docker._docker.checkpoint
  - cryo.docker._attributes
options:
  state:
    description:
      - V(present) makes sure the checkpoint exists, taking it if needed.
      - V(absent) removes the checkpoint.
    type: str
    choices: [present, absent]
    default: present
  leave_running:
    description:
      - Keep the container running after the checkpoint. By default the container stops
        (it is C(exited), exit code 137) and resumes only from the checkpoint.
    type: bool
    default: false
  checkpoint_dir:
    description:
      - Absolute path of a directory to write the checkpoint into (as C(<checkpoint_dir>/<checkpoint>)),
        instead of the engine's own place under its data root. Created as C(0700) if missing.
      - The engine cannot restore from such a directory directly; M(cryo.docker.docker_restore)
        stages the checkpoint back, which is also how it moves to another container or host.
    type: path
  force:
    description:
      - Take the checkpoint again even if one of that name exists. The new checkpoint is taken
        under a temporary name and replaces the old one only once it succeeded.
    type: bool
    default: false
  hold_restart_policy:
    description:
      - When the container stops at the checkpoint and has the restart policy C(always),
        C(unless-stopped) or C(on-failure), set its policy to C(no) first. Otherwise the engine
        cold-starts it right after the checkpoint, and again when the engine starts, and the
        checkpoint is useless.
      - The original policy is recorded with the checkpoint;
        M(cryo.docker.docker_restore) puts it back.
    type: bool
    default: true
  allow_unrestorable:
    description:
      - Stop the container at the checkpoint even though this engine cannot restore it.
      - The module knows engine releases whose restore is broken (the rules of
        M(cryo.docker.checkpoint_preflight)) - Docker 25.0.0 to 25.0.3 for every container, Docker
        26.0.0 and 28.0 to 29.x for a container with a network namespace of its own (bridge, V(none),
        a user network), whose restore fails before CRIU runs. On such an engine the module refuses,
        before anything is done, to stop the container at the checkpoint - unless this is V(true).
      - With O(leave_running=true) the checkpoint is taken (for inspection, a forensic snapshot) with a
        warning that it cannot be restored here.
      - Containers on the host network, or in the network namespace of a network holder
        (C(container:<holder>), see C(cryo.docker.docker_network_holder)), restore on those engines.
    type: bool
    default: false
seealso:
  - name: CRIU and Docker
    description: How Docker checkpoints a container with CRIU, and what CRIU cannot dump.
    link: https://criu.org/Docker
  - module: cryo.docker.docker_restore
  - module: cryo.docker.docker_checkpoint_info
  - module: cryo.docker.checkpoint_preflight
author:
  - cryo.docker contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Freeze the counter container (it stops and waits for its restore)
  cryo.docker.docker_checkpoint:
    container: cr
    checkpoint: checkpoint1

- name: Forensic snapshot of a live container, which keeps running
  cryo.docker.docker_checkpoint:
    container: api
    checkpoint: "incident-{{ ansible_date_time.epoch }}"
    leave_running: true
    checkpoint_dir: /srv/forensics

- name: Warm-start image of a slow application, taken once it is ready
  cryo.docker.docker_checkpoint:
    container: search
    checkpoint: warm
    leave_running: true

- name: Rewind point before a risky change, replacing the previous one
  cryo.docker.docker_checkpoint:
    container: worker
    checkpoint: before-migration
    leave_running: true
    force: true

- name: Freeze a container to move it to another host
  cryo.docker.docker_checkpoint:
    container: cache
    checkpoint: move
    checkpoint_dir: /srv/checkpoints

- name: Remove a checkpoint that is no longer needed
  cryo.docker.docker_checkpoint:
    container: cr
    checkpoint: checkpoint1
    state: absent
"""

RETURN = r"""
checkpoint:
  description:
    - The checkpoint as it is after the run, with the fields of each element of
      RV(cryo.docker.docker_checkpoint_info#module:checkpoints) - name, container, container_id,
      directory, size, created, leave_running, restart_policy (the policy the container had when
      it was checkpointed; docker_restore puts it back).
    - Empty when O(state=absent). In check mode, when a checkpoint would be taken, C(size) and
      C(created) are null.
  returned: success
  type: dict
  sample:
    name: checkpoint1
    container: cr
    container_id: 3db2fb40e3463df60a235b0f47177b91c0c1d6c6715287195653dad083e95474
    directory: /var/lib/docker/containers/3db2fb40e346/checkpoints/checkpoint1
    size: 264192
    created: "2026-11-29T15:19:42+00:00"
    leave_running: false
    restart_policy: {Name: always, MaximumRetryCount: 0}
duration:
  description: Seconds the checkpoint took (0 when nothing was done).
  returned: success
  type: float
  sample: 0.21
attempts:
  description: Engine calls made to take the checkpoint (more than 1 after a transient containerd error).
  returned: when a checkpoint was taken
  type: int
  sample: 1
criu_errors:
  description: The C(Error) lines of CRIU's log when the checkpoint failed.
  returned: failure
  type: list
  elements: str
  sample: ["(00.012345) Error (criu/sk-inet.c:189): inet: Connected TCP socket, consider using --tcp-established option."]
criu_log:
  description: Path of the CRIU log that was read.
  returned: failure, when a log was found
  type: str
container_running:
  description: Whether the container is running after a failed checkpoint (it should be).
  returned: failure of the checkpoint itself
  type: bool
"""

import os
import shutil
import time

from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.module_utils._common import (
    HELD_RESTART_POLICIES,
    Manager,
    ModuleError,
    check_checkpoint_dir,
    check_checkpoint_name,
    run,
)
from ansible_collections.cryo.docker.plugins.module_utils._criu import failure_log, quote_errors
from ansible_collections.cryo.docker.plugins.module_utils._engine import EngineError, connect, docker_argument_spec
from ansible_collections.cryo.docker.plugins.module_utils._preflight import unrestorable, unrestorable_msg


class Checkpointer(Manager):
    """plan: does the checkpoint exist, may the container be checkpointed; act: take it (restart policy
    held, a retake under a temporary name) or remove it; report: the checkpoint as it is now."""

    def __init__(self, module):
        super().__init__(module)
        self.name = self.params['checkpoint']
        self.custom_dir = self.params['checkpoint_dir']
        check_checkpoint_name(self.name)
        check_checkpoint_dir(self.custom_dir)
        self.engine = connect(self.params)
        self.engine_version = self.engine.require_experimental().get('Version')
        self.info = self.engine.inspect(self.params['container'])
        self.container_id = self.info['Id']
        self.container_name = self.info['Name'].lstrip('/')
        self.base = self.custom_dir or store.engine_dir(self.engine.data_root(), self.container_id)
        self.before = self.after = []
        self.taken = dict(duration=0.0)

    def describe(self):
        return store.describe(os.path.join(self.base, self.name), self.name, self.container_name, self.container_id)

    # -- plan

    def plan(self):
        if not self.custom_dir or os.path.isdir(self.custom_dir):
            self.before = self.engine.list_checkpoints(self.container_id, self.custom_dir)
        exists = self.name in self.before
        if self.params['state'] == 'absent':
            self.changed = exists
            self.after = [name for name in self.before if name != self.name]
            return
        self.after = sorted(set(self.before) | {self.name})
        if exists and not self.params['force']:
            return
        if not self.info['State'].get('Running'):
            raise ModuleError(
                'Container %s is %s, and only a running container can be checkpointed%s. Start it, or restore '
                'it from a checkpoint with cryo.docker.docker_restore.'
                % (self.container_name, self.info['State'].get('Status'),
                   ' (its checkpoint %s was left as it is)' % self.name if exists else ''))
        self.refuse_unrestorable()
        self.changed = True

    def refuse_unrestorable(self):
        """Never stop a container at a checkpoint this engine cannot restore, unless asked to."""
        network = self.info['HostConfig'].get('NetworkMode')
        entry = unrestorable(self.engine_version, network)
        if entry is None:
            return
        msg = unrestorable_msg(self.engine_version, network, entry)
        if self.params['leave_running']:
            self.module.warn('Checkpoint %s of %s is taken with leave_running for inspection: it cannot be restored '
                             'on this engine. %s' % (self.name, self.container_name, msg))
        elif self.params['allow_unrestorable']:
            self.module.warn('Container %s stops at checkpoint %s although this engine cannot restore it '
                             '(allow_unrestorable). %s' % (self.container_name, self.name, msg))
        else:
            raise ModuleError('Checkpoint %s of container %s was not taken, and the container is still running '
                              'untouched: stopping it at this checkpoint would lose it. %s Set allow_unrestorable: '
                              'true to take it anyway (the container stops), or leave_running: true for a '
                              'checkpoint to inspect.' % (self.name, self.container_name, msg),
                              engine_version=self.engine_version, network_mode=network,
                              reference=entry['reference'])

    # -- act

    def act(self):
        if self.params['state'] == 'absent':
            self.engine.delete_checkpoint(self.container_id, self.name, self.custom_dir)
            return
        replacing = self.name in self.before
        if self.custom_dir:
            store.ensure_private_dir(self.custom_dir)
        # A retake goes under a temporary name and replaces the old checkpoint only once it succeeded.
        target = self.name + '.cryo-new' if replacing else self.name
        if replacing:
            shutil.rmtree(os.path.join(self.base, target), ignore_errors=True)
        policy = self.info['HostConfig'].get('RestartPolicy') or {'Name': 'no'}
        held = (self.params['hold_restart_policy'] and not self.params['leave_running']
                and policy.get('Name') in HELD_RESTART_POLICIES)
        if held:
            self.engine.set_restart_policy(self.container_id, {'Name': 'no'})
        started = time.monotonic()
        try:
            self.taken['attempts'] = self.engine.create_checkpoint(
                self.container_id, target, self.params['leave_running'], self.custom_dir)
            if not self.params['leave_running']:
                self.engine.wait_stopped(self.container_id)
        except EngineError as exc:
            if held:
                self.engine.set_restart_policy(self.container_id, policy)
            raise self.checkpoint_failed(exc)
        self.taken['duration'] = round(time.monotonic() - started, 3)
        path = os.path.join(self.base, self.name)
        if replacing:
            store.swap_in(os.path.join(self.base, target), path)
        if not os.path.isdir(path):
            self.module.warn('The checkpoint files are not on this host (%s), so its restart policy and time '
                             'were not recorded. Run the module on the engine host.' % path)
            return
        store.write_metadata(path, dict(
            checkpoint=self.name, container=self.container_name, container_id=self.container_id,
            image=self.info['Config'].get('Image'), created=store.now_iso(),
            leave_running=self.params['leave_running'], restart_policy=policy, duration=self.taken['duration']))

    def checkpoint_failed(self, exc):
        """The error for a checkpoint the engine refused: CRIU's reasons, and whether the container runs."""
        running = self.engine.inspect(self.container_id)['State'].get('Running')
        log, errors = failure_log(exc.engine_message)
        msg = 'Checkpoint %s of container %s failed: %s' % (self.name, self.container_name, exc.msg)
        if errors:
            msg += ' CRIU says: %s (log: %s).' % (quote_errors(errors), log)
        msg += (' The container is still running; nothing was lost.' if running else
                ' The container is NOT running any more: start it again (docker start), since no usable '
                'checkpoint was taken.')
        details = dict(exc.fail_kwargs(), criu_errors=errors, container_running=running)
        if log:
            details['criu_log'] = log
        details.pop('msg')
        return ModuleError(msg, **details)

    # -- report

    def report(self):
        result = dict(changed=self.changed, checkpoint={}, **self.taken)
        if self.params['state'] == 'present':
            result['checkpoint'] = self.describe()
            if self.changed and self.module.check_mode:
                result['checkpoint'].update(created=None, size=None)
        if self.changed and self.module._diff:
            status = self.info['State'].get('Status')
            if self.params['state'] == 'present':
                after = 'running' if self.params['leave_running'] else 'exited'
            else:
                after = status
            result['diff'] = dict(before=dict(checkpoints=self.before, container_state=status),
                                  after=dict(checkpoints=self.after, container_state=after))
        return result


def main():
    argument_spec = docker_argument_spec(
        container=dict(type='str', required=True),
        checkpoint=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        leave_running=dict(type='bool', default=False),
        checkpoint_dir=dict(type='path'),
        force=dict(type='bool', default=False),
        hold_restart_policy=dict(type='bool', default=True),
        allow_unrestorable=dict(type='bool', default=False),
    )
    run(Checkpointer, argument_spec)


if __name__ == '__main__':
    main()
