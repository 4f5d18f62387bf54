"""checkpoint_speed: on each engine of --kinds, a counter holding --speed-sizes MB: cryo.docker.docker_checkpoint
method runtime against `docker checkpoint create` (the CLI) and against `cp -r` + sync of the same bytes;
cryo.docker.docker_restore's throughput beside it (--repeat times, --large-repeat from 1024 MB; medians).
"""

import os
import shutil
import tempfile

from harness import check, criu_ms, judge, median, medians, ratio, report, rss_bytes, say

from ansible_collections.cryo.docker.plugins.module_utils._checkpoint import dir_size

# The targets: MB: `docker checkpoint create` / runtime path at least.
TARGETS = {256: 8.0, 1024: 10.0}


def run(bench):
    rows = bench.on_engines(speed_rows)
    checks = [check('cli_vs_runtime on %s at %d MB' % (row['kind'], row['mb']), row['cli_vs_runtime'],
                    TARGETS[row['mb']]) for row in rows if row['mb'] in TARGETS]
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
            "1024 MB and more)." % (bench.options.repeat, bench.options.large_repeat),
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


def speed_rows(bench, kind):
    facts = bench.engine_facts(kind)
    mib = float(1 << 20)
    rows = []
    for megabytes in bench.options.speed_sizes:
        runs = []
        for rep in range(bench.repeats(megabytes)):
            say('checkpoint_speed: %s, %d MB, repetition %d of %d' % (kind, megabytes, rep + 1, bench.repeats(megabytes)))
            runs.append(speed_run(bench, megabytes, bench.network_mode(facts)))
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
        row['target'] = TARGETS.get(megabytes)
        row['met'] = judge(row['cli_vs_runtime'], row['target'])
        rows.append(row)
    return rows


def speed_run(bench, megabytes, network):
    """One container holding M MB: runtime checkpoint, raw copy of it, restore; CLI checkpoint, restore."""
    name, rss = bench.hold_and_count(megabytes, network)
    copy_root = tempfile.mkdtemp(prefix='bench-copy-', dir=os.path.dirname(bench.data_root))
    try:
        runtime, runtime_wall = bench.ansible.module('docker_checkpoint', dict(container=name, checkpoint='runtime',
                                                                               method='runtime'))
        directory = runtime['checkpoint']['directory']
        size = runtime['checkpoint'].get('size') or dir_size(directory)
        copy = bench.copy_seconds(directory, copy_root)
        restore, _wall = bench.ansible.module('docker_restore', dict(container=name, checkpoint='runtime'))
        resumed = bench.resumed(name)
        cli, attempts = bench.cli_checkpoint(name, 'cli')
        restore_cli, _wall = bench.ansible.module('docker_restore', dict(container=name, checkpoint='cli'))
        return dict(runtime_s=round(runtime_wall, 3), runtime_duration_s=runtime['duration'],
                    method=runtime.get('method'), cli_s=round(cli, 3), cli_attempts=attempts,
                    copy_s=round(copy, 3), restore_s=restore['duration'], restore_cli_s=restore_cli['duration'],
                    frozen_ms=criu_ms(runtime.get('stats'), 'frozen_time'),
                    memdump_ms=criu_ms(runtime.get('stats'), 'memdump_time'),
                    memwrite_ms=criu_ms(runtime.get('stats'), 'memwrite_time'),
                    size=size, rss=rss, rss_after=rss_bytes(bench.pid(name)) or 0,
                    verified=bool(restore['verified'] and restore_cli['verified']),
                    resumed=bool(resumed and bench.resumed(name)))
    finally:
        bench.remove([name])
        shutil.rmtree(copy_root, ignore_errors=True)
