# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""The frame of docker_checkpoint and docker_restore: a Batch over one Task per container.

A task reads as plan, act, report for one container; a Batch is the module's Manager: it makes one task
per container, plans them all, acts on those that need it concurrently (bounded), and reports each. One
task's failure never hides the others': each gets its own result.

The tasks live with their module's manager, each file imported only by the modules that use it (a module
start compiles its own half, not the other's): _take.py (docker_checkpoint, CheckpointBatch) and _restore.py
(docker_restore, RestoreBatch). Export and import drive them through their Parameters.
"""

from __future__ import annotations

import os
import traceback
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.cryo.docker.plugins.module_utils._common import (
    Manager,
    ModuleError,
    check_checkpoint_dir,
    check_checkpoint_name,
)
from ansible_collections.cryo.docker.plugins.module_utils._engine import connect, sum_retries
from ansible_collections.cryo.docker.plugins.module_utils._group import dependency_order, members
from ansible_collections.cryo.docker.plugins.module_utils._lock import Busy, ContainerLock, lock_path


def default_parallel():
    """How many containers a batch works on at once by default: twice the host's CPUs, at least 4. A checkpoint or
    restore mostly waits for the engine and containerd (bench freeze_window, 20 counters on 2 CPUs: blackout 0.34x
    the sequential loop's with 2 at a time, 0.26x with 4)."""
    return max(4, 2 * (os.cpu_count() or 1))


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
        self.project = self.params.get('project')
        self.group = bool(self.project or self.params.get('group'))
        names = [self.params['container']] if self.single else list(self.params['containers'] or [])
        if self.single and self.params.get('group'):
            raise ModuleError('group: true needs the containers of the group in containers (or a Compose project in '
                              'project); container names one.')
        if not self.single and not names and not self.project:
            raise ModuleError('containers is empty: name at least one container (or use container for one).')
        if len(set(names)) != len(names):
            raise ModuleError('containers names %s more than once: each container can be worked on once per run.'
                              % ', '.join(sorted({name for name in names if names.count(name) > 1})))
        self.engine = engine or connect(self.params)
        self.engine_version = self.engine.require_experimental().get('Version')
        if self.project:
            names = [info['Name'].lstrip('/') for info in members(self.engine, self.project)]
        self.tasks = []
        for name in names:
            try:
                self.tasks.append(self.task_class(self, name))
            except ModuleError as exc:
                if self.single:
                    raise
                self.tasks.append(FailedTask(self, name, exc))
        if self.group:
            self.refuse_group_if(self.tasks)
            order = dependency_order([task.info for task in self.tasks])
            self.tasks.sort(key=lambda task: order.index(task.container_name))

    def refuse_group_if(self, tasks):
        """A group is worked on whole or not at all: one member that fails its plan refuses the group, with every
        member's reason."""
        failed = [task for task in tasks if task.error is not None]
        if failed:
            raise ModuleError('%s of the group %s was not done, and nothing was changed: %s A group is %s whole or '
                              'not at all.' % (self.task_class.what.split(' of ')[0], self.group_name(),
                                               ' '.join('[%s] %s' % (task.name, task.error.msg) for task in failed),
                                               self.task_class.operation_past),
                              failed_members=[task.name for task in failed])

    def group_name(self):
        if self.project:
            return 'Compose project %s' % self.project
        return '(%s)' % ', '.join(task.name for task in self.tasks)

    def plan(self):
        for task in self.tasks:
            if task.error is None:
                try:
                    task.plan()
                except ModuleError as exc:
                    if self.single:
                        raise
                    task.error = exc
        if self.group:
            self.refuse_group_if(self.tasks)
            self.plan_group()
        self.changed = any(task.changed for task in self.tasks if task.error is None)

    def plan_group(self):
        """What a group's plan adds to its members' (the subclass's)."""

    def act_group(self, todo):
        raise NotImplementedError

    def act(self):
        todo = [task for task in self.tasks if task.changed and task.error is None]
        if self.group:
            if todo:
                self.act_group(todo)
            return
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
            return dict(self.tasks[0].report(), **self.batch_report())
        results = [self.failed_entry(task) if task.error else task.entry() for task in self.tasks]
        result = dict(changed=any(entry['changed'] for entry in results), results=results,
                      retries=sum_retries(task.retries() for task in self.tasks), **self.batch_report())
        if self.group:
            result['group'] = self.group_report()
        diffs = [task.diff() for task in self.tasks if task.error is None and task.changed and self.module._diff]
        diffs.extend(self.batch_diff() if self.module._diff else [])
        if diffs:
            result['diff'] = diffs
        failed = [task for task in self.tasks if task.error]
        if failed:
            raise ModuleError('%d of %d containers failed: %s The others are reported in results.'
                              % (len(failed), len(self.tasks), ' '.join('[%s] %s' % (task.name, task.error.msg)
                                                                        for task in failed)), **result)
        return result

    def group_report(self):
        """The group entry of the result: its project, members in order, what the subclass adds."""
        return dict(project=self.project, members=[task.container_name for task in self.tasks])

    def batch_report(self):
        """What the batch as a whole returns besides its tasks' reports (docker_checkpoint: what retention removed)."""
        return {}

    def batch_diff(self):
        """Diff entries of the batch as a whole, beside its tasks'."""
        return []

    @staticmethod
    def failed_entry(task):
        """A failed task's entry in results: its error's message and details."""
        return dict(dict(task.error.fail_kwargs(), retries=task.retries()), container=task.name, failed=True,
                    changed=task.changed)


class Task:
    """One container of a batch: plan() decides (sets changed), act() does, report() says."""

    what = 'Work on container'
    operation = 'an operation'
    operation_past = 'worked on'

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
