"""Feedback endpoints: implicit events and the native `/api/models/feedback`. (Ratings,
`POST /api/v2/chat/messages/{id}/feedback`, are served on the hot path: ``data_plane._rate``.)"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from turnout.api.auth import AnyCaller
from turnout.api.deps import container_of as _container
from turnout.feedback.service import EventIn, FeedbackIn, FeedbackOut
from turnout.store.models import utcnow

router = APIRouter(tags=["feedback"])
MessageId = Annotated[str, Path(min_length=1, max_length=36)]


@router.post("/api/v2/chat/messages/{message_id}/events", response_model=FeedbackOut)
async def message_event(
    request: Request, message_id: MessageId, body: EventIn, principal: AnyCaller
) -> FeedbackOut:
    """Implicit signals: `regenerate` (0.0), `copy` (1.0), `continue` (0.5)."""
    return await _container(request).feedback.event(message_id, body, principal)


class NativeFeedback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=36)
    quality_rating: float | None = Field(default=None, ge=0.0, le=1.0, strict=True)
    success: bool = Field(strict=True)
    feedback: str | None = Field(default=None, max_length=2000)
    corrections: dict[Annotated[str, Field(max_length=100)], Annotated[str, Field(max_length=2000)]] = Field(
        default_factory=dict, max_length=20, description="within the 64 KiB a stored rating may carry"
    )
    metadata: dict[str, str] = Field(default_factory=dict)


@router.post("/api/models/feedback")
async def native_feedback(request: Request, body: NativeFeedback, principal: AnyCaller) -> dict[str, Any]:
    """The orchestration API's feedback: `quality_rating`, or `success` as 1.0 / 0.0."""
    rating = body.quality_rating if body.quality_rating is not None else (1.0 if body.success else 0.0)
    stored = await _container(request).feedback.rate(
        body.request_id,
        FeedbackIn(
            rating=rating, feedback_type="explicit", comment=body.feedback, corrections=dict(body.corrections)
        ),
        principal,
    )
    return {
        "feedback_id": body.request_id,
        "created_at": utcnow().isoformat(),
        "status": "accepted",
        "updated_metrics": {"quality_score": stored.rating, "success_rate": None},
    }
