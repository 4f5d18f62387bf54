"""cryo.docker.docker_checkpoint_import against fake engines: an archive exported on one engine creates and resumes
the container on another, verified; every bad archive and every target that cannot take it is refused before
anything is unpacked or created; a second run is unchanged and an interrupted one converges."""

import gzip
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import zlib

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _archive
from ansible_collections.cryo.docker.plugins.module_utils._containers import ARCHIVE_LABEL
from ansible_collections.cryo.docker.plugins.modules import docker_checkpoint_import

from fake_archive_engine import IMAGE_ID, Bed
from fake_engine import DOCKER_HOST, LAYOUT, failed_clearly, run_module, warnings_of


@pytest.fixture
def bed(tmp_path, monkeypatch):
    return Bed(tmp_path, monkeypatch)


def export(capsys, bed, **args):
    result = bed.export(capsys, **args)
    assert result.get('changed') and not result.get('failed'), result
    return result


def run_import(capsys, bed, **args):
    check_mode, diff = args.pop('check_mode', False), args.pop('diff', False)
    args.setdefault('docker_host', DOCKER_HOST)
    args.setdefault('path', bed.path('web.tar'))
    bed.current = bed.target
    return run_module(capsys, docker_checkpoint_import, args, check_mode=check_mode, diff=diff)


@pytest.fixture
def archive(bed, capsys):
    """The web container exported (uncompressed, to change bytes in it) from the source engine."""
    bed.web()
    return export(capsys, bed)['archive']


def nothing_created(bed):
    assert bed.target.archive_changes() == [], bed.target.archive_changes()
    assert list(bed.target.store.values()) == []
    assert not os.path.isdir(os.path.join(bed.target.root, 'cryo-import')) or \
        os.listdir(os.path.join(bed.target.root, 'cryo-import')) == []


# -- the import ---------------------------------------------------------------------------------

def test_import_creates_applies_stages_restores_and_verifies(bed, archive, capsys):
    result = run_import(capsys, bed)
    assert result['changed'] is True and 'failed' not in result, result
    assert result['action'] == 'import'
    web = bed.target._find('web')
    assert web is not None and web.running
    # Resumed: PID 1 has the checkpoint's memory layout, verified.
    assert result['restored'] is True and result['verified'] is True
    assert bed.target.pid_layout(web) == LAYOUT
    # Created from the recorded configuration, labelled with the archive's sha256.
    body = web.body
    assert body['Cmd'] == ['/bin/sh', '-c', 'counter'] and body['Image'] == 'counter:1'
    assert body['Labels'][ARCHIVE_LABEL] == archive['sha256']
    assert body['HostConfig']['PortBindings'] == {'80/tcp': [{'HostIp': '127.0.0.1', 'HostPort': '8080'}]}
    assert body['HostConfig']['RestartPolicy'] == {'Name': 'no', 'MaximumRetryCount': 0}
    assert body['Hostname'] == bed.source._find('web').id[:12]
    # Its restart policy back once it runs, the checkpoint removed after the verified restore.
    assert web.restart_policy['Name'] == 'always' and result['restart_policy']['Name'] == 'always'
    assert result['checkpoint_removed'] is True
    assert not os.path.exists(bed.target.checkpoint_path(web, 'move'))
    # The file changes written back, the deleted file whited out in its upper directory.
    assert web.fs['/www/index.html'] == b'written at run time\n' and web.fs['/tmp/new/f'] == b'x\n'
    assert web.fs['/tmp/link'] == ('symlink', '/etc/profile')
    assert bed.whiteouts == ['motd']
    motd = os.lstat(os.path.join(web.upper, 'etc', 'motd'))
    if os.geteuid() == 0:
        assert stat.S_ISCHR(motd.st_mode) and motd.st_rdev == 0
    assert stat.S_IMODE(os.stat(os.path.join(web.upper, 'etc')).st_mode) == \
        stat.S_IMODE(os.stat(os.path.join(bed.target.lower, 'etc')).st_mode)
    calls = [call[0] for call in bed.target.changes() + bed.target.archive_changes()]
    assert 'load_image' not in calls, 'the target has the image'
    order = [call[0] for call in bed.target.calls if call[0] in ('create_from_config', 'put_archive',
                                                                 'start_from_checkpoint', 'set_restart_policy',
                                                                 'delete_checkpoint')]
    assert order == ['create_from_config', 'put_archive', 'start_from_checkpoint', 'set_restart_policy',
                     'delete_checkpoint']
    assert result['container'] == dict(result['container'], name='web', id=web.id, running=True, created=True,
                                       published_ports=['127.0.0.1:8080:80/tcp'], restart_policy='always')
    assert result['steps'][0].startswith('verified and unpacked the archive')
    assert result['steps'][-1] == 'restored it from checkpoint move (verified)'
    assert os.listdir(os.path.join(bed.target.root, 'cryo-import')) == [], 'the staging directory is removed'
    assert not warnings_of(result)


