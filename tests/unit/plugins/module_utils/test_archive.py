"""The archive format (_archive) and the container record (_containers) with recorded inputs: which paths an
export reads, the create body an import sends, whiteouts that never follow a link, unpacking that never writes
through one."""

import io
import os
import stat
import tarfile

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _archive, _containers
from ansible_collections.cryo.docker.plugins.module_utils._common import ModuleError

# GET /containers/{id}/changes of a container that wrote a page, made a directory tree and deleted a file
# (recorded on Docker 20.10.24).
CHANGES = [{'Path': '/etc', 'Kind': 0}, {'Path': '/etc/profile', 'Kind': 1}, {'Path': '/tmp', 'Kind': 0},
           {'Path': '/tmp/lnk', 'Kind': 1}, {'Path': '/tmp/new', 'Kind': 1}, {'Path': '/tmp/new/sub', 'Kind': 1},
           {'Path': '/tmp/new/sub/f', 'Kind': 1}, {'Path': '/www', 'Kind': 0}, {'Path': '/www/index.html', 'Kind': 1},
           {'Path': '/bin', 'Kind': 0}, {'Path': '/bin/date', 'Kind': 2}]


def test_plan_changes_reads_the_fewest_paths():
    fetch, deleted, counts = _containers.plan_changes(CHANGES)
    assert fetch == ['/etc/profile', '/tmp/lnk', '/tmp/new', '/www/index.html']
    assert deleted == ['/bin/date']
    assert counts == dict(changed=4, added=6, deleted=1)


def test_a_modified_entry_without_children_is_read_itself():
    fetch, _deleted, _counts = _containers.plan_changes([{'Path': '/etc/hosts.allow', 'Kind': 0}])
    assert fetch == ['/etc/hosts.allow']


def test_rebase_puts_members_under_the_parent():
    info = tarfile.TarInfo('new/sub/f')
    assert _containers.rebase(info, 'tmp').name == 'tmp/new/sub/f'
    link = tarfile.TarInfo('x')
    link.type, link.linkname = tarfile.LNKTYPE, 'y'
    assert _containers.rebase(link, 'a/b').linkname == 'a/b/y'
    assert _containers.rebase(tarfile.TarInfo('www'), '').name == 'www'


def test_iter_reader_serves_any_read_size():
    reader = _containers._IterReader(iter([b'abc', b'', b'defgh', b'i']))
    assert reader.read(2) == b'ab' and reader.read(4) == b'cdef' and reader.read(-1) == b'ghi' and reader.read(3) == b''


@pytest.mark.parametrize('reference, split', [
    ('cryo-test/busybox:1', ('cryo-test/busybox', '1')), ('busybox', ('busybox', 'latest')),
    ('registry:5000/team/app', ('registry:5000/team/app', 'latest')),
    ('registry:5000/app:2.1', ('registry:5000/app', '2.1')), ('app@sha256:abc', ('app', None))])
def test_split_reference(reference, split):
    assert _containers.split_reference(reference) == split


def record(**host_config):
    info = dict(Id='a' * 64, Name='/web', Created='2026-12-02T10:00:00Z', Image='sha256:' + 'b' * 64,
                Config=dict(Image='web:1', Cmd=['httpd'], Env=['A=1'], Hostname='aaaaaaaaaaaa', Labels={'x': 'y'},
                            MacAddress=None),
                HostConfig=dict(dict(NetworkMode='backend', RestartPolicy=dict(Name='no'), ContainerIDFile='/x',
                                     PortBindings={'80/tcp': [{'HostIp': '', 'HostPort': '8080'}]}), **host_config),
                NetworkSettings=dict(Networks=dict(backend=dict(Aliases=['aaaaaaaaaaaa', 'web'],
                                                                IPAMConfig=dict(IPv4Address='10.9.0.5')),
                                                   front=dict(Aliases=['web'], IPAMConfig=None))),
                Mounts=[dict(Type='volume', Name='data', Source='/v', Destination='/data', Driver='local', RW=True)])
    return _containers.record_container(info, dict(RootFS=dict(Layers=['sha256:l1'])),
                                        dict(Name='always', MaximumRetryCount=0), lambda target: 'holder')


