"""Integration test harness: the real Docker Engine and CRIU on this machine.

Modules run as a task of a small playbook against the collection under
ANSIBLE_COLLECTIONS_PATH, so each test drives exactly what a playbook would.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

import docker
import pytest

IMAGE = os.environ.get('CRYO_TEST_IMAGE', 'cryo-test/busybox:1')
DOCKER_HOST = os.environ.get('DOCKER_HOST', 'unix:///var/run/docker.sock')
COUNTER = 'i=0; while true; do echo $i; i=$(expr $i + 1); sleep 1; done'


PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: The module under test
      {module}: {args}
      register: cryo_result
      ignore_errors: true
    - name: Hand the result to the test
      ansible.builtin.copy:
        content: "{{{{ cryo_result | to_json }}}}"
        dest: "{{{{ cryo_out }}}}"
        mode: "0600"
      check_mode: false
      diff: false
"""


def run_module(module, args=None, check=False, diff=False, extra_env=None, extra_vars=None):
    """Run cryo.docker.<module> (or a FQCN) on localhost as a playbook task; return its registered result."""
    name = module if '.' in module else 'cryo.docker.' + module
    with tempfile.TemporaryDirectory(prefix='cryo-test-') as tmp:
        playbook = os.path.join(tmp, 'play.yml')
        out = os.path.join(tmp, 'result.json')
        with open(playbook, 'w') as handle:
            handle.write(PLAYBOOK.format(module=name, args=json.dumps(args or {})))
        with open(os.path.join(tmp, 'vars.json'), 'w') as handle:
            json.dump(dict(extra_vars or {}, cryo_out=out), handle)
        cmd = ['ansible-playbook', playbook, '-i', 'localhost,', '-c', 'local', '-e', '@' + os.path.join(tmp, 'vars.json')]
        if check:
            cmd.append('--check')
        if diff:
            cmd.append('--diff')
        env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false')
        env.setdefault('ANSIBLE_PYTHON_INTERPRETER', sys.executable)
        env.update(extra_env or {})
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        try:
            with open(out) as handle:
                result = json.load(handle)
        except (OSError, ValueError):
            raise AssertionError('ansible-playbook did not return a result (rc %s):\n%s\n%s'
                                 % (proc.returncode, proc.stdout, proc.stderr))
    result['_output'] = proc.stdout + proc.stderr
    return result


@pytest.fixture(scope='session')
def engine():
    return docker.APIClient(base_url=DOCKER_HOST, version='auto')


@pytest.fixture
def make_container(engine):
    """Factory: make_container(command=COUNTER, **host_config) -> name; removed afterwards."""
    created = []

    def factory(command=COUNTER, name=None, start=True, ports=None, restart_policy=None,
                security_opt=('seccomp=unconfined',), tty=False, image=IMAGE, **host_kwargs):
        name = name or 'cryo-test-%s' % uuid.uuid4().hex[:8]
        host_config = engine.create_host_config(
            port_bindings=ports, restart_policy=restart_policy,
            security_opt=list(security_opt) if security_opt else None, **host_kwargs)
        engine.create_container(image, ['/bin/sh', '-c', command] if isinstance(command, str) else command,
                                name=name, host_config=host_config, tty=tty,
                                ports=list(ports) if ports else None)
        created.append(name)
        if start:
            engine.start(name)
        return name

    yield factory
    for name in created:
        try:
            engine.remove_container(name, force=True)
        except docker.errors.NotFound:
            pass


def counter(engine, name):
    """The last number the counter container printed."""
    lines = engine.logs(name).decode().split()
    numbers = [int(x) for x in lines if x.isdigit()]
    return numbers[-1] if numbers else None


def counter_lines(engine, name):
    return [int(x) for x in engine.logs(name).decode().split() if x.isdigit()]


def wait_counter(engine, name, at_least, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = counter(engine, name)
        if value is not None and value >= at_least:
            return value
        time.sleep(0.2)
    raise AssertionError('counter of %s did not reach %s (last %s)' % (name, at_least, counter(engine, name)))


def state(engine, name):
    return engine.inspect_container(name)['State']


def checkpoints(engine, name, checkpoint_dir=None):
    """Names of the checkpoints the engine lists for a container (the SDK does not wrap this)."""
    params = {'dir': checkpoint_dir} if checkpoint_dir else None
    resp = engine._get(engine._url('/containers/{0}/checkpoints', name), params=params)  # pylint: disable=protected-access
    return sorted(entry['Name'] for entry in engine._result(resp, json=True) or [])  # pylint: disable=protected-access


def checkpoint_path(engine, name, checkpoint):
    """Where the engine keeps a container's checkpoint on disk."""
    root = engine.info().get('DockerRootDir') or '/var/lib/docker'
    return os.path.join(root, 'containers', engine.inspect_container(name)['Id'], 'checkpoints', checkpoint)


def wait_running(engine, name, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state(engine, name).get('Running'):
            return True
        time.sleep(0.1)
    return False


# -- the simulated fleet (tests/testbed/fleet.py) -----------------------------------------

def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def http_get(port, path='/index.html', timeout=2):
    """One GET on 127.0.0.1:port; the body, stripped."""
    with urllib.request.urlopen('http://127.0.0.1:%d%s' % (port, path), timeout=timeout) as response:
        return response.read().decode().strip()


def wait_http(port, path='/index.html', timeout=15):
    """GET until something answers on 127.0.0.1:port; the body, stripped."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return http_get(port, path)
        except (urllib.error.URLError, OSError) as error:
            if time.monotonic() > deadline:
                raise AssertionError('nothing answered on 127.0.0.1:%s%s within %ss: %s' % (port, path, timeout, error))
            time.sleep(0.2)


@pytest.fixture
def tcp_peer():
    """A listener on the host's loopback that keeps every connection open: (port, [peer sockets])."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(('127.0.0.1', 0))
    server.listen(8)
    server.settimeout(0.5)
    peers, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                peers.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], peers
    stop.set()
    thread.join(2)
    for peer in peers:
        peer.close()
    server.close()


TESTBED = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'testbed')


