//! Whether a message to a member may go out now (SPEC §2 `settings.messaging`, §2.6):
//! the member's consent, quiet hours in their local time, and `max_per_day`.
//!
//! Only marketing messages — those a rule sends to a member — are subject to the
//! policy. Staff notifications (escalation levels) always go out: a ticket's SLA does
//! not wait for anyone's quiet hours.
//!
//! Counting: a message counts against the member-local day on which it is *sent*. A
//! message deferred by quiet hours therefore counts against the day the quiet hours
//! end (for `22:00-08:00`, a message at 23:00 counts against tomorrow), and it is
//! capped when that day's allowance is already used up. The caller counts a message
//! with [`count_sent`] at [`Verdict::sends_at`] when it queues it, so the cap holds
//! for every step that follows, in the order steps run.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::campaign::local_to_utc;
use crate::localtime::local_day;
use crate::member::Member;
use crate::rules::MessagingPolicy;

/// What to do with one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Queue it for delivery now.
    Send,
    /// Quiet hours: queue it to be delivered at `until`, when they end.
    Defer { until: DateTime<Utc> },
    /// The member-local day's `max_per_day` is used up: record it, never deliver it.
    Capped,
    /// The member does not want marketing: `"unsubscribed"` or `"left"`.
    Suppressed(&'static str),
}

impl Verdict {
    /// When the message will be delivered, if it will: `now` or the end of quiet hours.
    pub fn sends_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Verdict::Send => Some(now),
            Verdict::Defer { until } => Some(*until),
            Verdict::Capped | Verdict::Suppressed(_) => None,
        }
    }
}

/// Why `member` gets no marketing now (`"unsubscribed"` or `"left"`), if they do not.
/// Checked when a message is queued and again when it goes out (SPEC §2.6).
pub fn withheld_consent(member: &Member) -> Option<&'static str> {
    if member.unsubscribed {
        Some("unsubscribed")
    } else if member.left {
        Some("left")
    } else {
        None
    }
}

/// Decides what happens to a message for `member` at `now`. `zone` is the member's
/// time zone (see [`crate::localtime::member_zone`]); `marketing` is false for staff
/// notifications, which always go out.
pub fn decide(
    member: &Member,
    policy: &MessagingPolicy,
    zone: Tz,
    now: DateTime<Utc>,
    marketing: bool,
) -> Verdict {
    if !marketing {
        return Verdict::Send;
    }
    if let Some(why) = withheld_consent(member) {
        return Verdict::Suppressed(why);
    }
    let verdict = match policy.quiet_hours.and_then(|q| quiet_until(q, zone, now)) {
        Some(until) => Verdict::Defer { until },
        None => Verdict::Send,
    };
    if let (Some(max), Some(at)) = (policy.max_per_day, verdict.sends_at(now)) {
        if sent_on(member, local_day(at, zone)) >= max {
            return Verdict::Capped;
        }
    }
    verdict
}

/// Counts one marketing message sent at `at` (see [`Verdict::sends_at`]) against the
/// member-local day it falls on. The counter holds one day: a later day starts afresh.
/// A day earlier than the counted one (a message deferred to tomorrow already counted)
/// leaves it alone rather than throw tomorrow's count away.
pub fn count_sent(member: &mut Member, zone: Tz, at: DateTime<Utc>) {
    let day = local_day(at, zone);
    let book = &mut member.book.messages_day;
    match book {
        Some((counted, n)) if *counted == day => *n += 1,
        Some((counted, _)) if *counted > day => {}
        _ => *book = Some((day, 1)),
    }
}

/// Messages already counted on `day`.
fn sent_on(member: &Member, day: NaiveDate) -> u32 {
    match member.book.messages_day {
        Some((counted, n)) if counted == day => n,
        _ => 0,
    }
}

/// The instant quiet hours end, if `now` falls inside them. Start is inclusive, end
/// exclusive; `start > end` wraps midnight.
fn quiet_until(
    (start, end): (NaiveTime, NaiveTime),
    zone: Tz,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let local = crate::localtime::to_local(now, zone);
    let (today, time) = (local.date(), local.time());
    let ends_on = if start < end {
        (start <= time && time < end).then_some(today)
    } else if time >= start {
        today.succ_opt()
    } else if time < end {
        Some(today)
    } else {
        None
    }?;
    next_local(ends_on.and_time(end), zone, now)
}

