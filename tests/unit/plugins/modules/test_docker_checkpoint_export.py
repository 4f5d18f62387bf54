"""cryo.docker.docker_checkpoint_export against a fake engine: the archive's members and manifest, the checkpoint
taken with docker_checkpoint's guarantees, idempotency, atomic writing, the destination's checks."""

import hashlib
import json
import os
import shutil

import pytest

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cryo.docker.plugins.module_utils import _archive, _export

from fake_archive_engine import IMAGE_ID, Bed, members_of
from fake_engine import failed_clearly, warnings_of


ZSTD = shutil.which('zstd')
needs_zstd = pytest.mark.skipif(ZSTD is None, reason='the zstd program is not installed (Debian package zstd)')


@pytest.fixture
def bed(tmp_path, monkeypatch):
    return Bed(tmp_path, monkeypatch)


def export(capsys, bed, **args):
    return bed.export(capsys, **args)


def leftovers(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(_archive.TMP_SUFFIX))


# -- what the archive holds -----------------------------------------------------------------------

def test_export_takes_the_checkpoint_and_writes_every_member(bed, capsys):
    web = bed.web()
    result = export(capsys, bed)
    assert result['changed'] is True and 'failed' not in result, result
    assert result['checkpoint_taken'] is True and result['method'] == 'engine'
    # docker_checkpoint's guarantees: the container stopped at the checkpoint, its restart policy held.
    assert web.status == 'exited' and web.restart_policy['Name'] == 'no'
    path = bed.path('web.tar')
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert leftovers(bed.dir) == []
    members, data = members_of(path)
    names = list(members)
    assert names[0] == 'cryo-archive.json' and names[-2:] == ['manifest.json', 'manifest.json.sha256']
    for name in ('config.dump', 'spec.dump', 'container.json', 'deleted.files', 'checkpoint', 'checkpoint/inventory.img',
                 'checkpoint/pstree.img', 'checkpoint/mm-1.img', 'checkpoint/cryo-checkpoint.json', 'rootfs-diff.tar'):
        assert name in members, name
    assert members['checkpoint'].isdir()
    assert 'image.tar' not in members and 'volumes' not in members

    manifest = json.loads(data['manifest.json'])
    assert data['manifest.json.sha256'].decode().split()[0] == hashlib.sha256(data['manifest.json']).hexdigest()
    listed = {entry['name']: entry for entry in manifest['members']}
    assert set(listed) == set(members) - {'manifest.json', 'manifest.json.sha256'}
    for name, entry in listed.items():
        if entry['type'] == 'file':
            assert entry['sha256'] == hashlib.sha256(data.get(name) or b'').hexdigest() or members[name].size >= 1 << 20
            assert entry['size'] == members[name].size
    assert manifest['source'] == dict(manifest['source'], engine='20.10.24', containerd='1.6.20~ds1',
                                      runc='1.1.5+ds1', criu='4.2.1', architecture='amd64',
                                      kernel='6.18.44-fc-v657')
    assert manifest['image'] == dict(reference='counter:1', id=IMAGE_ID, carried=False)
    assert manifest['spec_source'] == 'inspect' and result['spec_source'] == 'inspect'

    # What creates the container again: the policy recorded with the checkpoint, not the held "no".
    record = json.loads(data['container.json'])
    assert record['host_config']['RestartPolicy'] == dict(Name='always', MaximumRetryCount=0)
    assert record['host_config']['PortBindings'] == {'80/tcp': [{'HostIp': '127.0.0.1', 'HostPort': '8080'}]}
    assert record['config']['Cmd'] == ['/bin/sh', '-c', 'counter'] and record['image']['id'] == IMAGE_ID
    assert record['networks'] == [dict(name='bridge', aliases=[], ipv4_address=None, ipv6_address=None, links=None)]
    assert 'ContainerIDFile' not in record['host_config']

    # checkpointctl's files.
    config = json.loads(data['config.dump'])
    assert config == dict(config, id=web.id, name='web', rootfsImageName='counter:1', runtime='runc')
    assert config['checkpointedTime'] == json.loads(data['checkpoint/cryo-checkpoint.json'])['created']
    spec = json.loads(data['spec.dump'])
    assert spec['process']['args'] == ['/bin/sh', '-c', 'counter'] and spec['ociVersion']
    assert json.loads(data['deleted.files']) == ['/etc/motd']
    identity = json.loads(data['cryo-archive.json'])
    assert identity == dict(identity, checkpoint='move', container='web', container_id=web.id, format=1)

    # The writable layer: the added directory in one read, the modified /etc and /www only by their entries.
    assert result['file_changes'] == dict(result['file_changes'], changed=2, added=5, deleted=1)
    diff_path = os.path.join(str(bed.tmp_path), 'diff.tar')
    with open(diff_path, 'wb') as handle:
        handle.write(data['rootfs-diff.tar'])
    diff = members_of(diff_path)[0]
    assert sorted(diff) == ['tmp', 'tmp/link', 'tmp/new', 'tmp/new/f', 'www/index.html']
    assert diff['tmp/link'].issym() and diff['tmp/link'].linkname == '/etc/profile'
    reads = [call[2] for call in bed.source.called('get_archive')]
    assert reads == ['/tmp', '/www/index.html']

    assert result['archive'] == dict(result['archive'], path=path, compression='none', checkpoint='move',
                                     container='web', image_carried=False, volumes_carried=0,
                                     size=os.path.getsize(path))
    assert result['archive']['sha256'] == 'sha256:' + hashlib.sha256(open(path, 'rb').read()).hexdigest()


