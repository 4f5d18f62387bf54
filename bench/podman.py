"""podman: Podman's checkpoint and restore of a container holding the same memory (--speed-sizes) against
cryo.docker.docker_checkpoint method runtime and cryo.docker.docker_restore on the local engine (--repeat
times, --large-repeat from 1024 MB; medians); "skipped: <reason>" where Podman cannot run.
"""

import json
import os
import shutil
import subprocess
import time
import uuid

from harness import (IMAGE, LABEL, BenchError, check, criu_ms, holding_counter, judge, medians, ratio, report, rss_bytes, say,
                     wait_for)


def run(bench):
    reason = podman_ready(bench)
    rows = []
    for megabytes in bench.options.speed_sizes if not reason else []:
        runs = []
        for rep in range(bench.repeats(megabytes)):
            say('podman: %d MB, repetition %d of %d' % (megabytes, rep + 1, bench.repeats(megabytes)))
            try:
                runs.append(podman_run(bench, megabytes))
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
                 'time of the command)' % (podman_version() if not reason else '-'),
        measured='cryo.docker.docker_checkpoint method runtime (wall time of the module process) and '
                 'cryo.docker.docker_restore (its `duration`) on %s' % bench.docker_host,
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


def podman_run(bench, megabytes):
    """The same container on this engine (runtime checkpoint, docker_restore) and in Podman (checkpoint, restore)."""
    name, rss = bench.hold_and_count(megabytes)
    try:
        runtime, runtime_wall = bench.ansible.module('docker_checkpoint', dict(container=name, checkpoint='peer',
                                                                               method='runtime'))
        restore, _wall = bench.ansible.module('docker_restore', dict(container=name, checkpoint='peer'))
        resumed = bench.resumed(name)
    finally:
        bench.remove([name])
    peer = 'bench-podman-%s-%s' % (bench.run_id, uuid.uuid4().hex[:4])
    try:
        podman_cli('run', '--detach', '--name', peer, '--label', '%s=%s' % (LABEL, bench.run_id),
                   '--runtime', 'runc', '--network', 'none', '--security-opt', 'seccomp=unconfined',
                   '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=32768:32768', IMAGE,
                   '/bin/sh', '-c', holding_counter(megabytes))
        wait_for(lambda: podman_counter(peer), 120 + megabytes // 8, 0.1, 'podman %s to count' % peer)
        out, _wall = podman_cli('inspect', '--format', '{{.State.Pid}}', peer)
        podman_rss = rss_bytes(int(out.strip() or 0)) or 0
        out, checkpoint_wall = podman_cli('container', 'checkpoint', '--print-stats', peer)
        frozen = criu_ms(podman_stats(out), 'frozen_time')
        _out, restore_wall = podman_cli('container', 'restore', '--print-stats', peer)
        before = podman_counter(peer)
        wait_for(lambda: len(podman_counter(peer)) > len(before), 5, 0.1, 'podman %s to count on' % peer)
        lines = podman_counter(peer)
        stats = runtime.get('stats')
        return dict(runtime_s=round(runtime_wall, 3), runtime_duration_s=runtime['duration'],
                    method=runtime.get('method'), restore_s=restore['duration'], rss=rss, podman_rss=podman_rss,
                    podman_checkpoint_s=round(checkpoint_wall, 3), podman_restore_s=round(restore_wall, 3),
                    podman_frozen_ms=frozen, runtime_frozen_ms=criu_ms(stats, 'frozen_time'),
                    verified=bool(restore['verified']),
                    resumed=bool(resumed and lines == list(range(len(lines)))))
    finally:
        podman_cli('rm', '--force', peer, check_rc=False)


def podman_ready(bench):
    """None when Podman can run the benchmark's containers (its image loaded from this engine), else why not."""
    if not shutil.which('podman'):
        return 'podman is not installed (apt-get install podman: Debian 12 has 4.3.1)'
    try:
        image_id = bench.engine.inspect_image(IMAGE)['Id'].split(':', 1)[-1]
        out, _wall = podman_cli('image', 'inspect', '--format', '{{.Id}}', IMAGE, check_rc=False)
        if out.strip() != image_id:
            path = os.path.join(bench.workdir, 'image.tar')
            with open(path, 'wb') as handle:
                for chunk in bench.engine.get_image(IMAGE):
                    handle.write(chunk)
            podman_cli('load', '--input', path)
            os.unlink(path)
        left, _wall = podman_cli('ps', '--all', '--quiet', '--filter', 'label=' + LABEL)
        if left.split():
            podman_cli('rm', '--force', *left.split())
        return None
    except BenchError as error:
        return str(error)


def podman_cli(*args, check_rc=True):
    """`podman ARGS`: (stdout, wall seconds); BenchError when it fails and check_rc."""
    started = time.monotonic()
    proc = subprocess.run(['podman'] + list(args), capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if check_rc and proc.returncode != 0:
        raise BenchError('podman %s failed (rc %d): %s' % (' '.join(args[:3]), proc.returncode,
                                                           (proc.stderr or proc.stdout).strip()[-1500:]))
    return proc.stdout, wall


def podman_version():
    out, _wall = podman_cli('version', '--format', '{{.Client.Version}}', check_rc=False)
    return out.strip() or 'unknown'


def podman_counter(name):
    out, _wall = podman_cli('logs', name, check_rc=False)
    return [int(line) for line in out.split() if line.isdigit()]


def podman_stats(text):
    """CRIU's statistics from `podman container checkpoint --print-stats` output ({} if absent)."""
    try:
        return json.loads(text)['container_statistics'][0]['criu_statistics']
    except (ValueError, KeyError, IndexError, TypeError):
        return {}
