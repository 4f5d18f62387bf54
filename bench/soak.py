#!/usr/bin/env python
"""cryo.docker soak: many checkpoint/restore cycles on each Docker Engine of the test bed, and what they leave.

On each engine of --kinds (tests/testbed/fleet.py ENGINES, started side by side as `bench/run.py --only
engines` starts them, removed at the end): --cycles cycles of each workload (the busybox counter and
redis-server), alternating docker_checkpoint's method (runtime, engine) and stop / rewind, with the growth
of disk use (data root, /tmp, containerd's content store) and of the engine's memory between cycle
--baseline-cycle and the last. The soak itself is tests/testbed/soak.py (tests/integration/test_soak.py
runs a short one); bench/README.md says what is measured and what counts as noise.

Usage: soak.py [--cycles 100] [--kinds 20.10,26.1,28.5,28.5-containerd] [--workloads counter,redis]
               [--baseline-cycle 10] [--json FILE]

It needs what bench/run.py needs (`make image`: the engine, CRIU, the images cryo-test/busybox:1 and
cryo-test/redis:7, the collection) and the test bed's lock (flock /tmp/cryo-integration.lock). Prints a
table per engine and one line `JSON {...}` with every summary.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import time

import docker

import harness
# tests/testbed/soak.py, not this file: importing harness put tests/testbed first on sys.path.
import soak as testbed_soak

TARGETS = 'failures 0, every restore verified, continuity 100%, growth within tolerance'


def mb(value):
    return None if value is None else round(value / testbed_soak.MIB, 2)


def workload_rows(summary):
    rows = []
    for workload in summary['workloads']:
        continuity = workload['continuity']
        rows.append(dict(
            workload=workload['workload'], cycles=workload['cycles'], failures=workload['failures'],
            unverified=workload['unverified'], retried=workload['retried'],
            continuity='%s/%s (%s%%)' % (continuity['continuous'], continuity['checked'], continuity['percent']),
            methods='/'.join(workload['methods']),
            checkpoint_s=(workload['checkpoint_s'] or {}).get('median'),
            restore_s=(workload['restore_s'] or {}).get('median'),
            cycle_s=(workload['cycle_s'] or {}).get('median'),
            checkpoint_mb=mb((workload['checkpoint_bytes'] or {}).get('median')),
            aborted=workload['aborted'] or '-'))
    return rows


def growth_rows(summary):
    return [dict(metric=metric, first_mb=mb(verdict['first']), last_mb=mb(verdict['last']),
                 growth_mb=mb(verdict['growth']), tolerance_mb=mb(verdict['tolerance']),
                 verdict={True: 'noise', False: 'GROWTH', None: 'not measured'}[verdict['ok']])
            for metric, verdict in summary['growth'].items()]


def print_engine(summary):
    print()
    print('== soak on %s (Docker %s, containerd %s, %s image store, %s network): %d cycles in %.0f s, %.2f s a cycle'
          % (summary['kind'], summary['version'], summary['containerd'], summary['image_store'], summary['network'],
             summary['cycles'], summary['seconds'], summary['seconds_per_cycle']))
    print(harness.table([('workload', 'workload'), ('cycles', 'cycles'), ('failures', 'failures'),
                         ('unverified', 'unverified'), ('retried', 'retries'), ('continuity', 'continuity'),
                         ('methods', 'methods'), ('checkpoint_s', 'ckpt s'), ('restore_s', 'restore s'), ('cycle_s', 'cycle s'), ('checkpoint_mb', 'ckpt MB'),
                         ('aborted', 'stopped early')], workload_rows(summary)))
    print()
    print(harness.table([('metric', 'growth of'), ('first_mb', 'cycle %d MB' % summary['baseline_cycle']),
                         ('last_mb', 'cycle %d MB' % summary['cycles']), ('growth_mb', 'growth MB'),
                         ('tolerance_mb', 'tolerance MB'), ('verdict', 'verdict')], growth_rows(summary)))
    for workload in summary['workloads']:
        for failure in workload['failed']:
            print('failure: %s cycle %d (%s, %s): %s' % (workload['workload'], failure['cycle'], failure['method'],
                                                         failure['mode'], failure['msg']))
        for broken in workload['broken']:
            print('discontinuity: %s cycle %d (%s, %s): %s' % (workload['workload'], broken['cycle'],
                                                               broken['method'], broken['mode'], broken['detail']))
    last = summary['measurements'].get('cycle %d' % summary['cycles'], {})
    if last.get('tmp_new'):
        print('new in /tmp at the end: %s' % ', '.join(last['tmp_new']))
    if last.get('tmp_in_use'):
        print('new in /tmp at the end, in use by other programs (not counted): %s' % ', '.join(last['tmp_in_use']))
    print('engine calls made again (the modules\' retries): %d%s' % (
        summary['retried'], ' (%s)' % ', '.join('%s: %d' % item for item in sorted(summary['retries'].items()))
        if summary['retries'] else ''))
    print('verdict: %s (%s)' % ('met' if summary['ok'] else 'MISSED', TARGETS))
    sys.stdout.flush()


def soak_engine(options):
    def rows_of(bench, kind):
        facts = bench.engine_facts(kind)
        harness.say('soak: %s, %d cycles of %s' % (kind, options.cycles, ', '.join(options.workloads)))
        result = testbed_soak.Soak(bench.docker_host, options.cycles, options.workloads, options.baseline_cycle,
                                   network_mode=bench.network_mode(facts), log=harness.say).run()
        summary = dict(facts, **result)
        print_engine(summary)
        return [summary]
    return rows_of


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='cryo.docker soak: checkpoint/restore cycles on every engine of '
                                                 'the test bed, with failures, continuity and growth.')
    parser.add_argument('--cycles', type=int, default=100, help='cycles of each workload on each engine (default 100)')
    parser.add_argument('--baseline-cycle', type=int, default=10,
                        help='growth is measured from after this cycle to after the last (default 10)')
    parser.add_argument('--kinds', type=harness.kind_list, default=list(harness.testbed_fleet.ENGINES),
                        help='engines of tests/testbed/fleet.py ENGINES, comma separated (default: all, %s)'
                        % ', '.join(harness.testbed_fleet.ENGINES))
    parser.add_argument('--workloads', type=harness.choice_list('workload', testbed_soak.WORKLOADS),
                        default=list(testbed_soak.WORKLOADS),
                        help='comma separated: %s (default: all)' % ', '.join(testbed_soak.WORKLOADS))
    parser.add_argument('--json', metavar='FILE', help='also write every summary to FILE')
    # What harness.Bench needs: the main engine (the images come from it) and how modules run (their files).
    parser.set_defaults(via='module', docker_host=os.environ.get('DOCKER_HOST', 'unix:///var/run/docker.sock'))
    options = parser.parse_args(argv)
    if not 1 <= options.baseline_cycle < options.cycles:
        parser.error('--baseline-cycle must be at least 1 and below --cycles')
    return options


def main():
    options = parse_args()
    signal.signal(signal.SIGTERM, harness.on_signal)
    started = time.monotonic()
    bench = harness.Bench(options)
    try:
        images = [harness.IMAGE] + ([testbed_soak.REDIS['tag']] if 'redis' in options.workloads else [])
        missing = [image for image in images if not bench.engine.images(name=image)]
        if missing:
            raise harness.BenchError('the main engine has no image %s: run `make image` first' % ', '.join(missing))
        summaries = bench.on_engines(soak_engine(options), images=images[1:])
    except harness.BenchError as exc:
        print('soak: %s' % exc, file=sys.stderr)
        return 1
    except docker.errors.DockerException as exc:
        print('soak: the Docker Engine: %s' % exc, file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(bench.workdir, ignore_errors=True)
    seconds = round(time.monotonic() - started, 1)
    everything = dict(soak=dict(cycles=options.cycles, baseline_cycle=options.baseline_cycle, kinds=options.kinds,
                                workloads=options.workloads, seconds=seconds, kernel=platform.release(),
                                cpus=os.cpu_count(), time=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
                                retried=sum(summary['retried'] for summary in summaries),
                                ok=all(summary['ok'] for summary in summaries)),
                      engines=summaries)
    print('\nsoak on %s done in %.0f s: %s; %d engine calls made again (retries)'
          % (', '.join(options.kinds), seconds, 'every target met' if everything['soak']['ok'] else 'targets MISSED',
             everything['soak']['retried']))
    print('JSON %s' % json.dumps(everything, sort_keys=True))
    if options.json:
        with open(options.json, 'w', encoding='utf-8') as handle:
            json.dump(everything, handle, indent=2, sort_keys=True)
            handle.write('\n')
        print('summary written to %s' % options.json)
    return 0 if everything['soak']['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