/// The first instant after `now` whose wall-clock time in `zone` is `local`. A time
/// skipped by a spring-forward gap means the end of the gap; a time repeated by a
/// fall-back means its first occurrence, or its second when the first has passed
/// (quiet hours that end inside the repeated hour, seen from its second pass).
fn next_local(local: NaiveDateTime, zone: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let first = local_to_utc(local, zone);
    if first > now {
        return Some(first);
    }
    let later = zone
        .from_local_datetime(&local)
        .latest()?
        .with_timezone(&Utc);
    (later > now).then_some(later)
}

#[cfg(test)]
mod tests {
    use chrono_tz::America::New_York;
    use chrono_tz::Asia::Shanghai;

    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn hm(text: &str) -> NaiveTime {
        NaiveTime::parse_from_str(text, "%H:%M").unwrap()
    }

    fn quiet(start: &str, end: &str) -> MessagingPolicy {
        MessagingPolicy {
            quiet_hours: Some((hm(start), hm(end))),
            max_per_day: None,
        }
    }

    fn capped(max: u32) -> MessagingPolicy {
        MessagingPolicy {
            quiet_hours: None,
            max_per_day: Some(max),
        }
    }

    fn member() -> Member {
        Member::new("m-1")
    }

    #[test]
    fn a_message_outside_quiet_hours_goes_out_now() {
        let now = utc("2026-11-10T12:00:00+08:00");
        let verdict = decide(&member(), &quiet("22:00", "08:00"), Shanghai, now, true);
        assert_eq!(verdict, Verdict::Send);
    }

    #[test]
    fn a_message_before_local_midnight_waits_until_the_next_local_morning() {
        // 23:30 in Shanghai is 15:30 UTC: quiet by the member's clock, not by UTC's.
        let now = utc("2026-11-10T15:30:00Z");
        let verdict = decide(&member(), &quiet("22:00", "08:00"), Shanghai, now, true);
        assert_eq!(
            verdict,
            Verdict::Defer {
                until: utc("2026-11-11T08:00:00+08:00")
            }
        );
    }

    #[test]
    fn a_message_after_local_midnight_waits_until_the_same_local_morning() {
        let now = utc("2026-11-11T03:00:00+08:00");
        let verdict = decide(&member(), &quiet("22:00", "08:00"), Shanghai, now, true);
        assert_eq!(
            verdict,
            Verdict::Defer {
                until: utc("2026-11-11T08:00:00+08:00")
            }
        );
    }

    #[test]
    fn quiet_hours_include_their_start_and_exclude_their_end() {
        let policy = quiet("22:00", "08:00");
        let start = utc("2026-11-10T22:00:00+08:00");
        let end = utc("2026-11-11T08:00:00+08:00");
        assert!(matches!(
            decide(&member(), &policy, Shanghai, start, true),
            Verdict::Defer { .. }
        ));
        assert_eq!(
            decide(&member(), &policy, Shanghai, end, true),
            Verdict::Send
        );
    }

    #[test]
    fn quiet_hours_within_one_day_defer_to_their_end_that_day() {
        let now = utc("2026-11-10T13:15:00+08:00");
        let verdict = decide(&member(), &quiet("12:00", "14:00"), Shanghai, now, true);
        assert_eq!(
            verdict,
            Verdict::Defer {
                until: utc("2026-11-10T14:00:00+08:00")
            }
        );
    }

    #[test]
    fn quiet_hours_ending_in_a_spring_forward_gap_end_when_the_gap_ends() {
        // New York skips 02:00-03:00 on 2026-03-08.
        let now = utc("2026-03-08T01:00:00-05:00");
        let verdict = decide(&member(), &quiet("22:00", "02:30"), New_York, now, true);
        assert_eq!(
            verdict,
            Verdict::Defer {
                until: utc("2026-03-08T03:00:00-04:00")
            }
        );
    }

    #[test]
    fn quiet_hours_ending_in_a_repeated_hour_end_at_its_next_occurrence() {
        // New York repeats 01:00-02:00 on 2026-11-01. At the second 01:15 the first
        // 01:30 has passed; the second one is 15 minutes away.
        let now = utc("2026-11-01T01:15:00-05:00");
        let verdict = decide(&member(), &quiet("22:00", "01:30"), New_York, now, true);
        assert_eq!(
            verdict,
            Verdict::Defer {
                until: utc("2026-11-01T01:30:00-05:00")
            }
        );
    }

