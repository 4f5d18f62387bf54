#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_checkpoint_export
short_description: Write a container's checkpoint, configuration and file changes into one portable archive
version_added: 0.2.0
description:
  - Writes one archive file that carries a Docker container to any host with a checkpoint-ready engine,
    where M(cryo.docker.docker_checkpoint_import) creates the container again and resumes it. Docker itself
    has no export of a checkpoint, and nothing that carries a container's file changes with it.
  - "The checkpoint - taken by the module when there is none of that name (with the guarantees of
    M(cryo.docker.docker_checkpoint): the restart policy held, a failure leaves the container running, a
    refusal on an engine that cannot restore it), or an existing one by name (also one in O(checkpoint_dir))."
  - "What creates the container again - its C(Config) and C(HostConfig) as the Engine API gives them (image,
    command, entrypoint, environment, labels, user, working directory, hostname, mounts, published ports,
    resources, capabilities, security options, runtime), its networks with their static addresses and
    aliases, and the restart policy recorded with the checkpoint (a held policy is C(no) on the container).
    A network mode C(container:<id>) is recorded as C(container:<name>), the name the holder has on any host."
  - "Its file changes since it was created (the writable layer), read through the Engine API -
    C(GET /containers/{id}/changes) lists them and C(GET /containers/{id}/archive) reads the changed and
    added files (an added directory in one call, a modified directory of the image only through its changed
    entries). The deleted files are listed in C(deleted.files). No docker CLI is run."
  - Optionally the contents of its volumes (O(include_volumes)) and the image itself (O(include_image)),
    for a host that does not have it. The image's reference, id and layers are always recorded.
  - A manifest with the size and sha256 of every member, the Docker Engine, containerd, runc, CRIU and
    kernel versions and the CPU architecture; the import refuses an archive that does not match it.
  - "This host's CPU - C(criu cpuinfo dump)'s image of it (member C(cpuinfo.img), made by the engine's CRIU in a
    private temporary directory) and the feature flags of C(/proc/cpuinfo) (in the manifest, RV(source)), covered by
    the checksums and the signature like every member. The import refuses a host whose CPU lacks an instruction
    set of this one's, before it unpacks anything: a restored process would die with SIGILL (see
    O(cryo.docker.docker_checkpoint_import#module:cpu_check))."
  - "The layout is the one C(checkpointctl) and Podman's C(checkpoint --export) use where they overlap
    (C(checkpoint/), C(spec.dump), C(config.dump), C(stats-dump), C(rootfs-diff.tar), C(deleted.files)), so
    C(checkpointctl inspect ARCHIVE --ps-tree) shows the process tree. C(spec.dump) is the container's OCI spec,
    the C(config.json) of its task bundle, read through runc's state on the engine's host while the container
    runs; for a container that is already stopped at its checkpoint the bundle is gone, and the spec is built
    from its inspect (RV(spec_source) says which)."
  - "The archive is written atomically - into a temporary file (mode C(0600)) in the destination directory,
    renamed over O(path) once complete and flushed to disk; a failure or an interruption leaves no partial
    archive (a later run removes the temporary files an interrupted one left). The module never writes
    through a symbolic link at O(path). The directory is checked before anything is done (it must be
    writable, with room for the checkpoint - or the container's memory, when the checkpoint is to be taken -
    and the image), and again with the exact sizes before the archive is written."
  - "Idempotent - an archive at O(path) of this checkpoint (the same container, checkpoint name and
    checkpoint time, as the archive's first member records them) is left alone, and so is an archive of
    this container's checkpoint of that name when the checkpoint is gone (it is the copy that is left). An
    archive of an earlier checkpoint of the same name is written over. Any other file at O(path) is an error
    unless O(force=true)."
  - Archives hold the memory of the container's processes, secrets included, and its files. They are
    written as C(0600) files, owned by the user the module runs as (root).
attributes:
  check_mode:
    details:
      - Predicts whether an archive (and a checkpoint) would be written; nothing is taken, read into a spool or written.
  idempotent:
    support: partial
    details:
      - With O(force=true) the archive is written again on every run.
extends_documentation_fragment:
  - cryo.docker._docker
  - cryo.docker._criu
  - cryo.docker._attributes
  - cryo.docker._attributes.action
options:
  container:
    description:
      - Name or id of the container to export.
      - Exactly one of O(container), O(containers) and O(project) is required.
    type: str
  project:
    description:
      - Export a Compose project as one group archive - one file that M(cryo.docker.docker_checkpoint_import)
        brings back whole on another host, as the same project (see
        O(cryo.docker.docker_checkpoint#module:project) for who the members are).
      - The group's checkpoint is taken as one point in time when the members do not have it (every member frozen
        before the first is dumped), then each member is exported as O(container) would be, with the same options
        (O(signing_key) signs each member's archive), and the archives go into one uncompressed tar at O(path) -
        C(cryo-group.json) (the project, checkpoint, group id and members in the order they come back), C(members/<name>.tar.zst)
        (and C(.sig)) and C(manifest.json). Each member is the archive C(checkpointctl) and the import read alone;
        Kubernetes' pod layout is not used - it carries a CRI pod sandbox that Docker does not have.
      - Up to date (unchanged) when O(path) holds the group archive of the checkpoint the members have now.
    type: str
  containers:
    description:
      - Export these containers as one group archive, as O(project) does for a Compose project.
    type: list
    elements: str
  checkpoint:
    description:
      - Name of the checkpoint to export. Taken when the container has none of that name (the container must
        be running then).
    type: str
    required: true
  path:
    description:
      - Absolute path of the archive file to write. Its directory is created (C(0700)) if missing.
      - The usual suffix follows O(compression) - C(.tar.zst), C(.tar.gz) or C(.tar); the importer recognises the
        compression by the file's content, not its name.
    type: path
    required: true
  checkpoint_dir:
    description:
      - Absolute path of the directory that holds the checkpoint (as C(<checkpoint_dir>/<checkpoint>)), or that
        it is taken into, instead of the engine's own place. See M(cryo.docker.docker_checkpoint).
    type: path
  leave_running:
    description:
      - When the module takes the checkpoint, keep the container running (a snapshot to clone or carry
        elsewhere). By default it stops at the checkpoint, as for a move.
      - With V(true) the file changes are read after the checkpoint, while the container runs on - a file it
        writes in between is newer in the archive than its memory.
    type: bool
    default: false
  method:
    description:
      - How a checkpoint the module takes is taken - see
        O(cryo.docker.docker_checkpoint#module:method). V(runtime) and V(auto) keep CRIU's C(stats-dump),
        which then goes into the archive for C(checkpointctl inspect --stats).
    type: str
    choices: [auto, engine, runtime]
    default: auto
  allow_unrestorable:
    description:
      - Take the checkpoint even though this engine cannot restore it - see
        O(cryo.docker.docker_checkpoint#module:allow_unrestorable). An archive is meant for another host,
        which may be able to (for example from a Docker 28 host to a Docker 20.10 one); the import checks its
        own engine before it creates anything.
    type: bool
    default: false
  compression:
    description:
      - How the archive is compressed.
      - V(zstd) through the C(zstd) program (C(zstd -T0), all CPUs; Debian and Ubuntu package C(zstd)) - fast,
        and read by C(checkpointctl) 1.3 (tried with Debian's 1.3.0).
      - V(gzip) through Python's gzip - slower, and readable everywhere.
      - V(none) - an uncompressed tar, the fastest to write when the network or disk is faster than the CPU.
      - V(auto) - V(zstd) when the C(zstd) program is on the PATH of the host, else V(gzip).
      - The host that imports the archive needs C(zstd) too for a V(zstd) archive.
    type: str
    choices: [auto, zstd, gzip, none]
    default: auto
  compression_level:
    description:
      - The compression level - 1 (fastest) to 19 for zstd, 1 to 9 for gzip. Default 3 for zstd (its own
        default, fast) and 6 for gzip. Use 1 when the export is on the critical path of a move.
    type: int
  include_volumes:
    description:
      - Also carry the contents of the container's volumes (named and anonymous), read through the archive
        endpoint at each mount's destination. Bind mounts are never carried - they belong to the host.
      - On import, named volumes are created (labelled) and filled; a named volume that exists there already
        and was not made by an import of the same archive is an error.
    type: bool
    default: false
  include_image:
    description:
      - Also carry the image (C(GET /images/{id}/get), docker save format), for a host that does not have it.
      - Without it the import needs the image on its engine - the same id, or the same layers under the same
        reference - and refuses before creating anything when it is missing.
    type: bool
    default: false
  signing_key:
    description:
      - Sign the archive with this SSH key - the path of a private key file without a passphrase, or of a public
        key whose private half is in the C(ssh-agent) of C(SSH_AUTH_SOCK) - through C(ssh-keygen -Y sign) for
        the namespace C(cryo.docker.archive) (OpenSSH 8.1 or later; Debian and Ubuntu package openssh-client).
      - The signature covers the whole file and is written beside it as O(path) with C(.sig) appended (atomically,
        flushed to disk). M(cryo.docker.docker_checkpoint_import) with
        O(cryo.docker.docker_checkpoint_import#module:allowed_signers) refuses an archive that is not signed by a
        key it lists, before it reads any of it as an archive.
      - An archive that is up to date but lacks a signature by this key is signed (changed); without
        O(signing_key) a signature left beside an archive this run writes again is removed, since it no longer
        matches.
    type: path
    version_added: 0.2.0
  force:
    description:
      - Write the archive even when O(path) already holds one of this checkpoint, or holds another file.
      - It does not take the checkpoint again; use M(cryo.docker.docker_checkpoint) with C(force) for that.
    type: bool
    default: false
notes:
  - The module runs on the engine's host - it reads the checkpoint's files, runc's state and dockerd's PATH
    there.
  - checkpointctl 1.3.0 from Debian (trixie) needs glibc 2.38; on Debian 12 it runs through trixie's own loader
    (C(ld-linux-x86-64.so.2 --library-path <libc6 of trixie> checkpointctl inspect ARCHIVE --ps-tree)).
  - "Not carried: a directory's own owner and mode change when it is a directory of the image (its changed
    entries are carried); bind-mounted host files; the container's logs; the contents of C(/dev/shm) beyond what
    CRIU dumps (it dumps the tmpfs mounts it sees, C(/dev/shm) included)."
seealso:
  - module: cryo.docker.docker_checkpoint_import
  - module: cryo.docker.docker_checkpoint
  - name: checkpointctl
    description: Shows what a checkpoint archive holds (process tree, open files, sockets, statistics).
    link: https://github.com/checkpoint-restore/checkpointctl
  - name: Podman's checkpoint export
    description: The archive layout (C(checkpoint/), C(spec.dump), C(config.dump), C(rootfs-diff.tar), C(deleted.files)) this one follows.
    link: https://docs.podman.io/en/latest/markdown/podman-container-checkpoint.1.html
author:
  - cryo.docker contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Freeze the counter and write it into one archive, image included
  cryo.docker.docker_checkpoint_export:
    container: cr
    checkpoint: move
    path: /srv/archives/cr-move.tar.zst
    include_image: true

- name: Snapshot a live web server with its run-time files and volumes (it keeps running)
  cryo.docker.docker_checkpoint_export:
    container: web
    checkpoint: "snap-{{ ansible_date_time.epoch }}"
    leave_running: true
    include_volumes: true
    path: "/srv/archives/web-{{ ansible_date_time.epoch }}.tar.zst"

- name: Export an existing checkpoint as a gzip archive for a host without zstd
  cryo.docker.docker_checkpoint_export:
    container: search
    checkpoint: warm
    compression: gzip
    path: /srv/archives/search-warm.tar.gz

- name: Export and sign with the fleet's key, for an import that requires it
  cryo.docker.docker_checkpoint_export:
    container: cr
    checkpoint: move
    path: /srv/archives/cr-move.tar.zst
    signing_key: /etc/cryo/archive-signing-key

- name: Fastest export on the critical path of a move
  cryo.docker.docker_checkpoint_export:
    container: cache
    checkpoint: move
    method: runtime
    compression_level: 1
    path: /var/lib/cryo/archives/cache.tar.zst

- name: Export a Compose project as one group archive, to move it to another host whole
  cryo.docker.docker_checkpoint_export:
    project: shop
    checkpoint: move
    path: /srv/archives/shop-move.tar
    signing_key: /etc/cryo/signing_key
"""

RETURN = r"""
group:
  description: With O(project) or O(containers) - the group, its C(members) in the order they come back, and when
    its checkpoint was taken by this run, C(frozen_seconds).
  returned: with O(project) or O(containers)
  type: dict
  sample: {project: shop, members: [shop-redis-1, shop-worker-1, shop-web-1], checkpoint: move, frozen_seconds: 0.7}
results:
  description: With O(project) or O(containers) - each member's archive (RV(archive)) and signature as a lone export
    reports them.
  returned: with O(project) or O(containers), when the group archive was written
  type: list
  elements: dict
archive:
  description: The archive at O(path) after the run (in check mode, what would be written - C(size) and C(sha256) null).
  returned: success
  type: dict
  contains:
    path:
      description: Its path.
      type: str
      sample: /srv/archives/cr-move.tar.zst
    size:
      description: Its size in bytes.
      type: int
      sample: 1048576
    sha256:
      description: The sha256 of the file, as C(sha256:HEX) - what the import labels its container with, and what
        O(cryo.docker.docker_checkpoint_import#module:checksum) takes.
      type: str
      sample: sha256:4c1e0e4f3d0b7e...
    compression:
      description: V(zstd), V(gzip) or V(none).
      type: str
    members:
      description: How many members it holds.
      type: int
    content_size:
      description: The bytes of its members before compression.
      type: int
    created:
      description: When it was written (UTC).
      type: str
    checkpoint:
      description: The checkpoint it holds.
      type: str
    container:
      description: The container it was exported from.
      type: str
    image_carried:
      description: Whether it carries the image.
      type: bool
    volumes_carried:
      description: How many volumes' contents it carries.
      type: int
signature:
  description: The signature made with O(signing_key) - C(path) (O(path) with C(.sig)), C(key) (the key's
    fingerprint) and C(sha256) (of the file signed); null without O(signing_key). In check mode, C(key) and
    C(sha256) are null when a signature would be made.
  returned: success
  type: dict
  sample: {path: /srv/archives/cr-move.tar.zst.sig, key: "SHA256:3q2+7w...", sha256: "sha256:4c1e..."}
checkpoint:
  description: The checkpoint exported, with the fields of RV(cryo.docker.docker_checkpoint#module:checkpoint).
  returned: success
  type: dict
checkpoint_taken:
  description: Whether this run took the checkpoint (it did not exist).
  returned: success
  type: bool
retries:
  description: The engine calls the checkpoint made again, by reason (see RV(cryo.docker.docker_checkpoint#module:retries)).
    Empty when no call was made twice or no checkpoint was taken.
  returned: success
  type: dict
  sample: {"already exists": 1}
checkpoint_duration:
  description: Seconds the checkpoint took.
  returned: when the checkpoint was taken
  type: float
method:
  description: The path the checkpoint was taken through (V(engine) or V(runtime)).
  returned: when the checkpoint was taken
  type: str
criu_options:
  description:
    - The CRIU options in force for the checkpoint (see RV(cryo.docker.docker_checkpoint#module:criu_options)); the
      archive carries them in the checkpoint's metadata, and the import restores with them.
  returned: when the checkpoint was taken
  type: dict
  sample: {tcp_established: true}
criu_options_from:
  description: Where each of RV(criu_options) came from - V(operator) or V(host).
  returned: when the checkpoint was taken
  type: dict
method_reason:
  description: Why O(method=auto) took the engine path.
  returned: when O(method=auto) could not take the runtime path
  type: str
stats:
  description: CRIU's dump statistics, see RV(cryo.docker.docker_checkpoint#module:stats).
  returned: when the checkpoint was taken
  type: dict
duration:
  description: Seconds spent writing the archive (reading the file changes, volumes and image included), after the checkpoint.
  returned: success
  type: float
  sample: 0.82
total_duration:
  description: Seconds of the whole export, the checkpoint included.
  returned: when the archive was written
  type: float
spec_source:
  description: Where C(spec.dump) came from - C(bundle <path of config.json>), or V(inspect) when the container's
    task bundle was gone (the container was already stopped at its checkpoint) and the spec was built from its inspect.
  returned: when the archive was written
  type: str
  sample: bundle /run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/3db2.../config.json
file_changes:
  description: The writable layer as carried.
  returned: when the archive was written
  type: dict
  contains:
    changed:
      description: Changed paths (files and directories of the image).
      type: int
    added:
      description: Added paths.
      type: int
    deleted:
      description: Deleted paths (listed in C(deleted.files)).
      type: int
    members:
      description: Entries in C(rootfs-diff.tar).
      type: int
    size:
      description: Bytes of C(rootfs-diff.tar).
      type: int
image:
  description: The container's image.
  returned: when the archive was written
  type: dict
  contains:
    reference:
      description: The reference the container was created from.
      type: str
      sample: cryo-test/busybox:1
    id:
      description: Its id.
      type: str
    carried:
      description: Whether the archive carries it.
      type: bool
    size:
      description: Bytes of the image in the archive (null when not carried).
      type: int
volumes:
  description: The volumes whose contents the archive carries - name, destination, member, anonymous.
  returned: when the archive was written
  type: list
  elements: dict
source:
  description:
    - The versions and architecture the manifest records - engine, api_version, containerd, runc, criu,
      kernel, os, architecture, machine, hostname, criu_path.
    - And C(cpu), this host's CPU, which M(cryo.docker.docker_checkpoint_import) checks before it unpacks anything
      (see its O(cryo.docker.docker_checkpoint_import#module:cpu_check)) - C(vendor), C(model) and C(flags) (the
      feature flags of C(/proc/cpuinfo)); C(image), whether the archive carries C(criu cpuinfo dump)'s image of it
      (member C(cpuinfo.img)), and C(image_error), why not (a warning says so too; the import then compares the
      flags alone).
  returned: when the archive was written
  type: dict
  sample: {engine: 20.10.24+dfsg1, containerd: 1.6.20~ds1, runc: 1.1.5+ds1, criu: 4.2.1, architecture: amd64,
           cpu: {vendor: AuthenticAMD, model: AMD EPYC, flags: [fpu, sse2, avx2, sha_ni], image: true, image_error: null}}
"""

from ansible_collections.cryo.docker.plugins.module_utils._common import run
from ansible_collections.cryo.docker.plugins.module_utils._criuconf import ARGUMENT_SPEC as CRIU_OPTIONS_SPEC
from ansible_collections.cryo.docker.plugins.module_utils._engine import docker_argument_spec
from ansible_collections.cryo.docker.plugins.module_utils._group_archive import export_manager


def main():
    argument_spec = docker_argument_spec(
        container=dict(type='str'),
        containers=dict(type='list', elements='str'),
        project=dict(type='str'),
        checkpoint=dict(type='str', required=True),
        path=dict(type='path', required=True),
        force=dict(type='bool', default=False),
        checkpoint_dir=dict(type='path'),
        leave_running=dict(type='bool', default=False),
        method=dict(type='str', default='auto', choices=['auto', 'engine', 'runtime']),
        allow_unrestorable=dict(type='bool', default=False),
        compression=dict(type='str', default='auto', choices=['auto', 'zstd', 'gzip', 'none']),
        compression_level=dict(type='int'),
        include_volumes=dict(type='bool', default=False),
        include_image=dict(type='bool', default=False),
        signing_key=dict(type='path'),
        **CRIU_OPTIONS_SPEC
    )
    run(export_manager, argument_spec, mutually_exclusive=[('container', 'containers', 'project')],
        required_one_of=[('container', 'containers', 'project')])


if __name__ == '__main__':
    main()
