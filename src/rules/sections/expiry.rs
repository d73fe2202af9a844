//! `settings.points.expire: { after: 12 months, at_end_of: month }` — how long
//! awarded points stay spendable (see [`crate::expiry`]).

use crate::expiry::{parse_validity, EndOf, PointsExpiry};
use crate::rules::convert::{choice, fields, string, Diag};
use crate::rules::yaml::Value;

pub fn compile(d: &mut Diag, value: &Value) -> Option<PointsExpiry> {
    let f = fields(d, value, "settings.points.expire", &["after", "at_end_of"])?;
    let after = f.require(d, "after").and_then(|v| {
        let text = string(d, v, "after")?;
        parse_validity(text)
            .map_err(|message| d.error(&v.at, format!("settings.points.expire.after: {message}")))
            .ok()
    });
    let at_end_of = match f.get("at_end_of") {
        None => Some(None),
        Some(v) => choice(d, v, "at_end_of", &["day", "week", "month", "year"]).map(|name| {
            Some(match name {
                "day" => EndOf::Day,
                "week" => EndOf::Week,
                "month" => EndOf::Month,
                _ => EndOf::Year,
            })
        }),
    };
    Some(PointsExpiry {
        after: after?,
        at_end_of: at_end_of?,
    })
}
