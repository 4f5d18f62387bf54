"""Real server applications from Debian 12's own packages (tests/testbed/build_apps.py), checkpointed
and restored the way an operator does it: docker_checkpoint with `method: runtime` and `method:
engine`, docker_restore, and the reboot_hosts playbook with a simulated reboot of a fleet engine.

What proves that each one resumed instead of starting again:
- redis-server 7.0 (one process, data in memory): every key written before the checkpoint (MB of
  values) is there afterwards, read on a new connection through the published port; INFO's run_id
  (random at each start) and process_id are the same and uptime_in_seconds went on counting.
- nginx 1.22 (a master and two workers): a file written at run time is served again; the master's and
  the workers' pids (in the container's pid namespace) are the same processes; stub_status's
  `accepts` counter (kept in memory shared by the workers) goes on from where it was, where a fresh
  start would begin at 1.
The processes' start times in /proc/PID/stat are those of the restore (CRIU makes new processes
with the old pids and memory; the kernel's start time cannot be restored): the tests show that,
and rely on run_id, counters and pids instead.

What CRIU cannot checkpoint:
- an established TCP connection (a redis client that stays connected): the checkpoint fails, the
  server keeps running and the client's connection keeps working;
- an io_uring (a tiny program that holds one: CRIU's parasite cannot pass the file out, the kernel
  refuses to send io_uring files over a socket): checkpoint_preflight fails the container before
  anything is stopped, and a checkpoint fails, leaving it running;
- processes of another user than root where the engine lacks CAP_SYS_RESOURCE (these machines):
  nginx as Debian configures it (workers as www-data); preflight says so, the checkpoint fails.
"""

import io
import json
import os
import shutil
import socket
import tarfile
import time
import uuid

import docker
import pytest

import build_apps
from helpers import (HOST, TESTBED, call_module, counter, free_port, http_get, run_playbook, state, wait_counter,
                     wait_http, wait_running)

REDIS = build_apps.APPS['redis']
NGINX = build_apps.APPS['nginx']
URING = build_apps.APPS['uring']
KEYS = 2000
VALUE_SIZE = 2048  # 2000 keys of 2 KiB: 4 MiB of values
CAP_SYS_RESOURCE = 24
SIMULATE_REBOOT = os.path.abspath(os.path.join(TESTBED, 'simulate_reboot.yml'))
STATE_ROOT = '/var/tmp/cryo-real-apps-test'
REBOOT_HOSTS = """
- name: The collection's playbook
  ansible.builtin.import_playbook: cryo.docker.reboot_hosts
"""


@pytest.fixture(scope='module')
def images(engine):
    """The application images on the main engine (built when missing, as `make image` does)."""
    for name in build_apps.APPS:
        print(build_apps.build(engine, name))
    return engine


# -- redis over a raw socket (RESP) -----------------------------------------------------------------

