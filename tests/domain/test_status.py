from opencomms.domain.status import MessageStatus as S
from opencomms.domain.status import may_move


def test_status_only_moves_forward() -> None:
    assert may_move(S.QUEUED, S.SENT)
    assert may_move(S.SENT, S.DELIVERED)
    assert may_move(S.DELIVERED, S.READ)
    assert not may_move(S.DELIVERED, S.SENT)
    assert not may_move(S.READ, S.DELIVERED)
    assert not may_move(S.FAILED, S.DELIVERED)
    assert not may_move(S.CANCELED, S.QUEUED)
    assert not may_move(S.UNDELIVERED, S.READ)
