"""docker_checkpoint, docker_checkpoint_info and docker_restore on the real engine and CRIU.

Every test proves what happened to the process, not only what the module said: the
counter container prints 0, 1, 2, ... once a second, so its log shows whether it froze
while checkpointed, resumed where it stopped (one unbroken run of numbers), was rewound
(a second run starting just after the checkpointed value) or started afresh (a run from 0).
"""

import json
import os
import stat
import time


from helpers import (assert_went_back_to_the_retake, checkpoint_path, checkpoints, counter, counter_lines, free_port,
                     ok, run_module, runs, state, wait_counter, wait_http, wait_lines, wait_running)


# -- helpers -----------------------------------------------------------------

def assert_clean(result):
    """No traceback and no MODULE FAILURE, whatever the outcome."""
    text = json.dumps(result)
    assert 'Traceback' not in text, text
    assert 'MODULE FAILURE' not in result.get('msg', ''), text


def checkpoint(name, cp='cp1', **kwargs):
    return run_module('docker_checkpoint', dict(container=name, checkpoint=cp, **kwargs))


def restore(name, cp='cp1', **kwargs):
    return run_module('docker_restore', dict(container=name, checkpoint=cp, **kwargs))


def checkpointed(engine, name, cp='cp1', at_least=2, **kwargs):
    """A running counter checkpointed (stopped); returns the numbers it printed."""
    wait_counter(engine, name, at_least)
    result = ok(checkpoint(name, cp, **kwargs))
    assert result['changed'] is True, result
    if not kwargs.get('leave_running'):
        assert not state(engine, name)['Running'], state(engine, name)
    return counter_lines(engine, name)


def assert_restored(result, name, cp='cp1'):
    ok(result)
    assert result['changed'] is True, result
    assert result['restored'] is True, result
    assert result['verified'] is True, result
    assert result['fallback_used'] is False, result
    assert result['container']['name'].lstrip('/') == name, result['container']
    assert result['container']['running'] is True, result['container']
    assert result['checkpoint']['name'] == cp, result['checkpoint']
    assert 'duration' in result, result


# -- the counter example -----------------------------------------------------

def test_counter_example(engine, make_container):
    name = make_container()
    wait_counter(engine, name, 3)
    result = ok(checkpoint(name))
    assert result['changed'] is True
    cp = result['checkpoint']
    assert cp['name'] == 'cp1'
    assert cp['container'].lstrip('/') == name
    assert cp['container_id'] == engine.inspect_container(name)['Id']
    assert cp['leave_running'] is False
    assert cp['size'] > 0
    assert cp['created']
    assert os.path.isdir(cp['directory']), cp
    assert cp['restart_policy']['Name'] in ('', 'no'), cp
    assert 'duration' in result
    assert not state(engine, name)['Running']
    assert checkpoints(engine, name) == ['cp1']

    frozen = counter_lines(engine, name)
    time.sleep(2.5)
    assert counter_lines(engine, name) == frozen, 'the counter advanced while checkpointed'

    result = restore(name)
    assert_restored(result, name)
    assert result['verification'].get('method'), result['verification']
    assert state(engine, name)['Running']
    lines = wait_lines(engine, name, len(frozen) + 3)
    after = lines[len(frozen):]
    assert 0 not in after, 'the counter restarted from 0: %s' % runs(lines)
    assert after[0] == frozen[-1] + 1, 'stopped at %s, went on at %s' % (frozen[-1], after[0])
    assert len(runs(lines)) == 1, runs(lines)
    assert checkpoints(engine, name) == ['cp1'], 'keep_checkpoint defaults to true'


