#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_checkpoint_import
short_description: Create a container from a portable checkpoint archive and resume it, verified
version_added: 0.2.0
description:
  - Takes an archive written by M(cryo.docker.docker_checkpoint_export) on any host and, on this host's
    checkpoint-ready engine, creates the container again and resumes its processes where they were frozen.
    The container never has to exist here before.
  - "Verifies the archive before it unpacks anything - one read through the whole file, hashing every
    member and writing nothing - against the sizes and sha256 sums its manifest records (and the manifest
    against its own sha256; with O(checksum), the file against the sum given). It refuses, with nothing
    created - a truncated or damaged archive; a member that differs by one byte; members with absolute
    paths or C(..), links of any kind (an export never writes one), device nodes and FIFOs; members the
    manifest does not list; more than 100,000 members, an extended tar header over 64 KiB, members that add
    up to more than the free space where it is unpacked, or data after the end of the tar stream (each refused
    as it is read, so a crafted or decompression-bomb archive never fills memory or disk); an archive written
    on another CPU architecture; a checkpoint dumped by a newer
    CRIU than the one this engine runs; an image that is not here and not in the archive; a network, or the
    network holder of a C(container:<name>) network mode, that does not exist here; a container network
    mode this engine cannot restore (Docker 28 and 29 with a network namespace of its own, see
    M(cryo.docker.checkpoint_preflight)); a CPU that lacks an instruction set of the source's (O(cpu_check));
    too little room."
  - "The CPU check, before anything is unpacked - a restored process goes on with the instructions it chose
    when it started, on the source's CPU, and dies with SIGILL the first time it runs one this CPU lacks
    (runc asks CRIU for no CPU check of its own). The export records the source's CPU (C(criu cpuinfo dump),
    the archive's C(cpuinfo.img), and the flags of C(/proc/cpuinfo) in its manifest); the import runs
    C(criu cpuinfo check) of the engine's CRIU against that image (written, under a name of the module's own,
    into a private temporary directory that is removed afterwards) and compares the recorded flags with this
    host's, for the instruction-set features CRIU's check compares (SSE to AVX-512, AES, SHA, BMI, ...; not
    flags such as C(hypervisor) or C(constant_tsc), which no process depends on). A CPU that lacks one is
    refused, the missing features named (RV(cpu)); see O(cpu_check). Where CRIU ran, its verdict decides (it
    compares what the CPUs report to processes), and the flags name the features; without the image, the flags
    decide. An archive written before the export
    recorded the CPU is imported unchecked, with a warning."
  - "An archive is untrusted input - whoever can write the file can change what it holds and recompute every
    checksum, the manifest's included. So every name taken from it (the checkpoint, the container, its network
    holder, networks, volumes, volume members and destinations, deleted paths) is checked by the rules an
    operator's own input is, and every host path built from one is checked to stay in its directory; the
    configuration it records is compared with what a container gets by default, and what reaches into this
    host is refused unless O(allow) names it (RV(host_access) lists what it asks for); and with
    O(allowed_signers) only an archive signed by a trusted key is read at all. See the security section of
    the collection's C(docs/use-cases/move-container.md)."
  - "Then it unpacks the archive into a private staging directory (O(staging_dir), C(0700); read a second
    time, each file hashed again), loads the image when the archive carries it and the engine lacks it
    (saved by id, so no tag on this host moves; the recorded reference is tagged only where it is free),
    creates the container from the recorded configuration (under the recorded name, or O(container)) with
    the label C(cryo.docker.archive) holding the archive's sha256 and restart policy C(no) until it runs,
    connects its other networks, writes its file changes back (C(PUT /containers/{id}/archive)), fills the
    volumes the archive carries, deletes the files the container had deleted from its image, moves the
    checkpoint into the container's own checkpoint place and restores it through the code of
    M(cryo.docker.docker_restore) - verified (PID 1 is the checkpointed process), restart policy put back,
    O(fallback) on failure. RV(steps) says what was done."
  - "Deleted files - the Engine API can add and replace files in a container but not delete them. On the
    overlay2 storage driver, with the engine's layers on this host, the module makes an overlay whiteout (a
    0/0 character device of that name) in the new container's upper directory, which is what overlayfs
    itself does for a deleted file; each path component is opened without following links. On any other
    storage driver (for example the containerd image store) an archive that records deleted files is refused
    before anything is created, unless O(deleted_files=ignore) - then they are present again as the image
    has them, with a warning naming them."
  - "Idempotent and convergent. A container of that name with the archive's label that runs from the
    checkpoint (verified by its memory layout) leaves the run unchanged. Interrupted half-way (the
    controller died, the host rebooted) and run again, the import converges - the staging directory of the
    earlier run is removed, an image already loaded is not loaded again, a container of the archive that was
    never started (an import that stopped before its restore, or whose restore failed) is removed and
    created again, named volumes it created are filled again. A container of the archive that has run and
    stopped since is left alone with an error (what it did since is not in the archive) unless O(force=true).
    Any other container of that name is an error."
  - "Clones - the same archive imported under other names (O(container)) gives as many containers, each restored
    from its own copy of the checkpoint and verified, on one engine or several, also next to the container it was
    exported from (with O(cryo.docker.docker_checkpoint_export#module:leave_running=true)). Each runs in namespaces
    of its own - its processes keep their PIDs in their own PID namespace, a listening socket is bound in its own
    network namespace - so they do not collide; only host ports do, which O(publish=remap) gives each afresh.
    Clones keep the recorded hostname, network aliases and any fixed IP or MAC address the source was given (the
    engine refuses to start a second container on an address that is taken)."
  - "A group archive (written by M(cryo.docker.docker_checkpoint_export) with C(project) or C(containers)) is
    imported whole, as the same project - each member's archive is verified and every check above is made
    (O(allow), O(allowed_signers) for each member's signature) before any member is created, and the group is
    taken only when every member's checkpoint records the same group with exactly the members the file holds;
    then the members are created under their recorded names with their checkpoints staged, and restored as one
    group (see O(cryo.docker.docker_restore#module:group) - dependency order, each verified, every member stopped
    again with its checkpoint when one fails). The networks the members use must exist here. O(container) and
    O(warm) cannot be given; the archive is unpacked into a private directory of O(staging_dir) (check mode too,
    removed at the end)."
extends_documentation_fragment:
  - cryo.docker._docker
  - cryo.docker._criu
  - cryo.docker._attributes
  - cryo.docker._attributes.action
attributes:
  check_mode:
    details:
      - The archive is verified (read, nothing written) and every check is made - the signature, the names,
        O(allow) and the CPU check (O(cpu_check)) included, so check mode fails as the import would, listing the
        host access that is not allowed; the result shows the container that would be created (RV(container)),
        the host access it asks for (RV(host_access)) and whether the image would be loaded.
  idempotent:
    support: partial
    details:
      - With O(force=true) the container is created again and restored on every run.
options:
  path:
    description:
      - Absolute path of the archive on the host that runs the module (the engine's host).
    type: path
    required: true
  container:
    description:
      - Name of the container to create. Default is the name it had where it was exported.
    type: str
  checksum:
    description:
      - The sha256 the archive file must have, as C(sha256:HEX) or the 64 hex digits
        (RV(cryo.docker.docker_checkpoint_export#module:archive.sha256)). Without it the archive is checked
        against its own manifest only, which catches damage but not a deliberate change of the whole file.
    type: str
  published_ports:
    description:
      - The ports the new container publishes, replacing the recorded ones, each as C([ip:][host:]container[/proto])
        (C(8080:80), C(127.0.0.1::80) for a free host port). An empty list publishes none. Default is what
        O(publish) says.
      - Mutually exclusive with O(publish).
    type: list
    elements: str
  publish:
    description:
      - Which host ports the new container publishes, when O(published_ports) does not list them.
      - V(keep) - the recorded ones (a move - the same host port as where it was exported).
      - "V(remap) - every recorded published port, with its container port, protocol and host address, on a free
        host port the engine chooses: for clones of one archive next to each other (or next to the container it was
        exported from), which cannot all take the same host port. RV(container.bound_ports) says which port each got."
      - V(drop) - none (the clone is reached through its networks only).
      - Mutually exclusive with O(published_ports).
    type: str
    choices: [keep, remap, drop]
    default: keep
  restore:
    description:
      - Restore the container from the checkpoint once it is created. With V(false) it is created with its
        files and the checkpoint staged in its checkpoint place, and left for M(cryo.docker.docker_restore).
    type: bool
    default: true
  verify:
    description:
      - Prove that the container resumed the checkpointed processes (see O(cryo.docker.docker_restore#module:verify)).
    type: bool
    default: true
  fallback:
    description:
      - What to do when the restore fails - see O(cryo.docker.docker_restore#module:fallback). With V(fail) the
        container stays created and stopped with its checkpoint, and a run after the cause is fixed creates it
        again and restores.
    type: str
    choices: [fail, cold_start]
    default: fail
  keep_checkpoint:
    description:
      - Keep the checkpoint in the new container's checkpoint place after a verified restore (for a later rewind
        with M(cryo.docker.docker_restore)). By default it is removed - the archive is the copy to keep. A warm
        container (O(warm)) always keeps it.
    type: bool
    default: false
  restore_method:
    description:
      - How the restore is made - see O(cryo.docker.docker_restore#module:method).
      - With V(auto) (where the engine allows it) or V(image_path), the container is created with a runtime of its own
        (C(cryo-restore-<12 hex digits>), defined in the engine's C(daemon.json) and reloaded with SIGHUP, every
        other key kept) and restored in place from its checkpoint, at disk speed, instead of through containerd's
        content store. That runtime is then disarmed - the container starts afresh like any other from then on -
        and stays defined as long as the container exists (the next import removes the definitions of
        containers that are gone).
      - It needs Docker 23 or later on this host (runtime options), runc as the engine's default runtime and a
        local engine; V(auto) takes the engine's path elsewhere and says why in RV(method_reason), V(image_path)
        fails before anything is created.
    type: str
    choices: [auto, engine, image_path]
    default: auto
    version_added: 0.2.0
  warm:
    description:
      - Create a warm container - one that starts from the archive's checkpoint (its golden checkpoint, kept in
        its checkpoint place) on every start, C(docker start) and restart-policy restarts included, in the time
        an image-path restore takes. M(cryo.docker.docker_warm) rolls its golden checkpoint forward and turns it
        back into an ordinary container.
      - Needs the image path (see O(restore_method)); refused before anything is created where it cannot be
        taken.
    type: bool
    default: false
    version_added: 0.2.0
  deleted_files:
    description:
      - What to do with the files the container had deleted from its image (see above).
      - V(remove) deletes them in the new container (overlay2), and refuses an archive that records some on
        an engine where that cannot be done.
      - V(ignore) leaves them as the image has them, with a warning.
    type: str
    choices: [remove, ignore]
    default: remove
  cpu_check:
    description:
      - How this host's CPU is checked against the one the archive records, before anything is unpacked (see
        above). A refusal names the features this CPU lacks, and creates nothing.
      - V(full) refuses a CPU that lacks an instruction-set feature the source's CPU has, or whose FPU state CRIU
        finds laid out otherwise (other xsave features or frame size - a libc that measured the frame when the
        process started would overrun it); what C(criu cpuinfo check) checks by default (C(--cpu-cap) fpu and ins).
      - V(instructions) refuses only a CPU that lacks an instruction-set feature (C(--cpu-cap=^fpu)).
      - V(none) does not check, with a warning - for an operator who knows the container's programs use none of
        the features named.
    type: str
    choices: [full, instructions, none]
    default: full
    version_added: 0.2.0
  staging_dir:
    description:
      - Directory the archive is unpacked in (a private directory below it, removed afterwards). On the file
        system of the engine's data root the checkpoint is moved into place by a rename, with no second copy.
      - Default is C(<data root>/cryo-import), for example C(/var/lib/docker/cryo-import).
    type: path
  force:
    description:
      - Remove a container of that name made by an earlier import of this archive, whatever its state, and
        import again (it rewinds to the archive).
    type: bool
    default: false
  allow:
    description:
      - What the recorded configuration may ask for that reaches into this host, by name. The import compares
        the configuration with what a container gets by default and refuses, before anything is unpacked or
        created, everything listed below that O(allow) does not name; the failure names each item and the
        V(allow) name that permits it (check mode too).
      - V(binds) - bind mounts of host paths (C(HostConfig.Binds) with a host path, C(Mounts) of type bind or of
        any type but volume and tmpfs) and the volumes of other containers (C(VolumesFrom)).
      - V(volumes) - named volumes the archive does not carry - they would attach a volume that exists here
        already, another application's data.
      - V(capabilities) - capabilities added beyond Docker's default set (C(CapAdd)).
      - V(devices) - devices, device cgroup rules and device requests (GPUs).
      - V(privileged) - privileged mode (and a record that is not an object at all).
      - V(host_namespaces) - the host's PID, IPC, network, UTS or user namespace, the PID or IPC namespace of
        another container (C(container:NAME); a network holder's network namespace is normal and needs nothing),
        a cgroup namespace or cgroup parent of the archive's choosing. A container on the host network needs
        it. C(CgroupnsMode=host) is not listed - it is what Docker gives every container on a cgroup v1 host.
      - V(security_options) - seccomp unconfined or with a profile of the archive's, AppArmor other than
        C(docker-default), SELinux labels, C(systempaths=unconfined) or masked and read-only path lists shorter
        than Docker's, C(writable-cgroups), annotations, and any security option this module does not know.
      - V(sysctls) - kernel parameters.
      - V(drivers) - volume drivers other than V(local) (and V(local) with driver options, such as a bind mount
        in disguise), log drivers other than V(json-file), V(local) and V(none).
      - V(oom_score) - a negative OOM score adjustment (the host's OOM killer would pick host processes first).
      - V(links) - legacy links to other containers of this host (their environment is copied in).
      - A field of the wrong type or with a value this module does not know counts as host access of its kind.
      - The checkpoint's own images count too - CRIU restores each thread's capability sets, seccomp mode and OOM
        score adjustment from its core image, not from the configuration. A thread that holds a capability the
        configuration does not give is V(capabilities), one without the seccomp filter the container runs with is
        V(security_options), one with a lower OOM score adjustment is V(oom_score); a core image whose capability
        sets cannot be read is V(privileged).
      - "A container started with C(--security-opt seccomp=unconfined), as Docker's checkpoint documentation
        does, needs V(security_options) - C(allow: [security_options])."
    type: list
    elements: str
    choices: [binds, volumes, capabilities, devices, privileged, host_namespaces, security_options, sysctls, drivers,
              oom_score, links]
    default: []
    version_added: 0.2.0
  allowed_signers:
    description:
      - An OpenSSH allowed signers file (C(ssh-keygen(1)), section ALLOWED SIGNERS), one line per trusted key,
        for example C(ops@fleet namespaces="cryo.docker.archive" ssh-ed25519 AAAA...). With it the archive must
        carry a signature (O(signature_file)) made with one of those keys for the namespace
        C(cryo.docker.archive) - as M(cryo.docker.docker_checkpoint_export) makes with
        O(cryo.docker.docker_checkpoint_export#module:signing_key) - or it is refused before any of it is read as
        an archive.
      - The signature covers the whole file. C(ssh-keygen -Y verify) checks it (OpenSSH 8.1 or later - Debian and
        Ubuntu package openssh-client); the verification that follows reads the file again and refuses it if
        its sha256 differs from the one that was signed.
      - Without it, signed and unsigned archives are imported alike; the checksums, the name checks and O(allow)
        apply either way.
    type: path
    version_added: 0.2.0
  signature_file:
    description:
      - The archive's signature, read only with O(allowed_signers). Default is O(path) with C(.sig) appended,
        where M(cryo.docker.docker_checkpoint_export) writes it.
    type: path
    version_added: 0.2.0
notes:
  - The module runs on the engine's host - it stages the checkpoint into the engine's data root and verifies the
    restore through C(/proc).
  - The image is compared by id, or else by its layers under the recorded reference (an engine with the
    containerd image store gives an image another id); a reference that names another image here is left as it is,
    and the container is created from the image id.
  - A container with a network mode C(container:<name>) joins the network holder of that name, which must run
    here (M(cryo.docker.docker_network_holder)).
author:
  - cryo.docker contributors (!UNKNOWN)
seealso:
  - module: cryo.docker.docker_checkpoint_export
  - module: cryo.docker.docker_restore
  - module: cryo.docker.docker_network_holder
  - module: cryo.docker.docker_warm
"""

EXAMPLES = r"""
- name: Resume on this host a container exported elsewhere
  cryo.docker.docker_checkpoint_import:
    path: /srv/archives/cr-move.tar.zst

- name: Import with the checksum the export returned, under another name and port
  cryo.docker.docker_checkpoint_import:
    path: /srv/archives/web.tar.zst
    checksum: "{{ exported.archive.sha256 }}"
    container: web-2
    published_ports: ["8081:80"]

- name: Three warm clones of one archive, each on a free host port
  cryo.docker.docker_checkpoint_import:
    path: /srv/archives/search-warm.tar.zst
    container: "search-{{ item }}"
    publish: remap
  loop: [1, 2, 3]
  register: clones

- name: Say where each clone answers
  ansible.builtin.debug:
    msg: "{{ clones.results | map(attribute='container') | items2dict(key_name='name', value_name='bound_ports') }}"

- name: Import only what a key of the fleet signed, allowing the counter's seccomp=unconfined
  cryo.docker.docker_checkpoint_import:
    path: /srv/archives/cr-move.tar.zst
    allowed_signers: /etc/cryo/allowed_signers
    allow: [security_options]

- name: A pool of warm containers - each starts from the archive's checkpoint, on every start
  cryo.docker.docker_checkpoint_import:
    path: /srv/archives/search-warm.tar.zst
    container: "search-warm-{{ item }}"
    publish: remap
    warm: true
  loop: [1, 2, 3, 4]

- name: Create the container and stage its checkpoint, to restore later
  cryo.docker.docker_checkpoint_import:
    path: /srv/archives/cache.tar.zst
    restore: false

- name: Bring a Compose project moved from another host back whole (its networks exist here)
  cryo.docker.docker_checkpoint_import:
    path: /srv/archives/shop-move.tar
    allowed_signers: /etc/cryo/allowed_signers
"""

RETURN = r"""
group:
  description: A group archive's group - C(project), C(checkpoint), C(group) (its id), C(members) in the order they
    came back.
  returned: with a group archive
  type: dict
results:
  description: A group archive's members, each with C(container), C(action), C(steps), C(host_access), C(signature)
    as a lone import reports them.
  returned: with a group archive
  type: list
  elements: dict
restore:
  description: A group archive's restore - each member's entry as RV(cryo.docker.docker_restore#module:results)
    has it.
  returned: with a group archive
  type: list
  elements: dict
action:
  description: What the run did - V(import) (created and restored), V(replace) (removed an earlier, unfinished or
    forced, import of the archive first), V(finish) (an import cut after its restore had resumed the container
    left its restart policy held - V(no) - and the staged checkpoint; this run verified the container, put the
    recorded policy back and removed the checkpoint unless O(keep_checkpoint)), V(none).
  returned: success
  type: str
  sample: import
steps:
  description: What was done, in order (empty in check mode and when nothing was done).
  returned: success
  type: list
  elements: str
  sample: ["verified and unpacked the archive (1.2 MiB)", "created container cr (5f1c2a3b4d5e) from cryo-test/busybox:1",
           "applied the file changes (10.0 KiB)", "staged checkpoint move into the container",
           "restored it from checkpoint move (verified)"]
archive:
  description: The archive as verified.
  returned: success
  type: dict
  contains:
    path: {description: Its path., type: str}
    sha256:
      description: The sha256 of the file (C(sha256:HEX)), the value of the container's C(cryo.docker.archive) label.
      type: str
    size: {description: Its size in bytes., type: int}
    compression:
      description: V(zstd), V(gzip) or V(none), from its content.
      type: str
    checkpoint: {description: The checkpoint it holds., type: str}
    container: {description: The container it was exported from., type: str}
    created: {description: When it was written., type: str}
    source:
      description: The versions and architecture of the host that wrote it (see the export's RV(cryo.docker.docker_checkpoint_export#module:source)).
      type: dict
    image_carried: {description: Whether it carries the image., type: bool}
    members:
      description: How many members it holds.
      type: int
container:
  description: The container created (in check mode, the one that would be).
  returned: success
  type: dict
  contains:
    name:
      description: Its name.
      type: str
    id:
      description: Its id (null in check mode when it would be created).
      type: str
    status:
      description: Its engine status after the run.
      type: str
    running:
      description: Whether it runs.
      type: bool
    created:
      description: Whether this run created it.
      type: bool
    image:
      description: The image reference (or id) it is created from.
      type: str
    command:
      description: Its command (Cmd).
      type: list
      elements: str
    entrypoint:
      description: Its entrypoint.
      type: list
      elements: str
    user:
      description: Its user.
      type: str
    working_dir:
      description: Its working directory.
      type: str
    hostname:
      description: Its hostname (the recorded one).
      type: str
    network_mode:
      description: Its network mode.
      type: str
    networks:
      description: The networks it is on.
      type: list
      elements: str
    published_ports:
      description: Its published ports as created, C([ip:][host:]container/proto) (no host port - a free one, see
        RV(container.bound_ports)).
      type: list
      elements: str
    bound_ports:
      description: The host ports the engine bound for it, as C(ip:host:container/proto), once it runs (empty when it
        does not, and in check mode) - where a clone made with O(publish=remap) answers.
      type: list
      elements: str
      sample: ["127.0.0.1:32768:80/tcp"]
    mounts:
      description: Its mounts, as C(volume or host path:destination) - once it exists, those the engine reports for
        it (C(Mounts) of its inspect, bind mounts included); in check mode, those recorded in the archive.
      type: list
      elements: str
    effective:
      description:
        - What the container really has, from its inspect once it exists (null in check mode) - C(mounts) (type,
          source, destination, rw), C(capabilities_added), C(capabilities_dropped), C(privileged), C(namespaces)
          (network, pid, ipc, uts, userns, cgroupns), C(security_options), C(devices), C(sysctls), C(log_driver).
      type: dict
      sample:
        mounts: []
        capabilities_added: []
        capabilities_dropped: []
        privileged: false
        namespaces: {network: default, pid: private, ipc: private, uts: private, userns: default, cgroupns: default}
        security_options: ["seccomp=unconfined"]
        devices: []
        sysctls: {}
        log_driver: json-file
    restart_policy:
      description: The restart policy it gets back once it runs.
      type: str
    labels:
      description: Its labels, C(cryo.docker.archive) included.
      type: dict
    runtime:
      description: The runtime the engine runs it with - C(cryo-restore-<12 hex digits>) when it got a runtime of its
        own for the image-path restore (see O(restore_method)); null in check mode.
      type: str
      sample: cryo-restore-5f0c3a9b2e71
    warm:
      description: Whether it is a warm container (O(warm)).
      type: bool
host_access:
  description: What the archive's configuration asks for that reaches into this host (see O(allow)), each with
    C(allow), the V(allow) name that permits it, and C(item), what exactly. On success every one was allowed; on a
    refusal the failed result lists them too, with C(allow_missing), the names O(allow) lacks.
  returned: success, and a refusal for host access
  type: list
  elements: dict
  sample: [{allow: security_options, item: security option seccomp=unconfined}]
signature:
  description: The archive's signature as checked with O(allowed_signers) - C(principal) (the name allowed_signers
    gives the key), C(key) (its fingerprint), C(sha256) (of the file that was signed), C(signature) (the path of
    the signature file). Null without O(allowed_signers).
  returned: success
  type: dict
  sample: {principal: ops@fleet, key: "SHA256:3q2+7w...", sha256: "sha256:4c1e...", signature: /srv/a.tar.zst.sig}
image:
  description: The image.
  returned: success
  type: dict
  contains:
    reference:
      description: The recorded reference.
      type: str
    id:
      description: The recorded id.
      type: str
    loaded:
      description: Whether this run loaded it from the archive.
      type: bool
    would_load:
      description: Whether the engine lacks it and it is (or would be) loaded from the archive.
      type: bool
file_changes:
  description: The file changes the archive carries - changed, added, deleted, members.
  returned: success
  type: dict
volumes:
  description: The volumes the archive carries - name, destination, anonymous, create (whether it is created here).
  returned: success
  type: list
  elements: dict
restored:
  description: Whether the container was restored from the checkpoint by this run.
  returned: success
  type: bool
verified:
  description: Whether the running container was proven to run the checkpointed processes (null when it could not be told).
  returned: success
  type: bool
verification:
  description: How it was verified - see RV(cryo.docker.docker_restore#module:verification).
  returned: success
  type: dict
fallback_used:
  description: Whether the restore failed and the container was started afresh (O(fallback=cold_start)).
  returned: success
  type: bool
duration:
  description: Seconds from the restore request to the container running.
  returned: success
  type: float
method:
  description: The path the restore took - V(image_path) or V(engine) (see O(restore_method)); null when it was not
    restored.
  returned: success
  type: str
  sample: image_path
criu_options:
  description:
    - The CRIU options in force for the restore - those the archive's checkpoint recorded (checked as untrusted
      input - an unknown option or a value of the wrong type refuses the archive before anything is created), each
      overridden by the options given here, and the host's C(/etc/criu/runc.conf)'s.
  returned: when the container was restored
  type: dict
  sample: {tcp_established: true}
criu_options_from:
  description: Where each of RV(criu_options) came from - V(operator), V(checkpoint) or V(host).
  returned: when the container was restored
  type: dict
method_reason:
  description: Why O(restore_method=auto) took the engine's path.
  returned: when O(restore_method=auto) could not take the image path
  type: str
retries:
  description: The engine calls the restore made again, by reason (see RV(cryo.docker.docker_restore#module:retries)).
    Empty when no call was made twice or nothing was restored.
  returned: success
  type: dict
  sample: {"already exists": 1}
restart_policy_put_back:
  description: Whether this run put the recorded restart policy back (after its restore, or finishing an import
    that was cut after its restore).
  returned: success
  type: bool
cpu:
  description: What the CPU check found (see O(cpu_check)); also returned, as part of the failure, when it refused.
  returned: success
  type: dict
  contains:
    mode: {description: The O(cpu_check) it ran with., type: str}
    checked:
      description: Whether the CPU was checked (false with O(cpu_check=none), and for an archive that records no CPU).
      type: bool
    passed: {description: Whether this CPU passed (null when not checked)., type: bool}
    missing:
      description: The instruction-set features (by their C(/proc/cpuinfo) names) the source's CPU has and this one
        lacks; empty when it passed.
      type: list
      elements: str
    criu_check:
      description: V(passed), V(failed) or V(not run) (no C(cpuinfo.img) in the archive, or not checked) - the
        verdict of C(criu cpuinfo check).
      type: str
    criu_errors: {description: "CRIU's error lines when it failed, for example C(CPU xsave size mismatch (832/2696)).", type: list, elements: str}
    source: {description: "The source's CPU, C(vendor) and C(model), as recorded.", type: dict}
    host: {description: "This host's CPU, C(vendor) and C(model).", type: dict}
  sample: {"mode": "full", "checked": true, "passed": true, "missing": [], "criu_check": "passed", "criu_errors": [],
           "source": {"vendor": "AuthenticAMD", "model": "AMD EPYC"}, "host": {"vendor": "AuthenticAMD", "model": "AMD EPYC"}}
import_duration:
  description: Seconds spent before the restore - unpacking, image load, creation, files, staging.
  returned: success
  type: float
checkpoint_removed:
  description: Whether the staged checkpoint was removed after the verified restore (O(keep_checkpoint=false)).
  returned: when the container was restored
  type: bool
restart_policy:
  description: The container's restart policy after the run.
  returned: when the container was restored
  type: dict
stats:
  description: CRIU's restore statistics, see RV(cryo.docker.docker_restore#module:stats).
  returned: when the container was restored
  type: dict
reason:
  description: A short code for why the archive or the import was refused (for example V(member_damaged),
    V(absolute_path), V(parent_path), V(link_outside), V(device), V(damaged), V(architecture), V(criu),
    V(image_missing), V(name_taken), V(unrestorable), V(deleted_files), V(cpu)).
  returned: failure
  type: str
member:
  description: The archive member a refusal is about.
  returned: failure, when the refusal is about one member
  type: str
"""

from ansible_collections.cryo.docker.plugins.module_utils._common import run
from ansible_collections.cryo.docker.plugins.module_utils._criuconf import ARGUMENT_SPEC as CRIU_OPTIONS_SPEC
from ansible_collections.cryo.docker.plugins.module_utils._engine import docker_argument_spec
from ansible_collections.cryo.docker.plugins.module_utils._host_access import ALLOW_CHOICES
from ansible_collections.cryo.docker.plugins.module_utils._group_archive import import_manager


def main():
    argument_spec = docker_argument_spec(
        path=dict(type='path', required=True),
        container=dict(type='str'),
        checksum=dict(type='str'),
        published_ports=dict(type='list', elements='str'),
        publish=dict(type='str', default='keep', choices=['keep', 'remap', 'drop']),
        restore=dict(type='bool', default=True),
        verify=dict(type='bool', default=True),
        fallback=dict(type='str', default='fail', choices=['fail', 'cold_start']),
        keep_checkpoint=dict(type='bool', default=False),
        restore_method=dict(type='str', default='auto', choices=['auto', 'engine', 'image_path']),
        warm=dict(type='bool', default=False),
        deleted_files=dict(type='str', default='remove', choices=['remove', 'ignore']),
        cpu_check=dict(type='str', default='full', choices=['full', 'instructions', 'none']),
        staging_dir=dict(type='path'),
        force=dict(type='bool', default=False),
        allow=dict(type='list', elements='str', default=[], choices=list(ALLOW_CHOICES)),
        allowed_signers=dict(type='path'),
        signature_file=dict(type='path'),
        **CRIU_OPTIONS_SPEC
    )
    run(import_manager, argument_spec, mutually_exclusive=[('published_ports', 'publish')])


if __name__ == '__main__':
    main()
