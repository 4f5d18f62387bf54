# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The state machine of the cryo.docker.maintenance role, as filters over plain dicts and lists.

A maintenance run keeps a manifest on the host (a dict, written as JSON before and after each
phase). It has a run ``status`` and a list of ``containers``, each an entry with its own ``status``.
The role's tasks do the work (checkpoint, action, restore) and call these filters to decide what
to do and to record what happened; the names of every status are defined here, once.

    preflight containers --maintenance_plan--> entries 'planned'          run 'checkpointing'
    checkpoint jobs      --maintenance_checkpointed--> 'checkpointed' | 'checkpoint_failed'
                                                                          run 'checkpointed'
    (abort: maintenance_restores(abort=true) resumes the checkpointed)    run 'aborted'
                                                                          run 'action', 'restoring'
    restore jobs         --maintenance_restored--> 'restored' | 'cold_started' | 'running'
                                                   | 'restore_failed'     run 'complete' | 'restore_failed'
    interrupted run      --maintenance_recovering--> 'planned' becomes 'checkpointed' or
                                                   'not_checkpointed'     run 'recovering'

Manifests written by cryo.docker 0.1.0 used other names (``frozen``, ``not_frozen``,
``freezing``, ``thawing``, ``freeze_seconds``); every filter reads them as today's names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError

# -- The vocabulary: every status a manifest can hold ------------------------------------------

# Status of a container entry.
PLANNED = 'planned'                    # selected; its checkpoint was not (yet) known to be taken
CHECKPOINTED = 'checkpointed'          # checkpointed and stopped: it waits for its restore
NOT_CHECKPOINTED = 'not_checkpointed'  # an interrupted run never checkpointed it: it kept running
CHECKPOINT_FAILED = 'checkpoint_failed'  # its checkpoint failed or did not finish
RESTORED = 'restored'                  # resumed from its checkpoint
COLD_STARTED = 'cold_started'          # started afresh (fallback cold_start)
RUNNING = 'running'                    # found running, nothing to restore
RESTORE_FAILED = 'restore_failed'      # stopped, keeps its checkpoint
CONTAINER_STATUSES = (PLANNED, CHECKPOINTED, NOT_CHECKPOINTED, CHECKPOINT_FAILED, RESTORED, COLD_STARTED,
                      RUNNING, RESTORE_FAILED)

# Status of the run, in the order a run goes through them.
RUN_CHECKPOINTING = 'checkpointing'
RUN_CHECKPOINTED = 'checkpointed'
RUN_ABORTED = 'aborted'
RUN_ACTION = 'action'
RUN_RESTORING = 'restoring'
RUN_RECOVERING = 'recovering'
RUN_COMPLETE = 'complete'
RUN_RESTORE_FAILED = 'restore_failed'
RUN_STATUSES = (RUN_CHECKPOINTING, RUN_CHECKPOINTED, RUN_ABORTED, RUN_ACTION, RUN_RESTORING, RUN_RECOVERING,
                RUN_COMPLETE, RUN_RESTORE_FAILED)
# A run in any other status did not finish: a new run must not start, and recover has work.
FINISHED = (RUN_COMPLETE, RUN_ABORTED)

# Containers that a run which did not finish may have left stopped with their checkpoint.
MAY_BE_STOPPED = (PLANNED, CHECKPOINTED, RESTORE_FAILED)
# Containers a restore phase works on; those whose checkpoint failed only ever get a cold start.
TO_RESTORE = (CHECKPOINTED, CHECKPOINT_FAILED, RESTORE_FAILED)

# The names cryo.docker 0.1.0 wrote, and today's names for them.
LEGACY_CONTAINER_STATUSES = {'frozen': CHECKPOINTED, 'not_frozen': NOT_CHECKPOINTED}
LEGACY_RUN_STATUSES = {'freezing': RUN_CHECKPOINTING, 'frozen': RUN_CHECKPOINTED, 'thawing': RUN_RESTORING}
LEGACY_FIELDS = {'freeze_seconds': 'checkpoint_seconds'}

FALLBACKS = ('fail', 'cold_start')
REPORT_COLUMNS = ('container', 'size', 'checkpoint s', 'restore s', 'outcome')


# -- Reading a manifest ------------------------------------------------------------------------

def _mapping(value, what):
    if not isinstance(value, Mapping):
        raise AnsibleFilterError('%s must be a dictionary, not %s' % (what, type(value).__name__))
    return value


def _sequence(value, what):
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise AnsibleFilterError('%s must be a list, not %s' % (what, type(value).__name__))
    return value


