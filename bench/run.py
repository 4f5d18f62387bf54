#!/usr/bin/env python
"""cryo.docker benchmarks: speed and disk use of checkpoint and restore on this machine.

Every benchmark measures its own baseline in the same run and reports ratios against it, as a
table and a JSON summary. Run on demand (`make bench`), never as part of `make test`.

    warm_start     cold start of a slow-start app to ready, against docker_restore to ready
    freeze_window  N counters (--counts; NxM: N counters holding M MB each): one docker_checkpoint/
                   docker_restore call after the other, against the maintenance role's batch calls
    memory         checkpoint and restore time, checkpoint size and peak disk use against
                   the memory the container holds, with `cp -r` of the checkpoint as baseline
    engines        (only with --only) checkpoint and restore time of the counter and of a
                   counter holding --engine-mb MB on each Docker Engine of the test bed's table
                   (tests/testbed/fleet.py ENGINES), started side by side for it
    archive        (only with --only) docker_checkpoint_export of a container holding
                   --archive-mb MB of incompressible memory against docker_checkpoint of it,
                   docker_checkpoint_import against docker_restore of the same checkpoint, and the
                   archive's size against the checkpoint plus the file changes
    checkpoint_speed
                   (only with --only) on each engine of --kinds: a counter holding --speed-sizes MB,
                   docker_checkpoint method runtime against `docker checkpoint create` (the CLI) and
                   against `cp -r` + sync of the same bytes; docker_restore's throughput beside it
    overhead       (only with --only) on each engine of --kinds: docker_checkpoint against the CLI at
                   the smallest --speed-sizes size, and the slow-start app through docker_restore to
                   ready against `docker start --checkpoint` to ready
    podman         (only with --only) Podman's checkpoint and restore of a container holding the same
                   memory (--speed-sizes) against docker_checkpoint method runtime and docker_restore
                   on the local engine; "skipped: <reason>" where Podman cannot run

Usage: run.py [--only warm_start,memory] [--repeat 3] [--counts 1,8,20,8x64] [--freeze-mb 0]
              [--sizes 16,64,256] [--holder anon|shm] [--via module|playbook] [--json FILE]
              [--docker-host URL] [--kinds 20.10,26.1,...] [--engine-mb 256] [--methods auto,engine]
              [--archive-mb 256] [--archive-compression zstd] [--archive-level 1]
              [--speed-sizes 16,256,1024] [--large-repeat 1]

It needs the local Docker Engine (experimental) with CRIU, the image cryo-test/busybox:1
(`make image`) and the collection on ANSIBLE_COLLECTIONS_PATH (`make collection`). Every
container it makes is named bench-... and labelled cryo.docker.bench; all are removed at the end.

It shares the test bed's library (tests/testbed/helpers.py: the playbook runner, the counter, the
collection's host facts) and uses the collection's own code for what it measures on disk
(module_utils/_checkpoint.py: checkpoint sizes, containerd's leftover copies).
"""

import argparse
import itertools
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from xml.etree import ElementTree

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
from ansible_collections.cryo.docker.plugins.module_utils._lifecycle import default_parallel  # noqa: E402

IMAGE = helpers.IMAGE
LABEL = 'cryo.docker.bench'
BENCHMARKS = ('warm_start', 'freeze_window', 'memory', 'engines', 'archive', 'checkpoint_speed', 'overhead', 'podman')
# What runs without --only: engines, checkpoint_speed and overhead start engines of their own and run
# only when asked for; archive (portable checkpoint archives) and podman (another container engine) too.
DEFAULT_BENCHMARKS = ('warm_start', 'freeze_window', 'memory')
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
HOLD = '; echo allocated; while true; do sleep 3600; done'


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

# One task looping over the containers (TASK and MODULE filled in below).
LOOP_TASK = """
    - name: TASK
      cryo.docker.MODULE:
        docker_host: "{{ bench_docker_host }}"
        container: "{{ item }}"
        checkpoint: "{{ bench_checkpoint }}"
      loop: "{{ bench_containers }}"
"""
SEQUENTIAL_PLAYBOOK = """
- name: Freeze and resume the containers one after the other
  hosts: localhost
  gather_facts: false
  tasks:""" + ''.join(LOOP_TASK.replace('TASK', task).replace('MODULE', module) for task, module in (
    ('Checkpoint the containers one by one', 'docker_checkpoint'), ('Restore the containers one by one', 'docker_restore')))

ROLE_PLAYBOOK = """
- name: Freeze and resume the containers with the maintenance role
  hosts: localhost
  gather_facts: false
  roles:
    - role: cryo.docker.maintenance
"""

# junit test cases (task file, task name) that make up each phase.
PHASES = {
    'sequential': {
        'freeze': [('', 'Checkpoint the containers one by one')],
        'restore': [('', 'Restore the containers one by one')],
    },
    # The role: one docker_checkpoint call with containers; one docker_restore call per fallback (one here).
    'concurrent': {
        'freeze': [('/tasks/checkpoint', 'Checkpoint the containers')],
        'restore': [('/tasks/restore', 'Restore the containers')],
    },
}


