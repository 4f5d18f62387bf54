"""What is inside a checkpoint (docker_checkpoint_info details=true), on real checkpoints of the main engine.

The decoder's answers are checked against the running processes themselves (a leave_running checkpoint
leaves them there: /proc/PID/cmdline, /proc/PID/status VmSize, the port the web server serves on) and
against CRIU's own image tool, crit, built from the CRIU source tarball the test bed installs CRIU from
(or Debian's crit when that is all there is).
"""

import glob
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import uuid

import pytest

from helpers import (COUNTER, DOCKER_HOST, INVENTORY, ROOT, call_module, free_port, ok, run_playbook, wait_counter,
                     wait_http)

WEB = 'mkdir -p /www; echo page > /www/index.html; exec httpd -f -p 8080 -h /www'


def details(name, **args):
    """The one checkpoint docker_checkpoint_info lists for container name, with details."""
    result = ok(call_module('docker_checkpoint_info', dict(args, container=name, details=True)))
    assert result['changed'] is False
    [entry] = result['checkpoints']
    return entry


def host_pid(engine, name):
    """The host pid of the container's PID 1."""
    return engine.inspect_container(name)['State']['Pid']


def proc(pid, name):
    with open('/proc/%d/%s' % (pid, name), 'rb') as handle:
        return handle.read()


def vm_size(pid):
    return int(re.search(rb'^VmSize:\s+(\d+) kB', proc(pid, 'status'), re.MULTILINE).group(1)) * 1024


def cmdline(pid):
    return [part.decode() for part in proc(pid, 'cmdline').split(b'\0')[:-1]]


# -- CRIU's own crit ----------------------------------------------------------------------------

def build_crit(tarball, dest):
    """CRIU's crit and pycriu from its source tarball, as its lib/pycriu Makefiles build them (protoc for the
    images' Python modules, magic-gen.py for the magics); the python to run them with, or None."""
    python = '/usr/bin/python3'
    if not shutil.which('protoc') or subprocess.run([python, '-c', 'import google.protobuf'],
                                                    capture_output=True, check=False).returncode:
        return None
    with tarfile.open(tarball) as archive:
        members = [m for m in archive.getmembers()
                   if re.match(r'^[^/]+/(images/[^/]+\.proto|lib/pycriu/.*|crit/crit/.*|scripts/magic-gen\.py|'
                               r'criu/include/magic\.h)$', m.name) and (m.isfile() or m.isdir())]
        if hasattr(tarfile, 'data_filter'):
            archive.extractall(dest, members=members, filter='data')
        else:
            archive.extractall(dest, members=members)  # nosec - regular files of CRIU's own tarball
    [src] = glob.glob(os.path.join(dest, 'criu-*'))
    out = os.path.join(dest, 'py')
    shutil.copytree(os.path.join(src, 'lib', 'pycriu'), os.path.join(out, 'pycriu'))
    shutil.copytree(os.path.join(src, 'crit', 'crit'), os.path.join(out, 'crit'))
    images = os.path.join(out, 'pycriu', 'images')
    protos = sorted(glob.glob(os.path.join(src, 'images', '*.proto')))
    for argv in (['protoc', '-I', os.path.join(src, 'images'), '-I', '/usr/include', '--python_out', images]
                 + [p for p in protos if not p.endswith('/rpc.proto')],
                 ['protoc', '-I', os.path.join(src, 'images'), '--python_out', os.path.join(out, 'pycriu'),
                  os.path.join(src, 'images', 'rpc.proto')],
                 [python, os.path.join(src, 'scripts', 'magic-gen.py'), os.path.join(src, 'criu', 'include', 'magic.h'),
                  os.path.join(images, 'magic.py')]):
        subprocess.run(argv, check=True, capture_output=True)
    modules = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(images, '*_pb2.py')))
    with open(os.path.join(images, 'pb.py'), 'w') as handle:
        handle.writelines('from .%s import *\n' % m for m in modules if m != 'opts_pb2')
    version = re.search(r'criu-([0-9.]+)$', src).group(1)
    for package in ('pycriu', 'crit'):
        with open(os.path.join(out, package, 'version.py'), 'w') as handle:
            handle.write('__version__ = %r\n' % version)
    return [python, '-m', 'crit'], out, version


