"""One poll of one feed, and one delivery pass over the outbox.

The dataflow, as a shell pipeline::

    state(feed) | fetch --if-none-match | [304 or same hash: stop] | parse
        | unseen | assess rules (against history)
        | plan (suppress: join/start a story, min_sources gates, cooldowns, route, digest)
        | claim+enqueue+record mentions+story+cooldowns+digest queue+save state
          (one transaction; a 304, an unchanged body or an error only saves state)

    due deliveries | sink.send | mark delivered / retry later / dead

This module only sequences calls. Decisions live in ``decide``; matching in
``rules``; persistence in ``storage``. Failures of one feed or one sink are
recorded on it and never raised to the caller, except bugs.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from monitor import decide, suppress
from monitor.clock import Clock
from monitor.config.models import AppConfig, FeedConfig
from monitor.exceptions import FetchError, MonitorError, ParseError
from monitor.gazetteer import Gazetteer
from monitor.metrics import Metrics
from monitor.parse import ParsedFeed
from monitor.readers import FeedReader, PackedPlaces, ReadRequest
from monitor.rules.engine import Assessment, ItemPlaces
from monitor.rules.history import History, LayeredHistory
from monitor.storage.base import Storage
from monitor.types import (
    ClaimRequest,
    FeedState,
    Item,
    PollOutcome,
)

log = structlog.get_logger("monitor")


class RuleEvaluator(Protocol):
    gazetteer: Gazetteer | None  # what places are found with

    def assess(
        self,
        item: Item,
        *,
        feed_tags: Sequence[str] = (),
        history: History | None = None,
        now: datetime | None = None,
        places: ItemPlaces | None = None,
    ) -> Assessment: ...


class Poller:
    """Polls feeds: fetch, parse, match, and claim new items with their alerts."""

    def __init__(
        self,
        config: AppConfig,
        storage: Storage,
        reader: FeedReader,
        rules: RuleEvaluator,
        clock: Clock,
        rng: random.Random | None = None,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.storage = storage
        self.reader = reader
        self.rules = rules
        self.clock = clock
        self.rng = rng or random.Random()
        self.metrics = metrics
        self._book: suppress.StoryBook | None = None  # see _story_book
        self._book_version: tuple[int, int] | None = None

    def state_of(self, feed: FeedConfig) -> FeedState:
        state = self.storage.get_feed_state(feed.id)
        if state is None or state.config_url != feed.url:
            # New feed, or the user changed its URL: start over from the configured one
            # (a 301 moves ``url`` but never ``config_url``).
            fresh = FeedState(feed_id=feed.id, url=feed.url, config_url=feed.url)
            return (
                fresh
                if state is None
                else replace(
                    state,
                    url=feed.url,
                    config_url=feed.url,
                    etag=None,
                    last_modified=None,
                    body_hash=None,
                    disabled_reason=None,
                    last_success=None,  # the new URL's backlog is history too
                )
            )
        return state

    async def poll(self, feed: FeedConfig) -> PollOutcome:
        with structlog.contextvars.bound_contextvars(feed=feed.id):
            started = time.perf_counter()
            state = self.state_of(feed)
            if state.disabled_reason:
                return self._record(PollOutcome(feed.id, "disabled"))
            now = self.clock.now()
            try:
                outcome, new_state, saved = await self._poll(feed, state, now)
            except MonitorError as e:
                outcome, new_state = self._failed(feed, state, e, now)
                saved = False
            except Exception as e:  # a bug: loud in the log, but one feed must not stop the rest
                log.critical("poll_bug", exc_info=True)
                bug = ParseError(state.url, f"internal error while polling: {type(e).__name__}")
                outcome, new_state = self._failed(feed, state, bug, now)
                saved = False
            if not saved:
                self.storage.save_feed_state(new_state)
            _log_outcome(outcome, new_state, started)
            return self._record(replace(outcome, next_poll=new_state.next_poll))

    def _record(self, outcome: PollOutcome) -> PollOutcome:
        if self.metrics is not None:
            self.metrics.poll(outcome)
        return outcome

    async def _poll(
        self, feed: FeedConfig, state: FeedState, now: datetime
    ) -> tuple[PollOutcome, FeedState, bool]:
        """The outcome, the feed's new state, and whether that state is saved already
        (with the claimed items, in one transaction)."""
        first_poll = not state.ever_succeeded or state.items_seen == 0
        read = await self.reader.read(
            ReadRequest(
                feed.id,
                state.url,
                now,
                etag=state.etag,
                last_modified=state.last_modified,
                body_hash=state.body_hash,
                tags=feed.tags,
                language=feed.language,
                find_places=first_poll and self._shipped_gazetteer(),
            )
        )
        result, body_hash, parsed = read.result, read.body_hash, read.parsed
        next_poll = now + decide.jittered(
            self.interval(feed), self.config.scheduler.jitter, self.rng
        )
        if result.body is None:
            new_state = decide.after_success(state, result, now=now, next_poll=next_poll)
            return PollOutcome(feed.id, "not_modified", http_status=304), new_state, False
        if parsed is None:  # the same body as last time
            new_state = decide.after_success(state, result, now=now, next_poll=next_poll)
            outcome = PollOutcome(
                feed.id, "unchanged", http_status=result.status, body_bytes=read.body_bytes
            )
            return outcome, new_state, False
        if parsed.warning:
            log.warning("feed_malformed", warning=parsed.warning)
        before_claim = decide.after_success(
            state,
            result,
            now=now,
            next_poll=next_poll,
            body_hash=body_hash,
            warning=parsed.warning,
        )
        # Planning updates the kept story book and the claim writes the same plans, with
        # no await between; if either fails, the book holds plans the store never wrote.
        try:
            requests, matched = self._claim_requests(
                feed, parsed, read.places or {}, first_poll=first_poll, now=now
            )
            # The store saves the state with the items, counting the ones it claimed.
            claim = self.storage.claim(requests, now, feed_state=before_claim)
        except BaseException:
            self._book = None
            raise
        self._book_written(complete=len(claim.claimed) == len(requests))
        new_state = replace(before_claim, items_seen=before_claim.items_seen + len(claim.claimed))
        outcome = PollOutcome(
            feed.id,
            "ok",
            new=len(claim.claimed),
            matched=matched,
            alerted=claim.alerts_enqueued,
            parsed=len(parsed.items),
            http_status=result.status,
            body_bytes=read.body_bytes,
        )
        return _with_alert_counts(outcome, requests, claim.claimed), new_state, True

    def _claim_requests(
        self,
        feed: FeedConfig,
        parsed: ParsedFeed,
        places: Mapping[str, PackedPlaces],
        *,
        first_poll: bool,
        now: datetime,
    ) -> tuple[list[ClaimRequest], int]:
        """``places``: items' places a reader worker found (by content hash), if any."""
        feed_title = feed.title or parsed.title
        requests: list[ClaimRequest] = []
        matched = 0
        # The store's history plus this poll's earlier items, not yet claimed.
        history = LayeredHistory(self.storage)
        book: suppress.StoryBook | None = None
        for item in self.storage.unseen(parsed.items):
            # Every unseen item is assessed, alerting or not: history learns from all.
            found = places.get(item.content_hash)
            assessment = self.rules.assess(
                item,
                feed_tags=feed.tags,
                history=history,
                now=now,
                places=None if found is None else self._unpack(found),
            )
            history.add(assessment.mentions, item_id=item.id, source=item.feed_id)
            plan = suppress.Plan()
            if self._may_alert(item, first_poll=first_poll, now=now):
                matched += len(assessment.matches)
                book = book or self._story_book(now)
                plan = book.plan(
                    item, assessment.matches, feed_tags=feed.tags, feed_title=feed_title, now=now
                )
                if plan.suppressed:
                    log.info("suppressed", item=item.id, rules=list(plan.suppressed))
            requests.append(
                ClaimRequest(
                    item,
                    plan.alerts,
                    assessment.mentions,
                    story=plan.story,
                    story_sources=plan.story_sources,
                    cooldowns=plan.cooldowns,
                    digests=plan.digests,
                )
            )
        return requests, matched

    def _shipped_gazetteer(self) -> bool:
        """Whether the rules find places with the shipped gazetteer, the one a reader
        worker finds them with."""
        gazetteer = self.rules.gazetteer
        return gazetteer is not None and gazetteer is Gazetteer.load()

    def _unpack(self, places: PackedPlaces) -> ItemPlaces | None:
        """The places a worker found, or None (found here then) if this gazetteer lacks
        one: a worker started after the package was upgraded under a running daemon."""
        gazetteer = self.rules.gazetteer
        try:
            return None if gazetteer is None else tuple(map(gazetteer.unpack, places))
        except KeyError:
            return None

    def _may_alert(self, item: Item, *, first_poll: bool, now: datetime) -> bool:
        return decide.may_alert(
            item,
            first_poll=first_poll,
            now=now,
            max_item_age=self.config.scheduler.max_item_age,
            retention=self.config.storage.retention,
        )

    def _story_book(self, now: datetime) -> suppress.StoryBook:
        """Open stories and active cooldowns, for a poll that has fresh items.

        The book is kept between polls: it updates itself with every plan, and ``claim``
        writes the same plans with no ``await`` between, so it stays what the store holds.
        It is read again when anything but this poller's own claims has written to the
        store (``data_version``: another process, or the poller a reload replaced, whose
        last polls may still be claiming), or a claim did not write what was planned.
        Replicas sharing a database could (rarely) start two stories for one cluster,
        costing one duplicate alert, never a lost one.
        """
        version = self.storage.data_version()
        book = self._book
        if book is None or version != self._book_version:
            policy = suppress.Policy.from_config(self.config)
            book = suppress.StoryBook(
                policy,
                self.storage.open_stories(now - policy.window),
                self.storage.active_cooldowns(now),
            )
            self._book, self._book_version = book, version
        else:
            book.forget(now - book.policy.window)
        return book

    def _book_written(self, *, complete: bool) -> None:
        """After this poller's claim: the book holds what the store now holds, unless an
        item was claimed elsewhere meanwhile (its plan was not written). Only the count of
        this connection's claims is taken as seen: another process's write since the book
        was checked must still make it read again."""
        if self._book is None or self._book_version is None:
            return
        if not complete:
            self._book = None
            return
        others, _ = self._book_version
        self._book_version = (others, self.storage.data_version()[1])

    def _failed(
        self, feed: FeedConfig, state: FeedState, error: MonitorError, now: datetime
    ) -> tuple[PollOutcome, FeedState]:
        scheduler = self.config.scheduler
        new_state = decide.after_failure(
            state,
            error,
            now=now,
            minimum=scheduler.backoff_min,
            maximum=scheduler.backoff_max,
            rng=self.rng,
            interval=self.interval(feed),
        )
        status = error.status if isinstance(error, FetchError) else None
        return PollOutcome(feed.id, "error", error=error, http_status=status), new_state

    def interval(self, feed: FeedConfig) -> timedelta:
        return feed.interval or self.config.scheduler.interval


