//! Mistakes operators made writing rules from real plans (issue 10), caught when the
//! rules load rather than on the first member who reaches them.

use rally::rules::{self, RuleError, RuleSet};

fn load(yaml: &str) -> Result<RuleSet, Vec<RuleError>> {
    rules::from_sources(&[("a.yaml", yaml)], &|_| None)
}

fn errors(yaml: &str) -> Vec<String> {
    match load(yaml) {
        Ok(_) => panic!("expected the rule set to be refused"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn loads(yaml: &str) {
    if let Err(errors) = load(yaml) {
        panic!("{errors:#?}");
    }
}

fn rule_if(condition: &str) -> String {
    format!(
        "rules:\n  - id: r\n    trigger: {{ event: checkin }}\n    if: '{condition}'\n    actions:\n      - points: 1\n"
    )
}

// --- unknown functions ---------------------------------------------------------------

#[test]
fn an_unknown_function_in_an_if_is_reported_at_the_call() {
    assert_eq!(
        errors(&rule_if("frobnicate() > 0.5")),
        ["a.yaml:4:10: Rhai: unknown function \"frobnicate\""]
    );
}

#[test]
fn rand_is_refused_with_a_hint_to_random() {
    assert_eq!(
        errors(&rule_if("rand() > 0.5")),
        ["a.yaml:4:10: Rhai: unknown function \"rand\" (did you mean \"random\"?)"]
    );
}

#[test]
fn the_random_functions_are_known() {
    let condition = "random() < 0.5 && random_int(1, 6) == 6 && chance(0.1)";
    loads(&rule_if(condition));
}

#[test]
fn an_unknown_function_in_a_script_file_is_reported_at_its_line() {
    let yaml = "rules:\n  - id: r\n    trigger: { event: checkin }\n    actions:\n      - script: s.rhai\n";
    let script = "award(1);\nlet h = hash(member.id);\n";
    let found = match rules::from_sources(&[("a.yaml", yaml), ("s.rhai", script)], &|_| None) {
        Ok(_) => panic!("expected the rule set to be refused"),
        Err(errors) => errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
    };
    assert_eq!(found, ["s.rhai:2:9: Rhai: unknown function \"hash\""]);
}

#[test]
fn an_unknown_function_near_a_known_one_gets_a_did_you_mean() {
    assert_eq!(
        errors(&rule_if("roud(member.spend_total) > 10.0")),
        ["a.yaml:4:10: Rhai: unknown function \"roud\" (did you mean \"round\"?)"]
    );
}

// --- misspelt member fields ------------------------------------------------------------

#[test]
fn a_misspelt_member_field_is_reported_with_the_field_it_resembles() {
    assert_eq!(
        errors(&rule_if("member.point > 100")),
        ["a.yaml:4:17: member has no field \"point\": it would always read as () (did you mean \"points\"?)"]
    );
}

#[test]
fn a_misspelt_tier_is_reported() {
    let found = errors(&rule_if("member.teir == \"gold\""));
    assert!(found[0].contains("(did you mean \"tier\"?)"), "{found:?}");
}

#[test]
fn an_attribute_far_from_every_built_in_field_is_not_reported() {
    loads(&rule_if("member.vip_since != ()"));
}

#[test]
fn an_attribute_a_set_action_writes_is_not_reported_even_near_a_built_in_field() {
    let yaml = format!(
        "{}  - id: s\n    trigger: {{ event: post }}\n    actions:\n      - set: {{ tiers: 2 }}\n",
        rule_if("member.tiers == 2")
    );
    loads(&yaml);
}

#[test]
fn an_attribute_a_script_sets_by_name_is_not_reported() {
    let yaml = format!(
        "{}  - id: s\n    trigger: {{ event: post }}\n    actions:\n      - script: 'set(\"badge\", 1);'\n",
        rule_if("member.badge == 1")
    );
    loads(&yaml);
}

#[test]
fn a_custom_counter_named_like_a_built_in_field_is_not_reported() {
    let yaml = format!(
        "counters:\n  - id: point\n    on: post\n{}",
        rule_if("member.counters.point > 1 && member.point != ()")
    );
    loads(&yaml);
}

#[test]
fn left_and_unsubscribed_are_known_member_fields() {
    loads(&rule_if("!member.left && !member.unsubscribed"));
}

// --- quoting -----------------------------------------------------------------------------

#[test]
fn a_single_quoted_string_is_reported_with_a_double_quote_hint() {
    let yaml = "rules:\n  - id: r\n    trigger: { event: checkin }\n    if: \"'vip' in member.tags\"\n    actions:\n      - points: 1\n";
    assert_eq!(
        errors(yaml),
        ["a.yaml:4:10: Rhai: Invalid character: 'vip' (Rhai strings use double quotes: \"vip\")"]
    );
}

// --- audience and members who left ---------------------------------------------------

fn nightly(audience: &str) -> String {
    format!(
        "rules:\n  - id: r\n    trigger: {{ schedule: \"0 0 * * *\" }}\n    audience: {audience}\n    actions:\n      - points: 1\n"
    )
}

#[test]
fn an_audience_may_include_members_who_left() {
    let set = rules::from_sources(
        &[(
            "a.yaml",
            &nightly("{ if: 'member.points > 0', include_left: true }"),
        )],
        &|_| None,
    )
    .unwrap_or_else(|e| panic!("{e:#?}"));
    let audience = set.rules[0].audience.as_ref().unwrap();
    assert!(audience.include_left);
    assert!(audience.condition.is_some());
}

#[test]
fn audience_all_leaves_out_members_who_left() {
    let set = rules::from_sources(&[("a.yaml", &nightly("all"))], &|_| None)
        .unwrap_or_else(|e| panic!("{e:#?}"));
    let audience = set.rules[0].audience.as_ref().unwrap();
    assert!(!audience.include_left);
    assert!(audience.condition.is_none());
}

#[test]
fn an_unknown_key_in_an_audience_mapping_is_reported_with_a_hint() {
    assert_eq!(
        errors(&nightly("{ include_leftt: true }")),
        ["a.yaml:4:17: unknown key \"include_leftt\" in audience (did you mean \"include_left\"?)"]
    );
}

#[test]
fn include_left_must_be_a_boolean() {
    assert_eq!(
        errors(&nightly("{ include_left: sometimes }")),
        ["a.yaml:4:31: \"include_left\" must be true or false, found a string"]
    );
}

// --- send.to as a template ---------------------------------------------------------------

fn send_to(to: &str) -> String {
    format!(
        "templates:\n  t: {{ body: b }}\nchannels:\n  log: {{ kind: log }}\nrules:\n  - id: r\n    trigger: {{ event: post }}\n    actions:\n      - send: {{ template: t, channel: log, to: \"{to}\" }}\n"
    )
}

#[test]
fn a_templated_send_to_loads() {
    loads(&send_to("{{ member.attrs.manager_email }}"));
}

#[test]
fn a_syntax_error_in_send_to_is_reported_at_its_place() {
    let found = errors(&send_to("{{ member.email "));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("a.yaml:9:59: send \"to\": syntax error"),
        "{found:?}"
    );
}

#[test]
fn an_unknown_variable_in_send_to_is_reported_with_a_hint() {
    assert_eq!(
        errors(&send_to("{{ membr.email }}")),
        ["a.yaml:9:52: send \"to\": unknown variable \"membr\" (did you mean \"member\"?)"]
    );
}

// --- operator controls: cap: false, kind: transactional ---------------------------------

fn one_action(action: &str) -> String {
    format!(
        "templates:\n  t: {{ body: b }}\nchannels:\n  log: {{ kind: log }}\nrules:\n  - id: r\n    trigger: {{ event: post }}\n    actions:\n      - {action}\n"
    )
}

#[test]
fn points_cap_false_and_a_transactional_send_load() {
    loads(&one_action("points: { amount: 5, cap: false }"));
    loads(&one_action(
        "send: { template: t, channel: log, kind: transactional }",
    ));
    loads(&one_action(
        "send: { template: t, channel: log, kind: marketing }",
    ));
}

#[test]
fn points_cap_must_be_a_boolean() {
    let errors = errors(&one_action("points: { amount: 5, cap: no-thanks }"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("\"cap\" must be true or false, found a string"),
        "{errors:?}"
    );
}

#[test]
fn send_kind_must_be_marketing_or_transactional() {
    let errors = errors(&one_action(
        "send: { template: t, channel: log, kind: transactionl }",
    ));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("\"kind\" must be one of marketing, transactional"),
        "{errors:?}"
    );
    assert!(
        errors[0].contains("did you mean \"transactional\""),
        "{errors:?}"
    );
}

// --- delayed triggers (`after`) -------------------------------------------------------

fn rule_after(trigger: &str) -> String {
    format!(
        "rules:\n  - id: r\n    trigger: {{ after: {trigger} }}\n    actions:\n      - points: 1\n"
    )
}

#[test]
fn an_after_trigger_with_an_event_type_or_list_and_a_wait_loads() {
    loads(&rule_after("{ event: join, wait: 3d }"));
    loads(&rule_after("{ event: [join, purchase], wait: 1d12h }"));
}

#[test]
fn a_bad_after_trigger_is_reported_where_it_is_written() {
    let found = |trigger: &str| errors(&rule_after(trigger));
    assert_eq!(
        found("{ event: join }"),
        ["a.yaml:3:23: after trigger is missing required key \"wait\""]
    );
    assert_eq!(
        found("{ wait: 3d }"),
        ["a.yaml:3:23: after trigger is missing required key \"event\""]
    );
    assert_eq!(
        found("{ event: join, wait: 3x }"),
        ["a.yaml:3:44: invalid duration \"3x\": unknown unit 'x' (use w, d, h, m or s)"]
    );
    assert_eq!(
        found("{ event: join, wait: 20000d }"),
        ["a.yaml:3:44: duration \"20000d\" is longer than the longest allowed, 3650d (10 years)"]
    );
    assert_eq!(
        found("{ event: Join!, wait: 3d }"),
        ["a.yaml:3:32: \"Join!\" is not an event type (1 to 64 of a-z, 0-9, '_', '.', '-')"]
    );
    assert!(found("{ event: join, wait: 3d, delay: 1d }")[0]
        .starts_with("a.yaml:3:48: unknown key \"delay\" in after trigger"));
    assert_eq!(
        found("{ event: [], wait: 3d }"),
        ["a.yaml:3:32: \"event\" must not be an empty list"]
    );
    assert_eq!(
        found("3d"),
        ["a.yaml:3:23: after trigger must be a mapping, found a string"]
    );
}
