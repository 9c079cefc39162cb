"""The pump's record of sends that came back (delivery/pump.py `Finished`)."""

from __future__ import annotations

import concurrent.futures
import threading

from delivery.pump import Finished


def test_a_send_done_before_it_was_watched_is_taken():
    finished = Finished()
    future = concurrent.futures.Future()
    future.set_result("answered")
    finished.watch(future)
    assert finished.take(timeout=0) == [future]


def test_sends_are_taken_once_each_in_the_order_they_came_back():
    finished = Finished()
    futures = [concurrent.futures.Future() for _ in range(3)]
    for future in futures:
        finished.watch(future)
    assert finished.take(timeout=0) == [], "nothing has come back yet"
    futures[2].set_result(2)
    futures[0].set_result(0)
    assert finished.take(timeout=0) == [futures[2], futures[0]]
    assert finished.take(timeout=0) == []
    futures[1].set_result(1)
    assert finished.take(timeout=0) == [futures[1]]


def test_take_waits_for_a_send_finishing_on_another_thread():
    finished = Finished()
    future = concurrent.futures.Future()
    finished.watch(future)
    threading.Timer(0.05, future.set_result, args=("answered",)).start()
    assert finished.take(timeout=10) == [future]


def test_a_cancelled_send_is_taken_too():
    finished = Finished()
    future = concurrent.futures.Future()
    finished.watch(future)
    future.cancel()
    assert finished.take(timeout=0) == [future]