def test_idempotency(engine, make_container):
    name = make_container()
    checkpointed(engine, name)

    again = ok(checkpoint(name))
    assert again['changed'] is False, again
    assert not state(engine, name)['Running']
    assert checkpoints(engine, name) == ['cp1']

    assert_restored(restore(name), name)
    again = ok(restore(name))
    assert again['changed'] is False, again
    assert not again.get('warnings'), again.get('warnings')
    assert state(engine, name)['Running']

    # An existing checkpoint is enough: the running container is not touched.
    again = ok(checkpoint(name))
    assert again['changed'] is False, again
    assert state(engine, name)['Running']

    info = ok(run_module('docker_checkpoint_info', {'container': name}))
    assert info['changed'] is False
    assert [c['name'] for c in info['checkpoints']] == ['cp1'], info['checkpoints']
    entry = info['checkpoints'][0]
    assert entry['container'].lstrip('/') == name
    assert entry['container_id'] == engine.inspect_container(name)['Id']
    assert entry['size'] > 0 and entry['created'] and entry['directory']
    assert entry['leave_running'] is False
    everywhere = ok(run_module('docker_checkpoint_info', {}))
    assert everywhere['changed'] is False
    assert ('cp1', name) in [(c['name'], c['container'].lstrip('/')) for c in everywhere['checkpoints']]

    gone = ok(checkpoint(name, state='absent'))
    assert gone['changed'] is True, gone
    assert checkpoints(engine, name) == []
    gone = ok(checkpoint(name, state='absent'))
    assert gone['changed'] is False, gone
    info = ok(run_module('docker_checkpoint_info', {'container': name}))
    assert info['changed'] is False and info['checkpoints'] == []
    assert state(engine, name)['Running']


def test_check_and_diff_mode(engine, make_container):
    name = make_container()
    wait_counter(engine, name, 2)

    predicted = ok(run_module('docker_checkpoint', {'container': name, 'checkpoint': 'cp1'}, check=True, diff=True))
    assert predicted['changed'] is True, predicted
    assert 'before' in predicted['diff'] and 'after' in predicted['diff'], predicted.get('diff')
    assert predicted['diff']['before'] != predicted['diff']['after']
    assert state(engine, name)['Running']
    assert checkpoints(engine, name) == []
    value = counter(engine, name)
    wait_counter(engine, name, value + 1)

    real = ok(run_module('docker_checkpoint', {'container': name, 'checkpoint': 'cp1'}, diff=True))
    assert real['changed'] is True
    assert 'before' in real['diff'] and 'after' in real['diff'], real.get('diff')
    assert not state(engine, name)['Running']

    predicted = ok(run_module('docker_checkpoint', {'container': name, 'checkpoint': 'cp1', 'state': 'absent'},
                              check=True, diff=True))
    assert predicted['changed'] is True, predicted
    assert 'before' in predicted['diff'] and 'after' in predicted['diff']
    assert checkpoints(engine, name) == ['cp1']

    predicted = ok(run_module('docker_restore', {'container': name, 'checkpoint': 'cp1'}, check=True, diff=True))
    assert predicted['changed'] is True, predicted
    assert 'before' in predicted['diff'] and 'after' in predicted['diff'], predicted.get('diff')
    assert predicted['diff']['before'] != predicted['diff']['after']
    time.sleep(0.5)
    assert not state(engine, name)['Running'], 'check mode started the container'

    predicted = ok(run_module('docker_restore', {'container': name, 'checkpoint': 'cp1', 'keep_checkpoint': False},
                              check=True))
    assert predicted['changed'] is True
    assert checkpoints(engine, name) == ['cp1']

    info = ok(run_module('docker_checkpoint_info', {'container': name}, check=True))
    assert info['changed'] is False
    assert [c['name'] for c in info['checkpoints']] == ['cp1']

    real = ok(run_module('docker_restore', {'container': name, 'checkpoint': 'cp1'}, diff=True))
    assert real['restored'] is True
    assert 'before' in real['diff'] and 'after' in real['diff'], real.get('diff')

    # Nothing to do: check mode predicts no change either.
    predicted = ok(run_module('docker_checkpoint', {'container': name, 'checkpoint': 'cp1'}, check=True))
    assert predicted['changed'] is False, predicted
    predicted = ok(run_module('docker_restore', {'container': name, 'checkpoint': 'cp1'}, check=True))
    assert predicted['changed'] is False, predicted
    predicted = ok(run_module('docker_checkpoint', {'container': name, 'checkpoint': 'nope', 'state': 'absent'},
                              check=True))
    assert predicted['changed'] is False, predicted


def test_leave_running(engine, make_container):
    name = make_container()
    wait_counter(engine, name, 2)
    result = ok(checkpoint(name, leave_running=True))
    assert result['changed'] is True
    assert result['checkpoint']['leave_running'] is True
    assert state(engine, name)['Running']
    value = counter(engine, name)
    wait_counter(engine, name, value + 2)
    assert len(runs(counter_lines(engine, name))) == 1
    assert checkpoints(engine, name) == ['cp1']
    info = ok(run_module('docker_checkpoint_info', {'container': name}))
    assert info['checkpoints'][0]['leave_running'] is True, info['checkpoints']