@needs_zstd
def test_the_archive_verifies_and_checkpointctl_layout_is_kept_with_every_compression(bed, capsys):
    bed.web()
    for compression, name in (('zstd', 'web.tar.zst'), ('gzip', 'web.tar.gz'), ('none', 'web.tar')):
        result = export(capsys, bed, compression=compression, path=bed.path(name))
        assert result['changed'] and result['archive']['compression'] == compression, result
        verified = _archive.verify(bed.path(name), ZSTD)
        assert verified.compression == compression and verified.sha256 == result['archive']['sha256']
        assert _archive.detect_compression(bed.path(name)) == compression
        assert result['checkpoint_taken'] is (compression == 'zstd')


def test_auto_compression_is_zstd_when_the_tool_is_there_else_gzip(bed, capsys, monkeypatch):
    bed.web()
    result = export(capsys, bed, compression='auto', path=bed.path('a'))
    assert result['archive']['compression'] == ('zstd' if ZSTD else 'gzip')
    real = AnsibleModule.get_bin_path
    monkeypatch.setattr(AnsibleModule, 'get_bin_path',
                        lambda self, name, *a, **k: None if name == 'zstd' else real(self, name, *a, **k))
    result = export(capsys, bed, compression='auto', path=bed.path('b'))
    assert result['archive']['compression'] == 'gzip'
    failed = export(capsys, bed, compression='zstd', path=bed.path('c'))
    failed_clearly(failed, 'compression zstd needs the zstd program')


def test_spec_dump_is_the_bundle_config_while_the_container_runs(bed, capsys):
    web = bed.web()
    bundle = os.path.join(bed.source.root, 'containerd', 'daemon', 'io.containerd.runtime.v2.task', 'moby', web.id)
    os.makedirs(bundle)
    spec = dict(ociVersion='1.0.2-dev', process=dict(args=['sh']), annotations={'recorded': 'yes'})
    with open(os.path.join(bundle, 'config.json'), 'w') as handle:
        json.dump(spec, handle)
    result = export(capsys, bed)
    assert result['spec_source'] == 'bundle %s/config.json' % bundle
    assert json.loads(members_of(bed.path('web.tar'))[1]['spec.dump']) == spec


def test_an_existing_checkpoint_is_exported_as_it_is(bed, capsys):
    web = bed.web()
    path = bed.source.take(web, 'move', restart_policy=dict(Name='always', MaximumRetryCount=0))
    web.restart_policy = dict(Name='no', MaximumRetryCount=0)
    result = export(capsys, bed)
    assert result['changed'] and result['checkpoint_taken'] is False and 'method' not in result
    assert result['checkpoint']['directory'] == path
    assert bed.source.changes() == []
    record = json.loads(members_of(bed.path('web.tar'))[1]['container.json'])
    assert record['host_config']['RestartPolicy']['Name'] == 'always'


def test_image_and_volumes_are_carried_when_asked(bed, capsys):
    web = bed.web(volumes=[dict(Type='volume', Name='data', Source='/v/data', Destination='/data', Driver='local',
                                RW=True)], binds=['data:/data'])
    web.fs.update({'/data': None, '/data/db': b'rows\n'})
    result = export(capsys, bed, include_image=True, include_volumes=True)
    assert result['image'] == dict(reference='counter:1', id=IMAGE_ID, carried=True,
                                   size=result['image']['size']) and result['image']['size'] > 0
    assert result['volumes'] == [dict(name='data', destination='/data', member='volumes/0.tar', anonymous=False)]
    members, data = members_of(bed.path('web.tar'))
    assert 'image.tar' in members and members['volumes'].isdir() and 'volumes/0.tar' in members
    assert bed.source.called('save_image') == [('save_image', IMAGE_ID)]