@pytest.fixture(scope='module')
def crit():
    """(argv, env, description) that run crit, or skip: CRIU 4.2's own from the cached source tarball
    (make host downloads it), else Debian's /usr/bin/crit."""
    tmp = tempfile.mkdtemp(prefix='cryo-crit-')
    try:
        found = None
        for tarball in sorted(glob.glob(os.path.join(ROOT, '.cache', 'criu', 'criu_*.orig.tar.*')), reverse=True):
            built = build_crit(tarball, tmp)
            if built:
                argv, path, version = built
                found = argv, dict(os.environ, PYTHONPATH=path), 'crit %s built from %s' % (version, tarball)
                break
        if found is None and shutil.which('crit'):
            found = [shutil.which('crit')], dict(os.environ), 'Debian\'s crit'
        if found is None:
            pytest.skip('no crit to compare with: neither a CRIU source tarball in .cache/criu with protoc and '
                        'python3-protobuf, nor a crit on PATH')
        yield found
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def crit_show(crit, path):
    argv, env, _what = crit
    proc = subprocess.run(argv + ['show', path], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)['entries']


def assert_agrees_with_crit(crit, entry):
    """The decoder's process tree, open files, sockets and memory mappings against crit's decoding of the
    same images."""
    directory = entry['directory']
    tree = crit_show(crit, os.path.join(directory, 'pstree.img'))
    assert [(p['pid'], p['ppid'], p['pgid'], p['sid']) for p in tree] == \
        [(p['pid'], p['ppid'], p['pgid'], p['sid']) for p in entry['processes']]
    files = {f['id']: f for f in crit_show(crit, os.path.join(directory, 'files.img'))}
    for process in entry['processes']:
        pid = process['pid']
        if process['state'] == 'zombie':
            continue  # it has a core image only
        [core] = crit_show(crit, os.path.join(directory, 'core-%d.img' % pid))
        assert core['tc']['comm'] == process['command']
        [mm] = crit_show(crit, os.path.join(directory, 'mm-%d.img' % pid))
        mapped = sum(int(v['end'], 16) - int(v['start'], 16) for v in mm['vmas'] if 'VSYSCALL' not in v['status'])
        assert mapped == process['memory']['mapped']
        assert files[mm['exe_file_id']]['reg']['name'] == process['executable']
        [ids] = crit_show(crit, os.path.join(directory, 'ids-%d.img' % pid))
        fds = crit_show(crit, os.path.join(directory, 'fdinfo-%d.img' % ids['files_id']))
        mine = [f for f in entry['files'] if f['pid'] == pid]
        assert [f['fd'] for f in sorted(fds, key=lambda f: f['fd'])] == [f['fd'] for f in mine]
        for fd in fds:
            [found] = [f for f in mine if f['fd'] == fd['fd']]
            file = files[fd['id']]
            if fd['type'] == 'REG':
                assert found['path'] == file['reg']['name'] and found['type'] == 'file'
            elif fd['type'] == 'PIPE':
                assert found['path'] == 'pipe:[%d]' % file['pipe']['pipe_id']
            elif fd['type'] == 'INETSK':
                isk = file['isk']
                [sock] = [s for s in entry['sockets'] if (s['pid'], s['fd']) == (pid, fd['fd'])]
                assert (sock['local_port'], sock['inode']) == (isk['src_port'], isk['ino'])
                assert sock['state'] == isk['state'].lower() and sock['protocol'] == isk['proto'].lower()
                assert sock['local_address'] == isk['src_addr'][0]


# -- the tests ----------------------------------------------------------------------------------

def test_counter_process_tree(engine, make_container, crit):
    name = make_container(COUNTER, name='details-counter-%s' % uuid.uuid4().hex[:6])
    wait_counter(engine, name, 2)
    with tempfile.TemporaryDirectory(prefix='cryo-details-') as place:
        ok(call_module('docker_checkpoint', dict(container=name, checkpoint='cp1', checkpoint_dir=place,
                                                 leave_running=True)))
        pid1 = host_pid(engine, name)
        entry = details(name, checkpoint_dir=place)
        assert entry['details_notes'] == []
        sh = entry['processes'][0]
        assert (sh['pid'], sh['ppid'], sh['command'], sh['state']) == (1, 0, 'sh', 'alive')
        assert sh['command_line'] == ['/bin/sh', '-c', COUNTER] == cmdline(pid1)
        children = entry['processes'][1:]
        assert children and all(p['ppid'] == 1 for p in children), entry['processes']
        assert 'sleep' in [p['command'] for p in children], entry['processes']
        # written: the pages CRIU wrote, all of them (stats-dump) and nothing else
        assert entry['stats'] and entry['stats']['frozen_time'] > 0
        written = sum(p['memory']['written'] for p in entry['processes'])
        assert written == entry['stats']['pages_written'] * os.sysconf('SC_PAGE_SIZE')
        assert written == sum(os.path.getsize(p) for p in glob.glob(os.path.join(entry['directory'], 'pages-*.img')))
        assert [(f['fd'], f['path']) for f in entry['files'] if f['pid'] == 1][0] == (0, '/dev/null')
        assert entry['sockets'] == []
        assert_agrees_with_crit(crit, entry)