class Redis:
    """A minimal redis client on 127.0.0.1:port: one connection, commands, replies."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=timeout)
        self.reader = self.sock.makefile('rb')

    def close(self):
        self.reader.close()
        self.sock.close()

    def send(self, *commands):
        def encode(arg):
            return arg if isinstance(arg, bytes) else str(arg).encode()
        payload = b''.join(b'*%d\r\n' % len(cmd) + b''.join(b'$%d\r\n%s\r\n' % (len(encode(arg)), encode(arg))
                                                            for arg in cmd)
                           for cmd in commands)
        self.sock.sendall(payload)
        return [self.reply() for _command in commands]

    def call(self, *args):
        return self.send(args)[0]

    def reply(self):
        line = self.reader.readline()
        if not line:
            raise ConnectionError('redis closed the connection')
        kind, rest = line[:1], line[1:-2]
        if kind == b'+':
            return rest.decode()
        if kind == b'-':
            raise AssertionError('redis error: %s' % rest.decode())
        if kind == b':':
            return int(rest)
        if kind == b'$':
            size = int(rest)
            return None if size < 0 else self.reader.read(size + 2)[:-2]
        if kind == b'*':
            return [self.reply() for _item in range(int(rest))]
        raise AssertionError('not a redis reply: %r' % line)


def redis(port, *args):
    """One command on a new connection; the reply."""
    client = Redis(port)
    try:
        return client.call(*args)
    finally:
        client.close()


def wait_redis(port, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if redis(port, 'PING') == 'PONG':
                return
        except (OSError, ConnectionError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError('redis on 127.0.0.1:%s did not answer within %ss' % (port, timeout))
        time.sleep(0.1)


def value(i):
    return (b'%06d:' % i) * (VALUE_SIZE // 7) + b'#' * (VALUE_SIZE % 7)


def load_keys(port):
    client = Redis(port)
    try:
        for start in range(0, KEYS, 500):
            assert client.send(*[('SET', 'key:%d' % i, value(i)) for i in range(start, start + 500)]) == ['OK'] * 500
    finally:
        client.close()


def assert_keys(port):
    """Every key on a new connection, byte for byte."""
    assert redis(port, 'DBSIZE') == KEYS
    got = redis(port, 'MGET', *['key:%d' % i for i in range(KEYS)])
    bad = [i for i in range(KEYS) if got[i] != value(i)]
    assert not bad, '%d of %d keys lost or changed after the restore, first key:%d' % (len(bad), KEYS, bad[0])


def redis_info(port):
    text = redis(port, 'INFO', 'server').decode()
    return dict(line.split(':', 1) for line in text.splitlines() if ':' in line)


# -- processes --------------------------------------------------------------------------------------

def ns_pid(pid):
    """A process's pid in the container's pid namespace (the last of /proc/PID/status NSpid)."""
    for line in (HOST.read(pid, 'status') or '').splitlines():
        if line.startswith('NSpid:'):
            return int(line.split()[-1])
    return None


def processes(client, name):
    """{pid in the container: (command line, start time in ticks since boot)} of the container's
    init process and its children, read in /proc."""
    init = state(client, name)['Pid']
    pids = [init] + sorted(pid for pid, (ppid, _cmd, _cg) in HOST.processes().items() if ppid == init)
    return {ns_pid(pid): (' '.join(HOST.cmdline(pid)), HOST.stat(pid).starttime) for pid in pids}


def commands(procs):
    return {pid: cmd for pid, (cmd, _start) in procs.items()}


def nginx_accepts(port):
    """stub_status's `accepts`: connections accepted since nginx's master started."""
    lines = http_get(port, '/status').splitlines()
    return int(lines[2].split()[0])


def put_file(client, name, path, text):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode='w') as tar:
        info = tarfile.TarInfo(os.path.basename(path))
        info.size, info.mode = len(text.encode()), 0o644
        tar.addfile(info, io.BytesIO(text.encode()))
    assert client.put_archive(name, os.path.dirname(path), data.getvalue())


# -- module calls -----------------------------------------------------------------------------------

def ok(result):
    text = json.dumps(result)
    assert 'Traceback' not in text and 'MODULE FAILURE' not in result.get('msg', ''), text
    assert not result.get('failed'), result.get('msg', result)
    return result


def refused(result):
    """A clean failure: failed, a message, no traceback."""
    assert 'Traceback' not in json.dumps(result) and 'MODULE FAILURE' not in result.get('msg', ''), result
    assert result.get('failed') is True and result.get('msg'), result
    return json.dumps(result)


def checkpoint_and_restore(name, method):
    """docker_checkpoint (method) then docker_restore; (checkpoint seconds, restore seconds) as the
    modules measured them."""
    taken = ok(call_module('docker_checkpoint', dict(container=name, checkpoint='cp1', method=method)))
    assert taken['changed'] is True and taken['method'] == method, taken
    restored = ok(call_module('docker_restore', dict(container=name, checkpoint='cp1')))
    assert restored['restored'] is True and restored['verified'] is True, restored
    assert restored['fallback_used'] is False, restored
    return taken['duration'], restored['duration']


# -- redis ------------------------------------------------------------------------------------------

@pytest.mark.parametrize('method', ['runtime', 'engine'])
def test_redis_keeps_its_data_and_its_run(images, make_container, method):
    client = images
    port = free_port()
    name = make_container(REDIS['cmd'], image=REDIS['tag'], ports={6379: ('127.0.0.1', port)})
    wait_redis(port)
    load_keys(port)
    used = int(redis(port, 'INFO', 'memory').decode().split('used_memory:')[1].split()[0])
    assert used > KEYS * VALUE_SIZE, used
    before = redis_info(port)
    procs = processes(client, name)
    time.sleep(1.1)  # uptime_in_seconds moves on by whole seconds

    if method == 'runtime':
        # A client that stays connected: CRIU cannot dump the established connection. The checkpoint
        # fails, redis runs on and the client's own connection still answers.
        held = Redis(port)
        try:
            assert held.call('PING') == 'PONG'
            text = refused(call_module('docker_checkpoint', dict(container=name, checkpoint='cp1', method=method)))
            assert 'tcp' in text.lower(), text
            assert state(client, name)['Running'] is True
            assert held.call('GET', 'key:7') == value(7)
        finally:
            held.close()

    started = time.monotonic()
    took, restore_took = checkpoint_and_restore(name, method)
    elapsed = time.monotonic() - started
    wait_redis(port)
    assert_keys(port)
    after = redis_info(port)
    assert after['run_id'] == before['run_id'], 'redis started afresh (another run_id)'
    assert after['process_id'] == before['process_id']
    assert int(after['uptime_in_seconds']) >= int(before['uptime_in_seconds']) + int(elapsed), (before, after)
    again = processes(client, name)
    assert commands(again) == commands(procs)
    assert all(again[pid][1] > procs[pid][1] for pid in procs), 'start times are those of the restore: %s %s' % (
        procs, again)
    print('redis %s: %d keys, %.1f MiB used, checkpoint %.2f s, restore %.2f s, uptime %s s -> %s s, run_id kept'
          % (method, KEYS, used / 2 ** 20, took, restore_took, before['uptime_in_seconds'],
             after['uptime_in_seconds']))


# -- nginx ------------------------------------------------------------------------------------------

@pytest.mark.parametrize('method', ['runtime', 'engine'])
def test_nginx_master_and_workers_resume(images, make_container, method):
    client = images
    port = free_port()
    name = make_container(NGINX['cmd'], image=NGINX['tag'], ports={8080: ('127.0.0.1', port)})
    assert wait_http(port) == 'built into the image'
    put_file(client, name, '/www/runtime.html', 'written at run time %s\n' % method)
    for _request in range(20):
        assert http_get(port, '/runtime.html') == 'written at run time %s' % method
    procs = processes(client, name)
    assert len(procs) == 3, procs  # the master (pid 1) and two workers
    assert procs[1][0].startswith('nginx: master process'), procs
    assert sum('nginx: worker process' in cmd for cmd, _start in procs.values()) == 2, procs
    accepts = nginx_accepts(port)
    assert accepts >= 21, accepts

    took, restore_took = checkpoint_and_restore(name, method)
    assert wait_http(port, '/runtime.html') == 'written at run time %s' % method
    assert commands(processes(client, name)) == commands(procs)
    after = nginx_accepts(port)
    assert after > accepts, 'stub_status started again from 1: nginx was restarted (%s, then %s)' % (accepts, after)
    print('nginx %s: master + 2 workers, pids %s kept, checkpoint %.2f s, restore %.2f s, accepts %d -> %d'
          % (method, sorted(procs), took, restore_took, accepts, after))


def test_nginx_workers_of_another_user_need_cap_sys_resource(images, make_container):
    """nginx as Debian configures it (workers as www-data): CRIU reads every process's rlimits, which for
    a process of another user needs CAP_SYS_RESOURCE. Where the engine lacks it (these machines),
    preflight says so before anything stops, and a checkpoint fails with the container running on."""
    client = images
    port = free_port()
    name = make_container(NGINX['cmd'][:-1] + ['user www-data;'], image=NGINX['tag'],
                          ports={8080: ('127.0.0.1', port)})
    assert wait_http(port) == 'built into the image'
    capable = bool(HOST.capabilities(HOST.dockerd()['pid']) & (1 << CAP_SYS_RESOURCE))

    result = ok(call_module('checkpoint_preflight', dict(containers=[name])))
    check = [c for c in result['checks'] if c['name'] == 'container %s: process users' % name][0]
    entry = [c for c in result['containers'] if c['name'] == name][0]
    taken = call_module('docker_checkpoint', dict(container=name, checkpoint='cp1', method='runtime',
                                                  leave_running=True))
    if capable:
        assert check['status'] == 'pass' and entry['eligible'] is True, check
        ok(taken)
    else:
        assert check['status'] == 'fail' and 'uid 33' in check['detail'], check
        assert 'CAP_SYS_RESOURCE' in check['detail'] and check['remedy'], check
        assert entry['eligible'] is False, entry
        assert 'rlimit' in refused(taken)
    assert state(client, name)['Running'] is True
    assert wait_http(port) == 'built into the image'


# -- through a maintenance reboot -------------------------------------------------------------------

@pytest.fixture
def fleet_apps(images, fleet):
    """A factory of application containers on the first fleet host; removed afterwards."""
    host = fleet.hosts[0]
    client = fleet.clients[host]
    for app in (REDIS, NGINX):
        fleet.engine(host).load_image(app['tag'])
    made = []

    def make(app, port, inner):
        name = 'realapp-%s-%s' % (app['tag'].split('/')[1].split(':')[0], uuid.uuid4().hex[:6])
        client.create_container(app['tag'], app['cmd'], name=name, ports=[inner], stop_timeout=1,
                                host_config=client.create_host_config(
                                    port_bindings={inner: ('127.0.0.1', port)},
                                    restart_policy={'Name': 'unless-stopped'}))
        made.append(name)
        client.start(name)
        return name

    yield host, client, make
    for name in made:
        try:
            client.remove_container(name, force=True)
        except docker.errors.DockerException:
            pass


def test_maintenance_reboot_keeps_redis_and_nginx(fleet, fleet_apps):
    host, client, make = fleet_apps
    redis_port, nginx_port = free_port(), free_port()
    make(REDIS, redis_port, 6379)
    web = make(NGINX, nginx_port, 8080)
    wait_redis(redis_port)
    load_keys(redis_port)
    assert wait_http(nginx_port) == 'built into the image'
    for _request in range(10):
        http_get(nginx_port)
    before, accepts, workers = redis_info(redis_port), nginx_accepts(nginx_port), processes(client, web)
    engine_pid = fleet.engine(host).pid()
    state_dir = os.path.join(STATE_ROOT, uuid.uuid4().hex[:8])
    try:
        started = time.monotonic()
        proc = run_playbook(REBOOT_HOSTS, fleet.inventory, limit=host,
                            extra_vars=dict(maintenance_state_dir=state_dir + '/{{ inventory_hostname }}',
                                            maintenance_action='tasks', maintenance_tasks_file=SIMULATE_REBOOT))
        took = time.monotonic() - started
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
        with open(os.path.join(state_dir, host, 'manifest.json')) as handle:
            record = json.load(handle)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    assert fleet.engine(host).pid() != engine_pid, 'the engine was not "rebooted"'
    assert record['status'] == 'complete', record
    assert sorted(c['status'] for c in record['containers']) == ['restored', 'restored'], record
    assert all(c['verified'] for c in record['containers']), record

    wait_redis(redis_port)
    assert_keys(redis_port)
    after = redis_info(redis_port)
    assert after['run_id'] == before['run_id'], 'redis started afresh after the reboot'
    assert int(after['uptime_in_seconds']) >= int(before['uptime_in_seconds']) + int(took) - 1, (before, after)
    assert wait_http(nginx_port) == 'built into the image'
    assert nginx_accepts(nginx_port) > accepts, 'nginx started afresh after the reboot'
    assert commands(processes(client, web)) == commands(workers)
    for entry in record['containers']:
        assert client.inspect_container(entry['container'])['HostConfig']['RestartPolicy']['Name'] == 'unless-stopped'
    print('maintenance reboot of %s: %.1f s, redis uptime %s s -> %s s, nginx accepts %d -> %d'
          % (host, took, before['uptime_in_seconds'], after['uptime_in_seconds'], accepts,
             nginx_accepts(nginx_port)))


# -- io_uring ---------------------------------------------------------------------------------------

def test_io_uring_is_refused_before_anything_stops(images, make_container):
    client = images
    if not client.images(name=URING['tag']):
        pytest.skip('no C compiler here for the io_uring program (make host installs gcc)')
    name = make_container(URING['cmd'], image=URING['tag'])
    wait_counter(client, name, 1)
    pid = state(client, name)['Pid']
    assert 'anon_inode:[io_uring]' in [target for _pid, _comm, target in HOST.open_files(pid)]

    result = ok(call_module('checkpoint_preflight', dict(containers=[name])))
    entry = [c for c in result['containers'] if c['name'] == name][0]
    assert entry['eligible'] is False, entry
    check = [c for c in result['checks'] if c['name'] == 'container %s: open files' % name][0]
    assert check['status'] == 'fail' and 'io_uring' in check['detail'] and check['remedy'], check
    assert result['ready'] is False
    assert state(client, name)['Running'] is True and state(client, name)['Pid'] == pid

    # What preflight predicts: CRIU refuses, and the container runs on.
    text = refused(call_module('docker_checkpoint', dict(container=name, checkpoint='cp1', method='runtime')))
    assert 'send_fds' in text or 'FDs' in text, text
    assert wait_running(client, name) and state(client, name)['Pid'] == pid
    wait_counter(client, name, counter(client, name) + 1)
