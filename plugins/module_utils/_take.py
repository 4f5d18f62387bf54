# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""docker_checkpoint's manager: CheckpointBatch, one CheckpointTask per container (the frame, Batch and Task, is
_lifecycle's). A task plans whether the checkpoint is taken and through which path (the engine's, or runc's own:
the runtime path), takes it (restart policy held, a retake under a temporary name) or removes it, and reports it.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.module_utils._common import (
    HELD_RESTART_POLICIES,
    ModuleError,
    check_container_state,
    container_state_problem,
    policy_still_held,
    what_is,
)
from ansible_collections.cryo.docker.plugins.module_utils import _criuconf
from ansible_collections.cryo.docker.plugins.module_utils._criu import (
    failure_log,
    quote_errors,
    read_log_errors,
    read_stats,
    runc_log_file,
)
from ansible_collections.cryo.docker.plugins.module_utils._engine import (
    CONNECTION_DEFAULTS,
    RUNTIME_TEMP_PREFIX,
    TEMPORARY_SUFFIX,
    EngineError,
    connect,
)
from ansible_collections.cryo.docker.plugins.module_utils._group import Freeze, new_id, record
from ansible_collections.cryo.docker.plugins.module_utils._host import Host, free_space, unix_socket_path
from ansible_collections.cryo.docker.plugins.module_utils._imagepath import golden, slot_record
from ansible_collections.cryo.docker.plugins.module_utils._lifecycle import Batch, Parameters, Task, default_parallel
from ansible_collections.cryo.docker.plugins.module_utils._preflight import (
    parse_timestamp,
    started_before,
    unrestorable,
    unrestorable_msg,
)
from ansible_collections.cryo.docker.plugins.module_utils._retention import RULES as RETENTION_RULES
from ansible_collections.cryo.docker.plugins.module_utils._retention import Retention
from ansible_collections.cryo.docker.plugins.module_utils._retention import wanted as retention_wanted
from ansible_collections.cryo.docker.plugins.module_utils._runtime import (
    RuntimeUnavailable,
    find_runtime,
    run_checkpoint,
    thaw,
)


# How the kernel's ENOSPC reads in CRIU's log, runc's and containerd's errors (lower case).
DISK_FULL = 'no space left on device'


def runtime_temp_dir(path, custom_dir):
    """Where the runtime path lets runc write the checkpoint that goes to path: on the same filesystem, so
    that a rename puts it in place, and where the engine does not list it. The engine's place
    (containers/<id>/checkpoints/<name>) gets containers/<id>/RUNTIME_TEMP_PREFIX<name>; a checkpoint_dir (maybe
    a filesystem of its own) gets <checkpoint_dir>/RUNTIME_TEMP_PREFIX<name>, a name no checkpoint can have."""
    parent, name = os.path.split(path)
    return os.path.join(parent if custom_dir else os.path.dirname(parent), RUNTIME_TEMP_PREFIX + name)


class CheckpointParameters(Parameters):
    """docker_checkpoint's options."""

    DEFAULTS = dict(CONNECTION_DEFAULTS, container=None, containers=None, parallel=None, checkpoint=None,
                    state='present', leave_running=False, checkpoint_dir=None, force=False, hold_restart_policy=True,
                    allow_unrestorable=False, method='auto', project=None, group=False, keep_last=None, max_size=None,
                    host_max_size=None, **_criuconf.DEFAULTS)