def test_a_second_run_is_unchanged(bed, archive, capsys):
    run_import(capsys, bed)
    bed.target.calls = []
    again = run_import(capsys, bed)
    assert again['changed'] is False and again['action'] == 'none' and again['verified'] is True
    assert bed.target.changes() == [] and bed.target.archive_changes() == []


def test_check_mode_shows_the_container_it_would_create(bed, archive, capsys):
    result = run_import(capsys, bed, check_mode=True, diff=True)
    assert result['changed'] is True
    assert result['container'] == dict(result['container'], name='web', id=None, created=False, image='counter:1',
                                       command=['/bin/sh', '-c', 'counter'], restart_policy='always',
                                       published_ports=['127.0.0.1:8080:80/tcp'], networks=['bridge'])
    assert result['steps'] == ['would create container web from counter:1', 'would restore it from checkpoint move']
    assert result['diff']['before'] == dict(container=None)
    assert result['diff']['after']['container']['name'] == 'web'
    nothing_created(bed)


def test_another_name_and_other_ports_for_a_clone(bed, archive, capsys):
    first = run_import(capsys, bed)
    clone = run_import(capsys, bed, container='web-2', published_ports=[])
    assert clone['changed'] and clone['verified'], clone
    web2 = bed.target._find('web-2')
    assert web2.body['HostConfig']['PortBindings'] == {} and clone['container']['published_ports'] == []
    assert first['container']['id'] != clone['container']['id']
    third = run_import(capsys, bed, container='web-3', published_ports=['127.0.0.1:9090:80'])
    assert bed.target._find('web-3').body['HostConfig']['PortBindings'] == {
        '80/tcp': [{'HostIp': '127.0.0.1', 'HostPort': '9090'}]}
    assert third['container']['published_ports'] == ['127.0.0.1:9090:80/tcp']


def test_clones_next_to_each_other_get_free_host_ports_or_none(bed, archive, capsys):
    first = run_import(capsys, bed)
    assert first['container']['bound_ports'] == ['127.0.0.1:8080:80/tcp']
    ports = set()
    for index in (2, 3, 4):
        clone = run_import(capsys, bed, container='web-%d' % index, publish='remap')
        assert clone['changed'] and clone['restored'] and clone['verified'], clone
        # The recorded container port and host address, the host port left to the engine.
        assert bed.target._find('web-%d' % index).body['HostConfig']['PortBindings'] == {
            '80/tcp': [{'HostIp': '127.0.0.1', 'HostPort': ''}]}
        assert clone['container']['published_ports'] == ['127.0.0.1::80/tcp']
        [bound] = clone['container']['bound_ports']
        assert bound.startswith('127.0.0.1:') and bound.endswith(':80/tcp') and bound != '127.0.0.1:8080:80/tcp'
        ports.add(bound)
    assert len(ports) == 3, 'each clone answers on a port of its own'
    dropped = run_import(capsys, bed, container='web-5', publish='drop')
    assert dropped['container']['published_ports'] == [] and dropped['container']['bound_ports'] == []
    assert bed.target._find('web-5').body['HostConfig']['PortBindings'] == {}
    # A second run of a clone is unchanged, like any import.
    assert run_import(capsys, bed, container='web-2', publish='remap')['changed'] is False


