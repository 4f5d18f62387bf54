"""The soak: many checkpoint/restore cycles on one Docker Engine, and what they leave behind.

`Soak(docker_host, cycles).run()` runs the cycles of each workload (WORKLOADS) on the engine and
returns its summary (a dict, JSON-ready). bench/soak.py runs it on every engine of the test bed's table,
tests/integration/test_soak.py runs a short one on the main engine; bench/README.md tells what it
measures and why the tolerances are what they are.

- Workloads: `counter`, a busybox shell that prints 0, 1, 2 ... ten times a second, and `redis`, a real
  server (cryo-test/redis:7, tests/testbed/build_apps.py) spoken to with redis-cli run inside its
  container through the Engine API (exec). They run side by side, one thread each.
- Cycle N: docker_checkpoint with `method` runtime or engine (alternating), then docker_restore
  (keep_checkpoint false), as a stop (the checkpoint stops the container) or a rewind (leave_running,
  then force: the running container is stopped and restored from the checkpoint); see `schedule`.
  The module files run directly (helpers.run_module_file), as ansible-playbook runs them on the host.
- Per cycle: whether both calls succeeded (else the module's msg) and whether the workload went on
  from the checkpoint (`stop_continuity`, `rewind_continuity`, Redis.check).
- After cycle `baseline` and after the last: disk use under the engine's data root, what this run
  added to /tmp and nobody uses (`in_use`), containerd's content store, VmRSS of dockerd and containerd
  (`measure`). The growth between the two is judged against the tolerances of `growth_verdicts`.
"""

import fnmatch
import os
import shutil
import statistics
import tempfile
import threading
import time
import uuid

import docker

import build_apps
import fleet
import helpers
from ansible_collections.cryo.docker.plugins.module_utils import _host
from ansible_collections.cryo.docker.plugins.module_utils._checkpoint import CONTAINERD_COPIES

LABEL = 'cryo.docker.soak'
METHODS = ('runtime', 'engine')
MODES = ('stop', 'rewind')
# Prints ten numbers a second, so that a rewind lands between two readings a few numbers apart.
FAST_COUNTER = 'i=0; while true; do echo $i; i=$((i + 1)); busybox usleep 100000; done'
REDIS = build_apps.APPS['redis']
TMP = tempfile.gettempdir()
MIB = float(1 << 20)
# Tolerances of engine memory growth: the larger of the two.
RSS_TOLERANCE_BYTES = 20 << 20
RSS_TOLERANCE_SHARE = 0.10
DISK_METRICS = ('data_root', 'tmp', 'content_store')
RSS_METRICS = ('dockerd_rss', 'containerd_rss')
# Seconds a workload has to answer after a start or a restore (the counter to print, redis to answer PING).
WAIT = 15


class SoakError(Exception):
    pass


