"""Anti-automation on the certificate check: every attempt reserves its place before it is
evaluated, a locked attempt looks like any other refusal, and the counters are per certificate and
per client address (IPv4 on the address, IPv6 on its /64). The domain's plan, then the service on
fakes (the races on moto are in tests/journeys/test_races.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import services
from chalicelib.domain.errors import CertificateNotAccepted
from chalicelib.domain.throttle import (
    ADDRESS_LIMITS,
    REFERENCE_LIMITS,
    UNKNOWN_ADDRESS,
    WINDOW,
    Check,
    Counters,
    Limits,
    Place,
    address_key,
    reservation,
)
from tests.builders import NOW, fake_dependencies, load_register, register_row

PER_WINDOW, PER_DAY = REFERENCE_LIMITS.per_window, REFERENCE_LIMITS.per_day


@pytest.fixture
def deps():
    deps = fake_dependencies()
    load_register(deps, register_row("FA/1001", "SW1A 2AA"), register_row("FA/1002", "SW1A 2AA"))
    return deps


def fail(deps, reference="FA/1001", address="192.0.2.1", times=1):
    for _ in range(times):
        with pytest.raises(CertificateNotAccepted):
            services.check_certificate(reference, "SW1A 1AA", deps, address)


def passes(deps, reference="FA/1001", address="192.0.2.1") -> bool:
    try:
        return bool(services.check_certificate(reference, "SW1A 2AA", deps, address))
    except CertificateNotAccepted:
        return False


# The domain's plan


def test_a_reservation_takes_a_place_in_this_window_and_today_and_checks_the_last_window():
    window = int(NOW.timestamp() // WINDOW.total_seconds())
    planned = reservation([Counters("ref:k", Limits(5, 15)), Counters("ip:a", Limits(20, 100))], NOW)
    assert [(p.key, p.limit) for p in planned.places] == [
        (f"ref:k:w{window}", 5),
        (f"ref:k:d{NOW.date()}", 15),
        (f"ip:a:w{window}", 20),
        (f"ip:a:d{NOW.date()}", 100),
    ]
    assert planned.checks == (Check(f"ref:k:w{window - 1}", 5), Check(f"ip:a:w{window - 1}", 20))


def test_a_window_counter_outlives_the_next_window_and_a_day_counter_the_next_day():
    window_place, day_place = Counters("s", Limits(1, 1)).places(NOW + timedelta(minutes=7))
    # NOW is noon: the window is 12:00-12:15, read as "previous" until 12:30
    assert window_place == Place(window_place.key, 1, NOW + 3 * WINDOW)
    assert day_place.expires == NOW.replace(hour=0) + timedelta(days=2)


@pytest.mark.parametrize(
    "address, key",
    [
        ("192.0.2.1", "192.0.2.1"),
        (" 192.0.2.1 ", "192.0.2.1"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2:FFFF::", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("fe80::1%eth0", "fe80::/64"),
        ("", UNKNOWN_ADDRESS),
        (None, UNKNOWN_ADDRESS),
        ("unknown", UNKNOWN_ADDRESS),
        ("192.0.2.1, 198.51.100.7", UNKNOWN_ADDRESS),
        ("999.0.0.1", UNKNOWN_ADDRESS),
    ],
)
def test_ipv4_counts_by_address_and_ipv6_by_its_64(address, key):
    assert address_key(address) == key


# The service on fakes


def test_the_attempt_after_the_window_limit_is_locked_even_with_the_right_answer(deps):
    fail(deps, times=PER_WINDOW)
    assert not passes(deps)
    assert deps.metrics.reports[-1] == {"CertificateCheckRefusals": 1, "CertificateCheckLockouts": 1}
    assert deps.metrics.reports[0] == {"CertificateCheckRefusals": 1, "CertificateCheckLockouts": 0}
    assert passes(deps, "FA/1002")  # another certificate is fine


def test_every_attempt_counts_the_right_answer_included(deps):
    assert all(passes(deps) for _ in range(PER_WINDOW))
    assert not passes(deps)


def test_the_lock_lasts_the_next_window_and_lifts_after_it(deps):
    fail(deps, times=PER_WINDOW)
    deps.clock.set(NOW + WINDOW + timedelta(minutes=1))
    assert not passes(deps, address="192.0.2.9")
    deps.clock.set(NOW + 2 * WINDOW + timedelta(minutes=1))
    assert passes(deps, address="192.0.2.9")


def test_reaching_the_day_limit_locks_for_the_rest_of_the_day(deps):
    left, hop = PER_DAY, 0
    while left:
        deps.clock.set(NOW + 2 * WINDOW * hop)  # past each window's lock, from a new address each time
        fail(deps, times=min(left, PER_WINDOW), address=f"198.51.100.{hop}")
        left, hop = left - min(left, PER_WINDOW), hop + 1
    deps.clock.set(NOW + timedelta(hours=6))
    assert not passes(deps, address="203.0.113.7")
    deps.clock.set(NOW.replace(hour=0) + timedelta(days=1))
    assert passes(deps, address="203.0.113.7")


def test_locked_attempts_add_nothing_so_the_address_is_charged_only_for_those_evaluated(deps):
    fail(deps, times=PER_WINDOW * 3)
    assert sorted(count for count, _ in deps.attempts.counters.values()) == [PER_WINDOW] * 4
    assert passes(deps, "FA/1002")


def test_one_address_trying_many_certificates_is_locked_out(deps):
    limit = ADDRESS_LIMITS.per_window
    load_register(deps, *[register_row(f"FA/3{i:03d}", "SW1A 2AA") for i in range(limit + 1)])
    for i in range(limit):
        fail(deps, reference=f"FA/3{i:03d}", address="192.0.2.66")
    assert not passes(deps, f"FA/3{limit:03d}", "192.0.2.66")
    assert passes(deps, f"FA/3{limit:03d}", "192.0.2.67")


def test_addresses_in_one_ipv6_64_share_their_counters_and_another_64_does_not(deps):
    limit = ADDRESS_LIMITS.per_window
    load_register(deps, *[register_row(f"FA/3{i:03d}", "SW1A 2AA") for i in range(limit + 1)])
    for i in range(limit):  # a device choosing a new address inside its /64 for each attempt
        fail(deps, reference=f"FA/3{i:03d}", address=f"2001:db8:7:7::{i + 1:x}")
    assert not passes(deps, f"FA/3{limit:03d}", "2001:db8:7:7:ffff::1")
    assert passes(deps, f"FA/3{limit:03d}", "2001:db8:7:8::1")


def test_counters_hold_no_reference_or_address_and_are_swept_when_expired(deps):
    fail(deps, times=2)
    keys = " ".join(deps.attempts.counters)
    assert "FA1001" not in keys and "FA/1001" not in keys and "192.0.2.1" not in keys
    deps.clock.set(NOW + timedelta(days=3))
    assert services.sweep_expired_attempts(deps) == len(keys.split()) == 4
    assert deps.attempts.counters == {}
