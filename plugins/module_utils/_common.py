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


def policy_still_held(recorded, current):
    """Whether a container runs with the hold ("no") a checkpoint put on its recorded restart policy: what
    a restore cut before it put the policy back leaves (the container resumed, the policy not)."""
    return bool(recorded) and (recorded.get('Name') or 'no') in HELD_RESTART_POLICIES and (
        (current or {}).get('Name') or 'no') == 'no'


# The label that marks a network holder (cryo.docker.docker_network_holder): a container that only owns a
# network namespace for others to join (network_mode container:<holder>). It is never checkpointed; it is
# started again (cold) before the containers in it are restored.
HOLDER_LABEL = 'cryo.docker.network-holder'

# The options of the modules that work on one container or several (container, containers, parallel).
CONTAINERS_SPEC = dict(
    container=dict(type='str'),
    containers=dict(type='list', elements='str'),
    project=dict(type='str'),
    group=dict(type='bool', default=False),
    parallel=dict(type='int'),
)
CONTAINERS_RULES = dict(mutually_exclusive=[('container', 'containers', 'project')],
                        required_one_of=[('container', 'containers', 'project')])

# What the engine accepts as a checkpoint name (moby's restrictedNamePattern), and how long one may be here: the
# name is a directory (and, with .cryo-tmp- or .cryo-new around it, a temporary one) of at most 255 bytes.
CHECKPOINT_NAME_RE = re.compile(r'^[a-zA-Z0-9][a-zA-Z0-9_.-]+$')
CHECKPOINT_NAME_MAX = 128

# What the engine accepts as a container's name (the same pattern, with the "/" inspect puts first), or an id
# or a prefix of one.
CONTAINER_NAME_RE = re.compile(r'^/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$')

# The input rules of check_inputs, by option name: one name for one thing across the modules.
CONTAINER_OPTIONS = ('container', 'containers', 'members', 'name')  # name: docker_network_holder's container
DIRECTORY_OPTIONS = ('checkpoint_dir', 'staging_dir', 'prefix')
# Files a module reads: the TLS PEM files, a signing key, an allowed signers file, a signature.
FILE_OPTIONS = ('ca_path', 'client_cert', 'client_key', 'signing_key', 'allowed_signers', 'signature_file')
POSITIVE_OPTIONS = ('timeout', 'parallel', 'keep_last', 'max_size', 'host_max_size')
FREE_TEXT_OPTIONS = ('command',)  # a program's arguments: any text but NUL

# What Linux allows in a path (NAME_MAX, PATH_MAX): longer ones fail at the first open or mkdir (ENAMETOOLONG).
NAME_MAX = 255
PATH_MAX = 4095


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
    """A module's whole run: parse its arguments (argument_spec, and rules such as mutually_exclusive), refuse
    values no module can use (check_inputs), then plan, act and report with manager_class(module); exit with
    the report, or fail with the ModuleError a step raised. Every module supports check mode."""
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **rules)
    try:
        check_inputs(module.params, argument_spec)
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


# Names that become paths on the host or objects of the engine, whether an operator typed them or an archive
# carries them (untrusted input, checked by the same rule): kind -> (pattern, longest, what the pattern allows).
NAME_RULES = {
    'checkpoint': (CHECKPOINT_NAME_RE, CHECKPOINT_NAME_MAX,
                   'a letter or digit, followed by at least one letter, digit, "_", "." or "-"'),
    'container': (re.compile(r'[a-zA-Z0-9][a-zA-Z0-9_.-]*'), NAME_MAX,
                  'a letter or digit, followed by letters, digits, "_", "." or "-"'),
    'volume': (re.compile(r'[a-zA-Z0-9][a-zA-Z0-9_.-]+'), NAME_MAX,
               'a letter or digit, followed by at least one letter, digit, "_", "." or "-"'),
    'network': (re.compile(r'[a-zA-Z0-9][a-zA-Z0-9_.-]*'), NAME_MAX,
                'a letter or digit, followed by letters, digits, "_", "." or "-"'),
    'volume member': (re.compile(r'volumes/[0-9]{1,6}\.tar'), 64, 'volumes/<number>.tar'),
}