def schedule(cycle):
    """(method, mode) of cycle 1, 2, ...: the method alternates every cycle, stop and rewind every two, so
    that each four cycles hold every combination once."""
    return METHODS[(cycle - 1) % len(METHODS)], MODES[(cycle - 1) // len(METHODS) % len(MODES)]


# -- continuity (pure) ----------------------------------------------------------------------------

def jumps(lines, start):
    """The indexes from start on where a counter's log does not go on with the next number."""
    return [i for i in range(max(start, 1), len(lines)) if lines[i] != lines[i - 1] + 1]


def stop_continuity(frozen, lines):
    """After a stop cycle: (True, None) when the counter's log goes on right after the last number it printed
    before the checkpoint stopped it, else (False, why). frozen: the log when the checkpoint call returned;
    lines: the log after the restore, with at least one new number."""
    if len(lines) <= len(frozen) or lines[:len(frozen)] != frozen:
        return False, 'the log did not go on from the %d numbers it held at the checkpoint' % len(frozen)
    if lines[len(frozen)] != frozen[-1] + 1:
        return False, 'stopped at %d, went on at %d' % (frozen[-1], lines[len(frozen)])
    return True, None


def rewind_continuity(low, taken, lines):
    """After a rewind cycle: (True, None) when the counter went back to the checkpoint, else (False, why).

    low: the last number before the checkpoint call; taken: the log when it returned (the counter ran on, and
    the checkpoint holds a state between the two); lines: the log after the restore. The counter ran on until
    docker_restore stopped it, a module start (0.3 s, three numbers) later at least, so the restored one
    jumps back once: to a number in low + 1 .. taken[-1] + 1."""
    high = taken[-1]
    if len(lines) <= len(taken) or lines[:len(taken)] != taken:
        return False, 'the log did not go on from the %d numbers it held at the checkpoint' % len(taken)
    breaks = jumps(lines, len(taken))
    if not breaks:
        return False, 'the counter never went back (it ran on from %d to %d): not rewound' % (high, lines[-1])
    if len(breaks) > 1:
        return False, 'the counter jumped %d times after the checkpoint: %s' % (
            len(breaks), ', '.join('%d -> %d' % (lines[i - 1], lines[i]) for i in breaks))
    went_on = lines[breaks[0]]
    if not low + 1 <= went_on <= high + 1:
        return False, 'went back to %d, the checkpoint was taken between %d and %d' % (went_on, low, high)
    return True, None


# -- what the engine leaves behind ----------------------------------------------------------------

def disk_usage(path, leave_out=()):
    """Bytes a file or directory tree takes on disk (st_blocks, as du counts): symlinks not followed, other
    file systems (the overlay mounts of running containers, tmpfs) not entered, hard links once, the paths
    in leave_out not counted. 0 when path is gone."""
    try:
        top = os.lstat(path)
    except OSError:
        return 0
    seen = set()
    total = top.st_blocks * 512
    stack = [path] if os.path.isdir(path) and not os.path.islink(path) else []
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue  # removed meanwhile
        for entry in entries:
            if entry.path in leave_out:
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_dev != top.st_dev:
                continue
            if info.st_nlink > 1 and not entry.is_dir(follow_symlinks=False):
                if (info.st_dev, info.st_ino) in seen:
                    continue
                seen.add((info.st_dev, info.st_ino))
            total += info.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
    return total


def rss(pid):
    """VmRSS of a process in bytes (the collection's host module reads /proc/PID/status), None if not readable."""
    return (_host.parse_vmrss(helpers.HOST.read(pid, 'status')) or None) if pid else None


def containerd_of(docker_host):
    """(pid, root) of the containerd the dockerd serving docker_host works with, (None, None) when not found.

    The containerd dockerd started itself (the pidfile in its exec root; every engine of the test bed), else
    the one listening on the address of its daemon.json `containerd` (the system's, /run/containerd by
    default). Its root is where it keeps its metadata database open (ROOT/io.containerd.metadata.v1.bolt/
    meta.db), so that a --root or config.toml of its own is followed as well."""
    dockerd = helpers.HOST.dockerd(docker_host)
    if dockerd is None:
        return None, None
    pid = fleet.managed_containerd_pid(dockerd['exec_root'])
    if pid is None:
        address = _host.read_json(dockerd['config_file']).get('containerd') or '/run/containerd/containerd.sock'
        listening = _host.unix_socket_inodes(helpers.HOST.read('net', 'unix'), address)
        sockets = {'socket:[%s]' % inode for inode in listening}
        pid = next((candidate for candidate in helpers.HOST.pids() if helpers.HOST.comm(candidate) == 'containerd'
                    and sockets & set(open_files(candidate))), None)
    for target in open_files(pid) if pid else []:
        if target.endswith('/io.containerd.metadata.v1.bolt/meta.db'):
            return pid, os.path.dirname(os.path.dirname(target))
    return pid, None


def in_use(paths):
    """The paths that a live process uses: its working directory, executable or an open file is at or below one
    of them, or its command line or environment names one (a program that runs beside the soak, such as
    ansible-test with its directories in /tmp). What nobody uses any more is what was left behind."""
    found = set()
    for pid in helpers.HOST.pids():
        places = open_files(pid)
        for link in ('cwd', 'exe'):
            try:
                places.append(os.readlink(os.path.join('/proc', str(pid), link)))
            except OSError:
                continue
        text = '\0'.join(places + helpers.HOST.cmdline(pid) + list(helpers.HOST.environ(pid).values()))
        found.update(path for path in paths if path in text)
    return found


def open_files(pid):
    """The targets of a process's open files (/proc/PID/fd), [] when not readable."""
    fd_dir = os.path.join('/proc', str(pid), 'fd')
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return []
    out = []
    for fd in fds:
        try:
            out.append(os.readlink(os.path.join(fd_dir, fd)))
        except OSError:
            continue
    return out


def growth_verdicts(first, last, checkpoint_bytes):
    """{metric: {first, last, growth, tolerance, ok}} for the measurements at the baseline cycle and the last.

    Disk (data root, /tmp, content store): the growth must stay below the smallest checkpoint of the soak. A
    checkpoint, or containerd's copy of one, left behind by every cycle grows them by that much times the
    cycles in between; what an engine writes besides (its databases growing by a page) stays below it.
    Memory (VmRSS of dockerd and containerd): below the larger of RSS_TOLERANCE_BYTES and RSS_TOLERANCE_SHARE
    of the first value: a Go heap grows and shrinks by that much with its garbage collector. ok is None for
    a metric that was not measured (no value at either point)."""
    out = {}
    for metric in DISK_METRICS + RSS_METRICS:
        before, after = first.get(metric), last.get(metric)
        if metric in DISK_METRICS:
            tolerance = checkpoint_bytes
        else:
            tolerance = max(RSS_TOLERANCE_BYTES, int(RSS_TOLERANCE_SHARE * (before or 0)))
        if before is None or after is None or tolerance is None:
            out[metric] = dict(first=before, last=after, growth=None, tolerance=tolerance, ok=None)
            continue
        out[metric] = dict(first=before, last=after, growth=after - before, tolerance=tolerance,
                           ok=after - before < tolerance)
    return out


# -- the workloads --------------------------------------------------------------------------------

class Workload:
    """One container checkpointed and restored again and again on one engine (a client of its own: each
    workload runs in a thread)."""

    name = None

    def __init__(self, soak):
        self.soak = soak
        self.client = docker.APIClient(base_url=soak.docker_host, version='auto', timeout=120)
        self.container = 'soak-%s-%s' % (self.name, soak.run_id)
        self.records = []
        self.aborted = None
        # {reason: count} of the engine calls the modules made again (their `retries`), over every call.
        self.retries = {}

    def create(self, image, command):
        host_config = self.client.create_host_config(network_mode=self.soak.network_mode)
        self.client.create_container(image, command, name=self.container, host_config=host_config, stop_timeout=1,
                                     labels={LABEL: self.soak.run_id})
        self.client.start(self.container)

    def running(self):
        try:
            return bool(helpers.state(self.client, self.container).get('Running'))
        except docker.errors.NotFound:
            return False

    def module(self, name, **args):
        """The module's result and None, or None and why it failed."""
        args = dict(args, docker_host=self.soak.docker_host, container=self.container)
        result, _wall, output = helpers.run_module_file(name, args, workdir=self.soak.workdir)
        for reason, count in ((result or {}).get('retries') or {}).items():
            self.retries[reason] = self.retries.get(reason, 0) + count
        if result is None or result.get('failed'):
            return None, ' '.join(((result or {}).get('msg') or output[-600:]).split())
        return result, None

    def cycle(self, cycle):
        method, mode = schedule(cycle)
        checkpoint = 'soak-%03d' % cycle
        record = dict(cycle=cycle, method=method, mode=mode, failed=None, continuity=None, detail=None)
        self.records.append(record)
        started = time.monotonic()
        try:
            self.before_checkpoint()
        except SoakError as error:
            record.update(continuity=False, detail=str(error))
        taken, why = self.module('docker_checkpoint', checkpoint=checkpoint, method=method,
                                 leave_running=mode == 'rewind')
        if taken is None:
            record['failed'] = 'docker_checkpoint: %s' % why
            if not self.running():
                self.aborted = 'cycle %d: the container is not running after a failed checkpoint' % cycle
            return record
        record.update(method_used=taken.get('method'), checkpoint_s=taken.get('duration'),
                      checkpoint_bytes=(taken.get('checkpoint') or {}).get('size'))
        self.checkpoint_taken()
        args = dict(checkpoint=checkpoint, keep_checkpoint=False, force=mode == 'rewind')
        restored, why = self.module('docker_restore', **args)
        if restored is None or not restored.get('restored'):
            record['failed'] = 'docker_restore: %s' % (why or 'not restored: %s' % restored.get('msg'))
            restored, why = self.module('docker_restore', **args)  # one more try, to go on with the soak
            if restored is None or not self.running():
                self.aborted = 'cycle %d: not restored on a second try either: %s' % (cycle, why)
                return record
        record.update(restore_s=restored.get('duration'), verified=restored.get('verified'))
        if record['continuity'] is None:
            try:
                record['continuity'], record['detail'] = self.check(mode)
            except SoakError as error:
                record.update(continuity=False, detail=str(error))
        record['cycle_s'] = round(time.monotonic() - started, 3)
        return record

    def summary(self):
        records = self.records
        checked = [r for r in records if r['continuity'] is not None]
        continuous = [r for r in checked if r['continuity']]

        def figures(key):
            values = [r[key] for r in records if r.get(key) is not None]
            return dict(median=round(statistics.median(values), 3), max=round(max(values), 3)) if values else None
        return dict(
            workload=self.name, container=self.container, cycles=len(records),
            failures=sum(1 for r in records if r['failed']),
            failed=[dict(cycle=r['cycle'], method=r['method'], mode=r['mode'], msg=r['failed'])
                    for r in records if r['failed']][:10],
            continuity=dict(checked=len(checked), continuous=len(continuous),
                            percent=round(100.0 * len(continuous) / len(checked), 1) if checked else None),
            broken=[dict(cycle=r['cycle'], method=r['method'], mode=r['mode'], detail=r['detail'])
                    for r in checked if not r['continuity']][:10],
            unverified=sum(1 for r in records if 'verified' in r and r['verified'] is not True),
            methods=sorted({r['method_used'] for r in records if r.get('method_used')}),
            checkpoint_s=figures('checkpoint_s'), restore_s=figures('restore_s'), cycle_s=figures('cycle_s'),
            checkpoint_bytes=figures('checkpoint_bytes'), aborted=self.aborted,
            retries=dict(self.retries), retried=sum(self.retries.values()))

    # What a workload does around the calls.
    def start(self):
        raise NotImplementedError

    def before_checkpoint(self):
        pass

    def checkpoint_taken(self):
        pass

    def check(self, mode):
        raise NotImplementedError


class Counter(Workload):
    """FAST_COUNTER: after a stop it goes on with the next number, after a rewind with one it printed
    between the checkpoint call and its return, and between two cycles it never jumps (a restart that
    something else made)."""

    name = 'counter'
    low = None
    taken = None
    checked = 0  # how much of the log the cycles have checked

    def start(self):
        self.create(helpers.IMAGE, ['/bin/sh', '-c', FAST_COUNTER])
        self.wait_lines(3)

    def lines(self):
        return helpers.counter_lines(self.client, self.container)

    def wait_lines(self, count):
        deadline = time.monotonic() + WAIT
        while True:
            lines = self.lines()
            if len(lines) >= count:
                return lines
            if time.monotonic() > deadline:
                raise SoakError('the counter printed %d numbers, not %d, within %d s' % (len(lines), count, WAIT))
            time.sleep(0.05)

    def before_checkpoint(self):
        lines = self.lines()
        self.low = lines[-1]
        between = jumps(lines, self.checked)
        self.checked = len(lines)
        if between:
            raise SoakError('the counter went from %d to %d between two cycles: it started afresh'
                            % (lines[between[0] - 1], lines[between[0]]))

    def checkpoint_taken(self):
        self.taken = self.lines()

    def check(self, mode):
        lines = self.wait_lines(len(self.lines()) + 2)
        self.checked = len(lines)
        if mode == 'stop':
            return stop_continuity(self.taken, lines)
        return rewind_continuity(self.low, self.taken, lines)


class Redis(Workload):
    """redis-server: one INCR before each checkpoint, and after the restore the key holds the count of them;
    INFO's run_id (random at each start) never changes and uptime_in_seconds never goes back."""

    name = 'redis'
    incrs = 0
    run_id = None
    uptime = None

    def __init__(self, soak):
        super().__init__(soak)
        # On the host network it listens on a port of its own.
        self.port = helpers.free_port() if soak.network_mode == 'host' else REDIS['port']

    def start(self):
        command = list(REDIS['cmd'])
        command[command.index('--port') + 1] = str(self.port)
        if self.soak.network_mode == 'host':
            command[command.index('--bind') + 1] = '127.0.0.1'
        self.create(REDIS['tag'], command)
        self.wait_ready()
        info = self.info()
        self.run_id, self.uptime = info['run_id'], int(info['uptime_in_seconds'])

    def cli(self, *args):
        """redis-cli ARGS in the container (an Engine API exec); its output."""
        try:
            exec_id = self.client.exec_create(self.container, ['redis-cli', '-p', str(self.port)] + list(args))['Id']
            out = self.client.exec_start(exec_id).decode(errors='replace').strip()
            code = self.client.exec_inspect(exec_id).get('ExitCode')
        except docker.errors.DockerException as error:
            raise SoakError('redis-cli %s: %s' % (' '.join(args), error)) from None
        if code != 0 or out.startswith(('ERR', 'Could not connect')):
            raise SoakError('redis-cli %s exited %s: %s' % (' '.join(args), code, out[:300]))
        return out

    def wait_ready(self):
        deadline = time.monotonic() + WAIT
        while True:
            try:
                if self.cli('PING') == 'PONG':
                    return
            except SoakError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)

    def info(self):
        return dict(line.split(':', 1) for line in self.cli('INFO', 'server').splitlines() if ':' in line)

    def before_checkpoint(self):
        count = self.cli('INCR', 'soak')
        if count != str(self.incrs + 1):
            raise SoakError('INCR gave %s after %d INCRs: the key lost its count (redis started afresh?)'
                            % (count, self.incrs))
        self.incrs += 1

    def check(self, mode):
        self.wait_ready()
        value = self.cli('GET', 'soak')
        info = self.info()
        uptime = int(info['uptime_in_seconds'])
        problems = []
        if value != str(self.incrs):
            problems.append('the key holds %s after %d INCRs' % (value or 'nothing', self.incrs))
        if info['run_id'] != self.run_id:
            problems.append('another run_id (%s, at first %s): redis started afresh' % (info['run_id'], self.run_id))
        if uptime < self.uptime:
            problems.append('uptime_in_seconds went back from %d to %d' % (self.uptime, uptime))
        self.uptime = max(uptime, self.uptime)
        return not problems, '; '.join(problems) or None


