"""What every benchmark of bench/ shares: the harness (bench/run.py runs the benchmarks, one module each).

- the workloads: IMAGE (cryo-test/busybox:1), COUNTER, the slow-start app (SLOW_APP, WARM_UP_SECONDS), a
  container holding M MB (ALLOCATE, holding_counter);
- output: say (progress, on stderr), table, report (a summary: its table, notes, targets and one line
  `JSON {...}`);
- numbers: median, medians, ratio, judge and check (a target, as a summary's `checks` list holds it), criu_ms;
- waiting and watching: wait_for, http_ready, ReadyWatch (an app's first HTTP answer), DiskPeak (growth of used
  disk space), rss_bytes and cgroup_memory_bytes (memory of a process);
- Ansible: the collection's modules (their files run directly, or a task of ansible-playbook) and playbooks;
- Bench: one Docker Engine and what the benchmarks do on it: containers (named bench-..., labelled
  cryo.docker.bench, removed with the copies containerd left of their checkpoints), the docker CLI (the
  operator's baseline), resumed (the counter went on), and the test bed's engines side by side (on_engines,
  engine_facts, network_mode);
- choice_list and kind_list (argparse types) and on_signal, for bench/run.py and bench/soak.py.

It shares the test bed's library (tests/testbed/helpers.py: the playbook runner, the counter, the
collection's host facts), and importing it puts tests/testbed first on sys.path. It uses the collection's
own code for what it measures on disk (module_utils/_checkpoint.py: checkpoint sizes, containerd's leftover
copies).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

import docker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'testbed'))
try:
    import helpers
    import fleet as testbed_fleet
except ImportError as error:
    sys.exit('bench: %s' % error)

from ansible_collections.cryo.docker.plugins.module_utils import _host  # noqa: E402
from ansible_collections.cryo.docker.plugins.module_utils._checkpoint import (  # noqa: E402
    containerd_copies, dir_size, engine_dir, remove_containerd_copies)

IMAGE = helpers.IMAGE
LABEL = 'cryo.docker.bench'
# containerd (1.6 here) unpacks a checkpoint into <TMPDIR>/ctrd-checkpoint* to restore it and never
# removes that copy (containerd/containerd#10166). The benchmarks measure it and remove the copies
# of their own containers.
CONTAINERD_TMP = os.environ.get('CRYO_BENCH_CONTAINERD_TMP', '/tmp')

COUNTER = helpers.COUNTER
# The slow-start app: 5 s of "warming up", then it serves /www/index.html on {port} (the readiness probe).
WARM_UP_SECONDS = 5
SLOW_APP = ('echo warming up; sleep %d; echo ready > /www/index.html; echo READY; exec httpd -f -p {port} -h /www'
            % WARM_UP_SECONDS)
APP_PORT = 8080
# How a container comes to hold M MB, busybox only. anon: a shell variable of M MB (anonymous
# memory of PID 1). shm: a file of M MB of random bytes in /dev/shm (a tmpfs that CRIU dumps).
ALLOCATE = {
    'anon': 'x=$(busybox head -c {bytes} /dev/zero | busybox tr "\\0" a)',
    'shm': 'busybox head -c {bytes} /dev/urandom > /dev/shm/fill',
}


def holding_counter(megabytes):
    """The counter, once it holds M MB of anonymous memory (ALLOCATE['anon']: a shell variable of PID 1)."""
    return ALLOCATE['anon'].format(bytes=megabytes << 20) + '; echo allocated; ' + COUNTER


# One task, its result saved by ansible-core's tree callback: the call ends with the module.
MODULE_PLAYBOOK = """
- name: One module call
  hosts: localhost
  gather_facts: false
  tasks:
    - name: The module
      {module}: "{{{{ bench_args }}}}"