def test_record_keeps_the_policy_of_the_checkpoint_and_drops_host_only_fields():
    rec = record()
    assert rec['host_config']['RestartPolicy'] == dict(Name='always', MaximumRetryCount=0)
    assert 'ContainerIDFile' not in rec['host_config'] and 'MacAddress' in rec['config']
    assert rec['networks'][0] == dict(name='backend', aliases=['web'], ipv4_address='10.9.0.5', ipv6_address=None,
                                      links=None)
    assert rec['image'] == dict(rec['image'], reference='web:1', id='sha256:' + 'b' * 64, layers=['sha256:l1'])


def test_a_network_mode_container_id_is_recorded_by_name():
    rec = record(NetworkMode='container:' + 'c' * 64)
    assert rec['network_mode'] == 'container:holder' and rec['host_config']['NetworkMode'] == 'container:holder'
    assert rec['networks'] == []


def test_create_body_holds_the_policy_until_the_restore_and_remaps_ports():
    rec = record()
    body, rest = _containers.create_body(rec, 'web:1', {'cryo.docker.archive': 'sha256:f'})
    assert body['HostConfig']['RestartPolicy'] == {'Name': 'no', 'MaximumRetryCount': 0}
    assert body['Labels'] == {'x': 'y', 'cryo.docker.archive': 'sha256:f'}
    assert 'MacAddress' not in body and body['Image'] == 'web:1'
    assert body['NetworkingConfig'] == {'EndpointsConfig': {'backend': {'IPAMConfig': {'IPv4Address': '10.9.0.5'},
                                                                        'Aliases': ['web']}}}
    assert rest == [('front', None, ['web'])]
    body, _rest = _containers.create_body(rec, 'web:1', published_ports=['127.0.0.1:9000:80', '53:53/udp'])
    assert body['HostConfig']['PortBindings'] == {'80/tcp': [{'HostIp': '127.0.0.1', 'HostPort': '9000'}],
                                                  '53/udp': [{'HostIp': '', 'HostPort': '53'}]}
    assert set(body['ExposedPorts']) == {'80/tcp', '53/udp'}
    body, _rest = _containers.create_body(rec, 'web:1', published_ports=[])
    assert body['HostConfig']['PortBindings'] == {}
    with pytest.raises(ModuleError):
        _containers.create_body(rec, 'web:1', published_ports=['x:y'])


# -- whiteouts --------------------------------------------------------------------------------------

@pytest.fixture
def overlay(tmp_path, monkeypatch):
    lower = tmp_path / 'lower'
    (lower / 'etc' / 'conf.d').mkdir(parents=True)
    (lower / 'etc' / 'conf.d' / 'a.conf').write_text('a')
    (lower / 'etc' / 'passwd').write_text('root')
    os.chmod(str(lower / 'etc'), 0o751)
    upper = tmp_path / 'upper'
    upper.mkdir()
    made = []

    def whiteout(name, dir_fd):
        made.append(name)
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dir_fd))

    if os.geteuid() != 0:
        monkeypatch.setattr(_containers, 'make_whiteout', whiteout)
    return str(upper), [str(lower)], made


def test_a_whiteout_hides_a_file_of_the_image(overlay):
    upper, lowers, _made = overlay
    assert _containers.whiteout(upper, lowers, '/etc/conf.d/a.conf') == 'whiteout'
    assert stat.S_IMODE(os.stat(os.path.join(upper, 'etc')).st_mode) == 0o751
    if os.geteuid() == 0:
        made = os.lstat(os.path.join(upper, 'etc', 'conf.d', 'a.conf'))
        assert stat.S_ISCHR(made.st_mode) and made.st_rdev == 0
        assert _containers.whiteout(upper, lowers, '/etc/conf.d/a.conf') == 'present'
    assert _containers.whiteout(upper, lowers, '/etc/not-in-the-image') == 'absent'


def test_a_whiteout_never_follows_a_link_in_the_upper_directory(overlay, tmp_path):
    upper, lowers, _made = overlay
    outside = tmp_path / 'host-etc'
    outside.mkdir()
    os.symlink(str(outside), os.path.join(upper, 'etc'))
    with pytest.raises(OSError):
        _containers.whiteout(upper, lowers, '/etc/passwd')
    assert os.listdir(str(outside)) == []


