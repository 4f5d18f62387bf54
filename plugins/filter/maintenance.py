# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The state machine of the cryo.docker.maintenance role, as filters over plain dicts and lists.

A maintenance run keeps a manifest on the host (a dict, written as JSON before and after each
phase). It has a run ``status`` and a list of ``containers``, each an entry with its own ``status``.
The role's tasks do the work (checkpoint, action, restore) and call these filters to decide what
to do and to record what happened; the names of every status are defined here, once.

    preflight containers --maintenance_plan--> entries 'planned'          run 'checkpointing'
    checkpoint batch     --maintenance_checkpointed--> 'checkpointed' | 'checkpoint_failed'
                                                                          run 'checkpointed'
    (abort: maintenance_restores(abort=true) resumes the checkpointed)    run 'aborted'
                                                                          run 'action', 'restoring'
    restore batches      --maintenance_restored--> 'restored' | 'cold_started' | 'running'
                                                   | 'restore_failed'     run 'complete' | 'restore_failed'

The checkpoints and the restores are batch calls: one cryo.docker.docker_checkpoint with ``containers`` (the
entries' ids) for the whole run, one cryo.docker.docker_restore per group of maintenance_restores(grouped=true).
Each call returns ``results``, one entry per container, which the filters match to the manifest's entries by
the id each container was given; a call that failed as a whole (no ``results``) fails each container it was
given, with its msg.
    interrupted run      --maintenance_recovering--> 'planned' becomes 'checkpointed' or
                                                   'not_checkpointed'     run 'recovering'

Network holders (containers that only own a network namespace, which application containers join with
network_mode container:<holder>) are never checkpointed: the plan lists them apart, in ``holders``,
'planned'; after the action, before any restore, each is started again (cold) and recorded
(maintenance_holders_started) as 'started', 'running', 'missing' or 'start_failed'. Containers that
cannot be checkpointed are never stopped: the plan lists them in ``ineligible``, 'skipped' (the role
aborts before anything is checkpointed unless the operator allows skipping them).

Compose projects (the containers with the label com.docker.compose.project, which checkpoint_preflight reports as
each container's ``project``) are applications: the plan lists them in ``projects``, and their members' entries
carry ``project``. A project is checkpointed whole or not at all - one docker_checkpoint call with the members and
``group: true`` (maintenance_checkpoints), every member frozen before the first is dumped - and restored whole, one
docker_restore call with ``group: true`` (maintenance_restores). A project one of whose members cannot be
checkpointed (ineligible in the plan, or its group checkpoint refused) is never half checkpointed: the role aborts,
or (maintenance_on_project_failure=skip) the whole project is 'skipped', its members left running. A project's
status follows its members' (maintenance_checkpointed, maintenance_restored, maintenance_recovering).

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
SKIPPED = 'skipped'                    # cannot be checkpointed here: never stopped, never checkpointed
CONTAINER_STATUSES = (PLANNED, CHECKPOINTED, NOT_CHECKPOINTED, CHECKPOINT_FAILED, RESTORED, COLD_STARTED,
                      RUNNING, RESTORE_FAILED, SKIPPED)

# Status of a network holder (PLANNED and RUNNING as above: not yet looked at after the action; found running).
STARTED = 'started'                    # started again (cold) after the action
MISSING = 'missing'                    # does not exist: the containers in it cannot be restored
START_FAILED = 'start_failed'          # exists, but could not be started
HOLDER_STATUSES = (PLANNED, RUNNING, STARTED, MISSING, START_FAILED)
# Holders whose members cannot be restored.
HOLDER_DOWN = (MISSING, START_FAILED)

# Status of a Compose project: SKIPPED (not checkpointed: one of its members cannot be, and the operator allowed
# skipping it), or its members' - the first of PROJECT_ORDER that one of them has: a project is restored only
# when every member is.
PROJECT_ORDER = (RESTORE_FAILED, CHECKPOINT_FAILED, PLANNED, NOT_CHECKPOINTED, CHECKPOINTED, COLD_STARTED, RUNNING,
                 RESTORED)
PROJECT_STATUSES = (SKIPPED,) + PROJECT_ORDER
# What a project that cannot be checkpointed whole does to the run (maintenance_on_project_failure).
PROJECT_FAILURES = ('abort', 'skip')
# Members of a project that a restore phase works on: a member whose group checkpoint failed never stopped.
PROJECT_TO_RESTORE = (CHECKPOINTED, RESTORE_FAILED)

# Status of the run, in the order a run goes through them.
RUN_CHECKPOINTING = 'checkpointing'    # the containers are being checkpointed
RUN_CHECKPOINTED = 'checkpointed'      # all of them are, the action has not begun
RUN_ABORTED = 'aborted'                # a checkpoint failed: the action never ran, nothing stays stopped
RUN_ACTION = 'action'                  # the action (reboot, engine restart, tasks) runs
RUN_RESTORING = 'restoring'            # the action is over, the containers are being restored
RUN_RECOVERING = 'recovering'          # the recover playbook took over an unfinished run
RUN_COMPLETE = 'complete'              # every container is back
RUN_RESTORE_FAILED = 'restore_failed'  # some could not be restored (they keep their checkpoints)
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
REPORT_COLUMNS = ('container', 'size', 'checkpoint s', 'frozen s', 'restore s', 'outcome')


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
    # Manifests from before network holders, skipped containers and projects have none of them.
    for key in ('holders', 'ineligible', 'projects'):
        if key in out:
            out[key] = [dict(_mapping(item, 'each entry of the manifest\'s %s' % key))
                        for item in _sequence(out[key] or [], 'the manifest\'s %s' % key)]
    return out


def _calls(results, what):
    """The batch calls of a phase: one registered result of a docker_checkpoint or docker_restore call with
    containers, the registered result of a loop of them, or that loop's ``results``."""
    if isinstance(results, Mapping):
        inner = results.get('results')
        # A loop's registered result: its results are the calls (each with the loop's item).
        looped = isinstance(inner, Sequence) and not isinstance(inner, (str, bytes)) and any(
            isinstance(call, Mapping) and 'ansible_loop_var' in call for call in inner)
        calls = inner if looped else [results]
    else:
        calls = _sequence(results or [], what)
    return [_mapping(call, 'each of %s' % what) for call in calls if not (isinstance(call, Mapping) and call.get('skipped'))]


def _given(call):
    """The containers a call was given, as far as the result tells: the loop item's ``containers`` (the group of
    maintenance_restores(grouped=true), or plain ids), else the module's arguments; None when it does not say."""
    for source in ((call.get('item') or {}), ((call.get('invocation') or {}).get('module_args') or {})):
        given = source.get('containers') if isinstance(source, Mapping) else None
        if isinstance(given, Sequence) and not isinstance(given, (str, bytes)):
            return [c.get('id') or c.get('container') if isinstance(c, Mapping) else c for c in given]
    return None


def _keys(result):
    """What a batch entry names its container by: docker_checkpoint's ``container`` (as given), docker_restore's
    ``container.id`` and ``container.name`` (a failed restore names the container as given, in ``name``)."""
    container = result.get('container')
    if isinstance(container, Mapping):
        return [key for key in (container.get('id'), container.get('name')) if key]
    return [container] if container else []


def _by_container(results, what):
    """The batch entries of a phase by the id (or name) each container was given, and the msg of a call that failed
    as a whole without saying which containers it was given (it stands for every container nobody reported)."""
    found, unnamed = {}, None
    for call in _calls(results, what):
        entries = call.get('results')
        if entries is None:
            # The call failed before any container (the engine did not answer, an option was refused).
            failure = {'failed': True, 'msg': call.get('msg') or 'the call failed without a message'}
            given = _given(call)
            if given is None:
                unnamed = failure
            for key in given or []:
                found.setdefault(key, failure)
            continue
        for result in _sequence(entries, 'the results of each of %s' % what):
            result = _mapping(result, 'each entry of the results of %s' % what)
            keys = _keys(result)
            if not keys:
                raise AnsibleFilterError('%s must be results of docker_checkpoint or docker_restore called with '
                                         'containers: each entry names its container' % what)
            for key in keys:
                found[key] = result
    return found, unnamed


def _lookup(found, entry):
    """The batch entry of a manifest entry: by its id (what the role gives the modules), else by its name."""
    for key in (entry.get('id'), entry.get('container')):
        if key and key in found:
            return found[key]
    return None


def _seconds(stats, key):
    """A CRIU time (microseconds) in seconds, or None when CRIU kept no statistics."""
    value = stats.get(key) if isinstance(stats, Mapping) else None
    return round(value / 1e6, 6) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# -- The filters -------------------------------------------------------------------------------

def maintenance_plan(containers, checkpoint):
    """The manifest entries of a run, from checkpoint_preflight's containers: the eligible ones to checkpoint,
    the network holders to start again after the action, the ineligible ones to leave alone."""
    containers = [_mapping(c, 'each container')
                  for c in _sequence(containers or [], 'the containers (checkpoint_preflight\'s containers)')]
    # Whose network namespace the containers join: each of those is a holder for this run, labelled or not.
    joined = {}
    for container in containers:
        if container.get('network_holder'):
            joined.setdefault(container['network_holder'], []).append(container['name'])
    entries, ineligible, holders = [], [], []
    for container in containers:
        if container.get('holder') or container['name'] in joined:
            holders.append({'name': container['name'], 'id': container.get('id'), 'labelled': bool(container.get('holder')),
                            'members': joined.pop(container['name'], []), 'status': PLANNED})
        elif container.get('project'):
            # A member of a Compose project: checkpointed with its project, or not at all (_plan_projects).
            entry = {'container': container['name'], 'id': container.get('id'), 'project': container['project'],
                     'restart_policy': container.get('restart_policy'), 'checkpoint': checkpoint, 'status': PLANNED}
            if not container.get('eligible'):
                entry.update(status=SKIPPED, reasons=list(container.get('reasons') or []))
            entries.append(entry)
        elif container.get('eligible'):
            entries.append({'container': container['name'], 'id': container['id'],
                            'restart_policy': container.get('restart_policy'), 'checkpoint': checkpoint,
                            'status': PLANNED})
        else:
            ineligible.append({'container': container['name'], 'id': container.get('id'),
                               'reasons': list(container.get('reasons') or []), 'status': SKIPPED})
    # Holders of selected containers that were not selected themselves (excluded by a label, not named).
    for name in sorted(joined):
        holders.append({'name': name, 'id': None, 'labelled': None, 'members': joined[name], 'status': PLANNED})
    return {'containers': entries, 'ineligible': ineligible, 'holders': holders, 'projects': _plan_projects(entries)}


def _plan_projects(entries):
    """The projects of the plan's entries, in the order of their first member; a project with a member that cannot
    be checkpointed is skipped whole (its entries too): the role aborts, or leaves it running."""
    projects = {}
    for entry in entries:
        if entry.get('project'):
            projects.setdefault(entry['project'], []).append(entry)
    out = []
    for name, members in projects.items():
        blocked = [entry for entry in members if entry['status'] == SKIPPED]
        reasons = ['%s: %s' % (entry['container'], '; '.join(entry['reasons']) or 'cannot be checkpointed')
                   for entry in blocked]
        for entry in members:
            if blocked and entry['status'] != SKIPPED:
                entry.update(status=SKIPPED, reasons=['a member of Compose project %s, which is checkpointed whole '
                                                      'or not at all: %s' % (name, '; '.join(reasons))])
        out.append({'project': name, 'members': [entry['container'] for entry in members],
                    'status': SKIPPED if blocked else PLANNED, 'reasons': reasons, 'frozen_seconds': None,
                    'error': ''})
    return out


def _members(out, project):
    return [entry for entry in out['containers'] if entry.get('project') == project]


def _update_projects(out, calls=()):
    """Each project's status from its members' (a skipped project stays skipped), and what the group calls of a phase
    said of it: how long it was frozen, the call's error."""
    said = {}
    for call in calls:
        item = call.get('item')
        if isinstance(item, Mapping) and item.get('project'):
            said[item['project']] = call
    projects = []
    for project in out.get('projects', []):
        project = dict(project)
        call = said.get(project.get('project'))
        if call is not None:
            group = call.get('group')
            if isinstance(group, Mapping) and 'frozen_seconds' in group:
                project['frozen_seconds'] = group['frozen_seconds']
            elif call.get('frozen_seconds') is not None:
                project['frozen_seconds'] = call['frozen_seconds']
            failed = call.get('results') is None or call.get('failed_members')
            project['error'] = (call.get('msg') or 'the call failed without a message') if failed else ''
        if project.get('status') != SKIPPED:
            have = {entry.get('status') for entry in _members(out, project.get('project'))}
            project['status'] = next((status for status in PROJECT_ORDER if status in have), project.get('status'))
        projects.append(project)
    if 'projects' in out:
        out['projects'] = projects
    return out


def maintenance_mark(manifest, status):
    """The manifest with the run status set; the status must be one of RUN_STATUSES."""
    if status not in RUN_STATUSES:
        raise AnsibleFilterError('%r is not a status of a maintenance run (%s)' % (status, ', '.join(RUN_STATUSES)))
    return dict(_manifest(manifest), status=status)


def maintenance_checkpoints(manifest):
    """The docker_checkpoint calls of a run: one per Compose project (its planned members, as one group), then one for
    the other planned containers."""
    out = _manifest(manifest)
    planned = [entry for entry in out['containers'] if entry.get('status') == PLANNED]
    calls = []
    for project in out.get('projects', []):
        members = [entry for entry in planned if entry.get('project') == project.get('project')]
        if members:
            calls.append({'project': project['project'], 'group': True,
                          'containers': [{'container': e['container'], 'id': e['id']} for e in members]})
    plain = [{'container': e['container'], 'id': e['id']} for e in planned if not e.get('project')]
    if plain:
        calls.append({'project': None, 'group': False, 'containers': plain})
    return calls


def maintenance_checkpointed(manifest, results, on_project_failure='abort'):
    """The manifest after the checkpoint calls: each planned entry checkpointed or checkpoint_failed; a project whose
    group checkpoint was refused (every member still running) skipped whole when on_project_failure is skip."""
    if on_project_failure not in PROJECT_FAILURES:
        raise AnsibleFilterError('on_project_failure must be one of %s, not %r'
                                 % (', '.join(PROJECT_FAILURES), on_project_failure))
    out = _manifest(manifest)
    found, unnamed = _by_container(results, 'the checkpoint results')
    for entry in out['containers']:
        if entry.get('status') != PLANNED:
            continue  # skipped: a member of a project that is not checkpointed
        result = _lookup(found, entry) or unnamed
        if result is None:
            entry.update(status=CHECKPOINT_FAILED, checkpoint_size=None, checkpoint_seconds=None, frozen_seconds=None,
                         error='the checkpoint call returned no result for it')
            continue
        ok = not result.get('failed') and isinstance(result.get('checkpoint'), Mapping)
        entry.update(status=CHECKPOINTED if ok else CHECKPOINT_FAILED,
                     checkpoint_size=result['checkpoint'].get('size') if ok else None,
                     checkpoint_seconds=result.get('duration') if ok else None,
                     frozen_seconds=_seconds(result.get('stats'), 'frozen_time') if ok else None,
                     error='' if ok else result.get('msg') or 'checkpoint did not finish')
    calls = _calls(results, 'the checkpoint results')
    _update_projects(out, calls)
    if on_project_failure == 'skip':
        stuck = {call['item']['project'] for call in calls if isinstance(call.get('item'), Mapping)
                 and call['item'].get('project') and call.get('containers_running') is False}
        for project in out.get('projects', []):
            members = _members(out, project['project'])
            # Refused whole (the module's promise: none checkpointed, all thawed); a member left frozen aborts.
            if (project['status'] == CHECKPOINT_FAILED and project['project'] not in stuck
                    and not any(entry['status'] == CHECKPOINTED for entry in members)):
                project['status'] = SKIPPED
                for entry in members:
                    entry['status'] = SKIPPED
    out['status'] = RUN_CHECKPOINTED
    return out


def _to_restore(entry):
    """Whether a restore phase works on an entry (a project's member whose group checkpoint failed never stopped)."""
    return entry.get('status') in (PROJECT_TO_RESTORE if entry.get('project') else TO_RESTORE)


def maintenance_restores(manifest, fallback='fail', abort=False, grouped=False):
    """The restores to run: which container, from which checkpoint, with which fallback; grouped, one batch per
    checkpoint name and fallback (those of the operator's fallback first), and one per Compose project (a group:
    every member back, in dependency order, or none - unless the fallback is cold_start, which allow_partial
    lets start a member afresh beside the others)."""
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
        elif _to_restore(entry):
            use = 'cold_start' if entry['status'] == CHECKPOINT_FAILED else fallback
        else:
            continue
        restore = {'container': entry['container'], 'id': entry['id'],
                   'checkpoint': entry.get('checkpoint') or checkpoint, 'fallback': use}
        if entry.get('project'):
            restore['project'] = entry['project']
        out.append(restore)
    if not grouped:
        return out
    groups, projects = {}, {}
    for restore in out:
        if restore.get('project'):
            projects.setdefault((restore['project'], restore['checkpoint']), []).append(restore)
        else:
            groups.setdefault((restore['checkpoint'], restore['fallback']), []).append(restore)
    # sorted() is stable: the groups keep the manifest's order among themselves.
    plain = [{'checkpoint': key[0], 'fallback': key[1], 'containers': groups[key]}
             for key in sorted(groups, key=lambda key: key[1] != fallback)]
    use = 'cold_start' if abort else fallback
    whole = [{'checkpoint': key[1], 'fallback': use, 'containers': projects[key], 'project': key[0], 'group': True,
              'allow_partial': use == 'cold_start'} for key in projects]
    # The projects after the restores with the operator's fallback, before the cold starts of the others.
    return ([group for group in plain if group['fallback'] == fallback] + whole
            + [group for group in plain if group['fallback'] != fallback])


def _restore_outcome(result):
    # Only a restore that did not fail returns `restored`.
    if result.get('failed') or 'restored' not in result:
        return RESTORE_FAILED
    if result.get('restored'):
        return RESTORED
    if result.get('fallback_used'):
        return COLD_STARTED
    return RUNNING


def maintenance_restored(manifest, results, finished=None):
    """The manifest after the restore batches: each restored entry's outcome, and the run's status."""
    out = _manifest(manifest)
    found, unnamed = _by_container(results, 'the restore results')
    for entry in out['containers']:
        result = _lookup(found, entry)
        if result is None:
            # A call that failed as a whole without naming its containers: every one there was to restore.
            if unnamed is None or not _to_restore(entry):
                continue
            result = unnamed
        outcome = _restore_outcome(result)
        entry.update(status=outcome, restore_seconds=result.get('duration'), verified=result.get('verified'),
                     checkpoint_removed=bool(result.get('checkpoint_removed')),
                     error=(entry.get('error') or '') if outcome != RESTORE_FAILED
                     else result.get('msg') or 'restore did not finish')
    _update_projects(out, _calls(results, 'the restore results'))
    failed = any(entry.get('status') == RESTORE_FAILED for entry in out['containers'])
    out['status'] = RUN_RESTORE_FAILED if failed else RUN_COMPLETE
    if finished is not None:
        out['finished'] = finished
    return out


def maintenance_holders_started(manifest, results):
    """The manifest after its network holders were started again: each holder started, running, missing
    or start_failed, from the results of docker_network_holder (state started) looped over the holders."""
    out = _manifest(manifest)
    found = {}
    for job in _sequence(results or [], 'the holder start results'):
        job = _mapping(job, 'each of the holder start results')
        holder = job.get('item')
        if not isinstance(holder, Mapping) or 'name' not in holder:
            raise AnsibleFilterError('the holder start results must be the results of a loop over the manifest\'s '
                                     'holders, each with item.name')
        found[holder['name']] = job
    holders = []
    for holder in out.get('holders', []):
        holder = dict(holder)
        job = found.get(holder['name'])
        if job is not None:
            # failed_when: false clears `failed`: only a docker_network_holder that succeeded returns `holder`.
            if isinstance(job.get('holder'), Mapping):
                holder.update(status=STARTED if job.get('changed') else RUNNING, error='',
                              id=job['holder'].get('id') or holder.get('id'))
            else:
                holder.update(status=MISSING if job.get('exists') is False else START_FAILED,
                              error=job.get('msg') or 'the holder could not be started')
        holders.append(holder)
    out['holders'] = holders
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
    _update_projects(out)
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
        'holders_down': [h for h in out.get('holders', []) if h.get('status') in HOLDER_DOWN],
        # Projects whose group checkpoint was refused (the run aborts), and those left running whole.
        'projects_failed': [p for p in out.get('projects', []) if p.get('status') == CHECKPOINT_FAILED],
        'projects_skipped': [p for p in out.get('projects', []) if p.get('status') == SKIPPED],
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


def _frozen(value):
    # CRIU's frozen time, kept to the microsecond: shown to the millisecond. None: no statistics (engine path).
    return '-' if value is None else '%.3f' % value


def _outcome(entry):
    status = entry.get('status')
    outcome = '%s%s' % (status, ' (verified)' if entry.get('verified') else '')
    if status == SKIPPED:
        outcome += ' (not checkpointed)'
    return outcome + (', project %s' % entry['project'] if entry.get('project') else '')


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
            _frozen(entry.get('frozen_seconds')),
            _cell(entry.get('restore_seconds') or None),  # 0: nothing was restored
            _outcome(entry),
        ))
    for project in out.get('projects', []):
        # The group's freeze: from the first member's freeze to the last one's kill (or thaw), the time the
        # application did not run.
        rows.append((str(project.get('project')), '-', '-', _frozen(project.get('frozen_seconds')), '-',
                     'project %s: %s' % (project.get('status'), ', '.join(project.get('members') or []))))
    for holder in out.get('holders', []):
        rows.append((str(holder.get('name')), '-', '-', '-', '-', 'holder %s' % holder.get('status')))
    for entry in out.get('ineligible', []):
        rows.append((str(entry.get('container')), '-', '-', '-', '-',
                     '%s (not checkpointed)' % entry.get('status', SKIPPED)))
    width = max(len(row[0]) for row in rows)
    lines = ['%-*s  %10s  %12s  %8s  %9s  %s' % ((width,) + tuple(row)) for row in rows]
    lines.append('run %s: %s' % (out.get('run_id'), out.get('status')))
    return lines


class FilterModule:
    """The cryo.docker.maintenance role's state machine."""

    def filters(self):
        return {
            'maintenance_plan': maintenance_plan,
            'maintenance_mark': maintenance_mark,
            'maintenance_checkpoints': maintenance_checkpoints,
            'maintenance_checkpointed': maintenance_checkpointed,
            'maintenance_restores': maintenance_restores,
            'maintenance_restored': maintenance_restored,
            'maintenance_holders_started': maintenance_holders_started,
            'maintenance_recovering': maintenance_recovering,
            'maintenance_state': maintenance_state,
            'maintenance_report_lines': maintenance_report_lines,
        }