def check_name(kind, value, archive=None):
    """Raise ModuleError unless value is a valid name of its kind (NAME_RULES): the whole string matches (a
    trailing newline included), no longer than the rule allows. archive: the path of the archive the name comes
    from, for the message (an export never writes such a name: the file was changed)."""
    pattern, longest, allowed = NAME_RULES[kind]
    text = value if isinstance(value, str) else None
    if text is not None and pattern.fullmatch(text) and len(text) <= longest:
        return text
    shown = repr(value) if text is None or len(text) <= 60 else '%r... (%d characters)' % (text[:40], len(text))
    if kind == 'checkpoint':
        allowed += ', as the engine accepts, and a directory is named after it'
    why = ('it is not a string' if text is None else
           'it is %d characters long, and at most %d are allowed' % (len(text), longest)
           if pattern.fullmatch(text) else 'it must be %s (no "/", spaces or control characters)' % allowed)
    if archive is None:
        raise ModuleError('%s name %s is not valid: %s. Choose another name.' % (kind.capitalize(), shown, why),
                          reason='bad_name', name_kind=kind)
    raise ModuleError('The archive %s was refused: the %s name %s it carries is not valid: %s. An archive written by '
                      'cryo.docker.docker_checkpoint_export never holds such a name, so the file was changed after it '
                      'was written; do not use it. Nothing was created.' % (archive, kind, shown, why),
                      reason='bad_name', name_kind=kind)


def path_under(root, *names):
    """os.path.join(root, *names), once each name is one path component and the result, its links resolved,
    is below root's own resolved path; ModuleError otherwise (a host path built from names checked elsewhere
    is checked again where it is made)."""
    for name in names:
        if not isinstance(name, str) or not name or name in ('.', '..') or '/' in name or '\x00' in name:
            raise ModuleError('%r cannot name a file or directory in %s: refused before anything was written.'
                              % (name, root), reason='bad_name')
    path = os.path.join(root, *names)
    base = os.path.realpath(root)
    if not os.path.realpath(path).startswith(base.rstrip('/') + '/'):
        raise ModuleError('%s resolves to %s, outside %s (a symbolic link on the way): refused before anything was '
                          'written there.' % (path, os.path.realpath(path), base), reason='outside')
    return path


def check_checkpoint_name(checkpoint):
    """Raise ModuleError unless the engine would accept checkpoint as a name (and it fits in a directory name)."""
    check_name('checkpoint', checkpoint)


def check_container_name(container, option='container'):
    """Raise ModuleError unless container can name a container on the engine (a name, or an id or its prefix)."""
    if not CONTAINER_NAME_RE.fullmatch(container):
        raise ModuleError('%s %r is not a container name: a name starts with a letter or digit, followed by letters, '
                          'digits, "_", "." or "-" (no "/", spaces or control characters), and an id is hexadecimal. '
                          'Give the name or id that docker ps shows.' % (option, container))


def _texts(option, value, labels=True):
    """(label, text, top) for each string of an option's value: itself, the elements of a list, the keys and values
    of a dict (labels) and the sub-options of a list of dicts (networks), recursively; top when the string is the
    option's own value or an element of it (the name and path rules are for those). An empty value of a dict
    option is left out: a label may be empty (labels=False: the dict holds sub-options, which may not)."""
    if isinstance(value, str):
        yield option, value, True
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                yield 'An element of %s' % option, item, True
            elif isinstance(item, dict):
                for label, text, _top in _texts('%s[%d]' % (option, index), item, labels=False):
                    yield label, text, False
    elif isinstance(value, dict):
        for key, item in value.items():
            if labels and isinstance(key, str):
                yield 'A key of %s' % option, key, False
            if isinstance(item, (str, list)) and not (labels and item == ''):
                for label, text, _top in _texts('%s.%s' % (option, key), item):
                    yield label, text, False


def check_path_length(path, option):
    """Raise ModuleError when path, or a name in it, is longer than Linux allows."""
    size = len(path.encode('utf-8', 'surrogateescape'))
    if size > PATH_MAX:
        raise ModuleError('%s %s... is %d bytes long: a path can have at most %d. Give a shorter path.'
                          % (option, path[:60], size, PATH_MAX))
    for name in path.split('/'):
        size = len(name.encode('utf-8', 'surrogateescape'))
        if size > NAME_MAX:
            raise ModuleError('%s %s... holds a name of %d bytes (%s...): a file or directory name can have at most '
                              '%d. Give a path with shorter names.' % (option, path[:60], size, name[:40], NAME_MAX))


def what_is(path):
    """What is at path, in words: a file, a directory, nothing, or a symbolic link to one of them."""
    kind = 'a directory' if os.path.isdir(path) else 'a file' if os.path.exists(path) else None
    if os.path.islink(path):
        return 'a symbolic link to %s, which is %s' % (os.path.realpath(path), kind or 'not there')
    return kind or 'not there'


