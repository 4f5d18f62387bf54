"""cryo.docker.docker_checkpoint_info against a fake engine: what it lists, where from."""

import os
import shutil
import tarfile

from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.modules import docker_checkpoint_info

from fake_engine import DOCKER_HOST, failed_clearly, run_module


def run(capsys, **args):
    args.setdefault('docker_host', DOCKER_HOST)
    return run_module(capsys, docker_checkpoint_info, args, check_mode=args.pop('check_mode', False))


def names(result):
    return [(entry['container'], entry['name']) for entry in result['checkpoints']]


def test_one_container(engine, capsys):
    cr = engine.add('cr', restart_policy='always')
    other = engine.add('other')
    engine.take(cr, 'cp-b', leave_running=True)
    engine.take(cr, 'cp-a')
    engine.take(other, 'x1', leave_running=True)
    result = run(capsys, container='cr')
    assert result['changed'] is False and names(result) == [('cr', 'cp-a'), ('cr', 'cp-b')]
    first = result['checkpoints'][0]
    assert first['container_id'] == cr.id and first['directory'] == engine.checkpoint_path(cr, 'cp-a')
    assert first['created'] == '2026-12-02T10:05:00+00:00' and first['size'] > 500
    assert first['leave_running'] is False and first['restart_policy'] == dict(Name='always', MaximumRetryCount=0)
    assert result['checkpoints'][1]['leave_running'] is True
    assert engine.changes() == []


def test_all_containers(engine, capsys):
    zed, cr = engine.add('zed'), engine.add('cr')
    engine.add('bare')
    engine.take(zed, 'z1', metadata=False)  # taken by plain docker: only what the files say
    engine.take(cr, 'cp1')
    result = run(capsys, check_mode=True)
    assert names(result) == [('cr', 'cp1'), ('zed', 'z1')]
    plain = result['checkpoints'][1]
    assert plain['container_id'] == zed.id and plain['leave_running'] is None and plain['restart_policy'] is None
    assert plain['created'] is not None  # the directory's time
    assert engine.called('containers') == [('containers', True)]


def test_checkpoint_dir_alone_reads_only_the_directory(engine, capsys, tmp_path):
    cr = engine.add('cr')
    custom = str(tmp_path / 'srv')
    engine.take(cr, 'move', checkpoint_dir=custom, leave_running=True)
    os.makedirs(os.path.join(custom, 'not-a-checkpoint'))
    engine.calls = []
    result = run(capsys, checkpoint_dir=custom)
    assert names(result) == [('cr', 'move')]
    assert result['checkpoints'][0]['container_id'] == cr.id
    assert result['checkpoints'][0]['directory'] == os.path.join(custom, 'move')
    assert [call[0] for call in engine.calls] == ['version']  # require_experimental, nothing else


def test_checkpoint_dir_alone_without_metadata(engine, capsys, tmp_path):
    cr = engine.add('cr')
    custom = str(tmp_path / 'srv')
    engine.take(cr, 'bare', checkpoint_dir=custom, metadata=False)
    entry = run(capsys, checkpoint_dir=custom)['checkpoints'][0]
    assert entry['name'] == 'bare' and entry['container'] is None and entry['container_id'] is None


def test_checkpoint_dir_with_container(engine, capsys, tmp_path):
    cr = engine.add('cr')
    custom = str(tmp_path / 'srv')
    engine.take(cr, 'bare', checkpoint_dir=custom, metadata=False)
    result = run(capsys, container='cr', checkpoint_dir=custom)
    [entry] = result['checkpoints']
    assert (entry['container'], entry['container_id'], entry['name']) == ('cr', cr.id, 'bare')
    assert engine.called('list_checkpoints') == []


def test_missing_checkpoint_dir_lists_nothing(engine, capsys, tmp_path):
    assert run(capsys, checkpoint_dir=str(tmp_path / 'none'))['checkpoints'] == []


def test_unknown_container(engine, capsys):
    result = run(capsys, container='nope')
    failed_clearly(result, 'Container nope does not exist on the Docker Engine at %s.' % DOCKER_HOST)


def test_relative_checkpoint_dir(engine, capsys):
    failed_clearly(run(capsys, checkpoint_dir='srv'), "checkpoint_dir must be an absolute path, got 'srv'.")
    assert engine.calls == []


def test_engine_not_experimental(engine, capsys):
    engine.experimental = False
    failed_clearly(run(capsys), 'The Docker Engine at %s (version 20.10.24) is not in experimental mode' % DOCKER_HOST)


# -- details: what is inside ------------------------------------------------------------------

RECORDED = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'checkpoints')
DETAIL_KEYS = ('processes', 'files', 'sockets', 'stats', 'details_notes')


def recorded(name, path, metadata=True):
    """A checkpoint recorded on the test bed (tests/unit/fixtures/checkpoints/NAME.tar.xz) unpacked at path;
    without metadata, as plain docker would have left it."""
    shutil.rmtree(path, ignore_errors=True)
    with tarfile.open(os.path.join(RECORDED, name + '.tar.xz')) as archive:
        if hasattr(tarfile, 'data_filter'):
            archive.extractall(path, filter='data')
        else:
            archive.extractall(path)  # nosec - the fixtures hold regular files only
    if not metadata:
        os.unlink(os.path.join(path, store.METADATA_FILE))
    return path