class CheckpointTask(Task):
    """plan: does the checkpoint exist, may the container be checkpointed, through which path; act: take
    it (restart policy held, a retake under a temporary name) or remove it; report: the checkpoint now."""

    what = 'Checkpoint of container'
    operation = 'a checkpoint'
    operation_past = 'checkpointed'

    def __init__(self, batch, name):
        super().__init__(batch, name)
        self.checkpoint = self.params['checkpoint']
        self.custom_dir = self.params['checkpoint_dir']
        self.info = self.engine.inspect(name)
        self.container_id = self.info['Id']
        self.container_name = self.info['Name'].lstrip('/')
        self.data_root = self.engine.data_root()
        self.base = self.custom_dir or store.engine_dir(self.data_root, self.container_id)
        self.before = self.after = []
        self.runtime = None
        self.method_reason = None
        self.taken = dict(duration=0.0, stats=None, retries={})
        self.target = self.checkpoint
        self.temporary = self.holding = False
        self.policy = {}
        self.frozen_by_group = False
        self.options = _criuconf.given(self.params)  # the CRIU options of this call
        self.criu_options = None  # the ones in force when it was taken (_criuconf.CriuConfig.effective)

    def describe(self):
        return store.describe(os.path.join(self.base, self.checkpoint), self.checkpoint, self.container_name,
                              self.container_id)

    # -- plan

    def plan(self):
        self.lock()
        if not self.custom_dir or os.path.isdir(self.custom_dir):
            self.before = self.list_checkpoints(self.custom_dir)
        exists = self.checkpoint in self.before
        if self.params['state'] == 'absent':
            self.changed = exists
            self.after = [name for name in self.before if name != self.checkpoint]
            if exists and not self.custom_dir:
                self.refuse_removing_golden()
            return
        self.after = sorted(set(self.before) | {self.checkpoint})
        if exists and not self.params['force']:
            return
        self.refuse_what_is_in_the_way()
        check_container_state(self.container_name, self.info['State'], 'checkpointed')
        if not self.info['State'].get('Running'):
            raise ModuleError(
                'Container %s is %s, and only a running container can be checkpointed%s. Start it, or restore '
                'it from a checkpoint with cryo.docker.docker_restore.'
                % (self.container_name, self.info['State'].get('Status'),
                   ' (its checkpoint %s was left as it is)' % self.checkpoint if exists else ''))
        self.refuse_unrestorable()
        self.refuse_options_unreached()
        self.choose_method()
        self.check_room()
        self.changed = True

    def refuse_removing_golden(self):
        """A warm container starts from its golden checkpoint: without it, it could not start at all."""
        slot = slot_record(self.engine.data_root(), self.info['HostConfig'].get('Runtime'))
        if (golden(slot) or (None,))[0] == self.checkpoint:
            raise ModuleError('Checkpoint %s is the golden checkpoint of warm container %s, which starts from it: '
                              'removed, the container could not start. Nothing was removed. Roll the golden '
                              'checkpoint forward first, or turn the container cold (cryo.docker.docker_warm).'
                              % (self.checkpoint, self.container_name))

    def list_checkpoints(self, checkpoint_dir):
        """The container's checkpoints, as the engine lists them. A dead container, or one being removed, may have
        lost its checkpoints' directory with its own: the engine's failure to list them is then that state."""
        try:
            return self.engine.list_checkpoints(self.container_id, checkpoint_dir)
        except EngineError:
            check_container_state(self.container_name, self.info['State'], 'checkpointed')
            raise

    def refuse_what_is_in_the_way(self):
        """Never take a checkpoint onto what holds its place and is no checkpoint: a symbolic link (to anywhere: the
        engine does not list it, and the module never writes through one) or a file."""
        path = os.path.join(self.base, self.checkpoint)
        if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
            raise ModuleError(
                'Checkpoint %s of container %s was not taken, and the container is untouched: %s is %s, not a '
                'checkpoint, and the module never writes through a link or over a file. Remove it, or choose another '
                'checkpoint name or checkpoint_dir.' % (self.checkpoint, self.container_name, path, what_is(path)),
                path=path)

    def check_room(self):
        """Never start a checkpoint that cannot fit where it is written: on the engine path a checkpoint_dir that
        fills up loses it after the container was stopped (the engine's images do not reach the directory, and
        the container is gone). The images take about the container's resident memory."""
        if unix_socket_path(self.params['docker_host']) is None:
            return
        need = self.batch.host.container_memory(self.info['State'].get('Pid'))
        directory, free = free_space(self.base)
        if need and free is not None and free < need * 1.1 + 4 * 1024 * 1024:
            raise ModuleError(
                'Checkpoint %s of container %s was not taken, and the container is still running untouched: %s has '
                '%.1f MB free, and the checkpoint needs about %.1f MB (the container\'s resident memory). Free some '
                'space or choose another checkpoint_dir, then run again.'
                % (self.checkpoint, self.container_name, directory, free / 1048576.0, need / 1048576.0),
                free_bytes=free, needed_bytes=need, container_running=True)

    def refuse_unrestorable(self):
        """Never stop a container at a checkpoint this engine cannot restore, unless asked to."""
        version = self.batch.engine_version
        network = self.info['HostConfig'].get('NetworkMode')
        entry = unrestorable(version, network)
        if entry is None:
            return
        msg = unrestorable_msg(version, network, entry)
        if self.params['leave_running']:
            self.module.warn('Checkpoint %s of %s is taken with leave_running for inspection: it cannot be restored '
                             'on this engine. %s' % (self.checkpoint, self.container_name, msg))
        elif self.params['allow_unrestorable']:
            self.module.warn('Container %s stops at checkpoint %s although this engine cannot restore it '
                             '(allow_unrestorable). %s' % (self.container_name, self.checkpoint, msg))
        else:
            raise ModuleError('Checkpoint %s of container %s was not taken, and the container is still running '
                              'untouched: stopping it at this checkpoint would lose it. %s Set allow_unrestorable: '
                              'true to take it anyway (the container stops), or leave_running: true for a '
                              'checkpoint to inspect.' % (self.checkpoint, self.container_name, msg),
                              engine_version=version, network_mode=network, reference=entry['reference'])

    def refuse_options_unreached(self):
        """Per-call CRIU options go into the engine host's runc.conf: refused where they would not reach CRIU."""
        if not self.options:
            return
        if unix_socket_path(self.params['docker_host']) is None:
            raise ModuleError('Checkpoint %s of container %s was not taken, and the container is untouched: the CRIU '
                              'options of a call (%s) go into %s on the engine\'s host, and the engine at %s is '
                              'remote. Run the module on the engine\'s host (its unix socket).'
                              % (self.checkpoint, self.container_name, ', '.join(sorted(self.options)),
                                 _criuconf.RUNC_CONF, self.params['docker_host']))
        _criuconf.refuse_annotation('Checkpoint %s of container' % self.checkpoint, self.container_name, self.info,
                                    self.options)

    def choose_method(self):
        """method: engine, runtime, or auto (the runtime path where it can be taken, else the engine's)."""
        if self.params['method'] == 'engine':
            return
        try:
            info = self.batch.engine_info()
            live = info.get('LiveRestoreEnabled') and self.batch.outlived_engine(self.info)
            self.runtime = find_runtime(self.batch.host, self.params['docker_host'], info, self.info, live)
        except RuntimeUnavailable as exc:
            if self.params['method'] == 'runtime':
                raise ModuleError('method runtime cannot checkpoint container %s: %s. Use method engine (or auto, '
                                  'which takes the runtime path only where it can).'
                                  % (self.container_name, exc.reason))
            self.method_reason = 'the runtime path cannot be taken: %s' % exc.reason

    @property
    def method(self):
        return 'runtime' if self.runtime else 'engine'

    # -- act

    def act(self):
        if self.params['state'] == 'absent':
            self.engine.delete_checkpoint(self.container_id, self.checkpoint, self.custom_dir)
            return
        self.prepare()
        self.take(self.params['leave_running'])
        self.finish()

    def prepare(self):
        """Where the checkpoint goes, and the restart policy held while the container stops at it."""
        replacing = self.checkpoint in self.before
        if self.custom_dir:
            store.ensure_private_dir(self.custom_dir)
        # A retake goes under a temporary name and replaces the old checkpoint only once it succeeded. On a local
        # engine every engine-path checkpoint does: an engine killed while it writes the images leaves them under
        # the temporary name (removed by the next take), never as a half-written checkpoint under its own name.
        local = unix_socket_path(self.params['docker_host']) is not None
        self.temporary = replacing or (local and not self.runtime)
        self.target = self.checkpoint + TEMPORARY_SUFFIX if self.temporary else self.checkpoint
        if self.temporary:
            self.remove_leftover(self.target)
        self.policy = self.policy_to_record()
        self.holding = (self.params['hold_restart_policy'] and not self.params['leave_running']
                        and self.policy.get('Name') in HELD_RESTART_POLICIES)
        if self.holding:
            store.write_hold(self.data_root, self.container_id, self.policy)
            self.engine.set_restart_policy(self.container_id, {'Name': 'no'})

    def take(self, leave_running):
        """The dump, through the runtime or the engine; on failure the policy back and the failure explained."""
        started = time.monotonic()
        try:
            with self.criu_config() as conf:
                self.criu_options = conf.effective
                if self.runtime:
                    self.take_through_runtime(os.path.join(self.base, self.target), leave_running)
                else:
                    self.taken['attempts'] = self.engine.create_checkpoint(
                        self.container_id, self.target, leave_running, self.custom_dir, retried=self.taken['retries'])
            if not leave_running:
                self.engine.wait_stopped(self.container_id)
        except EngineError as exc:
            self.give_back()
            raise self.failed(exc.msg, exc.engine_message, exc.fail_kwargs())
        except ModuleError:
            self.give_back()
            raise
        self.taken['duration'] = round(time.monotonic() - started, 3)

    def give_back(self):
        """After a failed take: the held restart policy back."""
        if self.holding:
            self.put_back_held_policy(self.policy)

    def discard(self):
        """A group's take that another member's failure undoes: what this one wrote goes, the policy comes back."""
        shutil.rmtree(os.path.join(self.base, self.target), ignore_errors=True)
        if not self.temporary:
            try:
                self.engine.delete_checkpoint(self.container_id, self.target, self.custom_dir)
            except EngineError:
                pass
        self.give_back()

    def finish(self, group=None):
        """The checkpoint in place under its name, and recorded beside CRIU's images."""
        path = os.path.join(self.base, self.checkpoint)
        if self.checkpoint in self.before:
            store.swap_in(os.path.join(self.base, self.target), path)
        elif self.temporary and os.path.isdir(os.path.join(self.base, self.target)):
            os.rename(os.path.join(self.base, self.target), path)
        if not os.path.isdir(path):
            self.module.warn('The checkpoint files are not on this host (%s), so its restart policy and time '
                             'were not recorded. Run the module on the engine host.' % path)
            return
        self.taken['stats'] = read_stats(path, 'stats-dump')
        metadata = dict(
            checkpoint=self.checkpoint, container=self.container_name, container_id=self.container_id,
            image=self.info['Config'].get('Image'), created=store.now_iso(), method=self.method,
            leave_running=self.params['leave_running'], restart_policy=self.policy, duration=self.taken['duration'],
            stats=self.taken['stats'], criu_options=_criuconf.positive(self.criu_options or self.options))
        if group:
            metadata['group'] = group
        store.write_metadata(path, metadata)

    def criu_config(self):
        """runc.conf for this take: the call's CRIU options in it, or the host's held unchanged (_criuconf)."""
        conf = _criuconf.CriuConfig(self.options, local=unix_socket_path(self.params['docker_host']) is not None)
        return _criuconf.held(conf, 'Checkpoint %s of container' % self.checkpoint, self.container_name, self.module)

    def policy_to_record(self):
        """The container's restart policy; or, while it has the "no" of a hold that no restore put back (a run cut
        before its checkpoint was recorded), the held one."""
        current = self.info['HostConfig'].get('RestartPolicy') or {'Name': 'no'}
        held = store.read_hold(self.data_root, self.container_id)
        return held if policy_still_held(held, current) else current

    def put_back_held_policy(self, policy):
        """After a failed take: the restart policy back (not possible while the engine does not answer; the
        failure's msg then says what to check, and the hold stays recorded for the next run)."""
        try:
            self.engine.set_restart_policy(self.container_id, policy)
        except EngineError:
            return
        store.clear_hold(self.data_root, self.container_id)

    def remove_leftover(self, target):
        """Remove what an interrupted take left under the temporary name (through the engine, which lists it)."""
        if os.path.isdir(os.path.join(self.base, target)):
            try:
                self.engine.delete_checkpoint(self.container_id, target, self.custom_dir)
            except EngineError:
                pass
        shutil.rmtree(os.path.join(self.base, target), ignore_errors=True)

    def take_through_runtime(self, path, leave_running):
        """runc checkpoint into a temporary directory beside path, renamed to path once runc succeeded: a dump
        that fails or is killed half-way never leaves a directory under the checkpoint's name, which the
        engine would list (and try to restore) as a checkpoint. A failure removes what it wrote; a temporary
        directory that a killed run left is removed by the next take."""
        temp = runtime_temp_dir(path, bool(self.custom_dir))
        store.ensure_private_dir(os.path.dirname(path))
        shutil.rmtree(temp, ignore_errors=True)
        os.mkdir(temp, 0o700)
        rc, out, err = run_checkpoint(self.module, self.runtime, self.container_id, temp, leave_running)
        if rc == 0:
            try:
                os.rename(temp, path)
            except OSError as exc:
                shutil.rmtree(temp, ignore_errors=True)
                raise self.failed('the checkpoint could not be moved into place (%s): %s' % (path, exc), None, {})
            return
        log, errors = read_log_errors([os.path.join(temp, 'dump.log'), runc_log_file()])
        shutil.rmtree(temp, ignore_errors=True)
        # runc names CRIU's log in the work directory, which runc.conf's log-file may have overridden (and
        # which is gone now): the log that was read is named below, once.
        reason = ' '.join(re.sub(r'log file: \S+', '', err or out or 'runc exited %s' % rc).split()).rstrip(':; ')
        shared = runc_log_file()
        if not errors and shared:
            # CRIU opens that log anew (truncated) at every run: a dump started meanwhile wiped this one's lines.
            reason += ('. CRIU\'s log %s holds no Error lines of this dump: /etc/criu/runc.conf makes every CRIU run '
                       'write that one file, started anew each time, and another run (of this batch, or another '
                       'engine\'s) has started since; checkpoint this container alone to read why' % shared)
        raise self.failed('runc checkpoint exited %s: %s' % (rc, reason), None,
                          dict(runc_rc=rc, runc_stderr=(err or '').splitlines()[-20:]), log=log, errors=errors)

    def containerd_tmpdir_room(self):
        """The engine's checkpoint passes through containerd's temporary directory first: what it has left, when that
        may be what filled up (the engine's path, its containerd on this host)."""
        if self.runtime is not None:
            return ''
        found = Host().containerd_tmpdir(self.params['docker_host'])
        if not found:
            return ''
        free = '?' if found['free'] is None else '%.1f MB' % (found['free'] / 1048576.0)
        return (' The engine\'s checkpoint passes through containerd\'s temporary directory first, %s (%s, %s free now): '
                'if that is what filled up, point it at a disk with room (the cryo.docker.engine role\'s '
                'engine_containerd_tmpdir).' % (found['path'], found['fstype'] or 'file system unknown', free))

    def failed(self, reason, engine_message, details, log=None, errors=None):
        """The error for a checkpoint that failed: CRIU's reasons, and whether the container runs."""
        gone = ''
        try:
            state = self.engine.inspect(self.container_id)['State']
            running = state.get('Running')
        except EngineError as exc:
            state, running, gone = {}, None, exc.msg
        if errors is None:
            log, errors = failure_log(engine_message)
        msg = 'Checkpoint %s of container %s failed: %s' % (self.checkpoint, self.container_name, reason)
        if errors:
            msg += ' CRIU says: %s (log: %s).' % (quote_errors(errors), log)
        msg += _criuconf.established_tcp_hint(list(errors) + [engine_message or '', reason], self.options)
        if DISK_FULL in ' '.join([reason, engine_message or ''] + list(errors)).lower():
            directory, free = free_space(self.base)
            msg += (' The disk is full: the filesystem of %s ran out of room (%s free now, what the checkpoint wrote '
                    'removed). Free space there, or choose another checkpoint_dir, then run again.'
                    % (directory, '?' if free is None else '%.1f MB' % (free / 1048576.0)))
            msg += self.containerd_tmpdir_room()
            details = dict(details, disk_full=True)
        if state.get('Paused') and not self.info['State'].get('Paused') and not self.frozen_by_group:
            # It ran when the take began: a CRIU that ended before it thawed the processes (killed, crashed) left
            # the freezer on, and the engine's runc calls that paused. Thawed through the engine, which keeps its
            # own state right.
            try:
                self.engine.unpause(self.container_id)
                state = self.engine.inspect(self.container_id)['State']
                details = dict(details, thawed=True)
                msg_thawed = (' CRIU ended before it thawed the container\'s processes, so the module thawed them '
                              '(unpause): the container is running again where it was; nothing was lost.')
            except EngineError as exc:
                msg_thawed = None
                # Paused only for a moment: CRIU was still thawing it when the engine looked (measured on Docker
                # 26.1), and it is not paused any more when the module unpauses it. What the engine says now counts.
                try:
                    state = self.engine.inspect(self.container_id)['State']
                    running = state.get('Running')
                except EngineError:
                    pass
                if state.get('Paused'):
                    details = dict(details, thawed=False, thaw_error=exc.msg)
        else:
            msg_thawed = None
        problem = container_state_problem(self.container_name, state, 'checkpointed')
        if running is None:
            msg += (' The engine stopped answering during the checkpoint (%s), so whether the container still runs is '
                    'not known. Once the engine is back: if cryo.docker.docker_checkpoint_info lists checkpoint %s, '
                    'bring the container back with cryo.docker.docker_restore; if not, no usable checkpoint was taken '
                    'and the container, if stopped, starts afresh with docker start. What was written under %s%s or '
                    '%s%s is not a checkpoint, is not listed, and goes at the next take.'
                    % (gone.rstrip('.'), self.checkpoint, self.checkpoint, TEMPORARY_SUFFIX, RUNTIME_TEMP_PREFIX,
                       self.checkpoint))
        elif running and self.frozen_by_group:  # paused by its group, which thaws it
            msg += ' The container is still running; nothing was lost.'
        elif problem:  # it began restarting (or was paused, or removed) while the checkpoint was taken
            msg += ' ' + problem
        elif running and msg_thawed:
            msg += msg_thawed
        elif running:
            thawed = self.thaw_left_frozen()
            details = dict(details, thawed=thawed == 'thawed')
            if thawed in (None, 'thawed'):
                msg += (' The container is still running; nothing was lost.' if thawed is None else
                        ' CRIU ended before it thawed the container\'s processes, so the module thawed them (runc '
                        'resume): the container is running again where it was; nothing was lost.')
            else:
                running = False
                msg += (' The engine says the container runs, but its processes are frozen: CRIU ended before it '
                        'thawed them, and the module could not (%s). Nothing is lost: thaw them with `runc --root '
                        '<the engine\'s runc root> resume %s` on the engine\'s host.' % (thawed, self.container_id))
        else:
            msg += (' The container is NOT running any more: start it again (docker start), since no usable '
                    'checkpoint was taken.')
        details = dict(details, criu_errors=errors, container_running=running, method=self.method)
        details.pop('msg', None)
        if log:
            details['criu_log'] = log
        return ModuleError(msg, **details)

    def thaw_left_frozen(self):
        """After a failed take, with the container running for the engine: thaw it if CRIU left it frozen
        (_runtime.thaw), through the engine's runc (the runtime path's, or found for the engine path). None when it
        was not frozen or runc cannot be reached from here (a remote engine), 'thawed', or why it could not be."""
        runtime = self.runtime
        if runtime is None:
            try:
                runtime = find_runtime(self.batch.host, self.params['docker_host'], self.batch.engine_info(),
                                       self.info)
            except (RuntimeUnavailable, EngineError):
                return None
        return thaw(self.module, runtime, self.container_id)

    # -- report

    def retries(self):
        return dict(self.taken['retries'])

    def report(self):
        result = dict(changed=self.changed, checkpoint={}, **self.taken)
        if self.params['state'] == 'present':
            result['checkpoint'] = self.describe()
            if self.changed and self.module.check_mode:
                result['checkpoint'].update(created=None, size=None)
            if self.changed:
                result['method'] = self.method
                if self.method_reason:
                    result['method_reason'] = self.method_reason
                result.update(_criuconf.report(self.criu_options, self.options, {}))
        if self.changed and self.module._diff and self.batch.single:
            result['diff'] = self.diff()
        return result

    def diff(self):
        status = self.info['State'].get('Status')
        if self.params['state'] == 'present':
            after = 'running' if self.params['leave_running'] else 'exited'
        else:
            after = status
        gone = {entry['name'] for entry in self.batch.removed if self.owns(entry)}
        before, after = dict(checkpoints=self.before, container_state=status), dict(
            checkpoints=[name for name in self.after if name not in gone], container_state=after)
        if not self.batch.single:
            before['container'] = after['container'] = self.container_name
        else:
            before.update(self.batch.others_removed_diff()['before'])
            after.update(self.batch.others_removed_diff()['after'])
        return dict(before=before, after=after)

    def owns(self, entry):
        """Whether a checkpoint retention removed is one of this container's where this run wrote."""
        return entry['container_id'] == self.container_id and os.path.dirname(entry['directory']) == self.base

    def retention_item(self):
        """The checkpoint this task took (or would take), as retention (_retention.Retention) reads it."""
        estimate = None
        if self.module.check_mode and unix_socket_path(self.params['docker_host']) is not None:
            estimate = self.batch.host.container_memory(self.info['State'].get('Pid')) or None
        return dict(container_id=self.container_id, container=self.container_name, name=self.checkpoint,
                    base=self.base, estimate=estimate, leave_running=self.params['leave_running'])


