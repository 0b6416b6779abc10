"""The executable-docs runner: markers, expected output, and a doc whose example breaks fails."""

from __future__ import annotations

import pytest

from tests.docs import runner
from tests.receivers import Receiver

SERVICE = b'{"id": 7, "heartbeat_name": "nightly-backup", "status": "new", "priority": "p2"}'
INVALID = b'{"error": {"code": "invalid", "message": "Some fields are invalid.", "fields": {}}}'


def _doc(tmp_path, text: str):
    path = tmp_path / "doc.md"
    path.write_text(text)
    return runner.extract(path)


def _run(blocks, receiver: Receiver):
    base = receiver.url.removeprefix("http://")
    return runner.run_doc(blocks, env=runner.base_env(), base=base, key="mdk_secret")


def test_markers_choose_run_skip_and_output(tmp_path):
    blocks = _doc(
        tmp_path,
        "text\n\n<!-- run -->\n```sh\necho hi\n```\n\nprose\n\n<!-- output -->\n```\nhi\n```\n"
        "<!-- skip: needs Slack -->\n```bash\nfalse\n```\n```json\n{}\n```\n",
    )
    run, output, skip, plain = blocks
    assert (run.action, run.line, run.text) == ("run", 4, "echo hi\n")
    assert run.output is output
    assert (skip.action, skip.reason) == ("skip", "needs Slack")
    assert plain.action == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("```sh\necho unmarked\n```\n", "shell example without a marker"),
        ("<!-- skip: -->\n```sh\ntrue\n```\n", "needs a reason"),
        ("<!-- output -->\n```\nhi\n```\n", "must follow a run block"),
        ("<!-- run -->\n```python\nprint()\n```\n", "not a shell one"),
        ('<!-- run -->\n```sh\ntrue\n```\n<!-- output -->\n```json\n{"a": }\n```\n', "not JSON"),
    ],
)
def test_a_doc_the_runner_cannot_understand_is_an_error(tmp_path, text, message):
    with pytest.raises(runner.DocError, match=message):
        _doc(tmp_path, text)


def test_expected_json_is_a_subset_with_wildcards():
    expected = runner.parse_expected(
        'HTTP/1.1 201 Created\n{"id": ..., "heartbeat_name": "nightly-...", "tags": ["a", ...]}\n'
        "Created API key #... 'backup-host'\n"
    )
    assert expected.statuses == [201]
    assert expected.lines == ["Created API key #... 'backup-host'"]
    actual = {"id": 3, "heartbeat_name": "nightly-backup", "tags": ["a", "b"], "more": 1}
    assert runner.matches(expected.values[0], actual)
    assert not runner.matches(expected.values[0], actual | {"heartbeat_name": "other"})
    assert not runner.matches({"id": 3}, {"id": "3"})
    assert runner.matches({"interval": 5, "ok": True}, {"interval": 5.0, "ok": True})
    assert not runner.matches({"ok": True}, {"ok": 1})


def test_blocks_share_one_session_and_the_expected_output_holds(tmp_path):
    blocks = _doc(
        tmp_path,
        "<!-- run -->\n```sh\nKEY=mdk_...\nMEDIC=http://localhost:8000\n```\n"
        "<!-- run -->\n```sh\n"
        'ID=$(curl -s -X POST $MEDIC/v2/services -H "Authorization: Bearer $KEY" | jq .id)\n'
        'curl -s $MEDIC/v2/services/$ID\necho "key $KEY"\n```\n'
        '<!-- output -->\n```json\n{"id": 7, "status": "new", ...}\nkey mdk_secret\n```\n',
    )
    with Receiver(default_status=201, default_body=SERVICE) as receiver:
        results = _run(blocks, receiver)
        assert [r.ok for r in results] == [True, True], results
        assert [r.path for r in receiver.requests] == ["/v2/services", "/v2/services/7"]
        assert receiver.requests[0].headers["Authorization"] == "Bearer mdk_secret"


def test_an_error_status_the_doc_does_not_show_fails_the_block(tmp_path):
    blocks = _doc(tmp_path, "<!-- run -->\n```sh\ncurl -s -X POST localhost:8000/v2/x\n```\n")
    with Receiver(default_status=422, default_body=INVALID) as receiver:
        [result] = _run(blocks, receiver)
    assert not result.ok
    assert result.problems == ["unexpected HTTP status [422] (answers: [422])"]


def test_an_error_status_the_doc_shows_passes(tmp_path):
    blocks = _doc(
        tmp_path,
        "<!-- run -->\n```sh\ncurl -s -X POST localhost:8000/v2/x\n```\n<!-- output -->\n"
        '```\nHTTP/1.1 422 Unprocessable Content\n{"error": {"code": "invalid"}}\n```\n',
    )
    with Receiver(default_status=422, default_body=INVALID) as receiver:
        [result] = _run(blocks, receiver)
    assert result.ok, result.problems


def test_output_that_differs_from_the_doc_fails_and_stops_the_doc(tmp_path):
    blocks = _doc(
        tmp_path,
        "<!-- run -->\n```sh\ncurl -s localhost:8000/v2/services/7\n```\n<!-- output -->\n"
        '```json\n{"status": "up"}\n```\n<!-- run -->\n```sh\ntouch never-run\n```\n',
    )
    with Receiver(default_status=200, default_body=SERVICE) as receiver:
        results = _run(blocks, receiver)
    assert len(results) == 1
    assert results[0].problems == [
        'expected JSON not found in the output (in order): {"status": "up"}'
    ]


def test_a_failing_command_fails_the_block(tmp_path):
    blocks = _doc(tmp_path, "<!-- run -->\n```sh\necho start\ngrep -q absent /dev/null\n```\n")
    [result] = runner.run_doc(blocks, env=runner.base_env(), base="x", key="k")
    assert not result.ok
    assert "line 2 of the block: exit 1: grep -q absent /dev/null" in result.problems[0]
    assert result.stdout == "start\n"


def test_the_docs_markers_are_valid():
    # The whole runner (with a Medic instance) runs in the test command; this keeps a broken
    # marker from reaching it.
    for doc in runner.default_docs():
        runner.extract(doc)