def check_path(path, option):
    """Raise ModuleError unless path is an absolute path that Linux can open; for a directory option, unless it is a
    directory or not there yet (a symlink to a file, or to nothing, is neither); for a file option, unless it is a
    file (or a symlink to one)."""
    if not os.path.isabs(path):
        raise ModuleError('%s must be an absolute path, got %r. Give the full path (starting with "/").' % (option, path))
    check_path_length(path, option)
    if option in DIRECTORY_OPTIONS and os.path.lexists(path) and not os.path.isdir(path):
        raise ModuleError('%s %s is not a directory: it is %s. Give the path of a directory (or of one to be '
                          'made), or create the directory the link points to.' % (option, path, what_is(path)))
    if option in FILE_OPTIONS and not os.path.isfile(path):
        raise ModuleError('%s %s is not a file: it is %s. Give the path of a file.'
                          % (option, path, what_is(path)))


def check_inputs(params, argument_spec):
    """Raise ModuleError for a value no module can use: an empty string, a NUL or a newline in a name or path (a
    program's arguments may hold newlines; the keys and values of a dict and the sub-options of a list of dicts
    are looked at too), a container or checkpoint name the engine would refuse, a relative path or one longer than
    Linux allows, a directory option that is not a directory, a file option that is not a file, a count or timeout
    below 1. Ansible has checked the types; the options that mean one thing in every module (container,
    checkpoint, checkpoint_dir, ...) are checked here, once."""
    for option, value in params.items():
        if value is None or option not in argument_spec:
            continue
        for label, text, top in _texts(option, value):
            if not text and option not in FREE_TEXT_OPTIONS:
                raise ModuleError('%s is an empty string: give a value, or leave the option out.' % label)
            if '\x00' in text or ('\n' in text and option not in FREE_TEXT_OPTIONS):
                raise ModuleError('%s, %r, holds a %s character, which %s cannot hold. Give the value without it.'
                                  % (label, text, 'NUL' if '\x00' in text else 'newline', option))
            if not top:
                continue
            if option in CONTAINER_OPTIONS:
                check_container_name(text, option)
            elif option == 'checkpoint':
                check_checkpoint_name(text)
            elif argument_spec[option].get('type') == 'path':
                check_path(text, option)
        if option in POSITIVE_OPTIONS and isinstance(value, int) and value < 1:
            raise ModuleError('%s is %d: it must be 1 or more (leave it out for the default).' % (option, value))


def check_checkpoint_dir(checkpoint_dir):
    """Raise ModuleError unless checkpoint_dir is unset or an absolute path to a directory (or to none yet)."""
    if checkpoint_dir:
        check_path(checkpoint_dir, 'checkpoint_dir')


def container_state_reason(name, state):
    """(why, what to do) when container name is paused, restarting, being removed or dead (from its inspect
    State): no module can checkpoint or restore it then. None when it is none of these."""
    status = state.get('Status')
    if state.get('Paused') or status == 'paused':
        return ('its processes are frozen by docker pause', 'Unpause it (docker unpause %s), then run this again.'
                % name)
    if state.get('Restarting') or status == 'restarting':
        return ('its command keeps exiting (last exit code %s) and its restart policy starts it again, so there is no '
                'process to work on' % state.get('ExitCode'),
                'Find out why it exits (docker logs %s) and fix it, or stop it (docker stop %s).' % (name, name))
    if state.get('Dead') or status in ('dead', 'removing'):
        return ('the engine is removing it' if status == 'removing' else 'the engine could not stop or remove it',
                'Remove it (docker rm -f %s; the engine\'s log says what kept it) and create it again if it is still '
                'needed.' % name)
    return None


def container_state_problem(name, state, doing):
    """Why container name, which the engine lists as running (or stopping), cannot be doing ('checkpointed',
    'restored') now - paused, restarting, being removed or dead - and what to do; None when none of these."""
    reason = container_state_reason(name, state)
    if reason is None:
        return None
    return 'Container %s is %s (%s), so it cannot be %s; nothing was changed. %s' % (
        name, state.get('Status'), reason[0], doing, reason[1])


def check_container_state(name, state, doing):
    """Raise ModuleError when container name cannot be doing now (container_state_problem). Nothing was done."""
    problem = container_state_problem(name, state, doing)
    if problem:
        raise ModuleError(problem, container_status=state.get('Status'))
