//! The report document as tables: for a terminal (`rally report`) and as one
//! self-contained HTML page (`--html FILE`: inline CSS, no external URL). Both are
//! drawn from the JSON document itself, so they show exactly what `--json` prints.

use std::fmt::Write as _;

use serde_json::Value;

/// A titled table: a header and rows of cells, the first column a label.
pub struct Table {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// The tables of a report document, in the order they are shown.
pub fn tables(doc: &Value) -> Vec<Table> {
    let mut out = vec![periods(doc), channels(&doc["totals"]["messages"])];
    out.push(simple(
        "Tiers (now)",
        &["tier", "members"],
        doc["tiers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(tier, n)| vec![tier.clone(), cell(n)])
            .collect(),
    ));
    out.push(simple(
        "Re-engagement",
        &["rule", "template", "sent", "returned", "rate"],
        rows(
            &doc["reengagement"],
            &["rule", "template", "sent", "returned", "rate"],
        ),
    ));
    let mut phases = Vec::new();
    for campaign in doc["campaigns"].as_array().into_iter().flatten() {
        for phase in campaign["phases"].as_array().into_iter().flatten() {
            let mut row = vec![cell(&campaign["id"])];
            for key in [
                "name",
                "from",
                "to",
                "participants",
                "points",
                "gmv",
                "budget_used",
            ] {
                row.push(cell(&phase[key]));
            }
            phases.push(row);
        }
    }
    out.push(simple(
        "Campaigns",
        &[
            "campaign",
            "phase",
            "from",
            "to",
            "participants",
            "points",
            "gmv",
            "budget used",
        ],
        phases,
    ));
    let cohorts: Vec<&Value> = doc["cohorts"].as_array().into_iter().flatten().collect();
    let weeks = cohorts
        .iter()
        .map(|c| c["active"].as_array().map_or(0, Vec::len))
        .max()
        .unwrap_or(0);
    let mut header = vec!["joined".to_string(), "size".to_string()];
    header.extend((0..weeks).map(|k| format!("wk {k}")));
    out.push(Table {
        title: "Retention cohorts (members active k weeks after joining)".into(),
        header,
        rows: cohorts
            .iter()
            .map(|c| {
                let mut row = vec![cell(&c["week"]), cell(&c["size"])];
                let active = c["active"].as_array().cloned().unwrap_or_default();
                row.extend((0..weeks).map(|k| active.get(k).map_or(String::new(), cell)));
                row
            })
            .collect(),
    });
    let tickets = &doc["tickets"];
    let breaches = tickets["breaches"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(level, n)| format!("L{level}: {}", cell(n)))
        .collect::<Vec<_>>()
        .join(", ");
    out.push(simple(
        "Tickets",
        &[
            "opened",
            "acknowledged",
            "resolved",
            "ack p50 (s)",
            "ack p90 (s)",
            "SLA breaches",
        ],
        vec![vec![
            cell(&tickets["opened"]),
            cell(&tickets["acknowledged"]),
            cell(&tickets["resolved"]),
            cell(&tickets["ack_p50_seconds"]),
            cell(&tickets["ack_p90_seconds"]),
            breaches,
        ]],
    ));
    out.push(simple(
        "Rules",
        &["rule", "firings", "failures", "points"],
        rows(&doc["rules"], &["id", "firings", "failures", "points"]),
    ));
    out
}

/// One row per period and one for the whole range.
fn periods(doc: &Value) -> Table {
    let bands: Vec<String> = doc["totals"]["silent"]
        .as_object()
        .map(|silent| silent.keys().cloned().collect())
        .unwrap_or_default();
    let mut header: Vec<String> = ["period", "members", "new", "active", "returned", "left"]
        .map(String::from)
        .to_vec();
    header.extend(bands.iter().map(|band| format!("silent {band}")));
    header.extend(
        [
            "purchases",
            "gmv",
            "buyers",
            "repurchase",
            "issued",
            "redeemed",
            "expired",
            "outstanding",
            "queued",
            "sent",
            "failed",
            "tickets",
        ]
        .map(String::from),
    );
    let row = |name: String, p: &Value| {
        let mut row = vec![name];
        for key in ["total", "new", "active", "returned", "left"] {
            row.push(cell(&p["members"][key]));
        }
        for band in &bands {
            row.push(cell(&p["silent"][band]));
        }
        for key in ["purchases", "gmv", "buyers", "repurchase_rate"] {
            row.push(cell(&p["commerce"][key]));
        }
        for key in ["issued", "redeemed", "expired", "outstanding"] {
            row.push(cell(&p["points"][key]));
        }
        for key in ["queued", "sent", "failed"] {
            row.push(cell(&p["messages"][key]));
        }
        row.push(cell(&p["tickets"]["opened"]));
        row
    };
    let mut rows: Vec<Vec<String>> = doc["periods"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| row(cell(&p["period"]), p))
        .collect();
    rows.push(row("total".into(), &doc["totals"]));
    Table {
        title: format!(
            "Community {} to {} by {} ({})",
            cell(&doc["from"]),
            cell(&doc["to"]),
            cell(&doc["by"]),
            cell(&doc["timezone"])
        ),
        header,
        rows,
    }
}

/// Messages over the whole range by channel: recorded by steps (and how: queued,
/// capped, suppressed), then what delivery made of them.
fn channels(messages: &Value) -> Table {
    let mut names: Vec<&String> = messages["by_channel"]
        .as_object()
        .into_iter()
        .chain(messages["deliveries"].as_object())
        .flat_map(|channels| channels.keys())
        .collect();
    names.sort();
    names.dedup();
    let rows = names
        .into_iter()
        .map(|name| {
            // A channel with nothing delivered, or nothing recorded, reads 0.
            let count = |n: &Value| n.as_u64().unwrap_or(0).to_string();
            let delivered = &messages["deliveries"][name];
            let recorded = &messages["by_channel_status"][name];
            let mut row = vec![name.clone(), count(&messages["by_channel"][name])];
            for key in ["queued", "capped", "suppressed"] {
                row.push(count(&recorded[key]));
            }
            for key in [
                "sent",
                "failed",
                "retried",
                "requeued",
                "suppressed_at_sending",
            ] {
                row.push(count(&delivered[key]));
            }
            row
        })
        .collect();
    simple(
        "Messages by channel",
        &[
            "channel",
            "recorded",
            "queued",
            "capped",
            "suppressed",
            "sent",
            "failed",
            "retried",
            "requeued",
            "suppressed at sending",
        ],
        rows,
    )
}

fn simple(title: &str, header: &[&str], rows: Vec<Vec<String>>) -> Table {
    Table {
        title: title.to_string(),
        header: header.iter().map(|h| h.to_string()).collect(),
        rows,
    }
}

fn rows(list: &Value, keys: &[&str]) -> Vec<Vec<String>> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|item| keys.iter().map(|key| cell(&item[*key])).collect())
        .collect()
}