def _entry(entry):
    """A copy of one container entry, with today's names."""
    out = {}
    for key, value in _mapping(entry, 'each entry of the manifest\'s containers').items():
        key = LEGACY_FIELDS.get(key, key)
        if key == 'status':
            value = LEGACY_CONTAINER_STATUSES.get(value, value)
        out[key] = value
    return out


def _manifest(manifest):
    """A copy of a manifest (run status, entries), with today's names: 0.1.0 manifests read the same."""
    out = dict(_mapping(manifest, 'the manifest'))
    if 'status' in out:
        out['status'] = LEGACY_RUN_STATUSES.get(out['status'], out['status'])
    out['containers'] = [_entry(entry) for entry in _sequence(out.get('containers') or [], 'the manifest\'s containers')]
    return out


def _by_container(results, what):
    """Async job results (async_status in a loop over the async starts) by the container they ran for."""
    found = {}
    for job in _sequence(results or [], what):
        job = _mapping(job, 'each of %s' % what)
        start = job.get('item') or {}
        entry = start.get('item') if isinstance(start, Mapping) else None
        if not isinstance(entry, Mapping) or 'container' not in entry:
            raise AnsibleFilterError('%s must be the results of async_status looped over the async jobs, each '
                                     'with item.item.container (the manifest entry)' % what)
        found[entry['container']] = job
    return found


def _finished(job):
    # async_status says finished: 1; an until loop that ran out leaves finished: 0.
    return bool(job.get('finished'))


# -- The filters -------------------------------------------------------------------------------

def maintenance_plan(containers, checkpoint):
    """The manifest entries of a run, from checkpoint_preflight's containers: eligible ones only."""
    entries, ineligible = [], []
    for container in _sequence(containers or [], 'the containers (checkpoint_preflight\'s containers)'):
        container = _mapping(container, 'each container')
        if container.get('eligible'):
            entries.append({'container': container['name'], 'id': container['id'],
                            'restart_policy': container.get('restart_policy'), 'checkpoint': checkpoint,
                            'status': PLANNED})
        else:
            ineligible.append({'container': container['name'], 'reasons': list(container.get('reasons') or [])})
    return {'containers': entries, 'ineligible': ineligible}


def maintenance_mark(manifest, status):
    """The manifest with the run status set; the status must be one of RUN_STATUSES."""
    if status not in RUN_STATUSES:
        raise AnsibleFilterError('%r is not a status of a maintenance run (%s)' % (status, ', '.join(RUN_STATUSES)))
    return dict(_manifest(manifest), status=status)


def maintenance_checkpointed(manifest, results):
    """The manifest after the checkpoint jobs: each entry checkpointed or checkpoint_failed."""
    out = _manifest(manifest)
    jobs = _by_container(results, 'the checkpoint job results')
    for entry in out['containers']:
        job = jobs.get(entry['container'])
        if job is None:
            entry.update(status=CHECKPOINT_FAILED, checkpoint_size=None, checkpoint_seconds=None,
                         error='no checkpoint job ran for it')
            continue
        # failed_when: false clears `failed`: only a finished docker_checkpoint returns `checkpoint`.
        ok = _finished(job) and isinstance(job.get('checkpoint'), Mapping)
        entry.update(status=CHECKPOINTED if ok else CHECKPOINT_FAILED,
                     checkpoint_size=job['checkpoint'].get('size') if ok else None,
                     checkpoint_seconds=job.get('duration'),
                     error='' if ok else job.get('msg') or 'checkpoint did not finish')
    out['status'] = RUN_CHECKPOINTED
    return out


def maintenance_restores(manifest, fallback='fail', abort=False):
    """The restores to run: which container, from which checkpoint, with which fallback."""
    if fallback not in FALLBACKS:
        raise AnsibleFilterError('fallback must be one of %s, not %r' % (', '.join(FALLBACKS), fallback))
    manifest = _manifest(manifest)
    checkpoint = manifest.get('checkpoint')
    out = []
    for entry in manifest['containers']:
        if abort:
            # An abort resumes what it stopped, whatever it takes; the others never stopped.
            if entry.get('status') != CHECKPOINTED:
                continue
            use = 'cold_start'
        elif entry.get('status') in TO_RESTORE:
            use = 'cold_start' if entry['status'] == CHECKPOINT_FAILED else fallback
        else:
            continue
        out.append({'container': entry['container'], 'id': entry['id'],
                    'checkpoint': entry.get('checkpoint') or checkpoint, 'fallback': use})
    return out