def test_clone_check_mode_shows_the_ports_it_would_ask_for(bed, archive, capsys):
    result = run_import(capsys, bed, container='web-2', publish='remap', check_mode=True)
    assert result['changed'] and result['container']['published_ports'] == ['127.0.0.1::80/tcp']
    assert result['container']['bound_ports'] == []
    nothing_created(bed)


def test_publish_and_published_ports_are_one_choice(bed, archive, capsys):
    result = run_import(capsys, bed, publish='drop', published_ports=['8081:80'])
    assert result.get('failed') and 'mutually exclusive' in result['msg'] and 'publish' in result['msg'], result
    nothing_created(bed)


def test_restore_false_creates_and_stages_only(bed, archive, capsys):
    result = run_import(capsys, bed, restore=False)
    web = bed.target._find('web')
    assert result['changed'] and result['restored'] is False and not web.running
    assert os.path.isfile(os.path.join(bed.target.checkpoint_path(web, 'move'), 'inventory.img'))
    meta = json.load(open(os.path.join(bed.target.checkpoint_path(web, 'move'), 'cryo-checkpoint.json')))
    assert meta['container_id'] == web.id and meta['restart_policy']['Name'] == 'always'
    assert meta['imported_from']['sha256'] == archive['sha256']
    again = run_import(capsys, bed, restore=False)
    assert again['changed'] is False


def test_keep_checkpoint_keeps_it_in_the_container(bed, archive, capsys):
    result = run_import(capsys, bed, keep_checkpoint=True)
    web = bed.target._find('web')
    assert result['checkpoint_removed'] is False
    assert bed.target.list_checkpoints(web.id) == ['move']


def test_the_image_is_loaded_when_missing_and_carried(bed, capsys):
    bed.web()
    export(capsys, bed, include_image=True)
    del bed.target.images[IMAGE_ID]
    del bed.target.refs['counter:1']
    result = run_import(capsys, bed)
    assert result['image'] == dict(reference='counter:1', id=IMAGE_ID, loaded=True, would_load=True)
    assert [call[0] for call in bed.target.archive_changes()][:3] == ['load_image', 'tag_image', 'create_from_config']
    assert bed.target.refs['counter:1'] == IMAGE_ID
    assert result['verified'] is True


def test_a_tag_that_names_another_image_here_is_left_alone(bed, capsys):
    bed.web()
    export(capsys, bed, include_image=True)
    del bed.target.images[IMAGE_ID]
    other = 'sha256:' + 'e' * 64
    bed.target.images[other] = dict(Id=other, RootFS=dict(Layers=['sha256:' + 'f' * 64]))
    bed.target.refs['counter:1'] = other
    result = run_import(capsys, bed)
    assert result['changed'] and bed.target.refs['counter:1'] == other
    assert bed.target._find('web').body['Image'] == IMAGE_ID
    assert not bed.target.called('tag_image')


def test_an_image_with_the_same_layers_under_the_reference_is_the_same_image(bed, archive, capsys):
    image = bed.target.images.pop(IMAGE_ID)
    image['Id'] = 'sha256:' + 'c' * 64
    bed.target.images[image['Id']] = image
    bed.target.refs['counter:1'] = image['Id']
    result = run_import(capsys, bed)
    assert result['changed'] and result['image']['loaded'] is False
    assert bed.target._find('web').body['Image'] == 'counter:1'


