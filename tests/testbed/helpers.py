"""The test bed's Python library: what the integration tests, fleet.py and bench/run.py share.

- The collection on sys.path (PYTHONPATH, else ANSIBLE_COLLECTIONS_PATH, else <repo>/build/collections)
  and `HOST`, the collection's one reader of /proc (module_utils/_host.py).
- Playbooks and modules run as an operator runs them: `run_playbook` (ansible-playbook with a playbook
  given as text), `run_module` (one module as a playbook task, its registered result back) and
  `FleetBed.run_module` (one module on several hosts of the simulated fleet in one play); `run_module_file`
  runs a module's file directly, without ansible-playbook (the benchmarks and the soak).
- The counter container: `counter`, `counter_lines`, `wait_counter`, `wait_lines`, `runs`.
- Containers and checkpoints as the engine sees them: `state`, `wait_running`, `checkpoints`,
  `checkpoint_path`.
- HTTP on the host's loopback: `free_port`, `http_get`, `wait_http`.

Plain functions, no pytest: the fixtures are in tests/integration/conftest.py. tests/README.md says
what is where.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import docker

TESTBED = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(TESTBED))
INVENTORY = os.path.join(TESTBED, 'inventory.yml')
IMAGE = os.environ.get('CRYO_TEST_IMAGE', 'cryo-test/busybox:1')
DOCKER_HOST = os.environ.get('DOCKER_HOST', 'unix:///var/run/docker.sock')
# Prints 0, 1, 2 ... once a second: its log shows whether it froze, resumed, rewound or restarted.
COUNTER = 'i=0; while true; do echo $i; i=$(expr $i + 1); sleep 1; done'
# A playbook that "reboots" every host of the fleet inventory (tests/testbed/simulate_reboot.yml: a power cut
# of its engine, then the engine started again).
REBOOT_PLAYBOOK = """
- name: Simulate a reboot
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Power-cut the engine and start it again
      ansible.builtin.include_tasks: {testbed}/simulate_reboot.yml
"""


# -- the collection ---------------------------------------------------------------------------------

def _find_collection():
    """Make `ansible_collections.cryo.docker` importable, or say how."""
    try:
        from ansible_collections.cryo.docker.plugins.module_utils import _host  # pylint: disable=unused-import
        return
    except ImportError:
        pass
    candidates = [path for path in os.environ.get('ANSIBLE_COLLECTIONS_PATH', '').split(os.pathsep) if path]
    candidates.append(os.path.join(ROOT, 'build', 'collections'))
    for candidate in candidates:
        if os.path.isfile(os.path.join(candidate, 'ansible_collections', 'cryo', 'docker', 'plugins', 'module_utils',
                                       '_host.py')):
            sys.path.insert(0, os.path.abspath(candidate))
            return
    raise ImportError('the collection cryo.docker is not importable: it is not on PYTHONPATH, ANSIBLE_COLLECTIONS_PATH '
                      'nor in %s. Run `make collection` in %s (it links this tree there).'
                      % (candidates[-1], ROOT))


_find_collection()

from ansible_collections.cryo.docker.plugins.module_utils import _engine, _host  # noqa: E402

# The collections directory the collection was imported from (what ansible-playbook must search).
COLLECTIONS = _host.__file__.rsplit(os.sep + 'ansible_collections' + os.sep, 1)[0]
HOST = _host.Host()


# -- ansible-playbook -------------------------------------------------------------------------------

def _ansible_playbook():
    """The ansible-playbook of this Python's environment (the project's .venv), else the one on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    return beside if _host.is_executable(beside) else 'ansible-playbook'


# How long one ansible-playbook (or module) run of the tests may take (seconds) before it is killed and the test
# fails; run_playbook(timeout=...) gives one more. Below pytest-timeout's per-test timeout (pytest.ini's 120 s),
# so that a hung playbook fails its test with its own output rather than with the test's timeout; the
# integration tests' conftest.py raises it for a test marked with a longer timeout (its timeout - 20 s).
PLAYBOOK_TIMEOUT = float(os.environ.get('CRYO_PLAYBOOK_TIMEOUT', '100'))


class PlaybookTimeout(AssertionError):
    """An ansible-playbook (or module) run of the tests outlived its timeout (it and its processes were killed)."""


