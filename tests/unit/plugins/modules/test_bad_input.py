"""Bad input, widened (issue 13): every option of every module's argument_spec given a wrong type, an empty string,
a 300-character value, a name with "/", "..", NUL or a newline, a path that is a symbolic link to elsewhere or to
nothing; and containers the engine has but that are paused, restarting, dead or being removed.

Each is refused with a msg that names the option (or the container), says what is wrong and what to do, and is no
traceback; nothing is changed. Where ansible-core's own argument validation answers (wrong types, choices), its
message is the clean one it gives every module. The options are read from each module's argument_spec, so an option
added later is in the table without anyone listing it here.
"""

import json
import os
import re
from unittest import mock

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _common, _engine, _export, _import, _lifecycle
from ansible_collections.cryo.docker.plugins.modules import (
    checkpoint_preflight,
    criu_install,
    docker_checkpoint,
    docker_checkpoint_export,
    docker_checkpoint_import,
    docker_checkpoint_info,
    docker_network_holder,
    docker_restore,
)

from fake_archive_engine import Bed
from fake_engine import DOCKER_HOST, FIXTURES, read, run_module, warnings_of
from test_checkpoint_preflight import ready_host
from test_criu_install_module import CHECK_GOOD, debian_host
from test_docker_network_holder import IMAGE, HolderEngine

MODULES = {module.__name__.rsplit('.', 1)[-1]: module for module in (
    docker_checkpoint, docker_checkpoint_info, docker_restore, docker_checkpoint_export, docker_checkpoint_import,
    checkpoint_preflight, criu_install, docker_network_holder)}


def argument_spec(module):
    """The argument_spec module.main() runs with (its run() intercepted)."""
    spec = {}
    with mock.patch.object(module, 'run', lambda manager, argument_spec, **rules: spec.update(argument_spec)):
        module.main()
    return spec


SPECS = {name: argument_spec(module) for name, module in MODULES.items()}
CONNECTION = frozenset(_engine.docker_argument_spec())
# Files a module only reads: each may be a symbolic link to one (the SDK reads the TLS files; an allowed signers
# file or a key is often a link into where it is managed).
TLS_FILES = ('ca_path', 'client_cert', 'client_key')
READ_FILES = TLS_FILES + ('signing_key', 'allowed_signers', 'signature_file')
# Text whose every value is a valid one to the module (the engine or the program decides): checked only for what
# no text can hold (empty, NUL, newline) and for its type.
FREE_TEXT = frozenset(('command', 'image', 'include_labels', 'exclude_labels'))

# Values in the table that are not bad after all, and why: each is asserted to work.
ACCEPTED = {
    ('docker_checkpoint_import', 'container', 'long'): 'the engine takes a container name of any length',
    ('docker_network_holder', 'name', 'long'): 'the engine takes a container name of any length',
    ('docker_network_holder', 'command', 'element empty'): "a program's argument may be empty",
    ('docker_network_holder', 'command', 'element newline'): "a program's argument may hold a newline",
    ('docker_network_holder', 'command', 'element dict'): "ansible-core makes it text, a program's argument",
    ('checkpoint_preflight', 'include_labels', 'element dict'): 'ansible-core makes it text, which a label may be',
    ('checkpoint_preflight', 'exclude_labels', 'element dict'): 'ansible-core makes it text, which a label may be',
}

LONG = 'a' * 300
# A problem of the value's own, and what part of the msg says it (None: only the generic rules below).
SAID = dict(
    empty='is an empty string: give a value, or leave the option out.',
    nul='holds a NUL character', newline='holds a newline character',
    relative='must be an absolute path', long_path='holds a name of 300 bytes',
)
# What a path option says of a symbolic link to nothing, to a file or to a directory (the archive's path: by module).
SAID_OF_LINKS = dict(
    directory=dict(dangling='is not a directory: it is a symbolic link to', to_file='which is a file'),
    file=dict(dangling='is not a file: it is a symbolic link to', to_dir='which is a directory'),
    docker_checkpoint_export=dict(dangling='never writes through one', to_file='never writes through one',
                                  to_dir='is a directory: give the path of the archive file'),
    docker_checkpoint_import=dict(dangling='does not exist', to_file='is truncated or damaged',
                                  to_dir='does not exist (or is not a regular file)'),
    checkpoint_preflight=dict(dangling='is not an executable file', to_file='is not an executable file',
                              to_dir='is not an executable file'),
)


