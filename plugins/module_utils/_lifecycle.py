# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""Taking and restoring checkpoints, one container at a time (a task) or many at once (a batch).

A task reads as plan, act, report for one container; a Batch is the module's Manager: it makes one task
per container, plans them all, acts on those that need it concurrently (bounded), and reports each. One
task's failure never hides the others': each gets its own result.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.module_utils._common import (
    C_LOCALE,
    HELD_RESTART_POLICIES,
    Manager,
    ModuleError,
    check_checkpoint_dir,
    check_checkpoint_name,
    check_container_state,
    container_state_problem,
    policy_still_held,
    what_is,
)
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
    STALE_CONTENT_RETRY,
    TEMPORARY_SUFFIX,
    EngineError,
    connect,
    count_retry,
    stale_content_digest,
    sum_retries,
    transient_reason,
)
from ansible_collections.cryo.docker.plugins.module_utils._host import (
    ENGINE_NAMESPACE,
    SERVICE_PATH,
    Host,
    find_program,
    free_space,
    read_json,
    task_bundle_dirs,
    unix_socket_path,
)
from ansible_collections.cryo.docker.plugins.module_utils._imagepath import Runtimes, Unavailable, is_slot_runtime, slot_record
from ansible_collections.cryo.docker.plugins.module_utils._lock import Busy, ContainerLock, lock_path
from ansible_collections.cryo.docker.plugins.module_utils._preflight import (
    parse_timestamp,
    started_before,
    unrestorable,
    unrestorable_msg,
)
from ansible_collections.cryo.docker.plugins.module_utils._runtime import (
    RuntimeUnavailable,
    find_runtime,
    run_checkpoint,
    thaw,
)


# How the kernel's ENOSPC reads in CRIU's log, runc's and containerd's errors (lower case).
DISK_FULL = 'no space left on device'


def default_parallel():
    """How many containers a batch works on at once by default: twice the host's CPUs, at least 4. A checkpoint or
    restore mostly waits for the engine and containerd (bench freeze_window, 20 counters on 2 CPUs: blackout 0.34x
    the sequential loop's with 2 at a time, 0.26x with 4)."""
    return max(4, 2 * (os.cpu_count() or 1))


def runtime_temp_dir(path, custom_dir):
    """Where the runtime path lets runc write the checkpoint that goes to path: on the same filesystem, so
    that a rename puts it in place, and where the engine does not list it. The engine's place
    (containers/<id>/checkpoints/<name>) gets containers/<id>/RUNTIME_TEMP_PREFIX<name>; a checkpoint_dir (maybe
    a filesystem of its own) gets <checkpoint_dir>/RUNTIME_TEMP_PREFIX<name>, a name no checkpoint can have."""
    parent, name = os.path.split(path)
    return os.path.join(parent if custom_dir else os.path.dirname(parent), RUNTIME_TEMP_PREFIX + name)


class Parameters(dict):
    """A batch's options as its tasks read them (params['name']). docker_checkpoint and docker_restore pass their
    module.params; another caller (an export, an import) names only the options it sets and every other one has
    its default (DEFAULTS, the module's own: a unit test holds them equal), so that a new option never breaks it.
    A name that is no option is a programming error."""

    DEFAULTS = {}

    def __init__(self, **given):
        unknown = sorted(set(given) - set(self.DEFAULTS))
        if unknown:
            raise TypeError('%s has no option %s' % (type(self).__name__, ', '.join(unknown)))
        super().__init__(self.DEFAULTS)
        self.update(given)


class CheckpointParameters(Parameters):
    """docker_checkpoint's options."""

    DEFAULTS = dict(CONNECTION_DEFAULTS, container=None, containers=None, parallel=None, checkpoint=None,
                    state='present', leave_running=False, checkpoint_dir=None, force=False, hold_restart_policy=True,
                    allow_unrestorable=False, method='auto')


class RestoreParameters(Parameters):
    """docker_restore's options."""

    DEFAULTS = dict(CONNECTION_DEFAULTS, container=None, containers=None, parallel=None, checkpoint=None,
                    checkpoint_dir=None, force=False, verify=True, restore_restart_policy=True, fallback='fail',
                    keep_checkpoint=True, method='auto')


