"""archive: portable checkpoint archives. cryo.docker.docker_checkpoint_export of a container holding --archive-mb
MB of incompressible memory against cryo.docker.docker_checkpoint of it, cryo.docker.docker_checkpoint_import
against cryo.docker.docker_restore of the same checkpoint, and the archive's size against the checkpoint plus
the file changes (--archive-compression, --archive-level; each --methods value, --repeat times, medians).
"""

import os

from harness import COUNTER, medians, ratio, report, say, wait_for


def run(bench):
    rows = []
    for method in bench.options.methods:
        for rep in range(bench.options.repeat):
            say('archive: %d MB, method %s, repetition %d of %d'
                % (bench.options.archive_mb, method, rep + 1, bench.options.repeat))
            rows.append(archive_run(bench, bench.options.archive_mb, method))
    by_method = []
    for method in bench.options.methods:
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
                                   'memory, %s level %d)' % (bench.options.archive_mb, bench.options.archive_compression,
                                                             bench.options.archive_level),
        baseline='cryo.docker.docker_checkpoint of the container (checkpoint_s) and cryo.docker.docker_restore of '
                 'that checkpoint on the same engine (restore_s); the checkpoint directory plus rootfs-diff.tar '
                 '(checkpoint_mb + diff_mb)',
        measured='cryo.docker.docker_checkpoint_export taking a checkpoint of the same container (export_s: its '
                 'total_duration, checkpoint and archive) and cryo.docker.docker_checkpoint_import of the archive '
                 'as a new container on the same engine (import_s: import_duration + duration, verification, '
                 'unpacking, creation, staging and restore); via %s, medians of %d'
                 % (bench.options.via, bench.options.repeat),
        rows=by_method, runs=rows, targets=dict(export_vs_checkpoint=1.3, import_vs_restore=1.3,
                                                size_vs_content=1.05),
        all_verified=all(r['verified'] for r in rows), all_resumed=all(r['resumed'] for r in rows),
        notes=[
            "The container holds %d MB of random bytes in a shell variable (NUL bytes removed: nearly "
            "incompressible) and counts; it wrote one file (its writable layer)." % bench.options.archive_mb,
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


def archive_run(bench, megabytes, method):
    """One container: checkpoint and local restore (baselines), then export and import of a second checkpoint."""
    fill = ('x=$(busybox head -c %d /dev/urandom | busybox tr -d "\\0"); echo allocated; echo run-time > '
            '/tmp/written; ' % (megabytes << 20)) + COUNTER
    name = bench.container('archive', fill, security_opt=['seccomp=unconfined'])
    copy = name + '-imported'
    path = os.path.join(bench.workdir, name + '.tar.zst')
    mib = float(1 << 20)
    try:
        wait_for(lambda: 'allocated' in bench.logs(name), 180, 0.1, '%s to allocate %d MB' % (name, megabytes))
        wait_for(lambda: bench.counter_lines(name), 30, 0.1, '%s to count' % name)
        checkpoint, _wall = bench.ansible.module('docker_checkpoint', dict(container=name, checkpoint='base',
                                                                           method=method))
        restore, _wall = bench.ansible.module('docker_restore', dict(container=name, checkpoint='base'))
        exported, _wall = bench.ansible.module('docker_checkpoint_export', dict(
            container=name, checkpoint='exp', path=path, method=method,
            compression=bench.options.archive_compression, compression_level=bench.options.archive_level))
        checkpoint_bytes = exported['checkpoint']['size'] or 0
        imported, _wall = bench.ansible.module('docker_checkpoint_import', dict(
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
            resumed=bench.resumed(copy, from_zero=False))
    finally:
        bench.remove([copy, name])
        if os.path.exists(path):
            os.unlink(path)
