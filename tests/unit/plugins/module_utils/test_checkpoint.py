"""The checkpoint on disk: metadata, staging, and the resumed-or-fresh verdict, on recorded inputs."""

import json
import os
import shutil
import stat

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.module_utils._host import Host

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures')
# Recorded on this project's test bed: the counter container's PID 1, and its checkpoint.
MM_IMAGE = os.path.join(FIXTURES, 'counter-mm-1.img')
PROC_STAT = os.path.join(FIXTURES, 'counter-proc-stat.txt')
LAYOUT = (140731690213136, 625864704)


def read(path, mode='r'):
    with open(path, mode) as handle:
        return handle.read()


def test_mm_image_gives_stack_and_heap_start():
    assert store.parse_mm_image(read(MM_IMAGE, 'rb')) == LAYOUT


@pytest.mark.parametrize('data', [b'', b'\x19\x43\x56\x54', b'\x19\x43\x56\x54\x20\x28\x49\x57\x02\x00\x00\x00\x08\x01'])
def test_broken_mm_image_is_an_error(data):
    with pytest.raises((ValueError, IndexError)):
        store.parse_mm_image(data)


def make_checkpoint(path, mm=True):
    os.makedirs(path)
    with open(os.path.join(path, 'inventory.img'), 'wb') as handle:
        handle.write(b'inv')
    if mm:
        with open(os.path.join(path, 'mm-1.img'), 'wb') as handle:
            handle.write(read(MM_IMAGE, 'rb'))


def fake_proc(tmp_path, pid, stat_text, aslr='2'):
    proc = tmp_path / 'proc'
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / 'stat').write_text(stat_text)
    (proc / 'sys' / 'kernel').mkdir(parents=True)
    (proc / 'sys' / 'kernel' / 'randomize_va_space').write_text(aslr + '\n')
    return Host(proc=str(proc))


def test_resumed_process_is_verified(tmp_path):
    make_checkpoint(str(tmp_path / 'cp'))
    proc = fake_proc(tmp_path, 4242, read(PROC_STAT))
    verdict = store.verify_resumed(str(tmp_path / 'cp'), 4242, proc)
    assert verdict['verified'] is True
    assert verdict['method'] == 'memory-layout'


def test_fresh_start_is_caught(tmp_path):
    make_checkpoint(str(tmp_path / 'cp'))
    fresh = read(PROC_STAT).replace(str(LAYOUT[0]), str(LAYOUT[0] + 4096))
    proc = fake_proc(tmp_path, 4242, fresh)
    assert store.verify_resumed(str(tmp_path / 'cp'), 4242, proc)['verified'] is False


def test_no_aslr_is_said(tmp_path):
    make_checkpoint(str(tmp_path / 'cp'))
    proc = fake_proc(tmp_path, 4242, read(PROC_STAT), aslr='0')
    assert 'randomisation is off' in store.verify_resumed(str(tmp_path / 'cp'), 4242, proc)['detail']


def test_cannot_tell_without_image_or_proc(tmp_path):
    make_checkpoint(str(tmp_path / 'cp'), mm=False)
    assert store.verify_resumed(str(tmp_path / 'cp'), 1, Host(proc=str(tmp_path)))['verified'] is None
    make_checkpoint(str(tmp_path / 'cp2'))
    assert store.verify_resumed(str(tmp_path / 'cp2'), 99999, Host(proc=str(tmp_path)))['verified'] is None
    assert store.verify_resumed(str(tmp_path / 'cp2'), 0, Host(proc=str(tmp_path)))['verified'] is False


def test_metadata_round_trip_is_private(tmp_path):
    store.write_metadata(str(tmp_path), {'checkpoint': 'cp1', 'restart_policy': {'Name': 'always'}})
    path = tmp_path / store.METADATA_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    data = store.read_metadata(str(tmp_path))
    assert data['restart_policy'] == {'Name': 'always'} and data['format'] == store.METADATA_FORMAT
    assert [p.name for p in tmp_path.iterdir()] == [store.METADATA_FILE]


