"""Bad input to the checkpoint modules: a clear msg and failed, never a traceback.

The "not experimental" case runs against a second dockerd this module starts with
{"experimental": false} and stops at the end.
"""

import json
import os
import shutil
import signal
import subprocess
import time

import docker
import pytest

from conftest import COUNTER, IMAGE, checkpoints, run_module, state, wait_counter

MODULES = ('docker_checkpoint', 'docker_checkpoint_info', 'docker_restore')

NOEXP = 'cryo-lc-noexp'
NOEXP_DIR = '/var/tmp/%s' % NOEXP
NOEXP_SOCK = 'unix:///run/%s.sock' % NOEXP
# Its own bridge: --bridge=none would make dockerd delete the host's docker0, which the
# main engine's containers need.
NOEXP_BRIDGE = 'cryolcnoexp0'
NOEXP_BRIDGE_ADDR = '10.213.77.1/24'


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
    failed_cleanly(run_module(module, args_for(module, 'cryo-lc-no-such-container')),
                   'cryo-lc-no-such-container', 'not exist')


def test_checkpoint_of_stopped_container(engine, make_container):
    never = make_container(start=False)
    failed_cleanly(run_module('docker_checkpoint', args_for('docker_checkpoint', never)), never, 'running container')
    assert checkpoints(engine, never) == []

    stopped = make_container()
    wait_counter(engine, stopped, 1)
    engine.kill(stopped)
    engine.wait(stopped, timeout=10)
    failed_cleanly(run_module('docker_checkpoint', args_for('docker_checkpoint', stopped)), stopped, 'running container')
    assert checkpoints(engine, stopped) == []


def test_restore_missing_checkpoint(engine, make_container):
    name = make_container(start=False)
    msg = failed_cleanly(run_module('docker_restore', {'container': name, 'checkpoint': 'nope'}), 'nope')
    assert 'not exist' in msg or 'no checkpoint' in msg.lower() or 'not found' in msg.lower(), msg
    assert not state(engine, name)['Running']


def test_invalid_checkpoint_name(engine, running):
    for module in ('docker_checkpoint', 'docker_restore'):
        for bad in ('-bad', 'a'):
            msg = failed_cleanly(run_module(module, {'container': running, 'checkpoint': bad}), bad)
            assert 'valid' in msg.lower() or 'invalid' in msg.lower(), msg
    assert state(engine, running)['Running']
    assert checkpoints(engine, running) == []


@pytest.mark.parametrize('module', MODULES)
def test_relative_checkpoint_dir(engine, running, module):
    failed_cleanly(run_module(module, args_for(module, running, checkpoint_dir='relative/dir')), 'absolute')
    assert state(engine, running)['Running']
    assert checkpoints(engine, running) == []
    assert not os.path.exists('relative/dir')


@pytest.mark.parametrize('module', MODULES)
def test_engine_unreachable(module):
    failed_cleanly(run_module(module, args_for(module, 'whatever', docker_host='unix:///nonexistent.sock')),
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
    msg = failed_cleanly(run_module(module, args_for(module, 'whatever'),
                                    extra_vars={'ansible_python_interpreter': python_without_sdk}), 'docker')
    assert 'sdk' in msg.lower(), msg


@pytest.fixture(scope='module')
def noexp_engine(engine):
    """A second dockerd, not in experimental mode, with one running counter container."""
    os.makedirs(NOEXP_DIR + '/data', exist_ok=True)
    config = NOEXP_DIR + '/daemon.json'
    with open(config, 'w', encoding='utf-8') as handle:
        json.dump({'experimental': False}, handle)
    subprocess.run(['ip', 'link', 'del', NOEXP_BRIDGE], capture_output=True, check=False)
    subprocess.run(['ip', 'link', 'add', NOEXP_BRIDGE, 'type', 'bridge'], check=True)
    subprocess.run(['ip', 'addr', 'add', NOEXP_BRIDGE_ADDR, 'dev', NOEXP_BRIDGE], check=True)
    subprocess.run(['ip', 'link', 'set', NOEXP_BRIDGE, 'up'], check=True)
    log = open(NOEXP_DIR + '/dockerd.log', 'ab')  # pylint: disable=consider-using-with
    proc = subprocess.Popen(  # pylint: disable=consider-using-with
        ['dockerd', '--data-root', NOEXP_DIR + '/data', '--exec-root', '/run/' + NOEXP,
         '--pidfile', '/run/%s.pid' % NOEXP, '-H', NOEXP_SOCK,
         '--bridge', NOEXP_BRIDGE, '--iptables=false', '--ip-masq=false',
         '--config-file', config], stdout=log, stderr=subprocess.STDOUT)
    client = None
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client = docker.APIClient(base_url=NOEXP_SOCK, version='auto')
                client.ping()
                break
            except docker.errors.DockerException:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError('second dockerd did not come up, see %s/dockerd.log' % NOEXP_DIR)
                time.sleep(0.3)
        assert not client.version().get('Experimental')
        client.load_image(b''.join(engine.get_image(IMAGE)))
        client.create_container(IMAGE, ['/bin/sh', '-c', COUNTER], name='cryo-lc-noexp-counter',
                                host_config=client.create_host_config(network_mode='none',
                                                                      security_opt=['seccomp=unconfined']))
        client.start('cryo-lc-noexp-counter')
        yield 'cryo-lc-noexp-counter'
    finally:
        if client is not None:
            try:
                client.remove_container('cryo-lc-noexp-counter', force=True)
            except docker.errors.DockerException:
                pass
            client.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        subprocess.run(['ip', 'link', 'del', NOEXP_BRIDGE], capture_output=True, check=False)
        with open('/proc/mounts', encoding='utf-8') as mounts:
            mounted = mounts.read()
        for path in (NOEXP_DIR, '/run/' + NOEXP):
            if path not in mounted:
                shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize('module', MODULES)
def test_engine_not_experimental(noexp_engine, module):
    failed_cleanly(run_module(module, args_for(module, noexp_engine, docker_host=NOEXP_SOCK)),
                   'experimental', 'cryo.docker.engine')