def _restore_outcome(job):
    # failed_when: false clears `failed`: only a finished docker_restore returns `restored`.
    if not (_finished(job) and 'restored' in job):
        return RESTORE_FAILED
    if job.get('restored'):
        return RESTORED
    if job.get('fallback_used'):
        return COLD_STARTED
    return RUNNING


def maintenance_restored(manifest, results, finished=None):
    """The manifest after the restore jobs: each restored entry's outcome, and the run's status."""
    out = _manifest(manifest)
    jobs = _by_container(results, 'the restore job results')
    for entry in out['containers']:
        job = jobs.get(entry['container'])
        if job is None:
            continue
        outcome = _restore_outcome(job)
        entry.update(status=outcome, restore_seconds=job.get('duration'), verified=job.get('verified'),
                     checkpoint_removed=bool(job.get('checkpoint_removed')),
                     error=(entry.get('error') or '') if outcome != RESTORE_FAILED
                     else job.get('msg') or 'restore did not finish')
    failed = any(entry.get('status') == RESTORE_FAILED for entry in out['containers'])
    out['status'] = RUN_RESTORE_FAILED if failed else RUN_COMPLETE
    if finished is not None:
        out['finished'] = finished
    return out


def maintenance_recovering(manifest, checkpoints):
    """An interrupted run's manifest, ready to restore: entries still planned are resolved from the
    checkpoints the engine has (docker_checkpoint_info), and the run is recovering."""
    out = _manifest(manifest)
    have = set()
    for checkpoint in _sequence(checkpoints or [], 'the checkpoints (docker_checkpoint_info\'s checkpoints)'):
        checkpoint = _mapping(checkpoint, 'each checkpoint')
        have.add((checkpoint.get('container_id'), checkpoint.get('name')))
    for entry in out['containers']:
        if entry.get('status') == PLANNED:
            taken = (entry.get('id'), entry.get('checkpoint') or out.get('checkpoint')) in have
            entry['status'] = CHECKPOINTED if taken else NOT_CHECKPOINTED
    out['status'] = RUN_RECOVERING
    return out


def maintenance_state(manifest):
    """What a manifest says: whether its run finished, what it may have left stopped, what failed."""
    out = _manifest(manifest)
    finished = out.get('status') in FINISHED
    entries = out['containers']
    return {
        'run_id': out.get('run_id'),
        'status': out.get('status'),
        'finished': finished,
        'may_be_stopped': [] if finished else [e['container'] for e in entries if e.get('status') in MAY_BE_STOPPED],
        'checkpoint_failed': [e for e in entries if e.get('status') == CHECKPOINT_FAILED],
        'restore_failed': [e for e in entries if e.get('status') == RESTORE_FAILED],
    }


def _size(value):
    """Bytes as Jinja's filesizeformat writes them (decimal units): 1 Byte, 512 Bytes, 1.2 MB."""
    value = float(value)
    if value == 1:
        return '1 Byte'
    if value < 1000:
        return '%d Bytes' % value
    prefixes = ['kB', 'MB', 'GB', 'TB']
    value /= 1000
    while value >= 1000 and len(prefixes) > 1:
        value /= 1000
        prefixes.pop(0)
    return '%.1f %s' % (value, prefixes[0])


def _cell(value, empty='-'):
    return empty if value is None else str(value)


def maintenance_report_lines(manifest):
    """The report of a run as lines of a table: one per container, then the run's status."""
    out = _manifest(manifest)
    rows = [REPORT_COLUMNS]
    for entry in out['containers']:
        size = entry.get('checkpoint_size')
        rows.append((
            str(entry.get('container')),
            '-' if size is None else _size(size),
            _cell(entry.get('checkpoint_seconds')),
            _cell(entry.get('restore_seconds') or None),  # 0: nothing was restored
            '%s%s' % (entry.get('status'), ' (verified)' if entry.get('verified') else ''),
        ))
    width = max(len(row[0]) for row in rows)
    lines = ['%-*s  %10s  %12s  %9s  %s' % ((width,) + tuple(row)) for row in rows]
    lines.append('run %s: %s' % (out.get('run_id'), out.get('status')))
    return lines


class FilterModule:
    """The cryo.docker.maintenance role's state machine."""

    def filters(self):
        return {
            'maintenance_plan': maintenance_plan,
            'maintenance_mark': maintenance_mark,
            'maintenance_checkpointed': maintenance_checkpointed,
            'maintenance_restores': maintenance_restores,
            'maintenance_restored': maintenance_restored,
            'maintenance_recovering': maintenance_recovering,
            'maintenance_state': maintenance_state,
            'maintenance_report_lines': maintenance_report_lines,
        }