def test_force_recreates_checkpoint(engine, make_container):
    name = make_container()
    wait_counter(engine, name, 1)
    first = ok(checkpoint(name, leave_running=True))['checkpoint']
    value = counter(engine, name)
    wait_counter(engine, name, value + 2)
    again = ok(checkpoint(name, leave_running=True, force=True))
    assert again['changed'] is True, again
    assert checkpoints(engine, name) == ['cp1']
    assert not [n for n in os.listdir(os.path.dirname(first['directory'])) if n != 'cp1'], 'leftovers'
    assert state(engine, name)['Running']
    assert_restored(restore(name, force=True), name)
    assert_went_back_to_the_retake(engine, name, value)


def test_custom_checkpoint_dir(engine, make_container, store):
    name = make_container()
    frozen = checkpointed(engine, name, checkpoint_dir=store)
    target = os.path.join(store, 'cp1')
    assert os.path.isdir(target)
    assert os.listdir(target), 'empty checkpoint directory'
    for path in (store, target):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, '%s is %o' % (path, os.stat(path).st_mode)
        assert os.stat(path).st_uid == 0

    again = ok(checkpoint(name, checkpoint_dir=store))
    assert again['changed'] is False, again

    info = ok(run_module('docker_checkpoint_info', {'container': name, 'checkpoint_dir': store}))
    assert info['changed'] is False
    assert [c['name'] for c in info['checkpoints']] == ['cp1'], info['checkpoints']
    assert info['checkpoints'][0]['directory'] == target
    assert checkpoints(engine, name, store) == ['cp1']

    result = restore(name, checkpoint_dir=store)
    assert_restored(result, name)
    lines = wait_lines(engine, name, len(frozen) + 3)
    assert len(runs(lines)) == 1, runs(lines)
    assert lines[len(frozen)] == frozen[-1] + 1
    assert os.path.isdir(target), 'the checkpoint in checkpoint_dir must be kept'


def test_rewind(engine, make_container):
    name = make_container()
    low = wait_counter(engine, name, 3)
    result = ok(checkpoint(name, 'cp-early', leave_running=True))
    assert result['changed'] is True
    high = counter(engine, name)
    wait_counter(engine, name, high + 4)

    result = restore(name, 'cp-early', force=True)
    assert_restored(result, name, 'cp-early')
    lines = counter_lines(engine, name)
    wait_lines(engine, name, len(lines) + 2)
    parts = runs(counter_lines(engine, name))
    assert len(parts) == 2, parts
    first = parts[1][0]
    assert low + 1 <= first <= high + 1, 'rewound to %s, checkpoint was taken between %s and %s' % (first, low, high)
    assert first < parts[0][-1]


def test_restore_into_second_container(engine, make_container, store):
    source = make_container()
    frozen = checkpointed(engine, source, checkpoint_dir=store)
    target = make_container(start=False)

    result = restore(target, checkpoint_dir=store)
    assert_restored(result, target)
    lines = wait_lines(engine, target, 3)
    assert lines[0] == frozen[-1] + 1, 'B printed %s, A stopped at %s' % (lines[:3], frozen[-1])
    assert len(runs(lines)) == 1, runs(lines)
    assert not state(engine, source)['Running']


def test_published_port(engine, make_container):
    port = free_port()
    name = make_container('mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www',
                          ports={8080: port})
    assert wait_http(port, path='/') == 'hello'
    time.sleep(0.5)
    result = ok(checkpoint(name))
    assert result['changed'] is True
    assert not state(engine, name)['Running']
    assert_restored(restore(name), name)
    assert wait_http(port, path='/') == 'hello'


