"""A checkpoint CRIU refuses: the container keeps running and the message says why.

A host-network container holding an established TCP connection to a peer outside it
cannot be dumped without CRIU's tcp-established option (off by default in the criu role).
"""

from helpers import call_module, state, wait_counter

NC_COUNTER = ('(while true; do echo x; sleep 1; done) | nc 127.0.0.1 {port} & '
              'i=0; while true; do echo $i; i=$(expr $i + 1); sleep 1; done')


def test_failed_checkpoint_leaves_container_running_and_quotes_criu(engine, make_container, tcp_peer):
    port, peers = tcp_peer
    name = make_container(NC_COUNTER.format(port=port), network_mode='host')
    wait_counter(engine, name, 2)
    assert peers, 'the container did not connect to the test peer'

    result = call_module('docker_checkpoint', {'container': name, 'checkpoint': 'doomed'})

    assert result['failed']
    assert 'Traceback' not in result['msg']
    assert 'still running' in result['msg']
    assert result['container_running'] is True
    assert any('tcp-established' in line for line in result['criu_errors']), result
    assert not any('RLIMIT_NOFILE' in line for line in result['criu_errors'])
    assert 'tcp-established' in result['msg']
    # Still running, still counting, and no checkpoint left behind.
    assert state(engine, name)['Running']
    before = wait_counter(engine, name, 0)
    wait_counter(engine, name, before + 2)
    info = call_module('docker_checkpoint_info', {'container': name})
    assert info['checkpoints'] == []


def test_failed_checkpoint_puts_held_restart_policy_back(engine, make_container, tcp_peer):
    port, _peers = tcp_peer
    name = make_container(NC_COUNTER.format(port=port), network_mode='host',
                          restart_policy={'Name': 'unless-stopped'})
    wait_counter(engine, name, 2)
    result = call_module('docker_checkpoint', {'container': name, 'checkpoint': 'doomed'})
    assert result['failed']
    assert engine.inspect_container(name)['HostConfig']['RestartPolicy']['Name'] == 'unless-stopped'
    assert state(engine, name)['Running']