def test_web_server_socket_and_memory(engine, make_container, crit):
    port = free_port()
    name = make_container(WEB, name='details-web-%s' % uuid.uuid4().hex[:6], ports={8080: ('127.0.0.1', port)})
    assert wait_http(port) == 'page'
    ok(call_module('docker_checkpoint', dict(container=name, checkpoint='cp1', leave_running=True)))
    pid1 = host_pid(engine, name)
    entry = details(name)
    assert entry['details_notes'] == []
    [httpd] = entry['processes']
    assert httpd['command'] == 'httpd' and httpd['command_line'] == cmdline(pid1) == \
        ['httpd', '-f', '-p', '8080', '-h', '/www']
    assert httpd['cwd'] == '/www' and httpd['executable'] == '/bin/busybox'
    # an idle server: its address space now is the one that was checkpointed
    assert httpd['memory']['mapped'] == vm_size(pid1)
    [sock] = [s for s in entry['sockets'] if s['state'] == 'listen']
    assert (sock['protocol'], sock['local_port'], sock['family']) == ('tcp', 8080, 'inet6'), entry['sockets']
    assert {'pid': 1, 'fd': sock['fd'], 'type': 'socket', 'path': 'socket:[%d]' % sock['inode'],
            'access': None} in entry['files']
    inode = os.readlink('/proc/%d/fd/%d' % (pid1, sock['fd']))
    assert inode == 'socket:[%d]' % sock['inode'], 'the running server holds the same socket'
    assert wait_http(port) == 'page', 'the server still serves'
    assert_agrees_with_crit(crit, entry)


def test_engine_path_checkpoint_has_no_stats(engine, make_container):
    name = make_container(COUNTER, name='details-engine-%s' % uuid.uuid4().hex[:6])
    wait_counter(engine, name, 2)
    ok(call_module('docker_checkpoint', dict(container=name, checkpoint='cp1', method='engine', leave_running=True)))
    entry = details(name)
    assert entry['stats'] is None and entry['details_notes'] == []
    assert entry['processes'][0]['command_line'] == ['/bin/sh', '-c', COUNTER]


def test_check_mode_reads_the_same(engine, make_container):
    name = make_container(COUNTER, name='details-check-%s' % uuid.uuid4().hex[:6])
    wait_counter(engine, name, 2)
    ok(call_module('docker_checkpoint', dict(container=name, checkpoint='cp1', leave_running=True)))
    checked = ok(call_module('docker_checkpoint_info', dict(container=name, details=True), check=True))
    [entry] = checked['checkpoints']
    assert checked['changed'] is False and entry['processes'][0]['command'] == 'sh'


def test_snapshot_playbook_prints_what_is_inside(engine, make_container):
    port = free_port()
    name = make_container(WEB, name='details-snap-%s' % uuid.uuid4().hex[:6], ports={8080: ('127.0.0.1', port)})
    assert wait_http(port) == 'page'
    with tempfile.TemporaryDirectory(prefix='cryo-details-snap-') as snapshot_dir:
        proc = run_playbook('- name: The snapshot playbook\n  ansible.builtin.import_playbook: cryo.docker.snapshot\n',
                            INVENTORY, extra_vars=dict(snapshot_container=name, snapshot_dir=snapshot_dir,
                                                       cryo_docker_host=DOCKER_HOST))
        assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
        out = proc.stdout
        assert re.search(r'container frozen [0-9.]+ s and still running', out), out[-4000:]
        assert re.search(r'Processes 1, memory in the snapshot [0-9.]+ [kKMG]?B, sockets 1', out), out[-4000:]
        assert '1 (parent 0) httpd: httpd -f -p 8080 -h /www' in out, out[-4000:]
        assert 'tcp listen :::8080' in out, out[-4000:]
    assert wait_http(port) == 'page'