def _fleet_module():
    """tests/testbed/fleet.py, imported by path (tests/testbed is not a package)."""
    import importlib.util  # pylint: disable=import-outside-toplevel
    spec = importlib.util.spec_from_file_location('cryo_testbed_fleet', os.path.join(TESTBED, 'fleet.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FleetBed:
    """The fleet as tests see it: `inventory` (path), `hosts` (fleet-1 ...), `clients`
    ({host: docker.APIClient}), `engine(host)` (paths, pidfile, docker_host of one engine)."""

    def __init__(self, fleet):
        self.fleet = fleet
        self.inventory = fleet.inventory
        self.hosts = fleet.hosts
        self.clients = fleet.clients()

    def engine(self, host):
        return self.fleet.engine(host)

    def docker_host(self, host):
        return self.fleet.engine(host).docker_host

    def playbook(self, text, limit=None, extra_vars=None):
        """Run a playbook (YAML text) against the fleet inventory; return the CompletedProcess."""
        return run_playbook(text, self.inventory, limit=limit, extra_vars=extra_vars)

    def run_module(self, module, args_by_host):
        """Run cryo.docker.<module> on several hosts in one play, once per args dict, each on
        its host's engine (docker_host is the host's cryo_docker_host unless given).
        {host: [args, ...]} -> {host: [result, ...]}."""
        name = module if '.' in module else 'cryo.docker.' + module
        keys = sorted({key for args_list in args_by_host.values() for args in args_list for key in args} - {'docker_host'})
        options = ''.join('\n        %s: "{{ item[%r] | default(omit) }}"' % (key, key) for key in keys)
        text = FLEET_MODULE_PLAYBOOK.format(module=name, options=options)
        with tempfile.TemporaryDirectory(prefix='cryo-test-') as out:
            proc = self.playbook(text, limit=sorted(args_by_host),
                                 extra_vars={'cryo_test_args': args_by_host, 'cryo_out': out})
            results = {}
            for host in args_by_host:
                try:
                    with open(os.path.join(out, host + '.json')) as handle:
                        results[host] = json.load(handle)
                except (OSError, ValueError):
                    raise AssertionError('ansible-playbook did not return results for %s (rc %s):\n%s\n%s'
                                         % (host, proc.returncode, proc.stdout, proc.stderr))
        return results


FLEET_MODULE_PLAYBOOK = """
- hosts: fleet
  gather_facts: false
  tasks:
    - name: The module under test
      {module}:
        docker_host: "{{{{ item['docker_host'] | default(cryo_docker_host) }}}}"{options}
      loop: "{{{{ cryo_test_args[inventory_hostname] }}}}"
      register: cryo_result
      ignore_errors: true
    - name: Hand the results to the test
      ansible.builtin.copy:
        content: "{{{{ cryo_result.results | to_json }}}}"
        dest: "{{{{ cryo_out }}}}/{{{{ inventory_hostname }}}}.json"
        mode: "0600"
      check_mode: false
      diff: false
"""


def run_playbook(text, inventory, limit=None, extra_vars=None, extra_env=None, options=()):
    """ansible-playbook with a playbook given as YAML text; `{testbed}` in it is tests/testbed."""
    with tempfile.TemporaryDirectory(prefix='cryo-test-') as tmp:
        playbook = os.path.join(tmp, 'play.yml')
        with open(playbook, 'w') as handle:
            handle.write(text.replace('{testbed}', os.path.abspath(TESTBED)))
        cmd = ['ansible-playbook', playbook, '-i', inventory] + list(options)
        if limit:
            cmd += ['--limit', limit if isinstance(limit, str) else ','.join(limit)]
        if extra_vars:
            with open(os.path.join(tmp, 'vars.json'), 'w') as handle:
                json.dump(extra_vars, handle)
            cmd += ['-e', '@' + os.path.join(tmp, 'vars.json')]
        env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false')
        env.update(extra_env or {})
        return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)


@pytest.fixture(scope='session')
def fleet():
    """CRYO_FLEET_COUNT (3) Docker Engines side by side, one inventory host each, with the test
    image; torn down after the session unless CRYO_FLEET_KEEP=1."""
    bed = _fleet_module().Fleet(count=int(os.environ.get('CRYO_FLEET_COUNT', '3')),
                                prefix=os.environ.get('CRYO_FLEET_PREFIX', 'cryo-fleet'))
    messages = []
    try:
        bed.up(log=messages.append)
    except RuntimeError as error:
        bed.down(log=messages.append)
        raise AssertionError('the fleet did not come up: %s\n%s' % (error, '\n'.join(messages)))
    try:
        yield FleetBed(bed)
    finally:
        if os.environ.get('CRYO_FLEET_KEEP') != '1':
            bed.down(log=messages.append)
