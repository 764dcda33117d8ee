"""Anti-automation on the certificate check (fakes): the sixth failure locks, a lockout looks
like any other refusal, and the counters are per certificate and per client address."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib import services
from chalicelib.domain.errors import CertificateNotAccepted
from tests.builders import NOW, fake_dependencies, load_register, register_row


@pytest.fixture
def deps():
    deps = fake_dependencies()
    load_register(deps, register_row("FA/1001", "SW1A 2AA"), register_row("FA/1002", "SW1A 2AA"))
    return deps


def fail(deps, reference="FA/1001", address="192.0.2.1", times=1):
    for _ in range(times):
        with pytest.raises(CertificateNotAccepted):
            services.check_certificate(reference, "SW1A 1AA", deps, address)


def test_five_wrong_postcodes_lock_the_certificate_for_the_sixth_attempt(deps):
    fail(deps, times=5)
    with pytest.raises(CertificateNotAccepted):
        services.check_certificate("FA/1001", "SW1A 2AA", deps, "192.0.2.1")  # right answer, but locked
    assert deps.metrics.reports[-1] == {"CertificateCheckRefusals": 1, "CertificateCheckLockouts": 1}
    assert services.check_certificate("FA/1002", "SW1A 2AA", deps, "192.0.2.1")  # another certificate is fine


def test_the_lock_lifts_after_the_next_window(deps):
    fail(deps, times=5)
    later = NOW + timedelta(minutes=31)
    deps.clock.set(later)
    assert services.check_certificate("FA/1001", "SW1A 2AA", deps, "192.0.2.9").certificate_key


def test_repeated_lockouts_back_off_to_the_rest_of_the_day(deps):
    for hop in range(3):
        moment = NOW + timedelta(minutes=31 * hop)
        deps.clock.set(moment)
        fail(deps, times=5, address=f"198.51.100.{hop}")
    deps.clock.set(NOW + timedelta(hours=3))
    with pytest.raises(CertificateNotAccepted):
        services.check_certificate("FA/1001", "SW1A 2AA", deps, "203.0.113.7")
    deps.clock.set(NOW + timedelta(days=1))
    assert services.check_certificate("FA/1001", "SW1A 2AA", deps, "203.0.113.7")


def test_one_address_trying_many_certificates_is_locked_out(deps):
    load_register(deps, *[register_row(f"FA/3{i:03d}", "SW1A 2AA") for i in range(25)])
    for i in range(20):
        fail(deps, reference=f"FA/3{i:03d}", address="192.0.2.66")
    with pytest.raises(CertificateNotAccepted):
        services.check_certificate("FA/3024", "SW1A 2AA", deps, "192.0.2.66")
    assert services.check_certificate("FA/3024", "SW1A 2AA", deps, "192.0.2.67")


def test_counters_hold_no_reference_or_address_and_are_swept_when_expired(deps):
    fail(deps, times=2)
    keys = " ".join(deps.register.attempts)
    assert "FA1001" not in keys and "192.0.2.1" not in keys
    deps.clock.set(NOW + timedelta(days=3))
    assert services.sweep_expired_attempts(deps) == len(keys.split())
    assert deps.register.attempts == {}
