"""Engine answers turned into operator messages, on the answers recorded in ENVIRONMENT.md."""

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _engine
from ansible_collections.cryo.docker.plugins.module_utils._common import CHECKPOINT_NAME_RE
from ansible_collections.cryo.docker.plugins.module_utils._engine import Engine, EngineError

CID = 'eab16c0ecb20704e21454505a9b938ac589c20017d6e9f29d2a8bec778086648'


class Response:
    def __init__(self, status, message=''):
        self.status_code = status
        self.text = message

    def json(self):
        return {'message': self.text} if self.status_code >= 400 else []


class FakeClient:
    """Plays back engine answers: a list of Response per call. Only the SDK's public surface:
    base_url, api_version and the requests.Session methods get, post and delete."""

    base_url = 'http+docker://localhost'
    api_version = '1.41'

    def __init__(self, answers, running=True):
        self.answers = list(answers)
        self.calls = []
        self.running = running

    def _answer(self, method, url, **kwargs):
        if 'json' in kwargs:
            kwargs['data'] = kwargs.pop('json')
        self.calls.append((method, url, kwargs))
        return self.answers.pop(0)

    def get(self, url, **kwargs):
        return self._answer('GET', url, **kwargs)

    def delete(self, url, **kwargs):
        return self._answer('DELETE', url, **kwargs)

    def post(self, url, **kwargs):
        return self._answer('POST', url, **kwargs)

    def inspect_container(self, container):
        return {'Id': CID, 'State': {'Running': self.running}}


def engine(answers, running=True):
    return Engine({'docker_host': 'unix:///var/run/docker.sock', 'timeout': 5}, client=FakeClient(answers, running))


@pytest.mark.parametrize('name,ok', [('checkpoint1', True), ('cp.1_a-b', True), ('a', False), ('-bad', False),
                                     ('.x', False), ('with space', False), ('', False)])
def test_checkpoint_name_rule(name, ok):
    assert bool(CHECKPOINT_NAME_RE.match(name)) is ok


@pytest.mark.parametrize('message,transient', [
    ('failed to upload checkpoint to containerd: commit failed: content sha256:ab already exists', True),
    ('rpc error: code = Unavailable desc = transport is closing', True),
    ('cannot checkpoint container X: checkpoint with name cp1 already exists for container X', False),
    ('Container X not running', False),
    ('', False),
])
def test_transient_errors(message, transient):
    assert _engine.is_transient(message) is transient


@pytest.mark.parametrize('status,message,expect', [
    (500, 'Container %s not running' % CID, 'only a running container can be checkpointed'),
    (500, 'checkpoint nope does not exist for container /cr', 'Checkpoint cp1 does not exist for container cr'),
    (500, 'Invalid checkpoint ID (-bad), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed', 'is not valid'),
    (501, 'not implemented', 'experimental'),
    (404, 'No such container: cr', 'does not exist on the Docker Engine'),
    (403, 'custom checkpointdir is not supported', 'stage the checkpoint'),
])
def test_engine_answers_are_explained(status, message, expect):
    with pytest.raises(EngineError) as raised:
        engine([Response(status, message)]).start_from_checkpoint('cr', 'cp1')
    assert expect in raised.value.msg
    assert raised.value.status == status
    assert raised.value.engine_message == message
    assert raised.value.fail_kwargs()['http_status'] == status


def test_transient_checkpoint_error_is_retried_then_succeeds():
    eng = engine([Response(500, 'failed to upload checkpoint: transport is closing'), Response(204), Response(201)])
    assert eng.create_checkpoint('cr', 'cp1', delay=0) == 2
    methods = [call[0] for call in eng.client.calls]
    assert methods == ['POST', 'DELETE', 'POST']


def test_retries_are_bounded():
    answers = [Response(500, 'transport is closing'), Response(204)] * 3
    eng = engine(answers)
    with pytest.raises(EngineError):
        eng.create_checkpoint('cr', 'cp1', retries=3, delay=0)
    assert [call[0] for call in eng.client.calls].count('POST') == 3


def test_other_errors_are_not_retried():
    eng = engine([Response(500, 'criu failed: type NOTIFY errno 0 log file: /var/lib/docker/x/criu-dump.log')])
    with pytest.raises(EngineError):
        eng.create_checkpoint('cr', 'cp1', delay=0)
    assert len(eng.client.calls) == 1


def test_no_retry_once_container_stopped():
    eng = engine([Response(500, 'transport is closing')], running=False)
    with pytest.raises(EngineError):
        eng.create_checkpoint('cr', 'cp1', delay=0)
    assert len(eng.client.calls) == 1


def test_checkpoint_body_and_list():
    eng = engine([Response(201), Response(200)])
    eng.create_checkpoint('cr', 'cp1', leave_running=True, checkpoint_dir='/srv/cp')
    assert eng.client.calls[0][2]['data'] == {'CheckpointID': 'cp1', 'Exit': False, 'CheckpointDir': '/srv/cp'}
    assert eng.list_checkpoints('cr') == []
    assert eng.client.calls[1][1] == 'http+docker://localhost/v1.41/containers/cr/checkpoints'