# -- idempotency, force, what is at path ------------------------------------------------------------

def test_a_second_run_leaves_the_archive_alone(bed, capsys):
    bed.web()
    export(capsys, bed)
    before = os.stat(bed.path('web.tar'))
    bed.source.calls = []
    again = export(capsys, bed)
    assert again['changed'] is False and again['checkpoint_taken'] is False
    assert again['archive']['size'] == before.st_size
    after = os.stat(bed.path('web.tar'))
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert bed.source.changes() == [] and bed.source.called('get_archive') == []


def test_the_archive_stays_the_copy_once_the_checkpoint_is_gone(bed, capsys):
    web = bed.web()
    export(capsys, bed)
    bed.source.delete_checkpoint(web.id, 'move')
    again = export(capsys, bed)
    assert again['changed'] is False, again


def test_force_writes_it_again_without_taking_the_checkpoint_again(bed, capsys):
    bed.web()
    first = export(capsys, bed)
    bed.source.calls = []
    again = export(capsys, bed, force=True)
    assert again['changed'] is True and again['checkpoint_taken'] is False
    assert bed.source.called('create_checkpoint') == []
    assert again['archive']['sha256'] != first['archive']['sha256'] or again['archive']['created']


def test_an_archive_of_an_older_checkpoint_of_that_name_is_written_over(bed, capsys):
    web = bed.web()
    export(capsys, bed, leave_running=True)
    bed.source.delete_checkpoint(web.id, 'move')
    bed.source.take(web, 'move', leave_running=True)
    store_created = '2026-12-02T11:00:00+00:00'
    meta_path = os.path.join(bed.source.checkpoint_path(web, 'move'), 'cryo-checkpoint.json')
    meta = json.load(open(meta_path))
    meta['created'] = store_created
    json.dump(meta, open(meta_path, 'w'))
    again = export(capsys, bed)
    assert again['changed'] is True and again['checkpoint']['created'] == store_created


def test_another_file_at_path_is_left_alone_unless_force(bed, capsys):
    bed.web()
    os.makedirs(bed.dir)
    with open(bed.path('web.tar'), 'w') as handle:
        handle.write('precious\n')
    result = export(capsys, bed)
    msg = failed_clearly(result, 'path %s holds a file that is not a checkpoint archive' % bed.path('web.tar'))
    assert 'force: true' in msg
    assert open(bed.path('web.tar')).read() == 'precious\n'
    assert bed.source.changes() == [], 'nothing may be checkpointed'
    forced = export(capsys, bed, force=True)
    assert forced['changed'] is True and _archive.read_identity(bed.path('web.tar'))['container'] == 'web'


def test_an_archive_of_another_container_is_not_replaced(bed, capsys):
    bed.web()
    other = bed.source.add('other')
    export(capsys, bed, container='other', path=bed.path('x.tar'))
    assert other.status == 'exited'
    result = export(capsys, bed, path=bed.path('x.tar'))
    failed_clearly(result, 'path %s holds an archive of checkpoint move of container other' % bed.path('x.tar'))


def test_a_symlink_at_path_is_never_followed(bed, capsys):
    web = bed.web()
    os.makedirs(bed.dir)
    victim = os.path.join(str(bed.tmp_path), 'victim')
    with open(victim, 'w') as handle:
        handle.write('keep\n')
    os.symlink(victim, bed.path('web.tar'))
    result = export(capsys, bed, force=True)
    failed_clearly(result, 'path %s is a symbolic link' % bed.path('web.tar'))
    assert open(victim).read() == 'keep\n' and os.path.islink(bed.path('web.tar'))
    assert web.running and bed.source.changes() == []


# -- the destination is checked before anything is done, and never left with a partial file ------------

def test_a_destination_that_cannot_be_written_is_refused_before_the_checkpoint(bed, capsys, monkeypatch):
    web = bed.web()
    os.makedirs(bed.dir)
    real = os.access
    monkeypatch.setattr(_archive.os, 'access', lambda path, mode: False if path == bed.dir else real(path, mode))
    result = export(capsys, bed)
    msg = failed_clearly(result, 'The archive cannot be written in %s: this user (uid' % bed.dir)
    assert 'no checkpoint taken' in msg
    assert web.running and bed.source.changes() == [] and os.listdir(bed.dir) == []


def test_a_read_only_destination_is_refused(bed, capsys, monkeypatch):
    bed.web()
    os.makedirs(bed.dir)

    class ReadOnly:
        f_flag = os.ST_RDONLY

    real = os.statvfs
    monkeypatch.setattr(_archive.os, 'statvfs', lambda path: ReadOnly() if path == bed.dir else real(path))
    result = export(capsys, bed)
    failed_clearly(result, 'The archive cannot be written in %s: its file system is mounted read-only' % bed.dir)


