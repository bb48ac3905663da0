"""The throughput benchmark's wait: slow but progressing is fine, stuck or crashed fails with the reason."""

import asyncio

import pytest

from pipeline.bench import _wait_while_progressing


async def _runner(stop: asyncio.Event, fail: bool = False) -> None:
    if fail:
        raise ValueError("stage worker died")
    await stop.wait()


def test_a_slow_pipeline_that_keeps_progressing_is_waited_for():
    async def main() -> int:
        done, count = asyncio.Event(), [0]
        runner = asyncio.create_task(_runner(done))

        async def trickle() -> None:  # 2.5 s in all, never more than 1.3 s without progress
            for _ in range(5):
                await asyncio.sleep(0.5)
                count[0] += 1
            done.set()

        feeder = asyncio.create_task(trickle())
        await _wait_while_progressing(done, runner, lambda: count[0], 5, stall_s=1.3)
        await feeder
        await runner
        return count[0]

    assert asyncio.run(main()) == 5


def test_no_progress_fails_with_a_timeout_that_says_how_far_it_got():
    async def main() -> None:
        done = asyncio.Event()
        runner = asyncio.create_task(_runner(done))
        try:
            await _wait_while_progressing(done, runner, lambda: 3, 10, stall_s=1.0)
        finally:
            done.set()
            await runner

    with pytest.raises(TimeoutError, match=r"3 of 10"):
        asyncio.run(main())


def test_a_crashed_runner_fails_at_once_with_its_error():
    async def main() -> None:
        done = asyncio.Event()
        runner = asyncio.create_task(_runner(done, fail=True))
        await _wait_while_progressing(done, runner, lambda: 0, 10, stall_s=60)

    with pytest.raises(ValueError, match="stage worker died"):
        asyncio.run(main())