# -- the table ------------------------------------------------------------------------------------

def text_values(option, spec):
    """(kind, value) of bad text for a str option (or one element of a list)."""
    values = [('dict', {'a': 1}), ('empty', ''), ('nul', 'a\x00b'), ('newline', 'a\nb')]
    if spec.get('choices') or option not in FREE_TEXT:
        values += [('long', LONG), ('slash', 'a/b'), ('dotdot', '..')]
    return values


def path_values(option):
    values = [('dict', {'a': 1}), ('empty', ''), ('nul', '/tmp/a\x00b'), ('newline', '/tmp/a\nb'),
              ('relative', '../x'), ('long_path', '/tmp/' + LONG), ('dangling', 'LINK:nothing')]
    if option in _common.DIRECTORY_OPTIONS:
        values.append(('to_file', 'LINK:file'))  # one to a directory is followed: test_a_symlinked_checkpoint_dir_*
    else:
        values.append(('to_dir', 'LINK:dir'))    # a file option, pointed at a directory
        if option not in READ_FILES:             # a file that is only read may be a symlink to one
            values.append(('to_file', 'LINK:file'))
    return values


def bad_values(option, spec):
    kind = spec.get('type', 'str')
    if kind == 'bool':
        return [('list', ['yes']), ('dict', {'a': 1}), ('empty', ''), ('word', 'maybe')]
    if kind == 'int':
        values = [('dict', {'a': 1}), ('empty', ''), ('word', 'many')]
        return values + ([('zero', 0), ('negative', -1)] if option in _common.POSITIVE_OPTIONS else [])
    if kind == 'dict':
        return [('list', ['a']), ('word', 'abc')]
    if kind == 'path':
        return path_values(option)
    if kind == 'list':
        if spec.get('elements') == 'dict':
            return [('dict', {'a': 1}), ('element text', ['abc']), ('element without name', [{'aliases': ['x']}])]
        values = [('dict', {'a': 1}), ('element dict', [{'a': 1}])]
        return values + [('element ' + name, [value]) for name, value in text_values(option, spec)
                         if name != 'dict']
    return text_values(option, spec)


# Bad values the types above do not reach: an option's range, the sub-options of a list of dicts.
MORE = [
    ('docker_checkpoint_export', 'compression_level', 'below its range', 0),
    ('docker_checkpoint_export', 'compression_level', 'above its range', 10),
    ('docker_network_holder', 'networks', 'name empty', [dict(name='')]),
    ('docker_network_holder', 'networks', 'name nul', [dict(name='app\x00net')]),
    ('docker_network_holder', 'networks', 'name newline', [dict(name='app\nnet')]),
    ('docker_network_holder', 'networks', 'name slash', [dict(name='app/net')]),
    ('docker_network_holder', 'networks', 'name dict', [dict(name={'a': 1})]),
    ('docker_network_holder', 'networks', 'ipv4_address word', [dict(name='appnet', ipv4_address='many')]),
    ('docker_network_holder', 'networks', 'ipv4_address empty', [dict(name='appnet', ipv4_address='')]),
    ('docker_network_holder', 'networks', 'aliases element empty', [dict(name='appnet', aliases=[''])]),
    ('docker_network_holder', 'networks', 'aliases element newline', [dict(name='appnet', aliases=['a\nb'])]),
    ('docker_network_holder', 'labels', 'value nul', {'role': 'a\x00b'}),
    ('docker_network_holder', 'labels', 'key empty', {'': 'x'}),
]


