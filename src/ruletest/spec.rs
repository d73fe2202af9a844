//! What a test file says, read and checked: the typed form every later stage uses
//! (as `RawRule` → `CompiledRule` for rules: nothing after parsing looks at YAML).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use crate::member::Member;
use crate::rules::SourcePos;

/// One file of `tests/`, its tests in the order written.
pub struct TestFile {
    /// As messages and reports name it: `rules/tests/points.yaml`.
    pub path: String,
    /// The file's stem (`points`): the group its tests are reported under.
    pub suite: String,
    pub tests: Vec<TestCase>,
}

pub struct TestCase {
    pub name: String,
    /// Where the test is written.
    pub at: SourcePos,
    /// The virtual clock's first reading; relative times count from it.
    pub start: DateTime<Utc>,
    /// Members in the store before the first event, ordered as written.
    pub members: Vec<Member>,
    /// In the order they arrive (repeats expanded).
    pub events: Vec<TestEvent>,
    /// Where the clock runs to after the last event.
    pub until: Option<DateTime<Utc>>,
    pub expect: Expect,
}

/// One event as `rally sim` reads it, and where the test wrote it.
pub struct TestEvent {
    pub id: String,
    /// The event as one JSON line.
    pub line: String,
    pub at: SourcePos,
}

/// What must hold when the test's clock stops. Only what is written is checked.
#[derive(Default)]
pub struct Expect {
    pub members: Vec<MemberExpect>,
    pub ledger: Option<Records>,
    pub messages: Option<Records>,
    pub tickets: Option<Records>,
    /// Rule failures (a script error, a deduction past the balance). When not written,
    /// any failure fails the test.
    pub errors: Option<Records>,
    pub fired: Vec<Firing>,
    pub not_fired: Vec<Firing>,
    pub campaigns: Vec<CampaignExpect>,
    /// Ids of events the test means to be rejected. Any other rejection fails it.
    pub rejected: Vec<(String, SourcePos)>,
    pub leaderboards: Vec<super::leaderboards::BoardExpect>,
}

pub struct MemberExpect {
    pub id: String,
    pub at: SourcePos,
    /// Field of the member's `sim` view → what it must be.
    pub fields: Vec<Field>,
}

/// One expected field: where it is in a `sim` document record, what it must be, and
/// where the test wrote it.
pub struct Field {
    /// Keys from the record down (`["counters", "events.checkin"]`): counter names
    /// hold dots, so a path is not one dotted string.
    pub path: Vec<String>,
    pub want: Want,
    /// What the document's absence of the field means (a counter never touched is 0).
    pub absent: Json,
    pub at: SourcePos,
}

impl Field {
    /// As messages name it: `counters.events.checkin`.
    pub fn name(&self) -> String {
        self.path.join(".")
    }
}

pub enum Want {
    /// Equal as JSON, numbers compared exactly (`0.3` is `0.3`, `5` is `5.0`).
    Exact(Json),
    /// An instant, whatever the offset it is printed with.
    Time(DateTime<Utc>),
    /// A set of names (tags, badges): exactly these, or containing and lacking some.
    Set(SetWant),
    /// Text that contains this (a rule failure's message).
    Contains(String),
}

pub enum SetWant {
    Exactly(BTreeSet<String>),
    Partly {
        contains: BTreeSet<String>,
        excludes: BTreeSet<String>,
    },
}

/// What a list in the document (ledger, messages, tickets, errors) must hold.
pub enum Records {
    /// Exactly these, in the order they happened; each on the fields it lists. With
    /// where the list is written (an empty one says "none").
    Exactly(Vec<Record>, SourcePos),
    /// Each `contains` entry matches some record (exactly `count` of them when given);
    /// no record matches an `excludes` entry.
    Partly {
        contains: Vec<(Record, Option<usize>)>,
        excludes: Vec<Record>,
    },
}

/// A record pattern: the fields it lists, each as it must be.
pub struct Record {
    pub fields: Vec<Field>,
    pub at: SourcePos,
}

/// A rule that must (or must not) have fired: for one member or any, and how often.
pub struct Firing {
    pub rule: String,
    pub member: Option<String>,
    /// Exactly this many times; `None` for "at least once" (`fired`) or "never"
    /// (`not_fired`).
    pub times: Option<usize>,
    pub at: SourcePos,
}

pub struct CampaignExpect {
    pub id: String,
    pub fields: Vec<Field>,
}