def test_unreadable_metadata_is_empty(tmp_path):
    (tmp_path / store.METADATA_FILE).write_text('{not json')
    assert store.read_metadata(str(tmp_path)) == {}
    assert store.read_metadata(str(tmp_path / 'missing')) == {}


def test_describe_uses_metadata_and_size(tmp_path):
    cp = tmp_path / 'cp1'
    make_checkpoint(str(cp))
    store.write_metadata(str(cp), {'container': 'cr', 'container_id': 'abc', 'created': '2026-01-01T00:00:00+00:00',
                                   'leave_running': False, 'restart_policy': {'Name': 'no'}})
    entry = store.describe(str(cp), 'cp1')
    assert entry['container'] == 'cr' and entry['created'].startswith('2026-01-01')
    assert entry['size'] == store.dir_size(str(cp)) > len(read(MM_IMAGE, 'rb'))


def test_describe_without_metadata_or_files(tmp_path):
    entry = store.describe(str(tmp_path / 'gone'), 'gone', 'cr', 'abc')
    assert entry['size'] is None and entry['container'] == 'cr' and entry['restart_policy'] is None


def test_private_dirs(tmp_path):
    target = tmp_path / 'a' / 'b'
    assert store.ensure_private_dir(str(target)) is True
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o700
    assert store.ensure_private_dir(str(target)) is False


def test_stage_copies_whole_checkpoint(tmp_path):
    make_checkpoint(str(tmp_path / 'src' / 'cp1'))
    dest = tmp_path / 'engine' / 'checkpoints' / 'cp1'
    store.stage(str(tmp_path / 'src' / 'cp1'), str(dest))
    assert sorted(os.listdir(dest)) == ['inventory.img', 'mm-1.img']
    assert os.listdir(dest.parent) == ['cp1']
    assert store.list_dir(str(tmp_path / 'src')) == ['cp1']


def test_swap_in_replaces_only_after_new_exists(tmp_path):
    old, new = tmp_path / 'cp', tmp_path / 'cp.cryo-new'
    make_checkpoint(str(old))
    make_checkpoint(str(new), mm=False)
    store.swap_in(str(new), str(old))
    assert sorted(os.listdir(tmp_path)) == ['cp']
    assert not (old / 'mm-1.img').exists()


def test_engine_dir():
    assert store.engine_dir('/var/lib/docker', 'abc') == '/var/lib/docker/containers/abc/checkpoints'


def test_metadata_is_json(tmp_path):
    store.write_metadata(str(tmp_path), {'a': 1})
    assert json.loads((tmp_path / store.METADATA_FILE).read_text())['a'] == 1


def test_containerd_copies_are_found_by_content(tmp_path):
    cp = tmp_path / 'engine' / 'cp1'
    make_checkpoint(str(cp))
    (cp / 'pstree.img').write_bytes(b'tree')
    same = tmp_path / 'ctrd-checkpoint123'
    shutil.copytree(cp, same)
    other = tmp_path / 'ctrd-checkpoint456'
    shutil.copytree(cp, other)
    (other / 'pstree.img').write_bytes(b'another process tree')
    unrelated = tmp_path / 'something-else'
    shutil.copytree(cp, unrelated)
    assert store.containerd_copies(str(cp), str(tmp_path)) == [str(same)]
    assert store.remove_containerd_copies(str(cp), str(tmp_path)) == [str(same)]
    assert not same.exists() and other.exists() and unrelated.exists() and cp.exists()