"""


class BenchError(Exception):
    pass


def say(text):
    print('.. %s' % text, file=sys.stderr, flush=True)


def median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def medians(runs, keys, spread=False):
    """{key: median over runs} for keys (with spread, also key_min_s and key_max_s: the fastest and slowest run)."""
    out = {}
    for key in keys:
        out[key] = median([r[key] for r in runs])
        if spread:
            out[key[:-2] + '_min_s'] = min(r[key] for r in runs)
            out[key[:-2] + '_max_s'] = max(r[key] for r in runs)
    return out


def ratio(numerator, denominator):
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 2)


def judge(value, target, at_most=False):
    """'met' or 'missed': value at least target (at_most: at most target); None without a value or a target."""
    if value is None or target is None:
        return None
    return 'met' if (value <= target if at_most else value >= target) else 'missed'


def check(name, value, target, at_most=False):
    """One target of a benchmark, as its summary's `checks` list holds it (report() prints them)."""
    return dict(name=name, value=value, target=target, at_most=at_most, met=judge(value, target, at_most) or 'not measured')


def table(columns, rows):
    """Plain text table: columns is a list of (key, heading); rows a list of dicts."""
    def cell(value):
        if value is None:
            return '-'
        return str(value)
    cells = [[column[1] for column in columns]] + [[cell(row.get(column[0])) for column in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ['  '.join(text.rjust(width) for text, width in zip(line, widths)) for line in cells]
    lines.insert(1, '  '.join('-' * width for width in widths))
    return '\n'.join(lines)


def report(summary, columns, rows):
    print()
    print('== %s: %s' % (summary['benchmark'], summary['title']))
    print('baseline: %s' % summary['baseline'])
    print('measured: %s' % summary['measured'])
    print(table(columns, rows))
    for note in summary.get('notes', []):
        print('note: %s' % note)
    for target in summary.get('checks', []):
        print('target: %s %s %s: %s (%s)' % (target['name'], 'at most' if target['at_most'] else 'at least',
                                             target['target'], target['value'], target['met']))
    print('JSON %s' % json.dumps(summary, sort_keys=True))
    sys.stdout.flush()


def http_ready(port):
    try:
        with urllib.request.urlopen('http://127.0.0.1:%d/index.html' % port, timeout=1) as response:
            return response.read().decode().strip() == 'ready'
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_for(predicate, timeout, interval=0.02, what='condition'):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise BenchError('timed out after %ss waiting for %s' % (timeout, what))
        time.sleep(interval)
    return time.monotonic()


def rss_bytes(pid):
    """VmRSS of a process (the collection's host module reads /proc/PID/status), None if not readable."""
    return (_host.parse_vmrss(helpers.HOST.read(pid, 'status')) or None) if pid else None


def cgroup_memory_bytes(pid):
    """Memory charged to the memory cgroup of a process (cgroup v1 or v2), None if not readable."""
    return helpers.HOST.cgroup_memory(pid) if pid else None


def criu_ms(stats, key):
    """A time of CRIU's statistics (microseconds, as docker_checkpoint's `stats` and Podman's --print-stats give
    them) in milliseconds, None if absent."""
    value = (stats or {}).get(key)
    return round(value / 1000.0, 1) if value is not None else None


class Background:
    """A loop (`_loop`) that runs in a thread while the `with` block runs."""

    _stop = None
    _thread = None

    def _loop(self):
        raise NotImplementedError

    def __enter__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False


class ReadyWatch(Background):
    """Asks the app's HTTP port every 20 ms while an operation runs, each attempt in its own
    thread so that one that hangs (a port whose network is not up yet) does not delay the next;
    `wait()` gives the seconds from the start of the watch to the first answer."""

    def __init__(self, port, interval=0.02):
        self.port = port
        self.interval = interval
        self.started = 0.0
        self.ready = None
        self._lock = threading.Lock()
        self._answered = threading.Event()

    def _attempt(self):
        if http_ready(self.port):
            answered = time.monotonic()
            with self._lock:
                if self.ready is None or answered < self.ready:
                    self.ready = answered
            self._answered.set()

    def _loop(self):
        while not self._stop.is_set() and not self._answered.is_set():
            threading.Thread(target=self._attempt, daemon=True).start()
            self._stop.wait(self.interval)

    def __enter__(self):
        self.started = time.monotonic()
        return super().__enter__()

    def wait(self, timeout):
        if not self._answered.wait(timeout):
            raise BenchError('port %d did not answer within %ss' % (self.port, timeout))
        with self._lock:
            return self.ready - self.started


class DiskPeak(Background):
    """Samples the used space of the filesystems holding `paths` while an operation runs.

    `peak` is the largest growth of their summed used space over the value before the operation,
    `after` the growth that remains `settle` seconds after it returned (containerd frees its copy
    of the checkpoint in its content store a moment later). Anything else writing to those
    filesystems at the same time is counted too."""

    def __init__(self, paths, interval=0.02, settle=1.0):
        self.interval = interval
        self.settle = settle
        devices = {}
        for path in paths:
            try:
                devices.setdefault(os.stat(path).st_dev, path)
            except OSError:
                continue
        self.paths = sorted(devices.values())
        self.base = 0
        self.peak = 0
        self.after = 0

    def used(self):
        total = 0
        for path in self.paths:
            stat = os.statvfs(path)
            total += (stat.f_blocks - stat.f_bfree) * stat.f_frsize
        return total

    def _loop(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.used() - self.base)
            self._stop.wait(self.interval)

    def __enter__(self):
        self.base = self.used()
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        self.peak = max(self.peak, self.used() - self.base)
        time.sleep(self.settle)
        self.after = self.used() - self.base
        return False


class Ansible:
    """Runs the collection's modules and playbooks on localhost.

    via=module runs a module file directly (`python docker_restore.py args.json`, the collection on
    PYTHONPATH): the module's own code, without the controller's per-task overhead.
    via=playbook runs it as a task of `ansible-playbook`, as an operator would."""

    def __init__(self, via, docker_host, workdir):
        self.via = via
        self.docker_host = docker_host
        self.workdir = workdir
        self.collections = helpers.COLLECTIONS
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=self.collections,
                        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false', ANSIBLE_LOCALHOST_WARNING='false',
                        ANSIBLE_INVENTORY_UNPARSED_WARNING='false', ANSIBLE_FORCE_COLOR='false',
                        ANSIBLE_PYTHON_INTERPRETER=sys.executable, LANG='C.UTF-8', LC_ALL='C.UTF-8')

    def module(self, name, args):
        """Run cryo.docker.<name>; return (result, wall seconds). Raises BenchError when it fails."""
        args = dict(args, docker_host=self.docker_host)
        tmp = tempfile.mkdtemp(prefix='call-', dir=self.workdir)
        try:
            if self.via == 'module':
                result, wall, output = self._direct(name, args, tmp)
            else:
                result, wall, output = self._playbook(name, args, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if result is None or result.get('failed'):
            raise BenchError('cryo.docker.%s %s failed: %s' % (name, args.get('container'),
                                                               (result or {}).get('msg') or output[-2000:]))
        return result, wall

    def _direct(self, name, args, tmp):
        return helpers.run_module_file(name, args, extra_env=self.env, workdir=tmp)

    def _playbook(self, name, args, tmp):
        tree = os.path.join(tmp, 'tree')
        started = time.monotonic()
        proc = self.playbook(MODULE_PLAYBOOK.format(module='cryo.docker.' + name), dict(bench_args=args),
                             env=dict(ANSIBLE_CALLBACKS_ENABLED='ansible.builtin.tree', ANSIBLE_CALLBACK_TREE_DIR=tree))
        wall = time.monotonic() - started
        try:
            with open(os.path.join(tree, 'localhost'), encoding='utf-8') as handle:
                return json.load(handle), wall, proc.stdout + proc.stderr
        except (OSError, ValueError):
            return None, wall, proc.stdout + proc.stderr

    def playbook(self, text, extra_vars, env=None):
        """ansible-playbook on localhost, through the test bed's runner (tests/testbed/helpers.py)."""
        return helpers.run_playbook(text, extra_vars=extra_vars, extra_env=dict(self.env, **(env or {})))


class Bench:
    """One Docker Engine (options.docker_host, or docker_host) and what the benchmarks do on it; each benchmark's
    function (bench/NAME.py) takes one. options: bench/run.py's (or bench/soak.py's) parsed arguments."""

    def __init__(self, options, docker_host=None):
        self.options = options
        self.run_id = uuid.uuid4().hex[:6]
        self.docker_host = docker_host or options.docker_host
        self.engine = docker.APIClient(base_url=self.docker_host, version='auto')
        self.workdir = tempfile.mkdtemp(prefix='cryo-bench-')
        self.ansible = Ansible(options.via, self.docker_host, self.workdir)
        self.data_root = self.engine.info().get('DockerRootDir') or '/var/lib/docker'
        self.leftovers = dict(dirs=0, bytes=0)

    # -- containers ---------------------------------------------------------------------

    def container(self, kind, command, start=True, ports=None, **host_kwargs):
        name = 'bench-%s-%s-%s' % (kind, self.run_id, uuid.uuid4().hex[:4])
        host_config = self.engine.create_host_config(port_bindings=ports, **host_kwargs)
        self.engine.create_container(IMAGE, ['/bin/sh', '-c', command], name=name, host_config=host_config,
                                     ports=list(ports) if ports else None, labels={LABEL: self.run_id})
        if start:
            self.engine.start(name)
        return name

    def remove(self, names):
        """Remove containers, and the copies containerd left in CONTAINERD_TMP of their checkpoints
        (found as docker_restore finds them: by the checkpoint's images)."""
        for name in names:
            try:
                container_id = self.engine.inspect_container(name)['Id']
            except docker.errors.NotFound:
                continue
            place = engine_dir(self.data_root, container_id)
            for checkpoint in sorted(os.listdir(place)) if os.path.isdir(place) else []:
                path = os.path.join(place, checkpoint)
                for copy in containerd_copies(path, CONTAINERD_TMP):
                    self.leftovers['dirs'] += 1
                    self.leftovers['bytes'] += dir_size(copy)
                remove_containerd_copies(path, CONTAINERD_TMP)
            try:
                self.engine.remove_container(name, force=True)
            except docker.errors.NotFound:
                pass

    def cleanup(self, every_run=False):
        """Remove this run's containers, or with every_run those an interrupted earlier run left."""
        wanted = LABEL if every_run else '%s=%s' % (LABEL, self.run_id)
        names = [c['Names'][0].lstrip('/') for c in self.engine.containers(all=True, filters={'label': wanted})]
        self.remove(names)
        return names

    def logs(self, name):
        return self.engine.logs(name).decode(errors='replace')

    def counter_lines(self, name):
        return helpers.counter_lines(self.engine, name)

    def pid(self, name):
        return self.engine.inspect_container(name)['State'].get('Pid')

    def app_container(self, network=None):
        """The slow-start app, created and not started; (name, port it answers on at 127.0.0.1). On the host
        network it listens on a free port of the host, else on APP_PORT published there."""
        port = helpers.free_port()
        if network == 'host':
            return self.container('warm', SLOW_APP.format(port=port), start=False, network_mode='host'), port
        return self.container('warm', SLOW_APP.format(port=APP_PORT), start=False, ports={APP_PORT: ('127.0.0.1', port)},
                              network_mode=network), port

    def hold_and_count(self, megabytes, network=None):
        """A counter that first holds M MB of anonymous memory (a shell variable of PID 1, --holder anon), once
        it counts and VmRSS of PID 1 shows the memory resident: (name, VmRSS bytes)."""
        name = self.container('hold', holding_counter(megabytes), network_mode=network, security_opt=['seccomp=unconfined'])
        wait_for(lambda: self.counter_lines(name), 120 + megabytes // 8, 0.1, '%s to hold %d MB and count' % (name, megabytes))
        rss = rss_bytes(self.pid(name)) or 0
        if rss < 0.98 * (megabytes << 20):
            raise BenchError('%s holds %.1f MB resident (VmRSS), less than %d MB' % (name, rss / float(1 << 20), megabytes))
        return name, rss

    def cli(self, *args):
        """The docker CLI against this engine (`docker -H URL ARGS`), the operator's baseline: (stdout, wall seconds).
        Raises BenchError when it fails."""
        binary = shutil.which('docker')
        if not binary:
            raise BenchError('the docker CLI is not on PATH (the baseline of checkpoint_speed and overhead)')
        started = time.monotonic()
        proc = subprocess.run([binary, '-H', self.docker_host] + list(args), capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
        if proc.returncode != 0:
            raise BenchError('docker %s failed (rc %d): %s' % (' '.join(args), proc.returncode, proc.stderr.strip()))
        return proc.stdout, wall

    def cli_checkpoint(self, name, checkpoint):
        """`docker checkpoint create NAME CHECKPOINT` until the container stopped: (seconds, attempts), both attempts
        timed when the first met the content-store race of containerd 1.7 and 2.x (`... already exists`) and the
        command was run again, as docker_checkpoint's engine path does."""
        started = time.monotonic()
        try:
            self.cli('checkpoint', 'create', name, checkpoint)
            attempts = 1
        except BenchError as error:
            if 'already exists' not in str(error):
                raise
            self.cli('checkpoint', 'create', name, checkpoint)
            attempts = 2
        wait_for(lambda: not self.engine.inspect_container(name)['State'].get('Running'), 60, 0.02,
                 '%s to stop at its checkpoint' % name)
        return time.monotonic() - started, attempts

    @staticmethod
    def copy_seconds(directory, root):
        """`cp -r` of a checkpoint directory into root (same filesystem as the data root), then sync: seconds."""
        target = os.path.join(root, os.path.basename(directory))
        started = time.monotonic()
        subprocess.run(['cp', '-r', directory, target], check=True)
        os.sync()
        seconds = time.monotonic() - started
        shutil.rmtree(target)
        os.sync()
        return seconds

    def resumed(self, name, timeout=5, from_zero=True):
        """True when the counter runs on from where it was, in one unbroken run, and still counts: 0, 1, 2 ... with
        no restart (from_zero), or from wherever its log starts (an imported counter goes on from its source's)."""
        before = self.counter_lines(name)
        try:
            wait_for(lambda: len(self.counter_lines(name)) > len(before), timeout, 0.1, 'the counter of %s' % name)
        except BenchError:
            return False
        lines = self.counter_lines(name)
        first = 0 if from_zero or not lines else lines[0]
        return bool(self.engine.inspect_container(name)['State'].get('Running')) and lines == list(
            range(first, first + len(lines)))

    def repeats(self, megabytes):
        return self.options.large_repeat if megabytes >= 1024 else self.options.repeat

    # -- the test bed's engines -----------------------------------------------------------

    def on_engines(self, rows_of, images=()):
        """Start the engines of --kinds side by side (tests/testbed/fleet.py: cryo-bench-KIND, removed at the end),
        with the test image and these images of the main engine, and call rows_of(bench, kind) with a Bench on
        each of them: the rows of all."""
        bed = testbed_fleet.Fleet(prefix='cryo-bench', kinds=self.options.kinds)
        rows = []
        try:
            bed.up(log=say)
            for engine in bed.engines:
                for image in images:
                    say('%s: image %s %s' % (engine.name, image, engine.load_image(image)))
                bench = Bench(self.options, docker_host=engine.docker_host)
                try:
                    rows += rows_of(bench, engine.kind)
                finally:
                    bench.cleanup()
                    shutil.rmtree(bench.workdir, ignore_errors=True)
        finally:
            bed.down(log=say)
        return rows

    def engine_facts(self, kind):
        """What a row says of this Bench's engine, a kind of ENGINES: its release, containerd, image store, and the
        network its containers run on (the default bridge, or the host's where it cannot restore a bridge container)."""
        spec = testbed_fleet.ENGINES[kind]
        version = self.engine.version()
        containerd = {c.get('Name'): c.get('Version') for c in version.get('Components') or []}.get('containerd')
        return dict(kind=kind, version=version.get('Version'), containerd=containerd, image_store=spec['image_store'],
                    network='bridge' if spec['bridge_restores'] else 'host')

    @staticmethod
    def network_mode(facts):
        """The network_mode of a container on that engine (None: the default bridge)."""
        return None if facts['network'] == 'bridge' else facts['network']


def choice_list(what, choices):
    """An argparse type: some of choices, comma separated; they come back in the order of choices."""
    def parse(text):
        names = [part.strip() for part in text.split(',') if part.strip()]
        unknown = sorted(set(names) - set(choices))
        if unknown or not names:
            raise argparse.ArgumentTypeError('unknown %s %s; choose from %s'
                                             % (what, ', '.join(unknown) or '(none)', ', '.join(choices)))
        return [name for name in choices if name in names]
    return parse


kind_list = choice_list('engine', testbed_fleet.ENGINES)


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)