def test_no_details_unless_asked(engine, capsys):
    cr = engine.add('cr')
    engine.take(cr, 'cp1', leave_running=True)
    [entry] = run(capsys, container='cr')['checkpoints']
    assert not any(key in entry for key in DETAIL_KEYS)


def test_details_of_a_checkpoint_dir(engine, capsys, tmp_path):
    custom = str(tmp_path / 'srv')
    recorded('httpd', os.path.join(custom, 'snapshot-1'))
    result = run(capsys, checkpoint_dir=custom, details=True, check_mode=True)
    [entry] = result['checkpoints']
    assert result['changed'] is False and entry['container'] == 'cryo-rec-httpd' and entry['details_notes'] == []
    [httpd] = entry['processes']
    assert (httpd['pid'], httpd['command'], httpd['command_line']) == (1, 'httpd', ['httpd', '-f', '-p', '8080', '-h', '/www'])
    assert httpd['memory'] == dict(mapped=2322432, written=61440)
    [sock] = entry['sockets']
    assert (sock['state'], sock['family'], sock['local_address'], sock['local_port']) == ('listen', 'inet6', '::', 8080)
    assert [f['path'] for f in entry['files']] == ['/dev/null', 'pipe:[1255925]', 'pipe:[1255926]', 'socket:[1255971]']
    assert entry['stats']['frozen_time'] == 128985
    assert engine.changes() == []


def test_details_of_the_engines_checkpoints(engine, capsys):
    cr, other = engine.add('cr'), engine.add('other')
    recorded('counter', engine.take(cr, 'cp1'), metadata=False)
    engine.take(other, 'x1', leave_running=True)  # the fake engine's own images: not CRIU's
    result = run(capsys, details=True)
    counter, fake = result['checkpoints']
    assert (counter['container'], counter['name'], counter['details_notes']) == ('cr', 'cp1', [])
    assert [(p['pid'], p['ppid'], p['command']) for p in counter['processes']] == [(1, 0, 'sh'), (17, 1, 'sleep')]
    assert counter['stats']['pages_written'] == 34
    # a checkpoint that cannot be decoded is still listed, with a sentence instead of a traceback
    assert (fake['container'], fake['processes'], fake['files'], fake['sockets'], fake['stats']) == \
        ('other', None, None, None, None)
    [note] = fake['details_notes']
    assert note.startswith('the process tree cannot be read: pstree.img is not a CRIU pstree image (magic 0x')
    assert note.endswith(', expected 0x50273030)')
    assert result.get('failed') is not True and engine.changes() == []


def test_details_of_a_damaged_checkpoint(engine, capsys):
    cr = engine.add('cr')
    path = recorded('files', engine.take(cr, 'cp1'))
    with open(os.path.join(path, 'files.img'), 'r+b') as handle:
        handle.truncate(64)
    os.unlink(os.path.join(path, 'pages-2.img'))
    [entry] = run(capsys, container='cr', details=True)['checkpoints']
    assert entry['files'] is None and entry['sockets'] is None
    assert [p['command'] for p in entry['processes']] == ['sh', 'sleep']
    assert entry['processes'][1]['command_line'] is None
    assert entry['details_notes'][0].startswith('open files and sockets unknown: files.img is truncated')
    assert entry['details_notes'][1].startswith('process 13 (sleep): command line unknown: cannot read pages-2.img')


def test_details_when_the_files_are_elsewhere(engine, capsys, tmp_path):
    cr = engine.add('cr')
    engine.take(cr, 'cp1', leave_running=True)
    engine.reported_root = str(tmp_path / 'remote-root')  # an engine on another host
    [entry] = run(capsys, container='cr', details=True)['checkpoints']
    assert entry['processes'] is None and entry['size'] is None
    assert entry['details_notes'] == ['the checkpoint directory %s is not on this host: run the module on the '
                                      'engine\'s host' % entry['directory']]


def test_ago_numbers_each_container_s_checkpoints_newest_first_and_containers_sums_their_disk(engine, capsys):
    cr, other = engine.add('cr'), engine.add('other')
    for name, minute in (('b-first', 1), ('a-second', 2), ('c-third', 3)):
        path = engine.take(cr, name, leave_running=True)
        store.write_metadata(path, dict(store.read_metadata(path), created='2026-12-07T10:%02d:00+00:00' % minute))
    # two taken within one second: the record written last is the newer
    engine.take(other, 'o1', leave_running=True)
    engine.take(other, 'o2', leave_running=True)
    result = run(capsys)
    ago = {(entry['container'], entry['name']): entry['ago'] for entry in result['checkpoints']}
    assert ago == {('cr', 'c-third'): 1, ('cr', 'a-second'): 2, ('cr', 'b-first'): 3, ('other', 'o2'): 1,
                   ('other', 'o1'): 2}
    sizes = {}
    for entry in result['checkpoints']:
        sizes[entry['container']] = sizes.get(entry['container'], 0) + entry['size']
    assert result['containers'] == [
        dict(container='cr', container_id=cr.id, checkpoints=3, size=sizes['cr'], newest='c-third', oldest='b-first'),
        dict(container='other', container_id=other.id, checkpoints=2, size=sizes['other'], newest='o2', oldest='o1')]
    assert run(capsys, container='cr')['containers'][0]['checkpoints'] == 3
