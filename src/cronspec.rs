//! Cron expressions as operators write them (SPEC §2.2): crontab's 5 fields (minute
//! first, weekday 0 or 7 = Sunday, 1 = Monday) or 6–7 fields with seconds first.
//! The `cron` crate wants 6–7 fields and numbers weekdays 1 = Sunday, so expressions
//! are translated here, once, at load.

/// A parsed cron expression.
#[derive(Clone, Debug)]
pub struct CronSpec {
    /// As written in the rule file.
    pub text: String,
    pub schedule: cron::Schedule,
}

impl CronSpec {
    /// Parses a 5-field crontab expression or a 6–7 field one with seconds.
    pub fn parse(text: &str) -> Result<CronSpec, String> {
        let _ = text;
        todo!("cron translation")
    }
}