class Batch(Manager):
    """The module's manager over O(container) or O(containers): task_class does one container.

    params: the options (a Parameters) when the caller is not the module whose options they are; engine: a
    connection to reuse."""

    task_class = None

    def __init__(self, module, params=None, engine=None):
        super().__init__(module)
        if params is not None:
            self.params = params
        check_checkpoint_name(self.params['checkpoint'])
        check_checkpoint_dir(self.params['checkpoint_dir'])
        self.single = self.params.get('container') is not None
        names = [self.params['container']] if self.single else list(self.params['containers'] or [])
        if not self.single and not names:
            raise ModuleError('containers is empty: name at least one container (or use container for one).')
        if len(set(names)) != len(names):
            raise ModuleError('containers names %s more than once: each container can be worked on once per run.'
                              % ', '.join(sorted({name for name in names if names.count(name) > 1})))
        self.engine = engine or connect(self.params)
        self.engine_version = self.engine.require_experimental().get('Version')
        self.tasks = []
        for name in names:
            try:
                self.tasks.append(self.task_class(self, name))
            except ModuleError as exc:
                if self.single:
                    raise
                self.tasks.append(FailedTask(self, name, exc))

    def plan(self):
        for task in self.tasks:
            if task.error is None:
                try:
                    task.plan()
                except ModuleError as exc:
                    if self.single:
                        raise
                    task.error = exc
        self.changed = any(task.changed for task in self.tasks if task.error is None)

    def act(self):
        todo = [task for task in self.tasks if task.changed and task.error is None]
        if self.single or len(todo) == 1:
            for task in todo:
                try:
                    task.act()
                except ModuleError as exc:
                    # The engine calls it made again count in a failed result too.
                    exc.details.setdefault('retries', task.retries())
                    raise
            return
        with ThreadPoolExecutor(max_workers=max(1, min(self.params['parallel'] or default_parallel(), len(todo)))) as pool:
            for task, error in zip(todo, pool.map(self.act_on, todo)):
                task.error = error

    def act_on(self, task):
        """Act on one task of a batch, with an engine connection of its own; the error, or None."""
        try:
            task.engine = connect(self.params)
            task.act()
        except ModuleError as exc:
            return exc
        except Exception as exc:  # pylint: disable=broad-except
            # One container's unexpected failure must not hide what happened to the others.
            return ModuleError('%s %s failed unexpectedly: %s' % (task.what, task.name, exc),
                               exception=traceback.format_exc())
        return None

    def report(self):
        try:
            return self.report_tasks()
        finally:
            for task in self.tasks:
                task.unlock()

    def report_tasks(self):
        if self.single:
            return self.tasks[0].report()
        results = [self.failed_entry(task) if task.error else task.entry() for task in self.tasks]
        result = dict(changed=any(entry['changed'] for entry in results), results=results,
                      retries=sum_retries(task.retries() for task in self.tasks))
        diffs = [task.diff() for task in self.tasks if task.error is None and task.changed and self.module._diff]
        if diffs:
            result['diff'] = diffs
        failed = [task for task in self.tasks if task.error]
        if failed:
            raise ModuleError('%d of %d containers failed: %s The others are reported in results.'
                              % (len(failed), len(self.tasks), ' '.join('[%s] %s' % (task.name, task.error.msg)
                                                                        for task in failed)), **result)
        return result

    @staticmethod
    def failed_entry(task):
        """A failed task's entry in results: its error's message and details."""
        return dict(dict(task.error.fail_kwargs(), retries=task.retries()), container=task.name, failed=True,
                    changed=task.changed)


