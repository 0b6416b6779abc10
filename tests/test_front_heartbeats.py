"""The web front's heartbeat batches (medic/front.py, ``Heartbeats``): a lone request is handed
over at once, the requests that arrive while a batch is being answered go together in the next
one (at most ``batch_max``), each request gets its own answer, and a batch that fails outright
is answered 500 in the error envelope without stopping the ones after it."""

from __future__ import annotations

import asyncio
import json
import threading

from medic.front import Heartbeats


class Ingest:
    """Stands in for the ingest handler: answers each environ with its own name, and can hold a
    batch until released."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()
        self.fail_next = False

    def answer_together(self, environs):
        self.batches.append([environ["name"] for environ in environs])
        self.entered.set()
        self.hold.wait(10)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("defect")
        return [(201, [("Content-Type", "text/plain")], e["name"].encode()) for e in environs]


async def _until(event: threading.Event) -> None:
    for _ in range(500):
        if event.is_set():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the batch thread never started")


def test_requests_arriving_during_a_batch_go_together_in_the_next():
    async def scenario():
        ingest = Ingest()
        front = Heartbeats(ingest, batch_max=3)
        assert await front.answer({"name": "lone"}) == (
            201,
            [("Content-Type", "text/plain")],
            b"lone",
        )
        ingest.hold.clear()
        ingest.entered.clear()
        first = front.answer({"name": "a"})
        await _until(ingest.entered)  # "a" is being answered, alone
        later = [front.answer({"name": n}) for n in "bcdef"]
        ingest.hold.set()
        answers = await asyncio.gather(first, *later)
        assert [body for _, _, body in answers] == [b"a", b"b", b"c", b"d", b"e", b"f"]
        return ingest.batches

    assert asyncio.run(scenario()) == [["lone"], ["a"], ["b", "c", "d"], ["e", "f"]]


def test_a_batch_that_fails_outright_is_answered_500_and_the_next_is_served():
    async def scenario():
        ingest = Ingest()
        front = Heartbeats(ingest, batch_max=8)
        ingest.fail_next = True
        failed = await asyncio.gather(front.answer({"name": "x"}), front.answer({"name": "y"}))
        after = await front.answer({"name": "z"})
        return failed, after

    failed, after = asyncio.run(scenario())
    for status, headers, body in failed:
        assert status == 500 and ("Content-Type", "application/json") in headers
        assert json.loads(body)["error"]["code"] == "internal"
    assert after[0] == 201 and after[2] == b"z"


def test_with_two_threads_a_second_batch_runs_while_the_first_waits():
    class Gated(Ingest):
        """Holds the batch holding "slow" until released; answers the others at once."""

        def __init__(self) -> None:
            super().__init__()
            self.slow = threading.Event()

        def answer_together(self, environs):
            names = [environ["name"] for environ in environs]
            self.batches.append(names)
            if "slow" in names:
                self.entered.set()
                self.slow.wait(10)
            return [(201, [], name.encode()) for name in names]

    async def scenario():
        ingest = Gated()
        front = Heartbeats(ingest, batch_max=8, threads=2)
        slow = front.answer({"name": "slow"})
        await _until(ingest.entered)
        # The first thread is held: the second answers these, in batches of their own.
        fast = await asyncio.wait_for(front.answer({"name": "fast"}), 5)
        assert not slow.done()
        ingest.slow.set()
        return fast, await slow, ingest.batches

    fast, slow, batches = asyncio.run(scenario())
    assert fast[2] == b"fast" and slow[2] == b"slow"
    assert batches == [["slow"], ["fast"]]