    #[test]
    fn an_unsubscribed_member_gets_no_marketing() {
        let mut m = member();
        m.unsubscribed = true;
        let now = utc("2026-11-10T12:00:00Z");
        let verdict = decide(&m, &MessagingPolicy::default(), Shanghai, now, true);
        assert_eq!(verdict, Verdict::Suppressed("unsubscribed"));
    }

    #[test]
    fn a_member_who_left_gets_no_marketing() {
        let mut m = member();
        m.left = true;
        let now = utc("2026-11-10T12:00:00Z");
        let verdict = decide(&m, &MessagingPolicy::default(), Shanghai, now, true);
        assert_eq!(verdict, Verdict::Suppressed("left"));
    }

    #[test]
    fn staff_notifications_ignore_consent_quiet_hours_and_caps() {
        let mut m = member();
        m.unsubscribed = true;
        let now = utc("2026-11-10T23:00:00+08:00");
        m.book.messages_day = Some((local_day(now, Shanghai), 9));
        let policy = MessagingPolicy {
            max_per_day: Some(1),
            ..quiet("22:00", "08:00")
        };
        assert_eq!(decide(&m, &policy, Shanghai, now, false), Verdict::Send);
    }

    #[test]
    fn the_message_over_max_per_day_is_capped() {
        let mut m = member();
        let policy = capped(2);
        let now = utc("2026-11-10T12:00:00+08:00");
        for _ in 0..2 {
            assert_eq!(decide(&m, &policy, Shanghai, now, true), Verdict::Send);
            count_sent(&mut m, Shanghai, now);
        }
        assert_eq!(decide(&m, &policy, Shanghai, now, true), Verdict::Capped);
    }

    #[test]
    fn max_per_day_resets_at_the_members_local_midnight_not_utc() {
        let mut m = member();
        let policy = capped(1);
        // 23:30 and 00:30 in Shanghai: the same UTC day, two local days.
        let late = utc("2026-11-10T23:30:00+08:00");
        let early = utc("2026-11-11T00:30:00+08:00");
        assert_eq!(late.date_naive(), early.date_naive());
        count_sent(&mut m, Shanghai, late);
        assert_eq!(decide(&m, &policy, Shanghai, late, true), Verdict::Capped);
        assert_eq!(decide(&m, &policy, Shanghai, early, true), Verdict::Send);
    }

    #[test]
    fn max_per_day_does_not_reset_at_utc_midnight() {
        let mut m = member();
        let policy = capped(1);
        // 07:30 and 08:30 in Shanghai: two UTC days, one local day.
        let before = utc("2026-11-10T23:30:00Z");
        let after = utc("2026-11-11T00:30:00Z");
        count_sent(&mut m, Shanghai, before);
        assert_eq!(decide(&m, &policy, Shanghai, after, true), Verdict::Capped);
    }

    #[test]
    fn a_deferred_message_counts_against_the_day_it_is_sent() {
        let mut m = member();
        let policy = MessagingPolicy {
            max_per_day: Some(1),
            ..quiet("22:00", "08:00")
        };
        let evening = utc("2026-11-10T21:00:00+08:00");
        count_sent(&mut m, Shanghai, evening);
        // Today's allowance is used, but a message at 23:00 goes out tomorrow.
        let night = utc("2026-11-10T23:00:00+08:00");
        let verdict = decide(&m, &policy, Shanghai, night, true);
        let until = utc("2026-11-11T08:00:00+08:00");
        assert_eq!(verdict, Verdict::Defer { until });
        count_sent(&mut m, Shanghai, until);
        // Tomorrow's allowance is now used by it.
        let morning = utc("2026-11-11T09:00:00+08:00");
        assert_eq!(
            decide(&m, &policy, Shanghai, morning, true),
            Verdict::Capped
        );
    }

    #[test]
    fn counting_an_earlier_day_keeps_the_later_days_count() {
        let mut m = member();
        let tomorrow = utc("2026-11-11T08:00:00+08:00");
        count_sent(&mut m, Shanghai, tomorrow);
        count_sent(&mut m, Shanghai, utc("2026-11-10T23:00:00+08:00"));
        assert_eq!(
            m.book.messages_day,
            Some((local_day(tomorrow, Shanghai), 1))
        );
    }
}
