#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_checkpoint
short_description: Checkpoint a running Docker container with CRIU, or remove a checkpoint
version_added: 0.1.0
description:
  - Freezes a running container into a checkpoint on disk (CRIU), so that
    M(cryo.docker.docker_restore) can later resume it exactly where it stopped.
  - Two paths (O(method)). The engine's (C(docker checkpoint create)) passes CRIU's images through
    containerd's content store as a tarball, at about 40 MB/s, and needs about twice the memory
    size in temporary space. The runtime's runs C(runc checkpoint) with the engine's own runc,
    state root and CRIU, writing the images straight into the engine's checkpoint place (or
    O(checkpoint_dir)) - an order of magnitude faster, with no second copy. Either way the engine
    stays the owner - it sees the container exit, lists the checkpoint and restores it - and
    everything below holds the same.
  - Idempotent - an existing checkpoint of that name is left alone.
  - A checkpoint that fails leaves the container running; the module checks that it is and
    quotes the C(Error) lines of CRIU's log.
  - Records beside CRIU's images (in C(cryo-checkpoint.json)) the container, the time, whether
    it was taken with O(leave_running), and the restart policy it had, so that
    M(cryo.docker.docker_restore) can put that policy back.
  - CRIU options for this one checkpoint (O(tcp_established), O(file_locks), ...) instead of the host-wide
    C(/etc/criu/runc.conf) - see the notes. The options in force are recorded with the checkpoint.
  - Checkpoint files hold the memory of the container's processes, secrets included.
    Directories this module creates are mode C(0700), owned by root.
extends_documentation_fragment:
  - cryo.docker._docker
  - cryo.docker._docker.checkpoint
  - cryo.docker._criu
  - cryo.docker._attributes
