#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: checkpoint_preflight
short_description: Tell whether a host can checkpoint and restore Docker containers, before anything is frozen
version_added: 0.1.0
description:
  - Reads the kernel, CRIU and the Docker Engine of the host and reports, check by check, whether
    checkpoint and restore will work there, and what to do where they will not. Nothing is changed.
  - Each check has a C(status) of V(pass), V(warn) or V(fail), a C(detail) saying what was found, and
    a C(remedy) an operator can follow. RV(ready) is true when no check failed.
  - B(kernel config) - from C(/proc/config.gz), else C(/boot/config-<release>); V(warn) when neither
    can be read. V(fail) when any of C(CONFIG_CHECKPOINT_RESTORE), C(CONFIG_NAMESPACES),
    C(CONFIG_UTS_NS), C(CONFIG_IPC_NS), C(CONFIG_PID_NS), C(CONFIG_NET_NS), C(CONFIG_UNIX_DIAG),
    C(CONFIG_INET_DIAG), C(CONFIG_PACKET_DIAG), C(CONFIG_NETLINK_DIAG), C(CONFIG_INOTIFY_USER),
    C(CONFIG_FHANDLE), C(CONFIG_EVENTFD) or C(CONFIG_EPOLL) is missing (C(y) and C(m) both count).
    V(warn) only for C(CONFIG_USER_NS) (needed only by an engine with userns-remap, Docker's own
    check-config calls it optional) and C(CONFIG_MEM_SOFT_DIRTY) (needed only for pre-dump, that
    is incremental checkpoints).
  - B(criu installed) - the C(criu) that runc will run. runc looks C(criu) up on the PATH it inherits
    from dockerd (through containerd). The module reads that PATH from the environment of the dockerd
    process serving O(docker_host) (C(/proc/PID/environ)); when that dockerd is not a process on this
    host, from any running dockerd; with none, it takes the PATH a service manager gives a service,
    C(/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin). M(cryo.docker.criu_install) reads
    the same PATH the same way. O(criu_path) checks a given binary instead.
  - B(criu check) - runs C(criu check) and reads its output, because its exit code alone is not
    enough - V(fail) on errors or when it does not say C(Looks good.), V(warn) on warnings.
  - B(criu version) - C(criu --version) against the running kernel - kernels 6.13 and later need
    CRIU 4.1 (older ones fail with C(Unexpected rt vDSO area bounds)), 6.16 and later need 4.2 (TCP and UDP
    sockets cannot be dumped); anything else needs 2.0.
  - B(engine reachable) and B(engine experimental) - checkpoint endpoints exist only in experimental
    mode (HTTP 501 otherwise); the remedy is the P(cryo.docker.engine#role) role.
  - B(engine version) - releases whose restore is known to be broken - 25.0.0 to 25.0.3 V(fail)
    (restore fails with C(content digest ... not found), moby/moby#47456, fixed in 25.0.4 by
    moby/moby#47466); 26.0.0 (reverted in 26.0.1), 28.x and 29.x V(warn) for the host, and V(fail)
    for each container in O(containers) with its own network namespace - bridge, V(none), a user
    network (restore fails before CRIU runs with C(bind-mount /proc/0/ns/net ... no such file or
    directory), containerd/containerd#12141, moby/moby#50750, checkpoint-restore/criu#2834).
    Containers on the host network and in the namespace of a network holder (C(container:<holder>),
    see C(cryo.docker.docker_network_holder)) restore there. Versions are read as the engine gives
    them, distribution suffixes included (C(28.5.2+dfsg4)). The same rule stops
    M(cryo.docker.docker_checkpoint) from stopping such a container.
  - B(containerd version) - older than 1.5 V(fail) - restores report success but the container
    silently starts from zero (checkpoint-restore/criu#1223, docker/for-linux#1192).
  - B(live-restore) - with C(live-restore) on, containers that outlived an engine restart cannot be
    checkpointed (C(invalid task checkpoint option)) until restarted. Their C(State.StartedAt) is
    compared with the start time of the dockerd process serving O(docker_host) (the process that
    holds its listening socket, found in C(/proc)); they are named in a V(warn), and each of
    O(containers) among them is a V(fail).
  - B(free space) - at O(checkpoint_dir), else the engine's data root, against the resident memory
    of the running containers (the sum of C(VmRSS) of every process in each container's cgroup),
    or of O(containers) when given. The engine needs about 2 to 3 times that memory on disk during a
    checkpoint - V(pass) from 3 times, V(warn) from 2 times, V(fail) below.
  - B(containerd tmpdir) - where the engine's containerd unpacks each checkpoint it restores, and writes each
    checkpoint the engine takes (the image-path restore of M(cryo.docker.docker_restore) and the runtime path of
    M(cryo.docker.docker_checkpoint) do not go through it) - a directory it makes
    in C($XDG_RUNTIME_DIR), else C($TMPDIR), else C(/tmp) of its own environment (containerd
    C(services/tasks/local.go)); on Debian 13 and Fedora C(/tmp) is a tmpfs, in RAM. The containerd is the
    process that holds the socket dockerd talks to (C(--containerd), C(containerd) in its configuration file,
    else the one dockerd starts under its exec root); its environment is read from C(/proc/PID/environ), the
    file system type from C(/proc/PID/mountinfo). Compared with the resident memory of the largest container
    counted for B(free space) (about the size of its checkpoint) - V(warn) when the directory has less room
    free (a tmpfs would take that much RAM and the restore fail), V(fail) when it does not exist (every
    restore fails), V(warn) when the containerd is not found on this host. The remedy is the
    C(engine_containerd_tmpdir) option of the P(cryo.docker.engine#role) role.
  - B(host reboot) - whether C(ansible.builtin.reboot) can reboot the host - V(warn) when systemd runs it
    without the D-Bus system bus (C(shutdown -r) fails with C(Failed to connect to bus)); the
    P(cryo.docker.maintenance#role) role stops before anything is checkpointed when its action is a reboot and
    this check did not pass.
  - B(container NAME) checks, for each of O(containers) - it exists and runs (V(fail) otherwise, and
    when it is paused, restarting, dead or being removed, which M(cryo.docker.docker_checkpoint) refuses);
    its restart policy (V(pass), it will be held - M(cryo.docker.docker_checkpoint)
    sets it to C(no) and M(cryo.docker.docker_restore) puts it back); a TTY (V(pass), restored);
    privileged (V(warn)); the network (V(warn) on the host network - its ports must be free at restore
    and established TCP connections need C(tcp-established); V(pass) in a network holder's namespace,
    which must run at restore; V(fail) with its own network namespace on the engines above); mounts
    (V(warn) - bind mounts of sockets, of host devices or C(/dev), of the host's C(/proc) or C(/sys),
    mounts with shared propagation, and C(--device) entries; runc passes every bind mount to CRIU
    as an external mount, so an ordinary directory or file bind mount and named volumes are fine, but
    what a process holds open through such a mount cannot be dumped).
  - B(restore network NETWORK) checks, for each of O(restore_networks) - whether a container on that
    network, coming from elsewhere, can be restored here - V(fail) with a network namespace of its own
    on the engines above, when the network holder of C(container:NAME) does not exist or does not run
    here, or when a user network does not exist here. The C(cryo.docker.move_container)
    playbook asks this of the target with the source container's networks before it freezes anything.
  - B(restore cpu), with O(restore_cpu_flags) - whether this host's CPU has every instruction-set feature of
    the CPU the containers were checkpointed on (among those C(criu cpuinfo check) compares, as
    M(cryo.docker.docker_checkpoint_import) does) - V(fail) naming the features it lacks (a restored process
    that uses one dies with SIGILL). The C(cryo.docker.move_container) playbook asks this of the target with
    the source's RV(facts.cpu) flags before it freezes anything.
  - Runs on the engine's host - the kernel, CRIU, C(/proc) and the free space it reads are local.
extends_documentation_fragment:
  - cryo.docker._docker
  - cryo.docker._attributes
  - cryo.docker._attributes.info_module
options:
  containers:
    description:
      - Names or ids of containers that are going to be checkpointed; each gets its own checks, and
        the free space is measured against their memory only.
    type: list
    elements: str
    default: []
  select_running:
    description:
      - Also check every running container, as when all of them are about to be checkpointed
        (a host reboot). RV(containers) lists them, with whether each can be checkpointed.
    type: bool
    default: false
  include_labels:
    description:
      - Only containers that carry all of these labels are checked and listed, given as C(key) or C(key=value).
    type: list
    elements: str
    default: []
  exclude_labels:
    description:
      - Containers that carry any of these labels (C(key) or C(key=value)) are left out.
    type: list
    elements: str
    default: []
  restore_networks:
    description:
      - Networks of containers that are going to be restored on this engine from elsewhere (an archive
        written on another host, see M(cryo.docker.docker_checkpoint_import)) - each a network mode as
        C(HostConfig.NetworkMode) gives it (V(default), V(bridge), V(host), V(none), a user network's name,
        C(container:NAME) with the name of the network holder) or the name of another network such a
        container is connected to. Each gets a check C(restore network NETWORK).
      - The RV(containers) of this module on the source host say what to pass - C(network_mode), with
        C(container:) and C(network_holder) for a container in a holder's namespace, and C(networks).
    type: list
    elements: str
    default: []
    version_added: 0.2.0
  restore_cpu_flags:
    description:
      - The feature flags of the CPU that containers which are going to be restored here were (or will be)
        checkpointed on - the C(flags) of RV(facts.cpu) of this module on that host. Adds the check C(restore cpu).
    type: list
    elements: str
    version_added: 0.2.0
  criu_path:
    description:
      - The C(criu) binary to check, instead of the first C(criu) on the PATH runc uses. Use it when
        runc is configured with another CRIU, or to check a CRIU before putting it in place.
    type: path
  checkpoint_dir:
    description:
      - Where checkpoints will be written (the O(cryo.docker.docker_checkpoint#module:checkpoint_dir)
        of M(cryo.docker.docker_checkpoint)); the free space is measured there. It need not exist
        yet - its nearest existing parent is measured.
      - By default the engine's data root (C(DockerRootDir), for example C(/var/lib/docker)), where the
        engine keeps checkpoints and stages them through containerd's content store.
    type: path
notes:
  - Must run as root - C(criu check) needs it, and so do C(/proc/PID/fd) and C(/proc/PID/status) of
    the engine's and containers' processes.
  - C(criu check) may write CRIU's own cache of kernel features (C(/run/criu.kdat)); nothing else is
    written.
  - The role P(cryo.docker.preflight#role) runs this module, prints the checks as a table and fails
    when the host is not ready.
seealso:
  - module: cryo.docker.docker_checkpoint
  - module: cryo.docker.docker_restore
  - name: CRIU and Docker
    description: How Docker uses CRIU, and what it cannot do.
    link: https://criu.org/Docker
author:
  - cryo.docker contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Can this host checkpoint containers?
  cryo.docker.checkpoint_preflight:
  register: preflight

- name: Stop here if it cannot, with what to do
  ansible.builtin.assert:
    that: preflight.ready
    fail_msg: "{{ preflight.checks | selectattr('status', 'eq', 'fail') | map(attribute='remedy') | list }}"

- name: Check the containers about to be frozen, and the space where their checkpoints go
  cryo.docker.checkpoint_preflight:
    containers: [web, worker]
    checkpoint_dir: /srv/checkpoints
  register: preflight

- name: Check a freshly built CRIU before putting it in place
  cryo.docker.checkpoint_preflight:
    criu_path: /opt/criu/sbin/criu

- name: Can a container on these networks, written to an archive on another host, be restored here?
  cryo.docker.checkpoint_preflight:
    restore_networks: [bridge, container:web-net, backend]
  register: target

- name: A second engine on its own socket
  cryo.docker.checkpoint_preflight:
    docker_host: unix:///run/docker-b.sock
"""

RETURN = r"""
containers:
  description:
    - The containers of O(containers) and, with O(select_running), every running container,
      after the label filters - each with whether it can be checkpointed.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the container.
      type: str
      sample: web
    id:
      description: Full id (null when the container does not exist).
      type: str
      sample: 3db2fb40e3463df60a235b0f47177b91c0c1d6c6715287195653dad083e95474
    eligible:
      description: True when none of its checks failed.
      type: bool
      sample: true
    reasons:
      description: Details of its failed checks.
      type: list
      elements: str
      sample: []
    restart_policy:
      description: Its restart policy (held during a checkpoint).
      type: dict
      sample: {Name: always, MaximumRetryCount: 0}
    network_mode:
      description: Its network mode (C(HostConfig.NetworkMode)); null when the container does not exist.
      type: str
      sample: container:5f1e6b0a8c2d4e6f
    network_holder:
      description: The name of the container whose network namespace it joins (network mode C(container:)), else null.
      type: str
      sample: web-net
    networks:
      description: The networks it is connected to (the keys of C(NetworkSettings.Networks)), sorted; empty in a
        network holder's namespace and when the container does not exist.
      type: list
      elements: str
      sample: [bridge]
    holder:
      description:
        - Whether it is a network holder (it carries the label C(cryo.docker.network-holder=true), see
          C(cryo.docker.docker_network_holder)). The maintenance role never checkpoints a holder; it starts
          it again before restoring the containers in it.
      type: bool
      sample: false
    project:
      description:
        - The Compose project it belongs to (its label C(com.docker.compose.project)); null for a container of
          no project and for a C(docker compose run) one-off.
        - The P(cryo.docker.maintenance#role) role checkpoints the containers of one project as one group
          (M(cryo.docker.docker_checkpoint) with O(cryo.docker.docker_checkpoint#module:group=true)).
      type: str
      sample: shop
    host_access:
      description:
        - What its configuration asks for that reaches into the host, each with C(allow) (the name of
          O(cryo.docker.docker_checkpoint_import#module:allow) that permits it) and C(item) - what an import of
          an archive of it elsewhere refuses unless allowed (named volumes count, since an archive carries them
          only with O(cryo.docker.docker_checkpoint_export#module:include_volumes)). The
          C(cryo.docker.move_container) playbook compares it with C(move_allow) before it freezes anything.
      type: list
      elements: dict
      sample: [{allow: security_options, item: security option seccomp=unconfined}]
      version_added: 0.2.0
ready:
  description: True when no check failed (warnings do not count).
  returned: always
  type: bool
  sample: true
checks:
  description: Every check, in the order they ran.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: >-
        What was checked - C(kernel config), C(kernel CONFIG_MEM_SOFT_DIRTY), C(criu installed),
        C(criu check), C(criu version), C(engine reachable), C(engine experimental),
        C(engine version), C(containerd version), C(live-restore), C(free space), C(containerd tmpdir),
        C(host reboot), and for each of
        O(containers) C(container NAME) followed by C(: running), C(: restart policy), C(: tty),
        C(: privileged), C(: network), C(: mounts), C(: engine restart), and for each of
        O(restore_networks) C(restore network NETWORK); with O(restore_cpu_flags) C(restore cpu).
      type: str
      sample: criu version
    status:
      description: The verdict.
      type: str
      choices: [pass, warn, fail]
      sample: fail
    detail:
      description: What was found.
      type: str
      sample: "CRIU 3.17.1 at /usr/sbin/criu is too old for kernel 6.18.44: it needs >= 4.2. ..."
    remedy:
      description: What to do about it; empty for V(pass).
      type: str
      sample: Install CRIU >= 4.2 with the cryo.docker.criu role ...
summary:
  description: How many checks passed, warned and failed.
  returned: always
  type: dict
  sample: {"pass": 11, "warn": 1, "fail": 0}
facts:
  description: What the module read.
  returned: always
  type: dict
  contains:
    kernel_release:
      description: The running kernel.
      type: str
      sample: 6.18.44-fc-v657
    kernel_config:
      description: Where the kernel configuration was read from; null when it could not be read.
      type: str
      sample: /proc/config.gz
    init:
      description:
        - What a reboot of the host goes through (the C(host reboot) check), V(pid1) PID 1's name, V(systemd)
          whether systemd runs the host, V(dbus) whether the D-Bus system bus is there.
      type: dict
      sample: {pid1: systemd, systemd: true, dbus: true}
    cpu:
      description:
        - This host's CPU, from C(/proc/cpuinfo) - C(vendor), C(model) and C(flags) (its feature flags); null
          when it names no flags.
      type: dict
      sample: {vendor: AuthenticAMD, model: AMD EPYC, flags: [aes, avx, avx2, fpu, sha_ni, sse2]}
    criu_path:
      description: The CRIU that was checked; null when none was found.
      type: str
      sample: /usr/local/sbin/criu
    criu_version:
      description: Its version.
      type: str
      sample: 4.2.1
    criu_search_path:
      description: The directories searched for C(criu), in order - dockerd's PATH (empty with O(criu_path)).
      type: list
      elements: str
      sample: [/usr/local/sbin, /usr/local/bin, /usr/sbin, /usr/bin, /sbin, /bin]
    criu_min_version:
      description: The lowest CRIU that works with this kernel.
      type: str
      sample: "4.2"
    docker_host:
      description: The engine that was asked.
      type: str
      sample: unix:///var/run/docker.sock
    engine_version:
      description: Docker Engine version; null when the engine was not reachable.
      type: str
      sample: 20.10.24+dfsg1
    api_version:
      description: Its API version.
      type: str
      sample: "1.41"
    containerd_version:
      description: containerd version, from the engine's C(/version) components (or C(/info)).
      type: str
      sample: 1.6.20~ds1
    runc_version:
      description: runc version, from the engine's C(/version) components (or C(/info)).
      type: str
      sample: 1.1.5+ds1
    experimental:
      description: Whether the engine runs in experimental mode.
      type: bool
      sample: true
    live_restore:
      description: Whether the engine has C(live-restore) on.
      type: bool
      sample: false
    cgroup_version:
      description: cgroup version, as the engine reports it (else as mounted on this host).
      type: str
      sample: "1"
    cgroup_driver:
      description: The engine's cgroup driver.
      type: str
      sample: cgroupfs
    data_root:
      description: The engine's data root.
      type: str
      sample: /var/lib/docker
    storage_driver:
      description: The engine's storage driver (C(Driver) of its C(/info)) - C(overlay2) for the classic image
        store, C(overlayfs) for the containerd image store.
      type: str
      sample: overlay2
    image_store:
      description:
        - Where the engine keeps images - V(containerd) (containerd's snapshotters, the default of Docker 29
          and the C(containerd-snapshotter) feature before) or V(graphdriver) (the classic store).
      type: str
      sample: graphdriver
    dockerd_pid:
      description: The dockerd process serving O(docker_host); null when not found on this host.
      type: int
      sample: 3397
    dockerd_started_at:
      description: When it started (UTC, ISO 8601); null when not found.
      type: str
      sample: "2026-11-29T15:19:24+00:00"
    space_path:
      description: Where the free space was measured (O(checkpoint_dir), the data root, or the nearest
        existing parent).
      type: str
      sample: /var/lib/docker
    free_bytes:
      description: Free space there, in bytes, for an unprivileged user as for root (C(f_bavail)).
      type: int
      sample: 51234567890
    memory_bytes:
      description: Resident memory of the running containers counted (see O(containers)), in bytes.
      type: int
      sample: 1048576
    running_containers:
      description: How many containers were counted for the memory.
      type: int
      sample: 2
    image_path:
      description:
        - Whether restores of containers created with a runtime of their own (imports, clones, moves, warm
          containers) can take the image path here - restored in place through containerd's runc shim, see
          O(cryo.docker.docker_restore#module:method) - and if not, why (they take the engine's path); null when
          the engine is not reachable.
      type: dict
      version_added: 0.2.0
      contains:
        available:
          description: Whether it can be taken.
          type: bool
        reason:
          description: Why not (null when it can).
          type: str
      sample: {available: false, reason: "Docker 20.10.24+dfsg1 passes no runtime options to containerd (Docker 23 and later do)"}
    containerd_tmpdir:
      description:
        - Where the engine's containerd unpacks checkpoints to restore them (and writes those the engine takes),
          as that containerd sees it; null when the engine is not reachable or its containerd is not a process
          on this host.
      type: dict
      version_added: 0.2.0
      contains:
        path:
          description: The directory, from containerd's environment.
          type: str
          sample: /tmp
        set_by:
          description: The variable that names it - V(XDG_RUNTIME_DIR) or V(TMPDIR); null for the default C(/tmp).
          type: str
          sample: TMPDIR
        exists:
          description: Whether the directory exists.
          type: bool
          sample: true
        fstype:
          description: The type of the file system it is on (C(tmpfs) is in memory); null when not found.
          type: str
          sample: tmpfs
        mount_point:
          description: Where that file system is mounted.
          type: str
          sample: /tmp
        size:
          description: The size of that file system in bytes; null when it cannot be measured.
          type: int
          sample: 4102029312
        free:
          description: Its free space in bytes (C(f_bavail)); null when it cannot be measured.
          type: int
          sample: 4101988352
        containerd_pid:
          description: The containerd process.
          type: int
          sample: 3410
        containerd_address:
          description: The socket dockerd talks to it on.
          type: str
          sample: /var/run/docker/containerd/containerd.sock
        managed:
          description: Whether dockerd started that containerd itself (no C(--containerd) given).
          type: bool
          sample: true
"""

import datetime

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.cryo.docker.plugins.module_utils._common import (
    HOLDER_LABEL,
    Manager,
    check_checkpoint_dir,
    run,
)
from ansible_collections.cryo.docker.plugins.module_utils._containers import record_container
from ansible_collections.cryo.docker.plugins.module_utils._cpu import describe as describe_cpu
from ansible_collections.cryo.docker.plugins.module_utils._criu import min_version_for_kernel, probe
from ansible_collections.cryo.docker.plugins.module_utils._engine import (
    HAS_DOCKER,
    Engine,
    EngineError,
    docker_argument_spec,
)
from ansible_collections.cryo.docker.plugins.module_utils._group import project_of
from ansible_collections.cryo.docker.plugins.module_utils._host import (
    Host,
    find_program,
    free_space,
    is_executable,
    search_dirs,
    source_kind,
)
from ansible_collections.cryo.docker.plugins.module_utils._host_access import host_access
from ansible_collections.cryo.docker.plugins.module_utils._imagepath import unavailable_reason as image_path_unavailable
from ansible_collections.cryo.docker.plugins.module_utils._preflight import (
    BUILTIN_NETWORKS,
    check_container,
    check_containerd_tmpdir,
    check_containerd_version,
    check_criu_installed,
    check_criu_run,
    check_criu_version,
    check_engine_reachable,
    check_engine_version,
    check_experimental,
    check_free_space,
    check_kernel_config,
    check_live_restore,
    check_reboot,
    check_restore_cpu,
    check_restore_network,
    count_statuses,
    engine_components,
    labels_match,
    parse_kernel_config,
    parse_timestamp,
)


class Preflight(Manager):
    """An information module: plan gathers the facts and runs the rules of _preflight over them,
    report returns the checks."""

    def __init__(self, module):
        super().__init__(module)
        check_checkpoint_dir(self.params['checkpoint_dir'])
        self.host = Host()
        self.checks = []
        self.containers = []
        self.facts = dict(docker_host=self.params['docker_host'])

    def plan(self):
        release = self.host.kernel_release()
        self.facts['kernel_release'] = release
        self.kernel(release)
        self.criu(release)
        self.engine()
        init = self.host.init_system()
        self.facts['init'] = init
        self.checks.append(check_reboot(init))
        self.facts['cpu'] = describe_cpu(self.host.read('cpuinfo'))
        if self.params['restore_cpu_flags'] is not None:
            self.checks.append(check_restore_cpu(self.params['restore_cpu_flags'], self.facts['cpu']))

    def report(self):
        ready, counts = count_statuses(self.checks)
        return dict(changed=False, ready=ready, checks=self.checks, summary=counts, facts=self.facts,
                    containers=self.containers)

    def kernel(self, release):
        text, source = self.host.kernel_config(release)
        self.facts['kernel_config'] = source
        self.checks.extend(check_kernel_config(parse_kernel_config(text) if text else None, source, release))

    def criu(self, release):
        explicit = self.params['criu_path']
        if explicit:
            search_path, origin = [], None
            path = explicit if is_executable(explicit) else None
        else:
            path_text, origin = self.host.search_path(self.params['docker_host'])
            search_path = search_dirs(path_text)
            path = find_program('criu', search_path)
        self.facts.update(criu_path=path, criu_search_path=search_path, criu_version=None,
                          criu_min_version=min_version_for_kernel(release)[0])
        self.checks.append(check_criu_installed(path, search_path, explicit, origin))
        if not path:
            return
        found = probe(self.module, path)
        self.facts['criu_version'] = found['version']
        self.checks.append(check_criu_run(path, found['check']))
        self.checks.append(check_criu_version(path, found['version'], release))

    def engine(self):
        host = self.params['docker_host']
        self.facts.update(engine_version=None, api_version=None, containerd_version=None, runc_version=None,
                          experimental=None, live_restore=None, cgroup_version=self.host.cgroup_version(),
                          cgroup_driver=None, data_root=None, dockerd_pid=None, dockerd_started_at=None,
                          storage_driver=None, image_store=None, containerd_tmpdir=None, image_path=None)
        if not HAS_DOCKER:
            self.checks.append(check_engine_reachable(
                host, missing_required_lib('docker (the Docker SDK for Python)') +
                '. The cryo.docker.engine role installs it.'))
            self.space(self.params['checkpoint_dir'] or '/var/lib/docker', [])
            return
        try:
            engine = Engine(self.params)
            parts = engine_components(engine.version(), engine.info())
        except EngineError as exc:
            self.checks.append(check_engine_reachable(host, exc.msg))
            self.space(self.params['checkpoint_dir'] or '/var/lib/docker', [])
            return
        self.facts.update(engine_version=parts['engine'], api_version=parts['api_version'],
                          containerd_version=parts['containerd'], runc_version=parts['runc'],
                          experimental=parts['experimental'], live_restore=parts['live_restore'],
                          cgroup_driver=parts['cgroup_driver'], data_root=parts['data_root'],
                          storage_driver=parts['storage_driver'], image_store=parts['image_store'])
        if parts['cgroup_version']:
            self.facts['cgroup_version'] = parts['cgroup_version']
        self.checks.append(check_engine_reachable(host, None, parts['engine'], parts['api_version']))
        self.checks.append(check_experimental(host, parts['experimental']))
        self.checks.append(check_engine_version(parts['engine']))
        self.checks.append(check_containerd_version(parts['containerd']))

        dockerd = self.host.dockerd(host)
        if dockerd:
            self.facts['dockerd_pid'] = dockerd['pid']
            if dockerd['started_at'] is not None:
                self.facts['dockerd_started_at'] = datetime.datetime.fromtimestamp(
                    int(dockerd['started_at']), datetime.timezone.utc).isoformat()
        reason = image_path_unavailable(engine.version(), engine.info(), host, dockerd,
                                        self.host.cmdline(dockerd['pid']) if dockerd else ())
        self.facts['image_path'] = dict(available=reason is None, reason=reason)
        running = self.running(engine)
        self.checks.append(check_live_restore(parts['live_restore'], dockerd, running))

        wanted = list(self.params['containers'])
        if self.params['select_running']:
            wanted += [c['name'] for c in running if c['name'] not in wanted]
        counted = [] if wanted or self.params['select_running'] else running
        for name in wanted:
            try:
                inspect = engine.inspect(name)
            except EngineError as exc:
                checks = check_container(name, None, parts['engine'], parts['live_restore'],
                                         None, source_kind, error=exc.msg)
                self.checks.extend(checks)
                self.containers.append(dict(name=name, id=None, eligible=False, restart_policy=None,
                                            reasons=[c['detail'] for c in checks if c['status'] == 'fail'],
                                            network_mode=None, network_holder=None, networks=[], holder=False,
                                            host_access=[], project=None))
                continue
            labels = (inspect.get('Config') or {}).get('Labels') or {}
            if not labels_match(labels, self.params['include_labels'], self.params['exclude_labels']):
                continue
            checks = check_container(name, inspect, parts['engine'], parts['live_restore'],
                                     dockerd and dockerd['started_at'], source_kind,
                                     **self.processes(dockerd, inspect))
            self.checks.extend(checks)
            failed = [c['detail'] for c in checks if c['status'] == 'fail']
            network = (inspect.get('HostConfig') or {}).get('NetworkMode') or 'default'
            self.containers.append(dict(
                name=inspect.get('Name', '').lstrip('/'), id=inspect['Id'], eligible=not failed, reasons=failed,
                restart_policy=(inspect.get('HostConfig') or {}).get('RestartPolicy'), network_mode=network,
                network_holder=self.holder_of(engine, network),
                networks=sorted(((inspect.get('NetworkSettings') or {}).get('Networks') or {})),
                holder=labels.get(HOLDER_LABEL) == 'true', project=project_of(labels),
                host_access=host_access(record_container(inspect, None, None))))
            counted.extend(c for c in running if c['id'] == inspect['Id'])
        for network in self.params['restore_networks']:
            network = network.strip() or 'default'
            self.checks.append(check_restore_network(network, parts['engine'], self.found_here(engine, network)))
        self.space(self.params['checkpoint_dir'] or parts['data_root'] or '/var/lib/docker', counted)
        self.containerd_tmpdir(host, counted)

    def processes(self, dockerd, inspect):
        """What /proc tells about a running container's processes (their open files and users) and the
        engine's capabilities, for check_container; nothing when the engine is not a process on this
        host (its pids mean nothing here)."""
        pid = (inspect.get('State') or {}).get('Pid')
        if not dockerd or not pid:
            return {}
        return dict(open_files=self.host.open_files(pid), users=self.host.container_users(pid),
                    engine_caps=self.host.capabilities(dockerd['pid']))

    @staticmethod
    def found_here(engine, network):
        """What check_restore_network reads of this engine: the State of the holder a container:NAME joins
        (None when there is none), whether a user network exists."""
        if network.startswith('container:'):
            found = engine.find(network[len('container:'):])
            return None if found is None else found.get('State') or {}
        return None if network in BUILTIN_NETWORKS else engine.network(network) is not None

    @staticmethod
    def holder_of(engine, network):
        """The name of the container whose network namespace a container joins (container:<id>), or None."""
        if not network.startswith('container:'):
            return None
        target = network[len('container:'):]
        try:
            return engine.inspect(target).get('Name', '').lstrip('/') or target
        except EngineError:
            return target

    def running(self, engine):
        """[{id, name, pid, started_at, memory}] of the running containers."""
        out = []
        try:
            listed = engine.containers(all=False)
        except EngineError as exc:
            self.module.warn('Cannot list the running containers: %s' % exc.msg)
            return out
        for entry in listed:
            try:
                inspect = engine.inspect(entry['Id'])
            except EngineError:
                continue  # gone meanwhile
            state = inspect.get('State') or {}
            if not state.get('Running'):
                continue
            out.append(dict(id=inspect['Id'], name=inspect.get('Name', '').lstrip('/'), pid=state.get('Pid'),
                            started_at=parse_timestamp(state.get('StartedAt')),
                            memory=self.host.container_memory(state.get('Pid'))))
        return out

    def space(self, path, counted):
        measured, free = free_space(path)
        memory = sum(c['memory'] for c in counted)
        self.facts.update(space_path=measured, free_bytes=free, memory_bytes=memory,
                          running_containers=len(counted))
        self.checks.append(check_free_space(measured, free, memory, len(counted)))

    def containerd_tmpdir(self, docker_host, counted):
        """Where the engine's containerd unpacks checkpoints, against the largest container counted."""
        tmpdir = self.host.containerd_tmpdir(docker_host)
        self.facts['containerd_tmpdir'] = tmpdir
        largest = max(counted, key=lambda c: c['memory']) if counted else None
        if largest is not None:
            largest = (largest['name'], largest['memory'])
        self.checks.append(check_containerd_tmpdir(docker_host, tmpdir, largest))


def main():
    argument_spec = docker_argument_spec(
        containers=dict(type='list', elements='str', default=[]),
        select_running=dict(type='bool', default=False),
        include_labels=dict(type='list', elements='str', default=[]),
        exclude_labels=dict(type='list', elements='str', default=[]),
        restore_networks=dict(type='list', elements='str', default=[]),
        restore_cpu_flags=dict(type='list', elements='str'),
        criu_path=dict(type='path'),
        checkpoint_dir=dict(type='path'),
    )
    run(Preflight, argument_spec)


if __name__ == '__main__':
    main()
