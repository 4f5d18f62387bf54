# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Options shared by every module that talks to the Docker Engine."""

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
requirements:
  - docker (Python SDK) >= 5.0 on the host that runs the module
notes:
  - Checkpoint endpoints exist only when the engine runs in experimental mode;
    the P(cryo.docker.engine#role) role turns it on.
"""