def run_command(cmd, env=None, timeout=None, what=None):
    """Run cmd in a session of its own; the CompletedProcess (stdout, stderr as text). When it outlives timeout
    seconds, or the test is interrupted (pytest-timeout, ^C), it is killed with every process below it
    (ansible-playbook's workers and the modules they run too): a PlaybookTimeout with what it printed until then."""
    timeout = PLAYBOOK_TIMEOUT if timeout is None else timeout
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,  # pylint: disable=consider-using-with
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stdout, stderr = _kill_tree(proc)
        raise PlaybookTimeout('%s did not finish within %g s: it and every process below it were killed. '
                              'What it printed:\n%s\n%s' % (what or cmd[0], timeout, stdout, stderr)) from None
    except BaseException:
        _kill_tree(proc)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def with_descendants(table, roots):
    """roots and every process below them, in a process table ({pid: (ppid, cmdline, cgroup)} as _host's)."""
    found = set(roots)
    grown = True
    while grown:
        grown = False
        for pid, (ppid, _cmdline, _cgroup) in table.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grown = True
    return found


def _signal(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _kill_tree(proc):
    """SIGKILL to proc and every process below it (ansible-playbook's workers start sessions of their own, so
    its process group is not enough): all stopped first, until no new one appears, so that none forks or is
    handed to init in between. What it printed, as far as can be read."""
    stopped = set()
    for _attempt in range(20):
        tree = with_descendants(HOST.processes(), {proc.pid}) - stopped
        if not tree:
            break
        _signal(tree, signal.SIGSTOP)
        stopped |= tree
    _signal(stopped, signal.SIGKILL)
    proc.kill()
    try:
        return proc.communicate(timeout=10)
    except (subprocess.TimeoutExpired, ValueError):
        return '', ''


def run_playbook(text, inventory=INVENTORY, limit=None, extra_vars=None, extra_env=None, options=(),
                 timeout=None, what=None):
    """ansible-playbook with a playbook given as YAML text; the CompletedProcess (stdout, stderr as text).

    `{testbed}` in the text is tests/testbed. The inventory is this machine (tests/testbed/inventory.yml)
    unless given; extra_vars go in as a JSON file, so values keep their types. The environment is this
    process's with the collection on ANSIBLE_COLLECTIONS_PATH (unless set), this Python as the
    interpreter (unless set), no colours and no localhost warnings; extra_env comes on top. Killed with its
    processes after timeout seconds (PLAYBOOK_TIMEOUT): a PlaybookTimeout (naming `what`, else the
    playbook's first name:) fails the test."""
    with tempfile.TemporaryDirectory(prefix='cryo-test-') as tmp:
        playbook = os.path.join(tmp, 'play.yml')
        with open(playbook, 'w', encoding='utf-8') as handle:
            handle.write(text.replace('{testbed}', TESTBED))
        cmd = [_ansible_playbook(), playbook, '-i', inventory] + list(options)
        if limit:
            cmd += ['--limit', limit if isinstance(limit, str) else ','.join(limit)]
        if extra_vars:
            with open(os.path.join(tmp, 'vars.json'), 'w', encoding='utf-8') as handle:
                json.dump(extra_vars, handle)
            cmd += ['-e', '@' + os.path.join(tmp, 'vars.json')]
        env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
                   ANSIBLE_NOCOLOR='1')
        env.setdefault('ANSIBLE_COLLECTIONS_PATH', COLLECTIONS)
        env.setdefault('ANSIBLE_COLLECTIONS_SCAN_SYS_PATH', 'false')
        env.setdefault('ANSIBLE_PYTHON_INTERPRETER', sys.executable)
        env.update(extra_env or {})
        return run_command(cmd, env=env, timeout=timeout, what='ansible-playbook (%s)' % (what or first_task(text)))


def first_task(text):
    """The first `name:` of a playbook's text, to say which playbook hung."""
    for line in text.splitlines():
        stripped = line.strip().lstrip('- ')
        if stripped.startswith('name:'):
            return stripped[5:].strip()
    return 'a playbook'


MODULE_PLAYBOOK = """
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


def collection_playbook(name):
    """A playbook that runs the collection's playbook cryo.docker.<name>."""
    return """
- name: The collection's playbook
  ansible.builtin.import_playbook: cryo.docker.%s
""" % name


def remove_containers(client, names):
    """Remove the containers (force), the last made first (members before their holders); gone ones are fine."""
    for name in reversed(names):
        try:
            client.remove_container(name, force=True)
        except docker.errors.NotFound:
            pass


def ok(result):
    """A module's result that succeeded, with no traceback and no MODULE FAILURE in it."""
    text = json.dumps(result)
    assert 'Traceback' not in text and 'MODULE FAILURE' not in result.get('msg', ''), text
    assert not result.get('failed'), result.get('msg', result)
    return result


