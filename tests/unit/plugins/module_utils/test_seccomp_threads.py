"""A multi-threaded process's threads under their leader's seccomp filter (CRIU's TSYNC), read from real images.

Recorded on the test bed: redis 7 (cryo-test/redis:7, its main thread and 4 more) checkpointed by Docker 20.10 with
CRIU 4.2.1 under Docker's default seccomp profile. CRIU found every thread on its leader's filter, dumped that filter
once with SECCOMP_FILTER_FLAG_TSYNC and left the threads' own mode out (criu/seccomp.c try_use_tsync); restored, every
thread runs under the filter again (Seccomp: 2 in /proc/PID/task/*/status, checked when this was recorded). An import
must not call those threads unconfined, and must still refuse a thread that really is."""

import os

import pytest

from ansible_collections.cryo.docker.plugins.module_utils._host_access import checkpoint_access
from ansible_collections.cryo.docker.plugins.module_utils._images import (ImageError, thread_credentials,
                                                                          thread_leaders, tsync_filters)

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'redis-threads')
RECORD = dict(host_config={})  # Docker's defaults: confined by its seccomp profile


def read(name):
    with open(os.path.join(FIXTURES, name), 'rb') as handle:
        return handle.read()


@pytest.fixture
def images():
    threads = [thread_credentials(read(name), name) for name in sorted(os.listdir(FIXTURES))
               if name.startswith('core-')]
    return threads, thread_leaders(read('pstree.img')), tsync_filters(read('seccomp.img'))


def test_threads_on_their_leaders_synced_filter_are_confined(images):
    threads, leaders, tsync = images
    assert leaders == {1: 1, 7: 1, 8: 1, 9: 1, 10: 1} and tsync == {0}
    assert {thread['name']: thread['seccomp'] for thread in threads} == {
        'core-1.img': 2, 'core-7.img': 0, 'core-8.img': 0, 'core-9.img': 0, 'core-10.img': 0}
    assert checkpoint_access(threads, RECORD, leaders, tsync) == []


def test_without_the_sync_the_threads_are_unconfined(images):
    """The same threads when the leader's filter is not synced (a seccomp.img without the flag) or unknown."""
    threads, leaders, _tsync = images
    for found in (checkpoint_access(threads, RECORD, leaders, set()), checkpoint_access(threads, RECORD)):
        unconfined = sorted(item['item'].split()[1] for item in found)
        assert unconfined == ['core-10.img', 'core-7.img', 'core-8.img', 'core-9.img']
        assert {item['allow'] for item in found} == {'security_options'}


def test_a_leader_without_a_filter_syncs_nothing(images):
    threads, leaders, tsync = images
    forged = [dict(thread, seccomp=0) if thread['name'] == 'core-1.img' else thread for thread in threads]
    found = checkpoint_access(forged, RECORD, leaders, tsync)
    assert len(found) == 5, found


def test_a_thread_of_no_listed_process_is_not_covered(images):
    threads, leaders, tsync = images
    found = checkpoint_access(threads, RECORD, {tid: pid for tid, pid in leaders.items() if tid != 9}, tsync)
    assert [item['item'].split()[1] for item in found] == ['core-9.img']


def test_a_leader_on_another_filter_than_the_synced_one_is_not_enough(images):
    threads, leaders, _tsync = images
    found = checkpoint_access(threads, RECORD, leaders, {3})
    assert len(found) == 4


def test_damaged_images_are_errors():
    with pytest.raises(ImageError):
        tsync_filters(b'\x19\x43\x56\x54junk')
    with pytest.raises(ImageError):
        thread_leaders(read('seccomp.img'))
