"""OrderBatcher's group commit, with a fake batch function: no database."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from services.inventory import domain
from services.inventory.orders import OrderBatcher, OrderResult

ORDER_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
FAIL_AFTER_S = 10.0  # only bounds a broken batcher's hang; nothing waits for time to pass


def order(order_id: str, product_id: int, store_hash: str = "store1") -> domain.OrderCommand:
    return domain.validate_order(store_hash, order_id, "", ORDER_DATE,
                                 [{"line_id": "1", "product_id": product_id, "quantity": 1}])


class GatedBatches:
    """The batch function: records each batch and keeps it in flight until its gate opens."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gates: list[asyncio.Event] = []
        self.started = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0

    async def __call__(self, commands: list[domain.OrderCommand]) -> list[OrderResult]:
        gate = asyncio.Event()
        self.batches.append(sorted(c.order_id for c in commands))
        self.gates.append(gate)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.started.set()
        await gate.wait()
        self.in_flight -= 1
        return [OrderResult(c.order_id, ()) for c in commands]

    async def next_started(self) -> None:
        await asyncio.wait_for(self.started.wait(), FAIL_AFTER_S)
        self.started.clear()


async def test_calls_on_a_product_in_flight_wait_for_its_batch_then_go_in_one_batch():
    apply = GatedBatches()
    batcher = OrderBatcher(apply, workers=4)
    try:
        first = asyncio.create_task(batcher.submit(order("o1", 7)))
        await apply.next_started()
        rest = [asyncio.create_task(batcher.submit(order(f"o{n}", 7))) for n in range(2, 7)]
        # The calls are submitted before the first batch resumes (tasks run in the order
        # they became ready), with three transactions to spare.
        apply.gates[0].set()
        assert (await first).order_id == "o1"
        await apply.next_started()
        apply.gates[1].set()
        assert [(await task).order_id for task in rest] == [f"o{n}" for n in range(2, 7)]
        assert apply.batches == [["o1"], [f"o{n}" for n in range(2, 7)]]
        assert apply.most_in_flight == 1
    finally:
        await batcher.stop()


async def test_a_call_held_back_by_a_product_in_flight_holds_back_later_calls_on_its_products():
    apply = GatedBatches()
    batcher = OrderBatcher(apply, workers=4)
    try:
        first = asyncio.create_task(batcher.submit(order("o1", 7)))
        await apply.next_started()
        both = domain.validate_order("store1", "o2", "", ORDER_DATE, [
            {"line_id": "1", "product_id": 7, "quantity": 1}, {"line_id": "2", "product_id": 8, "quantity": 1}])
        held_back = asyncio.create_task(batcher.submit(both))
        later = asyncio.create_task(batcher.submit(order("o3", 8)))
        free = asyncio.create_task(batcher.submit(order("o4", 9)))
        await apply.next_started()
        assert apply.batches == [["o1"], ["o4"]]
        apply.gates[0].set()
        await apply.next_started()
        assert apply.batches[2] == ["o2", "o3"]
        for gate in apply.gates:
            gate.set()
        assert [(await t).order_id for t in (first, held_back, later, free)] == ["o1", "o2", "o3", "o4"]
    finally:
        await batcher.stop()


@pytest.mark.parametrize("other", [order("o2", 8), order("o2", 7, store_hash="store2")],
                         ids=["other product", "same product id in another store"])
async def test_calls_on_other_products_do_not_wait_for_a_batch_in_flight(other):
    apply = GatedBatches()
    batcher = OrderBatcher(apply, workers=2)
    try:
        first = asyncio.create_task(batcher.submit(order("o1", 7)))
        await apply.next_started()
        second = asyncio.create_task(batcher.submit(other))
        await apply.next_started()
        assert apply.batches == [["o1"], ["o2"]]
        assert apply.most_in_flight == 2
        for gate in apply.gates:
            gate.set()
        assert [(await task).order_id for task in (first, second)] == ["o1", "o2"]
    finally:
        await batcher.stop()


async def test_a_failed_batch_fails_its_calls_and_releases_its_products():
    async def apply(commands: list[domain.OrderCommand]) -> list[OrderResult]:
        if commands[0].order_id == "bad":
            raise RuntimeError("database down")
        return [OrderResult(c.order_id, ()) for c in commands]

    batcher = OrderBatcher(apply, workers=2)
    try:
        with pytest.raises(RuntimeError, match="database down"):
            await batcher.submit(order("bad", 7))
        assert (await asyncio.wait_for(batcher.submit(order("good", 7)), FAIL_AFTER_S)).order_id == "good"
    finally:
        await batcher.stop()
