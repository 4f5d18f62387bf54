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
    restore_speed  (only with --only) on each engine of --kinds: an imported counter holding --speed-sizes MB
                   restored through the image path (docker_restore, and a plain start of it armed by
                   docker_warm) against `docker start --checkpoint` of the same checkpoint, and against
                   Podman's restore of the same workload where Podman is installed
    warm_container (only with --only) on each engine of --kinds: the slow-start app imported warm
                   (docker_checkpoint_import warm: true), `docker start` to ready, against its cold start
    clones         (only with --only) on each engine of --kinds: --clones imports at once of one archive
                   (--clones-mb MB, publish: remap) with restore_method auto against engine, until all answer
    group_freeze   (only with --only) --group-counts members checkpointed as one group (one docker_checkpoint call,
                   group: true) against one by one: the group's frozen window against the one-by-one span

Usage: run.py [--only warm_start,memory] [--repeat 3] [--counts 1,8,20,8x64] [--freeze-mb 0]
              [--sizes 16,64,256] [--holder anon|shm] [--via module|playbook] [--json FILE]
              [--docker-host URL] [--kinds 20.10,26.1,...] [--engine-mb 256] [--methods auto,engine]
              [--archive-mb 256] [--archive-compression zstd] [--archive-level 1]
              [--speed-sizes 16,256,1024] [--large-repeat 1] [--clones 4] [--clones-mb 256]

It needs the local Docker Engine (experimental) with CRIU, the image cryo-test/busybox:1
(`make image`) and the collection on ANSIBLE_COLLECTIONS_PATH (`make collection`). Every
container it makes is named bench-... and labelled cryo.docker.bench; all are removed at the end.

This file is the entry point: the options, the table of benchmarks (BENCHMARKS: bench/NAME.py's run(bench)
for --only NAME), the run and its JSON. What the benchmarks share is bench/harness.py; bench/README.md
(Layout) says which file holds what and how to add a benchmark.
"""

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time

import docker

from harness import (ALLOCATE, CONTAINERD_TMP, IMAGE, Bench, BenchError, choice_list, helpers, kind_list, on_signal, say,
                     testbed_fleet)
import archive
import checkpoint_speed
import clones
import engines
import freeze_window
import group_freeze
import memory
import overhead
import podman
import restore_speed
import warm_container
import warm_start

# importing harness made the collection importable (tests/testbed/helpers.py finds it)
from ansible_collections.cryo.docker.plugins.module_utils import _host

# The benchmarks, in the order they run: --only NAME calls BENCHMARKS[NAME] (bench/NAME.py's run) with the
# harness (a harness.Bench on the engine of --docker-host), which measures, prints its report and returns its
# summary (a dict, JSON-ready).
BENCHMARKS = {
    'warm_start': warm_start.run,
    'freeze_window': freeze_window.run,
    'memory': memory.run,
    'engines': engines.run,
    'archive': archive.run,
    'checkpoint_speed': checkpoint_speed.run,
    'overhead': overhead.run,
    'podman': podman.run,
    'restore_speed': restore_speed.run,
    'warm_container': warm_container.run,
    'clones': clones.run,
    'group_freeze': group_freeze.run,
}
# What runs without --only: engines, checkpoint_speed, overhead, restore_speed, warm_container and clones start
# engines of their own and run only when asked for; archive (portable checkpoint archives) and podman (another
# container engine) too.
DEFAULT_BENCHMARKS = ('warm_start', 'freeze_window', 'memory')


def environment(bench):
    version = bench.engine.version()
    # The criu runc runs: the first on the PATH of the engine's dockerd.
    criu = _host.find_program('criu', helpers.HOST.search_path(bench.options.docker_host)[0])
    criu_version = None
    if criu:
        proc = subprocess.run([criu, '--version'], capture_output=True, text=True, check=False)
        match = re.search(r'Version:\s*(\S+)', proc.stdout)
        criu_version = match.group(1) if match else None
    return dict(engine=version.get('Version'), api=version.get('ApiVersion'), kernel=platform.release(),
                criu=criu_version, criu_path=criu, cpus=os.cpu_count(), image=IMAGE, via=bench.options.via,
                data_root=bench.data_root, time=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))


def run_all(bench):
    if not bench.engine.images(name=IMAGE):
        raise BenchError('the image %s is missing: run `make image` first' % IMAGE)
    left = bench.cleanup(every_run=True)
    if left:
        say('removed containers an earlier run left: %s' % ', '.join(left))
    env = environment(bench)
    print('environment: %s' % json.dumps(env, sort_keys=True))
    started = time.monotonic()
    summaries = []
    try:
        for name in bench.options.only:
            summaries.append(BENCHMARKS[name](bench))
    finally:
        bench.cleanup()
        shutil.rmtree(bench.workdir, ignore_errors=True)
    total = round(time.monotonic() - started, 1)
    print('\nbenchmarks %s done in %.1f s' % (', '.join(bench.options.only), total))
    leftovers = dict(bench.leftovers, mb=round(bench.leftovers['bytes'] / float(1 << 20), 1))
    print('containerd left %d ctrd-checkpoint directories (%.1f MB) in %s for these containers; removed'
          % (leftovers['dirs'], leftovers['mb'], CONTAINERD_TMP))
    if bench.options.json:
        with open(bench.options.json, 'w', encoding='utf-8') as handle:
            json.dump(dict(environment=env, seconds=total, benchmarks=summaries, containerd_leftovers=leftovers),
                      handle, indent=2, sort_keys=True)
            handle.write('\n')
        print('summary written to %s' % bench.options.json)


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


benchmark_list = choice_list('benchmark', BENCHMARKS)


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
    parser.add_argument('--repeat', type=int, default=3,
                        help='repetitions of warm_start, engines, checkpoint_speed, overhead, podman, archive, '
                             'restore_speed, warm_container and clones (default 3)')
    parser.add_argument('--counts', type=count_list, default=count_list('1,8,20,8x64'),
                        help='freeze_window cases, comma separated: N containers (holding --freeze-mb) or NxM (N '
                             'containers holding M MB each) (default 1,8,20,8x64)')
    parser.add_argument('--group-counts', type=count_list, default=count_list('3,3x64'),
                        help='group_freeze cases: N members, or NxM members of M MB each (default 3,3x64)')
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
                        help='engines, checkpoint_speed, overhead, restore_speed, warm_container and clones: engines of '
                             'tests/testbed/fleet.py ENGINES, comma separated '
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
                        help='checkpoint_speed, podman and restore_speed: memory sizes in MB; overhead: the smallest '
                             '(default 16,256,1024)')
    parser.add_argument('--large-repeat', type=int, default=1,
                        help='checkpoint_speed, podman and restore_speed: repetitions of the sizes of 1024 MB and more '
                             '(default 1; the others --repeat times)')
    parser.add_argument('--clones', type=int, default=4,
                        help='clones benchmark: imports of one archive at once (default 4)')
    parser.add_argument('--clones-mb', type=int, default=256,
                        help='clones benchmark: memory the exported container holds, in MB (default 256)')
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
    if options.clones < 1 or options.clones_mb < 1:
        parser.error('--clones and --clones-mb must be at least 1')
    return options


def main():
    options = parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    try:
        run_all(Bench(options))
    except BenchError as exc:
        print('bench: %s' % exc, file=sys.stderr)
        return 1
    except docker.errors.DockerException as exc:
        print('bench: the Docker Engine at %s: %s' % (options.docker_host, exc), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