def test_restart_policy_always_is_held(engine, make_container):
    name = make_container(restart_policy={'Name': 'always'})
    wait_counter(engine, name, 2)
    result = ok(checkpoint(name))
    assert result['changed'] is True
    assert result['checkpoint']['restart_policy']['Name'] == 'always', result['checkpoint']
    assert not state(engine, name)['Running']
    frozen = counter_lines(engine, name)
    info = ok(run_module('docker_checkpoint_info', {'container': name}))
    assert info['checkpoints'][0]['restart_policy']['Name'] == 'always', info['checkpoints']
    time.sleep(3)
    assert not state(engine, name)['Running'], 'the engine cold-started the checkpointed container'
    assert engine.inspect_container(name)['HostConfig']['RestartPolicy']['Name'] == 'no'
    assert counter_lines(engine, name) == frozen

    result = restore(name)
    assert_restored(result, name)
    assert result['restart_policy']['Name'] == 'always', result
    assert engine.inspect_container(name)['HostConfig']['RestartPolicy']['Name'] == 'always'
    lines = wait_lines(engine, name, len(frozen) + 2)
    assert len(runs(lines)) == 1, runs(lines)


def _fresh_start_after_checkpoint(engine, make_container):
    name = make_container()
    frozen = checkpointed(engine, name)
    engine.start(name)
    assert wait_running(engine, name)
    lines = wait_lines(engine, name, len(frozen) + 2)
    assert runs(lines)[1][0] == 0, 'engine.start did not start afresh: %s' % runs(lines)
    return name, frozen


def test_verify_catches_fresh_start(engine, make_container):
    name, _frozen = _fresh_start_after_checkpoint(engine, make_container)
    result = ok(restore(name))
    assert result['changed'] is False, result
    warnings = result.get('warnings') or []
    assert warnings, 'no warning for a container running from a fresh start: %s' % result
    assert any('cp1' in w or 'checkpoint' in w.lower() for w in warnings), warnings
    assert state(engine, name)['Running']
    assert len(runs(counter_lines(engine, name))) == 2, 'the container was touched'


def test_force_restores_over_fresh_start(engine, make_container):
    name, frozen = _fresh_start_after_checkpoint(engine, make_container)
    # Let the fresh run pass the checkpointed value, so the rewind shows as a drop in the log.
    wait_lines(engine, name, 2 * len(frozen) + 3)
    result = restore(name, force=True)
    assert_restored(result, name)
    lines = counter_lines(engine, name)
    wait_lines(engine, name, len(lines) + 2)
    parts = runs(counter_lines(engine, name))
    assert len(parts) == 3, parts
    assert parts[2][0] == frozen[-1] + 1, parts


def test_keep_checkpoint_false(engine, make_container):
    name = make_container()
    frozen = checkpointed(engine, name)
    assert_restored(restore(name, keep_checkpoint=False), name)
    assert checkpoints(engine, name) == []
    lines = wait_lines(engine, name, len(frozen) + 2)
    assert len(runs(lines)) == 1


def _runc_keeps_log():
    try:
        with open('/etc/criu/runc.conf', encoding='utf-8') as conf:
            return 'log-file' in conf.read()
    except OSError:
        return False


def test_damaged_checkpoint_fallback(engine, make_container):
    name = make_container()
    frozen = checkpointed(engine, name)
    # A missing pages image makes CRIU fail at once ("Can't read async pr bytes"); a truncated
    # one sends CRIU 4.2.1 into an endless loop instead, which is no test of the module.
    pages = os.path.join(checkpoint_path(engine, name, 'cp1'), 'pages-1.img')
    os.unlink(pages)

    result = restore(name, fallback='fail')
    assert_clean(result)
    assert result.get('failed') is True, result
    assert 'restore' in result['msg'].lower(), result['msg']
    assert isinstance(result.get('criu_errors', []), list)
    if _runc_keeps_log():
        assert result.get('criu_errors'), 'runc.conf keeps a log but criu_errors is empty: %s' % result
        assert any(line in result['msg'] for line in result['criu_errors'])
    time.sleep(0.5)
    assert not state(engine, name)['Running']
    assert checkpoints(engine, name) == ['cp1']

    result = ok(restore(name, fallback='cold_start'))
    assert result['changed'] is True
    assert result['restored'] is False, result
    assert result['fallback_used'] is True, result
    assert result['container']['running'] is True
    assert state(engine, name)['Running']
    assert checkpoints(engine, name) == ['cp1']
    lines = wait_lines(engine, name, len(frozen) + 1)
    assert lines[len(frozen)] == 0, 'cold start should count from 0: %s' % runs(lines)
