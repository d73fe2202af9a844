//! `templates:` — message subjects and bodies, inline or from a file. Stored as
//! written; their template syntax is checked where they are rendered.

use std::collections::BTreeMap;

use crate::rules::compile::{Ctx, Ids, Section};
use crate::rules::convert::{fields, string};
use crate::rules::yaml::{Key, Value};
use crate::rules::Template;

pub fn compile(ctx: &mut Ctx, sections: &[Section]) -> BTreeMap<String, Template> {
    let mut ids = Ids::new("template");
    let mut out = BTreeMap::new();
    for section in sections {
        for (key, value) in section.entries(&mut ctx.d) {
            if !ids.claim(&mut ctx.d, &key.name, &key.at) {
                continue;
            }
            ctx.names.templates.push(key.name.clone());
            if let Some(template) = template(ctx, key, value) {
                out.insert(key.name.clone(), template);
            }
        }
    }
    out
}

fn template(ctx: &mut Ctx, key: &Key, value: &Value) -> Option<Template> {
    let allowed = ["subject", "body", "body_file"];
    let f = fields(&mut ctx.d, value, "template", &allowed)?;
    // A subject only matters for email; webhook and log messages may do without.
    let subject = match f.get("subject") {
        Some(v) => string(&mut ctx.d, v, "subject")?.to_string(),
        None => String::new(),
    };
    let (body, html) = match (f.get("body"), f.get("body_file")) {
        (Some(body), None) => (string(&mut ctx.d, body, "body")?.to_string(), false),
        (None, Some(file)) => {
            let path = string(&mut ctx.d, file, "body_file")?;
            let html = [".html", ".htm"]
                .iter()
                .any(|ext| path.to_ascii_lowercase().ends_with(ext));
            let (_, text) = ctx.read_file(file, path)?;
            (text, html)
        }
        (Some(_), Some(_)) => {
            let at = f.key("body_file").map_or(&value.at, |k| &k.at);
            ctx.d.error(
                at,
                "a template has either \"body\" or \"body_file\", not both",
            );
            return None;
        }
        (None, None) => {
            ctx.d.error(
                &value.at,
                format!("template {:?} needs \"body\" or \"body_file\"", key.name),
            );
            return None;
        }
    };
    Some(Template {
        id: key.name.clone(),
        subject,
        body,
        html,
        at: key.at.clone(),
    })
}
