"""memory: checkpoint and restore time, checkpoint size and peak disk use against the memory the container
holds (--sizes, --holder), with `cp -r` of the checkpoint as baseline.

A container holding M MB (harness.ALLOCATE: a shell variable, or a file in /dev/shm) checkpointed with
cryo.docker.docker_checkpoint and restored with cryo.docker.docker_restore (keep_checkpoint): their `duration`,
the growth of used disk space meanwhile (DiskPeak), RSS and cgroup memory before and after, and the copy
containerd left of the checkpoint. Baselines: `cp -r` + sync of the checkpoint directory, and the smallest size.
"""

import os
import shutil
import tempfile

from harness import ALLOCATE, CONTAINERD_TMP, DiskPeak, cgroup_memory_bytes, ratio, report, rss_bytes, say, wait_for

from ansible_collections.cryo.docker.plugins.module_utils._checkpoint import containerd_copies, dir_size

# After ALLOCATE: the container says so, then only sleeps.
HOLD = '; echo allocated; while true; do sleep 3600; done'


def run(bench):
    rows = []
    for megabytes in bench.options.sizes:
        say('memory: %d MB (%s)' % (megabytes, bench.options.holder))
        rows.append(memory_run(bench, megabytes))
    first = rows[0]
    for row in rows:
        row['checkpoint_vs_first'] = ratio(row['checkpoint_s'], first['checkpoint_s'])
        row['restore_vs_first'] = ratio(row['restore_s'], first['restore_s'])
    summary = dict(
        benchmark='memory', title='checkpoint and restore against the memory the container holds (%s)' % bench.options.holder,
        holder=bench.options.holder,
        baseline='cp -r of the checkpoint directory to the same filesystem, then sync (raw copy of the same bytes), '
                 'and the smallest size (%d MB)' % first['mb'],
        measured='cryo.docker.docker_checkpoint then cryo.docker.docker_restore (via %s, keep_checkpoint), the engine '
                 'time each module reports' % bench.options.via,
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
            "leftover copy)." % ', '.join(DiskPeak(disk_paths(bench)).paths),
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


def memory_run(bench, megabytes):
    holder = bench.options.holder
    command = ALLOCATE[holder].format(bytes=megabytes << 20) + HOLD
    extra = dict(shm_size='%dm' % (megabytes + 16)) if holder == 'shm' else {}
    name = bench.container('mem', command, **extra)
    copy_root = tempfile.mkdtemp(prefix='bench-copy-', dir=os.path.dirname(bench.data_root))
    try:
        wait_for(lambda: 'allocated' in bench.logs(name), 120, 0.1, '%s to allocate %d MB' % (name, megabytes))
        pid = bench.pid(name)
        rss = rss_bytes(pid)
        cgroup = cgroup_memory_bytes(pid)
        with DiskPeak(disk_paths(bench)) as disk_checkpoint:
            checkpoint, checkpoint_wall = bench.ansible.module('docker_checkpoint', dict(container=name, checkpoint='mem'))
        directory = checkpoint['checkpoint']['directory']
        size = checkpoint['checkpoint'].get('size') or dir_size(directory)
        copy = bench.copy_seconds(directory, copy_root)
        with DiskPeak(disk_paths(bench)) as disk_restore:
            restore, restore_wall = bench.ansible.module(
                'docker_restore', dict(container=name, checkpoint='mem', keep_checkpoint=True))
        pid_after = bench.pid(name)
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
        bench.remove([name])
        shutil.rmtree(copy_root, ignore_errors=True)


def disk_paths(bench):
    return [bench.data_root, tempfile.gettempdir(), '/run', '/var/run']
