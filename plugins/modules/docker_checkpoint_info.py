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

from ansible_collections.cryo.docker.plugins.module_utils import _checkpoint as store
from ansible_collections.cryo.docker.plugins.module_utils._common import Manager, check_checkpoint_dir, run
from ansible_collections.cryo.docker.plugins.module_utils._engine import connect, docker_argument_spec


class CheckpointInfo(Manager):
    """An information module: plan reads the engine and the checkpoint directories, report lists them."""

    def __init__(self, module):
        super().__init__(module)
        check_checkpoint_dir(self.params['checkpoint_dir'])
        self.engine = connect(self.params)
        self.engine.require_experimental()
        self.checkpoints = []

    def plan(self):
        container, checkpoint_dir = self.params['container'], self.params['checkpoint_dir']
        if checkpoint_dir and not container:
            self.checkpoints = [store.describe(os.path.join(checkpoint_dir, name), name)
                                for name in store.list_dir(checkpoint_dir)]
            return
        if container:
            targets = [self.engine.inspect(container)]
        else:
            targets = [self.engine.inspect(entry['Id']) for entry in self.engine.containers(all=True)]
        data_root = self.engine.data_root()
        for info in targets:
            container_id, name = info['Id'], info['Name'].lstrip('/')
            if checkpoint_dir:
                names = store.list_dir(checkpoint_dir)
            else:
                names = self.engine.list_checkpoints(container_id)
            base = checkpoint_dir or store.engine_dir(data_root, container_id)
            self.checkpoints.extend(store.describe(os.path.join(base, checkpoint), checkpoint, name, container_id)
                                    for checkpoint in names)

    def report(self):
        return dict(changed=False,
                    checkpoints=sorted(self.checkpoints, key=lambda entry: (entry['container'] or '', entry['name'])))


def main():
    argument_spec = docker_argument_spec(
        container=dict(type='str'),
        checkpoint_dir=dict(type='path'),
    )
    run(CheckpointInfo, argument_spec)


if __name__ == '__main__':
    main()