def run_module(module, args=None, check=False, diff=False, extra_env=None, extra_vars=None,
               timeout=None):
    """Run cryo.docker.<module> (or a FQCN) on localhost as a playbook task; return its registered
    result, with ansible-playbook's output under `_output` (a PlaybookTimeout after timeout seconds)."""
    name = module if '.' in module else 'cryo.docker.' + module
    with tempfile.TemporaryDirectory(prefix='cryo-test-') as tmp:
        out = os.path.join(tmp, 'result.json')
        proc = run_playbook(MODULE_PLAYBOOK.format(module=name, args=json.dumps(args or {})),
                            extra_vars=dict(extra_vars or {}, cryo_out=out), extra_env=extra_env,
                            options=(['--check'] if check else []) + (['--diff'] if diff else []), timeout=timeout, what=name)
        try:
            with open(out, encoding='utf-8') as handle:
                result = json.load(handle)
        except (OSError, ValueError):
            raise AssertionError('ansible-playbook did not return a result (rc %s):\n%s\n%s'
                                 % (proc.returncode, proc.stdout, proc.stderr)) from None
    result['_output'] = proc.stdout + proc.stderr
    return result


def call_module(module, args=None, check=False, diff=False, extra_env=None, timeout=None):
    """Run cryo.docker.<module> on this machine without ansible-playbook (run_module_file: the module's own code,
    as it runs on a managed host, about 2 s less a call than run_module); its result in the shape run_module
    returns it, as ansible-playbook registers it: `failed` always there, warnings as text, no `invocation`, and a
    module that printed no JSON a `MODULE FAILURE`. For the tests that are about a module, not about the
    playbook around it; run_module runs it as a playbook task."""
    name = module.split('.')[-1]
    args = dict(args or {})
    if check:
        args['_ansible_check_mode'] = True
    if diff:
        args['_ansible_diff'] = True
    result, _wall, output = run_module_file(name, args, extra_env=extra_env, timeout=timeout)
    if result is None:
        return dict(failed=True, changed=False, msg='MODULE FAILURE\nSee stdout/stderr for the exact error',
                    module_stdout=output, _output=output)
    result.pop('invocation', None)
    result.setdefault('failed', False)
    result.setdefault('changed', False)
    for key in ('warnings', 'deprecations'):
        if key in result:
            result[key] = [item['event']['msg'] if isinstance(item, dict) and 'event' in item else item
                           for item in result[key]]
    result['_output'] = output
    return result


def run_module_file(module, args, extra_env=None, workdir=None, timeout=None):
    """Run the file of cryo.docker.<module> directly (`python MODULE.py ARGS.json`, the collection on
    PYTHONPATH): the module's own code as it runs on the managed host, without ansible-playbook around
    it (about 1 s less a call). (result, or None when it printed no JSON; wall seconds; its output).
    The arguments file goes in a temporary directory below workdir (the system's by default). Killed with its
    processes after timeout seconds (a PlaybookTimeout)."""
    path = os.path.join(COLLECTIONS, 'ansible_collections', 'cryo', 'docker', 'plugins', 'modules', module + '.py')
    with tempfile.TemporaryDirectory(prefix='cryo-module-', dir=workdir) as tmp:
        args_file = os.path.join(tmp, 'args.json')
        with open(args_file, 'w', encoding='utf-8') as handle:
            json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
        env = dict(os.environ, LANG='C.UTF-8', LC_ALL='C.UTF-8')
        env.update(extra_env or {}, PYTHONPATH=COLLECTIONS)
        started = time.monotonic()
        proc = run_command([sys.executable, path, args_file], env=env, timeout=timeout, what='cryo.docker.' + module)
        wall = time.monotonic() - started
    try:
        return json.loads(proc.stdout), wall, proc.stdout + proc.stderr
    except ValueError:
        return None, wall, proc.stdout + proc.stderr


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