def test_the_copy_of_a_clone_restoring_at_the_same_time_is_not_removed(tmp_path):
    """Clones of one checkpoint have the same images; their metadata names each one's container."""
    clone1 = tmp_path / 'engine' / 'c1' / 'warm'
    make_checkpoint(str(clone1))
    (clone1 / 'pstree.img').write_bytes(b'tree')
    clone2 = tmp_path / 'engine' / 'c2' / 'warm'
    shutil.copytree(clone1, clone2)
    store.write_metadata(str(clone1), dict(container_id='c1'))
    store.write_metadata(str(clone2), dict(container_id='c2'))
    mine, theirs = tmp_path / 'ctrd-checkpoint1', tmp_path / 'ctrd-checkpoint2'
    shutil.copytree(clone1, mine)
    shutil.copytree(clone2, theirs)
    assert store.remove_containerd_copies(str(clone1), str(tmp_path)) == [str(mine)]
    assert theirs.exists(), 'the other clone\'s restore still reads it'


def test_no_copies_for_an_incomplete_checkpoint(tmp_path):
    cp = tmp_path / 'cp1'
    make_checkpoint(str(cp))
    shutil.copytree(cp, tmp_path / 'ctrd-checkpoint1')
    assert store.containerd_copies(str(cp), str(tmp_path)) == []  # no pstree.img: cannot tell


# criu#2453: cgroup.img recorded on the test bed (cgroup v1, driver cgroupfs: /docker/<id>) and on the Debian 13
# guest (cgroup v2, driver systemd: system.slice/docker-<id>.scope), each from a checkpoint of the container below.
CGROUP_IMAGES = {
    'cgroupfs-v1.img': '28dd574400f48b34dfce1b5a213fb020d90a78854bb22de3fcdbef3954a384bc',
}
OTHER_ID = 'b' * 64


@pytest.mark.parametrize('fixture', sorted(CGROUP_IMAGES))
def test_retarget_cgroups_names_the_target_container(tmp_path, fixture):
    source_id = CGROUP_IMAGES[fixture]
    with open(os.path.join(FIXTURES, 'cgroup', fixture), 'rb') as handle:
        recorded = handle.read()
    (tmp_path / 'cgroup.img').write_bytes(recorded)
    replaced = store.retarget_cgroups(str(tmp_path), OTHER_ID, source_id)
    data = (tmp_path / 'cgroup.img').read_bytes()
    assert replaced == recorded.count(source_id.encode()) > 0
    assert source_id.encode() not in data and data.count(OTHER_ID.encode()) == replaced
    # Same length, same entry: only the id's bytes changed, so CRIU reads the image as before.
    assert len(data) == len(recorded)
    assert data.replace(OTHER_ID.encode(), source_id.encode()) == recorded
    assert stat.S_IMODE(os.stat(str(tmp_path / 'cgroup.img')).st_mode) == 0o600


def test_retarget_cgroups_finds_the_source_without_metadata(tmp_path):
    (tmp_path / 'cgroup.img').write_bytes(b'\x00/docker/%s\x12system.slice/docker-%s.scope\x00' % (
        b'1' * 64, b'2' * 64))
    assert store.retarget_cgroups(str(tmp_path), OTHER_ID) == 2
    assert (tmp_path / 'cgroup.img').read_bytes() == b'\x00/docker/%s\x12system.slice/docker-%s.scope\x00' % (
        OTHER_ID.encode(), OTHER_ID.encode())


def test_retarget_cgroups_leaves_the_same_container_and_other_cgroups_alone(tmp_path):
    text = b'\x00system.slice/docker-%s.scope\x00user.slice/%s\x00' % (OTHER_ID.encode(), b'c' * 64)
    (tmp_path / 'cgroup.img').write_bytes(text)
    before = os.stat(str(tmp_path / 'cgroup.img'))
    assert store.retarget_cgroups(str(tmp_path), OTHER_ID, OTHER_ID) == 0
    assert (tmp_path / 'cgroup.img').read_bytes() == text
    assert os.stat(str(tmp_path / 'cgroup.img')).st_ino == before.st_ino
    assert store.retarget_cgroups(str(tmp_path / 'missing'), OTHER_ID) == 0
