"""What a checkpoint's own images would give its processes: CRIU restores each thread's capability sets, seccomp
mode and OOM score adjustment from its core image, not from the container's configuration. Real core images of
the recorded counter (Docker's default capabilities, seccomp unconfined) and forged ones, written here with the
field numbers of CRIU's core.proto and creds.proto."""

import importlib.util
import os
import tarfile

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _host_access, _images

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, '..', '..', 'fixtures', 'checkpoints')


def _load_forge():
    spec = importlib.util.spec_from_file_location(
        'cryo_testbed_forge', os.path.join(HERE, '..', '..', '..', 'testbed', 'forge.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


forge = _load_forge()
core_image, DEFAULT_MASK, SYS_ADMIN = forge.core_image, forge.DEFAULT_CAPABILITIES, forge.SYS_ADMIN


def credentials(**kwargs):
    return _images.thread_credentials(core_image(**kwargs), 'core-1.img')


CONFINED = dict(host_config=dict(SecurityOpt=None))
UNCONFINED = dict(host_config=dict(SecurityOpt=['seccomp=unconfined']))


def test_the_recorded_counter_holds_dockers_default_capabilities_and_no_filter():
    with tarfile.open(os.path.join(FIXTURES, 'counter.tar.xz')) as tar:
        data = {name: tar.extractfile(name).read() for name in ('./core-1.img', './core-17.img')}
    threads = [_images.thread_credentials(blob, name) for name, blob in data.items()]
    for thread in threads:
        assert thread['capabilities'] == dict(inheritable=0, permitted=DEFAULT_MASK, effective=DEFAULT_MASK,
                                              bounding=DEFAULT_MASK, ambient=0)
        assert (thread['seccomp'], thread['oom_score_adj']) == (0, 0)
    # It ran with seccomp=unconfined, as its configuration says: nothing beyond it.
    assert _host_access.checkpoint_access(threads, UNCONFINED) == []
    # The same images under a configuration with Docker's seccomp profile: they would run without its filter.
    assert [item['allow'] for item in _host_access.checkpoint_access(threads, CONFINED)] == ['security_options'] * 2


def test_a_confined_default_thread_gives_nothing_beyond_the_container():
    assert _host_access.checkpoint_access([credentials(seccomp=2)], CONFINED) == []


@pytest.mark.parametrize('record, allowed', [
    (CONFINED, False),
    (dict(host_config=dict(CapAdd=['SYS_ADMIN'])), True),
    (dict(host_config=dict(CapAdd=['CAP_SYS_ADMIN'])), True),
    (dict(host_config=dict(CapAdd=['ALL'])), True),
    (dict(host_config=dict(Privileged=True)), True),
    (dict(host_config=dict(CapAdd=['SYS_ADMIN'], CapDrop=['SYS_ADMIN'])), False),
])
def test_a_forged_capability_is_host_access_unless_the_configuration_gives_it(record, allowed):
    items = _host_access.checkpoint_access([credentials(bounding=DEFAULT_MASK | SYS_ADMIN, seccomp=2)], record)
    if allowed:
        assert items == []
    else:
        said = 'checkpoint core-1.img holds SYS_ADMIN in its %s set, which the container is not given'
        assert items == [dict(allow='capabilities', item=said % label) for label in ('bounding', 'effective', 'permitted')]


def test_dropped_capabilities_must_not_come_back_from_the_images():
    record = dict(host_config=dict(CapDrop=['ALL']))
    items = _host_access.checkpoint_access([credentials(seccomp=2)], record)
    assert {item['allow'] for item in items} == {'capabilities'} and 'CHOWN' in items[0]['item']
    assert _host_access.checkpoint_access([credentials(bounding=0, seccomp=2)], record) == []


def test_a_field_written_twice_is_read_as_criu_reads_it():
    """protobuf merges a message field that appears twice: the bounding set becomes four words, which CRIU refuses
    and this check cannot read - it fails closed rather than reading the first copy only."""
    thread = credentials(seccomp=2, creds_twice=SYS_ADMIN)
    assert thread['capabilities']['bounding'] is None
    items = _host_access.checkpoint_access([thread], CONFINED)
    assert items == [dict(allow='privileged', item='checkpoint core-1.img: its bounding capability set cannot be read')]


def test_an_unknown_capability_bit_is_named_by_its_number():
    items = _host_access.checkpoint_access([credentials(bounding=DEFAULT_MASK | 1 << 50, seccomp=2)], CONFINED)
    assert 'capability 50 in its bounding set' in items[0]['item']


def test_an_oom_score_below_the_containers_is_host_access():
    items = _host_access.checkpoint_access([credentials(seccomp=2, oom=-1000)], CONFINED)
    assert items == [dict(allow='oom_score', item='checkpoint core-1.img has OOM score adjustment -1000')]
    record = dict(host_config=dict(OomScoreAdj=-1000))
    assert _host_access.checkpoint_access([credentials(seccomp=2, oom=-1000)], record) == []


def test_an_image_that_is_no_core_image_is_an_image_error():
    with pytest.raises(_images.ImageError):
        _images.thread_credentials(b'\x00' * 12, 'core-1.img')
