#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_restore
short_description: Resume a Docker container from a CRIU checkpoint, and prove it resumed
version_added: 0.1.0
description:
  - Starts a stopped container from one of its checkpoints, so that its processes carry on
    exactly where they were frozen by M(cryo.docker.docker_checkpoint).
  - The engine refuses to restore from a custom directory. With O(checkpoint_dir) the module
    copies the checkpoint into the container's own checkpoint place and restores it by name.
    This is also how a checkpoint restores into another container created from the same image
    (moving a container to another host).
  - A container that is already running is not restored again. It is reported unchanged, with
    a warning when it is running for another reason than a restore of this checkpoint (for
    example its restart policy started it afresh). O(force=true) stops it and restores it, which
    rewinds a live container to an earlier checkpoint.
  - "Verification (O(verify)): CRIU restores a process's memory layout exactly, while a fresh
    start gets a new, randomised one. The module compares the stack and heap start addresses of
    the container's PID 1 (C(/proc/<pid>/stat)) with those recorded in the checkpoint
    (C(mm-1.img)). They match only when PID 1 is the restored process. A restart policy or an
    old containerd that silently starts the container from zero is caught. This needs the module
    to run on the engine's host; with address space randomisation turned off on the host a fresh
    start cannot be told apart, and the result says so."
  - Puts back the restart policy recorded when the checkpoint was taken (see
    O(cryo.docker.docker_checkpoint#module:hold_restart_policy)).
  - Restores with the CRIU options the checkpoint recorded (RV(cryo.docker.docker_checkpoint#module:criu_options));
    an option given here (O(tcp_established), ...) overrides the recorded one. A recorded value that is not
    an option this collection passes, or not of its type, is refused before anything is done.
  - Never removes a checkpoint unless O(keep_checkpoint=false) and the restore was verified.
  - "Two paths (O(method)). The engine's (C(docker start --checkpoint)) tars the checkpoint into containerd's
    content store and containerd untars it into a temporary directory before CRIU reads it (45-85 MB/s). The
    image path restores in place: containerd's runc shim reads the checkpoint where it is (its C(CriuImagePath)
    option), at disk speed. It needs Docker 23 or later on this host and a container created with a runtime of
    its own, as M(cryo.docker.docker_checkpoint_import) creates them (a container's runtime is fixed when it is
    created): the module arms that runtime on the checkpoint (the engine's C(daemon.json), reloaded with
    SIGHUP), starts the container, and disarms it whatever happened, so that the container starts afresh like
    any other afterwards. A warm container (M(cryo.docker.docker_warm)) stays armed on its golden checkpoint."
extends_documentation_fragment:
  - cryo.docker._docker
  - cryo.docker._docker.checkpoint
  - cryo.docker._criu
  - cryo.docker._attributes
options:
  checkpoint_dir:
    description:
      - Absolute path of the directory that holds the checkpoint (as C(<checkpoint_dir>/<checkpoint>)),
        when it was not taken into the engine's own place.
    type: path
  force:
    description:
      - Restore even when the container is running - it is stopped first and restored from the
        checkpoint (rewind). Its current state is lost.
    type: bool
    default: false
  verify:
    description:
      - Prove that the container resumed the checkpointed processes rather than starting afresh
        (see above). A restore that is not verified fails, or falls back per O(fallback).
    type: bool
    default: true
  restore_restart_policy:
    description:
      - Put back the restart policy recorded with the checkpoint, once the container runs again.
      - A container that already runs from the checkpoint (verified) with the policy still held (V(no)) - a
        restore cut after the container resumed - gets its policy back; containerd's copies of the checkpoint
        are removed, and the checkpoint too with O(keep_checkpoint=false). Nothing else is done.
    type: bool
    default: true
  fallback:
    description:
      - What to do when the restore fails.
      - V(fail) leaves the container stopped with its checkpoint and fails with CRIU's reasons.
      - V(cold_start) starts the container afresh (its in-memory state is lost), reports that it
        did, and keeps the checkpoint. A container that has no checkpoint of that name is started
        afresh too, unless it is already running. A O(checkpoint_dir) that does not hold the
        checkpoint is an error all the same - the path is most likely wrong.
    type: str
    choices: [fail, cold_start]
    default: fail
  keep_checkpoint:
    description:
      - Keep the checkpoint after a verified restore. With V(false) it is removed, but only once
        the restore was verified. A second run finds the container running and its checkpoint gone, and
        changes nothing (RV(verified) is null, as there is nothing to compare with).
    type: bool
    default: true
  allow_partial:
    description:
      - With O(project) or O(group) - restore the members that can be restored when one cannot, instead of
        stopping them all again. The task still fails, naming the members that were not restored.
    type: bool
    default: false
  method:
    description:
      - How the container is restored (see above).
      - V(auto) takes the image path where the engine and the container allow it, else the engine's path, and
        says why in RV(method_reason).
      - V(engine) always takes the engine's path; V(image_path) fails, before anything is done, where that
        path cannot be taken.
    type: str
    choices: [auto, engine, image_path]
    default: auto
seealso:
  - module: cryo.docker.docker_checkpoint
  - module: cryo.docker.docker_warm
  - module: cryo.docker.docker_checkpoint_info
  - module: cryo.docker.checkpoint_preflight
  - name: Restore in Docker's checkpoint documentation
    description: The experimental C(docker start --checkpoint) this module drives through the Engine API.
    link: https://docs.docker.com/reference/cli/docker/checkpoint/
author:
  - cryo.docker contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Resume the counter container where it stopped
  cryo.docker.docker_restore:
    container: cr
    checkpoint: checkpoint1

- name: Warm start - resume a slow application from its ready checkpoint, cold start if that fails
  cryo.docker.docker_restore:
    container: search
    checkpoint: warm
    fallback: cold_start

- name: Rewind a live container to an earlier checkpoint
  cryo.docker.docker_restore:
    container: worker
    checkpoint: before-migration
    force: true

- name: Move - restore a checkpoint copied from another host into a container made from the same image
  cryo.docker.docker_restore:
    container: cache
    checkpoint: move
    checkpoint_dir: /srv/checkpoints
    keep_checkpoint: false

- name: After a host reboot, resume a container and drop its checkpoint once verified
  cryo.docker.docker_restore:
    container: api
    checkpoint: maintenance
    keep_checkpoint: false

- name: Bring a Compose project back as it was checkpointed (redis first, then the worker, then the web server)
  cryo.docker.docker_restore:
    project: shop
    checkpoint: maint

- name: Restore with the CRIU options the checkpoint recorded, file locks on for this restore too
  cryo.docker.docker_restore:
    container: api
    checkpoint: before-upgrade
    file_locks: true
"""

RETURN = r"""
restored:
  description: Whether the container was restored from the checkpoint by this run.
  returned: always
  type: bool
  sample: true
verified:
  description:
    - Whether the running container was proven to run the checkpointed processes.
    - null when it could not be told (no access to the engine host's C(/proc), or no C(mm-1.img)).
  returned: always
  type: bool
  sample: true
verification:
  description: How the restore was verified.
  returned: always
  type: dict
  contains:
    method:
      description: The method used (V(memory-layout)), or V(none) when O(verify=false).
      type: str
      sample: memory-layout
    detail:
      description: What was compared.
      type: str
      sample: PID 1 stack/heap start 0x7ffd2a3c1e10/0x3e32d000, checkpoint 0x7ffd2a3c1e10/0x3e32d000
method:
  description: The path the restore took (see O(method)), or null when nothing was restored.
  returned: always
  type: str
  sample: image_path
method_reason:
  description: Why O(method=auto) took the engine's path.
  returned: when O(method=auto) could not take the image path
  type: str
  sample: "the image path cannot be taken: Docker 20.10.24 passes no runtime options to containerd (Docker 23 and later do)"
fallback_used:
  description: Whether the restore failed and the container was started afresh (O(fallback=cold_start)).
  returned: always
  type: bool
  sample: false
container:
  description: The container after the run.
  returned: always
  type: dict
  contains:
    name:
      description: Name of the container.
      type: str
      sample: cr
    id:
      description: Full id of the container.
      type: str
      sample: 3db2fb40e3463df60a235b0f47177b91c0c1d6c6715287195653dad083e95474
    status:
      description: Engine status (running, exited, ...).
      type: str
      sample: running
    running:
      description: Whether it runs.
      type: bool
      sample: true
checkpoint:
  description: The checkpoint restored from (see M(cryo.docker.docker_checkpoint) for the fields).
  returned: always
  type: dict
  sample: {name: checkpoint1, container: cr, size: 154069, created: "2026-11-29T15:27:09+00:00"}
containerd_copies_removed:
  description:
    - How many copies of the checkpoint containerd left in C(/tmp) were removed. containerd 1.6
      copies a checkpoint there to restore it and never removes the copy
      (L(containerd#10166,https://github.com/containerd/containerd/issues/10166)); the copies fill the
      disk and hold process memory. They are recognised by their content, nothing else is touched - the
      checkpoint's metadata included, which names its container, so that the copy of a clone of the same
      checkpoint restoring at the same time is left to that restore.
  returned: always
  type: int
  sample: 1
checkpoint_removed:
  description: Whether the checkpoint was removed (O(keep_checkpoint=false) after a verified restore).
  returned: always
  type: bool
  sample: false
restart_policy:
  description: The container's restart policy after the run.
  returned: always
  type: dict
  sample: {Name: always, MaximumRetryCount: 0}
restart_policy_put_back:
  description: Whether this run put the recorded restart policy back (O(restore_restart_policy)).
  returned: always
  type: bool
  sample: true
duration:
  description: Seconds from the restore request to the container running (0 when nothing was done).
  returned: always
  type: float
  sample: 0.31
retries:
  description:
    - Every engine call this run made again, counted by the reason it was made again - the transient containerd
      answer that came back (V(already exists), V(transport is closing), V(failed to upload checkpoint)), or
      V(stale content removed) (the restore tried once more after the tarball an interrupted restore had left in
      containerd's content store was removed). Empty when no call was made twice.
    - With O(containers), the sum over the containers; each entry of RV(results) has its own. A failed run has it
      too.
  returned: always
  type: dict
  sample: {"already exists": 1}
stats:
  description:
    - CRIU's statistics of the restore (C(stats-restore)), where the restore left them - in the copy of the
      checkpoint containerd 1.6 and 1.7 make to restore it (read before that copy is removed), or in the work
      directory of the container's runtime (the image path); else null.
      Times in microseconds.
  returned: always
  type: dict
  contains:
    pages_compared:
      description: Pages compared with a parent (0 here).
      type: int
    pages_skipped_cow:
      description: Pages shared copy-on-write instead of restored.
      type: int
    forking_time:
      description: Microseconds spent recreating the process tree.
      type: int
    restore_time:
      description: Microseconds the restore took in CRIU.
      type: int
    pages_restored:
      description: Pages restored.
      type: int
  sample: {pages_compared: 0, pages_skipped_cow: 0, forking_time: 410, restore_time: 58213, pages_restored: 34}
group:
  description:
    - With O(project) or O(group) - the group, its C(members) in the order they were brought back.
  returned: with O(project) or O(group)
  type: dict
  sample: {project: shop, members: [shop-redis-1, shop-worker-1, shop-web-1]}
stopped_again:
  description: After a member of a group failed to restore, the members restored before it, stopped again.
  returned: failure of a group restore
  type: list
  elements: str
criu_options:
  description:
    - The CRIU options in force for the restore - those on, and O(manage_cgroups_mode) when set. By default the
      ones the checkpoint recorded (what it was taken with - a connection dumped with C(tcp-established) restores
      only with it), each overridden by the options given, and the host's C(/etc/criu/runc.conf)'s.
  returned: when a restore was attempted
  type: dict
  sample: {tcp_established: true}
criu_options_from:
  description:
    - Where each of RV(criu_options) came from - V(operator) (given to this call), V(checkpoint) (recorded by it)
      or V(host) (C(/etc/criu/runc.conf)).
  returned: when a restore was attempted
  type: dict
  sample: {tcp_established: checkpoint}
results:
  description:
    - With O(containers) or a group - one entry per container, in the order given (a group's - its order), with the keys a run with
      O(container) returns (RV(restored), RV(verified), RV(container), RV(duration), ...); a container that
      failed has C(failed), C(msg), the failure keys and C(container.name).
  returned: with O(containers), O(project) or O(group)
  type: list
  elements: dict
  sample:
    - {container: {name: web, running: true}, changed: true, restored: true, verified: true, duration: 0.31}
criu_errors:
  description: The C(Error) lines of CRIU's restore log, when the restore failed.
  returned: when the restore failed
  type: list
  elements: str
criu_log:
  description: Path of the CRIU log that was read.
  returned: when the restore failed and a log was found
  type: str
"""

from ansible_collections.cryo.docker.plugins.module_utils._common import CONTAINERS_RULES, CONTAINERS_SPEC, run
from ansible_collections.cryo.docker.plugins.module_utils._criuconf import ARGUMENT_SPEC as CRIU_OPTIONS_SPEC
from ansible_collections.cryo.docker.plugins.module_utils._engine import docker_argument_spec
from ansible_collections.cryo.docker.plugins.module_utils._restore import RestoreBatch


def main():
    argument_spec = docker_argument_spec(
        checkpoint=dict(type='str', required=True),
        checkpoint_dir=dict(type='path'),
        force=dict(type='bool', default=False),
        verify=dict(type='bool', default=True),
        restore_restart_policy=dict(type='bool', default=True),
        fallback=dict(type='str', default='fail', choices=['fail', 'cold_start']),
        keep_checkpoint=dict(type='bool', default=True),
        method=dict(type='str', default='auto', choices=['auto', 'engine', 'image_path']),
        allow_partial=dict(type='bool', default=False),
        **CRIU_OPTIONS_SPEC,
        **CONTAINERS_SPEC
    )
    run(RestoreBatch, argument_spec, **CONTAINERS_RULES)


if __name__ == '__main__':
    main()
