"""Broadcast topics: one or more publishers, any number of subscribers, every
subscriber receiving every message in publish order (docs/topic.md)."""
from ._topic import (
    MAX_HANDLES,
    POLICIES,
    MessageOverwritten,
    Publisher,
    Subscriber,
    Topic,
    TopicView,
)

__all__ = ["Topic", "Publisher", "Subscriber", "TopicView", "MessageOverwritten", "POLICIES", "MAX_HANDLES"]