class Task:
    """One container of a batch: plan() decides (sets changed), act() does, report() says."""

    what = 'Work on container'
    operation = 'an operation'

    def __init__(self, batch, name):
        self.batch = batch
        self.module = batch.module
        self.params = batch.params
        self.engine = batch.engine
        self.name = name
        self.error = None
        self.changed = False
        self.held = None

    def lock(self):
        """Take the container's lock (_lock.py) before its state is read for the plan, and hold it to the end: a
        second operation on the container meanwhile is refused. Not in check mode, which changes nothing."""
        if self.module.check_mode or self.held is not None:
            return
        lock = ContainerLock(lock_path(self.data_root, self.container_id))
        try:
            self.held = lock.acquire(self.operation, self.checkpoint)
        except Busy as busy:
            raise ModuleError(
                '%s %s was not done, and nothing was changed: the container is busy with %s (it holds %s). One '
                'operation works on a container at a time. Wait until that one has finished, then run this again: '
                'it finds what that one left.' % (self.what, self.container_name, busy.describe(), busy.path),
                busy=True, lock_path=busy.path, lock_owner=busy.owner)
        except OSError as exc:
            raise ModuleError('%s %s was not done, and nothing was changed: its lock %s cannot be taken (%s). Check '
                              'that path (a regular file, writable by root).'
                              % (self.what, self.container_name, lock.path, exc), lock_path=lock.path)
        # What the plan reads, read again now that no other operation can change it.
        self.info = self.engine.inspect(self.container_id)

    def unlock(self):
        if self.held is not None:
            self.held.release()
            self.held = None

    def entry(self):
        """The task's entry in a batch's results."""
        return dict(self.report(), container=self.name)

    def retries(self):
        """{reason: count} of the engine calls it made again."""
        return {}

    def diff(self):
        return {}


class FailedTask(Task):
    """A container of a batch that failed before it could be planned (it does not exist, say)."""

    def __init__(self, batch, name, error):
        super().__init__(batch, name)
        self.error = error


# -- checkpoint ------------------------------------------------------------------------------------

class CheckpointTask(Task):
    """plan: does the checkpoint exist, may the container be checkpointed, through which path; act: take
    it (restart policy held, a retake under a temporary name) or remove it; report: the checkpoint now."""

    what = 'Checkpoint of container'
    operation = 'a checkpoint'

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
        self.choose_method()
        self.check_room()
        self.changed = True

    def refuse_removing_golden(self):
        """A warm container starts from its golden checkpoint: without it, it could not start at all."""
        slot = slot_record(self.engine.data_root(), self.info['HostConfig'].get('Runtime'))
        if slot.get('mode') == 'warm' and slot.get('checkpoint') == self.checkpoint:
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
        replacing = self.checkpoint in self.before
        if self.custom_dir:
            store.ensure_private_dir(self.custom_dir)
        # A retake goes under a temporary name and replaces the old checkpoint only once it succeeded. On a local
        # engine every engine-path checkpoint does: an engine killed while it writes the images leaves them under
        # the temporary name (removed by the next take), never as a half-written checkpoint under its own name.
        local = unix_socket_path(self.params['docker_host']) is not None
        temporary = replacing or (local and not self.runtime)
        target = self.checkpoint + TEMPORARY_SUFFIX if temporary else self.checkpoint
        if temporary:
            self.remove_leftover(target)
        policy = self.policy_to_record()
        held = (self.params['hold_restart_policy'] and not self.params['leave_running']
                and policy.get('Name') in HELD_RESTART_POLICIES)
        if held:
            store.write_hold(self.data_root, self.container_id, policy)
            self.engine.set_restart_policy(self.container_id, {'Name': 'no'})
        started = time.monotonic()
        try:
            if self.runtime:
                self.take_through_runtime(os.path.join(self.base, target))
            else:
                self.taken['attempts'] = self.engine.create_checkpoint(
                    self.container_id, target, self.params['leave_running'], self.custom_dir,
                    retried=self.taken['retries'])
            if not self.params['leave_running']:
                self.engine.wait_stopped(self.container_id)
        except EngineError as exc:
            if held:
                self.put_back_held_policy(policy)
            raise self.failed(exc.msg, exc.engine_message, exc.fail_kwargs())
        except ModuleError:
            if held:
                self.put_back_held_policy(policy)
            raise
        self.taken['duration'] = round(time.monotonic() - started, 3)
        path = os.path.join(self.base, self.checkpoint)
        if replacing:
            store.swap_in(os.path.join(self.base, target), path)
        elif temporary and os.path.isdir(os.path.join(self.base, target)):
            os.rename(os.path.join(self.base, target), path)
        if not os.path.isdir(path):
            self.module.warn('The checkpoint files are not on this host (%s), so its restart policy and time '
                             'were not recorded. Run the module on the engine host.' % path)
            return
        self.taken['stats'] = read_stats(path, 'stats-dump')
        store.write_metadata(path, dict(
            checkpoint=self.checkpoint, container=self.container_name, container_id=self.container_id,
            image=self.info['Config'].get('Image'), created=store.now_iso(), method=self.method,
            leave_running=self.params['leave_running'], restart_policy=policy, duration=self.taken['duration'],
            stats=self.taken['stats']))

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

    def take_through_runtime(self, path):
        """runc checkpoint into a temporary directory beside path, renamed to path once runc succeeded: a dump
        that fails or is killed half-way never leaves a directory under the checkpoint's name, which the
        engine would list (and try to restore) as a checkpoint. A failure removes what it wrote; a temporary
        directory that a killed run left is removed by the next take."""
        temp = runtime_temp_dir(path, bool(self.custom_dir))
        store.ensure_private_dir(os.path.dirname(path))
        shutil.rmtree(temp, ignore_errors=True)
        os.mkdir(temp, 0o700)
        rc, out, err = run_checkpoint(self.module, self.runtime, self.container_id, temp,
                                      self.params['leave_running'])
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
        if DISK_FULL in ' '.join([reason, engine_message or ''] + list(errors)).lower():
            directory, free = free_space(self.base)
            msg += (' The disk is full: the filesystem of %s ran out of room (%s free now, what the checkpoint wrote '
                    'removed). Free space there, or choose another checkpoint_dir, then run again.'
                    % (directory, '?' if free is None else '%.1f MB' % (free / 1048576.0)))
            details = dict(details, disk_full=True)
        if state.get('Paused') and not self.info['State'].get('Paused'):
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
        if self.changed and self.module._diff and self.batch.single:
            result['diff'] = self.diff()
        return result

    def diff(self):
        status = self.info['State'].get('Status')
        if self.params['state'] == 'present':
            after = 'running' if self.params['leave_running'] else 'exited'
        else:
            after = status
        before, after = dict(checkpoints=self.before, container_state=status), dict(checkpoints=self.after,
                                                                                    container_state=after)
        if not self.batch.single:
            before['container'] = after['container'] = self.container_name
        return dict(before=before, after=after)


