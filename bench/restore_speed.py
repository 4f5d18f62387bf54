"""restore_speed: on each engine of --kinds, a counter holding --speed-sizes MB, exported and imported on the same
engine (so that it has a runtime of its own), restored from the same checkpoint three ways: cryo.docker.docker_restore
(method auto: the image path where the engine allows it), a plain `docker start` with its runtime armed on the
checkpoint (cryo.docker.docker_warm), against `docker start --checkpoint` (the CLI, through the engine and
containerd's content store); and against Podman's restore of the same workload on this host when Podman is installed
(--repeat times, --large-repeat from 1024 MB, the order turning with each repetition; medians).
"""

from harness import BenchError, check, criu_ms, judge, medians, ratio, report, say
from importing import allow, clone_name, counter_runs, export, new_run, remove_archive, stop
from podman import podman_ready, podman_run, podman_version

# The targets: MB: `docker start --checkpoint` / the image path at least; and the image path at most this many times
# Podman's restore.
TARGETS = {256: 5.0, 1024: 8.0}
PODMAN_TARGET = 1.5
WAYS = ('module', 'armed', 'cli')


def run(bench):
    podman, reason = podman_restores(bench)
    rows = bench.on_engines(speed_rows)
    checks = []
    for row in rows:
        row.update(podman.get(row['mb']) or {})
        row['podman_vs_wall'] = ratio(row.get('module_wall_s'), row.get('podman_restore_s'))
        row['podman_vs_duration'] = ratio(row.get('module_duration_s'), row.get('podman_restore_s'))
        row['podman_met'] = judge(row['podman_vs_wall'], PODMAN_TARGET, at_most=True)
        if row['method'] != 'image_path':
            continue
        if row['mb'] in TARGETS:
            checks.append(check('cli/image path (module wall) on %s at %d MB' % (row['kind'], row['mb']),
                                row['cli_vs_wall'], TARGETS[row['mb']]))
            checks.append(check('cli/image path (module duration) on %s at %d MB' % (row['kind'], row['mb']),
                                row['cli_vs_duration'], TARGETS[row['mb']]))
        checks.append(check('image path (module wall)/podman restore on %s at %d MB' % (row['kind'], row['mb']),
                            row['podman_vs_wall'], PODMAN_TARGET, at_most=True))
    summary = dict(
        benchmark='restore_speed', title='restore throughput: the image path against `docker start --checkpoint` '
                                         'and Podman',
        baseline='`docker -H <engine> start --checkpoint golden` of the same container and checkpoint (the docker CLI '
                 'until it returned: the engine, containerd\'s content store and its copy in a temporary directory); '
                 'Podman %s: `podman container restore` of a container holding the same memory on this host (wall '
                 'time of the command)' % (podman_version() if not reason else '(not measured)'),
        measured='cryo.docker.docker_restore method auto of the imported container (the image path on Docker 23 and '
                 'later), the module file run directly: its `duration` (restore request to running) and the wall '
                 'time of the process; and a plain `docker -H <engine> start` of it with its runtime armed on the '
                 'checkpoint by cryo.docker.docker_warm (the image path without the module)',
        rows=rows, checks=checks, podman_skipped=reason, all_verified=all(r['verified'] for r in rows),
        all_resumed=all(r['resumed'] for r in rows),
        notes=(['podman skipped: %s; no Podman figure in this run' % reason] if reason else []) + [
            'failed on %s at %d MB: %s' % (row['kind'], row['mb'], row['error']) for row in rows if row.get('error')] + [
            "A counter that first holds M MB in a shell variable of PID 1 (VmRSS checked: rss MB), exported with "
            "docker_checkpoint_export (stopping at its checkpoint) and imported on the same engine with "
            "docker_checkpoint_import (keep_checkpoint, method auto: a runtime of its own where the image path can be "
            "taken; import restore s: that first restore's duration). Then, for each repetition (medians of %d; of %d from "
            "1024 MB), killed and restored from that one checkpoint each way in turn: docker_restore (module duration "
            "s, module wall s), armed start (docker_warm state warm, then `docker start`: armed start s, the start "
            "alone; then docker_warm state cold), `docker start --checkpoint` (cli s)." % (
                bench.options.repeat, bench.options.large_repeat),
            "cli/wall = cli s / module wall s; cli/duration = cli s / module duration s (targets: at least %s); "
            "cli/armed = cli s / armed start s; MB/s: checkpoint MB / module duration s, armed start s, cli s. "
            "podman/wall = module wall s / podman restore s (target: at most %.1f), podman/duration likewise with "
            "the duration." % (', '.join('%.0f at %d MB' % (TARGETS[mb], mb) for mb in sorted(TARGETS)),
                               PODMAN_TARGET),
            "method: the path docker_restore took; where it is `engine` (Docker 20.10 passes no runtime options to "
            "containerd) there is no armed start and no target. criu restore ms: CRIU's restore_time from the "
            "module's stats. resumed: every restore, each way, went on from the checkpoint's number (never a fresh "
            "start at 0)."])
    report(summary, [('kind', 'engine'), ('version', 'version'), ('network', 'network'), ('mb', 'MB'),
                     ('rss_mb', 'rss MB'), ('checkpoint_mb', 'ckpt MB'), ('method', 'method'),
                     ('import_restore_s', 'import restore s'), ('module_duration_s', 'module duration s'),
                     ('module_wall_s', 'module wall s'), ('armed_start_s', 'armed start s'), ('cli_s', 'cli s'),
                     ('cli_vs_wall', 'cli/wall'), ('cli_vs_duration', 'cli/duration'), ('cli_vs_armed', 'cli/armed'),
                     ('target', 'target'), ('met_wall', 'met (wall)'), ('met_duration', 'met (duration)'),
                     ('podman_restore_s', 'podman s'), ('podman_vs_wall', 'podman/wall'),
                     ('podman_vs_duration', 'podman/duration'), ('podman_met', 'podman met'),
                     ('criu_restore_ms', 'criu restore ms'), ('module_duration_mb_per_s', 'module MB/s'),
                     ('armed_start_mb_per_s', 'armed MB/s'), ('cli_mb_per_s', 'cli MB/s'), ('verified', 'verified'),
                     ('resumed', 'resumed')], rows)
    return summary