class CheckpointBatch(Batch):
    """docker_checkpoint: the runtime path needs the engine's /info and the host's facts, asked once."""

    task_class = CheckpointTask

    def __init__(self, module, params=None, engine=None):
        self.host = Host()
        self.frozen = None
        self._info = None
        self._dockerd = False
        self.retention = None
        self.removed = []
        super().__init__(module, params, engine)
        if retention_wanted(self.params) and self.params['state'] == 'absent':
            raise ModuleError('%s apply when a checkpoint is taken (state=present): they remove the oldest '
                              'checkpoints once a new one is recorded. Nothing was removed. Leave them out with '
                              'state=absent.' % ', '.join(rule for rule in RETENTION_RULES if self.params.get(rule)))

    # -- retention: the rules applied once the batch has taken its checkpoints

    def plan(self):
        super().plan()
        if self.module.check_mode:
            self.apply_retention(predict=True)

    def act(self):
        super().act()
        self.apply_retention()

    def apply_retention(self, predict=False):
        """keep_last, max_size and host_max_size (_retention.py), after every checkpoint taken and recorded (in check
        mode: predicted, as if taken); nothing when none was taken."""
        taken = [task for task in self.tasks if task.changed and task.error is None and
                 self.params['state'] == 'present']
        if not retention_wanted(self.params) or not taken:
            return
        self.retention = Retention(self.module, self.engine, self.params, taken[0].data_root,
                                   [task.retention_item() for task in taken],
                                   [task.container_id for task in self.tasks if task.held is not None])
        try:
            self.retention.plan(predict)
            if not predict:
                self.retention.act()
        except EngineError as exc:
            self.module.warn('Retention was not applied, and the checkpoint just taken is kept: %s' % exc.msg)
        finally:
            self.retention.release()
        self.removed = self.retention.report(predict)

    def batch_report(self):
        return dict(removed=self.removed) if self.params['state'] == 'present' else {}

    def others_removed_diff(self):
        """Diff of the checkpoints retention removed (or would) of containers this run did not checkpoint here."""
        others = sorted('%s/%s' % (entry['container'], entry['name']) for entry in self.removed
                        if not any(task.owns(entry) for task in self.tasks if task.error is None))
        return dict(before=dict(other_checkpoints=others), after=dict(other_checkpoints=[])) if others else \
            dict(before={}, after={})

    def batch_diff(self):
        found = self.others_removed_diff()
        return [found] if found['before'] else []

    # -- a group: every member frozen before the first is dumped, none runs again before all are

    def plan_group(self):
        if self.params['state'] == 'absent' or self.params['force']:
            return
        have = sorted(task.container_name for task in self.tasks if not task.changed)
        if have and len(have) < len(self.tasks):
            raise ModuleError(
                'Checkpoint %s of the group %s was not taken, and nothing was changed: %s already %s it and %s not. '
                'A group\'s checkpoint is one point in time, taken of every member at once: use force: true to take '
                'it anew for all, or another checkpoint name.'
                % (self.params['checkpoint'], self.group_name(), ', '.join(have), 'has' if len(have) == 1 else 'have',
                   ', '.join(task.container_name for task in self.tasks if task.changed)),
                members_with_checkpoint=have)

    def act_group(self, todo):
        if self.params['state'] == 'absent':
            for task in todo:
                task.act()
            return
        prepared = []
        try:
            for task in todo:
                task.prepare()
                prepared.append(task)
        except ModuleError:
            for task in prepared:
                task.give_back()
            raise
        freeze = Freeze(self.engine, [task.container_id for task in todo])
        try:
            freeze.pause()
        except ModuleError as exc:
            errors = {todo[len(freeze.paused)].container_name: exc}
        else:
            for task in todo:
                task.frozen_by_group = True
            errors = self.take_frozen(todo)
        if errors:
            for task in todo:
                task.discard()
            stuck = freeze.thaw()
            self.frozen = freeze.window()
            stopped = [task.container_name for task in todo if task.container_id not in stuck
                       and not self.runs(task.container_id)]
            if stuck:
                after = ('The members were thawed, except %s (%s): unpause them (docker unpause).'
                         % (', '.join(stuck), '; '.join(stuck.values())))
            elif stopped:
                after = ('The members were thawed, but %s %s not running any more (the failed dump ended it): start '
                         'it again (docker start); what the others\' dumps wrote was removed.'
                         % (', '.join(stopped), 'is' if len(stopped) == 1 else 'are'))
            else:
                after = 'Every member was thawed and runs on where it was; what the others\' dumps wrote was removed.'
            raise ModuleError(
                'Checkpoint %s of the group %s was not taken: %s %s' % (
                    self.params['checkpoint'], self.group_name(),
                    ' '.join('[%s] %s' % (name, error.msg) for name, error in errors.items()), after),
                failed_members=sorted(errors), frozen_seconds=self.frozen,
                containers_running=not stuck and not stopped, containers_stopped=stopped)
        if self.params['leave_running']:
            stuck = freeze.thaw()
            if stuck:
                self.module.warn('The group\'s checkpoint was taken, but %s could not be thawed (%s): unpause them '
                                 '(docker unpause).' % (', '.join(stuck), '; '.join(stuck.values())))
        else:
            freeze.kill()
        self.frozen = freeze.window()
        entry = record(new_id(), self.project, [task.container_name for task in self.tasks], self.frozen)
        for task in todo:
            task.finish(entry)

    def runs(self, container_id):
        try:
            return bool(self.engine.inspect(container_id)['State'].get('Running'))
        except ModuleError:
            return False

    def take_frozen(self, todo):
        """Every member dumped while the group is frozen (left running: frozen still, CRIU puts the freezer back as it
        found it), concurrently; {member: its error}."""
        def take(task):
            try:
                task.engine = connect(self.params)
                task.take(True)
            except ModuleError as exc:
                return exc
            return None
        with ThreadPoolExecutor(max_workers=max(1, min(self.params['parallel'] or default_parallel(), len(todo)))) as pool:
            results = list(pool.map(take, todo))
        return {task.container_name: error for task, error in zip(todo, results) if error is not None}

    def group_report(self):
        return dict(super().group_report(), checkpoint=self.params['checkpoint'], frozen_seconds=self.frozen,
                    leave_running=self.params['leave_running'])

    def engine_info(self):
        if self._info is None:
            self._info = self.engine.info()
        return self._info

    def outlived_engine(self, inspect):
        """Whether a running container was started before the current engine process (live-restore)."""
        if self._dockerd is False:
            self._dockerd = self.host.dockerd(self.params['docker_host'])
        started = parse_timestamp((inspect.get('State') or {}).get('StartedAt'))
        return bool(self._dockerd) and started_before(started, self._dockerd['started_at'])
