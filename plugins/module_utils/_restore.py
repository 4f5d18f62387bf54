# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""docker_restore's manager: RestoreBatch, one RestoreTask per container (the frame, Batch and Task, is
_lifecycle's). A task plans where the checkpoint is and whether the container needs it (a restore, a cold start, or
nothing), then stages it, restores through the engine or the image path, verifies, puts the restart policy back,
and falls back or fails; and reports the outcome.
"""

from __future__ import annotations

import os
import shutil
import time

from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.module_utils import _criuconf
from ansible_collections.cryo.docker.plugins.module_utils._common import (
    C_LOCALE,
    ModuleError,
    check_container_state,
    policy_still_held,
)
from ansible_collections.cryo.docker.plugins.module_utils._criu import failure_log, quote_errors, read_stats
from ansible_collections.cryo.docker.plugins.module_utils._engine import (
    CONNECTION_DEFAULTS,
    STALE_CONTENT_RETRY,
    EngineError,
    count_retry,
    stale_content_digest,
    transient_reason,
)
from ansible_collections.cryo.docker.plugins.module_utils._group import NetworkLock, check_one_group
from ansible_collections.cryo.docker.plugins.module_utils._host import (
    ENGINE_NAMESPACE,
    SERVICE_PATH,
    Host,
    find_program,
    task_bundle_dirs,
    unix_socket_path,
)
from ansible_collections.cryo.docker.plugins.module_utils._imagepath import Runtimes, Unavailable, golden, is_slot_runtime
from ansible_collections.cryo.docker.plugins.module_utils._lifecycle import Batch, Parameters, Task


class RestoreParameters(Parameters):
    """docker_restore's options."""

    DEFAULTS = dict(CONNECTION_DEFAULTS, container=None, containers=None, parallel=None, checkpoint=None,
                    checkpoint_dir=None, force=False, verify=True, restore_restart_policy=True, fallback='fail',
                    keep_checkpoint=True, method='auto', project=None, group=False, allow_partial=False,
                    **_criuconf.DEFAULTS)


def remove_stale_content(module, docker_host, digest):
    """Remove a blob from the content store of the containerd the local dockerd at docker_host runs, with that
    containerd's own client (ctr, on dockerd's PATH); (True, None), or (False, why not)."""
    dockerd = Host().dockerd(docker_host) if unix_socket_path(docker_host) else None
    if dockerd is None:
        return False, 'the engine\'s dockerd is not a process on this host'
    ctr = find_program('ctr', dockerd['path'] or SERVICE_PATH)
    if ctr is None:
        return False, 'no ctr on the PATH of dockerd (pid %s)' % dockerd['pid']
    rc, _out, err = module.run_command([ctr, '--address', dockerd['containerd_address'], '--namespace', ENGINE_NAMESPACE, 'content', 'rm',
                                        digest], environ_update=C_LOCALE)
    if rc != 0:
        return False, '%s exited %s: %s' % (ctr, rc, ' '.join((err or '').split())[:300])
    return True, None


class RestoreFailure:
    """Why a restore did not give the checkpointed processes back."""

    def __init__(self, reason, engine_message=None, details=None, running_fresh=False):
        self.reason = reason
        self.engine_message = engine_message
        self.details = details or {}
        self.running_fresh = running_fresh


