"""The arithmetic of recurring tasks, on python-dateutil's `rrule` (RFC 5545).

The contract's pattern admits only the RRULE subset we support; this module checks what a
pattern cannot (a real UNTIL date, a rule that produces a date at all) and finds the next
due date. Dates only: a rule runs on calendar dates, `due_time` rides along unchanged.
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

from dateutil.rrule import rrule, rrulestr

_COUNT = re.compile(r";COUNT=(\d+)")
_UNTIL = re.compile(r";UNTIL=(\d{4})(\d{2})(\d{2})")
_ZONES = frozenset(available_timezones())
# RFC 3339's date-time: an offset is required, "T" and "Z" may be lowercase.
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


class InvalidTaskError(ValueError):
    """A combination of fields the contract's schema cannot rule out; the handler's 422."""


def check_time_zone(name: str | None) -> None:
    # Membership, not ZoneInfo(name): that would also open any file path it is given.
    if name is not None and name not in _ZONES:
        raise InvalidTaskError(f"time_zone: {name!r} is not a known IANA time zone.")


def zone(name: str | None) -> ZoneInfo:
    return ZoneInfo(name) if name else ZoneInfo("UTC")


def check_rule(recurrence: str, due: date) -> None:
    """Refuse a rule with an impossible UNTIL, or one that yields no date from `due`."""
    until = _UNTIL.search(recurrence)
    if until:
        try:
            date(*(int(part) for part in until.groups()))
        except ValueError:
            raise InvalidTaskError(
                f"recurrence: UNTIL={''.join(until.groups())} is no date."
            ) from None
    if _rule(recurrence, due).after(_midnight(due), inc=True) is None:
        raise InvalidTaskError(f"recurrence: {recurrence} produces no date on or after {due}.")


@dataclass(frozen=True)
class Next:
    due_date: date
    recurrence: str


def next_occurrence(
    recurrence: str, recurrence_from: str, due: date, completed_on: date, today: date
) -> Next | None:
    """The next occurrence of a task completed on `completed_on`, or None when exhausted."""
    count = _COUNT.search(recurrence)
    if count and int(count.group(1)) <= 1:
        return None
    # COUNT says how many occurrences are left, this one included: it is kept by hand, so
    # the rule itself runs without it.
    rule_text = _COUNT.sub("", recurrence)
    if recurrence_from == "completion":
        found = _rule(rule_text, completed_on).after(_midnight(completed_on))
    else:
        # Not before today: a task done late does not come back already overdue.
        since = max(due, today - timedelta(days=1))
        found = _rule(rule_text, due).after(_midnight(since))
    if found is None:
        return None
    remaining = f";COUNT={int(count.group(1)) - 1}" if count else ""
    return Next(found.date(), rule_text + remaining)


def shift_reminder(remind_at: datetime | None, days: int, time_zone: str | None) -> datetime | None:
    """The reminder `days` later on the wall clock of the task's zone (DST-proof)."""
    if remind_at is None:
        return None
    tz = zone(time_zone)
    aware = remind_at if remind_at.tzinfo else remind_at.replace(tzinfo=UTC)
    local = aware.astimezone(tz).replace(tzinfo=None)
    try:
        return (local + timedelta(days=days)).replace(tzinfo=tz).astimezone(UTC)
    except OverflowError:
        return None


def parse_instant(value: str) -> datetime:
    """An RFC 3339 date-time, with its offset; ValueError when it is none."""
    if not _INSTANT.fullmatch(value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time with an offset")
    text = value.upper()
    if text[17:19] == "60":
        # A leap second is valid RFC 3339 but no Python time: take the second before.
        text = text[:17] + "59" + text[19:]
    return datetime.fromisoformat(text)


def to_utc(instant: datetime) -> datetime:
    """The instant in UTC; OverflowError when that falls outside years 1 to 9999."""
    return instant.astimezone(UTC)


def _rule(text: str, start: date) -> rrule:
    parsed = rrulestr(text, dtstart=_midnight(start))
    assert isinstance(parsed, rrule)
    return parsed


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time())
