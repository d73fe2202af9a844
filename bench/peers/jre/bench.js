// peer50 through json-rules-engine 7.3.1 (Node).
//
// Each of the 50 rules becomes one json-rules-engine rule: its event type test and the
// comparisons of its `if` under `all` (an `||` splits them into `any` of `all`s). One
// engine holds all 50 and `engine.run(facts)` evaluates every one of them per event, as
// the other peers do. Two modes, differing only in the shape of the facts, which are
// built before timing in both:
//   nested: facts `{ event, member }`, the event as read and the member snapshot from
//           its `data.m_*` fields; conditions reach into them with paths
//           (`fact: "event", path: "$.data.amount"`, `fact: "member", path: "$.points"`),
//           resolved by the engine's default JSONPath resolver;
//   flat:   one fact per field (`type`, `amount`, `channel`, `m_tier`, ...), no paths.
//
// usage: node bench.js RULES_YAML EVENTS_JSONL [nested|flat]   (both by default)
// Prints `json-rules-engine, <mode>: N events/s (F firings)` per mode, and exits 1 if
// the firings are not the 40,130 that every engine gives on this workload.
"use strict";

const fs = require("fs");
const yaml = require("js-yaml");
const { Engine } = require("json-rules-engine");

// What every engine fires on this workload.
const PEER_FIRINGS = 40130;

// Rally's comparison operators and json-rules-engine's names for them.
const OPERATORS = {
  "==": "equal",
  "!=": "notEqual",
  ">=": "greaterThanInclusive",
  "<=": "lessThanInclusive",
  ">": "greaterThan",
  "<": "lessThan",
};

// How each mode names the value at a Rally path such as `event.data.m_points`.
const FACTS = {
  nested: {
    label: "nested facts {event, member} with paths",
    type: { fact: "event", path: "$.type" },
    field(name) {
      return name.startsWith("m_")
        ? { fact: "member", path: "$." + name.slice(2) }
        : { fact: "event", path: "$.data." + name };
    },
    facts(event) {
      const member = {};
      for (const [key, value] of Object.entries(event.data)) {
        if (key.startsWith("m_")) member[key.slice(2)] = value;
      }
      return { event, member };
    },
  },
  flat: {
    label: "flat facts",
    type: { fact: "type" },
    field(name) {
      return { fact: name };
    },
    facts(event) {
      return { type: event.type, ...event.data };
    },
  },
};

function fail(message) {
  console.error("peer50-jre: " + message);
  process.exit(1);
}

// One comparison, `event.data.NAME OP LITERAL`, as a json-rules-engine condition.
function comparison(text, mode) {
  const m = text
    .trim()
    .match(/^event\.data\.([A-Za-z_][A-Za-z0-9_]*)\s*(==|!=|>=|<=|>|<)\s*(.+)$/);
  if (!m) throw new Error(`cannot translate \`${text.trim()}\``);
  const [, name, op, literal] = m;
  return { ...FACTS[mode].field(name), operator: OPERATORS[op], value: JSON.parse(literal) };
}

// Splits on a two-character operator outside string literals.
function split(text, operator) {
  const parts = [];
  let start = 0;
  let quote = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (text.startsWith(operator, i)) {
      parts.push(text.slice(start, i));
      start = i + operator.length;
      i++;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

// A Rally rule as a json-rules-engine rule. Conditions with `!` or parentheses are
// refused: peer50 has none, and a wrong translation would only show as a wrong count.
function toRule(rule, mode) {
  const typeTest = { ...FACTS[mode].type, operator: "equal", value: rule.trigger.event };
  let conditions = { all: [typeTest] };
  if (rule.if !== undefined) {
    if (/[!()]/.test(rule.if.replace(/!=/g, "").replace(/"[^"]*"/g, ""))) {
      throw new Error(`cannot translate \`${rule.if}\``);
    }
    const alternatives = split(rule.if, "||").map((alt) => ({
      all: split(alt, "&&").map((part) => comparison(part, mode)),
    }));
    conditions =
      alternatives.length === 1
        ? { all: [typeTest, ...alternatives[0].all] }
        : { all: [typeTest, { any: alternatives }] };
  }
  return { name: rule.id, conditions, event: { type: rule.id } };
}

async function run(mode, rules, events) {
  const engine = new Engine();
  for (const rule of rules) {
    try {
      engine.addRule(toRule(rule, mode));
    } catch (e) {
      fail(`rule ${rule.id}: ${e.message}`);
    }
  }
  const facts = events.map(FACTS[mode].facts);
  let firings = 0;
  const start = process.hrtime.bigint();
  for (const f of facts) {
    const { events: fired } = await engine.run(f);
    firings += fired.length;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { firings, seconds };
}

async function main() {
  const [rulesPath, eventsPath, only, ...rest] = process.argv.slice(2);
  if (!rulesPath || !eventsPath || rest.length > 0 || (only && !FACTS[only])) {
    fail("usage: node bench.js RULES_YAML EVENTS_JSONL [nested|flat]");
  }
  const rules = yaml.load(fs.readFileSync(rulesPath, "utf8")).rules;
  const events = fs
    .readFileSync(eventsPath, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line));
  let wrong = false;
  for (const mode of only ? [only] : ["nested", "flat"]) {
    const { firings, seconds } = await run(mode, rules, events);
    const rate = Math.round(events.length / seconds).toLocaleString("en-US");
    console.log(`json-rules-engine, ${FACTS[mode].label}: ${rate} events/s (${firings} firings)`);
    if (firings !== PEER_FIRINGS) {
      console.error(`peer50-jre: ${FACTS[mode].label} fired ${firings} times, not ${PEER_FIRINGS}`);
      wrong = true;
    }
  }
  process.exit(wrong ? 1 : 0);
}

main().catch((e) => fail(e.stack || String(e)));
