"""The group archive (_group_archive): written whole, read back, and every crafted file refused with nothing left."""

import io
import json
import os
import tarfile

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _group_archive as ga
from ansible_collections.cryo.docker.plugins.module_utils._archive import ArchiveError
from ansible_collections.cryo.docker.plugins.module_utils._common import ModuleError


def identity(names=('shop-redis-1', 'shop-worker-1'), **changes):
    data = dict(format=1, kind='group', project='shop', checkpoint='mv', group='6b16-abcd', created='now',
                members=[dict(name=name, archive='members/%s.tar.zst' % name, signature=None) for name in names])
    data.update(changes)
    return data


@pytest.fixture
def written(tmp_path):
    """A group archive of two members (their archives: a few bytes each), and its path."""
    files = {}
    for name in ('shop-redis-1', 'shop-worker-1'):
        local = tmp_path / ('%s.tar.zst' % name)
        local.write_bytes(b'archive of ' + name.encode())
        files['members/%s.tar.zst' % name] = str(local)
    path = str(tmp_path / 'shop.tar')
    size, sha256 = ga.write(path, identity(), files)
    assert size == os.path.getsize(path) and sha256.startswith('sha256:')
    return path


def unpack_into(tmp_path, path):
    dest = tmp_path / 'dest'
    dest.mkdir()
    return dest, ga.unpack(path, str(dest))


def test_written_and_read_back(tmp_path, written):
    assert ga.is_group_archive(written)
    assert ga.read_identity(written)['group'] == '6b16-abcd'
    dest, found = unpack_into(tmp_path, written)
    assert [member['name'] for member in found['members']] == ['shop-redis-1', 'shop-worker-1']
    assert found['project'] == 'shop' and found['checkpoint'] == 'mv'
    with open(found['members'][1]['archive'], 'rb') as handle:
        assert handle.read() == b'archive of shop-worker-1'
    assert found['members'][0]['signature'] is None
    assert sorted(os.listdir(dest)) == ['shop-redis-1.tar.zst', 'shop-worker-1.tar.zst']


def test_a_lone_archive_is_not_a_group_archive(tmp_path):
    path = tmp_path / 'lone.tar'
    with tarfile.open(path, 'w') as tar:
        data = b'{}'
        info = tarfile.TarInfo('cryo-archive.json')
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert not ga.is_group_archive(str(path))
    assert not ga.is_group_archive(str(tmp_path / 'missing.tar'))


def craft(path, members, manifest=True):
    """A tar of (name, data or ('link', a TarInfo type)) in order, with a manifest of the regular files (recomputed: a forger
    does that)."""
    listed = {}
    with tarfile.open(path, 'w') as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if not isinstance(data, tuple):
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                listed[name] = dict(size=len(data), sha256=ga.hashlib.sha256(data).hexdigest())
            else:
                info.type = data[1]
                info.linkname = '/etc/shadow'
                tar.addfile(info)
        if manifest:
            data = json.dumps(dict(format=1, members=listed)).encode()
            info = tarfile.TarInfo('manifest.json')
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


IDENTITY = json.dumps(identity()).encode()
GOOD = [('cryo-group.json', IDENTITY), ('members/shop-redis-1.tar.zst', b'a'),
        ('members/shop-worker-1.tar.zst', b'b')]


@pytest.mark.parametrize('members, reason', [
    (GOOD[:1] + [('members/../../etc/cron.d/x.tar.zst', b'a')] + GOOD[2:], 'unexpected_member'),
    (GOOD[:1] + [('/members/shop-redis-1.tar.zst', b'a')] + GOOD[2:], 'unexpected_member'),
    (GOOD[:1] + [('members/shop-redis-1.tar.zst', ('link', tarfile.SYMTYPE))] + GOOD[2:], 'member_type'),
    (GOOD[:1] + [('members/shop-redis-1.tar.zst', ('link', tarfile.LNKTYPE))] + GOOD[2:], 'member_type'),
    (GOOD[:1] + [('members/.hidden.tar.zst', b'a')] + GOOD[1:], 'unexpected_member'),
    (GOOD + [('members/shop-redis-1.tar.zst', b'again')], 'duplicate'),
    (GOOD[1:2] + GOOD[:1] + GOOD[2:], 'unexpected_member'),  # a member before the identity
    (GOOD[:2], 'member_missing'),
    ([('cryo-group.json', b'not json')] + GOOD[1:], 'damaged'),
    ([('cryo-group.json', json.dumps(identity(kind='container')).encode())] + GOOD[1:], 'damaged'),
    ([('cryo-group.json', json.dumps(identity(names=('shop-redis-1', 'shop-redis-1'))).encode())] + GOOD[1:],
     'duplicate'),
])
def test_crafted_archives_are_refused(tmp_path, members, reason):
    path = craft(tmp_path / 'crafted.tar', members)
    with pytest.raises(ArchiveError) as raised:
        unpack_into(tmp_path, path)
    assert raised.value.details.get('reason') == reason, raised.value.msg
    assert 'nothing was created' in raised.value.msg
    assert not os.path.lexists('/etc/cron.d/x.tar.zst')


def test_a_member_renamed_to_reach_out_is_refused(tmp_path):
    """The identity names the member's archive: one that is not members/<its own name>.tar... is refused."""
    bad = identity()
    bad['members'][0]['archive'] = 'members/shop-worker-1.tar.zst'
    path = craft(tmp_path / 'crafted.tar', [('cryo-group.json', json.dumps(bad).encode())] + GOOD[1:])
    with pytest.raises(ArchiveError, match='names the archive'):
        unpack_into(tmp_path, path)


@pytest.mark.parametrize('name', ['../etc', 'a/b', '', 'x' * 300, 'name\n'])
def test_member_names_are_checked_as_container_names(tmp_path, name):
    bad = identity()
    bad['members'][0]['name'] = name
    path = craft(tmp_path / 'crafted.tar', [('cryo-group.json', json.dumps(bad).encode())] + GOOD[1:])
    with pytest.raises(ModuleError):
        unpack_into(tmp_path, path)


def test_a_member_changed_after_its_manifest_is_refused(tmp_path, written):
    with open(written, 'r+b') as handle:
        data = handle.read()
        at = data.index(b'archive of shop-worker-1')
        handle.seek(at)
        handle.write(b'ARCHIVE')
    with pytest.raises(ArchiveError) as raised:
        unpack_into(tmp_path, written)
    assert raised.value.details['reason'] == 'member_damaged'


def test_no_manifest_is_refused(tmp_path):
    path = craft(tmp_path / 'crafted.tar', GOOD, manifest=False)
    with pytest.raises(ArchiveError, match='no manifest'):
        unpack_into(tmp_path, path)


def test_room_is_checked_as_it_is_read(tmp_path, written):
    dest = tmp_path / 'dest'
    dest.mkdir()
    with pytest.raises(ArchiveError) as raised:
        ga.unpack(written, str(dest), room=30)
    assert raised.value.details['reason'] == 'room'


def test_not_a_tar_is_refused(tmp_path):
    path = tmp_path / 'junk.tar'
    path.write_bytes(b'\0' * 10 + b'junk' * 300)
    with pytest.raises(ArchiveError):
        unpack_into(tmp_path, str(path))