class CheckpointBatch(Batch):
    """docker_checkpoint: the runtime path needs the engine's /info and the host's facts, asked once."""

    task_class = CheckpointTask

    def __init__(self, module, params=None, engine=None):
        self.host = Host()
        self._info = None
        self._dockerd = False
        super().__init__(module, params, engine)

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


# -- restore ---------------------------------------------------------------------------------------

def remove_stale_content(module, docker_host, digest):
    """Remove a blob from the content store of the containerd the local dockerd at docker_host runs, with that
    containerd's own client (ctr, on dockerd's PATH); (True, None), or (False, why not)."""
    dockerd = Host().dockerd(docker_host) if unix_socket_path(docker_host) else None
    if dockerd is None:
        return False, 'the engine\'s dockerd is not a process on this host'
    ctr = find_program('ctr', dockerd['path'] or SERVICE_PATH)
    if ctr is None:
        return False, 'no ctr on the PATH of dockerd (pid %s)' % dockerd['pid']
    address = (read_json(dockerd['config_file']).get('containerd')
               or os.path.join(dockerd['exec_root'], 'containerd', 'containerd.sock'))
    rc, _out, err = module.run_command([ctr, '--address', address, '--namespace', ENGINE_NAMESPACE, 'content', 'rm',
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
        self.choose_method()
        self.action = 'restore'
        self.changed = True

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
            if slot.get('mode') == 'warm' and slot.get('golden'):
                self.runtimes.point(runtime, slot['golden'])
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
        """Remove the copies containerd left of this checkpoint; the restore's statistics are in them."""
        copies = store.containerd_copies(self.source)
        for copy in copies:
            self.outcome['stats'] = self.outcome['stats'] or read_stats(copy, 'stats-restore')
        self.outcome['containerd_copies_removed'] = len(store.remove_containerd_copies(self.source))

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
            if self.runtimes and self.runtimes.read_slot(self.info['HostConfig']['Runtime']).get('mode') == 'warm':
                # A warm container would restore its golden checkpoint again at this start.
                self.runtimes.write_slot(self.info['HostConfig']['Runtime'], mode='once', golden=None, checkpoint=None)
                self.runtimes.disarm(self.info['HostConfig']['Runtime'])
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

    @staticmethod
    def failed_entry(task):
        return dict(dict(task.error.fail_kwargs(), retries=task.retries()), container=dict(name=task.name),
                    failed=True, changed=task.changed)