def cases():
    out = [pytest.param(*case, id='%s-%s-%s' % case[:3]) for case in MORE]
    for name, spec in SPECS.items():
        for option, option_spec in spec.items():
            for kind, value in bad_values(option, option_spec):
                out.append(pytest.param(name, option, kind, value, id='%s-%s-%s' % (name, option, kind)))
    return out


# -- the modules, each against its fakes ---------------------------------------------------------

class Subject:
    """One module with the fakes it runs against, and arguments with which it succeeds (baseline)."""

    def __init__(self, name, request, tmp_path, monkeypatch, capsys):
        self.name, self.tmp_path, self.monkeypatch, self.capsys = name, tmp_path, monkeypatch, capsys
        self.module = MODULES[name]
        self.container = 'web' if 'export' in name or 'import' in name else 'cr'
        self.baseline = dict(docker_host=DOCKER_HOST)
        getattr(self, 'setup_' + name)(request)

    def setup_docker_checkpoint(self, request):
        self.engine = request.getfixturevalue('engine')
        self.engine.add('cr')
        self.baseline.update(container='cr', checkpoint='cp1')

    def setup_docker_checkpoint_info(self, request):
        self.engine = request.getfixturevalue('engine')
        self.engine.take(self.engine.add('cr'), 'cp1', leave_running=True)
        self.baseline.update(container='cr')

    def setup_docker_restore(self, request):
        self.engine = request.getfixturevalue('engine')
        self.engine.take(self.engine.add('cr'), 'cp1')
        self.baseline.update(container='cr', checkpoint='cp1')

    def setup_checkpoint_preflight(self, request):
        self.engine = request.getfixturevalue('engine')
        self.engine.add('cr')
        ready_host(self.tmp_path, self.monkeypatch, self.engine)
        self.baseline.update(containers=['cr'])

    def setup_docker_checkpoint_export(self, request):
        self.bed = Bed(self.tmp_path, self.monkeypatch)
        self.bed.web()
        self.engine = self.bed.source
        self.baseline.update(container='web', checkpoint='move', path=self.bed.path('web.tar'), compression='none')

    def setup_docker_checkpoint_import(self, request):
        self.bed = Bed(self.tmp_path, self.monkeypatch)
        self.bed.web()
        exported = self.bed.export(self.capsys)
        assert exported.get('changed') and not exported.get('failed'), exported
        self.bed.current = self.engine = self.bed.target
        self.baseline.update(path=exported['archive']['path'])

    def setup_criu_install(self, request):
        make_criu = request.getfixturevalue('make_criu')
        host = debian_host(self.tmp_path, self.monkeypatch, make_criu)
        good = make_criu(host.local)  # a CRIU that works on this kernel, first on dockerd's PATH: nothing to do
        host.answers[(good, '--version')] = (0, 'Version: 4.2.1\n', '')
        host.answers[(good, 'check')] = CHECK_GOOD
        self.host = host
        self.baseline = {}

    def setup_docker_network_holder(self, request):
        self.engine = HolderEngine(self.tmp_path)
        self.monkeypatch.setattr(docker_network_holder, 'connect', lambda params: self.engine)
        self.baseline.update(name='web-net', image=IMAGE)

    def real_engine(self):
        """The modules connect for real (the docker SDK and Engine._connect), to a socket that is not there."""
        for module in (_lifecycle, _export, _import, docker_checkpoint_info, docker_network_holder):
            self.monkeypatch.setattr(module, 'connect', _engine.connect)
        self.monkeypatch.setattr(checkpoint_preflight, 'Engine', _engine.Engine)
        self.baseline['docker_host'] = 'unix://' + str(self.tmp_path / 'no-engine.sock')

    def changes(self):
        """What the run changed: on the engine, and the files it writes."""
        if self.name == 'criu_install':
            return [call for call in self.host.calls if 'install' in call or call[0].endswith('make')]
        if self.name == 'docker_checkpoint_import':
            return self.engine.archive_changes()
        if self.name == 'docker_network_holder':  # a create the engine refused made nothing
            return list(self.engine.store) + [c for c in self.engine.changes() if c[0] != 'create_container']
        out = self.engine.changes()
        if self.name == 'docker_checkpoint_export' and os.path.exists(self.bed.path('web.tar')):
            out.append('wrote web.tar')
        return out

    def run(self, **args):
        return run_module(self.capsys, self.module, dict(self.baseline, **args))


