"""Decoding CRIU's images, on checkpoints recorded on this project's test bed (CRIU 4.2.1, kernel 6.18).

tests/unit/fixtures/checkpoints/README.md says how each was recorded. Each NAME.tar.xz is a whole
checkpoint directory as docker_checkpoint wrote it; NAME.crit.txt is what CRIU's own crit said of
it (ps, fds, mems), and the decoder must agree with it.
"""

import os
import re
import shutil
import struct
import tarfile

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _images

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'checkpoints')
PAGE = 4096


def unpack(name, dest):
    """The recorded checkpoint NAME unpacked into dest/NAME; its path."""
    target = os.path.join(str(dest), name)
    with tarfile.open(os.path.join(FIXTURES, name + '.tar.xz')) as archive:
        if hasattr(tarfile, 'data_filter'):
            archive.extractall(target, filter='data')
        else:  # Python without extraction filters; the fixtures hold regular files only
            archive.extractall(target)  # nosec
    return target


@pytest.fixture
def checkpoint(tmp_path):
    return lambda name: unpack(name, tmp_path)


def crit(name):
    """What crit said of a fixture: {'ps': [(pid, pgid, sid, comm)], 'fds': {pid: {fd or 'cwd': text}},
    'mems': {pid: [(start, end, line)]}, 'exe': {pid: path}}."""
    with open(os.path.join(FIXTURES, name + '.crit.txt')) as handle:
        lines = [line.rstrip('\n') for line in handle if not line.startswith('#')]
    out = dict(ps=[], fds={}, mems={}, exe={})
    section, pid = 'ps', None
    for line in lines[1:]:  # lines[0] is the ps header
        fields = line.split()
        if re.match(r'^\d+$', line):
            pid = int(line)
            section = 'mems' if pid in out['fds'] else 'fds'
            out[section][pid] = {} if section == 'fds' else []
        elif section == 'ps':
            out['ps'].append((int(fields[0]), int(fields[1]), int(fields[2]), fields[3]))
        elif section == 'fds' and re.match(r'^\s+\d+:', line):
            out['fds'][pid][int(fields[0].rstrip(':'))] = fields[1]
        elif section == 'fds':
            out['fds'][pid][fields[0].rstrip(':')] = fields[1]
        elif section == 'mems' and fields[0] == 'exe':
            out['exe'][pid] = fields[1]
        elif section == 'mems' and '-' in fields[0]:
            start, end = (int(part, 16) for part in fields[0].split('-'))
            out['mems'][pid].append((start, end, line))
    return out


def agrees_with_crit(name, found):
    said = crit(name)
    assert [(p['pid'], p['pgid'], p['sid'], p['command']) for p in found['processes']] == said['ps']
    for process in found['processes']:
        pid = process['pid']
        fds = {f['fd']: f for f in found['files'] if f['pid'] == pid}
        assert sorted(fds) == sorted(key for key in said['fds'][pid] if isinstance(key, int))
        for fd, text in said['fds'][pid].items():
            if fd == 'cwd':
                assert process['cwd'] == text
            elif isinstance(fd, int) and text.startswith('pipe['):
                assert fds[fd]['path'] == text.replace('pipe[', 'pipe:[')
            elif isinstance(fd, int) and not text.startswith(('INETSK', 'UNIXSK')):
                assert fds[fd]['path'] == text
        mapped = sum(end - start for start, end, text in said['mems'][pid] if '[vsyscall]' not in text)
        assert process['memory']['mapped'] == mapped
        assert process['executable'] == said['exe'][pid]


# -- the recorded checkpoints -------------------------------------------------------------------

