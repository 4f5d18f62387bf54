#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_restore
short_description: Resume a Docker container from a CRIU checkpoint, and prove it resumed
version_added: 0.1.0
description:
  - Starts a stopped container from one of its checkpoints, so that its processes carry on
    exactly where they were frozen by M(cryo.docker.docker_checkpoint).
  - The engine refuses to restore from a custom directory. With O(checkpoint_dir) the module
    copies the checkpoint into the container's own checkpoint place and restores it by name.
    This is also how a checkpoint restores into another container created from the same image
    (moving a container to another host).
  - A container that is already running is not restored again. It is reported unchanged, with
    a warning when it is running for another reason than a restore of this checkpoint (for
    example its restart policy started it afresh). O(force=true) stops it and restores it, which
    rewinds a live container to an earlier checkpoint.
  - "Verification (O(verify)): CRIU restores a process's memory layout exactly, while a fresh
    start gets a new, randomised one. The module compares the stack and heap start addresses of
    the container's PID 1 (C(/proc/<pid>/stat)) with those recorded in the checkpoint
    (C(mm-1.img)). They match only when PID 1 is the restored process. A restart policy or an
    old containerd that silently starts the container from zero is caught. This needs the module
    to run on the engine's host; with address space randomisation turned off on the host a fresh
    start cannot be told apart, and the result says so."
  - Puts back the restart policy recorded when the checkpoint was taken (see
    O(cryo.docker.docker_checkpoint#module:hold_restart_policy)).
  - Never removes a checkpoint unless O(keep_checkpoint=false) and the restore was verified.
extends_documentation_fragment:
  - cryo.docker._docker
  - cryo.docker._docker.checkpoint
  - cryo.docker._attributes
options:
  checkpoint_dir:
    description:
      - Absolute path of the directory that holds the checkpoint (as C(<checkpoint_dir>/<checkpoint>)),
        when it was not taken into the engine's own place.
    type: path
  force:
    description:
      - Restore even when the container is running - it is stopped first and restored from the
        checkpoint (rewind). Its current state is lost.
    type: bool
    default: false
  verify:
    description:
      - Prove that the container resumed the checkpointed processes rather than starting afresh
        (see above). A restore that is not verified fails, or falls back per O(fallback).
    type: bool
    default: true
  restore_restart_policy:
    description:
      - Put back the restart policy recorded with the checkpoint, once the container runs again.
    type: bool
    default: true
  fallback:
    description:
      - What to do when the restore fails.
      - V(fail) leaves the container stopped with its checkpoint and fails with CRIU's reasons.
      - V(cold_start) starts the container afresh (its in-memory state is lost), reports that it
        did, and keeps the checkpoint. A container that has no checkpoint of that name is started
        afresh too, unless it is already running. A O(checkpoint_dir) that does not hold the
        checkpoint is an error all the same - the path is most likely wrong.
    type: str
    choices: [fail, cold_start]
    default: fail
  keep_checkpoint:
    description:
      - Keep the checkpoint after a verified restore. With V(false) it is removed, but only once
        the restore was verified.
    type: bool
    default: true
seealso:
  - module: cryo.docker.docker_checkpoint
  - module: cryo.docker.docker_checkpoint_info
  - module: cryo.docker.checkpoint_preflight
  - name: Restore in Docker's checkpoint documentation
    description: The experimental C(docker start --checkpoint) this module drives through the Engine API.
    link: https://docs.docker.com/reference/cli/docker/checkpoint/
author:
  - cryo.docker contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Resume the counter container where it stopped
  cryo.docker.docker_restore:
    container: cr
    checkpoint: checkpoint1

- name: Warm start - resume a slow application from its ready checkpoint, cold start if that fails
  cryo.docker.docker_restore:
    container: search
    checkpoint: warm
    fallback: cold_start

- name: Rewind a live container to an earlier checkpoint
  cryo.docker.docker_restore:
    container: worker
    checkpoint: before-migration
    force: true

- name: Move - restore a checkpoint copied from another host into a container made from the same image
  cryo.docker.docker_restore:
    container: cache
    checkpoint: move
    checkpoint_dir: /srv/checkpoints
    keep_checkpoint: false

- name: After a host reboot, resume a container and drop its checkpoint once verified
  cryo.docker.docker_restore:
    container: api
    checkpoint: maintenance
    keep_checkpoint: false
"""

RETURN = r"""
restored:
  description: Whether the container was restored from the checkpoint by this run.
  returned: always
  type: bool
  sample: true
verified:
  description:
    - Whether the running container was proven to run the checkpointed processes.
    - null when it could not be told (no access to the engine host's C(/proc), or no C(mm-1.img)).
  returned: always
  type: bool
  sample: true
verification:
  description: How the restore was verified.
  returned: always
  type: dict
  contains:
    method:
      description: The method used (V(memory-layout)), or V(none) when O(verify=false).
      type: str
      sample: memory-layout
    detail:
      description: What was compared.
      type: str
      sample: PID 1 stack/heap start 0x7ffd2a3c1e10/0x3e32d000, checkpoint 0x7ffd2a3c1e10/0x3e32d000
fallback_used:
  description: Whether the restore failed and the container was started afresh (O(fallback=cold_start)).
  returned: always
  type: bool
  sample: false
container:
  description: The container after the run.
  returned: always
  type: dict
  contains:
    name:
      description: Name of the container.
      type: str
      sample: cr
    id:
      description: Full id of the container.
      type: str
      sample: 3db2fb40e3463df60a235b0f47177b91c0c1d6c6715287195653dad083e95474
    status:
      description: Engine status (running, exited, ...).
      type: str
      sample: running
    running:
      description: Whether it runs.
      type: bool
      sample: true
checkpoint:
  description: The checkpoint restored from (see M(cryo.docker.docker_checkpoint) for the fields).
  returned: always
  type: dict
  sample: {name: checkpoint1, container: cr, size: 154069, created: "2026-11-29T15:27:09+00:00"}
containerd_copies_removed:
  description:
    - How many copies of the checkpoint containerd left in C(/tmp) were removed. containerd 1.6
      copies a checkpoint there to restore it and never removes the copy
      (L(containerd#10166,https://github.com/containerd/containerd/issues/10166)); the copies fill the
      disk and hold process memory. They are recognised by their content, nothing else is touched.
  returned: always
  type: int
  sample: 1
checkpoint_removed:
  description: Whether the checkpoint was removed (O(keep_checkpoint=false) after a verified restore).
  returned: always
  type: bool
  sample: false
restart_policy:
  description: The container's restart policy after the run.
  returned: always
  type: dict
  sample: {Name: always, MaximumRetryCount: 0}
duration:
  description: Seconds from the restore request to the container running (0 when nothing was done).
  returned: always
  type: float
  sample: 0.31
criu_errors:
  description: The C(Error) lines of CRIU's restore log, when the restore failed.
  returned: when the restore failed
  type: list
  elements: str
criu_log:
  description: Path of the CRIU log that was read.
  returned: when the restore failed and a log was found
  type: str
"""

import os
import shutil
import time

from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.module_utils._common import (
    Manager,
    ModuleError,
    check_checkpoint_dir,
    check_checkpoint_name,
    run,
)
from ansible_collections.cryo.docker.plugins.module_utils._criu import failure_log, quote_errors
from ansible_collections.cryo.docker.plugins.module_utils._engine import EngineError, connect, docker_argument_spec


class RestoreFailure:
    """Why a restore did not give the checkpointed processes back."""

    def __init__(self, reason, engine_message=None, details=None, running_fresh=False):
        self.reason = reason
        self.engine_message = engine_message
        self.details = details or {}
        self.running_fresh = running_fresh


class Restorer(Manager):
    """plan: where the checkpoint is and whether the container needs it (restore, cold start, nothing);
    act: stage, restore, verify, put the restart policy back, fall back or fail; report: the outcome."""

    def __init__(self, module):
        super().__init__(module)
        self.name = self.params['checkpoint']
        check_checkpoint_name(self.name)
        check_checkpoint_dir(self.params['checkpoint_dir'])
        self.engine = connect(self.params)
        self.engine.require_experimental()
        self.info = self.engine.inspect(self.params['container'])
        self.container_id = self.info['Id']
        self.container_name = self.info['Name'].lstrip('/')
        self.engine_path = os.path.join(store.engine_dir(self.engine.data_root(), self.container_id), self.name)
        custom = self.params['checkpoint_dir']
        self.source = os.path.join(custom, self.name) if custom else self.engine_path
        self.action = None  # restore or cold_start: what act() does
        self.staged = False
        self.outcome = dict(restored=False, verified=None, fallback_used=False, checkpoint_removed=False,
                            duration=0.0, containerd_copies_removed=0, checkpoint={},
                            verification=dict(method='none', detail='not verified'))

    # -- plan

    def plan(self):
        running = self.info['State'].get('Running')
        if not self.checkpoint_found():
            # fallback: cold_start, and this container has no such checkpoint.
            self.action = 'cold_start'
            self.changed = not running
            self.outcome.update(fallback_used=self.changed, verified=False if self.changed else None)
            return
        self.outcome['checkpoint'] = store.describe(self.source, self.name, self.container_name, self.container_id)
        if running and not self.params['force']:
            check = store.verify_resumed(self.source, self.info['State'].get('Pid'))
            self.outcome.update(verification=check, verified=check['verified'])
            if check['verified'] is False:
                self.module.warn(
                    'Container %s is running, but not from checkpoint %s (%s): something else started it, for '
                    'example its restart policy. Nothing was restored; use force: true to rewind it to the '
                    'checkpoint.' % (self.container_name, self.name, check['detail']))
            return
        self.check_network_holder()
        self.action = 'restore'
        self.changed = True

    def check_network_holder(self):
        """A container in another container's network namespace restores into it: that one must run."""
        network = self.info['HostConfig'].get('NetworkMode') or ''
        if not network.startswith('container:'):
            return
        holder = network[len('container:'):]
        try:
            state = self.engine.inspect(holder)['State']
        except EngineError as exc:
            if exc.status != 404:
                raise
            raise ModuleError('Container %s joins the network namespace of container %s, which does not exist, so it '
                              'cannot be restored; nothing was done and checkpoint %s was kept. Create the network '
                              'holder again (cryo.docker.docker_network_holder) - a container\'s network mode '
                              'cannot change, so it must be the container named in its NetworkMode - then run '
                              'this again.' % (self.container_name, holder, self.name), network_mode=network)
        if not state.get('Running'):
            raise ModuleError('Container %s joins the network namespace of container %s, which is %s, so it cannot be '
                              'restored; nothing was done and checkpoint %s was kept. Start the network holder '
                              'first (cryo.docker.docker_network_holder with state started), then run this again.'
                              % (self.container_name, holder, state.get('Status'), self.name), network_mode=network)

    def checkpoint_found(self):
        """True when the checkpoint is there; False when it is not and fallback allows a cold start."""
        if self.params['checkpoint_dir']:
            if store.looks_like_checkpoint(self.source):
                return True
            raise ModuleError(
                'Checkpoint %s is not in %s (no %s/inventory.img). Check checkpoint and checkpoint_dir; '
                'cryo.docker.docker_checkpoint_info lists what a directory holds.'
                % (self.name, self.params['checkpoint_dir'], self.source))
        if self.name in self.engine.list_checkpoints(self.container_id):
            return True
        if self.params['fallback'] == 'cold_start':
            return False
        raise ModuleError(
            'Container %s has no checkpoint named %s. cryo.docker.docker_checkpoint_info lists its checkpoints; '
            'give checkpoint_dir if it was taken into another directory.' % (self.container_name, self.name))

    # -- act

    def act(self):
        started = time.monotonic()
        if self.action == 'cold_start':
            self.engine.start(self.container_id)
            self.outcome['duration'] = round(time.monotonic() - started, 3)
            return
        if self.info['State'].get('Running'):
            self.engine.stop(self.container_id, timeout=1)
            self.engine.wait_stopped(self.container_id)
        self.stage()
        try:
            started = time.monotonic()
            failure = self.restore()
            self.outcome['duration'] = round(time.monotonic() - started, 3)
            if failure is None and self.params['verify']:
                failure = self.verify()
            elif failure is None:
                self.outcome['verification'] = dict(method='none', detail='verify is false')
        finally:
            self.unstage()
        if failure is not None:
            self.fall_back(failure, started)
            return
        self.put_back_policy()
        if self.params['keep_checkpoint']:
            return
        if self.outcome['verified']:
            self.remove_checkpoint()
        else:
            self.module.warn('Checkpoint %s was kept although keep_checkpoint is false: the restore could not be '
                             'verified.' % self.name)

    def stage(self):
        """The engine restores only from its own place: copy a checkpoint_dir checkpoint there."""
        if not self.params['checkpoint_dir']:
            return
        if os.path.exists(self.engine_path):
            raise ModuleError(
                'Container %s already has a checkpoint named %s in the engine\'s place (%s), so the one in %s '
                'cannot be staged there. Restore it without checkpoint_dir, or remove it first '
                '(cryo.docker.docker_checkpoint state=absent).'
                % (self.container_name, self.name, self.engine_path, self.params['checkpoint_dir']))
        store.stage(self.source, self.engine_path)
        self.staged = True

    def unstage(self):
        # The staged copy duplicates the checkpoint that stays in checkpoint_dir.
        if self.staged:
            shutil.rmtree(self.engine_path, ignore_errors=True)
            self.staged = False

    def restore(self):
        """Start the container from the checkpoint; a RestoreFailure, or None once it runs."""
        try:
            self.engine.start_from_checkpoint(self.container_id, self.name)
        except EngineError as exc:
            return RestoreFailure(exc.msg, exc.engine_message, exc.fail_kwargs())
        finally:
            self.outcome['containerd_copies_removed'] = len(store.remove_containerd_copies(self.source))
        state = self.engine.wait_running(self.container_id)['State']
        if not state.get('Running'):
            return RestoreFailure('the container is %s after the restore (exit code %s).'
                                  % (state.get('Status'), state.get('ExitCode')), state.get('Error'))
        self.outcome['restored'] = True
        return None

    def verify(self):
        """Prove the running PID 1 is the checkpointed one; a RestoreFailure when it started afresh."""
        pid = self.engine.inspect(self.container_id)['State'].get('Pid')
        check = store.verify_resumed(self.source, pid)
        self.outcome.update(verification=check, verified=check['verified'])
        if check['verified'] is None:
            self.module.warn('The restore of %s could not be verified: %s.' % (self.container_name, check['detail']))
            return None
        if check['verified']:
            return None
        self.outcome['restored'] = False
        return RestoreFailure('the container is running but did not resume the checkpointed processes: it started '
                              'afresh (%s). Its restart policy, or a containerd older than 1.5, can do this.'
                              % check['detail'], running_fresh=True)

    def fall_back(self, failure, started):
        """fallback: cold_start starts the container afresh and reports it; fail raises, with CRIU's reasons."""
        log, errors = failure_log(failure.engine_message)
        msg = 'Restore of container %s from checkpoint %s failed: %s' % (self.container_name, self.name, failure.reason)
        if errors:
            msg += ' CRIU says: %s (log: %s).' % (quote_errors(errors), log)
        details = dict(failure.details, criu_errors=errors)
        details.pop('msg', None)
        if log:
            details['criu_log'] = log
        if self.params['fallback'] != 'cold_start':
            raise ModuleError(msg + (
                ' The container runs afresh; the checkpoint was kept.' if failure.running_fresh else
                ' The container stays stopped and the checkpoint was kept; fix the cause and run again, or use '
                'fallback: cold_start to start it afresh.'), **details)
        if not failure.running_fresh:
            try:
                self.engine.start(self.container_id)
            except EngineError as exc:
                raise ModuleError(msg + ' The cold start failed too: %s' % exc.msg, **details)
        self.outcome.update(fallback_used=True, restored=False, verified=False, criu_errors=errors,
                            duration=round(time.monotonic() - started, 3))
        if log:
            self.outcome['criu_log'] = log
        self.module.warn(msg + ' The container was started afresh (fallback: cold_start); the checkpoint was kept.')
        self.put_back_policy()

    def put_back_policy(self):
        recorded = self.outcome['checkpoint'].get('restart_policy')
        if not self.params['restore_restart_policy'] or not recorded:
            return
        current = self.engine.inspect(self.container_id)['HostConfig'].get('RestartPolicy') or {}
        if (current.get('Name') or 'no') != (recorded.get('Name') or 'no'):
            self.engine.set_restart_policy(self.container_id, recorded)

    def remove_checkpoint(self):
        if self.params['checkpoint_dir']:
            shutil.rmtree(self.source)
        else:
            self.engine.delete_checkpoint(self.container_id, self.name)
        self.outcome['checkpoint_removed'] = True

    # -- report

    def report(self):
        info = self.engine.inspect(self.container_id)
        result = dict(self.outcome, changed=self.changed, restart_policy=info['HostConfig'].get('RestartPolicy'),
                      container=dict(name=self.container_name, id=self.container_id,
                                     status=info['State'].get('Status'), running=bool(info['State'].get('Running'))))
        if self.action == 'cold_start' and self.changed:
            self.module.warn('Container %s has no checkpoint named %s, so it was started afresh (fallback: '
                             'cold_start).' % (self.container_name, self.name))
        if self.changed and self.module._diff:
            result['diff'] = dict(before=dict(container_state=self.info['State'].get('Status')),
                                  after=dict(container_state='running', checkpoint=self.name))
        return result


def main():
    argument_spec = docker_argument_spec(
        container=dict(type='str', required=True),
        checkpoint=dict(type='str', required=True),
        checkpoint_dir=dict(type='path'),
        force=dict(type='bool', default=False),
        verify=dict(type='bool', default=True),
        restore_restart_policy=dict(type='bool', default=True),
        fallback=dict(type='str', default='fail', choices=['fail', 'cold_start']),
        keep_checkpoint=dict(type='bool', default=True),
    )
    run(Restorer, argument_spec)


if __name__ == '__main__':
    main()
