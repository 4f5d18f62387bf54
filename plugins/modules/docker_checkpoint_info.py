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
  - Never changes anything.
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
extends_documentation_fragment:
  - cryo.docker.docker
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  action_group:
    version_added: 0.1.0
    membership: [cryo.docker.docker]
  check_mode:
    support: full
    details: Never changes anything.
  diff_mode:
    support: N/A
    details: Never changes anything.
  platform:
    platforms: posix
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

- name: Every checkpoint on this host, largest first
  cryo.docker.docker_checkpoint_info:
  register: all_checkpoints

- name: Show them
  ansible.builtin.debug:
    msg: "{{ item.container }}/{{ item.name }}: {{ item.size | human_readable }}"
  loop: "{{ all_checkpoints.checkpoints | sort(attribute='size', reverse=true) }}"
  loop_control:
    label: "{{ item.container }}/{{ item.name }}"

- name: Forensic snapshots kept in a directory
  cryo.docker.docker_checkpoint_info:
    checkpoint_dir: /srv/forensics
"""

RETURN = r"""
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
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.module_utils._engine import (
    EngineError,
    check_checkpoint_dir,
    connect,
    docker_argument_spec,
)


def list_checkpoints(engine, container, checkpoint_dir):
    if checkpoint_dir and not container:
        return [store.describe(os.path.join(checkpoint_dir, name), name) for name in store.list_dir(checkpoint_dir)]
    if container:
        targets = [engine.inspect(container)]
    else:
        targets = [engine.inspect(entry['Id']) for entry in engine.containers(all=True)]
    data_root = engine.data_root()
    found = []
    for info in targets:
        container_id, name = info['Id'], info['Name'].lstrip('/')
        if checkpoint_dir:
            names = store.list_dir(checkpoint_dir)
        else:
            names = engine.list_checkpoints(container_id)
        base = checkpoint_dir or store.engine_dir(data_root, container_id)
        found.extend(store.describe(os.path.join(base, checkpoint), checkpoint, name, container_id)
                     for checkpoint in names)
    return sorted(found, key=lambda entry: (entry['container'] or '', entry['name']))


def main():
    argument_spec = docker_argument_spec()
    argument_spec.update(
        container=dict(type='str'),
        checkpoint_dir=dict(type='path'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_checkpoint_dir(module, module.params['checkpoint_dir'])
    engine = connect(module)
    try:
        engine.require_experimental()
        checkpoints = list_checkpoints(engine, module.params['container'], module.params['checkpoint_dir'])
    except EngineError as exc:
        module.fail_json(**exc.fail_kwargs())
    module.exit_json(changed=False, checkpoints=checkpoints)


if __name__ == '__main__':
    main()