def _with_alert_counts(
    outcome: PollOutcome, requests: Sequence[ClaimRequest], claimed: Sequence[str]
) -> PollOutcome:
    """For the metrics: the alerts the claimed items enqueued, per rule and per severity."""
    ids = set(claimed)
    alerts = [entry.alert for r in requests if r.item.id in ids for entry in r.alerts]
    return replace(
        outcome,
        rule_matches=tuple(sorted(Counter(a.rule_id for a in alerts).items())),
        alerts_by_severity=tuple(sorted(Counter(a.severity.label for a in alerts).items())),
    )


def _log_outcome(outcome: PollOutcome, state: FeedState, started: float) -> None:
    """One canonical line per poll; errors that are transient log as warnings."""
    fields = {
        "status": outcome.status,
        "new": outcome.new,
        "matched": outcome.matched,
        "alerted": outcome.alerted,
        "http": outcome.http_status,
        "ms": round((time.perf_counter() - started) * 1000),
    }
    error = outcome.error
    if error is None:
        log.info("polled", **fields)
        return
    transient = isinstance(error, FetchError) and error.transient
    log_method = log.warning if transient else log.error
    log_method(
        "polled",
        **fields,
        error=str(error),
        consecutive_errors=state.consecutive_errors,
        next_poll=state.next_poll.isoformat() if state.next_poll else None,
        disabled=state.disabled_reason,
    )