WORKLOADS = {'counter': Counter, 'redis': Redis}


# -- the soak -------------------------------------------------------------------------------------

class Soak:
    """cycles checkpoint/restore cycles of each workload (names of WORKLOADS) on the engine at docker_host,
    which must be a local one (its data root, processes and /tmp are read). network_mode: of the containers
    (None: the default bridge; 'host' on engines that cannot restore a bridge container). baseline: the cycle
    after which the growth is measured from (it is measured again after the last). log: a callable for
    progress lines."""

    def __init__(self, docker_host=helpers.DOCKER_HOST, cycles=100, workloads=tuple(WORKLOADS), baseline=10,
                 network_mode=None, log=None):
        if not 1 <= baseline < cycles:
            raise ValueError('the baseline cycle (%d) must come before the last (%d)' % (baseline, cycles))
        self.docker_host = docker_host
        self.cycles = cycles
        self.baseline = baseline
        self.network_mode = network_mode
        self.log = log or (lambda text: None)
        self.run_id = uuid.uuid4().hex[:6]
        self.client = docker.APIClient(base_url=docker_host, version='auto', timeout=120)
        self.data_root = self.client.info().get('DockerRootDir') or '/var/lib/docker'
        self.workloads = [WORKLOADS[name](self) for name in workloads]
        self.workdir = None
        self.tmp_before = set()
        self.measurements = {}
        self.smallest_checkpoint = None

    def cleanup(self):
        """Remove this soak's containers and any that an interrupted earlier soak left on this engine."""
        for container in self.client.containers(all=True, filters={'label': LABEL}):
            try:
                self.client.remove_container(container['Id'], force=True)
            except docker.errors.NotFound:
                pass

    def logs(self):
        """The log files of this soak's containers (the counter's grows by design; left out of the data root)."""
        paths = []
        for workload in self.workloads:
            try:
                paths.append(self.client.inspect_container(workload.container).get('LogPath'))
            except docker.errors.NotFound:
                continue
        return [path for path in paths if path]

    def measure(self, label):
        try:
            self.measurements[label] = self.measurement()
        except (OSError, docker.errors.DockerException) as error:
            self.measurements[label] = dict(error=str(error))
        self.log('soak %s: %s' % (label, describe_measurement(self.measurements[label])))

    def measurement(self):
        logs = self.logs()
        new = sorted(set(os.listdir(TMP)) - self.tmp_before)
        used = sorted(os.path.basename(path) for path in in_use([os.path.join(TMP, name) for name in new]))
        new = [name for name in new if name not in used]
        dockerd = (helpers.HOST.dockerd(self.docker_host) or {}).get('pid')
        containerd, root = containerd_of(self.docker_host)
        content = os.path.join(root, 'io.containerd.content.v1.content') if root else None
        return dict(
            data_root=disk_usage(self.data_root, leave_out=set(logs)),
            logs=sum(disk_usage(path) for path in logs),
            tmp=sum(disk_usage(os.path.join(TMP, name)) for name in new),
            tmp_entries=len(new), tmp_new=new[:10], tmp_in_use=used[:10],
            containerd_copies=len(fnmatch.filter(new, CONTAINERD_COPIES)),
            content_store=disk_usage(content) if content else None, containerd_root=root,
            dockerd_rss=rss(dockerd), containerd_rss=rss(containerd), dockerd_pid=dockerd, containerd_pid=containerd)

    def work(self, workload, barrier):
        """The cycles of one workload (its thread), meeting the others at the measuring points."""
        for cycle in range(1, self.cycles + 1):
            if not workload.aborted:
                try:
                    record = workload.cycle(cycle)
                except (SoakError, docker.errors.DockerException, OSError) as error:
                    workload.aborted = 'cycle %d: %s' % (cycle, error)
                    record = workload.records[-1]
                    record['failed'] = record['failed'] or 'error: %s' % error
                if record['failed'] or record['continuity'] is False:
                    what = record['failed'] or record['detail']
                    self.log('soak %s cycle %d (%s, %s): %s' % (workload.name, cycle, record['method'], record['mode'],
                                                                what))
                elif cycle % 10 == 0:
                    self.log('soak %s: cycle %d of %d' % (workload.name, cycle, self.cycles))
                if workload.aborted:
                    self.log('soak %s: stopped, %s' % (workload.name, workload.aborted))
            if cycle in (self.baseline, self.cycles):
                try:
                    barrier.wait()
                except threading.BrokenBarrierError:
                    workload.aborted = workload.aborted or 'cycle %d: the other workloads did not come' % cycle

    def run(self):
        started = time.monotonic()
        self.cleanup()
        self.workdir = tempfile.mkdtemp(prefix='cryo-soak-')
        self.tmp_before = set(os.listdir(TMP))
        try:
            for workload in self.workloads:
                workload.start()
            points = iter(['cycle %d' % self.baseline, 'cycle %d' % self.cycles])
            barrier = threading.Barrier(len(self.workloads), action=lambda: self.measure(next(points)),
                                        timeout=600)
            threads = [threading.Thread(target=self.work, args=(workload, barrier), daemon=True)
                       for workload in self.workloads]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return self.summary(time.monotonic() - started)
        finally:
            self.cleanup()
            shutil.rmtree(self.workdir, ignore_errors=True)

    def summary(self, seconds):
        workloads = [workload.summary() for workload in self.workloads]
        sizes = [size for workload in self.workloads for size in
                 (r.get('checkpoint_bytes') for r in workload.records) if size]
        first = self.measurements.get('cycle %d' % self.baseline, {})
        last = self.measurements.get('cycle %d' % self.cycles, {})
        growth = growth_verdicts(first, last, min(sizes) if sizes else None)
        ok = (all(w['failures'] == 0 and not w['aborted'] and w['unverified'] == 0
                  and w['continuity']['continuous'] == w['cycles'] for w in workloads)
              and all(verdict['ok'] is not False for verdict in growth.values()))
        retries = {}
        for workload in workloads:
            for reason, count in workload['retries'].items():
                retries[reason] = retries.get(reason, 0) + count
        return dict(docker_host=self.docker_host, data_root=self.data_root, network=self.network_mode or 'bridge',
                    retries=retries, retried=sum(retries.values()), cycles=self.cycles, baseline_cycle=self.baseline, seconds=round(seconds, 1),
                    seconds_per_cycle=round(seconds / self.cycles, 2), workloads=workloads,
                    measurements=self.measurements, growth=growth, ok=ok)


def describe_measurement(values):
    if 'error' in values:
        return 'not measured: %s' % values['error']

    def mb(value):
        return '-' if value is None else '%.2f MB' % (value / MIB)
    return ('data root %s (+ logs %s), /tmp +%s in %d new entries (%d containerd copies; %d more in use by other '
            'programs), content store %s, dockerd %s, containerd %s'
            % (mb(values['data_root']), mb(values['logs']), mb(values['tmp']), values['tmp_entries'],
               values['containerd_copies'], len(values['tmp_in_use']), mb(values['content_store']),
               mb(values['dockerd_rss']), mb(values['containerd_rss'])))