def test_volumes_are_created_and_filled(bed, capsys):
    web = bed.web(volumes=[dict(Type='volume', Name='data', Source='/v/data', Destination='/data', Driver='local',
                                RW=True)], binds=['data:/data'])
    web.fs.update({'/data': None, '/data/db': b'rows\n'})
    export(capsys, bed, include_volumes=True)
    result = run_import(capsys, bed)
    assert result['volumes'] == [dict(name='data', destination='/data', anonymous=False, create=True)]
    assert bed.target.volumes['data']['Labels'] == {ARCHIVE_LABEL: result['archive']['sha256']}
    assert bed.target._find('web').fs['/data/db'] == b'rows\n'
    assert ('put_archive', bed.target._find('web').id, '/') in bed.target.calls


def test_a_volume_that_is_there_already_is_refused(bed, capsys):
    web = bed.web(volumes=[dict(Type='volume', Name='data', Source='/v', Destination='/data', Driver='local',
                                RW=True)], binds=['data:/data'])
    web.fs.update({'/data': None})
    export(capsys, bed, include_volumes=True)
    bed.target.volumes['data'] = dict(Name='data', Labels={})
    result = run_import(capsys, bed)
    failed_clearly(result, 'Volume data exists on this engine and was not created by an import of this archive')
    nothing_created(bed)


# -- an interrupted import converges; what is there already ----------------------------------------

def test_an_import_that_stopped_before_its_restore_is_done_again(bed, archive, capsys):
    result = run_import(capsys, bed, restore=False)
    first = bed.target._find('web').id
    # The controller died before the restore: run again with restore.
    again = run_import(capsys, bed)
    assert again['changed'] and again['action'] == 'replace' and again['verified'] is True, again
    assert bed.target._find('web').id != first and result['container']['id'] == first
    assert again['steps'][0] == 'removed the container left by an earlier import (%s)' % first[:12]


def test_a_failed_restore_is_tried_again_on_the_next_run(bed, archive, capsys):
    bed.target.restore_error = 'criu'
    failed = run_import(capsys, bed)
    failed_clearly(failed, 'Restore of container web from checkpoint move failed')
    web = bed.target._find('web')
    assert web is not None and not web.running, 'the container stays for the next run'
    bed.target.restore_error = None
    again = run_import(capsys, bed)
    assert again['changed'] and again['action'] == 'replace' and again['verified'] is True


def test_a_staging_directory_left_by_an_interrupted_run_is_removed(bed, archive, capsys):
    staging = os.path.join(bed.target.root, 'cryo-import')
    os.makedirs(staging)
    stale = os.path.join(staging, '%s-web.abcdef' % archive['sha256'][7:23])
    os.makedirs(os.path.join(stale, 'checkpoint'))
    run_import(capsys, bed)
    assert os.listdir(staging) == []


def test_an_import_cut_after_its_restore_is_finished(bed, archive, capsys, monkeypatch):
    # Killed after the engine resumed the container, before the recorded policy was put back.
    class Killed(BaseException):
        pass

    def killed(*_args):
        raise Killed()
    kept = type(bed.target).set_restart_policy
    monkeypatch.setattr(type(bed.target), 'set_restart_policy', killed)
    with pytest.raises(Killed):
        run_import(capsys, bed)
    monkeypatch.setattr(type(bed.target), 'set_restart_policy', kept)
    web = bed.target._find('web')
    pid = web.pid
    assert web.running and web.restart_policy['Name'] == 'no'
    assert os.path.isdir(bed.target.checkpoint_path(web, 'move')), 'the cut import left its checkpoint'
    bed.target.calls = []
    predicted = run_import(capsys, bed, check_mode=True, diff=True)
    assert predicted.get('changed') and predicted['action'] == 'finish' and bed.target.changes() == []
    assert predicted['steps'] == ['would finish the restore that was cut: put back restart policy always']
    assert predicted['diff'] == dict(before=dict(restart_policy='no'), after=dict(restart_policy='always'))
    again = run_import(capsys, bed)
    assert again['changed'] and again['action'] == 'finish' and again['verified'] is True, again
    assert again['restored'] is False and again['restart_policy_put_back'] is True
    assert again['checkpoint_removed'] is True and not os.path.exists(bed.target.checkpoint_path(web, 'move'))
    assert again['container']['created'] is False and again['container']['id'] == web.id
    assert bed.target.changes() == [('set_restart_policy', web.id, 'always', 0),
                                    ('delete_checkpoint', web.id, 'move', None)] and web.pid == pid
    assert again['steps'] == ['finished the restore that was cut (verified): put back restart policy always, '
                              'removed checkpoint move']
    third = run_import(capsys, bed)
    assert third['changed'] is False and third['action'] == 'none'