class RestoreTask(Task):
    """plan: where the checkpoint is and whether the container needs it (restore, cold start, nothing);
    act: stage, restore, verify, put the restart policy back, fall back or fail; report: the outcome."""

    what = 'Restore of container'
    operation = 'a restore'
    operation_past = 'restored'

    def __init__(self, batch, name):
        super().__init__(batch, name)
        self.checkpoint = self.params['checkpoint']
        self.info = self.engine.inspect(name)
        self.container_id = self.info['Id']
        self.container_name = self.info['Name'].lstrip('/')
        self.data_root = self.engine.data_root()
        self.engine_path = os.path.join(store.engine_dir(self.data_root, self.container_id), self.checkpoint)
        custom = self.params['checkpoint_dir']
        self.source = os.path.join(custom, self.checkpoint) if custom else self.engine_path
        self.action = None  # restore, cold_start or finish (what a cut restore left undone): what act() does
        self.recorded = None  # the restart policy to put back
        self.staged = False
        self.runtimes = None  # the engine's image-path runtimes, when this restore takes that path
        self.explicit = _criuconf.given(self.params)  # the operator's CRIU options
        self.recorded_options = {}  # the checkpoint's
        self.options = {}  # this restore's: the checkpoint's, each overridden by the operator's
        self.criu_options = None  # the ones in force (_criuconf.CriuConfig.effective)
        self.outcome = dict(restored=False, verified=None, fallback_used=False, checkpoint_removed=False, method=None,
                            restart_policy_put_back=False, duration=0.0, containerd_copies_removed=0,
                            checkpoint={}, stats=None, verification=dict(method='none', detail='not verified'),
                            retries={})

    # -- plan

    def plan(self):
        self.lock()
        check_container_state(self.container_name, self.info['State'], 'restored')
        running = self.info['State'].get('Running')
        if running and not self.params['force'] and not self.checkpoint_present():
            # A second run after keep_checkpoint: false removed it: nothing to restore, nothing to compare with.
            self.outcome['verification'] = dict(method='none', detail='checkpoint %s is gone and the container runs'
                                                % self.checkpoint)
            return
        if not self.checkpoint_found():
            # fallback: cold_start, and this container has no such checkpoint.
            self.action = 'cold_start'
            self.changed = not running
            self.outcome.update(fallback_used=self.changed, verified=False if self.changed else None)
            return
        self.outcome['checkpoint'] = store.describe(self.source, self.checkpoint, self.container_name,
                                                    self.container_id)
        self.recorded = self.recorded_policy()
        if running and not self.params['force']:
            check = store.verify_resumed(self.source, self.info['State'].get('Pid'))
            self.outcome.update(verification=check, verified=check['verified'])
            if check['verified'] is False:
                self.module.warn(
                    'Container %s is running, but not from checkpoint %s (%s): something else started it, for '
                    'example its restart policy. Nothing was restored; use force: true to rewind it to the '
                    'checkpoint.' % (self.container_name, self.checkpoint, check['detail']))
            elif check['verified'] and self.params['restore_restart_policy'] and policy_still_held(
                    self.recorded, self.info['HostConfig'].get('RestartPolicy')):
                # A restore cut after the container resumed, before its policy was put back: finish it.
                self.action = 'finish'
                self.changed = True
            return
        self.check_network_holder()
        self.choose_options()
        self.choose_method()
        self.action = 'restore'
        self.changed = True

    def choose_options(self):
        """The CRIU options of this restore: what the checkpoint recorded (it needs them: a connection dumped with
        tcp-established restores only with it), each overridden by the operator's."""
        try:
            self.recorded_options = _criuconf.check_recorded(store.read_metadata(self.source).get('criu_options'))
        except ValueError as exc:
            raise ModuleError('Restore of container %s was not done, and nothing was changed: checkpoint %s cannot be '
                              'trusted: %s (%s). A checkpoint taken by cryo.docker.docker_checkpoint never records '
                              'that; give the CRIU options yourself, or take the checkpoint again.'
                              % (self.container_name, self.checkpoint, exc,
                                 os.path.join(self.source, store.METADATA_FILE)))
        self.options = dict(self.recorded_options, **self.explicit)
        if self.options and unix_socket_path(self.params['docker_host']) is None:
            if not self.explicit:
                self.module.warn('Checkpoint %s was taken with CRIU options (%s) that its restore needs, and the engine '
                                 'at %s is remote: its runc.conf must hold them.'
                                 % (self.checkpoint, ', '.join(sorted(self.options)), self.params['docker_host']))
                self.options = {}
                return
            raise ModuleError('Restore of container %s was not done, and nothing was changed: the CRIU options of a '
                              'call (%s) go into %s on the engine\'s host, and the engine at %s is remote. Run the '
                              'module on the engine\'s host (its unix socket).'
                              % (self.container_name, ', '.join(sorted(self.explicit)), _criuconf.RUNC_CONF,
                                 self.params['docker_host']))
        _criuconf.refuse_annotation('Restore of container', self.container_name, self.info, self.options)

    def choose_method(self):
        """method: engine, image_path, or auto (the image path where the engine and the container allow it)."""
        self.outcome['method'] = 'engine'
        if self.params['method'] == 'engine':
            return
        runtime = self.info['HostConfig'].get('Runtime') or 'runc'
        try:
            runtimes = Runtimes.find(self.engine, self.params['docker_host'])
            if not is_slot_runtime(runtime):
                raise Unavailable('container %s runs with runtime %s, and a container\'s runtime is fixed when it is '
                                  'created: only a container created with a runtime of its own (an import, a warm '
                                  'container) restores through an image path' % (self.container_name, runtime))
            if runtimes.read_slot(runtime).get('container_id') != self.container_id:
                raise Unavailable('its runtime %s has no slot for it in %s' % (runtime, runtimes.slots_root))
        except Unavailable as exc:
            if self.params['method'] == 'image_path':
                raise ModuleError('method image_path cannot restore container %s: %s. Use method engine (or auto, '
                                  'which takes the image path only where it can).' % (self.container_name, exc.reason))
            self.outcome['method_reason'] = 'the image path cannot be taken: %s' % exc.reason
            return
        self.runtimes = runtimes
        self.outcome['method'] = 'image_path'

    def checkpoint_present(self):
        if self.params['checkpoint_dir']:
            return store.looks_like_checkpoint(self.source)
        return self.checkpoint in self.engine.list_checkpoints(self.container_id)

    def checkpoint_found(self):
        """True when the checkpoint is there; False when it is not and fallback allows a cold start."""
        if self.checkpoint_present():
            return True
        if self.params['checkpoint_dir']:
            raise ModuleError(
                'Checkpoint %s is not in %s (no %s/inventory.img). Check checkpoint and checkpoint_dir; '
                'cryo.docker.docker_checkpoint_info lists what a directory holds.'
                % (self.checkpoint, self.params['checkpoint_dir'], self.source))
        if self.params['fallback'] == 'cold_start':
            return False
        raise ModuleError(
            'Container %s has no checkpoint named %s. cryo.docker.docker_checkpoint_info lists its checkpoints; '
            'give checkpoint_dir if it was taken into another directory.' % (self.container_name, self.checkpoint))

    def check_network_holder(self):
        """A container in another container's network namespace restores into it: that one must run."""
        network = self.info['HostConfig'].get('NetworkMode') or ''
        if not network.startswith('container:'):
            return
        holder = network[len('container:'):]
        try:
            found = self.engine.inspect(holder)
        except EngineError as exc:
            if exc.status != 404:
                raise
            raise ModuleError('Container %s joins the network namespace of container %s, which does not exist any more, '
                              'so it cannot be restored; nothing was done and checkpoint %s was kept. A network mode '
                              'names its holder by id and is fixed when a container is created: a holder created '
                              'again does not take this container back. Create a new holder, create the container '
                              'again in its namespace (network_mode container:<new holder>) from the same image, and '
                              'restore this checkpoint into the new container with docker_restore and checkpoint_dir '
                              '(copy %s out first).' % (self.container_name, holder, self.checkpoint, self.source),
                              network_mode=network)
        if not found['State'].get('Running'):
            raise ModuleError('Container %s joins the network namespace of container %s, which is %s, so it cannot be '
                              'restored; nothing was done and checkpoint %s was kept. Start the network holder '
                              'first (cryo.docker.docker_network_holder with state started), then run this again.'
                              % (self.container_name, found.get('Name', holder).lstrip('/'),
                                 found['State'].get('Status'), self.checkpoint), network_mode=network)

    # -- act

    def act(self):
        started = time.monotonic()
        if self.action == 'cold_start':
            self.settle_runtime()
            self.engine.start(self.container_id)
            self.outcome['duration'] = round(time.monotonic() - started, 3)
            held = store.read_hold(self.data_root, self.container_id)
            self.recorded = held if policy_still_held(held, self.info['HostConfig'].get('RestartPolicy')) else None
            self.put_back_policy()
            return
        if self.action == 'finish':
            self.clean_containerd_copies()
            self.put_back_policy()
            if not self.params['keep_checkpoint']:
                self.remove_checkpoint()
            return
        if self.info['State'].get('Running'):
            self.engine.stop(self.container_id, timeout=1)
            self.engine.wait_stopped(self.container_id)
        self.stage()
        try:
            started = time.monotonic()
            conf = _criuconf.CriuConfig(self.options, local=unix_socket_path(self.params['docker_host']) is not None)
            with _criuconf.held(conf, 'Restore of container', self.container_name, self.module):
                self.criu_options = conf.effective
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
        if not self.batch.group:
            self.conclude()

    def conclude(self):
        """After a verified restore (a group's: after every member's): the policy back, the checkpoint removed if
        asked."""
        self.put_back_policy()
        if self.params['keep_checkpoint']:
            return
        if self.outcome['verified']:
            self.remove_checkpoint()
        else:
            self.module.warn('Checkpoint %s was kept although keep_checkpoint is false: the restore could not be '
                             'verified.' % self.checkpoint)

    def settle_runtime(self):
        """A container with a runtime of its own that a killed restore left armed would restore instead of starting
        afresh: disarmed first (a warm container stays as it is: it starts from its golden checkpoint)."""
        runtime = self.info['HostConfig'].get('Runtime')
        if not is_slot_runtime(runtime):
            return
        try:
            Runtimes.find(self.engine, self.params['docker_host']).settle(runtime)
        except Unavailable:
            pass

    def stage(self):
        """The engine restores only from its own place: copy a checkpoint_dir checkpoint there."""
        if not self.params['checkpoint_dir']:
            return
        if os.path.exists(self.engine_path):
            raise ModuleError(
                'Container %s already has a checkpoint named %s in the engine\'s place (%s), so the one in %s '
                'cannot be staged there. Restore it without checkpoint_dir, or remove it first '
                '(cryo.docker.docker_checkpoint state=absent).'
                % (self.container_name, self.checkpoint, self.engine_path, self.params['checkpoint_dir']))
        store.stage(self.source, self.engine_path)
        self.staged = True
        store.retarget_cgroups(self.engine_path, self.container_id, store.read_metadata(self.source).get('container_id'))

    def unstage(self):
        # The staged copy duplicates the checkpoint that stays in checkpoint_dir.
        if self.staged:
            shutil.rmtree(self.engine_path, ignore_errors=True)
            self.staged = False

    def restore(self):
        """Start the container from the checkpoint; a RestoreFailure, or None once it runs."""
        try:
            if self.runtimes:
                self.start_through_image_path()
            else:
                self.start_from_checkpoint()
        except EngineError as exc:
            return RestoreFailure(exc.msg, exc.engine_message, exc.fail_kwargs())
        finally:
            self.clean_containerd_copies()
        state = self.engine.wait_running(self.container_id)['State']
        self.read_restore_stats()
        if not state.get('Running'):
            return RestoreFailure('the container is %s after the restore (exit code %s).'
                                  % (state.get('Status'), state.get('ExitCode')), state.get('Error'))
        self.outcome['restored'] = True
        return None

    def start_from_checkpoint(self):
        """The engine's restore. When containerd's content store already holds this checkpoint's tarball (the
        checkpoint's own until containerd's garbage collection takes it, or one a restore whose engine was killed
        left: every upload of the same bytes collides with it), that blob is removed through containerd's own client
        and the restore tried once more; where it cannot be removed, the restore is tried again as it is (the
        garbage collection may have taken it meanwhile) before it fails saying how to remove it."""
        try:
            self.engine.start_from_checkpoint(self.container_id, self.checkpoint, retried=self.outcome['retries'],
                                              retry_stale=False)
            return
        except EngineError as exc:
            digest = stale_content_digest(exc.engine_message)
            if digest is None:
                raise
            removed, why = remove_stale_content(self.module, self.params['docker_host'], digest)
            if not removed:
                count_retry(self.outcome['retries'], transient_reason(exc.engine_message))
                try:
                    self.engine.start_from_checkpoint(self.container_id, self.checkpoint,
                                                      retried=self.outcome['retries'])
                    return
                except EngineError as again:
                    if stale_content_digest(again.engine_message) is None:
                        raise
                exc.msg = ('%s containerd\'s content store still holds this checkpoint\'s tarball (%s), and it could '
                           'not be removed here (%s). Remove it on the engine host with `ctr --address '
                           '<exec-root>/containerd/containerd.sock --namespace moby content rm %s` and run again.'
                           % (exc.msg.rstrip('.') + '.', digest, why, digest))
                exc.details['stale_content'] = digest
                raise exc
        self.outcome['stale_content_removed'] = digest
        self.module.warn('Removed the tarball of checkpoint %s that containerd\'s content store still held (%s), '
                         'then restored.' % (self.checkpoint, digest))
        count_retry(self.outcome['retries'], STALE_CONTENT_RETRY)
        self.engine.start_from_checkpoint(self.container_id, self.checkpoint, retried=self.outcome['retries'])

    def start_through_image_path(self):
        """A plain start of the container with its runtime armed on the checkpoint: containerd's shim restores it
        in place. A warm container's runtime stays armed, back on its golden checkpoint; any other is disarmed
        whatever happened, so that the container starts afresh like any other from now on."""
        runtime = self.info['HostConfig']['Runtime']
        slot = self.runtimes.read_slot(runtime)
        self.runtimes.point(runtime, self.engine_path)
        self.runtimes.arm(runtime)
        self.runtimes.clear_stats(runtime)
        try:
            self.engine.start(self.container_id)
        finally:
            warm = golden(slot)
            if warm and warm[1]:
                self.runtimes.point(runtime, warm[1])
            else:
                self.runtimes.disarm(runtime)
        self.outcome['stats'] = read_stats(self.runtimes.stats(runtime), 'stats-restore')

    def read_restore_stats(self):
        """CRIU's restore statistics: in the task bundle, the restore's work directory (else in containerd's copy)."""
        if self.outcome['stats']:
            return
        dockerd = Host().dockerd(self.params['docker_host'])
        exec_root = dockerd['exec_root'] if dockerd else None
        for directory in task_bundle_dirs(self.engine.data_root(), exec_root, self.container_id):
            stats = read_stats(directory, 'stats-restore')
            if stats:
                self.outcome['stats'] = stats
                return

    def clean_containerd_copies(self):
        """Remove the copies containerd left of this checkpoint in its temporary directory (/tmp, or where the engine
        role's engine_containerd_tmpdir points it); the restore's statistics are in them."""
        found = Host().containerd_tmpdir(self.params['docker_host'])
        tmpdir = found['path'] if found and found['exists'] else '/tmp'
        copies = store.containerd_copies(self.source, tmpdir)
        for copy in copies:
            self.outcome['stats'] = self.outcome['stats'] or read_stats(copy, 'stats-restore')
        self.outcome['containerd_copies_removed'] = len(store.remove_containerd_copies(self.source, tmpdir))

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
        msg = 'Restore of container %s from checkpoint %s failed: %s' % (self.container_name, self.checkpoint,
                                                                         failure.reason)
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
            if self.runtimes and golden(self.runtimes.read_slot(self.info['HostConfig']['Runtime'])):
                # A warm container would restore its golden checkpoint again at this start.
                self.runtimes.make_cold(self.info['HostConfig']['Runtime'])
                msg += ' Warm container %s was turned cold for it (docker_warm makes it warm again).' % self.container_name
            else:
                self.settle_runtime()
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

    def recorded_policy(self):
        """The restart policy to put back: the checkpoint's record, or the hold of a run cut before it wrote one
        (or that recorded the "no" of such a hold)."""
        recorded = self.outcome['checkpoint'].get('restart_policy')
        held = store.read_hold(self.data_root, self.container_id)
        return held if policy_still_held(held, recorded) else recorded

    def put_back_policy(self):
        """The recorded policy back, and the hold's record gone (the restore is over, whatever the option says)."""
        recorded = self.recorded
        if self.params['restore_restart_policy'] and recorded:
            current = self.engine.inspect(self.container_id)['HostConfig'].get('RestartPolicy') or {}
            if (current.get('Name') or 'no') != (recorded.get('Name') or 'no'):
                self.engine.set_restart_policy(self.container_id, recorded)
                self.outcome['restart_policy_put_back'] = True
        store.clear_hold(self.data_root, self.container_id)

    def remove_checkpoint(self):
        if self.params['checkpoint_dir']:
            shutil.rmtree(self.source)
        else:
            self.engine.delete_checkpoint(self.container_id, self.checkpoint)
        self.outcome['checkpoint_removed'] = True

    # -- report

    def report(self):
        info = self.engine.inspect(self.container_id)
        result = dict(self.outcome, changed=self.changed, restart_policy=info['HostConfig'].get('RestartPolicy'),
                      **(_criuconf.report(self.criu_options, self.explicit, self.recorded_options)
                         if self.action == 'restore' else {}),
                      container=dict(name=self.container_name, id=self.container_id,
                                     status=info['State'].get('Status'), running=bool(info['State'].get('Running'))))
        if self.action == 'cold_start' and self.changed:
            self.module.warn('Container %s has no checkpoint named %s, so it was started afresh (fallback: '
                             'cold_start).' % (self.container_name, self.checkpoint))
        if self.changed and self.module._diff and self.batch.single:
            result['diff'] = self.diff()
        return result

    def entry(self):
        return self.report()  # it names the container itself: container.name, container.id

    def retries(self):
        return dict(self.outcome['retries'])

    def diff(self):
        before = dict(container_state=self.info['State'].get('Status'))
        after = dict(container_state='running', checkpoint=self.checkpoint)
        if self.action == 'finish':
            before['restart_policy'] = (self.info['HostConfig'].get('RestartPolicy') or {}).get('Name') or 'no'
            after = dict(before, restart_policy=self.recorded.get('Name'))
        if not self.batch.single:
            before['container'] = after['container'] = self.container_name
        return dict(before=before, after=after)


