"""cryo.docker.docker_warm against a fake engine: a container with a runtime of its own armed on its golden
checkpoint (warm), disarmed (cold), idempotent, check mode touching nothing; an ordinary container refused; a warm
container's golden checkpoint kept from docker_checkpoint's removal."""

import json
import os

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _imagepath, _warm
from ansible_collections.cryo.docker.plugins.modules import docker_checkpoint, docker_warm

from fake_engine import DOCKER_HOST, failed_clearly, run_module

NAME = 'cryo-restore-0123456789ab'


@pytest.fixture
def runtimes(engine, tmp_path, monkeypatch):
    """The fake engine's image-path runtimes: its daemon.json in tmp_path, every reload taken."""
    config = tmp_path / 'daemon.json'
    config.write_text('{"experimental": true}\n')
    reloads = []
    monkeypatch.setattr(_imagepath.os, 'kill', lambda pid, sig: reloads.append(sig))
    monkeypatch.setattr(_imagepath.Runtimes, 'wait_reload', lambda self, since, runtimes: None)
    found = _imagepath.Runtimes(engine, dict(engine.info(), DefaultRuntime='runc', Runtimes={'runc': {'path': 'runc'}}),
                                dict(pid=4321, config_file=str(config), exec_root=engine.exec_root, options={}))
    found.reloads = reloads
    monkeypatch.setattr(_warm.Runtimes, 'find', classmethod(lambda cls, engine_, docker_host: found))
    monkeypatch.setattr(_warm, 'connect', lambda params: engine)
    return found


@pytest.fixture
def imported(engine, runtimes):
    """Container web, created by an import with a runtime of its own (disarmed), checkpoint golden taken."""
    container = engine.add('web', runtime=NAME)
    runtimes.make_slot(NAME, container='web', mode='once', container_id=container.id)
    runtimes.disarm(NAME)
    container.path = engine.take(container, 'golden', leave_running=True)
    return container


def run(capsys, module=docker_warm, **args):
    check_mode, diff = args.pop('check_mode', False), args.pop('diff', False)
    args.setdefault('docker_host', DOCKER_HOST)
    return run_module(capsys, module, args, check_mode=check_mode, diff=diff)


def defined(runtimes):
    with open(runtimes.config_file) as handle:
        return json.load(handle)['runtimes'][NAME]


def test_an_ordinary_container_cannot_be_warm(engine, runtimes, capsys):
    engine.add('cr')
    msg = failed_clearly(run(capsys, container='cr', checkpoint='cp1'), 'Container cr runs with runtime runc')
    assert 'import it with docker_checkpoint_import and warm: true' in msg


def test_warm_arms_the_runtime_on_the_golden_checkpoint_once(engine, runtimes, imported, capsys):
    predicted = run(capsys, container='web', checkpoint='golden', check_mode=True, diff=True)
    assert predicted['changed'] and predicted['warm'] and predicted['diff']['before'] == dict(warm=False,
                                                                                              checkpoint=None)
    assert defined(runtimes) == {'path': 'runc'} and runtimes.pointed(NAME) is None, 'check mode touches nothing'
    result = run(capsys, container='web', checkpoint='golden')
    assert result['changed'] and result['warm'] and result['checkpoint'] == 'golden'
    assert result['previous_checkpoint'] is None and result['container']['runtime'] == NAME
    assert runtimes.pointed(NAME) == imported.path
    assert defined(runtimes)['options']['CriuImagePath'] == os.path.join(runtimes.slot(NAME), 'images')
    again = run(capsys, container='web')
    assert not again['changed'] and again['warm'] and again['checkpoint'] == 'golden'
    assert imported.running, 'neither stopped nor started'


def test_rolled_forward_cold_and_the_golden_checkpoint_kept(engine, runtimes, imported, capsys):
    run(capsys, container='web', checkpoint='golden')
    refused = run(capsys, module=docker_checkpoint, container='web', checkpoint='golden', state='absent')
    failed_clearly(refused, 'Checkpoint golden is the golden checkpoint of warm container web')
    assert os.path.isdir(imported.path)
    engine.take(imported, 'golden-2', leave_running=True)
    rolled = run(capsys, container='web', checkpoint='golden-2')
    assert rolled['changed'] and rolled['previous_checkpoint'] == 'golden' and rolled['checkpoint'] == 'golden-2'
    assert runtimes.pointed(NAME).endswith('/golden-2')
    removed = run(capsys, module=docker_checkpoint, container='web', checkpoint='golden', state='absent')
    assert removed['changed'] and 'failed' not in removed, 'no longer the golden one'
    cold = run(capsys, container='web', state='cold')
    assert cold['changed'] and not cold['warm'] and cold['previous_checkpoint'] == 'golden-2'
    assert defined(runtimes) == {'path': 'runc'}
    assert not run(capsys, container='web', state='cold')['changed']


def test_warm_needs_a_checkpoint_of_its_own(engine, runtimes, imported, capsys):
    failed_clearly(run(capsys, container='web'), 'Container web has no golden checkpoint yet')
    failed_clearly(run(capsys, container='web', checkpoint='nope'), 'Container web has no checkpoint nope')


def test_a_cold_start_disarms_a_runtime_a_killed_restore_left_armed(engine, runtimes, imported, capsys, monkeypatch):
    """fallback: cold_start of a container without that checkpoint starts it afresh, never from the checkpoint its
    runtime was left armed on."""
    from ansible_collections.cryo.docker.plugins.module_utils import _restore
    from ansible_collections.cryo.docker.plugins.modules import docker_restore
    monkeypatch.setattr(_restore.Runtimes, 'find', classmethod(lambda cls, engine_, docker_host: runtimes))
    runtimes.arm(NAME)
    engine.stop('web')
    result = run(capsys, module=docker_restore, container='web', checkpoint='gone', fallback='cold_start')
    assert result['changed'] and result['fallback_used'] and 'failed' not in result, result
    assert defined(runtimes) == {'path': 'runc'}
