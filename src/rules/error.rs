//! A problem in a rule file, with where it is and, when one helps, a hint.

use std::fmt;

use super::SourcePos;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RuleError {
    /// `None` for problems with the directory itself (unreadable, empty).
    pub at: Option<SourcePos>,
    pub message: String,
    /// e.g. `did you mean "welcome"?`
    pub hint: Option<String>,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = &self.at {
            write!(f, "{at}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}