class FleetBed:
    """The simulated fleet (fleet.Fleet) as tests see it: `inventory` (path), `hosts` (fleet-1 ...),
    `clients` ({host: docker.APIClient}), `engine(host)` (the fleet.Engine of a host)."""

    def __init__(self, fleet):
        self.fleet = fleet
        self.inventory = fleet.inventory
        self.hosts = fleet.hosts
        self.clients = fleet.clients()

    @classmethod
    def running(cls, what, **fleet_args):
        """For a pytest fixture: yields a FleetBed of fleet.Fleet(**fleet_args), brought up (an AssertionError
        naming `what` and the fleet's messages when it does not come up) and torn down afterwards unless
        CRYO_FLEET_KEEP=1."""
        import fleet as testbed_fleet  # pylint: disable=import-outside-toplevel
        bed = testbed_fleet.Fleet(**fleet_args)
        messages = []
        try:
            bed.up(log=messages.append)
        except RuntimeError as error:
            bed.down(log=messages.append)
            raise AssertionError('%s did not come up: %s\n%s' % (what, error, '\n'.join(messages))) from None
        try:
            yield cls(bed)
        finally:
            if os.environ.get('CRYO_FLEET_KEEP') != '1':
                bed.down(log=messages.append)

    def engine(self, host):
        return self.fleet.engine(host)

    def docker_host(self, host):
        return self.fleet.engine(host).docker_host

    def playbook(self, text, limit=None, extra_vars=None, timeout=None):
        """Run a playbook (YAML text) against the fleet inventory; return the CompletedProcess."""
        return run_playbook(text, self.inventory, limit=limit, extra_vars=extra_vars, timeout=timeout)

    def run_module(self, module, args_by_host, timeout=None):
        """Run cryo.docker.<module> on several hosts in one play, once per args dict, each on
        its host's engine (docker_host is the host's cryo_docker_host unless given).
        {host: [args, ...]} -> {host: [result, ...]}."""
        name = module if '.' in module else 'cryo.docker.' + module
        keys = sorted({key for args_list in args_by_host.values() for args in args_list for key in args}
                      - {'docker_host'})
        options = ''.join('\n        %s: "{{ item[%r] | default(omit) }}"' % (key, key) for key in keys)
        text = FLEET_MODULE_PLAYBOOK.format(module=name, options=options)
        with tempfile.TemporaryDirectory(prefix='cryo-test-') as out:
            proc = self.playbook(text, limit=sorted(args_by_host),
                                 extra_vars={'cryo_test_args': args_by_host, 'cryo_out': out}, timeout=timeout)
            results = {}
            for host in args_by_host:
                try:
                    with open(os.path.join(out, host + '.json'), encoding='utf-8') as handle:
                        results[host] = json.load(handle)
                except (OSError, ValueError):
                    raise AssertionError('ansible-playbook did not return results for %s (rc %s):\n%s\n%s'
                                         % (host, proc.returncode, proc.stdout, proc.stderr)) from None
        return results


# -- the counter container --------------------------------------------------------------------------

def counter_lines(engine, name):
    """Every number the counter container printed, in order."""
    return [int(x) for x in engine.logs(name).decode(errors='replace').split() if x.isdigit()]


def counter(engine, name):
    """The last number the counter container printed (None before the first)."""
    numbers = counter_lines(engine, name)
    return numbers[-1] if numbers else None


def runs(numbers):
    """Split a counter log into runs of consecutive numbers: [[0..9], [0..3]] is a restart."""
    out = []
    for value in numbers:
        if out and value == out[-1][-1] + 1:
            out[-1].append(value)
        else:
            out.append([value])
    return out


def wait_counter(engine, name, at_least, timeout=20):
    """Wait until the counter printed at_least (or more); return the last number."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = counter(engine, name)
        if value is not None and value >= at_least:
            return value
        time.sleep(0.2)
    raise AssertionError('counter of %s did not reach %s (last %s)' % (name, at_least, counter(engine, name)))


def wait_lines(engine, name, count, timeout=20):
    """Wait until the counter log holds at least `count` numbers; return them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = counter_lines(engine, name)
        if len(lines) >= count:
            return lines
        time.sleep(0.2)
    lines = counter_lines(engine, name)
    raise AssertionError('counter of %s printed only %s numbers, expected %s: %s'
                         % (name, len(lines), count, runs(lines)))


def assert_went_back_to_the_retake(engine, name, value):
    """After a restore (rewind) of a running counter from a checkpoint taken again (force) when it was past
    value + 1: it went back once, and to the retake, not to the first checkpoint (at value)."""
    lines = counter_lines(engine, name)
    wait_lines(engine, name, len(lines) + 2)
    parts = runs(counter_lines(engine, name))
    assert len(parts) == 2 and parts[1][0] > value + 1, parts


# -- containers and checkpoints ---------------------------------------------------------------------

def state(engine, name):
    return engine.inspect_container(name)['State']


def wait_running(engine, name, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state(engine, name).get('Running'):
            return True
        time.sleep(0.1)
    return False


def checkpoints(engine, name, checkpoint_dir=None):
    """Names of the checkpoints the engine lists for a container (sorted), asked the way the modules ask."""
    return _engine.Engine({'docker_host': engine.base_url}, client=engine).list_checkpoints(name, checkpoint_dir)


def checkpoint_path(engine, name, checkpoint):
    """Where the engine keeps a container's checkpoint on disk."""
    root = engine.info().get('DockerRootDir') or '/var/lib/docker'
    return os.path.join(root, 'containers', engine.inspect_container(name)['Id'], 'checkpoints', checkpoint)


# -- HTTP on the loopback ---------------------------------------------------------------------------

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