options:
  method:
    description:
      - How the checkpoint is taken.
      - V(engine) asks the Docker Engine (its checkpoint endpoint).
      - V(runtime) runs the engine's runc directly (C(runc --root <state root> checkpoint --image-path
        <dir> --work-path <dir> <id>)), with dockerd's PATH so that it runs the CRIU the engine would, and
        C(/etc/criu/runc.conf) read by runc as always. It needs the module on the engine's host, a local
        (C(unix://)) O(docker_host), runc as the container's runtime (not crun, gVisor or Kata), a rootful
        engine, runc state where the engine's layout puts it (C(<exec-root>/runtime-runc/moby/<id>)), and a
        container started by the current engine process (not one kept alive through a restart by
        live-restore). The task fails, saying which of these does not hold, when one does not.
      - V(auto) takes the runtime path where it can and the engine's otherwise, saying why in
        RV(method_reason).
      - CRIU's work directory is the checkpoint's own with the runtime path, so C(stats-dump) stays beside
        the images and its figures are returned in RV(stats); the engine path discards it.
    type: str
    choices: [auto, engine, runtime]
    default: auto
  state:
    description:
      - V(present) makes sure the checkpoint exists, taking it if needed.
      - V(absent) removes the checkpoint.
    type: str
    choices: [present, absent]
    default: present
  leave_running:
    description:
      - Keep the container running after the checkpoint. By default the container stops
        (it is C(exited), exit code 137) and resumes only from the checkpoint.
    type: bool
    default: false
  checkpoint_dir:
    description:
      - Absolute path of a directory to write the checkpoint into (as C(<checkpoint_dir>/<checkpoint>)),
        instead of the engine's own place under its data root. Created as C(0700) if missing.
      - The engine cannot restore from such a directory directly; M(cryo.docker.docker_restore)
        stages the checkpoint back, which is also how it moves to another container or host.
    type: path
  force:
    description:
      - Take the checkpoint again even if one of that name exists. The new checkpoint is taken
        under a temporary name and replaces the old one only once it succeeded.
    type: bool
    default: false
  hold_restart_policy:
    description:
      - When the container stops at the checkpoint and has the restart policy C(always),
        C(unless-stopped) or C(on-failure), set its policy to C(no) first. Otherwise the engine
        cold-starts it right after the checkpoint, and again when the engine starts, and the
        checkpoint is useless.
      - The original policy is recorded with the checkpoint;
        M(cryo.docker.docker_restore) puts it back.
      - It is also recorded before the hold, beside the engine's own files of the container
        (C(<data root>/containers/<id>/cryo-restart-policy-held.json), on the engine's host), until a
        restore puts it back. A run cut between the hold and the checkpoint's record (the controller
        gone, the module killed) leaves the policy to the next run - a retake records the held policy,
        not the C(no) of the hold; a restore, or a cold start by
        O(cryo.docker.docker_restore#module:fallback=cold_start), puts it back. A policy changed since
        to anything but C(no) is left as it is.
    type: bool
    default: true
  allow_unrestorable:
    description:
      - Stop the container at the checkpoint even though this engine cannot restore it.
      - The module knows engine releases whose restore is broken (the rules of
        M(cryo.docker.checkpoint_preflight)) - Docker 25.0.0 to 25.0.3 for every container, Docker
        26.0.0 and 28.0 to 29.x for a container with a network namespace of its own (bridge, V(none),
        a user network), whose restore fails before CRIU runs. On such an engine the module refuses,
        before anything is done, to stop the container at the checkpoint - unless this is V(true).
      - With O(leave_running=true) the checkpoint is taken (for inspection, a forensic snapshot) with a
        warning that it cannot be restored here.
      - Containers on the host network, or in the network namespace of a network holder
        (C(container:<holder>), see C(cryo.docker.docker_network_holder)), restore on those engines.
    type: bool
    default: false
  keep_last:
    description:
      - Once the checkpoint is taken and recorded, keep only the O(keep_last) newest checkpoints of the container
        (this one counted) and remove the older ones, oldest first.
      - Counts the container's checkpoints in the place this one is written - the engine's, or O(checkpoint_dir)
        (there, those recorded as the container's).
      - Applied only when a checkpoint was taken (a changed run); an unchanged run removes nothing.
      - What retention never removes, and what it leaves to others, is said under O(host_max_size).
    type: int
  max_size:
    description:
      - Once the checkpoint is taken and recorded, remove the container's oldest checkpoints until the ones left
        take at most this much disk (bytes, or a size such as V(2G), V(500M); units of 1024).
      - Counts the same checkpoints as O(keep_last), after O(keep_last) has removed its own.
    type: bytes
  host_max_size:
    description:
      - Once the checkpoint is taken and recorded, remove the oldest checkpoints of any container of the engine
        until all of them take at most this much disk (bytes, or a size such as V(20G)). Counts the checkpoints
        of every container in the engine's data root and, with O(checkpoint_dir), every checkpoint in that
        directory; applied after O(keep_last) and O(max_size).
      - Retention (O(keep_last), O(max_size), O(host_max_size)) counts and removes only the collection's own
        checkpoints, those with its record (C(cryo-checkpoint.json), written when this module takes one and when
        M(cryo.docker.docker_checkpoint_import) imports one). A checkpoint made by C(docker checkpoint create) or
        another tool is neither counted nor removed.
      - It never removes - they count, but stay - the checkpoint just taken; the golden checkpoint of a warm
        container (M(cryo.docker.docker_warm)); of a container that is not running, its newest checkpoint and the
        newest it stopped at (taken without O(leave_running)), one of which it resumes from; the checkpoints of a
        container another operation of this collection is working on (its lock is held).
      - Removal goes through the engine, as O(state=absent) does, oldest first (by the C(created) of RV(checkpoint), then by
        when the record was written). A removal that fails, or a cap that cannot be met because what is left must
        stay, gives a warning and never fails the task - the checkpoint just taken is kept.
      - The checkpoints' files must be on the host that runs the module (the engine's host) - their record says
        which is the oldest; otherwise nothing is removed, with a warning.
      - RV(removed) lists what was removed; check mode predicts it (the new checkpoint counted at the container's
        resident memory), and diff mode shows it.
    type: bytes
seealso:
  - name: CRIU and Docker
    description: How Docker checkpoints a container with CRIU, and what CRIU cannot dump.
    link: https://criu.org/Docker
  - module: cryo.docker.docker_restore
  - module: cryo.docker.docker_checkpoint_info
  - module: cryo.docker.checkpoint_preflight
author:
  - cryo.docker contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Freeze the counter container (it stops and waits for its restore)
  cryo.docker.docker_checkpoint:
    container: cr
    checkpoint: checkpoint1

- name: Forensic snapshot of a live container, which keeps running
  cryo.docker.docker_checkpoint:
    container: api
    checkpoint: "incident-{{ ansible_date_time.epoch }}"
    leave_running: true
    checkpoint_dir: /srv/forensics

- name: Warm-start image of a slow application, taken once it is ready
  cryo.docker.docker_checkpoint:
    container: search
    checkpoint: warm
    leave_running: true

- name: Rewind point before a risky change, replacing the previous one
  cryo.docker.docker_checkpoint:
    container: worker
    checkpoint: before-migration
    leave_running: true
    force: true

- name: Hourly rewind point of a live container; keep the last 5, at most 2 GB of them, 20 GB on the host
  cryo.docker.docker_checkpoint:
    container: worker
    checkpoint: "hourly-{{ now(utc=true, fmt='%Y%m%dT%H%M') }}"
    leave_running: true
    keep_last: 5
    max_size: 2G
    host_max_size: 20G
  register: hourly

- name: Say what retention removed
  ansible.builtin.debug:
    msg: "{{ hourly.removed | map(attribute='name') | list }}"

- name: Freeze a container to move it to another host
  cryo.docker.docker_checkpoint:
    container: cache
    checkpoint: move
    checkpoint_dir: /srv/checkpoints

- name: Freeze a service with an open connection to its database on this host (for this checkpoint only)
  cryo.docker.docker_checkpoint:
    container: api
    checkpoint: before-upgrade
    tcp_established: true

- name: Remove a checkpoint that is no longer needed
  cryo.docker.docker_checkpoint:
    container: cr
    checkpoint: checkpoint1
    state: absent

- name: Checkpoint a Compose project as one point in time (its redis, worker and web frozen together)
  cryo.docker.docker_checkpoint:
    project: shop
    checkpoint: maint
  register: shop

- name: How long the application did not run
  ansible.builtin.debug:
    msg: "{{ shop.group.members | join(', ') }} frozen for {{ shop.group.frozen_seconds }} s"

- name: Checkpoint two containers as one group, leaving them running
  cryo.docker.docker_checkpoint:
    containers: [db, api]
    group: true
    checkpoint: snapshot
    leave_running: true
"""

RETURN = r"""
checkpoint:
  description:
    - The checkpoint as it is after the run, with the fields of each element of
      RV(cryo.docker.docker_checkpoint_info#module:checkpoints) - name, container, container_id,
      directory, size, created, leave_running, restart_policy (the policy the container had when
      it was checkpointed; docker_restore puts it back).
    - Empty when O(state=absent). In check mode, when a checkpoint would be taken, C(size) and
      C(created) are null.
  returned: success
  type: dict
  sample:
    name: checkpoint1
    container: cr
    container_id: 3db2fb40e3463df60a235b0f47177b91c0c1d6c6715287195653dad083e95474
    directory: /var/lib/docker/containers/3db2fb40e346/checkpoints/checkpoint1
    size: 264192
    created: "2026-11-29T15:19:42+00:00"
    leave_running: false
    restart_policy: {Name: always, MaximumRetryCount: 0}
duration:
  description: Seconds the checkpoint took (0 when nothing was done).
  returned: success
  type: float
  sample: 0.21
attempts:
  description: Engine calls made to take the checkpoint (more than 1 after a transient containerd error).
  returned: when a checkpoint was taken through the engine
  type: int
  sample: 1
retries:
  description:
    - Every engine call this run made again, counted by the reason it was made again - the transient containerd
      answer that came back (V(already exists), the content store's race after a checkpoint, V(transport is
      closing), V(failed to upload checkpoint)). Empty when no call was made twice.
    - With O(containers), the sum over the containers; each entry of RV(results) has its own. A failed run has it
      too.
  returned: always
  type: dict
  sample: {"already exists": 1}
method:
  description: The path the checkpoint was taken (or in check mode would be taken) through - V(engine) or V(runtime).
  returned: when a checkpoint was taken or would be
  type: str
  sample: runtime
method_reason:
  description: Why O(method=auto) took the engine path.
  returned: when O(method=auto) could not take the runtime path
  type: str
  sample: "the runtime path cannot be taken: the engine at tcp://10.0.0.5:2376 is remote: ..."
stats:
  description:
    - CRIU's statistics of the dump, from the C(stats-dump) it leaves in its work directory (the runtime
      path keeps it; null through the engine, which discards it, and when nothing was taken). Times in
      microseconds, as Podman's C(--print-stats) reports them.
  returned: success
  type: dict
  contains:
    freezing_time:
      description: Microseconds CRIU took to freeze the processes.
      type: int
    frozen_time:
      description: Microseconds the processes stayed frozen (the blackout of a C(leave_running) checkpoint).
      type: int
    memdump_time:
      description: Microseconds spent collecting the memory pages.
      type: int
    memwrite_time:
      description: Microseconds spent writing them.
      type: int
    pages_scanned:
      description: Memory pages looked at.
      type: int
    pages_skipped_parent:
      description: Pages not written because a parent image had them (pre-dumps; 0 here).
      type: int
    pages_written:
      description: Pages written.
      type: int
    pages_lazy:
      description: Pages left for lazy migration (0 here).
      type: int
  sample: {freezing_time: 101065, frozen_time: 63941, memdump_time: 557, memwrite_time: 224, pages_scanned: 48,
           pages_skipped_parent: 0, pages_written: 34, pages_lazy: 0}
group:
  description:
    - With O(project) or O(group) - the group as it was checkpointed.
    - C(members) in the order a restore brings them back; C(frozen_seconds) how long the members were frozen -
      from the first member's freeze to the last one's thaw (O(leave_running=true)) or kill, the time the
      application did not run; null when nothing was taken.
  returned: with O(project) or O(group)
  type: dict
  sample: {project: shop, members: [shop-redis-1, shop-worker-1, shop-web-1], checkpoint: maint,
           frozen_seconds: 0.62, leave_running: false}
criu_options:
  description:
    - The CRIU options in force for the checkpoint - the call's (O(tcp_established), ...) and the host's
      C(/etc/criu/runc.conf)'s - those on, and O(manage_cgroups_mode) when set. Recorded with the checkpoint, so that
      M(cryo.docker.docker_restore) restores it with them.
  returned: when a checkpoint was taken
  type: dict
  sample: {tcp_established: true}
criu_options_from:
  description: Where each of RV(criu_options) came from - V(operator) (this call's options) or V(host) (C(/etc/criu/runc.conf)).
  returned: when a checkpoint was taken
  type: dict
  sample: {tcp_established: operator}
results:
  description:
    - With O(containers) or a group - one entry per container, in the order given (a group's - its order), with the keys a run with
      O(container) returns (RV(checkpoint), RV(duration), RV(method), RV(stats), ...) and C(container) (the name as
      given); a container that failed has C(failed), C(msg) and the failure keys (RV(criu_errors), ...).
  returned: with O(containers), O(project) or O(group)
  type: list
  elements: dict
  sample:
    - {container: web, changed: true, method: runtime, duration: 0.21, checkpoint: {name: maint, size: 264192}}
    - {container: db, changed: false, failed: true, msg: "Checkpoint maint of container db failed: ...",
       container_running: true}
removed:
  description:
    - The checkpoints retention removed (in check mode, would remove), by rule (O(keep_last), O(max_size), then
      O(host_max_size)) and oldest first, each with the fields of RV(checkpoint) it had (name, container,
      container_id, directory, size, created) and C(rule), the option that removed it.
    - Empty when no checkpoint was taken or nothing had to go. With O(containers), those of every container, here
      and not in RV(results).
  returned: when O(state=present)
  type: list
  elements: dict
  sample:
    - {name: hourly-20261207T0900, container: worker, container_id: 3db2fb40e346..., size: 264192,
       directory: /var/lib/docker/containers/3db2fb40e346.../checkpoints/hourly-20261207T0900,
       created: "2026-12-07T09:00:02+00:00", rule: keep_last}
criu_errors:
  description: The C(Error) lines of CRIU's log when the checkpoint failed.
  returned: failure
  type: list
  elements: str
  sample: ["(00.012345) Error (criu/sk-inet.c:189): inet: Connected TCP socket, consider using --tcp-established option."]
criu_log:
  description: Path of the CRIU log that was read.
  returned: failure, when a log was found
  type: str
container_running:
  description: Whether the container is running after a failed checkpoint (it should be).
  returned: failure of the checkpoint itself
  type: bool
thawed:
  description:
    - Whether the module thawed the container after a failed checkpoint. A CRIU that ends before it thaws the
      processes (killed, crashed) leaves the container frozen; the module unpauses it through the engine, or runs
      C(runc resume) with the engine's runc where the engine does not call it paused. V(false) when it tried and
      could not (the msg gives the command).
  returned: failure of the checkpoint itself, when the container was left frozen
  type: bool
disk_full:
  description: The checkpoint failed because its file system ran out of room (the msg names it and the free space).
  returned: failure, when the disk was full
  type: bool
"""

from ansible_collections.cryo.docker.plugins.module_utils._common import CONTAINERS_RULES, CONTAINERS_SPEC, run
from ansible_collections.cryo.docker.plugins.module_utils._criuconf import ARGUMENT_SPEC as CRIU_OPTIONS_SPEC
from ansible_collections.cryo.docker.plugins.module_utils._engine import docker_argument_spec
from ansible_collections.cryo.docker.plugins.module_utils._take import CheckpointBatch


def main():
    argument_spec = docker_argument_spec(
        checkpoint=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        leave_running=dict(type='bool', default=False),
        checkpoint_dir=dict(type='path'),
        force=dict(type='bool', default=False),
        hold_restart_policy=dict(type='bool', default=True),
        allow_unrestorable=dict(type='bool', default=False),
        method=dict(type='str', default='auto', choices=['auto', 'engine', 'runtime']),
        keep_last=dict(type='int'),
        max_size=dict(type='bytes'),
        host_max_size=dict(type='bytes'),
        **CRIU_OPTIONS_SPEC,
        **CONTAINERS_SPEC
    )
    run(CheckpointBatch, argument_spec, **CONTAINERS_RULES)


if __name__ == '__main__':
    main()