# freeze_window's targets: result key: (N, MB, target, at most).
FREEZE_TARGETS = {
    'freeze_ratio': (8, 0, 1.7, False),
    'blackout_vs_sequential': (20, 0, 0.3, True),
}
# checkpoint_speed's targets: MB: `docker checkpoint create` / runtime path at least.
SPEED_TARGETS = {256: 8.0, 1024: 10.0}
# overhead's targets (at most): docker_checkpoint / CLI at the smallest size, docker_restore to ready / CLI start
# --checkpoint to ready.
OVERHEAD_TARGETS = {'checkpoint': 1.05, 'warm_start': 1.15}


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
    def __init__(self, options, docker_host=None):
        self.options = options
        self.run_id = uuid.uuid4().hex[:6]
        self.docker_host = docker_host or options.docker_host
        self.engine = docker.APIClient(base_url=self.docker_host, version='auto')
        self.workdir = tempfile.mkdtemp(prefix='cryo-bench-')
        self.ansible = Ansible(options.via, self.docker_host, self.workdir)
        self.data_root = self.engine.info().get('DockerRootDir') or '/var/lib/docker'
        self.summaries = []
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

    # -- 1. warm start -------------------------------------------------------------------

    def warm_start(self):
        rows = []
        for rep in range(self.options.repeat):
            say('warm_start: repetition %d of %d' % (rep + 1, self.options.repeat))
            name, port = self.app_container()
            try:
                with ReadyWatch(port) as watch:
                    self.engine.start(name)
                    cold = watch.wait(WARM_UP_SECONDS + 30)
                checkpoint, checkpoint_wall = self.ansible.module(
                    'docker_checkpoint', dict(container=name, checkpoint='warm'))
                if http_ready(port):
                    raise BenchError('%s still serves after its checkpoint' % name)
                # Probing only once the call returned: requests while the container is down leave the
                # host's ARP entry for its address INCOMPLETE, which delays the first answer by up to 1 s.
                restore, restore_wall = self.ansible.module(
                    'docker_restore', dict(container=name, checkpoint='warm', keep_checkpoint=True))
                with ReadyWatch(port) as watch:
                    after_call = watch.wait(30)
                warm = restore_wall + after_call
                rows.append(dict(
                    repetition=rep + 1, cold_s=round(cold, 3), restore_s=round(warm, 3),
                    call_s=round(restore_wall, 3), engine_restore_s=restore['duration'],
                    ready_after_call_s=round(after_call, 3), verified=restore['verified'],
                    checkpoint_call_s=round(checkpoint_wall, 3), checkpoint_bytes=checkpoint['checkpoint'].get('size'),
                    ratio=ratio(cold, warm), ratio_engine=ratio(cold, restore['duration'])))
            finally:
                self.remove([name])
        cold = median([r['cold_s'] for r in rows])
        warm = median([r['restore_s'] for r in rows])
        engine = median([r['engine_restore_s'] for r in rows])
        summary = dict(
            benchmark='warm_start', title='slow-start app (%d s warm-up, then httpd) to ready' % WARM_UP_SECONDS,
            baseline='cold start: engine start of the created container until it serves (HTTP request every 20 ms)',
            measured='cryo.docker.docker_restore (via %s, keep_checkpoint) from a checkpoint taken once it served, '
                     'until it serves' % self.options.via,
            repeat=self.options.repeat, cold_s=cold, restore_s=warm, ratio=ratio(cold, warm),
            engine_restore_s=engine, ratio_engine=ratio(cold, engine),
            all_verified=all(r['verified'] for r in rows), rows=rows,
            notes=['restore_s: from the start of the module call (%s) until it returned and the app answered its first '
                   'HTTP request (ready_after_call_s in the JSON). Requests are sent only once the call returned: '
                   'requests while the container is down leave the host\'s ARP entry for its address INCOMPLETE, and the '
                   'first answer then comes up to 1 s (the ARP retransmit time) after the container runs again.'
                   % ('a Python process running the module file' if self.options.via == 'module' else
                      'ansible-playbook with the one task, from its start'),
                   'engine_restore_s: the restore request until the engine reports the container running, as the '
                   'module reports it; ratio_engine = cold_s / engine_restore_s.',
                   'Medians over %d repetitions; container creation is not timed in either case.' % self.options.repeat])
        report(summary, [('repetition', '#'), ('cold_s', 'cold s'), ('restore_s', 'restore s'), ('call_s', 'call s'),
                         ('engine_restore_s', 'engine s'), ('verified', 'verified'), ('checkpoint_bytes', 'ckpt bytes'),
                         ('ratio', 'cold/restore'), ('ratio_engine', 'cold/engine')], rows)
        return summary

    # -- 2. freeze window -----------------------------------------------------------------

    def phases(self, junit_dir, mode):
        """Seconds per phase from the junit report: the sum of the phase's task durations."""
        cases = []
        for name in os.listdir(junit_dir):
            tree = ElementTree.parse(os.path.join(junit_dir, name))
            for case in tree.iter('testcase'):
                task = re.sub(r'^\[[^]]*\] [^:]*: (?:[^:]* : )?', '', case.get('name', ''))
                cases.append((case.get('classname', ''), task.strip(), float(case.get('time', 0)), case))
        out = {}
        tasks = {}
        for phase, parts in PHASES[mode].items():
            total = 0.0
            for task_file, task in parts:
                found = [c for c in cases if c[1] == task and c[0].endswith(task_file)]
                if not found:
                    raise BenchError('the junit report has no task %r (%s)' % (task, task_file))
                seconds = sum(c[2] for c in found)
                tasks[task] = round(seconds, 3)
                total += seconds
            out[phase] = round(total, 3)
        return out, tasks, cases

    @staticmethod
    def module_durations(cases, task):
        """The `duration` each loop item of a task reported (junit keeps the task result as system-out)."""
        for _file, name, _seconds, case in cases:
            if name != task:
                continue
            out = case.find('system-out')
            try:
                result = json.loads(out.text) if out is not None and out.text else {}
            except ValueError:
                return []
            return [item.get('duration') for item in result.get('results', []) if item.get('duration') is not None]
        return []

    def outage(self, names, since, until):
        """From the engine's events: seconds from the first container stopping (`die`, the checkpoint) to the last
        one running again (`start`, the restore), and the longest time one container was down."""
        down, up = {}, {}
        for event in self.engine.events(since=since, until=until, decode=True,
                                        filters={'type': 'container', 'container': names}):
            name = (event.get('Actor') or {}).get('Attributes', {}).get('name')
            when = event.get('timeNano', 0) / 1e9
            if event.get('Action') == 'die':
                down.setdefault(name, when)
            elif event.get('Action') == 'start' and name in down:
                up[name] = when
        if not down or set(up) != set(down):
            return None, None
        return (round(max(up.values()) - min(down.values()), 3),
                round(max(up[name] - down[name] for name in down), 3))

    def freeze_run(self, mode, count, megabytes):
        command = (ALLOCATE['anon'].format(bytes=megabytes << 20) + '; ' if megabytes else '') + COUNTER
        names = [self.container('freeze', command) for _index in range(count)]
        try:
            for name in names:
                wait_for(lambda n=name: len(self.counter_lines(n)) >= 2, 20 + megabytes // 10, 0.1, 'the counter of %s' % name)
            tmp = tempfile.mkdtemp(prefix='%s-%d-' % (mode, count), dir=self.workdir)
            junit = os.path.join(tmp, 'junit')
            checkpoint = 'bench-%s' % uuid.uuid4().hex[:8]
            if mode == 'sequential':
                extra = dict(bench_docker_host=self.options.docker_host, bench_containers=names, bench_checkpoint=checkpoint)
                text = SEQUENTIAL_PLAYBOOK
            else:
                extra = dict(maintenance_docker_host=self.options.docker_host, maintenance_containers=names,
                             maintenance_action='none', maintenance_run_id=checkpoint.replace('bench-', ''),
                             maintenance_checkpoint=checkpoint, maintenance_state_dir=os.path.join(tmp, 'state'))
                if self.options.parallel:
                    extra['maintenance_parallel'] = self.options.parallel
                text = ROLE_PLAYBOOK
            since = int(time.time())
            started = time.monotonic()
            proc = self.ansible.playbook(text, extra, env=dict(
                ANSIBLE_CALLBACKS_ENABLED='ansible.builtin.junit', JUNIT_OUTPUT_DIR=junit, JUNIT_TASK_CLASS='true',
                JUNIT_HIDE_TASK_ARGUMENTS='true'))
            total = time.monotonic() - started
            until = int(time.time()) + 2  # whole seconds: the events of the last one are in
            if proc.returncode != 0:
                raise BenchError('the %s playbook failed (rc %d):\n%s' % (mode, proc.returncode, (proc.stdout + proc.stderr)[-3000:]))
            phases, tasks, cases = self.phases(junit, mode)
            if mode == 'sequential':
                freeze_each = self.module_durations(cases, 'Checkpoint the containers one by one')
                restore_each = self.module_durations(cases, 'Restore the containers one by one')
            else:
                with open(os.path.join(tmp, 'state', 'manifest.json'), encoding='utf-8') as handle:
                    manifest = json.load(handle)
                freeze_each = [c.get('checkpoint_seconds') for c in manifest['containers']]
                restore_each = [c.get('restore_seconds') for c in manifest['containers']]
            outage, longest = self.outage(names, since, until)
            resumed = all(self.resumed(name) for name in names)
            return dict(mode=mode, n=count, mb=megabytes, freeze_s=phases['freeze'], restore_s=phases['restore'],
                        blackout_s=round(phases['freeze'] + phases['restore'], 3), outage_s=outage,
                        outage_longest_s=longest, playbook_s=round(total, 3), engine_freeze_max_s=max(freeze_each or [None], key=lambda v: v or 0),
                        engine_freeze_sum_s=round(sum(v for v in freeze_each if v), 3),
                        engine_restore_max_s=max(restore_each or [None], key=lambda v: v or 0), resumed=resumed,
                        tasks=tasks)
        finally:
            self.remove(names)

    def freeze_window(self):
        rows = []
        by_case = {}
        for count, megabytes in self.options.counts:
            megabytes = self.options.freeze_mb if megabytes is None else megabytes
            for mode in ('sequential', 'concurrent'):
                say('freeze_window: %s, %d containers of %d MB' % (mode, count, megabytes))
                row = self.freeze_run(mode, count, megabytes)
                rows.append(row)
                by_case.setdefault((count, megabytes), {})[mode] = row
        results = []
        for (count, megabytes), pair in sorted(by_case.items()):
            seq, conc = pair['sequential'], pair['concurrent']
            result = dict(n=count, mb=megabytes, sequential_freeze_s=seq['freeze_s'], concurrent_freeze_s=conc['freeze_s'],
                          freeze_ratio=ratio(seq['freeze_s'], conc['freeze_s']),
                          sequential_restore_s=seq['restore_s'], concurrent_restore_s=conc['restore_s'],
                          restore_ratio=ratio(seq['restore_s'], conc['restore_s']),
                          sequential_blackout_s=seq['blackout_s'], concurrent_blackout_s=conc['blackout_s'],
                          blackout_vs_sequential=ratio(conc['blackout_s'], seq['blackout_s']),
                          sequential_outage_s=seq['outage_s'], concurrent_outage_s=conc['outage_s'],
                          outage_vs_sequential=ratio(conc['outage_s'], seq['outage_s']))
            results.append(result)
        checks = []
        for key, (n, mb, target, at_most) in FREEZE_TARGETS.items():
            found = [r[key] for r in results if (r['n'], r['mb']) == (n, mb)]
            checks.append(check('%s at %dx%d MB' % (key, n, mb), found[0] if found else None, target, at_most))
        for row in rows:
            pair = by_case[(row['n'], row['mb'])]
            row['freeze_ratio'] = ratio(pair['sequential']['freeze_s'], row['freeze_s'])
            row['restore_ratio'] = ratio(pair['sequential']['restore_s'], row['restore_s'])
            row['blackout_vs_seq'] = ratio(row['blackout_s'], pair['sequential']['blackout_s'])
            row['outage_vs_seq'] = ratio(row['outage_s'], pair['sequential']['outage_s'])
        summary = dict(
            benchmark='freeze_window', title='freeze and restore window against the number of counter containers '
                                             '(NxM: N counters each holding M MB)',
            cases=['%dx%d' % case for case in sorted(by_case)],
            baseline='sequential: one cryo.docker.docker_checkpoint task looping over the containers (no async), '
                     'then one cryo.docker.docker_restore loop, through ansible-playbook',
            measured='concurrent: role cryo.docker.maintenance (maintenance_action: none) - one docker_checkpoint '
                     'call with containers (parallel: %s), then one docker_restore call with containers'
                     % (self.options.parallel or "the module's default, twice the host's CPUs and at least 4: %d "
                        "here" % default_parallel()),
            results=results, rows=rows, all_resumed=all(r['resumed'] for r in rows),
            checks=checks,
            notes=['freeze_s / restore_s: summed durations of the phase\'s tasks from ansible-core\'s junit callback '
                   '(task start to last result; the milliseconds between two tasks are not counted). The role\'s '
                   'preflight, manifest writes and checks are outside the phases and in playbook_s only.',
                   'ratio = sequential / concurrent (above 1: the concurrent window is shorter).',
                   'blackout_s = freeze_s + restore_s (checkpoint and restore, the action excluded); blackout_vs_seq = '
                   'this / sequential (below 1: the blackout is shorter). Per container, from its checkpoint start to '
                   'its restore finish without the time between the phases, the longest of them is this within the '
                   'engine time of one checkpoint and one restore: the first container is checkpointed when the '
                   'freeze phase starts, the last restored when the restore phase ends.',
                   'outage_s: from the engine\'s events, the first container stopping at its checkpoint (die) to '
                   'the last running again (start); for the role it also holds what runs between the phases with '
                   'maintenance_action none (manifest writes, the engine check and preflight again, the network '
                   'holders). outage_longest_s: the longest one container was down.',
                   'engine_*: the `duration` each module reported (checkpoint call until the container stopped; '
                   'restore call until running): concurrent checkpoints share the CPUs (%d here).' % (os.cpu_count() or 0),
                   'resumed: every counter continued from where it was (0, 1, 2 ... no restart) after the run.'])
        report(summary, [('n', 'N'), ('mb', 'MB'), ('mode', 'mode'), ('freeze_s', 'freeze s'), ('freeze_ratio', 'seq/this'),
                         ('restore_s', 'restore s'), ('restore_ratio', 'seq/this'),
                         ('blackout_s', 'blackout s'), ('blackout_vs_seq', 'this/seq'),
                         ('outage_s', 'outage s'), ('outage_vs_seq', 'this/seq'), ('outage_longest_s', 'longest s'),
                         ('engine_freeze_max_s', 'engine ckpt max s'), ('engine_restore_max_s', 'engine rst max s'),
                         ('playbook_s', 'playbook s'), ('resumed', 'resumed')], rows)
        return summary

    # -- 3. memory ------------------------------------------------------------------------

    def disk_paths(self):
        return [self.data_root, tempfile.gettempdir(), '/run', '/var/run']

    def memory_run(self, megabytes):
        holder = self.options.holder
        command = ALLOCATE[holder].format(bytes=megabytes << 20) + HOLD
        extra = dict(shm_size='%dm' % (megabytes + 16)) if holder == 'shm' else {}
        name = self.container('mem', command, **extra)
        copy_root = tempfile.mkdtemp(prefix='bench-copy-', dir=os.path.dirname(self.data_root))
        try:
            wait_for(lambda: 'allocated' in self.logs(name), 120, 0.1, '%s to allocate %d MB' % (name, megabytes))
            pid = self.pid(name)
            rss = rss_bytes(pid)
            cgroup = cgroup_memory_bytes(pid)
            with DiskPeak(self.disk_paths()) as disk_checkpoint:
                checkpoint, checkpoint_wall = self.ansible.module('docker_checkpoint', dict(container=name, checkpoint='mem'))
            directory = checkpoint['checkpoint']['directory']
            size = checkpoint['checkpoint'].get('size') or dir_size(directory)
            copy = self.copy_seconds(directory, copy_root)
            with DiskPeak(self.disk_paths()) as disk_restore:
                restore, restore_wall = self.ansible.module(
                    'docker_restore', dict(container=name, checkpoint='mem', keep_checkpoint=True))
            pid_after = self.pid(name)
            leftover = sum(dir_size(path) for path in containerd_copies(directory, CONTAINERD_TMP))
            cgroup_after = cgroup_memory_bytes(pid_after)
            rss_after = rss_bytes(pid_after)
            mib = float(1 << 20)
            return dict(
                mb=megabytes, rss_mb=round(rss / mib, 1) if rss else None,
                cgroup_mb=round(cgroup / mib, 1) if cgroup else None,
                checkpoint_s=checkpoint['duration'], checkpoint_wall_s=round(checkpoint_wall, 3),
                restore_s=restore['duration'], restore_wall_s=round(restore_wall, 3), copy_s=round(copy, 3),
                size_mb=round(size / mib, 1), size_per_mb=round(size / mib / megabytes, 2),
                checkpoint_mb_per_s=round(size / mib / checkpoint['duration'], 1) if checkpoint['duration'] else None,
                copy_mb_per_s=round(size / mib / copy, 1) if copy else None,
                checkpoint_peak_disk_mb=round(disk_checkpoint.peak / mib, 1),
                checkpoint_peak_per_mb=round(disk_checkpoint.peak / mib / megabytes, 2),
                checkpoint_after_disk_mb=round(disk_checkpoint.after / mib, 1),
                restore_peak_disk_mb=round(disk_restore.peak / mib, 1),
                restore_after_disk_mb=round(disk_restore.after / mib, 1),
                restore_peak_per_mb=round(disk_restore.peak / mib / megabytes, 2),
                rss_after_mb=round(rss_after / mib, 1) if rss_after else None,
                cgroup_after_mb=round(cgroup_after / mib, 1) if cgroup_after else None,
                containerd_leftover_mb=round(leftover / mib, 1), verified=restore['verified'],
                checkpoint_vs_copy=ratio(checkpoint['duration'], copy), restore_vs_copy=ratio(restore['duration'], copy))
        finally:
            self.remove([name])
            shutil.rmtree(copy_root, ignore_errors=True)

    def memory(self):
        rows = []
        for megabytes in self.options.sizes:
            say('memory: %d MB (%s)' % (megabytes, self.options.holder))
            rows.append(self.memory_run(megabytes))
        first = rows[0]
        for row in rows:
            row['checkpoint_vs_first'] = ratio(row['checkpoint_s'], first['checkpoint_s'])
            row['restore_vs_first'] = ratio(row['restore_s'], first['restore_s'])
        summary = dict(
            benchmark='memory', title='checkpoint and restore against the memory the container holds (%s)' % self.options.holder,
            holder=self.options.holder,
            baseline='cp -r of the checkpoint directory to the same filesystem, then sync (raw copy of the same bytes), '
                     'and the smallest size (%d MB)' % first['mb'],
            measured='cryo.docker.docker_checkpoint then cryo.docker.docker_restore (via %s, keep_checkpoint), the engine '
                     'time each module reports' % self.options.via,
            rows=rows, all_verified=all(r['verified'] for r in rows),
            notes=[
                "checkpoint_s / restore_s: the modules' `duration` (engine call until stopped / running); the *_wall_s "
                "columns add the module process around it.",
                "checkpoint_vs_copy = checkpoint_s / copy_s: how many times a plain copy of the same bytes the "
                "checkpoint takes. *_vs_first: against the %d MB case." % first['mb'],
                "peak disk: largest growth of used space on %s while the module ran (statvfs every 20 ms; other "
                "writers on those filesystems count too). The checkpoint, which stays, is part of the checkpoint "
                "peak; during the restore (keep_checkpoint) it is already there and not counted. *_after_disk_mb in the "
                "JSON: the growth that remained 1 s after the call (the checkpoint; after the restore, containerd's "
                "leftover copy)." % ', '.join(DiskPeak(self.disk_paths()).paths),
                "rss_mb: VmRSS of PID 1 before the checkpoint, rss_after_mb: after the restore (the memory came back); "
                "cgroup_mb: memory charged to the container's cgroup (tmpfs included).",
                "containerd_leftover_mb: the copy of the checkpoint containerd unpacked into %s/ctrd-checkpoint* for "
                "the restore and left there (containerd/containerd#10166); removed with the container by this "
                "benchmark, never by the engine." % CONTAINERD_TMP])
        report(summary, [('mb', 'MB'), ('rss_mb', 'rss MB'), ('cgroup_mb', 'cgroup MB'), ('size_mb', 'ckpt MB'),
                         ('checkpoint_s', 'ckpt s'), ('restore_s', 'restore s'), ('copy_s', 'cp s'),
                         ('checkpoint_vs_copy', 'ckpt/cp'), ('restore_vs_copy', 'rst/cp'),
                         ('checkpoint_vs_first', 'ckpt/first'), ('restore_vs_first', 'rst/first'),
                         ('checkpoint_mb_per_s', 'ckpt MB/s'), ('checkpoint_peak_disk_mb', 'ckpt peak MB'),
                         ('checkpoint_peak_per_mb', 'peak/MB'), ('restore_peak_disk_mb', 'rst peak MB'),
                         ('rss_after_mb', 'rss after'), ('cgroup_after_mb', 'cgroup after'),
                         ('containerd_leftover_mb', 'left in %s MB' % CONTAINERD_TMP), ('verified', 'verified')], rows)
        return summary

    # -- 4. engines -----------------------------------------------------------------------

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

    def engines(self):
        kinds = self.options.kinds
        rows = self.on_engines(Bench.engine_rows)
        megabytes = self.options.engine_mb
        summary = dict(
            benchmark='engines', title='checkpoint and restore on each Docker Engine of the test bed',
            baseline='the same workloads on every engine (tests/testbed/fleet.py ENGINES: %s)' % ', '.join(kinds),
            measured='cryo.docker.docker_checkpoint then cryo.docker.docker_restore (via %s, keep_checkpoint) of the '
                     'counter and of a counter holding %d MB, the engine time each module reports; medians of %d'
                     % (self.options.via, megabytes, self.options.repeat),
            rows=rows, all_verified=all(r['verified'] for r in rows), all_resumed=all(r['resumed'] for r in rows),
            notes=[
                "checkpoint_s / restore_s: medians of the modules' `duration` (checkpoint call until stopped / "
                "restore call until running); *_min_s and *_max_s in the JSON.",
                "method: the path docker_checkpoint took (its `method` result; asked for: %s): runtime = runc "
                "checkpoint with the engine's runc state root, straight into the engine's checkpoint place; engine = "
                "the engine's checkpoint endpoint, through containerd's content store. Restores always go through "
                "the engine." % ', '.join(self.options.methods),
                "network: the default bridge where the engine restores it; host on engines that cannot restore a "
                "container with a network namespace of its own (Docker 28.0 to 29.x, moby/moby#50750).",
                "rss_mb: VmRSS of PID 1 before the checkpoint (read through the collection's module_utils/_host.py), "
                "rss_after_mb: after the restore. The memory is the process's own (a shell variable of %d MB) and "
                "came back. resumed: the counter went on where it stopped (0, 1, 2 ... no restart)." % megabytes])
        report(summary, [('kind', 'engine'), ('version', 'version'), ('containerd', 'containerd'),
                         ('image_store', 'image store'), ('network', 'network'), ('workload', 'workload'),
                         ('method', 'method'), ('rss_mb', 'rss MB'), ('checkpoint_mb', 'ckpt MB'),
                         ('checkpoint_s', 'ckpt s'),
                         ('restore_s', 'restore s'), ('rss_after_mb', 'rss after'), ('verified', 'verified'),
                         ('resumed', 'resumed')], rows)
        return summary

    def engine_rows(self, kind):
        """The counter and a counter holding --engine-mb MB, each checkpointed and restored --repeat times on
        this Bench's engine (a kind of ENGINES); one row per workload."""
        facts = self.engine_facts(kind)
        network = self.network_mode(facts)
        megabytes = self.options.engine_mb
        mib = float(1 << 20)
        rows = []
        workloads = (('counter', COUNTER), ('%d MB' % megabytes, holding_counter(megabytes)))
        for (workload, command), method in itertools.product(workloads, self.options.methods):
            results = []
            for rep in range(self.options.repeat):
                say('engines: %s, %s, method %s, repetition %d of %d'
                    % (kind, workload, method, rep + 1, self.options.repeat))
                results.append(self.engine_run(workload, command, network, method))
            rows.append(dict(
                facts, workload=workload, method='/'.join(sorted({r['method'] for r in results})),
                rss_mb=round(min(r['rss'] for r in results) / mib, 1),
                rss_after_mb=round(min(r['rss_after'] for r in results) / mib, 1),
                checkpoint_mb=round(median([r['size'] for r in results]) / mib, 1),
                checkpoint_s=median([r['checkpoint_s'] for r in results]),
                checkpoint_min_s=min(r['checkpoint_s'] for r in results),
                checkpoint_max_s=max(r['checkpoint_s'] for r in results),
                restore_s=median([r['restore_s'] for r in results]),
                restore_min_s=min(r['restore_s'] for r in results),
                restore_max_s=max(r['restore_s'] for r in results),
                verified=all(r['verified'] for r in results), resumed=all(r['resumed'] for r in results)))
        return rows

    def engine_run(self, workload, command, network, method):
        """One checkpoint (docker_checkpoint's method) and restore of a new counter container (that may hold
        memory first)."""
        name = self.container('engine', command, network_mode=network, security_opt=['seccomp=unconfined'])
        try:
            wait_for(lambda: self.counter_lines(name), 120, 0.1, '%s (%s) to start counting' % (name, workload))
            rss = rss_bytes(self.pid(name)) or 0
            checkpoint, _wall = self.ansible.module('docker_checkpoint', dict(container=name, checkpoint='bench',
                                                                              method=method))
            restore, _wall = self.ansible.module('docker_restore', dict(container=name, checkpoint='bench'))
            return dict(checkpoint_s=checkpoint['duration'], restore_s=restore['duration'], rss=rss,
                        method=checkpoint.get('method') or method,
                        size=checkpoint['checkpoint'].get('size') or 0, verified=restore['verified'],
                        resumed=bool(self.resumed(name)), rss_after=rss_bytes(self.pid(name)) or 0)
        finally:
            self.remove([name])

    # -- 5. archive -----------------------------------------------------------------------

    def archive(self):
        rows = []
        for method in self.options.methods:
            for rep in range(self.options.repeat):
                say('archive: %d MB, method %s, repetition %d of %d'
                    % (self.options.archive_mb, method, rep + 1, self.options.repeat))
                rows.append(self.archive_run(self.options.archive_mb, method))
        by_method = []
        for method in self.options.methods:
            runs = [row for row in rows if row['method_asked'] == method]
            row = dict(method_asked=method, method='/'.join(sorted({r['method'] for r in runs})), mb=runs[0]['mb'],
                       compression=runs[0]['compression'])
            row.update(medians(runs, ('checkpoint_s', 'export_s', 'export_checkpoint_s', 'export_archive_s',
                                      'restore_s', 'import_s', 'import_unpack_s', 'import_restore_s', 'checkpoint_mb',
                                      'diff_mb', 'archive_mb')))
            row['export_vs_checkpoint'] = ratio(row['export_s'], row['checkpoint_s'])
            row['import_vs_restore'] = ratio(row['import_s'], row['restore_s'])
            row['size_vs_content'] = ratio(row['archive_mb'], row['checkpoint_mb'] + row['diff_mb'])
            row['verified'] = all(r['verified'] for r in runs)
            row['resumed'] = all(r['resumed'] for r in runs)
            by_method.append(row)
        summary = dict(
            benchmark='archive', title='portable checkpoint archives: export, import and size (%d MB of incompressible '
                                       'memory, %s level %d)' % (self.options.archive_mb, self.options.archive_compression,
                                                                 self.options.archive_level),
            baseline='cryo.docker.docker_checkpoint of the container (checkpoint_s) and cryo.docker.docker_restore of '
                     'that checkpoint on the same engine (restore_s); the checkpoint directory plus rootfs-diff.tar '
                     '(checkpoint_mb + diff_mb)',
            measured='cryo.docker.docker_checkpoint_export taking a checkpoint of the same container (export_s: its '
                     'total_duration, checkpoint and archive) and cryo.docker.docker_checkpoint_import of the archive '
                     'as a new container on the same engine (import_s: import_duration + duration, verification, '
                     'unpacking, creation, staging and restore); via %s, medians of %d'
                     % (self.options.via, self.options.repeat),
            rows=by_method, runs=rows, targets=dict(export_vs_checkpoint=1.3, import_vs_restore=1.3,
                                                    size_vs_content=1.05),
            all_verified=all(r['verified'] for r in rows), all_resumed=all(r['resumed'] for r in rows),
            notes=[
                "The container holds %d MB of random bytes in a shell variable (NUL bytes removed: nearly "
                "incompressible) and counts; it wrote one file (its writable layer)." % self.options.archive_mb,
                "export_s = export_checkpoint_s (the checkpoint the export took, as docker_checkpoint would) + "
                "export_archive_s (file changes read through the Engine API, archive written with sha256 of every "
                "member, fsync, rename).",
                "import_s = import_unpack_s (the verification pass, which reads the whole archive once, then the "
                "unpacking pass, creation, file changes, staging by rename) + import_restore_s (the restore and "
                "its verification, as docker_restore).",
                "size_vs_content: the archive file against the checkpoint directory plus rootfs-diff.tar (the "
                "members that matter; the manifest, spec and configuration add a few KB)."])
        report(summary, [('method', 'method'), ('mb', 'MB'), ('checkpoint_mb', 'ckpt MB'), ('archive_mb', 'archive MB'),
                         ('size_vs_content', 'size/content'), ('checkpoint_s', 'ckpt s'), ('export_s', 'export s'),
                         ('export_checkpoint_s', 'exp ckpt s'), ('export_archive_s', 'exp archive s'),
                         ('export_vs_checkpoint', 'export/ckpt'), ('restore_s', 'restore s'), ('import_s', 'import s'),
                         ('import_unpack_s', 'imp unpack s'), ('import_restore_s', 'imp restore s'),
                         ('import_vs_restore', 'import/restore'), ('verified', 'verified'), ('resumed', 'resumed')],
               by_method)
        return summary

    def archive_run(self, megabytes, method):
        """One container: checkpoint and local restore (baselines), then export and import of a second checkpoint."""
        fill = ('x=$(busybox head -c %d /dev/urandom | busybox tr -d "\\0"); echo allocated; echo run-time > '
                '/tmp/written; ' % (megabytes << 20)) + COUNTER
        name = self.container('archive', fill, security_opt=['seccomp=unconfined'])
        copy = name + '-imported'
        path = os.path.join(self.workdir, name + '.tar.zst')
        mib = float(1 << 20)
        try:
            wait_for(lambda: 'allocated' in self.logs(name), 180, 0.1, '%s to allocate %d MB' % (name, megabytes))
            wait_for(lambda: self.counter_lines(name), 30, 0.1, '%s to count' % name)
            checkpoint, _wall = self.ansible.module('docker_checkpoint', dict(container=name, checkpoint='base',
                                                                              method=method))
            restore, _wall = self.ansible.module('docker_restore', dict(container=name, checkpoint='base'))
            exported, _wall = self.ansible.module('docker_checkpoint_export', dict(
                container=name, checkpoint='exp', path=path, method=method,
                compression=self.options.archive_compression, compression_level=self.options.archive_level))
            checkpoint_bytes = exported['checkpoint']['size'] or 0
            imported, _wall = self.ansible.module('docker_checkpoint_import', dict(
                path=path, container=copy, published_ports=[], allow=['security_options']))
            return dict(
                mb=megabytes, method_asked=method, method=exported.get('method') or method,
                compression=exported['archive']['compression'], checkpoint_s=checkpoint['duration'],
                restore_s=restore['duration'], export_s=exported['total_duration'],
                export_checkpoint_s=exported['checkpoint_duration'], export_archive_s=exported['duration'],
                import_s=round(imported['import_duration'] + imported['duration'], 3),
                import_unpack_s=imported['import_duration'], import_restore_s=imported['duration'],
                checkpoint_mb=round(checkpoint_bytes / mib, 2),
                diff_mb=round(exported['file_changes']['size'] / mib, 3),
                archive_mb=round(exported['archive']['size'] / mib, 2),
                verified=bool(restore['verified'] and imported['verified']),
                resumed=self.resumed(copy, from_zero=False))
        finally:
            self.remove([copy, name])
            if os.path.exists(path):
                os.unlink(path)

    # -- 6. checkpoint speed --------------------------------------------------------------

    def repeats(self, megabytes):
        return self.options.large_repeat if megabytes >= 1024 else self.options.repeat

    def checkpoint_speed(self):
        rows = self.on_engines(Bench.speed_rows)
        checks = [check('cli_vs_runtime on %s at %d MB' % (row['kind'], row['mb']), row['cli_vs_runtime'],
                        SPEED_TARGETS[row['mb']]) for row in rows if row['mb'] in SPEED_TARGETS]
        summary = dict(
            benchmark='checkpoint_speed', title='checkpoint throughput: the runtime path against the CLI and a raw copy',
            baseline='`docker -H <engine> checkpoint create` (the docker CLI, the operator\'s baseline; until the '
                     'container stopped) and `cp -r` of the runtime checkpoint directory beside the data root + sync '
                     '(a raw copy of the same bytes)',
            measured='cryo.docker.docker_checkpoint method runtime, the module file run directly (wall time of the '
                     'process); cryo.docker.docker_restore of each checkpoint (its `duration`, through the engine)',
            rows=rows, checks=checks, all_verified=all(r['verified'] for r in rows),
            all_resumed=all(r['resumed'] for r in rows),
            notes=[
                "A counter that first holds M MB in a shell variable of PID 1; VmRSS of PID 1 (rss MB) is checked to "
                "hold M before anything is timed. One container per repetition: the runtime checkpoint, the raw copy "
                "of its directory, its restore, then the CLI checkpoint and its restore (medians of %d; of %d for "
                "1024 MB and more)." % (self.options.repeat, self.options.large_repeat),
                "runtime s: docker_checkpoint's wall time (Python start, engine calls, runc checkpoint, the wait for the "
                "stop, the record); module duration s: its own `duration` (without the Python start and argument "
                "checks, about 0.2 s here); frozen ms: CRIU's frozen_time from its stats (memdump_ms, memwrite_ms in "
                "the JSON). cli s: the CLI "
                "process until the engine shows the container stopped (retried once on containerd's `already exists` "
                "race, both attempts timed; cli_attempts in the JSON).",
                "cli/runtime = cli s / runtime s (targets: at least 8 at 256 MB, 10 at 1024 MB); runtime/cp = runtime "
                "s / cp s (1: disk speed).",
                "restore s: docker_restore of the runtime checkpoint (restore_cli_s in the JSON: of the CLI's), its "
                "`duration` (restore request until running and verified), through the engine and containerd's content "
                "store; restore MB/s = checkpoint size / restore s.",
                "resumed: the counter went on where it stopped after both restores (0, 1, 2 ... no restart); rss after: "
                "VmRSS of PID 1 after the last restore."])
        report(summary, [('kind', 'engine'), ('version', 'version'), ('network', 'network'), ('mb', 'MB'),
                         ('rss_mb', 'rss MB'), ('checkpoint_mb', 'ckpt MB'), ('runtime_s', 'runtime s'),
                         ('cli_s', 'cli s'), ('copy_s', 'cp s'), ('cli_vs_runtime', 'cli/runtime'),
                         ('target', 'target'), ('met', 'met'), ('runtime_vs_copy', 'runtime/cp'),
                         ('runtime_duration_s', 'module duration s'), ('frozen_ms', 'frozen ms'),
                         ('runtime_mb_per_s', 'runtime MB/s'), ('cli_mb_per_s', 'cli MB/s'),
                         ('copy_mb_per_s', 'cp MB/s'), ('restore_s', 'restore s'),
                         ('restore_mb_per_s', 'restore MB/s'), ('rss_after_mb', 'rss after'),
                         ('verified', 'verified'), ('resumed', 'resumed')], rows)
        return summary

    def speed_rows(self, kind):
        facts = self.engine_facts(kind)
        mib = float(1 << 20)
        rows = []
        for megabytes in self.options.speed_sizes:
            runs = []
            for rep in range(self.repeats(megabytes)):
                say('checkpoint_speed: %s, %d MB, repetition %d of %d' % (kind, megabytes, rep + 1, self.repeats(megabytes)))
                runs.append(self.speed_run(megabytes, self.network_mode(facts)))
            row = dict(facts, mb=megabytes, repeat=len(runs), method='/'.join(sorted({r['method'] for r in runs})),
                       rss_mb=round(min(r['rss'] for r in runs) / mib, 1),
                       rss_after_mb=round(min(r['rss_after'] for r in runs) / mib, 1),
                       checkpoint_mb=round(median([r['size'] for r in runs]) / mib, 1),
                       cli_attempts=max(r['cli_attempts'] for r in runs),
                       verified=all(r['verified'] for r in runs), resumed=all(r['resumed'] for r in runs))
            row.update(medians(runs, ('frozen_ms', 'memdump_ms', 'memwrite_ms')))
            row.update(medians(runs, ('runtime_s', 'runtime_duration_s', 'cli_s', 'copy_s', 'restore_s',
                                      'restore_cli_s'), spread=True))
            for key in ('runtime', 'cli', 'copy', 'restore'):
                row[key + '_mb_per_s'] = round(row['checkpoint_mb'] / row[key + '_s'], 1) if row[key + '_s'] else None
            row['cli_vs_runtime'] = ratio(row['cli_s'], row['runtime_s'])
            row['runtime_vs_copy'] = ratio(row['runtime_s'], row['copy_s'])
            row['cli_vs_copy'] = ratio(row['cli_s'], row['copy_s'])
            row['target'] = SPEED_TARGETS.get(megabytes)
            row['met'] = judge(row['cli_vs_runtime'], row['target'])
            rows.append(row)
        return rows

    def speed_run(self, megabytes, network):
        """One container holding M MB: runtime checkpoint, raw copy of it, restore; CLI checkpoint, restore."""
        name, rss = self.hold_and_count(megabytes, network)
        copy_root = tempfile.mkdtemp(prefix='bench-copy-', dir=os.path.dirname(self.data_root))
        try:
            runtime, runtime_wall = self.ansible.module('docker_checkpoint', dict(container=name, checkpoint='runtime',
                                                                                  method='runtime'))
            directory = runtime['checkpoint']['directory']
            size = runtime['checkpoint'].get('size') or dir_size(directory)
            copy = self.copy_seconds(directory, copy_root)
            restore, _wall = self.ansible.module('docker_restore', dict(container=name, checkpoint='runtime'))
            resumed = self.resumed(name)
            cli, attempts = self.cli_checkpoint(name, 'cli')
            restore_cli, _wall = self.ansible.module('docker_restore', dict(container=name, checkpoint='cli'))
            return dict(runtime_s=round(runtime_wall, 3), runtime_duration_s=runtime['duration'],
                        method=runtime.get('method'), cli_s=round(cli, 3), cli_attempts=attempts,
                        copy_s=round(copy, 3), restore_s=restore['duration'], restore_cli_s=restore_cli['duration'],
                        frozen_ms=criu_ms(runtime.get('stats'), 'frozen_time'),
                        memdump_ms=criu_ms(runtime.get('stats'), 'memdump_time'),
                        memwrite_ms=criu_ms(runtime.get('stats'), 'memwrite_time'),
                        size=size, rss=rss, rss_after=rss_bytes(self.pid(name)) or 0,
                        verified=bool(restore['verified'] and restore_cli['verified']),
                        resumed=bool(resumed and self.resumed(name)))
        finally:
            self.remove([name])
            shutil.rmtree(copy_root, ignore_errors=True)

    # -- 7. overhead ----------------------------------------------------------------------

    def overhead(self):
        rows = self.on_engines(Bench.overhead_rows)
        checks = []
        for row in rows:
            checks.append(check('module/cli checkpoint (method engine) on %s at %d MB' % (row['kind'], row['mb']),
                                row['engine_vs_cli'], OVERHEAD_TARGETS['checkpoint'], at_most=True))
            checks.append(check('module/cli checkpoint (method auto) on %s at %d MB' % (row['kind'], row['mb']),
                                row['auto_vs_cli'], OVERHEAD_TARGETS['checkpoint'], at_most=True))
            checks.append(check('docker_restore/start --checkpoint to ready on %s' % row['kind'], row['warm_vs_cli'],
                                OVERHEAD_TARGETS['warm_start'], at_most=True))
        summary = dict(
            benchmark='overhead', title='the modules against the docker CLI: checkpoint at the smallest size, warm start',
            baseline='`docker -H <engine> checkpoint create` of the same container (until it stopped), and `docker -H '
                     '<engine> start --checkpoint` of the slow-start app (%d s warm-up) until it answers' % WARM_UP_SECONDS,
            measured='cryo.docker.docker_checkpoint (method engine and method auto) and cryo.docker.docker_restore '
                     '(keep_checkpoint) of the same app, the module files run directly (wall time of the process, '
                     'until ready for the restore); medians of %d' % self.options.repeat,
            rows=rows, checks=checks, all_verified=all(r['verified'] for r in rows),
            all_resumed=all(r['resumed'] for r in rows),
            notes=[
                "checkpoint: a counter holding the smallest --speed-sizes size, checkpointed by the CLI, by the module "
                "with method engine (the CLI's path: the overhead of the module) and with method auto (the runtime path "
                "where it can), each restored by docker_restore before the next; the order turns with each repetition. "
                "engine/cli and auto/cli: module wall / CLI wall (target at most %.2f)." % OVERHEAD_TARGETS['checkpoint'],
                "warm start: the app checkpointed by docker_checkpoint (method auto) twice once it served; one "
                "checkpoint restored by docker_restore, the other by the CLI, each from the start of the process until "
                "the app answered its first HTTP request (asked only once the process returned, as warm_start does); "
                "the order turns with each repetition. module/cli: docker_restore to ready / CLI to ready (target at "
                "most %.2f); cold s: the app's cold start to ready." % OVERHEAD_TARGETS['warm_start']])
        report(summary, [('kind', 'engine'), ('version', 'version'), ('network', 'network'), ('mb', 'MB'),
                         ('cli_checkpoint_s', 'cli ckpt s'), ('engine_checkpoint_s', 'module engine s'),
                         ('engine_vs_cli', 'engine/cli'), ('auto_checkpoint_s', 'module auto s'),
                         ('auto_vs_cli', 'auto/cli'), ('cold_s', 'cold s'), ('cli_ready_s', 'cli start ready s'),
                         ('module_ready_s', 'docker_restore ready s'), ('warm_vs_cli', 'module/cli'),
                         ('verified', 'verified'), ('resumed', 'resumed')], rows)
        return summary

    def overhead_rows(self, kind):
        facts = self.engine_facts(kind)
        network = self.network_mode(facts)
        megabytes = min(self.options.speed_sizes)
        runs = []
        for rep in range(self.options.repeat):
            say('overhead: %s, repetition %d of %d' % (kind, rep + 1, self.options.repeat))
            runs.append(dict(self.overhead_run(megabytes, network, rep), **self.overhead_warm(network, rep)))
        row = dict(facts, mb=megabytes, repeat=len(runs), auto_method='/'.join(sorted({r['auto_method'] for r in runs})),
                   verified=all(r['verified'] and r['warm_verified'] for r in runs), resumed=all(r['resumed'] for r in runs),
                   runs=runs)
        row.update(medians(runs, ('cli_checkpoint_s', 'engine_checkpoint_s', 'auto_checkpoint_s', 'cold_s',
                                  'cli_ready_s', 'module_ready_s', 'module_call_s', 'cli_call_s')))
        row['engine_vs_cli'] = ratio(row['engine_checkpoint_s'], row['cli_checkpoint_s'])
        row['auto_vs_cli'] = ratio(row['auto_checkpoint_s'], row['cli_checkpoint_s'])
        row['warm_vs_cli'] = ratio(row['module_ready_s'], row['cli_ready_s'])
        return [row]

    def overhead_run(self, megabytes, network, turn):
        """One counter holding M MB checkpointed by the CLI, by docker_checkpoint method engine and method auto
        (in an order that turns with `turn`), each restored by docker_restore."""
        name, _rss = self.hold_and_count(megabytes, network)
        order = ['cli', 'engine', 'auto']
        order = order[turn % 3:] + order[:turn % 3]
        seconds = {}
        verified = True
        try:
            for way in order:
                if way == 'cli':
                    seconds[way], _attempts = self.cli_checkpoint(name, way)
                else:
                    result, seconds[way] = self.ansible.module('docker_checkpoint', dict(container=name, checkpoint=way,
                                                                                         method=way))
                    seconds['method_' + way] = result.get('method')
                restore, _wall = self.ansible.module('docker_restore', dict(container=name, checkpoint=way))
                verified = verified and bool(restore['verified'])
            return dict(cli_checkpoint_s=round(seconds['cli'], 3), engine_checkpoint_s=round(seconds['engine'], 3),
                        auto_checkpoint_s=round(seconds['auto'], 3), auto_method=seconds['method_auto'],
                        verified=verified, resumed=bool(self.resumed(name)))
        finally:
            self.remove([name])

    def overhead_warm(self, network, turn):
        """The slow-start app, once it served: docker_restore to ready and CLI start --checkpoint to ready, each
        from a checkpoint docker_checkpoint took (in an order that turns with `turn`)."""
        name, port = self.app_container(network)
        ready = {}
        try:
            with ReadyWatch(port) as watch:
                self.engine.start(name)
                cold = watch.wait(WARM_UP_SECONDS + 30)
            for way in (('module', 'cli') if turn % 2 == 0 else ('cli', 'module')):
                self.ansible.module('docker_checkpoint', dict(container=name, checkpoint=way))
                if way == 'module':
                    restore, call = self.ansible.module('docker_restore', dict(container=name, checkpoint=way,
                                                                               keep_checkpoint=True))
                    ready['verified'] = bool(restore['verified'])
                else:
                    _out, call = self.cli('start', '--checkpoint', way, name)
                with ReadyWatch(port) as watch:
                    ready[way] = call + watch.wait(30)
                ready[way + '_call'] = call
            return dict(cold_s=round(cold, 3), module_ready_s=round(ready['module'], 3),
                        cli_ready_s=round(ready['cli'], 3), module_call_s=round(ready['module_call'], 3),
                        cli_call_s=round(ready['cli_call'], 3), warm_verified=ready['verified'])
        finally:
            self.remove([name])

    # -- 8. podman ------------------------------------------------------------------------

    def podman_cli(self, *args, check_rc=True):
        """`podman ARGS`: (stdout, wall seconds); BenchError when it fails and check_rc."""
        started = time.monotonic()
        proc = subprocess.run(['podman'] + list(args), capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
        if check_rc and proc.returncode != 0:
            raise BenchError('podman %s failed (rc %d): %s' % (' '.join(args[:3]), proc.returncode,
                                                               (proc.stderr or proc.stdout).strip()[-1500:]))
        return proc.stdout, wall

    def podman_ready(self):
        """None when Podman can run the benchmark's containers (its image loaded from this engine), else why not."""
        if not shutil.which('podman'):
            return 'podman is not installed (apt-get install podman: Debian 12 has 4.3.1)'
        try:
            image_id = self.engine.inspect_image(IMAGE)['Id'].split(':', 1)[-1]
            out, _wall = self.podman_cli('image', 'inspect', '--format', '{{.Id}}', IMAGE, check_rc=False)
            if out.strip() != image_id:
                path = os.path.join(self.workdir, 'image.tar')
                with open(path, 'wb') as handle:
                    for chunk in self.engine.get_image(IMAGE):
                        handle.write(chunk)
                self.podman_cli('load', '--input', path)
                os.unlink(path)
            left, _wall = self.podman_cli('ps', '--all', '--quiet', '--filter', 'label=' + LABEL)
            if left.split():
                self.podman_cli('rm', '--force', *left.split())
            return None
        except BenchError as error:
            return str(error)

    def podman(self):
        reason = self.podman_ready()
        rows = []
        for megabytes in self.options.speed_sizes if not reason else []:
            runs = []
            for rep in range(self.repeats(megabytes)):
                say('podman: %d MB, repetition %d of %d' % (megabytes, rep + 1, self.repeats(megabytes)))
                try:
                    runs.append(self.podman_run(megabytes))
                except BenchError as error:
                    if 'podman' not in str(error):
                        raise
                    reason = str(error)
                    break
            if reason:
                break
            row = dict(mb=megabytes, repeat=len(runs), method='/'.join(sorted({r['method'] for r in runs})),
                       rss_mb=round(min(r['rss'] for r in runs) / float(1 << 20), 1),
                       podman_rss_mb=round(min(r['podman_rss'] for r in runs) / float(1 << 20), 1),
                       verified=all(r['verified'] for r in runs), resumed=all(r['resumed'] for r in runs))
            row.update(medians(runs, ('runtime_s', 'runtime_duration_s', 'restore_s', 'podman_checkpoint_s',
                                      'podman_restore_s', 'podman_frozen_ms', 'runtime_frozen_ms')))
            row['podman_vs_runtime'] = ratio(row['podman_checkpoint_s'], row['runtime_s'])
            row['podman_restore_vs_restore'] = ratio(row['podman_restore_s'], row['restore_s'])
            row['met'] = judge(row['podman_vs_runtime'], 1.0)
            rows.append(row)
        if reason:
            rows = []
        summary = dict(
            benchmark='podman', title='Podman as a peer: checkpoint and restore of a container holding the same memory',
            baseline='podman container checkpoint / podman container restore (Podman %s, runc, --network none, wall '
                     'time of the command)' % (self.podman_version() if not reason else '-'),
            measured='cryo.docker.docker_checkpoint method runtime (wall time of the module process) and '
                     'cryo.docker.docker_restore (its `duration`) on %s' % self.docker_host,
            rows=rows, skipped=reason, checks=[check('podman/runtime checkpoint at %d MB' % row['mb'],
                                                     row['podman_vs_runtime'], 1.0) for row in rows],
            notes=(['skipped: %s' % reason] if reason else []) + [
                "Both containers: busybox (%s, loaded into Podman from this engine), a counter that first holds M MB in "
                "a shell variable of PID 1 (VmRSS checked), seccomp unconfined; Podman's with --runtime runc (Debian's "
                "crun has no CRIU), --network none and --ulimit nofile=20000:20000 nproc=32768:32768 (Podman's default "
                "rlimits are refused in this VM)." % IMAGE,
                "podman/runtime = podman checkpoint s / runtime s (above 1: the runtime path is faster; target: above 1); "
                "podman restore/restore = podman restore s / docker_restore s. frozen ms: CRIU's frozen_time "
                "(--print-stats and the module's stats)."])
        report(summary, [('mb', 'MB'), ('rss_mb', 'rss MB'), ('podman_rss_mb', 'podman rss MB'),
                         ('runtime_s', 'runtime s'), ('podman_checkpoint_s', 'podman ckpt s'),
                         ('podman_vs_runtime', 'podman/runtime'), ('met', 'met'), ('runtime_frozen_ms', 'frozen ms'),
                         ('podman_frozen_ms', 'podman frozen ms'), ('restore_s', 'restore s'),
                         ('podman_restore_s', 'podman restore s'), ('podman_restore_vs_restore', 'podman/restore'),
                         ('verified', 'verified'), ('resumed', 'resumed')], rows)
        return summary

    def podman_version(self):
        out, _wall = self.podman_cli('version', '--format', '{{.Client.Version}}', check_rc=False)
        return out.strip() or 'unknown'

    def podman_counter(self, name):
        out, _wall = self.podman_cli('logs', name, check_rc=False)
        return [int(line) for line in out.split() if line.isdigit()]

    def podman_run(self, megabytes):
        """The same container on this engine (runtime checkpoint, docker_restore) and in Podman (checkpoint, restore)."""
        name, rss = self.hold_and_count(megabytes)
        try:
            runtime, runtime_wall = self.ansible.module('docker_checkpoint', dict(container=name, checkpoint='peer',
                                                                                  method='runtime'))
            restore, _wall = self.ansible.module('docker_restore', dict(container=name, checkpoint='peer'))
            resumed = self.resumed(name)
        finally:
            self.remove([name])
        peer = 'bench-podman-%s-%s' % (self.run_id, uuid.uuid4().hex[:4])
        try:
            self.podman_cli('run', '--detach', '--name', peer, '--label', '%s=%s' % (LABEL, self.run_id),
                            '--runtime', 'runc', '--network', 'none', '--security-opt', 'seccomp=unconfined',
                            '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=32768:32768', IMAGE,
                            '/bin/sh', '-c', holding_counter(megabytes))
            wait_for(lambda: self.podman_counter(peer), 120 + megabytes // 8, 0.1, 'podman %s to count' % peer)
            out, _wall = self.podman_cli('inspect', '--format', '{{.State.Pid}}', peer)
            podman_rss = rss_bytes(int(out.strip() or 0)) or 0
            out, checkpoint_wall = self.podman_cli('container', 'checkpoint', '--print-stats', peer)
            frozen = criu_ms(podman_stats(out), 'frozen_time')
            _out, restore_wall = self.podman_cli('container', 'restore', '--print-stats', peer)
            before = self.podman_counter(peer)
            wait_for(lambda: len(self.podman_counter(peer)) > len(before), 5, 0.1, 'podman %s to count on' % peer)
            lines = self.podman_counter(peer)
            stats = runtime.get('stats')
            return dict(runtime_s=round(runtime_wall, 3), runtime_duration_s=runtime['duration'],
                        method=runtime.get('method'), restore_s=restore['duration'], rss=rss, podman_rss=podman_rss,
                        podman_checkpoint_s=round(checkpoint_wall, 3), podman_restore_s=round(restore_wall, 3),
                        podman_frozen_ms=frozen, runtime_frozen_ms=criu_ms(stats, 'frozen_time'),
                        verified=bool(restore['verified']),
                        resumed=bool(resumed and lines == list(range(len(lines)))))
        finally:
            self.podman_cli('rm', '--force', peer, check_rc=False)

    # -- run ------------------------------------------------------------------------------

    def environment(self):
        version = self.engine.version()
        # The criu runc runs: the first on the PATH of the engine's dockerd.
        criu = _host.find_program('criu', helpers.HOST.search_path(self.options.docker_host)[0])
        criu_version = None
        if criu:
            proc = subprocess.run([criu, '--version'], capture_output=True, text=True, check=False)
            match = re.search(r'Version:\s*(\S+)', proc.stdout)
            criu_version = match.group(1) if match else None
        return dict(engine=version.get('Version'), api=version.get('ApiVersion'), kernel=platform.release(),
                    criu=criu_version, criu_path=criu, cpus=os.cpu_count(), image=IMAGE, via=self.options.via,
                    data_root=self.data_root, time=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))

    def run(self):
        if not self.engine.images(name=IMAGE):
            raise BenchError('the image %s is missing: run `make image` first' % IMAGE)
        left = self.cleanup(every_run=True)
        if left:
            say('removed containers an earlier run left: %s' % ', '.join(left))
        env = self.environment()
        print('environment: %s' % json.dumps(env, sort_keys=True))
        started = time.monotonic()
        try:
            for name in self.options.only:
                self.summaries.append(getattr(self, name)())
        finally:
            self.cleanup()
            shutil.rmtree(self.workdir, ignore_errors=True)
        total = round(time.monotonic() - started, 1)
        print('\nbenchmarks %s done in %.1f s' % (', '.join(self.options.only), total))
        leftovers = dict(self.leftovers, mb=round(self.leftovers['bytes'] / float(1 << 20), 1))
        print('containerd left %d ctrd-checkpoint directories (%.1f MB) in %s for these containers; removed'
              % (leftovers['dirs'], leftovers['mb'], CONTAINERD_TMP))
        if self.options.json:
            with open(self.options.json, 'w', encoding='utf-8') as handle:
                json.dump(dict(environment=env, seconds=total, benchmarks=self.summaries, containerd_leftovers=leftovers),
                          handle, indent=2, sort_keys=True)
                handle.write('\n')
            print('summary written to %s' % self.options.json)


def number_list(text):
    try:
        values = [int(part) for part in text.split(',') if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError('expected numbers separated by commas, got %r' % text) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError('expected positive numbers separated by commas, got %r' % text)
    return values


def count_list(text):
    """freeze_window cases: N (N counters holding --freeze-mb) or NxM (N counters holding M MB each)."""
    cases = []
    for part in [part.strip() for part in text.split(',') if part.strip()]:
        match = re.match(r'^([1-9][0-9]*)(?:x([0-9]+))?$', part)
        if not match:
            raise argparse.ArgumentTypeError('expected N or NxM (N containers of M MB), comma separated, got %r' % text)
        cases.append((int(match.group(1)), int(match.group(2)) if match.group(2) else None))
    if not cases:
        raise argparse.ArgumentTypeError('expected N or NxM, comma separated, got %r' % text)
    return cases


def criu_ms(stats, key):
    """A time of CRIU's statistics (microseconds, as docker_checkpoint's `stats` and Podman's --print-stats give
    them) in milliseconds, None if absent."""
    value = (stats or {}).get(key)
    return round(value / 1000.0, 1) if value is not None else None


def podman_stats(text):
    """CRIU's statistics from `podman container checkpoint --print-stats` output ({} if absent)."""
    try:
        return json.loads(text)['container_statistics'][0]['criu_statistics']
    except (ValueError, KeyError, IndexError, TypeError):
        return {}


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


benchmark_list = choice_list('benchmark', BENCHMARKS)
kind_list = choice_list('engine', testbed_fleet.ENGINES)


def method_list(text):
    names = [part.strip() for part in text.split(',') if part.strip()]
    if not names or set(names) - {'auto', 'engine', 'runtime'}:
        raise argparse.ArgumentTypeError('expected auto, engine or runtime, comma separated, got %r' % text)
    return names


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='cryo.docker benchmarks (ratios against baselines of the same run).')
    parser.add_argument('--only', type=benchmark_list, default=list(DEFAULT_BENCHMARKS),
                        help='benchmarks to run, comma separated: %s (default: %s)'
                        % (', '.join(BENCHMARKS), ', '.join(DEFAULT_BENCHMARKS)))
    parser.add_argument('--repeat', type=int, default=3, help='warm_start repetitions (default 3)')
    parser.add_argument('--counts', type=count_list, default=count_list('1,8,20,8x64'),
                        help='freeze_window cases, comma separated: N containers (holding --freeze-mb) or NxM (N '
                             'containers holding M MB each) (default 1,8,20,8x64)')
    parser.add_argument('--parallel', type=int, default=None,
                        help='freeze_window: maintenance_parallel of the role (default: the modules\' own, twice '
                             'the host\'s CPUs, at least 4)')
    parser.add_argument('--freeze-mb', type=int, default=0,
                        help='memory each freeze_window counter of an N case holds besides its counter, in MB (default 0)')
    parser.add_argument('--sizes', type=number_list, default=[16, 64, 256], help='memory sizes in MB (default 16,64,256)')
    parser.add_argument('--holder', choices=sorted(ALLOCATE), default='anon',
                        help='what holds the memory: anon (a shell variable, default) or shm (a file in /dev/shm)')
    parser.add_argument('--via', choices=['module', 'playbook'], default='module',
                        help='run docker_checkpoint/docker_restore directly (module, default) or as an ansible-playbook '
                             'task (playbook) in warm_start and memory; freeze_window always uses ansible-playbook')
    parser.add_argument('--kinds', type=kind_list, default=list(testbed_fleet.ENGINES),
                        help='engines, checkpoint_speed and overhead: engines of tests/testbed/fleet.py ENGINES, comma separated '
                             '(default: all, %s)' % ', '.join(testbed_fleet.ENGINES))
    parser.add_argument('--engine-mb', type=int, default=256,
                        help='engines benchmark: memory of the large container in MB (default 256)')
    parser.add_argument('--methods', type=method_list, default=['auto', 'engine'],
                        help="engines benchmark: docker_checkpoint's method values, comma separated "
                             "(default auto,engine)")
    parser.add_argument('--archive-mb', type=int, default=256,
                        help='archive benchmark: incompressible memory of the container in MB (default 256)')
    parser.add_argument('--archive-compression', choices=['zstd', 'gzip', 'none'], default='zstd',
                        help='archive benchmark: compression of the archive (default zstd)')
    parser.add_argument('--archive-level', type=int, default=1,
                        help='archive benchmark: compression level (default 1, the fastest)')
    parser.add_argument('--speed-sizes', type=number_list, default=[16, 256, 1024],
                        help='checkpoint_speed and podman: memory sizes in MB; overhead: the smallest (default 16,256,1024)')
    parser.add_argument('--large-repeat', type=int, default=1,
                        help='checkpoint_speed and podman: repetitions of the sizes of 1024 MB and more (default 1; '
                             'the others --repeat times)')
    parser.add_argument('--json', metavar='FILE', help='also write every summary to FILE')
    parser.add_argument('--docker-host', default=os.environ.get('DOCKER_HOST', 'unix:///var/run/docker.sock'),
                        help='the engine (default DOCKER_HOST or the local socket); it must be this machine\'s, '
                             'since the benchmarks read /proc and the disk')
    options = parser.parse_args(argv)
    if options.repeat < 1:
        parser.error('--repeat must be at least 1')
    if options.parallel is not None and options.parallel < 1:
        parser.error('--parallel must be at least 1')
    if options.freeze_mb < 0:
        parser.error('--freeze-mb must not be negative')
    if options.large_repeat < 1:
        parser.error('--large-repeat must be at least 1')
    if options.engine_mb < 1:
        parser.error('--engine-mb must be at least 1')
    if options.archive_mb < 1:
        parser.error('--archive-mb must be at least 1')
    return options


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def main():
    options = parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    try:
        Bench(options).run()
    except BenchError as exc:
        print('bench: %s' % exc, file=sys.stderr)
        return 1
    except docker.errors.DockerException as exc:
        print('bench: the Docker Engine at %s: %s' % (options.docker_host, exc), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
