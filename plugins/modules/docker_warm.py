#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_warm
short_description: Make a Docker container start from its golden checkpoint on every start, or not
version_added: 0.2.0
description:
  - A warm container starts from its golden checkpoint - one of its own checkpoints - on every start, C(docker
    start) and restart-policy restarts included, and after an engine restart too - its runtime restores it in place
    from that checkpoint (containerd's C(CriuImagePath)), at disk speed, instead of starting its application from
    the beginning. A pool of warm containers answers in the time of a restore, not of an application's start.
  - Only a container created with a runtime of its own can be warm - a container's runtime is fixed when it is
    created. M(cryo.docker.docker_checkpoint_import) creates one (with
    O(cryo.docker.docker_checkpoint_import#module:warm=true) already warm, on the archive's checkpoint); any other
    container is refused with what to do.
  - V(warm) arms the container's runtime on O(checkpoint) (its golden checkpoint; by default the one it has). A
    new checkpoint taken with M(cryo.docker.docker_checkpoint) and O(cryo.docker.docker_checkpoint#module:leave_running=true)
    rolls the golden checkpoint forward - the next start begins there; the previous one is kept (remove it with
    M(cryo.docker.docker_checkpoint), which refuses to remove a warm container's golden checkpoint).
  - V(cold) disarms it - the container is an ordinary container again and starts afresh; its checkpoints are kept.
  - Neither stops nor starts the container - only its next start changes. The runtime's definition lives in the
    engine's C(daemon.json) (every other key kept), reloaded with SIGHUP; the engine's reload event confirms it.
  - Needs Docker 23 or later, on this host.
extends_documentation_fragment:
  - cryo.docker._docker
  - cryo.docker._attributes
  - cryo.docker._attributes.action
attributes:
  idempotent:
    support: full
options:
  container:
    description: Name or id of the container.
    type: str
    required: true
  state:
    description:
      - V(warm) - every start restores O(checkpoint).
      - V(cold) - every start starts afresh.
    type: str
    choices: [warm, cold]
    default: warm
  checkpoint:
    description:
      - The golden checkpoint, one of the container's own checkpoints (in the engine's place). Default - the one it
        has now; required the first time.
    type: str
seealso:
  - module: cryo.docker.docker_checkpoint_import
  - module: cryo.docker.docker_checkpoint
  - module: cryo.docker.docker_restore
author:
  - cryo.docker contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Roll the golden checkpoint of a warm container forward - take a new one, running
  cryo.docker.docker_checkpoint:
    container: search-warm-1
    checkpoint: golden-2026-12-07
    leave_running: true

- name: Its next start begins at the new checkpoint
  cryo.docker.docker_warm:
    container: search-warm-1
    checkpoint: golden-2026-12-07

- name: Turn it back into an ordinary container, which starts afresh
  cryo.docker.docker_warm:
    container: search-warm-1
    state: cold
"""

RETURN = r"""
warm:
  description: Whether the container starts from its golden checkpoint after the run.
  returned: success
  type: bool
  sample: true
checkpoint:
  description: Its golden checkpoint after the run (null when it is cold).
  returned: success
  type: str
  sample: golden-2026-12-07
previous_checkpoint:
  description: Its golden checkpoint before the run (null when it was cold).
  returned: success
  type: str
  sample: warm
container:
  description: The container.
  returned: success
  type: dict
  contains:
    name:
      description: Its name.
      type: str
    id:
      description: Its full id.
      type: str
    runtime:
      description: Its runtime (its own, C(cryo-restore-<12 hex digits>)).
      type: str
      sample: cryo-restore-5f0c3a9b2e71
    status:
      description: Its engine status (unchanged by this module).
      type: str
    running:
      description: Whether it runs.
      type: bool
"""

from ansible_collections.cryo.docker.plugins.module_utils._common import run
from ansible_collections.cryo.docker.plugins.module_utils._engine import docker_argument_spec
from ansible_collections.cryo.docker.plugins.module_utils._warm import WarmManager


def main():
    argument_spec = docker_argument_spec(
        container=dict(type='str', required=True),
        state=dict(type='str', default='warm', choices=['warm', 'cold']),
        checkpoint=dict(type='str'),
    )
    run(WarmManager, argument_spec)


if __name__ == '__main__':
    main()
