"""Bad input to the checkpoint modules: a clear msg and failed, never a traceback.

The "not experimental" case runs against an engine of its own (tests/testbed/fleet.py's Engine)
with {"experimental": false}, started for this module and removed at its end.
"""

import json
import os
import subprocess

import pytest

from fleet import Engine
from helpers import COUNTER, IMAGE, call_module, checkpoints, run_module, state, wait_counter

MODULES = ('docker_checkpoint', 'docker_checkpoint_info', 'docker_restore')

NOEXP = Engine('cryo-lc-noexp', config={'experimental': False})
NOEXP_SOCK = NOEXP.docker_host


def args_for(module, container, **extra):
    args = dict(container=container)
    if module != 'docker_checkpoint_info':
        args['checkpoint'] = 'cp1'
    args.update(extra)
    return args


def failed_cleanly(result, *words):
    text = json.dumps(result)
    assert 'Traceback' not in text, text
    assert 'MODULE FAILURE' not in result.get('msg', ''), text
    assert result.get('failed') is True, result
    msg = result.get('msg', '')
    for word in words:
        assert word.lower() in msg.lower(), 'msg lacks %r: %s' % (word, msg)
    return msg


@pytest.fixture
def running(engine, make_container):
    name = make_container()
    wait_counter(engine, name, 1)
    return name


@pytest.mark.parametrize('module', MODULES)
def test_unknown_container(module):
    failed_cleanly(call_module(module, args_for(module, 'cryo-lc-no-such-container')),
                   'cryo-lc-no-such-container', 'not exist')


def test_checkpoint_of_stopped_container(engine, make_container):
    never = make_container(start=False)
    failed_cleanly(call_module('docker_checkpoint', args_for('docker_checkpoint', never)), never, 'running container')
    assert checkpoints(engine, never) == []

    stopped = make_container()
    wait_counter(engine, stopped, 1)
    engine.kill(stopped)
    engine.wait(stopped, timeout=10)
    failed_cleanly(call_module('docker_checkpoint', args_for('docker_checkpoint', stopped)), stopped,
                   'running container')
    assert checkpoints(engine, stopped) == []


def test_restore_missing_checkpoint(engine, make_container):
    name = make_container(start=False)
    msg = failed_cleanly(call_module('docker_restore', {'container': name, 'checkpoint': 'nope'}), 'nope')
    assert 'not exist' in msg or 'no checkpoint' in msg.lower() or 'not found' in msg.lower(), msg
    assert not state(engine, name)['Running']


def test_invalid_checkpoint_name(engine, running):
    for module in ('docker_checkpoint', 'docker_restore'):
        for bad in ('-bad', 'a'):
            msg = failed_cleanly(call_module(module, {'container': running, 'checkpoint': bad}), bad)
            assert 'valid' in msg.lower() or 'invalid' in msg.lower(), msg
    assert state(engine, running)['Running']
    assert checkpoints(engine, running) == []


@pytest.mark.parametrize('module', MODULES)
def test_relative_checkpoint_dir(engine, running, module):
    failed_cleanly(call_module(module, args_for(module, running, checkpoint_dir='relative/dir')), 'absolute')
    assert state(engine, running)['Running']
    assert checkpoints(engine, running) == []
    assert not os.path.exists('relative/dir')


@pytest.mark.parametrize('module', MODULES)
def test_engine_unreachable(module):
    failed_cleanly(call_module(module, args_for(module, 'whatever', docker_host='unix:///nonexistent.sock')),
                   '/nonexistent.sock')


@pytest.fixture(scope='module')
def python_without_sdk(tmp_path_factory):
    python = '/usr/bin/python3'
    probe = subprocess.run([python, '-c', 'import docker'], capture_output=True, check=False)
    if probe.returncode == 0:
        venv = tmp_path_factory.mktemp('bare-venv')
        subprocess.run([python, '-m', 'venv', '--without-pip', str(venv)], check=True)
        python = str(venv / 'bin' / 'python')
        probe = subprocess.run([python, '-c', 'import docker'], capture_output=True, check=False)
    assert probe.returncode != 0, '%s has the docker SDK' % python
    return python


@pytest.mark.parametrize('module', MODULES)
def test_sdk_missing(python_without_sdk, module):
    # Through ansible-playbook: the interpreter without the SDK is an inventory variable.
    msg = failed_cleanly(run_module(module, args_for(module, 'whatever'),
                                    extra_vars={'ansible_python_interpreter': python_without_sdk}), 'docker')
    assert 'sdk' in msg.lower(), msg


@pytest.fixture(scope='module')
def noexp_engine():
    """A second engine, not in experimental mode, with one running counter container."""
    with NOEXP:
        NOEXP.up()
        client = NOEXP.client()
        assert not client.version().get('Experimental')
        NOEXP.load_image()
        client.create_container(IMAGE, ['/bin/sh', '-c', COUNTER], name='cryo-lc-noexp-counter',
                                host_config=client.create_host_config(network_mode='none'))
        client.start('cryo-lc-noexp-counter')
        yield 'cryo-lc-noexp-counter'


@pytest.mark.parametrize('module', MODULES)
def test_engine_not_experimental(noexp_engine, module):
    failed_cleanly(call_module(module, args_for(module, noexp_engine, docker_host=NOEXP_SOCK)),
                   'experimental', 'cryo.docker.engine')