def test_no_room_is_refused_before_the_checkpoint(bed, capsys, monkeypatch):
    web = bed.web()
    monkeypatch.setattr(_export, 'free_space', lambda path: (path, 1024))
    result = export(capsys, bed)
    msg = failed_clearly(result, 'Not enough room for the archive in ')
    assert 'Nothing was written' in msg and result['free_bytes'] == 1024
    assert web.running and bed.source.changes() == []
    assert not os.path.exists(bed.path('web.tar'))


def test_room_is_checked_again_with_the_exact_sizes_and_nothing_partial_is_left(bed, capsys, monkeypatch):
    web = bed.web()
    bed.source.take(web, 'move')
    answers = iter([(bed.dir, 1 << 40)])  # the estimate passes, the exact sizes do not
    monkeypatch.setattr(_export, 'free_space', lambda path: next(answers, (path, 10)))
    result = export(capsys, bed)
    failed_clearly(result, 'Not enough room for the archive in %s' % bed.dir)
    assert os.listdir(bed.dir) == []


def test_a_failure_while_writing_leaves_no_partial_archive(bed, capsys, monkeypatch):
    bed.web()
    os.makedirs(bed.dir)
    with open(bed.path('web.tar'), 'wb') as handle:
        handle.write(b'an older file')
    real = _archive.Writer.add_file

    def broken(self, name, path):
        if name == 'rootfs-diff.tar':
            raise OSError(28, 'No space left on device')
        return real(self, name, path)

    monkeypatch.setattr(_archive.Writer, 'add_file', broken)
    result = export(capsys, bed, force=True)
    msg = failed_clearly(result, 'Writing the archive %s failed: [Errno 28] No space left on device.' % bed.path('web.tar'))
    assert 'No partial archive was left' in msg
    assert os.listdir(bed.dir) == ['web.tar'] and open(bed.path('web.tar'), 'rb').read() == b'an older file'


def test_an_engine_error_while_reading_the_files_leaves_nothing(bed, capsys):
    bed.web()
    bed.source.archive_error = 'Could not mount the container'
    result = export(capsys, bed)
    failed_clearly(result, 'Could not mount the container')
    assert os.listdir(bed.dir) == []


def test_temporary_files_of_an_interrupted_run_are_removed(bed, capsys):
    bed.web()
    os.makedirs(bed.dir)
    stale = os.path.join(bed.dir, '.web.tar.abc123' + _archive.TMP_SUFFIX)
    with open(stale, 'wb') as handle:
        handle.write(b'half an archive')
    other = os.path.join(bed.dir, '.other.tar.abc' + _archive.TMP_SUFFIX)
    open(other, 'w').close()
    export(capsys, bed)
    assert sorted(os.listdir(bed.dir)) == sorted(['web.tar', os.path.basename(other)])


# -- check and diff mode, bad input ------------------------------------------------------------------

def test_check_mode_takes_and_writes_nothing(bed, capsys):
    web = bed.web()
    result = export(capsys, bed, check_mode=True, diff=True)
    assert result['changed'] is True and result['checkpoint_taken'] is True
    assert result['archive'] == dict(result['archive'], path=bed.path('web.tar'), size=None, sha256=None)
    assert result['diff'] == dict(before=dict(archive=None), after=dict(
        archive=dict(path=bed.path('web.tar'), checkpoint='move', container='web', compression='none'),
        checkpoint_taken=True))
    assert web.running and bed.source.changes() == [] and not os.path.exists(bed.dir)


def test_check_mode_of_an_archive_that_is_there_is_unchanged(bed, capsys):
    bed.web()
    export(capsys, bed)
    result = export(capsys, bed, check_mode=True)
    assert result['changed'] is False


def test_a_stopped_container_without_the_checkpoint_fails_clearly(bed, capsys):
    bed.source.add('web', running=False)
    result = export(capsys, bed)
    failed_clearly(result, 'Container web is exited, and only a running container can be checkpointed')
    assert not os.path.exists(bed.dir)


def test_bad_arguments(bed, capsys):
    bed.web()
    failed_clearly(export(capsys, bed, path='relative.tar'), 'path must be an absolute path')
    failed_clearly(export(capsys, bed, checkpoint='-bad'), "Checkpoint name '-bad' is not valid")
    os.makedirs(bed.dir)
    failed_clearly(export(capsys, bed, path=bed.dir), 'path %s is a directory' % bed.dir)
    failed_clearly(export(capsys, bed, compression='gzip', compression_level=12), 'compression_level 12 is outside')
    assert not warnings_of(export(capsys, bed))
