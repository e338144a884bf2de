"""The database backend's health check (core/postgresql/base.py): no round trip while the server is silent,
and a connection the server closed is replaced before a request uses it."""

from __future__ import annotations

import select
from unittest import mock

import pytest
from django.db import connection, connections

pytestmark = pytest.mark.django_db


def _request_starts(conn) -> None:  # type: ignore[no-untyped-def]
    """What Django does with a persistent connection when a request starts (request_started)."""
    conn.close_if_unusable_or_obsolete()
    assert not conn.health_check_done


def _readable(conn, *, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    poller = select.poll()
    poller.register(conn.connection.fileno(), select.POLLIN)
    return bool(poller.poll(seconds * 1000))


def test_a_silent_server_is_not_sent_select_1_at_a_request_start():
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT 1")
        _request_starts(other)
        with mock.patch.object(other, "is_usable", wraps=other.is_usable) as is_usable:
            with other.cursor() as cursor:
                cursor.execute("SELECT 2")
                assert cursor.fetchone() == (2,)
        assert is_usable.call_count == 0
        assert other.health_check_done
    finally:
        other.close()


def test_a_connection_the_server_ended_is_replaced_before_the_request_uses_it():
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (ended,) = cursor.fetchone()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [ended])
        assert _readable(other, seconds=5), "the server said nothing when it ended the session"
        _request_starts(other)
        with mock.patch.object(other, "is_usable", wraps=other.is_usable) as is_usable:
            with other.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                (now,) = cursor.fetchone()
        assert is_usable.call_count == 1
        assert now != ended
    finally:
        other.close()


def test_a_server_that_spoke_gets_django_s_own_check():
    other, sender = connections.create_connection("default"), connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("LISTEN ops_health_check_test")
        with sender.cursor() as cursor:
            # Delivered to the idle listener at once: it waits unread on its socket.
            cursor.execute("SELECT pg_notify('ops_health_check_test', 'x')")
        assert _readable(other, seconds=5)
        _request_starts(other)
        with mock.patch.object(other, "is_usable", wraps=other.is_usable) as is_usable:
            with other.cursor() as cursor:
                cursor.execute("SELECT 1")
        assert is_usable.call_count == 1
    finally:
        other.close()
        sender.close()