def speed_rows(bench, kind):
    facts = bench.engine_facts(kind)
    network = bench.network_mode(facts)
    mib = float(1 << 20)
    rows = []
    for megabytes in bench.options.speed_sizes:
        clone = clone_name(bench, 'speed')
        try:
            say('restore_speed: %s, %d MB: export and import' % (kind, megabytes))
            imported, rss, size = import_holder(bench, megabytes, network, clone)
            reference = new_run(bench, clone, 0)
            runs = []
            for rep in range(bench.repeats(megabytes)):
                say('restore_speed: %s, %d MB, repetition %d of %d' % (kind, megabytes, rep + 1, bench.repeats(megabytes)))
                runs.append(speed_run(bench, clone, reference, rep, imported['method'] == 'image_path'))
        except BenchError as error:
            # Reported (the table's error column and a note), and the next size or engine goes on.
            say('restore_speed: %s, %d MB failed: %s' % (kind, megabytes, error))
            rows.append(dict(facts, mb=megabytes, method=None, error=str(error)[-2000:], verified=False, resumed=False))
            continue
        finally:
            bench.remove([clone])
        row = dict(facts, mb=megabytes, repeat=len(runs), rss_mb=round(rss / mib, 1), checkpoint_mb=round(size / mib, 1),
                   method='/'.join(sorted({r['method'] for r in runs})), import_method=imported['method'],
                   method_reason=imported.get('method_reason'), import_restore_s=imported['duration'],
                   verified=bool(imported['verified']) and all(r['verified'] for r in runs),
                   resumed=all(r['resumed'] for r in runs))
        row.update(medians(runs, ('module_duration_s', 'module_wall_s', 'cli_s'), spread=True))
        row.update(medians(runs, ('armed_start_s', 'arm_s', 'disarm_s', 'criu_restore_ms')))
        for key in ('module_duration', 'module_wall', 'armed_start', 'cli'):
            row[key + '_mb_per_s'] = round(row['checkpoint_mb'] / row[key + '_s'], 1) if row[key + '_s'] else None
        row['cli_vs_wall'] = ratio(row['cli_s'], row['module_wall_s'])
        row['cli_vs_duration'] = ratio(row['cli_s'], row['module_duration_s'])
        row['cli_vs_armed'] = ratio(row['cli_s'], row['armed_start_s'])
        row['target'] = TARGETS.get(megabytes) if row['method'] == 'image_path' else None
        row['met_wall'] = judge(row['cli_vs_wall'], row['target'])
        row['met_duration'] = judge(row['cli_vs_duration'], row['target'])
        rows.append(row)
    return rows