@pytest.fixture
def subject(request, tmp_path, monkeypatch, capsys):
    """subject(name) -> the Subject for module name."""
    return lambda name: Subject(name, request, tmp_path, monkeypatch, capsys)


def elsewhere(tmp_path, target):
    """A symbolic link in tmp_path to a directory or a file elsewhere (with something in it), or to nothing."""
    link = str(tmp_path / ('link-to-' + target))
    if target == 'dir':
        os.makedirs(str(tmp_path / 'elsewhere'))
        os.symlink(str(tmp_path / 'elsewhere'), link)
    elif target == 'file':
        (tmp_path / 'elsewhere.txt').write_text('not yours\n')
        os.symlink(str(tmp_path / 'elsewhere.txt'), link)
    else:
        os.symlink(str(tmp_path / 'nothing' / 'here'), link)
    return link


# -- what a good refusal looks like ---------------------------------------------------------------

# ansible-core's argument validation, as it words it for every module.
ANSIBLE_CORE = (
    r"^argument '(?P<option>\w+)' is of type \w+ and we were unable to convert to \w+: ",
    r'^value of (?P<option>\w+) must be one of: ',
    r'^value of (?P<option>\w+) must be one or more of: ',
    r'^parameters are mutually exclusive: ',
    r'^missing required arguments: \w+ found in (?P<option>\w+)$',
    # A list element that should be a dict: ansible-core does not name the option here (ansible-core 2.19).
    r'^dictionary requested, could not parse JSON or key=value$',
)
# A msg says what to do: one of these words (or an obligation).
REMEDY = re.compile(r'\b(give|choose|use|set|leave|remove|check|start|stop|unpause|fix|pull|load|copy|install|'
                    r'create|run|must)\b', re.IGNORECASE)


def no_traceback(result):
    text = json.dumps(result)
    assert 'Traceback' not in text and 'MODULE FAILURE' not in text, result
    assert 'exception' not in result, result


def is_ansible_core(msg, option):
    for pattern in ANSIBLE_CORE:
        found = re.match(pattern, msg)
        if found:
            assert found.groupdict().get('option') in (None, option), msg
            return True
    return False


def tells(text, option, value):
    """text names the option (or the value it was given) and says what to do."""
    shown = str(value if not isinstance(value, list) else value[0])
    words = (option, option.replace('_', ' '), option.rstrip('s'), shown[:40], repr(shown)[:40])
    assert any(word and word.lower() in text.lower() for word in words), (option, text)
    assert REMEDY.search(text), text


def refused(subject, result, option, kind, value):
    """The module failed, cleanly, with a msg that says what, why and what to do; nothing changed."""
    no_traceback(result)
    assert subject.changes() == [], subject.changes()
    if subject.name == 'checkpoint_preflight' and not result.get('failed'):
        # An information module: what it cannot use it reports as a failed check (not ready), not as its failure.
        assert result['ready'] is False, result
        failed = ' '.join('%s %s' % (c['detail'], c.get('remedy') or '') for c in result['checks']
                          if c['status'] == 'fail')
        tells(failed, option, value)
        return failed
    assert result.get('failed') is True, result
    msg = result['msg']
    if not is_ansible_core(msg, option):
        tells(msg, option, value)
        said = SAID.get(kind.split()[-1])
        if kind.startswith(('dangling', 'to_')):
            family = ('directory' if option in _common.DIRECTORY_OPTIONS else
                      'file' if option in _common.FILE_OPTIONS else subject.name)
            said = SAID_OF_LINKS[family][kind]
        assert said is None or said in msg, msg
    return msg