def test_a_container_that_ran_since_is_not_replaced_unless_force(bed, archive, capsys):
    run_import(capsys, bed)
    web = bed.target._find('web')
    bed.target.stop(web.id)
    result = run_import(capsys, bed)
    failed_clearly(result, 'Container web was imported from this archive earlier, has run since, and is now exited')
    assert bed.target._find('web').id == web.id
    forced = run_import(capsys, bed, force=True)
    assert forced['changed'] and forced['action'] == 'replace' and forced['verified'] is True


def test_a_target_name_already_taken_is_refused(bed, archive, capsys):
    other = bed.target.add('web', running=False)
    result = run_import(capsys, bed)
    msg = failed_clearly(result, 'A container named web already exists on the engine at %s, and it was not created '
                                 'by an import of this archive (it has no cryo.docker.archive label)' % DOCKER_HOST)
    assert 'Nothing was created' in msg and result['reason'] == 'name_taken'
    assert bed.target._find('web') is other and bed.target.archive_changes() == []


def test_a_container_of_another_archive_under_that_name_is_refused(bed, archive, capsys):
    bed.target.add('web', running=False, labels={ARCHIVE_LABEL: 'sha256:' + '0' * 64})
    result = run_import(capsys, bed)
    failed_clearly(result, 'A container named web already exists')
    assert 'its label cryo.docker.archive is sha256:000' in result['msg']


def test_running_afresh_is_said_and_left_alone(bed, archive, capsys):
    run_import(capsys, bed)
    web = bed.target._find('web')
    bed.target.start_fresh(web)
    again = run_import(capsys, bed)
    assert again['changed'] is False and again['verified'] is False
    [warning] = warnings_of(again)
    assert warning.startswith('Container web (from this archive) is running, but not from its checkpoint')


# -- bad archives: refused before anything is unpacked or created ------------------------------------

def tar_members(path):
    with tarfile.open(path) as tar:
        return [(member.name, member.offset_data, member.size, member.isreg()) for member in tar.getmembers()]


