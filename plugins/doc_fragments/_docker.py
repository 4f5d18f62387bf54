# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this fragment is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

from __future__ import annotations


class ModuleDocFragment:
    """What every module that talks to the Docker Engine shares: the connection options, and
    membership of the action group cryo.docker.docker (module_defaults group/cryo.docker.docker)."""

    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - The Docker Engine to talk to, as a URL (C(unix:///run/docker.sock), C(tcp://host:2376)).
      - If not set, the value of the E(DOCKER_HOST) environment variable is used.
      - Checkpoint files live on the engine's host; modules that read or write them
        (metadata, staging, verification) must run on that host.
    type: str
    default: unix:///var/run/docker.sock
    aliases: [docker_url]
  tls:
    description:
      - Connect using TLS without verifying the engine's certificate.
      - If not set, the value of the E(DOCKER_TLS) environment variable is used.
    type: bool
    default: false
  validate_certs:
    description:
      - Connect using TLS and verify the engine's certificate against O(ca_path).
      - If not set, the value of the E(DOCKER_TLS_VERIFY) environment variable is used.
    type: bool
    default: false
    aliases: [tls_verify]
  ca_path:
    description:
      - CA certificate used to verify the engine's certificate.
    type: path
    aliases: [ca_cert, tls_ca_cert]
  client_cert:
    description:
      - Client certificate presented to the engine.
    type: path
    aliases: [tls_client_cert, cert_path]
  client_key:
    description:
      - Key of O(client_cert).
    type: path
    aliases: [tls_client_key, key_path]
  api_version:
    description:
      - Docker Engine API version to use, or V(auto) to negotiate the highest both sides speak.
      - If not set, the value of the E(DOCKER_API_VERSION) environment variable is used.
    type: str
    default: auto
    aliases: [docker_api_version]
  timeout:
    description:
      - Seconds to wait for the engine, both for each API call and for a container to reach the
        state an operation waits for.
      - If not set, the value of the E(DOCKER_TIMEOUT) environment variable is used.
    type: int
    default: 60
attributes:
  action_group:
    description: Use C(group/cryo.docker.docker) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - cryo.docker.docker
requirements:
  - docker (Python SDK) >= 5.0 on the host that runs the module
notes:
  - Checkpoint endpoints exist only when the engine runs in experimental mode;
    the P(cryo.docker.engine#role) role turns it on.
"""

    # The container and checkpoint that docker_checkpoint and docker_restore act on, and how these
    # modules behave (with cryo.docker._attributes for what the attributes mean).
    CHECKPOINT = r"""
notes:
  - One operation on a container at a time - a checkpoint, a restore or a removal holds the container's
    lock (an C(flock) on C(containers/<id>/cryo-operation.lock) in the engine's data root, or on
    C(/run/cryo.docker/<id>.lock) for a remote engine) from its plan to its end. A second one started
    meanwhile, by this controller or another on the same host, fails at once, changes nothing and names the
    run that holds the lock (C(busy), C(lock_path) and C(lock_owner) in the result). The kernel releases the
    lock when its run ends, however it ends. Check mode takes no lock.
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: partial
    details:
      - With O(force=true) the module acts on every run - it takes the checkpoint again, or stops and
        restores (rewinds) a running container.
options:
  container:
    description:
      - Name or id of the container.
      - Exactly one of O(container), O(containers) and O(project) is required.
    type: str
  containers:
    description:
      - Names or ids of several containers, worked on concurrently (at most O(parallel) at a time),
        each as O(container) would be, with the same other options.
      - Each gets its own entry in RV(results); one container's failure does not stop or hide the
        others (a container whose checkpoint failed keeps running). The task fails when any did.
    type: list
    elements: str
  project:
    description:
      - A Compose project, worked on as one group (see O(group)) - its containers are those with the label
        C(com.docker.compose.project) of this name (C(docker compose run) one-offs left out), on the engine of
        O(docker_host). No C(docker compose) binary is needed.
      - The members come back in the order of their dependencies - Compose's C(com.docker.compose.depends_on)
        label, and a container whose network namespace another joins (C(network_mode container:)) first.
    type: str
  group:
    description:
      - Work on O(containers) as one group - an application, checkpointed as one point in time.
      - A checkpoint freezes every member (the engine's freezer, as C(docker pause)) before the first is
        dumped; none runs again until all are dumped - then all are thawed together
        (O(cryo.docker.docker_checkpoint#module:leave_running=true))
        or killed while still frozen (the default - they stop at the checkpoint), so that nothing a member
        does after the dump is lost. One member that cannot be checkpointed refuses the group - every member
        is thawed and runs on, and what the others' dumps wrote is removed. RV(group) says how long the
        members were frozen.
      - A restore brings the members back in the order of their dependencies, each verified, and only
        from checkpoints taken together as this group. One member that cannot be restored leaves every
        member stopped with its checkpoint (the ones restored before it are killed again), never half a
        running application, unless O(cryo.docker.docker_restore#module:allow_partial=true).
      - Implied by O(project).
    type: bool
    default: false
  parallel:
    description:
      - How many of O(containers) are worked on at the same time.
      - Default is twice the number of CPUs of the host that runs the module, at least 4 (each call
        mostly waits for the engine).
    type: int
  checkpoint:
    description:
      - Name of the checkpoint. The engine accepts names that start with a letter or digit,
        followed by at least one letter, digit, C(_), C(.) or C(-).
    type: str
    required: true
"""