/// A value as a cell: text as it is, rates to three places, nothing as `-`.
fn cell(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_string(),
        Value::Number(n) if n.is_f64() => format!("{:.3}", n.as_f64().unwrap_or(0.0)),
        other => other.to_string(),
    }
}

/// The tables for a terminal: columns aligned, numbers to the right.
pub fn text(doc: &Value) -> String {
    let mut out = String::new();
    for table in tables(doc) {
        let _ = writeln!(out, "{}", table.title);
        if table.rows.is_empty() {
            let _ = writeln!(out, "  (none)\n");
            continue;
        }
        let widths: Vec<usize> = (0..table.header.len())
            .map(|i| {
                table
                    .rows
                    .iter()
                    .map(|row| row.get(i).map_or(0, |c| c.chars().count()))
                    .chain([table.header[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let mut line = String::from(" ");
            for (i, width) in widths.iter().enumerate() {
                let text = cells.get(i).map_or("", String::as_str);
                if i == 0 {
                    let _ = write!(line, " {text:<width$}");
                } else {
                    let _ = write!(line, "  {text:>width$}");
                }
            }
            line.trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(&table.header));
        for row in &table.rows {
            let _ = writeln!(out, "{}", line(row));
        }
        out.push('\n');
    }
    out
}

/// One self-contained page: the same tables, and a bar of active members per period.
pub fn html(doc: &Value) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Rally report</title>\n<style>\
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 2em}\
th,td{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:right}\
th:first-child,td:first-child{text-align:left}\
th{background:#f4f4f4}\
.bar{background:#4a7ebb;height:.8em;display:inline-block}\
</style></head><body>\n<h1>Rally report</h1>\n",
    );
    let periods = doc["periods"].as_array().cloned().unwrap_or_default();
    let most = periods
        .iter()
        .filter_map(|p| p["members"]["active"].as_u64())
        .max()
        .unwrap_or(0)
        .max(1);
    out.push_str("<h2>Active members per period</h2>\n<table>\n");
    for p in &periods {
        let active = p["members"]["active"].as_u64().unwrap_or(0);
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td style=\"text-align:left\"><span class=\"bar\" style=\"width:{}px\"></span> {active}</td></tr>",
            escape(&cell(&p["period"])),
            active * 300 / most,
        );
    }
    out.push_str("</table>\n");
    for table in tables(doc) {
        let _ = writeln!(out, "<h2>{}</h2>\n<table>", escape(&table.title));
        out.push_str("<tr>");
        for h in &table.header {
            let _ = write!(out, "<th>{}</th>", escape(h));
        }
        out.push_str("</tr>\n");
        for row in &table.rows {
            out.push_str("<tr>");
            for c in row {
                let _ = write!(out, "<td>{}</td>", escape(c));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