def import_holder(bench, megabytes, network, clone):
    """A counter holding M MB exported (it stops at the checkpoint and is removed) and imported as `clone`, its
    checkpoint kept: (the import's result, VmRSS of the source's PID 1, checkpoint bytes)."""
    name, rss = bench.hold_and_count(megabytes, network)
    try:
        path, exported = export(bench, name)
    finally:
        bench.remove([name])
    try:
        imported, _wall = bench.ansible.module('docker_checkpoint_import', dict(
            path=path, container=clone, keep_checkpoint=True, allow=allow(network, unconfined=True)))
    finally:
        remove_archive(path)
    say('restore_speed: imported %s: method %s%s, restore %.2f s' % (
        clone, imported['method'], ' (%s)' % imported['method_reason'] if imported.get('method_reason') else '',
        imported['duration']))
    return imported, rss, exported['checkpoint'].get('size') or 0


def speed_run(bench, clone, reference, turn, fast):
    """The imported container restored from checkpoint golden each way (WAYS, the order turning with `turn`;
    the armed start only where the image path can be taken), each from a killed container."""
    order = WAYS[turn % 3:] + WAYS[:turn % 3]
    out = dict(resumed=True, armed_start_s=None, arm_s=None, disarm_s=None)
    for way in order:
        if way == 'armed' and not fast:
            continue
        stop(bench, clone)
        before = len(counter_runs(bench, clone))
        if way == 'module':
            result, wall = bench.ansible.module('docker_restore', dict(container=clone, checkpoint='golden',
                                                                       keep_checkpoint=True))
            out.update(module_wall_s=round(wall, 3), module_duration_s=result['duration'], method=result['method'],
                       verified=bool(result['verified']), criu_restore_ms=criu_ms(result.get('stats'), 'restore_time'))
        elif way == 'armed':
            _result, arm = bench.ansible.module('docker_warm', dict(container=clone, state='warm', checkpoint='golden'))
            _out, start = bench.cli('start', clone)
            _result, disarm = bench.ansible.module('docker_warm', dict(container=clone, state='cold'))
            out.update(armed_start_s=round(start, 3), arm_s=round(arm, 3), disarm_s=round(disarm, 3))
        else:
            _out, wall = bench.cli('start', '--checkpoint', 'golden', clone)
            out['cli_s'] = round(wall, 3)
        first = new_run(bench, clone, before)
        if first != reference:
            say('restore_speed: %s (%s) went on from %s, not from the checkpoint\'s %s' % (clone, way, first, reference))
            out['resumed'] = False
    return out


def podman_restores(bench):
    """Podman's restore of a counter holding each --speed-sizes size on this host, as bench/podman.py measures it
    (its podman_run, which also checkpoints and restores the same container on the main engine first): ({MB: row
    values}, None), or ({}, why not) where Podman cannot run."""
    reason = podman_ready(bench)
    out = {}
    for megabytes in bench.options.speed_sizes if not reason else []:
        runs = []
        try:
            for rep in range(bench.repeats(megabytes)):
                say('restore_speed: podman, %d MB, repetition %d of %d' % (megabytes, rep + 1, bench.repeats(megabytes)))
                runs.append(podman_run(bench, megabytes))
        except BenchError as error:
            if 'podman' not in str(error):
                raise
            return {}, str(error)
        out[megabytes] = dict(medians(runs, ('podman_restore_s', 'podman_checkpoint_s')),
                              podman_resumed=all(r['resumed'] for r in runs))
    return out, reason