def test_counter(checkpoint):
    path = checkpoint('counter')
    found = _images.inspect(path)
    assert found['details_notes'] == []
    sh, sleep = found['processes']
    assert (sh['pid'], sh['ppid'], sh['command'], sh['state'], sh['threads']) == (1, 0, 'sh', 'alive', 1)
    assert sh['command_line'] == ['/bin/sh', '-c', 'i=0; while true; do echo $i; i=$(expr $i + 1); sleep 1; done']
    assert (sleep['pid'], sleep['ppid'], sleep['command'], sleep['command_line']) == (17, 1, 'sleep', ['sleep', '1'])
    for process in (sh, sleep):
        assert process['executable'] == '/bin/busybox' and process['cwd'] == '/'
        assert process['memory']['mapped'] == 2322432  # busybox, its heap, stack and vdso
    # written is what pages-N.img holds for the process, and all of it is what stats-dump counted
    assert sh['memory']['written'] == os.path.getsize(os.path.join(path, 'pages-1.img')) == 77824
    assert sleep['memory']['written'] == os.path.getsize(os.path.join(path, 'pages-2.img')) == 61440
    assert sh['memory']['written'] + sleep['memory']['written'] == found['stats']['pages_written'] * PAGE
    # the child inherited its parent's stdin and the pipes of the container's log
    assert [(f['pid'], f['fd'], f['type'], f['path']) for f in found['files']] == [
        (1, 0, 'file', '/dev/null'), (1, 1, 'pipe', 'pipe:[1256684]'), (1, 2, 'pipe', 'pipe:[1256685]'),
        (17, 0, 'file', '/dev/null'), (17, 1, 'pipe', 'pipe:[1256684]'), (17, 2, 'pipe', 'pipe:[1256685]')]
    assert found['files'][0]['access'] == 'read-write' and found['files'][1]['access'] is None
    assert found['sockets'] == []
    assert found['stats'] == dict(freezing_time=100960, frozen_time=142144, memdump_time=473, memwrite_time=163,
                                  pages_scanned=48, pages_skipped_parent=0, pages_written=34, pages_lazy=0)
    agrees_with_crit('counter', found)


def test_web_server_listening(checkpoint):
    found = _images.inspect(checkpoint('httpd'))
    assert found['details_notes'] == []
    [httpd] = found['processes']
    assert httpd['command'] == 'httpd' and httpd['command_line'] == ['httpd', '-f', '-p', '8080', '-h', '/www']
    assert httpd['cwd'] == '/www' and httpd['memory']['written'] == found['stats']['pages_written'] * PAGE
    [sock] = found['sockets']
    assert sock == dict(pid=1, fd=3, family='inet6', type='stream', protocol='tcp', state='listen',
                        local_address='::', local_port=8080, remote_address=None, remote_port=None,
                        inode=1255971)
    assert found['files'][3] == dict(pid=1, fd=3, type='socket', path='socket:[1255971]', access=None)
    agrees_with_crit('httpd', found)


def test_open_files(checkpoint):
    found = _images.inspect(checkpoint('files'))
    assert found['details_notes'] == []
    assert [p['command'] for p in found['processes']] == ['sh', 'sleep']
    opened = [(f['pid'], f['fd'], f['path'], f['access']) for f in found['files'] if f['fd'] >= 3]
    assert opened == [(1, 3, '/tmp/notes.txt', 'read'), (1, 4, '/tmp/app.log', 'write'),
                      (13, 3, '/tmp/notes.txt', 'read'), (13, 4, '/tmp/app.log', 'write')]
    assert found['processes'][0]['command_line'][2].startswith('echo notes > /tmp/notes.txt; exec 3</tmp/notes.txt')
    assert sum(p['memory']['written'] for p in found['processes']) == found['stats']['pages_written'] * PAGE
    agrees_with_crit('files', found)


def test_tty_unix_socket_and_zombie(checkpoint):
    """A -t container: sleep as PID 1 with two children it never waits for - syslogd (a unix datagram socket
    at /dev/log) and a sleep that exited (a zombie)."""
    found = _images.inspect(checkpoint('misc'))
    assert found['details_notes'] == []
    assert [(p['pid'], p['ppid'], p['pgid'], p['sid'], p['command']) for p in found['processes']] == \
        [(pid, 1 if pid != 1 else 0, pgid, sid, comm) for pid, pgid, sid, comm in crit('misc')['ps']]
    sleep, syslogd, zombie = found['processes']
    assert sleep['command_line'] == ['sleep', '100000'] and syslogd['command_line'] == ['syslogd', '-n', '-O', '/tmp/messages']
    assert (zombie['state'], zombie['command'], zombie['command_line'], zombie['memory'], zombie['cwd']) == \
        ('zombie', 'sleep', None, None, None)
    assert [(f['fd'], f['type'], f['path']) for f in found['files'] if f['pid'] == 1] == [
        (0, 'tty', '/dev/pts/0'), (1, 'tty', '/dev/pts/0'), (2, 'tty', '/dev/pts/0')]
    assert [f for f in found['files'] if f['pid'] == 8] == []
    assert (7, 3, 'file', '/tmp/messages', 'write') in [(f['pid'], f['fd'], f['type'], f['path'], f['access'])
                                                        for f in found['files']]
    [log] = found['sockets']
    assert log == dict(pid=7, fd=0, family='unix', type='dgram', protocol=None, state='close', local_address='/dev/log',
                       local_port=None, remote_address=None, remote_port=None, inode=1770570)
    assert sum(p['memory']['written'] for p in (sleep, syslogd)) == found['stats']['pages_written'] * PAGE