def test_a_truncated_archive_is_refused(bed, archive, capsys):
    data = open(archive['path'], 'rb').read()
    for cut in (len(data) // 2, len(data) - 700, 100):
        with open(archive['path'], 'wb') as handle:
            handle.write(data[:cut])
        result = run_import(capsys, bed)
        msg = failed_clearly(result, 'The archive %s ' % archive['path'])
        assert ('truncated' in msg or 'lacks its member' in msg), msg
        nothing_created(bed)


def test_one_byte_changed_in_any_member_is_refused(bed, archive, capsys):
    original = open(archive['path'], 'rb').read()
    checked = 0
    for name, offset, size, regular in tar_members(archive['path']):
        if not regular or size == 0:
            continue
        damaged = bytearray(original)
        damaged[offset + size // 2] ^= 0x01
        with open(archive['path'], 'wb') as handle:
            handle.write(bytes(damaged))
        result = run_import(capsys, bed)
        assert result.get('failed') is True, name
        if name == 'manifest.json':
            assert result['reason'] == 'manifest_damaged', result['msg']
        elif name == 'manifest.json.sha256':
            assert result['reason'] == 'manifest_damaged', result['msg']
        else:
            assert result['reason'] == 'member_damaged' and result['member'] == name, (name, result['msg'])
            assert result['msg'].startswith('Member %s of the archive %s is damaged' % (name, archive['path']))
        nothing_created(bed)
        checked += 1
    assert checked >= 12


def decompressed(data, compression):
    """The tar stream inside, or None when it does not decompress."""
    if compression == 'gzip':
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return None
    proc = subprocess.run(['zstd', '-q', '-d', '-c'], input=data, capture_output=True, check=False)
    return proc.stdout if proc.returncode == 0 else None


def content_changing_flips(original, compression):
    """Three offsets (a third in, the middle, the trailer) whose flipped bit changes what the archive holds or
    breaks its stream. A flip in a deflate block's code lengths for a symbol the block never uses leaves the
    decompressed tar byte for byte the same (and its CRC right): such an archive holds exactly what was exported, and
    importing it is right, so those offsets are passed over."""
    plain = decompressed(original, compression)
    found = []
    for start in (len(original) // 3, len(original) // 2, len(original) - 6):
        for where in range(start, min(start + 64, len(original))):
            damaged = bytearray(original)
            damaged[where] ^= 0x10
            if decompressed(bytes(damaged), compression) != plain:
                found.append(where)
                break
    assert len(found) == 3, found
    return found


@pytest.mark.parametrize('compression', [
    pytest.param('zstd', marks=pytest.mark.skipif(shutil.which('zstd') is None, reason='the zstd program is not '
                                                  'installed (Debian package zstd)')),
    'gzip'])
def test_one_byte_changed_in_a_compressed_archive_is_refused(bed, capsys, compression):
    bed.web()
    path = bed.path('web.' + compression)
    export(capsys, bed, compression=compression, path=path)
    original = open(path, 'rb').read()
    for where in content_changing_flips(original, compression):
        damaged = bytearray(original)
        damaged[where] ^= 0x10
        with open(path, 'wb') as handle:
            handle.write(bytes(damaged))
        result = run_import(capsys, bed, path=path)
        assert result.get('failed') is True and 'Traceback' not in result['msg'], where
        assert result['reason'] in ('damaged', 'member_damaged', 'manifest_damaged'), result['msg']
        nothing_created(bed)


def craft(path, members, manifest_extra=None):
    """An archive of (TarInfo, bytes) members with a manifest that lists every member correctly."""
    listed = []
    with tarfile.open(path, 'w') as tar:
        for info, data in members:
            if info.isreg():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                listed.append(dict(name=info.name, type='file', size=len(data),
                                   sha256=_archive.sha256_hex(data)))
            else:
                tar.addfile(info)
                listed.append(dict(name=info.name, type=_archive.member_kind(info)))
        manifest = dict(format=1, members=listed, **(manifest_extra or {}))
        data, line = _archive.manifest_bytes(manifest)
        for name, blob in ((_archive.MANIFEST, data), (_archive.MANIFEST_DIGEST, line)):
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def member(name, kind=tarfile.REGTYPE, linkname=''):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize('bad, reason, words', [
    ((member('../x'), b'escape'), 'parent_path', "its member '../x' has \"..\" in its path"),
    ((member('checkpoint/../../x'), b'escape'), 'parent_path', 'has ".." in its path'),
    ((member('/etc/x'), b'root'), 'absolute_path', "its member '/etc/x' has an absolute path"),
    ((member('checkpoint/l', tarfile.SYMTYPE, '/etc/passwd'), b''), 'link',
     "its member 'checkpoint/l' is a symbolic link to '/etc/passwd'; the collection never writes links"),
    ((member('checkpoint/l', tarfile.SYMTYPE, '../../etc/passwd'), b''), 'link', 'is a symbolic link to'),
    ((member('checkpoint/l', tarfile.SYMTYPE, 'a'), b''), 'link', "is a symbolic link to 'a'"),
    ((member('checkpoint/h', tarfile.LNKTYPE, '/etc/shadow'), b''), 'link', 'is a hard link to'),
    ((member('checkpoint/h', tarfile.LNKTYPE, 'checkpoint'), b''), 'link', "is a hard link to 'checkpoint'"),
    ((member('checkpoint/dev', tarfile.CHRTYPE), b''), 'device', 'is a device node (character)'),
    ((member('checkpoint/blk', tarfile.BLKTYPE), b''), 'device', 'is a device node (block)'),
    ((member('checkpoint/fifo', tarfile.FIFOTYPE), b''), 'fifo', 'is a FIFO'),
])
def test_unsafe_members_are_refused(bed, capsys, tmp_path, bad, reason, words):
    path = str(tmp_path / 'bad.tar')
    craft(path, [(member('cryo-archive.json'), b'{}'), (member('checkpoint', tarfile.DIRTYPE), b''), bad])
    result = run_import(capsys, bed, path=path)
    msg = failed_clearly(result, 'The archive %s was refused before anything was unpacked: ' % path)
    assert words in msg and result['reason'] == reason
    assert 'Nothing was created' in msg
    nothing_created(bed)


def test_a_member_the_manifest_does_not_list_is_refused(bed, archive, capsys, tmp_path):
    path = str(tmp_path / 'extra.tar')
    with tarfile.open(archive['path']) as source, tarfile.open(path, 'w') as out:
        for item in source.getmembers():
            if item.name == 'manifest.json':
                extra = member('checkpoint/extra.img')
                extra.size = 4
                out.addfile(extra, io.BytesIO(b'evil'))
            out.addfile(item, source.extractfile(item) if item.isreg() else None)
    result = run_import(capsys, bed, path=path)
    failed_clearly(result, 'The archive %s holds members its manifest does not list (checkpoint/extra.img)' % path)
    nothing_created(bed)


def test_a_duplicate_member_is_refused(bed, capsys, tmp_path):
    path = str(tmp_path / 'dup.tar')
    craft(path, [(member('checkpoint/a'), b'good'), (member('checkpoint/a'), b'evil')])
    result = run_import(capsys, bed, path=path)
    failed_clearly(result, 'The archive %s was refused before anything was unpacked: its member \'checkpoint/a\' '
                           'appears twice' % path)


def test_a_file_that_is_no_archive_is_refused(bed, capsys, tmp_path):
    path = str(tmp_path / 'notes.txt')
    with open(path, 'w') as handle:
        handle.write('not a tar\n' * 100)
    failed_clearly(run_import(capsys, bed, path=path), 'The archive %s is truncated or damaged' % path)
    failed_clearly(run_import(capsys, bed, path=str(tmp_path / 'missing.tar')), 'The archive %s does not exist'
                   % (tmp_path / 'missing.tar'))


def test_a_wrong_checksum_is_refused(bed, archive, capsys):
    result = run_import(capsys, bed, checksum='sha256:' + 'a' * 64)
    failed_clearly(result, 'The archive %s has the sha256 %s, not sha256:%s' % (
        archive['path'], archive['sha256'], 'a' * 64))
    nothing_created(bed)
    assert run_import(capsys, bed, checksum=archive['sha256'])['changed'] is True


@pytest.mark.parametrize('attribute, value, message, word, reason', [
    ('arch', 'arm64', 'The archive {path} was written on a amd64 host (x86_64), and this engine runs on arm64',
     'CPU architecture', 'architecture'),
    ('version_text', '28.5.2', 'The container in {path} cannot be restored on this engine, so it was not created.',
     'network holder', 'unrestorable'),
], ids=['another architecture', 'a network mode this engine cannot restore'])
def test_an_engine_that_cannot_take_the_archive_is_refused(bed, archive, capsys, attribute, value, message, word,
                                                           reason):
    setattr(bed.target, attribute, value)
    result = run_import(capsys, bed)
    msg = failed_clearly(result, message.format(path=archive['path']))
    assert word in msg and result['reason'] == reason
    nothing_created(bed)


def test_a_criu_older_than_the_one_that_dumped_it_is_refused(bed, archive, capsys):
    bed.criu = '4.1.1'
    result = run_import(capsys, bed)
    failed_clearly(result, 'The checkpoint in %s was dumped by CRIU 4.2.1, and this engine runs CRIU 4.1.1'
                   % archive['path'])
    nothing_created(bed)
    bed.criu = None


def test_an_image_missing_and_not_carried_is_refused(bed, archive, capsys):
    del bed.target.images[IMAGE_ID]
    del bed.target.refs['counter:1']
    result = run_import(capsys, bed)
    msg = failed_clearly(result, 'Image counter:1 (%s) is not on this engine, and the archive %s does not carry it'
                         % (IMAGE_ID, archive['path']))
    assert 'include_image: true' in msg and result['reason'] == 'image_missing'
    nothing_created(bed)


def test_a_missing_network_is_refused(bed, capsys):
    bed.web(networks={'backend': dict(IPAMConfig=dict(IPv4Address='10.9.0.5'))})
    export(capsys, bed)
    result = run_import(capsys, bed)
    failed_clearly(result, 'Network backend, which the container in %s is on, does not exist on this engine'
                   % bed.path('web.tar'))
    bed.target.networks['backend'] = {}
    ok = run_import(capsys, bed)
    assert ok['changed'] and bed.target._find('web').body['NetworkingConfig'] == {
        'EndpointsConfig': {'backend': {'IPAMConfig': {'IPv4Address': '10.9.0.5'}}}}


def test_deleted_files_on_another_storage_driver(bed, archive, capsys):
    bed.target.driver = 'btrfs'
    result = run_import(capsys, bed)
    msg = failed_clearly(result, 'The archive %s records 1 files the container deleted from its image, and this '
                                 'engine\'s storage driver is btrfs' % archive['path'])
    assert 'deleted_files: ignore' in msg
    nothing_created(bed)
    ignored = run_import(capsys, bed, deleted_files='ignore')
    assert ignored['changed'] and ignored['verified']
    [warning] = warnings_of(ignored)
    assert warning.startswith('1 files the container deleted from its image are present again') and '/etc/motd' in warning
    assert bed.whiteouts == []


def test_no_room_to_unpack_is_refused_as_the_archive_is_read(bed, archive, capsys, monkeypatch):
    from ansible_collections.cryo.docker.plugins.module_utils import _import
    monkeypatch.setattr(_import, 'free_space', lambda path: (path, 4096))
    result = run_import(capsys, bed)
    msg = failed_clearly(result, 'The archive %s was refused as it was read, before anything was unpacked: its member '
                         % archive['path'])
    assert result['reason'] == 'too_large' and result['free_bytes'] == 0 and 'Free some space' in msg
    nothing_created(bed)


def test_room_for_the_archive_but_not_for_what_the_engine_writes_is_refused(bed, archive, capsys, monkeypatch):
    from ansible_collections.cryo.docker.plugins.module_utils import _import
    answers = iter([(None, 64 << 20 | 1 << 20)])  # the read's room: 1 MiB over the margin, then 4 KiB
    monkeypatch.setattr(_import, 'free_space', lambda path: next(answers, (path, 4096)))
    result = run_import(capsys, bed)
    failed_clearly(result, 'Not enough room for unpacking the archive and what the engine writes in ')
    nothing_created(bed)


def test_a_failure_after_the_creation_removes_the_container(bed, archive, capsys, monkeypatch):
    def refuse(container, path, data):
        raise _archive.ModuleError('Cannot write files into container web at /: disk full')
    monkeypatch.setattr(bed.target, 'put_archive', refuse)
    result = run_import(capsys, bed)
    failed_clearly(result, 'Cannot write files into container web at /: disk full')
    assert bed.target._find('web') is None
    assert os.listdir(os.path.join(bed.target.root, 'cryo-import')) == []


def test_bad_ports_are_refused_before_anything(bed, archive, capsys):
    failed_clearly(run_import(capsys, bed, published_ports=['80:x']), "published_ports entry '80:x' is not of the form")
