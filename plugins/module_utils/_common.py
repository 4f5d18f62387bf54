# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""What every module of the collection shares: its errors, its three steps, and the input rules
that more than one module applies."""

from __future__ import annotations

import os
import re

from ansible.module_utils.basic import AnsibleModule

# Commands run with a C locale, so that their output reads the same on every host.
C_LOCALE = dict(LANG='C', LC_ALL='C', LC_MESSAGES='C')

# Restart policies under which the engine cold-starts a container that stopped at a checkpoint:
# docker_checkpoint holds them (sets "no") and docker_restore puts them back.
HELD_RESTART_POLICIES = ('always', 'unless-stopped', 'on-failure')

# The label that marks a network holder (cryo.docker.docker_network_holder): a container that only owns a
# network namespace for others to join (network_mode container:<holder>). It is never checkpointed; it is
# started again (cold) before the containers in it are restored.
HOLDER_LABEL = 'cryo.docker.network-holder'

# The options of the modules that work on one container or several (container, containers, parallel).
CONTAINERS_SPEC = dict(
    container=dict(type='str'),
    containers=dict(type='list', elements='str'),
    parallel=dict(type='int'),
)
CONTAINERS_RULES = dict(mutually_exclusive=[('container', 'containers')],
                        required_one_of=[('container', 'containers')])

# What the engine accepts as a checkpoint name (moby's restrictedNamePattern).
CHECKPOINT_NAME_RE = re.compile(r'^[a-zA-Z0-9][a-zA-Z0-9_.-]+$')


class ModuleError(Exception):
    """A failure with a sentence for the operator (msg: what, why, what to do) and raw details,
    each returned as its own key of the failed result."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details

    def fail_kwargs(self):
        out = dict(self.details)
        out['msg'] = self.msg
        return out


class Manager:
    """One module run in three steps. plan() reads and decides (it sets `changed`), act() does what
    was decided (never in check mode, never when nothing changes), report() returns the result.

    Any step raises ModuleError to fail; run() is the only place a module exits."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.changed = False

    def plan(self):
        pass

    def act(self):
        pass

    def report(self):
        raise NotImplementedError


def run(manager_class, argument_spec, **rules):
    """A module's whole run: parse its arguments (argument_spec, and rules such as mutually_exclusive),
    then plan, act and report with manager_class(module); exit with the report, or fail with the
    ModuleError a step raised. Every module supports check mode."""
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **rules)
    try:
        manager = manager_class(module)
        manager.plan()
        if manager.changed and not module.check_mode:
            manager.act()
        result = manager.report()
    except ModuleError as exc:
        module.fail_json(**exc.fail_kwargs())
    module.exit_json(**result)


def invalid_name_msg(checkpoint):
    return ('Checkpoint name %r is not valid: the engine accepts only names that start with a letter or '
            'digit, followed by at least one letter, digit, "_", "." or "-". Choose another name.'
            % (checkpoint,))


def check_checkpoint_name(checkpoint):
    """Raise ModuleError unless the engine would accept checkpoint as a name."""
    if not CHECKPOINT_NAME_RE.match(checkpoint or ''):
        raise ModuleError(invalid_name_msg(checkpoint))


def check_checkpoint_dir(checkpoint_dir):
    """Raise ModuleError unless checkpoint_dir is unset or an absolute path."""
    if checkpoint_dir and not os.path.isabs(checkpoint_dir):
        raise ModuleError('checkpoint_dir must be an absolute path, got %r. Give the full path of the '
                          'directory that holds (or will hold) the checkpoint directories.' % checkpoint_dir)