def test_urls_quote_their_arguments():
    eng = engine([])
    assert eng.url('/containers/{0}/checkpoints/{1}', 'a b', 'c?d') == \
        'http+docker://localhost/v1.41/containers/a%20b/checkpoints/c%3Fd'


def test_a_hanging_engine_call_is_not_called_unreachable():
    class Hanging(FakeClient):
        def post(self, url, **kwargs):
            raise _engine.Timeout('Read timed out. (read timeout=60)')

    eng = Engine({'docker_host': 'unix:///var/run/docker.sock', 'timeout': 60}, client=Hanging([]))
    with pytest.raises(EngineError) as raised:
        eng.start_from_checkpoint('cr', 'cp1')
    assert 'did not answer within 60 seconds' in raised.value.msg
    assert 'Cannot reach' not in raised.value.msg
    assert raised.value.details == {'timed_out': True}


STALE = ('failed to upload checkpoint: failed to commit checkpoint content: content sha256:%s: already exists'
         % ('ab' * 32))


@pytest.mark.parametrize('message,digest', [
    (STALE, 'sha256:' + 'ab' * 32),
    ('failed to upload checkpoint: rpc error: transport is closing', None),
    ('checkpoint with name cp1 already exists for container X', None),
    ('', None),
    (None, None),
])
def test_stale_content_digest(message, digest):
    assert _engine.stale_content_digest(message) == digest


class ListResponse(Response):
    def __init__(self, names):
        super().__init__(200)
        self.names = names

    def json(self):
        return [{'Name': name} for name in self.names]


def test_checkpoints_being_written_are_not_listed():
    eng = engine([ListResponse(['cp1', 'cp1.cryo-new', '.cryo-tmp-cp2', 'cp.2'])])
    assert eng.list_checkpoints('cr') == ['cp.2', 'cp1']


# -- retries counted by their reason ----------------------------------------------------------------

RACE = ('failed to upload checkpoint: failed to commit checkpoint content: content sha256:%s: already exists'
        % ('ab' * 32))


def test_each_retry_is_counted_by_its_reason():
    eng = engine([Response(500, RACE), Response(204), Response(500, 'rpc error: transport is closing'),
                  Response(204), Response(201)])
    retried = {}
    assert eng.create_checkpoint('cr', 'cp1', delay=0, retried=retried) == 3
    # The content store's race counts as 'already exists' though its message begins 'failed to upload checkpoint'.
    assert retried == {'already exists': 1, 'transport is closing': 1}


def test_a_retry_that_still_fails_is_counted_and_the_last_answer_is_not():
    answers = [Response(500, 'transport is closing'), Response(204)] * 3
    retried = {}
    with pytest.raises(EngineError):
        engine(answers).create_checkpoint('cr', 'cp1', retries=3, delay=0, retried=retried)
    assert retried == {'transport is closing': 2}  # 3 attempts, 2 of them again


def test_restore_retries_are_counted():
    eng = engine([Response(500, 'failed to upload checkpoint: transport is closing'), Response(204)])
    retried = {}
    assert eng.start_from_checkpoint('cr', 'cp1', delay=0, retried=retried) == 204
    assert retried == {'transport is closing': 1}


def test_a_restore_told_not_to_retry_the_content_collision_raises_it_at_once():
    answers = [Response(500, RACE), Response(204)]
    retried = {}
    with pytest.raises(EngineError) as raised:
        engine(answers).start_from_checkpoint('cr', 'cp1', delay=0, retried=retried, retry_stale=False)
    assert 'already exists' in raised.value.engine_message and retried == {}
    assert engine([Response(500, RACE), Response(204)]).start_from_checkpoint('cr', 'cp1', delay=0) == 204


def test_nothing_is_counted_without_a_retry():
    retried = {}
    engine([Response(201)]).create_checkpoint('cr', 'cp1', delay=0, retried=retried)
    with pytest.raises(EngineError):
        engine([Response(500, 'criu failed: type NOTIFY')]).create_checkpoint('cr', 'cp2', delay=0, retried=retried)
    assert retried == {}


@pytest.mark.parametrize('message, reason', [
    (RACE, 'already exists'),
    ('rpc error: code = Unavailable desc = transport is closing', 'transport is closing'),
    ('failed to upload checkpoint: unexpected EOF', 'failed to upload checkpoint'),
    ('checkpoint with name cp1 already exists for container cr', None),
    ('criu failed: type NOTIFY errno 0', None),
])
def test_transient_reason(message, reason):
    assert _engine.transient_reason(message) == reason
    assert _engine.is_transient(message) is (reason is not None)


def test_sum_retries():
    assert _engine.sum_retries([{'already exists': 1}, {}, None, {'already exists': 2, 'transport is closing': 1}]) == \
        {'already exists': 3, 'transport is closing': 1}