# -- what goes wrong ----------------------------------------------------------------------------

def truncate(path, name, size):
    with open(os.path.join(path, name), 'r+b') as handle:
        handle.truncate(size)


def test_not_on_this_host(tmp_path):
    found = _images.inspect(str(tmp_path / 'gone'))
    assert found['processes'] is None and found['files'] is None and found['stats'] is None
    assert found['details_notes'] == ['the checkpoint directory %s is not on this host: run the module on the '
                                      'engine\'s host' % (tmp_path / 'gone')]


def test_no_process_tree(checkpoint):
    path = checkpoint('counter')
    os.unlink(os.path.join(path, 'pstree.img'))
    found = _images.inspect(path)
    assert found['processes'] is None and found['sockets'] is None
    assert found['details_notes'][0].startswith('the process tree cannot be read: cannot read pstree.img: No such file')
    assert found['stats']['pages_written'] == 34  # what can be read still is


def test_truncated_process_tree(checkpoint):
    path = checkpoint('counter')
    truncate(path, 'pstree.img', 20)
    [note] = _images.inspect(path)['details_notes']
    assert note == 'the process tree cannot be read: pstree.img is truncated (an entry of 10 bytes, 8 left)'


def test_not_an_image(checkpoint):
    path = checkpoint('counter')
    shutil.copy(os.path.join(path, 'files.img'), os.path.join(path, 'pstree.img'))
    [note] = _images.inspect(path)['details_notes']
    assert note == ('the process tree cannot be read: pstree.img is not a CRIU pstree image '
                    '(magic 0x56303138, expected 0x50273030)')


def test_damaged_files_image(checkpoint):
    path = checkpoint('httpd')
    truncate(path, 'files.img', 100)
    found = _images.inspect(path)
    assert found['files'] is None and found['sockets'] is None
    assert found['processes'][0]['command'] == 'httpd'
    assert found['processes'][0]['cwd'] is None  # its name is in files.img
    assert found['details_notes'] == ['open files and sockets unknown: files.img is truncated (an entry of 43 bytes, '
                                      '5 left)']


def test_missing_pages(checkpoint):
    path = checkpoint('counter')
    os.unlink(os.path.join(path, 'pages-2.img'))
    found = _images.inspect(path)
    sh, sleep = found['processes']
    assert sh['command_line'][0] == '/bin/sh' and sleep['command_line'] is None
    assert sleep['memory']['written'] == 61440  # the pagemap still says what was written
    [note] = found['details_notes']
    assert note.startswith('process 17 (sleep): command line unknown: cannot read pages-2.img: No such file')


def test_truncated_pages(checkpoint):
    path = checkpoint('httpd')
    truncate(path, 'pages-1.img', PAGE)
    found = _images.inspect(path)
    assert found['processes'][0]['command_line'] is None
    assert found['details_notes'] == ['process 1 (httpd): command line unknown: pages-1.img is truncated']


def test_missing_process_images(checkpoint):
    path = checkpoint('counter')
    for name in ('core-17.img', 'mm-17.img', 'ids-17.img'):
        os.unlink(os.path.join(path, name))
    found = _images.inspect(path)
    sleep = found['processes'][1]
    assert (sleep['pid'], sleep['command'], sleep['memory'], sleep['command_line']) == (17, None, None, None)
    assert sleep['cwd'] == '/'  # fs-17.img is still there
    assert [f['pid'] for f in found['files']] == [1, 1, 1]
    assert found['details_notes'] == [
        'process 17: cannot read core-17.img: No such file or directory',
        'process 17: cannot read mm-17.img: No such file or directory',
        'process 17: cannot read ids-17.img: No such file or directory']


def test_stats(checkpoint):
    path = checkpoint('httpd')
    with open(os.path.join(path, 'stats-dump'), 'wb') as handle:
        handle.write(b'nonsense')
    found = _images.inspect(path)
    assert found['stats'] is None and found['details_notes'] == ['stats-dump is there but cannot be read']
    os.unlink(os.path.join(path, 'stats-dump'))
    found = _images.inspect(path)
    assert found['stats'] is None and found['details_notes'] == []  # the engine's path keeps none


# -- the pieces ---------------------------------------------------------------------------------

def varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number, wire, payload):
    return varint(number << 3 | wire) + payload


