#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_checkpoint_info
short_description: List the CRIU checkpoints of Docker containers
version_added: 0.1.0
description:
  - Lists the checkpoints of one container, or of every container when O(container) is omitted.
  - With O(checkpoint_dir), lists the checkpoints in that directory instead of the engine's own place;
    without O(container) every checkpoint found there is listed, with the container recorded
    when it was taken.
  - With O(details=true), also says what is inside each checkpoint - its process tree, open files,
    sockets and memory - decoded from CRIU's image files, and the statistics CRIU kept of the dump.
  - Says how many checkpoints ago each was taken (RV(checkpoints[].ago)) and how much disk each container's
    checkpoints take (RV(containers)).
  - Never changes anything.
extends_documentation_fragment:
  - cryo.docker._docker
  - cryo.docker._attributes
  - cryo.docker._attributes.info_module
options:
  container:
    description:
      - Name or id of the container. Omit it to list the checkpoints of every container.
    type: str
  checkpoint_dir:
    description:
      - Absolute path of a directory checkpoints were taken into (see
        O(cryo.docker.docker_checkpoint#module:checkpoint_dir)).
    type: path
  details:
    description:
      - Decode each checkpoint's CRIU images and return RV(checkpoints[].processes),
        RV(checkpoints[].files), RV(checkpoints[].sockets), RV(checkpoints[].stats) and
        RV(checkpoints[].details_notes).
      - The images are read on the host that runs the module, which must be the engine's host (or the
        one that holds O(checkpoint_dir)), as root - checkpoint files are readable by root only.
      - The decoder is the collection's own, in Python's standard library - it reads the few images it
        needs (C(pstree.img), C(core-PID.img), C(ids-PID.img), C(fs-PID.img), C(fdinfo-N.img), C(files.img),
        C(mm-PID.img), C(pagemap-PID.img), and of C(pages-N.img) only the page that holds a command line)
        with the field numbers of CRIU's C(images/*.proto). CRIU's own C(crit) / pycriu would need the
        protobuf Python package, in a version that matches the C(protoc) CRIU was built with, in the Python
        that runs the module, on every managed host; the collection needs nothing but the docker SDK.
        The tests compare its output with C(crit)'s on real checkpoints.
      - Images that cannot be read (a damaged file, an image of an unknown kind, a checkpoint not on
        this host) never fail the task - what could not be read, and why, is said in
        RV(checkpoints[].details_notes).
    type: bool
    default: false
seealso:
  - module: cryo.docker.docker_checkpoint
  - module: cryo.docker.docker_restore
author:
  - cryo.docker contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Checkpoints of the counter container
  cryo.docker.docker_checkpoint_info:
    container: cr
  register: cr_checkpoints

- name: Is checkpoint1 there?
  ansible.builtin.assert:
    that: "'checkpoint1' in cr_checkpoints.checkpoints | map(attribute='name')"

- name: The checkpoint the counter container took two checkpoints ago
  ansible.builtin.debug:
    msg: "{{ (cr_checkpoints.checkpoints | selectattr('ago', 'eq', 2) | first).name }}"

- name: The disk each container's checkpoints take
  ansible.builtin.debug:
    msg: "{{ item.container }}: {{ item.checkpoints }} checkpoints, {{ item.size | human_readable }}, newest {{ item.newest }}"
  loop: "{{ cr_checkpoints.containers }}"
  loop_control:
    label: "{{ item.container }}"

- name: Every checkpoint on this host, largest first
  cryo.docker.docker_checkpoint_info:
  register: all_checkpoints

- name: Show them
  ansible.builtin.debug:
    msg: "{{ item.container }}/{{ item.name }}: {{ item.size | human_readable }}"
  loop: "{{ all_checkpoints.checkpoints | sort(attribute='size', reverse=true) }}"
  loop_control:
    label: "{{ item.container }}/{{ item.name }}"

- name: Forensic snapshots kept in a directory, with what is inside them
  cryo.docker.docker_checkpoint_info:
    checkpoint_dir: /srv/forensics
    details: true
  register: forensics

- name: Which processes listened on which port
  ansible.builtin.debug:
    msg: >-
      {{ item.0.name }}: {{ item.1.pid }} ({{ (item.0.processes | selectattr('pid', 'eq', item.1.pid) | first).command }})
      on {{ item.1.local_address }}:{{ item.1.local_port }}
  loop: "{{ forensics.checkpoints | subelements('sockets') }}"
  loop_control:
    label: "{{ item.0.name }} fd {{ item.1.fd }}"
  when: item.1.state == 'listen'
"""

RETURN = r"""
containers:
  description:
    - The disk the listed checkpoints take, one entry per container (the checkpoints of no known container - in a
      O(checkpoint_dir), without the collection's record - together, with a null container), sorted by container.
  returned: always
  type: list
  elements: dict
  contains:
    container:
      description: Name of the container.
      type: str
    container_id:
      description: Full id of the container.
      type: str
    checkpoints:
      description: How many checkpoints it has (among those listed).
      type: int
    size:
      description: Bytes its checkpoints take, the sum of their RV(checkpoints[].size) (null when the files of one are not on this host).
      type: int
    newest:
      description: Name of its newest checkpoint (RV(checkpoints[].ago) 1).
      type: str
    oldest:
      description: Name of its oldest checkpoint.
      type: str
  sample:
    - {container: cr, container_id: 3db2fb40e3463df60a235b0f47177b91c0c1d6c6715287195653dad083e95474, checkpoints: 3,
       size: 792576, newest: checkpoint3, oldest: checkpoint1}
checkpoints:
  description: The checkpoints found, sorted by container and name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the checkpoint.
      type: str
      sample: checkpoint1
    container:
      description: Name of the container.
      type: str
      sample: cr
    container_id:
      description: Full id of the container.
      type: str
      sample: 3db2fb40e3463df60a235b0f47177b91c0c1d6c6715287195653dad083e95474
    directory:
      description: Directory that holds the checkpoint's files.
      type: str
      sample: /var/lib/docker/containers/3db2fb40e346/checkpoints/checkpoint1
    size:
      description: Size in bytes (null when its files are not on this host).
      type: int
      sample: 154069
    created:
      description: When it was taken (ISO 8601, UTC).
      type: str
      sample: "2026-11-29T15:27:09+00:00"
    restart_policy:
      description: Restart policy recorded when it was taken (null when not taken by this collection).
      type: dict
      sample: {Name: always, MaximumRetryCount: 0}
    leave_running:
      description: Whether it was taken with leave_running (null when not taken by this collection).
      type: bool
      sample: false
    group:
      description: The group it was taken with as one point in time (C(id), C(project), C(members),
        C(frozen_seconds)); null when it was taken alone.
      type: dict
      sample: {id: 6b16c685-e2b97ef8, project: shop, members: [shop-redis-1, shop-worker-1], frozen_seconds: 0.59}
    ago:
      description:
        - How many checkpoints ago it was taken, among its container's listed - V(1) for the newest, V(2) for the
          one before it, and so on. Ordered by RV(checkpoints[].created), then by when the collection's record was
          written (two checkpoints taken within one second), then by name.
        - The checkpoint to rewind to "N checkpoints ago" is the one with C(ago) N (the rewind playbook's
          C(rewind_ago)). Retention (O(cryo.docker.docker_checkpoint#module:keep_last)) removes the highest first.
      type: int
      sample: 1
    criu_options:
      description:
        - The CRIU options in force when it was taken - its call's and the host's C(/etc/criu/runc.conf)'s - among
          C(tcp_established), C(tcp_close), C(file_locks), C(ext_unix_sk), C(link_remap) (those on) and
          C(manage_cgroups_mode). M(cryo.docker.docker_restore) restores it with them.
        - Null when not taken by this collection (or by a release before it recorded them).
      type: dict
      sample: {tcp_established: true}
    processes:
      description:
        - The processes the checkpoint holds, parents before their children (the order of CRIU's
          C(pstree.img)).
        - Null when the process tree cannot be read (see RV(checkpoints[].details_notes)); a field of a
          process whose image cannot be read is null, with a note.
      returned: with O(details=true)
      type: list
      elements: dict
      contains:
        pid:
          description: Process id, as the container's own PID namespace numbers it (1 is the container's first process).
          type: int
        ppid:
          description: Parent's pid (0 for the container's first process).
          type: int
        pgid:
          description: Process group id.
          type: int
        sid:
          description: Session id.
          type: int
        threads:
          description: Number of threads.
          type: int
        state:
          description: V(alive), V(stopped) (by a signal) or V(zombie) (exited, not yet waited for by its parent), as CRIU recorded it.
          type: str
        command:
          description: The command name the kernel keeps for the process (C(comm), at most 15 characters).
          type: str
        command_line:
          description:
            - Its arguments, as C(/proc/PID/cmdline) gave them - read from the process's own memory in the
              checkpoint (the area between C(mm_arg_start) and C(mm_arg_end) of C(mm-PID.img)).
            - Null for a zombie, and when the page is not in the checkpoint.
          type: list
          elements: str
        executable:
          description: Path of the program it runs (C(/proc/PID/exe)), inside the container.
          type: str
        cwd:
          description: Its working directory, inside the container.
          type: str
        memory:
          description: Its memory, in bytes (null for a zombie).
          type: dict
          contains:
            mapped:
              description:
                - Size of its address space - the sum of the sizes of its memory mappings (VMAs in
                  C(mm-PID.img)), the C([vsyscall]) page left out - what C(/proc/PID/status) calls C(VmSize).
              type: int
            written:
              description:
                - Bytes of its memory the checkpoint holds - the pages CRIU wrote to its C(pages-N.img)
                  (the present entries of C(pagemap-PID.img)) - its private memory that was in use,
                  anonymous or a changed copy of a file. Shared memory is kept apart and not counted.
                - The sum over all processes is the checkpoint's C(pages_written) times the page size.
              type: int
      sample:
        - {pid: 1, ppid: 0, pgid: 1, sid: 1, threads: 1, state: alive, command: sh,
           command_line: [/bin/sh, -c, "i=0; while true; do echo $i; i=$(expr $i + 1); sleep 1; done"],
           executable: /bin/busybox, cwd: /, memory: {mapped: 2322432, written: 77824}}
        - {pid: 17, ppid: 1, pgid: 1, sid: 1, threads: 1, state: alive, command: sleep, command_line: [sleep, "1"],
           executable: /bin/busybox, cwd: /, memory: {mapped: 2322432, written: 61440}}
    files:
      description:
        - The open file descriptors of every process, by process (in RV(checkpoints[].processes) order) and fd.
        - Null when CRIU's C(files.img) cannot be read.
      returned: with O(details=true)
      type: list
      elements: dict
      contains:
        pid:
          description: The process that holds it.
          type: int
        fd:
          description: The file descriptor number.
          type: int
        type:
          description: >-
            What it is - V(file), V(pipe), V(fifo), V(socket), V(tty), V(eventfd), V(eventpoll), V(inotify),
            V(fanotify), V(signalfd), V(timerfd), V(memfd), V(namespace), V(tun), V(bpf-map), V(pidfd),
            V(external) (a file CRIU was told to leave to the restorer) or V(unknown).
          type: str
        path:
          description: >-
            What C(/proc/PID/fd/FD) shows - the path inside the container of a file, fifo or terminal,
            C(pipe:[ID]), C(socket:[INODE]) (details in RV(checkpoints[].sockets)), C(anon_inode:[eventfd]) and
            so on; null when the checkpoint does not say.
          type: str
        access:
          description: V(read), V(write) or V(read-write) for a file or memfd, null otherwise.
          type: str
      sample:
        - {pid: 1, fd: 0, type: file, path: /dev/null, access: read-write}
        - {pid: 1, fd: 1, type: pipe, path: "pipe:[1255925]", access: null}
        - {pid: 1, fd: 3, type: socket, path: "socket:[1255971]", access: null}
    sockets:
      description:
        - The sockets among RV(checkpoints[].files), one per descriptor (RV(checkpoints[].files[].pid) and
          RV(checkpoints[].files[].fd) say which), with what CRIU recorded of each.
        - Null when CRIU's C(files.img) cannot be read.
      returned: with O(details=true)
      type: list
      elements: dict
      contains:
        pid: {description: The process that holds it., type: int}
        fd: {description: Its file descriptor., type: int}
        family:
          description: V(inet), V(inet6), V(unix), V(packet) or V(netlink).
          type: str
        type:
          description: V(stream), V(dgram), V(seqpacket), V(raw) (null when not recorded).
          type: str
        protocol:
          description: V(tcp), V(udp) and so on for inet sockets; the protocol number otherwise.
          type: raw
        state:
          description: >-
            The kernel's socket state - V(listen), V(established), V(close) (for UDP and unix sockets - not
            connected), V(syn-sent), V(time-wait), ...
          type: str
        local_address:
          description: The address it is bound to (V(0.0.0.0) or V(::) for any); for a unix socket its path, or C(@NAME) when abstract.
          type: str
        local_port:
          description: The port it is bound to (inet sockets).
          type: int
        remote_address:
          description: The peer's address when connected (for a unix socket, the peer's name); null otherwise.
          type: str
        remote_port:
          description: The peer's port when connected.
          type: int
        inode:
          description: The socket's inode number (the C(socket:[INODE]) of RV(checkpoints[].files)).
          type: int
      sample:
        - {pid: 1, fd: 3, family: inet6, type: stream, protocol: tcp, state: listen, local_address: "::", local_port: 8080,
           remote_address: null, remote_port: null, inode: 1255971}
    stats:
      description:
        - CRIU's statistics of the dump, from the C(stats-dump) CRIU left with the images (a checkpoint taken by
          M(cryo.docker.docker_checkpoint) through the runtime keeps it); null when the checkpoint kept none (the
          engine's path discards it). Times in microseconds, named as in
          RV(cryo.docker.docker_checkpoint#module:stats).
      returned: with O(details=true)
      type: dict
      sample: {freezing_time: 100960, frozen_time: 142144, memdump_time: 473, memwrite_time: 163, pages_scanned: 48,
               pages_skipped_parent: 0, pages_written: 34, pages_lazy: 0}
    details_notes:
      description: What could not be decoded, one sentence each; empty when everything was read.
      returned: with O(details=true)
      type: list
      elements: str
      sample: ["process 17 (sleep): command line unknown: the page at 0x7ffd01a75f2e is not in the checkpoint"]
"""

import os

from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.module_utils import _images
from ansible_collections.cryo.docker.plugins.module_utils._common import (
    Manager,
    check_checkpoint_dir,
    container_state_reason,
    run,
)
from ansible_collections.cryo.docker.plugins.module_utils._engine import EngineError, connect, docker_argument_spec


class CheckpointInfo(Manager):
    """An information module: plan reads the engine and the checkpoint directories (and, with details, the
    images in them), report lists them."""

    def __init__(self, module):
        super().__init__(module)
        check_checkpoint_dir(self.params['checkpoint_dir'])
        self.engine = connect(self.params)
        self.engine.require_experimental()
        self.checkpoints = []

    def plan(self):
        self.checkpoints = self.find()
        if self.params['details']:
            for entry in self.checkpoints:
                entry.update(_images.inspect(entry['directory']))

    def find(self):
        """The checkpoints asked for, as store.describe tells them."""
        container, checkpoint_dir = self.params['container'], self.params['checkpoint_dir']
        if checkpoint_dir and not container:
            return [store.describe(os.path.join(checkpoint_dir, name), name) for name in store.list_dir(checkpoint_dir)]
        if container:
            targets = [self.engine.inspect(container)]
        else:
            targets = [info for info in map(self.inspected, self.engine.containers(all=True)) if info]
        data_root = self.engine.data_root()
        found = []
        for info in targets:
            container_id, name = info['Id'], info['Name'].lstrip('/')
            if checkpoint_dir:
                names = store.list_dir(checkpoint_dir)
            else:
                names = self.listed(info)
            base = checkpoint_dir or store.engine_dir(data_root, container_id)
            found.extend(store.describe(os.path.join(base, checkpoint), checkpoint, name, container_id)
                         for checkpoint in names)
        return found

    def inspected(self, entry):
        """A listed container's inspect; None when it was removed since it was listed."""
        try:
            return self.engine.inspect(entry['Id'])
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise

    def listed(self, info):
        """The engine's list of a container's checkpoints. A dead container, or one being removed, may have lost its
        checkpoints' directory with its own: said in a warning, and the others are listed."""
        name = info['Name'].lstrip('/')
        try:
            return self.engine.list_checkpoints(info['Id'])
        except EngineError as exc:
            reason = container_state_reason(name, info.get('State') or {})
            if reason is None:
                raise
            self.module.warn('The checkpoints of container %s cannot be listed: it is %s (%s; the engine says: %s). %s'
                             % (name, info['State'].get('Status'), reason[0], exc.msg, reason[1]))
            return []

    def report(self):
        store.number_by_age(self.checkpoints)
        return dict(changed=False,
                    checkpoints=sorted(self.checkpoints, key=lambda entry: (entry['container'] or '', entry['name'])),
                    containers=store.usage(self.checkpoints))


def main():
    argument_spec = docker_argument_spec(
        container=dict(type='str'),
        checkpoint_dir=dict(type='path'),
        details=dict(type='bool', default=False),
    )
    run(CheckpointInfo, argument_spec)


if __name__ == '__main__':
    main()
