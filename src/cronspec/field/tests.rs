use super::{expand, render, Unit};

fn values(unit: Unit, text: &str) -> Vec<u32> {
    expand(unit, text, 0).unwrap().into_iter().collect()
}

fn weekdays(text: &str) -> String {
    render(Unit::DayOfWeek, &expand(Unit::DayOfWeek, text, 0).unwrap())
}

fn error(unit: Unit, text: &str, at: usize) -> (usize, String) {
    let err = expand(unit, text, at).unwrap_err();
    (err.at, err.message)
}

#[test]
fn weekday_numbers_follow_crontab_with_both_zero_and_seven_meaning_sunday() {
    assert_eq!(weekdays("1"), "MON");
    assert_eq!(weekdays("0"), "SUN");
    assert_eq!(weekdays("7"), "SUN");
    assert_eq!(weekdays("6"), "SAT");
}

#[test]
fn weekday_ranges_lists_and_names_expand_to_the_days_they_cover() {
    assert_eq!(weekdays("1-5"), "MON,TUE,WED,THU,FRI");
    assert_eq!(weekdays("Mon-Fri"), "MON,TUE,WED,THU,FRI");
    assert_eq!(weekdays("0,6"), "SUN,SAT");
    assert_eq!(weekdays("wed,FRIDAY"), "WED,FRI");
}

#[test]
fn names_and_numbers_mix_in_one_range() {
    assert_eq!(weekdays("Mon-5"), "MON,TUE,WED,THU,FRI");
    assert_eq!(weekdays("1-FRI"), "MON,TUE,WED,THU,FRI");
    assert_eq!(values(Unit::Month, "FEB-4"), [2, 3, 4]);
    assert_eq!(values(Unit::Month, "10-dec"), [10, 11, 12]);
}

#[test]
fn a_weekday_range_ending_on_sunday_or_past_saturday_wraps_into_the_week() {
    assert_eq!(weekdays("5-7"), "SUN,FRI,SAT");
    assert_eq!(weekdays("Fri-Sun"), "SUN,FRI,SAT");
    assert_eq!(weekdays("Sat-Mon"), "SUN,MON,SAT");
}

#[test]
fn weekday_steps_count_in_crontab_numbers() {
    assert_eq!(weekdays("*/2"), "SUN,TUE,THU,SAT");
    assert_eq!(weekdays("1-5/2"), "MON,WED,FRI");
    assert_eq!(weekdays("*/3"), "SUN,WED,SAT");
}

#[test]
fn steps_start_at_the_low_end_of_their_range() {
    assert_eq!(values(Unit::Minute, "*/15"), [0, 15, 30, 45]);
    assert_eq!(values(Unit::DayOfMonth, "*/10"), [1, 11, 21, 31]);
    assert_eq!(values(Unit::Hour, "8-18/4"), [8, 12, 16]);
    assert_eq!(values(Unit::Minute, "50/5"), [50, 55]);
}

#[test]
fn a_field_naming_every_value_is_handed_on_as_a_star() {
    assert_eq!(weekdays("*"), "*");
    assert_eq!(weekdays("0-6"), "*");
    assert_eq!(
        render(Unit::Month, &expand(Unit::Month, "jan-dec", 0).unwrap()),
        "*"
    );
    assert_eq!(
        render(Unit::Hour, &expand(Unit::Hour, "9,17", 0).unwrap()),
        "9,17"
    );
}

#[test]
fn a_question_mark_means_any_in_the_day_fields_only() {
    assert_eq!(weekdays("?"), "*");
    assert_eq!(values(Unit::DayOfMonth, "?").len(), 31);
    assert!(expand(Unit::Minute, "?", 0).is_err());
}

#[test]
fn bounds_are_stated_in_crontab_terms() {
    let message = |unit, text| expand(unit, text, 0).unwrap_err().message;
    assert_eq!(
        message(Unit::Minute, "60"),
        "minute must be 0–59, found \"60\""
    );
    assert_eq!(message(Unit::Hour, "24"), "hour must be 0–23, found \"24\"");
    assert_eq!(
        message(Unit::DayOfMonth, "0"),
        "day of month must be 1–31, found \"0\""
    );
    assert_eq!(
        message(Unit::Month, "13"),
        "month must be 1–12 or JAN–DEC, found \"13\""
    );
    assert_eq!(
        message(Unit::DayOfWeek, "8"),
        "day of week must be 0–7 or SUN–SAT, found \"8\""
    );
    assert_eq!(
        message(Unit::Second, "61"),
        "second must be 0–59, found \"61\""
    );
    assert_eq!(
        message(Unit::Year, "1969"),
        "year must be 1970–2100, found \"1969\""
    );
}

#[test]
fn an_unknown_name_is_quoted_as_written() {
    assert_eq!(
        expand(Unit::DayOfWeek, "Funday", 0).unwrap_err().message,
        "day of week must be 0–7 or SUN–SAT, found \"Funday\""
    );
    assert_eq!(
        expand(Unit::Month, "Fab", 0).unwrap_err().message,
        "month must be 1–12 or JAN–DEC, found \"Fab\""
    );
}

#[test]
fn names_belong_to_their_own_field() {
    assert!(expand(Unit::Month, "Mon", 0).is_err());
    assert!(expand(Unit::DayOfMonth, "jan", 0).is_err());
}

#[test]
fn an_error_points_at_the_value_at_fault_inside_the_field() {
    // The field starts at character 10 of its expression.
    assert_eq!(error(Unit::Hour, "9-25", 10).0, 12);
    assert_eq!(error(Unit::Minute, "0,15,75", 10).0, 15);
    assert_eq!(
        error(Unit::Minute, "1-", 10),
        (12, "minute must be 0–59, found nothing".to_string())
    );
}

#[test]
fn a_bad_step_is_refused_at_the_step() {
    let (at, message) = error(Unit::Minute, "*/0", 4);
    assert_eq!(at, 6);
    assert_eq!(
        message,
        "step in minute must be a whole number from 1, found \"0\""
    );
    assert!(expand(Unit::Minute, "*/x", 0).is_err());
    assert!(expand(Unit::Minute, "*/", 0).is_err());
    assert!(expand(Unit::Minute, "*/+5", 0).is_err());
}

#[test]
fn a_backwards_range_outside_the_weekday_field_is_refused_with_its_wrapped_spelling() {
    assert_eq!(
        error(Unit::Minute, "50-10", 0).1,
        "minute range 50-10 runs backwards (write 50-59,0-10)"
    );
    assert_eq!(
        error(Unit::Month, "NOV-FEB", 0).1,
        "month range NOV-FEB runs backwards (write NOV-12,1-FEB)"
    );
}

#[test]
fn an_empty_list_item_is_refused() {
    assert_eq!(error(Unit::Minute, "1,,2", 0).0, 2);
}
