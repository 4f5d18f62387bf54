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
options:
  container:
    description:
      - Name or id of the container to restore.
    type: str
    required: true
  checkpoint:
    description:
      - Name of the checkpoint to restore.
    type: str
    required: true
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
        did, and keeps the checkpoint. A container without the checkpoint is started afresh too,
        unless it is already running.
    type: str
    choices: [fail, cold_start]
    default: fail
  keep_checkpoint:
    description:
      - Keep the checkpoint after a verified restore. With V(false) it is removed, but only once
        the restore was verified.
    type: bool
    default: true
extends_documentation_fragment:
  - cryo.docker.docker
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  action_group:
    version_added: 0.1.0
    membership: [cryo.docker.docker]
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
seealso:
  - module: cryo.docker.docker_checkpoint
  - module: cryo.docker.docker_checkpoint_info
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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.module_utils._criu import failure_log, summarize
from ansible_collections.cryo.docker.plugins.module_utils._engine import (
    EngineError,
    check_checkpoint_dir,
    check_name,
    connect,
    docker_argument_spec,
)


class Restorer:
    def __init__(self, module, engine):
        self.module = module
        self.engine = engine
        self.params = module.params
        self.name = module.params['checkpoint']
        self.info = engine.inspect(module.params['container'])
        self.container_id = self.info['Id']
        self.container_name = self.info['Name'].lstrip('/')
        self.engine_path = os.path.join(store.engine_dir(engine.data_root(), self.container_id), self.name)
        custom = module.params['checkpoint_dir']
        self.source = os.path.join(custom, self.name) if custom else self.engine_path
        self.staged = False
        self.started = time.monotonic()
        self.result = dict(changed=False, restored=False, verified=None, fallback_used=False,
                           checkpoint_removed=False, duration=0.0, containerd_copies_removed=0,
                           verification=dict(method='none', detail='not verified'))

    def find_checkpoint(self):
        if self.params['checkpoint_dir']:
            if not store.looks_like_checkpoint(self.source):
                self.module.fail_json(
                    msg='Checkpoint %s is not in %s (no %s/inventory.img). Check checkpoint and checkpoint_dir; '
                        'cryo.docker.docker_checkpoint_info lists what a directory holds.'
                        % (self.name, self.params['checkpoint_dir'], self.source))
        elif self.name not in self.engine.list_checkpoints(self.container_id):
            if self.params['fallback'] == 'cold_start':
                return False
            self.module.fail_json(
                msg='Container %s has no checkpoint named %s. cryo.docker.docker_checkpoint_info lists its '
                    'checkpoints; give checkpoint_dir if it was taken into another directory.'
                    % (self.container_name, self.name))
        self.result['checkpoint'] = store.describe(self.source, self.name, self.container_name, self.container_id)
        return True

    def run(self):
        if not self.find_checkpoint():
            return self.cold_start_without_checkpoint()
        state = self.info['State']
        if state.get('Running') and not self.params['force']:
            self.result['verification'] = check = store.verify_resumed(self.source, state.get('Pid'))
            self.result['verified'] = check['verified']
            if check['verified'] is False:
                self.module.warn(
                    'Container %s is running, but not from checkpoint %s (%s): something else started it, for '
                    'example its restart policy. Nothing was restored; use force: true to rewind it to the '
                    'checkpoint.' % (self.container_name, self.name, check['detail']))
            return self.finish()
        self.result['changed'] = True
        if self.module._diff:
            self.result['diff'] = dict(before=dict(container_state=state.get('Status')),
                                       after=dict(container_state='running', checkpoint=self.name))
        if self.module.check_mode:
            return self.finish()
        if state.get('Running'):
            self.engine.stop(self.container_id, timeout=1)
            self.engine.wait_stopped(self.container_id)
        self.stage()
        self.started = time.monotonic()
        try:
            self.engine.start_from_checkpoint(self.container_id, self.name)
        except EngineError as exc:
            self.clean_containerd_copies()
            self.unstage()
            return self.failed(exc.msg, exc.engine_message, exc.fail_kwargs())
        self.clean_containerd_copies()
        info = self.engine.wait_running(self.container_id)
        self.result['duration'] = round(time.monotonic() - self.started, 3)
        if not info['State'].get('Running'):
            self.unstage()
            return self.failed('the container is %s after the restore (exit code %s).'
                               % (info['State'].get('Status'), info['State'].get('ExitCode')),
                               info['State'].get('Error'), {})
        self.verify(info)
        self.unstage()
        self.put_back_policy()
        if not self.params['keep_checkpoint'] and self.result['verified']:
            self.remove_checkpoint()
        elif not self.params['keep_checkpoint']:
            self.module.warn('Checkpoint %s was kept although keep_checkpoint is false: the restore could not be '
                             'verified.' % self.name)
        return self.finish()

    def cold_start_without_checkpoint(self):
        self.result['checkpoint'] = {}
        if self.info['State'].get('Running'):
            return self.finish()
        self.result.update(changed=True, fallback_used=True, verified=False)
        if not self.module.check_mode:
            self.engine.start(self.container_id)
            self.result['duration'] = round(time.monotonic() - self.started, 3)
        self.module.warn('Container %s has no checkpoint named %s, so it was started afresh (fallback: cold_start).'
                         % (self.container_name, self.name))
        return self.finish()

    def clean_containerd_copies(self):
        self.result['containerd_copies_removed'] = len(store.remove_containerd_copies(self.source))

    def stage(self):
        if not self.params['checkpoint_dir']:
            return
        if os.path.exists(self.engine_path):
            self.module.fail_json(
                msg='Container %s already has a checkpoint named %s in the engine\'s place (%s), so the one in %s '
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

    def verify(self, info):
        self.result['restored'] = True
        if not self.params['verify']:
            self.result['verification'] = dict(method='none', detail='verify is false')
            return
        check = store.verify_resumed(self.source, info['State'].get('Pid'))
        self.result['verification'] = check
        self.result['verified'] = check['verified']
        if check['verified'] is None:
            self.module.warn('The restore of %s could not be verified: %s.' % (self.container_name, check['detail']))
        elif not check['verified']:
            self.result['restored'] = False
            self.failed('the container is running but did not resume the checkpointed processes: it started afresh '
                        '(%s). Its restart policy, or a containerd older than 1.5, can do this.' % check['detail'],
                        None, {}, running_fresh=True)

    def failed(self, reason, engine_message, details, running_fresh=False):
        log, errors = failure_log(engine_message)
        msg = 'Restore of container %s from checkpoint %s failed: %s' % (self.container_name, self.name, reason)
        if errors:
            msg += ' CRIU says: %s (log: %s).' % (summarize(errors), log)
        if self.params['fallback'] == 'cold_start':
            if not running_fresh:
                try:
                    self.engine.start(self.container_id)
                except EngineError as exc:
                    details.update(msg=msg + ' The cold start failed too: %s' % exc.msg, criu_errors=errors)
                    self.module.fail_json(**details)
            self.result.update(fallback_used=True, restored=False, criu_errors=errors, verified=False,
                               duration=round(time.monotonic() - self.started, 3))
            if log:
                self.result['criu_log'] = log
            self.module.warn(msg + ' The container was started afresh (fallback: cold_start); the checkpoint '
                                   'was kept.')
            self.put_back_policy()
            return self.finish()
        msg += (' The container runs afresh; the checkpoint was kept.' if running_fresh else
                ' The container stays stopped and the checkpoint was kept; fix the cause and run again, or use '
                'fallback: cold_start to start it afresh.')
        details.update(msg=msg, criu_errors=errors)
        if log:
            details['criu_log'] = log
        self.module.fail_json(**details)

    def put_back_policy(self):
        recorded = (self.result.get('checkpoint') or {}).get('restart_policy')
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
        self.result['checkpoint_removed'] = True

    def finish(self):
        info = self.engine.inspect(self.container_id)
        self.result['container'] = dict(name=self.container_name, id=self.container_id,
                                        status=info['State'].get('Status'), running=bool(info['State'].get('Running')))
        self.result['restart_policy'] = info['HostConfig'].get('RestartPolicy')
        return self.result


def main():
    argument_spec = docker_argument_spec()
    argument_spec.update(
        container=dict(type='str', required=True),
        checkpoint=dict(type='str', required=True),
        checkpoint_dir=dict(type='path'),
        force=dict(type='bool', default=False),
        verify=dict(type='bool', default=True),
        restore_restart_policy=dict(type='bool', default=True),
        fallback=dict(type='str', default='fail', choices=['fail', 'cold_start']),
        keep_checkpoint=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_name(module, module.params['checkpoint'])
    check_checkpoint_dir(module, module.params['checkpoint_dir'])
    engine = connect(module)
    try:
        engine.require_experimental()
        result = Restorer(module, engine).run()
    except EngineError as exc:
        module.fail_json(**exc.fail_kwargs())
    module.exit_json(**result)


if __name__ == '__main__':
    main()