# -- the tests ------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', sorted(MODULES))
def test_the_baseline_succeeds(subject, name):
    """Each module succeeds with the table's baseline: a refusal below is the bad value's doing."""
    result = subject(name).run()
    assert not result.get('failed'), result
    no_traceback(result)


@pytest.mark.parametrize('name, option, kind, value', cases())
def test_every_option_refuses_bad_input(subject, tmp_path, name, option, kind, value):
    module = subject(name)
    if option in CONNECTION:
        module.real_engine()
    if option in TLS_FILES:
        # The TLS files are read only with tls; the others given as files that exist.
        for other in TLS_FILES:
            (tmp_path / (other + '.pem')).write_text('pem\n')
            module.baseline[other] = str(tmp_path / (other + '.pem'))
        module.baseline.update(tls=True, validate_certs=True)
    if option == 'containers':
        module.baseline.pop('container', None)
    if option == 'compression_level':
        module.baseline['compression'] = 'gzip'
    if isinstance(value, str) and value.startswith('LINK:'):
        value = elsewhere(tmp_path, value[len('LINK:'):])
    result = module.run(**{option: value})
    if (name, option, kind) in ACCEPTED:
        assert not result.get('failed'), result
        no_traceback(result)
        return
    refused(module, result, option, kind, value)


def test_the_table_covers_every_option_of_every_module():
    covered = {(name, option) for name, option, _kind, _value in (case.values for case in cases())}
    assert covered == {(name, option) for name, spec in SPECS.items() for option in spec}
    assert len(cases()) > 500


# -- containers that cannot be worked on now --------------------------------------------------------

# inspect's State of a paused, a restarting, a dead and a removing container (container-states.json says how each
# was recorded).
STATES = {kind: state for kind, state in json.loads(read(os.path.join(FIXTURES, 'container-states.json'))).items()
          if not kind.startswith('_')}
SAID_OF_STATES = dict(paused=('paused', 'docker unpause'), restarting=('restarting', 'docker logs'),
                      dead=('dead', 'docker rm -f'), removing=('removing', 'docker rm -f'))


@pytest.mark.parametrize('kind', sorted(STATES))
@pytest.mark.parametrize('name', ['docker_checkpoint', 'docker_restore', 'docker_checkpoint_export',
                                  'checkpoint_preflight'])
def test_a_container_that_cannot_be_worked_on_now(subject, name, kind):
    module = subject(name)
    container = module.engine._find(module.container)
    container.state = dict(STATES[kind])
    said, remedy = SAID_OF_STATES[kind]
    result = module.run()
    no_traceback(result)
    assert module.changes() == [], module.changes()
    remedy += ' ' + module.container
    if name == 'checkpoint_preflight':
        check = next(c for c in result['checks'] if c['name'] == 'container cr: running')
        assert check['status'] == 'fail' and said in check['detail'] and remedy in check['remedy'], check
        assert result['ready'] is False and result['containers'][0]['eligible'] is False
        return
    assert result.get('failed') is True, result
    assert result['msg'].startswith('Container %s is %s (' % (module.container, said)), result['msg']
    assert 'nothing was changed' in result['msg'] and remedy in result['msg'], result['msg']
    assert result['container_status'] == kind


@pytest.mark.parametrize('kind', sorted(STATES))
def test_one_container_of_a_batch_that_cannot_be_checkpointed(subject, kind):
    module = subject('docker_checkpoint')
    module.engine._find('cr').state = dict(STATES[kind])
    other = module.engine.add('other')
    del module.baseline['container']
    result = module.run(containers=['cr', 'other'])
    no_traceback(result)
    assert result['failed'] is True and result['msg'].startswith('1 of 2 containers failed: [cr] Container cr is %s'
                                                                 % SAID_OF_STATES[kind][0]), result['msg']
    assert [entry['container'] for entry in result['results'] if entry.get('failed')] == ['cr']
    assert [c[0] for c in module.engine.changes() if other.id in c] == ['create_checkpoint']


