"""A restore leaves nothing behind: containerd's copy of the checkpoint in /tmp is removed
(containerd/containerd#10166), the checkpoint itself is kept."""

import glob
import os

from helpers import call_module, checkpoint_path, wait_counter


def identity(path):
    with open(os.path.join(path, 'inventory.img'), 'rb') as handle:
        return handle.read()


def test_restore_removes_containerds_copy_and_keeps_the_checkpoint(engine, make_container):
    name = make_container()
    wait_counter(engine, name, 1)
    assert call_module('docker_checkpoint', {'container': name, 'checkpoint': 'tidy'})['changed']
    path = checkpoint_path(engine, name, 'tidy')
    before = set(glob.glob('/tmp/ctrd-checkpoint*'))

    result = call_module('docker_restore', {'container': name, 'checkpoint': 'tidy'})

    assert result['restored'] and result['verified'], result
    assert result['containerd_copies_removed'] >= 1, result
    left = [copy for copy in set(glob.glob('/tmp/ctrd-checkpoint*')) - before
            if os.path.isfile(os.path.join(copy, 'inventory.img')) and identity(copy) == identity(path)]
    assert not left, 'containerd copies left behind: %s' % left
    assert os.path.isfile(os.path.join(path, 'inventory.img')), 'the checkpoint itself must be kept'
