"""State machines of payments, refunds and charges, and the refund rules on the aggregate."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from finbank_core.pix.charges import Charge, ChargeStatus
from finbank_core.pix.codes.keys import PixKey
from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.pix.errors import (
    IllegalPixTransition,
    PixPaymentNotRefundable,
    PixRefundExceedsOriginal,
    PixRefundWindowExpired,
)
from finbank_core.pix.payments import (
    Initiation,
    PaymentStatus,
    PixFlow,
    PixParty,
    PixPayment,
)
from finbank_core.pix.refunds import PixRefund, RefundNature, RefundStatus
from finbank_core.shared.money import Money

T0 = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)


def payment(
    status: PaymentStatus = PaymentStatus.PENDING, flow: PixFlow = PixFlow.INCOMING
) -> PixPayment:
    return PixPayment(
        end_to_end_id="E8888888820260301150000000000001",
        flow=flow,
        status=status,
        amount=Money(100_00),
        payer=PixParty(ispb="88888888"),
        payee=PixParty(ispb="99999999", account_id=uuid.uuid4(), owner_id="ana"),
        initiation=Initiation.KEY,
        created_at=T0,
        settled_at=T0 if status is PaymentStatus.SETTLED else None,
    )


def refund(amount: int, at: datetime = T0, rid: str = "r1") -> PixRefund:
    return PixRefund(
        return_id=f"D99999999202603011500{rid:0>11}",
        client_refund_id=rid,
        amount=Money(amount),
        nature=RefundNature.ORIGINAL,
        status=RefundStatus.EM_PROCESSAMENTO,
        requested_at=at,
        request_fingerprint="f",
    )


def test_pending_payment_settles_or_is_rejected_with_its_iso_reason() -> None:
    settled = payment().settle(T0)
    assert (settled.status, settled.settled_at) == (PaymentStatus.SETTLED, T0)
    rejected = payment().reject(IsoReason.AC03, T0)
    assert (rejected.status, rejected.reject_reason) == (PaymentStatus.REJECTED, IsoReason.AC03)


@pytest.mark.parametrize("final", [PaymentStatus.SETTLED, PaymentStatus.REJECTED])
def test_final_payment_states_refuse_every_transition(final: PaymentStatus) -> None:
    done = payment(final)
    with pytest.raises(IllegalPixTransition):
        done.settle(T0)
    with pytest.raises(IllegalPixTransition):
        done.reject(IsoReason.AB03, T0)


def test_refund_moves_from_em_processamento_to_devolvido_or_nao_realizado_only() -> None:
    done = refund(10_00).complete(T0)
    assert done.status is RefundStatus.DEVOLVIDO
    failed = refund(10_00).fail(IsoReason.AC07, T0)
    assert (failed.status, failed.failure_reason) == (RefundStatus.NAO_REALIZADO, IsoReason.AC07)
    for final in (done, failed):
        with pytest.raises(IllegalPixTransition):
            final.complete(T0)
        with pytest.raises(IllegalPixTransition):
            final.fail(IsoReason.AB03, T0)


@pytest.mark.parametrize(
    ("nature", "code"),
    [
        (RefundNature.ORIGINAL, "MD06"),
        (RefundNature.RETIRADA, "SL02"),
        (RefundNature.MED_OPERACIONAL, "BE08"),
        (RefundNature.MED_FRAUDE, "FR01"),
    ],
)
def test_each_refund_nature_carries_its_iso_code(nature: RefundNature, code: str) -> None:
    assert nature.reason.value == code


def test_refunds_add_up_to_at_most_the_original() -> None:
    received = payment(PaymentStatus.SETTLED).add_refund(refund(60_00, rid="a"))
    received = received.add_refund(refund(40_00, rid="b"))
    assert received.refunded_amount == Money(100_00)
    with pytest.raises(PixRefundExceedsOriginal) as caught:
        received.add_refund(refund(1, rid="c"))
    assert caught.value.details["reason"] == "AM09"


def test_a_failed_refund_frees_its_amount_again() -> None:
    first = refund(100_00, rid="a")
    received = payment(PaymentStatus.SETTLED).add_refund(first)
    received = received.replace_refund(first.fail(IsoReason.AB03, T0))
    assert received.refunded_amount == Money(0)
    assert received.add_refund(refund(100_00, rid="b")).refunded_amount == Money(100_00)


def test_refund_on_day_90_passes_and_after_it_is_refused_with_dt05() -> None:
    received = payment(PaymentStatus.SETTLED)
    received.add_refund(refund(1, at=T0 + timedelta(days=90)))
    with pytest.raises(PixRefundWindowExpired) as caught:
        received.add_refund(refund(1, at=T0 + timedelta(days=90, seconds=1)))
    assert caught.value.details["reason"] == "DT05"


@pytest.mark.parametrize(
    ("status", "flow"),
    [
        (PaymentStatus.PENDING, PixFlow.INCOMING),
        (PaymentStatus.REJECTED, PixFlow.INCOMING),
        (PaymentStatus.SETTLED, PixFlow.OUTGOING),
    ],
)
def test_only_settled_received_payments_are_refundable(
    status: PaymentStatus, flow: PixFlow
) -> None:
    with pytest.raises(PixPaymentNotRefundable):
        payment(status, flow).add_refund(refund(1))


def charge() -> Charge:
    return Charge(
        txid="abcdefghijklmnopqrstuvwxyz0123",
        location_id="loc",
        account_id=uuid.uuid4(),
        owner_id="ana",
        pix_key=PixKey.parse("ana@example.com"),
        amount=Money(50_00),
        merchant_name="Ana",
        merchant_city="SAO PAULO",
        created_at=T0,
        expires_in_seconds=3600,
    )


def test_charge_concludes_once_and_removed_charges_stay_removed() -> None:
    done = charge().conclude("E1", T0)
    assert (done.status, done.end_to_end_id) == (ChargeStatus.CONCLUIDA, "E1")
    with pytest.raises(IllegalPixTransition):
        done.conclude("E2", T0)
    with pytest.raises(IllegalPixTransition):
        done.remove()
    removed = charge().remove(by_psp=True)
    assert removed.status is ChargeStatus.REMOVIDA_PELO_PSP
    with pytest.raises(IllegalPixTransition):
        removed.conclude("E3", T0)
    assert charge().remove().status is ChargeStatus.REMOVIDA_PELO_USUARIO_RECEBEDOR


def test_charge_expires_at_its_deadline_and_static_txid_is_its_first_25_chars() -> None:
    c = charge()
    assert not c.is_expired(T0 + timedelta(seconds=3599))
    assert c.is_expired(T0 + timedelta(seconds=3600))
    assert c.static_txid == c.txid[:25]
    assert c.matches(c.txid)
    assert c.matches(c.static_txid)
    assert not c.matches("other")