# -- symbolic links below a directory option ------------------------------------------------------

@pytest.mark.parametrize('target', ['dir', 'file', 'nothing'])
@pytest.mark.parametrize('name, args', [
    ('docker_checkpoint', {}), ('docker_checkpoint', dict(force=True)), ('docker_checkpoint', dict(leave_running=True)),
    ('docker_checkpoint_export', {}),
], ids=['checkpoint', 'force', 'leave_running', 'export'])
def test_a_link_in_the_place_of_the_checkpoint_is_never_written_through(subject, tmp_path, name, args, target):
    """checkpoint_dir/NAME is a symbolic link (or a file): refused before the container is touched."""
    module = subject(name)
    store = tmp_path / 'store'
    store.mkdir()
    checkpoint = module.baseline['checkpoint']
    os.rename(elsewhere(tmp_path, target), str(store / checkpoint))
    result = module.run(checkpoint_dir=str(store), **args)
    no_traceback(result)
    assert result['failed'] is True and result['msg'].startswith(
        'Checkpoint %s of container %s was not taken, and the container is untouched: %s is a symbolic link to '
        % (checkpoint, module.container, store / checkpoint)), result['msg']
    assert 'never writes through a link' in result['msg'] and 'Remove it' in result['msg']
    assert module.changes() == [] and module.engine._find(module.container).running
    assert os.path.islink(str(store / checkpoint)) and os.listdir(str(store)) == [checkpoint]
    if target == 'dir':
        assert os.listdir(str(tmp_path / 'elsewhere')) == []
    if target == 'file':
        assert (tmp_path / 'elsewhere.txt').read_text() == 'not yours\n'


def test_a_symlinked_checkpoint_dir_is_followed(subject, tmp_path):
    """A checkpoint_dir that is a symbolic link to a directory is that directory (as for Ansible's own modules: a
    directory moved to a larger disk and linked back): the checkpoint is written there, and restored from there."""
    module = subject('docker_checkpoint')
    link = elsewhere(tmp_path, 'dir')
    taken = module.run(checkpoint_dir=link)
    assert taken['changed'] is True and not taken.get('failed'), taken
    assert os.path.isfile(str(tmp_path / 'elsewhere' / 'cp1' / 'inventory.img'))
    restored = run_module(module.capsys, docker_restore, dict(module.baseline, checkpoint_dir=link))
    assert restored['restored'] is True and restored['verified'] is True, restored


@pytest.mark.parametrize('kind', sorted(STATES))
def test_checkpoint_info_lists_the_others_beside_a_container_that_cannot_be_worked_on(subject, kind):
    """A dead container (or one being removed) has lost its checkpoints' directory: a warning says so and the other
    containers are listed; so are they when one was removed between the engine's list and its inspect."""
    module = subject('docker_checkpoint_info')
    module.engine._find('cr').state = dict(STATES[kind])
    other = module.engine.add('other')
    module.engine.take(other, 'keep', leave_running=True)
    module.engine.ghosts = ['0' * 64]
    del module.baseline['container']
    result = module.run()
    no_traceback(result)
    assert not result.get('failed'), result
    listed = sorted((entry['container'], entry['name']) for entry in result['checkpoints'])
    warnings = warnings_of(result)
    if kind in ('dead', 'removing'):
        assert listed == [('other', 'keep')] and len(warnings) == 1, (listed, warnings)
        assert warnings[0].startswith('The checkpoints of container cr cannot be listed: it is %s' % kind)
        assert 'docker rm -f cr' in warnings[0]
    else:  # paused and restarting containers keep their checkpoints, and they are listed
        assert listed == [('cr', 'cp1'), ('other', 'keep')] and not warnings, (listed, warnings)