def test_message_keeps_repeated_fields_packed_or_not():
    data = (field(1, 0, varint(7)) + field(5, 0, varint(1)) + field(5, 0, varint(2))
            + field(5, 2, varint(3) + varint(3) + varint(300)) + field(6, 2, varint(2) + b'hi')
            + field(7, 5, struct.pack('<I', 9)) + field(8, 1, struct.pack('<Q', 10)) + field(9, 0, varint(3)))
    message = _images.Message(data)
    assert message.int(1) == 7 and message.ints(5) == [1, 2, 3, 300] and message.int(5) == 300
    assert message.text(6) == 'hi' and message.int(7) == 9 and message.int(8) == 10
    assert message.sint(9) == -2 and message.int(4, 'none') == 'none' and message.message(4) is None


@pytest.mark.parametrize('data, error', [
    (field(1, 0, b'\x80'), 'a number runs past the end of its entry'),
    (field(2, 2, varint(5) + b'abc'), 'field 2 runs past the end of its entry'),
    (field(3, 1, b'\0\0'), 'field 3 runs past the end of its entry'),
    (field(4, 3, b''), 'unexpected protobuf wire type 3'),
])
def test_message_errors(data, error):
    with pytest.raises(_images.ImageError, match=re.escape(error)):
        _images.Message(data)


def image(magic, *entries, common=True):
    head = struct.pack('<II', _images.IMG_COMMON_MAGIC, magic) if common else struct.pack('<I', magic)
    return head + b''.join(struct.pack('<I', len(entry)) + entry for entry in entries)


def test_parse_image():
    entries = _images.parse_image(image(_images.MAGIC['pstree'], field(1, 0, varint(1)), field(1, 0, varint(9))),
                                  'pstree')
    assert [entry.int(1) for entry in entries] == [1, 9]
    assert _images.parse_image(image(_images.MAGIC['fs'], b'', common=False), 'fs')[0].fields == {}
    with pytest.raises(_images.ImageError, match='empty or truncated'):
        _images.parse_image(b'', 'mm', 'mm-1.img')
    with pytest.raises(_images.ImageError, match='mm-1.img holds a damaged entry: unexpected protobuf wire type 7'):
        _images.parse_image(image(_images.MAGIC['mm'], field(1, 7, b'')), 'mm', 'mm-1.img')


def test_pagemap_of_an_older_criu():
    head = _images.Message(field(1, 0, varint(4)))
    present = _images.Message(field(1, 0, varint(0x1000)) + field(2, 0, varint(2)))
    parent = _images.Message(field(1, 0, varint(0x4000)) + field(2, 0, varint(1)) + field(3, 0, varint(1)))
    new = _images.Message(field(1, 0, varint(0x8000)) + field(2, 0, varint(1)) + field(4, 0, varint(4))
                          + field(5, 0, varint(3)))
    assert _images.pagemap([head, present, parent, new]) == (
        4, [(0x1000, 2, _images.PE_PRESENT), (0x4000, 1, _images.PE_PARENT), (0x8000, 3, _images.PE_PRESENT)])


def test_read_memory_across_entries(tmp_path):
    pages = tmp_path / 'pages-1.img'
    pages.write_bytes(b'A' * 16 + b'B' * 16)
    maps = [(0, 1, _images.PE_PRESENT), (16, 1, _images.PE_PARENT), (32, 1, _images.PE_PRESENT),
            (48, 1, _images.PE_PRESENT)]
    # an area across two entries; the pages of present entries follow one another in the file
    assert _images.read_memory(str(pages), [(0, 1, _images.PE_PRESENT), (16, 1, _images.PE_PRESENT)], 12, 20, 16) \
        == b'AAAABBBB'
    assert _images.read_memory(str(pages), maps, 44, 48, 16) == b'BBBB'
    with pytest.raises(_images.ImageError, match='the page at 0x10 is not in the checkpoint'):
        _images.read_memory(str(pages), maps, 12, 20, 16)


def test_argv_and_addresses():
    assert _images.argv(b'sleep\x001\x00') == ['sleep', '1']
    assert _images.argv(b'nginx: master process') == ['nginx: master process']  # rewritten by the process
    assert _images.argv(b'a\xff\x00') == ['a\\xff']
    assert _images.inet_address(2, [0x0100007F]) == '127.0.0.1'
    assert _images.inet_address(2, [0x7F000001], big_endian=True) == '127.0.0.1'
    assert _images.inet_address(10, [0, 0, 0, 0x01000000]) == '::1'
    assert _images.inet_address(2, []) is None
    assert _images.unix_name(b'\0abstract') == '@abstract' and _images.unix_name(b'') is None
    assert _images.unix_name(b'/dev/log\0') == '/dev/log' and _images.unix_name(b'\0a\0b') == '@a@b'