def test_a_whiteout_path_stays_below_the_upper_directory(overlay):
    upper, lowers, _made = overlay
    assert _containers._parts('/etc/../../x') == ['x']
    with pytest.raises(ValueError):
        _containers.whiteout(upper, lowers, '/')


# -- unpacking ----------------------------------------------------------------------------------------

def write_tar(path, members):
    listed = []
    with tarfile.open(path, 'w') as tar:
        for name, kind, data, linkname in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = linkname
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                listed.append(dict(name=name, type='file', size=len(data), sha256=_archive.sha256_hex(data)))
            else:
                tar.addfile(info)
                listed.append(dict(name=name, type=_archive.member_kind(info)))
        data, line = _archive.manifest_bytes(dict(format=1, members=listed))
        for name, blob in (('manifest.json', data), ('manifest.json.sha256', line)):
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def test_a_link_member_is_refused_before_anything_is_unpacked(tmp_path):
    path = str(tmp_path / 'a.tar')
    write_tar(path, [('checkpoint', tarfile.DIRTYPE, b'', ''), ('checkpoint/l', tarfile.SYMTYPE, b'', '.'),
                     ('checkpoint/l/x', tarfile.REGTYPE, b'x', '')])
    with pytest.raises(_archive.ArchiveError) as error:
        _archive.verify(path)
    assert error.value.details['reason'] == 'link'


def test_what_is_unpacked_is_flushed_and_holds_no_link(tmp_path, monkeypatch):
    path = str(tmp_path / 'a.tar')
    write_tar(path, [('checkpoint', tarfile.DIRTYPE, b'', ''), ('checkpoint/a', tarfile.REGTYPE, b'pages', ''),
                     ('checkpoint/sub', tarfile.DIRTYPE, b'', ''), ('checkpoint/sub/b', tarfile.REGTYPE, b'b', '')])
    verified = _archive.verify(path)
    dest = tmp_path / 'dest'
    dest.mkdir()
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(_archive.os, 'fsync', lambda fd: synced.append(os.readlink('/proc/self/fd/%d' % fd))
                        or real_fsync(fd))
    _archive.extract(verified, str(dest))
    assert (dest / 'checkpoint' / 'a').read_bytes() == b'pages'
    for name in ('checkpoint/a', 'checkpoint/sub/b', 'checkpoint/sub', 'checkpoint', ''):
        assert str(dest / name).rstrip('/') in synced, (name, synced)


def test_a_link_in_the_staging_tree_stops_the_unpacking(tmp_path):
    (tmp_path / 'd').mkdir()
    os.symlink('/etc', str(tmp_path / 'd' / 'l'))
    with pytest.raises(_archive.ArchiveError) as error:
        _archive.check_tree(str(tmp_path))
    assert error.value.details['reason'] == 'link'


def test_an_archive_changed_between_the_two_reads_is_refused(tmp_path):
    path = str(tmp_path / 'a.tar')
    write_tar(path, [('checkpoint', tarfile.DIRTYPE, b'', ''), ('checkpoint/a', tarfile.REGTYPE, b'first', '')])
    verified = _archive.verify(path)
    write_tar(path, [('checkpoint', tarfile.DIRTYPE, b'', ''), ('checkpoint/a', tarfile.REGTYPE, b'other', '')])
    dest = tmp_path / 'dest'
    dest.mkdir()
    with pytest.raises(_archive.ArchiveError) as error:
        _archive.extract(verified, str(dest))
    assert error.value.details['reason'] == 'changed'


def test_a_newer_format_is_refused(tmp_path):
    path = str(tmp_path / 'a.tar')
    with tarfile.open(path, 'w') as tar:
        data, line = _archive.manifest_bytes(dict(format=2, members=[]))
        for name, blob in (('manifest.json', data), ('manifest.json.sha256', line)):
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    with pytest.raises(_archive.ArchiveError) as error:
        _archive.verify(path)
    assert 'has format 2; this collection reads format 1' in error.value.msg


def test_checksum_forms():
    digest = 'ab' * 32
    assert _archive.checksum_hex('sha256:' + digest.upper()) == digest
    with pytest.raises(_archive.ArchiveError):
        _archive.checksum_hex('md5:1234')