class RestoreBatch(Batch):
    """docker_restore: each entry of results names its container as docker_restore's result does."""

    task_class = RestoreTask

    # -- a group: back in dependency order, each verified, whole or not at all

    def plan_group(self):
        todo = [task for task in self.tasks if task.changed]
        if not todo:
            return
        if self.params['fallback'] == 'cold_start' and not self.params['allow_partial']:
            raise ModuleError('The group %s was not restored, and nothing was changed: fallback: cold_start would start '
                              'a member afresh beside members that resume, which is half an application. Use fallback: '
                              'fail, or allow_partial: true to accept it.' % self.group_name())
        afresh = [task for task in self.tasks if not task.changed and task.info['State'].get('Running')
                  and task.outcome['verified'] is not True]
        if afresh:
            raise ModuleError('The group %s was not restored, and nothing was changed: %s %s running, not from checkpoint '
                              '%s, while %s would be restored from it - not one point in time. Use force: true to '
                              'restore every member (the running ones are stopped first).'
                              % (self.group_name(), ', '.join(task.container_name for task in afresh),
                                 'is' if len(afresh) == 1 else 'are', self.params['checkpoint'],
                                 ', '.join(task.container_name for task in todo)))
        check_one_group(self.params['checkpoint'], {
            task.container_name: store.read_metadata(task.source).get('group') for task in self.tasks})

    def act_group(self, todo):
        # Connections between members (tcp_established) need every restored member's network locked until the last
        # is back (_group.NetworkLock).
        lock = NetworkLock(self.module) if any(task.options.get('tcp_established') for task in todo) and \
            unix_socket_path(self.params['docker_host']) is not None else None
        try:
            self.restore_in_order(todo, lock)
        finally:
            if lock is not None:
                lock.unlock()
                if lock.problems:
                    self.module.warn('The network of the group\'s restored members could not be locked until the '
                                     'last was back (%s): a connection between members can be reset when a member '
                                     'reaches another before its sockets are restored.' % '; '.join(lock.problems))
        self.thaw_and_conclude(todo)

    def restore_in_order(self, todo, lock):
        self.paused = []
        restored = self.restored = []
        for task in todo:
            try:
                task.act()
            except ModuleError as exc:
                task.error = exc
                if self.params['allow_partial']:
                    continue
                self.stop_group(restored + [task])
                raise ModuleError(
                    'The group %s was not restored: [%s] %s Every member is stopped again with its checkpoint (%s): '
                    'never half an application. Fix the cause and run again, or use allow_partial: true.'
                    % (self.group_name(), task.container_name, exc.msg,
                       ', '.join(done.container_name for done in restored) + ' restored before it and stopped again'
                       if restored else 'none was restored before it'),
                    failed_members=[task.container_name],
                    stopped_again=[done.container_name for done in restored], **exc.details)
            restored.append(task)
            if task is not todo[-1] and task.action == 'restore':
                # Locked and frozen until the last member is back: a segment to a member whose address is up before
                # CRIU has restored that member's sockets would be answered with a reset, and the connection lost.
                if lock is not None:
                    lock.lock(task.container_name, self.engine.inspect(task.container_id)['State'].get('Pid') or 0)
                self.engine.pause(task.container_id)
                self.paused.append(task)

    def thaw_and_conclude(self, todo):
        for task in self.paused:
            try:
                self.engine.unpause(task.container_id)
            except ModuleError as exc:
                self.module.warn('Member %s of the group could not be thawed after the group was restored: %s. '
                                 'Unpause it (docker unpause).' % (task.container_name, exc.msg))
        self.conclude_all(self.restored)
        failed = [task for task in todo if task.error is not None]
        if failed:
            self.module.warn('The group %s came back in part (allow_partial): %s could not be restored.'
                             % (self.group_name(), ', '.join(task.container_name for task in failed)))

    def conclude_all(self, restored):
        """Every restored member's policy back (and checkpoint removed if asked), even when one cannot be."""
        problems = []
        for task in restored:
            if task.action != 'restore':
                continue
            try:
                task.conclude()
            except ModuleError as exc:
                problems.append('%s (%s)' % (task.container_name, exc.msg))
        if problems:
            raise ModuleError('The group %s was restored, but a member could not be finished - its restart policy put '
                              'back, or its checkpoint removed: %s. It may have ended right after its restore: look '
                              'at it (docker inspect, docker logs), then run the restore again.'
                              % (self.group_name(), '; '.join(problems)))

    def stop_group(self, tasks):
        """Members that run after another member failed are killed (their restart policy is still held)."""
        for task in tasks:
            try:
                if self.engine.inspect(task.container_id)['State'].get('Running'):
                    self.engine.kill(task.container_id)
                    self.engine.wait_stopped(task.container_id)
            except ModuleError as exc:
                self.module.warn('Member %s of the group could not be stopped again: %s' % (task.container_name, exc.msg))

    @staticmethod
    def failed_entry(task):
        return dict(dict(task.error.fail_kwargs(), retries=task.retries()), container=dict(name=task.name),
                    failed=True, changed=task.changed)
